//! `keyward-kes` as operators run it: seeds on stdin, envelopes on disk,
//! exit codes 0 / 1 / 2.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crypto::kes::{self, KesAlgorithm};
use secmem::MLockedSeed;

const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward-kes"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused before it reads stdin may exit first: a broken pipe
    // is then expected, and its exit status is what is checked.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("stdin: {e}"),
        _ => {}
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn library_vk<K: KesAlgorithm>() -> String {
    let mut s = MLockedSeed::new().unwrap();
    s.as_mut_bytes().copy_from_slice(&hex::decode(SEED).unwrap());
    hex::encode(kes::gen_key::<K>(&s).unwrap().verification_key().0)
}

#[test]
fn vk_sign_verify_for_every_scheme_family() {
    let cases = [
        ("single", library_vk::<kes::Sum0>(), 1u32),
        ("compact-single", library_vk::<kes::CompactSum0>(), 1),
        ("sum1", library_vk::<kes::Sum1>(), 2),
        ("sum6", library_vk::<kes::Sum6>(), 64),
        ("sum7", library_vk::<kes::Sum7>(), 128),
        ("compact-sum6", library_vk::<kes::CompactSum6>(), 64),
    ];
    for (scheme, vk, total) in cases {
        let out = run(&["vk", "--scheme", scheme], SEED);
        assert!(out.status.success(), "{scheme}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout(&out), vk, "{scheme}");
        let period = (total - 1).to_string();
        let sig = stdout(&run(&["sign", "--scheme", scheme, "--period", &period, "--message-hex", "cafe"], SEED));
        let verify = |period: &str, msg: &str, sig: &str| {
            run(
                &[
                    "verify",
                    "--scheme",
                    scheme,
                    "--vk",
                    &vk,
                    "--period",
                    period,
                    "--message-hex",
                    msg,
                    "--signature-hex",
                    sig,
                ],
                "",
            )
            .status
            .code()
        };
        assert_eq!(verify(&period, "cafe", &sig), Some(0), "{scheme} valid");
        assert_eq!(verify(&period, "cafd", &sig), Some(1), "{scheme} wrong message");
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert_eq!(verify(&period, "cafe", std::str::from_utf8(&flipped).unwrap()), Some(1), "{scheme} flipped");
        assert_eq!(verify(&period, "cafe", &sig[2..]), Some(2), "{scheme} truncated signature is bad input");
        assert_eq!(verify(&total.to_string(), "cafe", &sig), Some(2), "{scheme} period out of range");
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_2() {
    let cases: [(&[&str], &str, &str); 5] = [
        (&["vk", "--scheme", "sum6"], "not hex", "KES_BAD_SEED"),
        (&["vk", "--scheme", "sum6"], "00ff", "KES_BAD_SEED"),
        (&["sign", "--scheme", "sum6", "--period", "64", "--message-hex", "00"], SEED, "CRYPTO_PERIOD_OUT_OF_RANGE"),
        (&["sign", "--scheme", "sum2", "--period", "1", "--message-hex", "0g"], SEED, "KES_BAD_MESSAGE"),
        (&["vk", "--scheme", "sum9"], SEED, "invalid value"),
    ];
    for (args, stdin, code) in cases {
        let out = run(args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(code), "{args:?}: {err}");
        assert!(!err.contains(SEED), "the seed never appears in an error");
    }
    // There is no way to pass a seed in argv.
    let out = run(&["vk", "--scheme", "sum6", "--seed", SEED], "");
    assert_eq!(out.status.code(), Some(2));
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_cardano_cli_envelopes_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let skey = dir.path().join("kes.skey");
    let vkey = dir.path().join("kes.vkey");
    let (s, v) = (skey.to_str().unwrap(), vkey.to_str().unwrap());
    let out = run(&["keygen", "--out-skey", s, "--out-vkey", v], SEED);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&skey), 0o600);
    let skey_text = std::fs::read_to_string(&skey).unwrap();
    assert!(skey_text.contains("\"type\": \"KesSigningKey_ed25519_kes_2^6\""));
    assert!(std::fs::read_to_string(&vkey).unwrap().contains("\"type\": \"KesVerificationKey_ed25519_kes_2^6\""));

    // The envelope's vk equals the seed's.
    let vk = stdout(&run(&["vk", "--skey-file", s], ""));
    assert_eq!(vk, library_vk::<kes::Sum6>());
    // Sign from the envelope (key at period 0) at period 9; verify with the vkey file.
    let sig =
        stdout(&run(&["sign", "--skey-file", s, "--key-period", "0", "--period", "9", "--message-hex", "ab"], ""));
    let from_seed = stdout(&run(&["sign", "--scheme", "sum6", "--period", "9", "--message-hex", "ab"], SEED));
    assert_eq!(sig, from_seed);
    let ok = run(
        &[
            "verify",
            "--scheme",
            "sum6",
            "--vkey-file",
            v,
            "--period",
            "9",
            "--message-hex",
            "ab",
            "--signature-hex",
            &sig,
        ],
        "",
    );
    assert_eq!(ok.status.code(), Some(0));
    // A key cannot be evolved backwards.
    let back = run(&["sign", "--skey-file", s, "--key-period", "5", "--period", "4", "--message-hex", "ab"], "");
    assert_eq!(back.status.code(), Some(2));

    // Existing files are never replaced.
    let before = std::fs::read(&skey).unwrap();
    let again = run(&["keygen", "--out-skey", s, "--out-vkey", dir.path().join("other.vkey").to_str().unwrap()], SEED);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("KES_OUTPUT"));
    assert_eq!(std::fs::read(&skey).unwrap(), before);
    assert!(!dir.path().join("other.vkey").exists());

    // A corrupted envelope is refused without echoing its content.
    let corrupt = dir.path().join("bad.skey");
    std::fs::write(&corrupt, skey_text.replacen("590260", "590261", 1)).unwrap();
    let out = run(&["vk", "--skey-file", corrupt.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CRYPTO_"), "{err}");
    assert!(!err.contains(&skey_text[skey_text.find("5902").unwrap()..][..40]), "no key material in errors");
}

/// Key files are bounded (issue 14, item 9): an endless device or a file
/// past the envelope limit is refused with `KW_INPUT_TOO_LARGE` at once,
/// and the size the file system reports is not trusted either way (a pipe
/// reports 0 and still holds a key).
#[test]
fn key_files_are_read_up_to_their_limit_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = dir.path().join("huge.vkey");
    std::fs::File::create(&sparse).unwrap().set_len(2 << 20).unwrap();
    let t = std::time::Instant::now();
    for (flag, file) in
        [("--vkey-file", "/dev/zero"), ("--vkey-file", sparse.to_str().unwrap()), ("--skey-file", "/dev/zero")]
    {
        let out = if flag == "--vkey-file" {
            run(
                &[
                    "verify",
                    "--scheme",
                    "sum6",
                    flag,
                    file,
                    "--period",
                    "0",
                    "--message-hex",
                    "ab",
                    "--signature-hex",
                    "00",
                ],
                "",
            )
        } else {
            run(&["vk", flag, file], "")
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {file}: {err}");
        assert!(err.contains("KW_INPUT_TOO_LARGE") && err.contains("65536-byte limit"), "{err}");
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "refused slowly: {:?}", t.elapsed());

    // A signing key through a pipe (size 0 as far as `stat` knows) still reads.
    let skey = dir.path().join("kes.skey");
    let vkey = dir.path().join("kes.vkey");
    let out = run(&["keygen", "--out-skey", skey.to_str().unwrap(), "--out-vkey", vkey.to_str().unwrap()], SEED);
    assert!(out.status.success());
    let vk = run(&["vk", "--skey-file", "/dev/stdin"], &std::fs::read_to_string(&skey).unwrap());
    assert_eq!(stdout(&vk), library_vk::<kes::Sum6>(), "{}", String::from_utf8_lossy(&vk.stderr));
}
