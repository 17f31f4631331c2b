//! Every input has a size limit and a stable error code (issue 14, item 9):
//! `--pin /dev/zero` once grew the client to 3.7 GB, and a 1 GiB
//! configuration or policy made `keywardd` abort on a 7 GB allocation.
//! Now each is refused after reading at most one byte past its limit, with
//! `KW_INPUT_TOO_LARGE`, quickly. Large files here are sparse (`set_len`):
//! nothing of that size is written.
//!
//! `keywardd` and `keyward-kes` are found beside `keyward` (`cargo build -p
//! signer -p kes-tool --bins`; `cargo test --workspace` builds them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_harness::{Daemon, Options, x402_intent};
use ipc::api::{Request, Response};

const KEYWARD: &str = env!("CARGO_BIN_EXE_keyward");

fn beside_keyward(name: &str) -> PathBuf {
    Path::new(KEYWARD).with_file_name(name)
}

/// A sparse file of `len` bytes in `dir`.
fn sparse(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `cmd` and checks it is refused with `KW_INPUT_TOO_LARGE` naming
/// `limit`, with exit status `exit`, within a few seconds.
fn refused_as_too_large(cmd: &mut Command, limit: u64, exit: i32) {
    let t = Instant::now();
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(exit), "{cmd:?}: {err}");
    assert!(err.contains("KW_INPUT_TOO_LARGE") && err.contains(&format!("{limit}-byte limit")), "{cmd:?}: {err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{cmd:?} took {:?}", t.elapsed());
}

#[test]
fn an_endless_or_huge_pin_file_is_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let huge = sparse(dir.path(), "huge.pub", 1 << 30);
    for pin in [Path::new("/dev/zero"), huge.as_path()] {
        // No signer is listening: the pin is refused before any connection.
        refused_as_too_large(
            Command::new(KEYWARD).arg("--socket").arg(dir.path().join("none.sock")).arg("--pin").arg(pin).arg("ping"),
            4096,
            1,
        );
    }
}

#[test]
fn client_files_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let zero = Path::new("/dev/zero");
    // x402 fetch: extra roots (1 MiB) and a request body from a file (8 MiB),
    // read before any network traffic.
    refused_as_too_large(
        Command::new(KEYWARD).args(["x402", "fetch", "https://api.example/x", "--cacert"]).arg(zero),
        1 << 20,
        1,
    );
    refused_as_too_large(
        Command::new(KEYWARD).args(["x402", "fetch", "https://api.example/x", "-d", "@/dev/zero"]),
        8 << 20,
        1,
    );
    // bundle: a proof or signature bundle (16 MiB).
    let huge = sparse(dir.path(), "PROOF.json", 32 << 20);
    refused_as_too_large(
        Command::new(KEYWARD).args(["bundle", "verify-proof"]).arg(&huge).arg("--signature").arg(zero),
        16 << 20,
        1,
    );
    // keyward kes (the keyward-kes helper): key envelopes (64 KiB), exit 2
    // as for any bad input of that tool.
    let huge_vkey = sparse(dir.path(), "kes.vkey", 2 << 20);
    for vkey in [zero, huge_vkey.as_path()] {
        refused_as_too_large(
            Command::new(KEYWARD)
                .args(["kes", "verify", "--scheme", "sum6", "--period", "0", "--message-hex", "00"])
                .args(["--signature-hex", "00", "--vkey-file"])
                .arg(vkey),
            65536,
            2,
        );
    }
}

#[test]
fn intents_are_bounded_by_what_one_request_record_carries() {
    let d = Daemon::start(&beside_keyward("keywardd"), &Options::default());
    match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { .. }) => {}
        other => panic!("key create: {other:?}"),
    }
    let keyward = |file: &Path| {
        let mut c = Command::new(KEYWARD);
        c.arg("--socket").arg(&d.socket).arg("--pin").arg(&d.pin_file).arg("--json").arg("submit").arg(file);
        c
    };
    refused_as_too_large(&mut keyward(Path::new("/dev/zero")), 48 * 1024, 1);
    // Exactly the limit (a valid intent padded with whitespace) is read and
    // decided; one byte more is refused, from a file or from stdin.
    let mut text = x402_intent("at-the-limit", 1_000).to_string().into_bytes();
    text.resize(48 * 1024, b' ');
    let at = d.dir.path().join("at.json");
    std::fs::write(&at, &text).unwrap();
    let out = keyward(&at).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    text.push(b' ');
    let over = d.dir.path().join("over.json");
    std::fs::write(&over, &text).unwrap();
    refused_as_too_large(&mut keyward(&over), 48 * 1024, 1);
    let out = keyward(Path::new("-"))
        .stdin(std::fs::File::open(&over).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("KW_INPUT_TOO_LARGE"), "{}", stderr(&out));
}

/// A configuration `keywardd` accepts, all paths under `dir`, naming `policy`.
fn config(dir: &Path, policy: &Path) -> String {
    let p = |name: &str| format!("{:?}", dir.join(name));
    format!(
        "[daemon]\nsocket = {}\npin_file = {}\naudit_log = {}\npolicy_file = {policy:?}\nstate_dir = {}\n\
         [vault]\ndir = {}\ntcti = \"swtpm:host=127.0.0.1,port=1\"\n[[peer]]\nuid = 0\nrole = \"admin\"\n",
        p("run/keywardd.sock"),
        p("signer.pub"),
        p("audit/audit.jsonl"),
        p("state"),
        p("vault"),
    )
}

#[test]
fn the_signer_refuses_a_huge_configuration_or_policy() {
    let keywardd = beside_keyward("keywardd");
    let dir = tempfile::tempdir().unwrap();
    // A 2 MiB configuration (its start valid TOML, the rest zeros).
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, daemon_harness::TEST_POLICY).unwrap();
    let cfg = dir.path().join("big.toml");
    std::fs::write(&cfg, config(dir.path(), &policy)).unwrap();
    std::fs::OpenOptions::new().write(true).open(&cfg).unwrap().set_len(2 << 20).unwrap();
    for sub in ["run", "init"] {
        refused_as_too_large(Command::new(&keywardd).arg(sub).arg("--config").arg(&cfg), 1 << 20, 1);
    }
    // A valid configuration naming a 2 MiB policy: refused before anything
    // is created (no vault, no TPM contact).
    let big_policy = sparse(dir.path(), "big-policy.toml", 2 << 20);
    let cfg = dir.path().join("keywardd.toml");
    std::fs::write(&cfg, config(dir.path(), &big_policy)).unwrap();
    refused_as_too_large(Command::new(&keywardd).args(["init", "--config"]).arg(&cfg), 1 << 20, 1);
    assert!(!dir.path().join("vault").exists(), "nothing was created");
}
