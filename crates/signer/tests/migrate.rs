//! The migration engine against a real software TPM: every legacy format,
//! dry run, apply, idempotent re-run; SIGKILL at every checkpoint and at
//! random moments (RT-016); no plaintext fallback (RT-017); and the operator
//! commands through the real `keywardd` binary.
//!
//! After every test the test's directories are scanned for the plaintext of
//! every legacy secret.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signer::fallback::{LegacyLocations, resolve};
use signer::legacy::CapturedEnv;
use signer::migrate::{self, Outcome, Plan};
use swtpm_harness::Swtpm;
use vault::tpm::{PcrPolicy, TpmConfig};
use vault::{SecretProvider, Vault, VaultConfig};

fn config(tcti: String, dir: &Path) -> VaultConfig {
    VaultConfig::new(dir.join("vault"), TpmConfig { tcti, pcr_policy: Some(PcrPolicy::default()) })
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap();
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Legacy files of every supported format; returns (vault name, secret bytes).
fn legacy_files(dir: &Path, with_kes: bool) -> Vec<(String, Vec<u8>)> {
    legacy_files_tagged(dir, with_kes, "")
}

/// As [`legacy_files`], with `tag` appended to every file stem (and name).
fn legacy_files_tagged(dir: &Path, with_kes: bool, tag: &str) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut out = Vec::new();
    let mut raw: [u8; 32] = random();
    // A binary key that looks like the start of JSON must still be a key.
    raw[0] = b'{';
    std::fs::write(dir.join(format!("raw{tag}.key")), raw).unwrap();
    out.push((format!("file.raw{tag}"), raw.to_vec()));

    let pay: [u8; 32] = random();
    let skey = format!(
        "{{\n    \"type\": \"PaymentSigningKeyShelley_ed25519\",\n    \"description\": \"Payment Signing Key\",\n    \"cborHex\": \"5820{}\"\n}}\n",
        hex(&pay)
    );
    std::fs::write(dir.join(format!("payment{tag}.skey")), skey).unwrap();
    out.push((format!("cardano.payment{tag}"), pay.to_vec()));

    let sol: [u8; 32] = random();
    let mut seed = secmem::MLockedSeed::<32>::new().unwrap();
    seed.as_mut_bytes().copy_from_slice(&sol);
    let vk = crypto::ed25519::Ed25519SigningKey::gen_key_m(&seed).unwrap().derive_verification_key_m();
    let numbers: Vec<String> = sol.iter().chain(vk.0.iter()).map(|b| b.to_string()).collect();
    std::fs::write(dir.join(format!("id{tag}.json")), format!("[{}]", numbers.join(","))).unwrap();
    out.push((format!("solana.id{tag}"), sol.to_vec()));

    if with_kes {
        use crypto::kes::KesAlgorithm;
        let mut kseed = secmem::MLockedSeed::<32>::new().unwrap();
        kseed.as_mut_bytes().copy_from_slice(&random::<32>());
        let key = crypto::kes::Sum6::gen_key(&kseed).unwrap();
        let text = crypto::envelope::write_sum6_signing_key(&key).unwrap();
        std::fs::write(dir.join(format!("pool{tag}.skey")), text.as_slice()).unwrap();
        let raw = crypto::direct::to_locked(&key).unwrap();
        out.push((format!("cardano.pool{tag}"), raw.as_slice().to_vec()));
    }
    out
}

fn assert_no_plaintext(dir: &Path, secrets: &[(String, Vec<u8>)]) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let text = String::from_utf8_lossy(&bytes).to_lowercase();
                for (name, s) in secrets {
                    assert!(!bytes.windows(s.len()).any(|w| w == &s[..]), "{name} in clear in {}", p.display());
                    assert!(!text.contains(&hex(s)), "{name} as hex in {}", p.display());
                }
            }
        }
    }
}

fn plan(paths: Vec<PathBuf>, apply: bool) -> Plan {
    Plan { paths, env: CapturedEnv::default(), apply }
}

fn check_all_migrated(v: &mut Vault, legacy: &Path, secrets: &[(String, Vec<u8>)]) {
    for (name, s) in secrets {
        let got = v.get(name).unwrap_or_else(|e| panic!("{name}: {e}; vault has {:?}", v.list()));
        assert_eq!(got.bytes.as_slice(), &s[..], "{name} readable and exact");
    }
    let names = v.list().unwrap();
    assert_eq!(names.len(), secrets.len(), "each secret exactly once: {names:?}");
    let left: Vec<_> = std::fs::read_dir(legacy).unwrap().collect();
    assert!(left.is_empty(), "legacy copies removed: {left:?}");
    let again = migrate::run(v, &plan(vec![legacy.to_path_buf()], true), |_| {}).unwrap();
    assert!(again.nothing_to_do() && again.items.is_empty(), "second run has nothing to do: {again:?}");
}

#[test]
fn every_format_migrates_once_and_a_second_run_has_nothing_to_do() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy");
    let secrets = legacy_files(&legacy, true);
    std::fs::write(legacy.join("notes.key"), b"not a key").unwrap();
    let mut v = Vault::init(config(tpm.tcti(), dir.path())).unwrap();

    let before = std::fs::read_dir(&legacy).unwrap().count();
    let dry = migrate::run(&mut v, &plan(vec![legacy.clone()], false), |_| {}).unwrap();
    assert_eq!(dry.items.len(), secrets.len());
    assert!(dry.items.iter().all(|(_, o)| *o == Outcome::WouldMigrate));
    assert_eq!(dry.unusable.len(), 1, "the non-key is reported: {:?}", dry.unusable);
    assert_eq!(std::fs::read_dir(&legacy).unwrap().count(), before, "dry run changes nothing");
    assert!(v.list().unwrap().is_empty());

    let done = migrate::run(&mut v, &plan(vec![legacy.clone()], true), |_| {}).unwrap();
    assert!(done.items.iter().all(|(_, o)| *o == Outcome::Migrated), "{done:?}");
    std::fs::remove_file(legacy.join("notes.key")).unwrap();
    check_all_migrated(&mut v, &legacy, &secrets);
    assert_no_plaintext(dir.path(), &secrets);
}

#[test]
fn a_conflicting_name_keeps_the_legacy_copy() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy");
    let secrets = legacy_files(&legacy, false);
    let mut v = Vault::init(config(tpm.tcti(), dir.path())).unwrap();
    v.put("file.raw", vault::envelope::SecretKind::Opaque, b"something else").unwrap();
    let r = migrate::run(&mut v, &plan(vec![legacy.clone()], true), |_| {}).unwrap();
    let raw = r.items.iter().find(|(c, _)| c.name == "file.raw").unwrap();
    assert_eq!(raw.1, Outcome::Conflict);
    assert!(legacy.join("raw.key").exists(), "legacy copy kept on conflict");
    assert_eq!(v.get("file.raw").unwrap().bytes.as_slice(), b"something else");
    assert_no_plaintext(&dir.path().join("vault"), &secrets);
}

/// Child entry: migrates the directory named in the environment and
/// SIGKILLs itself at the Nth checkpoint (migration steps and vault
/// transaction checkpoints counted together).
#[test]
#[ignore = "child process entry for the RT-016 crash tests"]
fn migrate_child() {
    let Ok(dir) = std::env::var("KW_MIG_DIR") else { return };
    let dir = PathBuf::from(dir);
    let tcti = std::env::var("KW_MIG_TCTI").unwrap();
    let crash_at: Option<usize> = std::env::var("KW_MIG_CRASH_AT").ok().map(|s| s.parse().unwrap());
    let mut v = Vault::open(config(tcti, &dir)).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let tick = {
        let seen = seen.clone();
        move || {
            if Some(seen.load(Ordering::SeqCst)) == crash_at {
                let _ = Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
                std::thread::sleep(std::time::Duration::from_secs(10));
            }
            seen.fetch_add(1, Ordering::SeqCst);
        }
    };
    let t = tick.clone();
    v.set_checkpoint_hook(Box::new(move |_| t()));
    migrate::run(&mut v, &plan(vec![dir.join("legacy")], true), |_| tick()).unwrap();
    println!("checkpoints={}", seen.load(Ordering::SeqCst));
}

fn run_child(dir: &Path, tpm: &Swtpm, crash_at: Option<usize>) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--ignored", "--exact", "migrate_child", "--nocapture", "--test-threads=1"])
        .env("KW_MIG_DIR", dir)
        .env("KW_MIG_TCTI", tpm.tcti())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some(n) = crash_at {
        c.env("KW_MIG_CRASH_AT", n.to_string());
    }
    c.spawn().unwrap()
}

/// RT-016 (deterministic half): killed at every checkpoint, then re-run:
/// every secret present exactly once and readable, no legacy copy left.
#[test]
fn killed_at_every_checkpoint_then_rerun_loses_nothing() {
    let tpm = Swtpm::start();
    // Count the checkpoints of an uninterrupted run.
    let total = {
        let dir = tempfile::tempdir().unwrap();
        legacy_files(&dir.path().join("legacy"), false);
        Vault::init(config(tpm.tcti(), dir.path())).unwrap();
        let out = run_child(dir.path(), &tpm, None).wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        let n: usize = stdout.split("checkpoints=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
        n
    };
    assert!(total >= 3 * 10, "5 migration steps and 5 vault checkpoints per secret: {total}");
    for at in 0..total {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("legacy");
        let secrets = legacy_files(&legacy, false);
        Vault::init(config(tpm.tcti(), dir.path())).unwrap();
        eprintln!("crash point {at}");
        let status = run_child(dir.path(), &tpm, Some(at)).wait().unwrap();
        assert_eq!(status.signal(), Some(9), "killed at checkpoint {at}");
        tpm.flush_leftovers();
        let mut v = Vault::open(config(tpm.tcti(), dir.path())).unwrap();
        migrate::run(&mut v, &plan(vec![legacy.clone()], true), |_| {}).unwrap();
        check_all_migrated(&mut v, &legacy, &secrets);
        drop(v);
        assert_no_plaintext(&dir.path().join("vault"), &secrets);
    }
}

/// RT-016 (random half): killed at random moments, many times over, with
/// new legacy secrets arriving each round, each run resuming from wherever
/// the last one stopped.
#[test]
fn killed_at_random_moments_many_times_loses_nothing() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy");
    Vault::init(config(tpm.tcti(), dir.path())).unwrap();
    // How long an uninterrupted run of one round takes.
    let mut secrets = legacy_files_tagged(&legacy, true, "-0");
    let started = std::time::Instant::now();
    assert!(run_child(dir.path(), &tpm, None).wait().unwrap().success());
    let full = started.elapsed().as_millis() as u64;
    let mut kills = 0;
    for round in 1..=12 {
        secrets.extend(legacy_files_tagged(&legacy, round % 3 == 0, &format!("-{round}")));
        let mut child = run_child(dir.path(), &tpm, None);
        let delay = u64::from(u16::from_le_bytes(random::<2>())) % full.max(1);
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        if child.wait().unwrap().signal() == Some(9) {
            kills += 1;
        }
        tpm.flush_leftovers();
        // Whatever happened, the vault opens and holds no wrong value.
        let mut v = Vault::open(config(tpm.tcti(), dir.path())).unwrap();
        for (name, s) in &secrets {
            if let Ok(got) = v.get(name) {
                assert_eq!(got.bytes.as_slice(), &s[..], "round {round}: {name}");
            }
        }
    }
    assert!(kills >= 3, "the test really interrupted runs ({kills} kills of 12)");
    let mut v = Vault::open(config(tpm.tcti(), dir.path())).unwrap();
    migrate::run(&mut v, &plan(vec![legacy.clone()], true), |_| {}).unwrap();
    check_all_migrated(&mut v, &legacy, &secrets);
    drop(v);
    assert_no_plaintext(dir.path(), &secrets);
}

/// RT-017: a secret that exists only as a legacy plaintext copy is refused
/// (`DENY_STRICT_MODE_FALLBACK`), never read; with the TPM gone the answer
/// is `DENY_TPM_UNAVAILABLE`, and migration writes nothing and keeps the
/// legacy copy.
#[test]
fn no_plaintext_fallback() {
    let mut tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy");
    let secrets = legacy_files(&legacy, false);
    let cfg = config(tpm.tcti(), dir.path());
    let mut v = Vault::init(cfg.clone()).unwrap();
    let locations = LegacyLocations { paths: vec![legacy.clone()], env: CapturedEnv::default() };
    let err = resolve(&mut v, "file.raw", &locations).unwrap_err();
    assert_eq!((err.code(), err.deny_code()), ("DENY_STRICT_MODE_FALLBACK", Some("DENY_STRICT_MODE_FALLBACK")));
    assert!(err.to_string().contains("migrate"), "{err}");
    assert_eq!(resolve(&mut v, "absent", &locations).unwrap_err().code(), "VAULT_NOT_FOUND");

    let before: Vec<Vec<u8>> =
        ["raw.key", "payment.skey", "id.json"].iter().map(|f| std::fs::read(legacy.join(f)).unwrap()).collect();
    let vault_before = std::fs::read(cfg.dir.join("manifest")).unwrap();
    tpm.kill();
    assert_eq!(resolve(&mut v, "file.raw", &locations).unwrap_err().code(), "DENY_TPM_UNAVAILABLE");
    let err = migrate::run(&mut v, &plan(vec![legacy.clone()], true), |_| {}).unwrap_err();
    assert_eq!(err.code(), "DENY_TPM_UNAVAILABLE");
    let after: Vec<Vec<u8>> =
        ["raw.key", "payment.skey", "id.json"].iter().map(|f| std::fs::read(legacy.join(f)).unwrap()).collect();
    assert_eq!(before, after, "legacy copies untouched");
    assert_eq!(std::fs::read(cfg.dir.join("manifest")).unwrap(), vault_before);
    drop(v);
    tpm.launch();
    let mut v = Vault::open(config(tpm.tcti(), dir.path())).unwrap();
    migrate::run(&mut v, &plan(vec![legacy.clone()], true), |_| {}).unwrap();
    assert_eq!(resolve(&mut v, "file.raw", &locations).unwrap().bytes.as_slice(), &secrets[0].1[..]);
    assert_no_plaintext(&cfg.dir, &secrets);
}

/// The operator commands through the real binary: secrets on stdin, JSON
/// out, stable codes on refusal, and the env-var source.
#[test]
fn keywardd_vault_and_migrate_commands() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy");
    let secrets = legacy_files(&legacy, false);
    let vault_dir = dir.path().join("vault");
    let bin = env!("CARGO_BIN_EXE_keywardd");
    let run = |args: &[&str], stdin: Option<&[u8]>, env: Option<(&str, &str)>| {
        use std::io::Write;
        let mut c = Command::new(bin);
        c.args(args)
            .args(["--vault", vault_dir.to_str().unwrap(), "--tcti", &tpm.tcti()])
            .env("TSS2_LOG", "all+NONE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(
        run(&["vault", "status"], None, None).2.trim(),
        "keywardd: VAULT_NOT_INITIALISED: no vault here; run `keyward vault init`"
    );
    assert!(run(&["vault", "init"], None, None).1.contains("vault_initialised"));
    let token: [u8; 24] = random();
    let (code, out, _) = run(&["vault", "put", "api-token"], Some(&token), None);
    assert_eq!(code, Some(0), "{out}");
    let (_, out, _) = run(&["vault", "verify", "api-token"], None, None);
    assert!(out.contains("\"opens\":true") && out.contains("\"kind\":\"opaque\""), "{out}");
    let (code, _, err) = run(&["vault", "verify", "missing"], None, None);
    assert_eq!((code, err.trim()), (Some(1), "keywardd: VAULT_NOT_FOUND: no such secret"));

    let env_secret = hex(&random::<32>());
    let (code, out, _) = run(
        &["migrate", "--dry-run", "--from", legacy.to_str().unwrap(), "--env", "LEGACY_SEED"],
        None,
        Some(("LEGACY_SEED", &env_secret)),
    );
    assert_eq!(code, Some(0));
    assert_eq!(out.matches("would_migrate").count(), 4, "{out}");
    let (code, out, _) = run(
        &["migrate", "--apply", "--from", legacy.to_str().unwrap(), "--env", "LEGACY_SEED"],
        None,
        Some(("LEGACY_SEED", &env_secret)),
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("sealed_unset_the_variable") && out.matches("\"migrated\"").count() == 3, "{out}");
    let (_, out, _) = run(&["migrate", "--apply", "--from", legacy.to_str().unwrap()], None, None);
    assert!(out.contains("nothing_to_do"), "{out}");
    let (_, out, _) = run(&["vault", "list"], None, None);
    assert_eq!(out.lines().count(), 5, "{out}");
    let (_, out, _) = run(&["vault", "rotate-dek", "--batch", "2"], None, None);
    assert!(out.contains("\"resealed\":5"), "{out}");
    let mut all = secrets.clone();
    all.push(("api-token".into(), token.to_vec()));
    all.push(("env".into(), env_secret.into_bytes()));
    assert_no_plaintext(dir.path(), &all);
}
