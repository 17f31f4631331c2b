//! Attacks on the sealed vault at rest and on its TPM root: RT-011 (blob
//! tampering), RT-012 (rollback replay), RT-013 (TPM unavailable at sign
//! time), RT-016 (migration killed mid-way) and RT-017 (plaintext fallback).
//!
//! Each scenario starts its own software TPM (`swtpm`), builds a real vault
//! in its scratch directory with production settings (strict PCR policy,
//! ChaCha20-Poly1305, the real NV epoch counter), attacks it, and records
//! every refusal with its code.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use signer::fallback::{LegacyLocations, resolve};
use signer::legacy::CapturedEnv;
use swtpm_harness::Swtpm;
use vault::envelope::SecretKind;
use vault::tpm::{PcrPolicy, TpmConfig};
use vault::{SecretProvider, Vault, VaultConfig, VaultError};

use super::beside_me;
use crate::ledger::{Probe, Scenario};

fn config(tpm: &Swtpm, dir: &Path) -> VaultConfig {
    VaultConfig::new(dir.join("vault"), TpmConfig { tcti: tpm.tcti(), pcr_policy: Some(PcrPolicy::default()) })
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    let _ = getrandom::fill(&mut b);
    b
}

/// Starts a TPM and a vault holding one secret, or says why not.
fn setup(probe: &mut Probe) -> Result<(Swtpm, VaultConfig, Vault, [u8; 32]), String> {
    let tpm = Swtpm::try_start().map_err(|e| format!("cannot start swtpm: {e}"))?;
    let cfg = config(&tpm, probe.workdir());
    let mut v = Vault::init(cfg.clone()).map_err(|e| format!("vault init failed: {e}"))?;
    let secret = random32();
    v.put("agent-wallet", SecretKind::Ed25519Seed, &secret).map_err(|e| format!("put failed: {e}"))?;
    Ok((tpm, cfg, v, secret))
}

/// No file under `dir` holds `secret`.
fn no_plaintext(dir: &Path, secret: &[u8]) -> Result<usize, String> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| e.to_string())?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).map_err(|e| e.to_string())?;
                if bytes.windows(secret.len()).any(|w| w == secret) {
                    return Err(format!("plaintext in {}", p.display()));
                }
            }
        }
    }
    Ok(files)
}

#[derive(Debug)]
pub(super) struct BlobTamper;

impl Scenario for BlobTamper {
    fn id(&self) -> &'static str {
        "RT-011"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "every single-bit flip of the blob (header, nonce, ciphertext, tag) is refused",
            "a truncated blob is refused",
            "a flipped manifest byte is refused",
            "the intact blob still opens (positive control)",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let (_tpm, cfg, mut v, secret) = match setup(probe) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let path = cfg.dir.join("secrets/agent-wallet");
        let Ok(good) = std::fs::read(&path) else { return "cannot read the blob".into() };
        let mut opened = 0;
        let mut codes = std::collections::BTreeSet::new();
        for i in 0..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                if std::fs::write(&path, &bad).is_err() {
                    return "cannot write the blob".into();
                }
                match v.get("agent-wallet") {
                    Ok(_) => opened += 1,
                    Err(e) => {
                        codes.insert(e.deny_code().unwrap_or(e.code()).to_string());
                    }
                }
            }
        }
        probe.check(
            "every single-bit flip of the blob (header, nonce, ciphertext, tag) is refused",
            opened == 0,
            format!("{} flips, {opened} opened; refusal codes {codes:?}", good.len() * 2),
        );
        let _ = std::fs::write(&path, &good[..good.len() / 2]);
        let truncated = v.get("agent-wallet");
        probe.check(
            "a truncated blob is refused",
            truncated.is_err(),
            format!("{:?}", truncated.err().map(|e| e.code())),
        );
        let manifest = cfg.dir.join("manifest");
        let m = std::fs::read(&manifest).unwrap_or_default();
        let mut bad = m.clone();
        if let Some(b) = bad.get_mut(20) {
            *b ^= 1;
        }
        let _ = std::fs::write(&manifest, &bad);
        let r = v.get("agent-wallet");
        probe.check(
            "a flipped manifest byte is refused",
            matches!(r, Err(VaultError::ManifestTampered)),
            format!("{:?}", r.err().map(|e| e.code())),
        );
        let _ = std::fs::write(&manifest, &m);
        let _ = std::fs::write(&path, &good);
        let restored = v.get("agent-wallet").map(|s| s.bytes.as_slice() == secret).unwrap_or(false);
        probe.check("the intact blob still opens (positive control)", restored, "restored bytes open");
        format!("{} bit flips, truncation and manifest tamper all refused ({codes:?})", good.len() * 2)
    }
}

#[derive(Debug)]
pub(super) struct RollbackReplay;

impl Scenario for RollbackReplay {
    fn id(&self) -> &'static str {
        "RT-012"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "an older valid blob put back in place is refused with DENY_REPLAY",
            "the older blob with its older (authentic) manifest is refused: the TPM counter is ahead",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let (_tpm, cfg, mut v, _old) = match setup(probe) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let path = cfg.dir.join("secrets/agent-wallet");
        let old_blob = std::fs::read(&path).unwrap_or_default();
        let old_manifest = std::fs::read(cfg.dir.join("manifest")).unwrap_or_default();
        if v.put("agent-wallet", SecretKind::Ed25519Seed, &random32()).is_err() {
            return "second put failed".into();
        }
        let _ = std::fs::write(&path, &old_blob);
        let r = v.get("agent-wallet");
        probe.check(
            "an older valid blob put back in place is refused with DENY_REPLAY",
            matches!(&r, Err(VaultError::Rollback)),
            format!("{:?}", r.err().map(|e| e.to_string())),
        );
        let _ = std::fs::write(cfg.dir.join("manifest"), &old_manifest);
        drop(v);
        let r = Vault::open(cfg.clone());
        probe.check(
            "the older blob with its older (authentic) manifest is refused: the TPM counter is ahead",
            matches!(&r, Err(VaultError::Rollback)),
            format!("{:?}", r.err().map(|e| e.to_string())),
        );
        "blob-only and whole-state rollbacks refused with DENY_REPLAY".into()
    }
}

#[derive(Debug)]
pub(super) struct TpmUnavailable;

impl Scenario for TpmUnavailable {
    fn id(&self) -> &'static str {
        "RT-013"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "TPM gone: reading the signing key is refused with DENY_TPM_UNAVAILABLE",
            "TPM gone: writes are refused too",
            "PCR 7 changed: the vault refuses to unseal (no degraded path)",
            "a different TPM cannot unseal the KEK",
            "no plaintext key on disk after the failures",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let (mut tpm, cfg, mut v, secret) = match setup(probe) {
            Ok(s) => s,
            Err(e) => return e,
        };
        // 1. The TPM disappears (process killed) while the signer runs.
        tpm.kill();
        let r = v.get("agent-wallet");
        probe.check(
            "TPM gone: reading the signing key is refused with DENY_TPM_UNAVAILABLE",
            matches!(&r, Err(e) if e.code() == "DENY_TPM_UNAVAILABLE"),
            format!("{:?}", r.err().map(|e| e.to_string())),
        );
        let w = v.put("agent-wallet", SecretKind::Ed25519Seed, &random32());
        probe.check(
            "TPM gone: writes are refused too",
            matches!(&w, Err(e) if e.code() == "DENY_TPM_UNAVAILABLE"),
            format!("{:?}", w.err().map(|e| e.code())),
        );
        drop(v);
        // 2. The measured state changes (PCR 7 extended): unseal is denied.
        tpm.launch();
        let mut moved = cfg.clone();
        moved.tpm.tcti = tpm.tcti();
        let extended =
            vault::tpm::TpmKekProvider::connect(moved.tpm.clone()).and_then(|mut p| p.extend_pcr(pcr7(), [0x5a; 32]));
        let r = Vault::open(moved.clone());
        probe.check(
            "PCR 7 changed: the vault refuses to unseal (no degraded path)",
            extended.is_ok() && matches!(&r, Err(e) if e.code() == "DENY_TPM_UNAVAILABLE"),
            format!("{:?}", r.err().map(|e| e.to_string())),
        );
        // 3. Another TPM (cleared or replaced).
        let other = match Swtpm::try_start() {
            Ok(t) => t,
            Err(e) => return format!("cannot start a second swtpm: {e}"),
        };
        moved.tpm.tcti = other.tcti();
        let r = Vault::open(moved);
        probe.check(
            "a different TPM cannot unseal the KEK",
            matches!(&r, Err(e) if e.code() == "DENY_TPM_UNAVAILABLE"),
            format!("{:?}", r.err().map(|e| e.to_string())),
        );
        match no_plaintext(probe.workdir(), &secret) {
            Ok(n) => probe.check("no plaintext key on disk after the failures", true, format!("{n} files scanned")),
            Err(e) => probe.check("no plaintext key on disk after the failures", false, e),
        };
        "TPM killed, PCR changed and TPM replaced: every read and write denied with DENY_TPM_UNAVAILABLE".into()
    }
}

fn pcr7() -> vault::tpm::PcrHandle {
    vault::tpm::PcrHandle::Pcr7
}

#[derive(Debug)]
pub(super) struct MigrationInterrupted;

impl Scenario for MigrationInterrupted {
    fn id(&self) -> &'static str {
        "RT-016"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "keywardd migrate --apply was SIGKILLed mid-run",
            "a re-run completes",
            "every legacy secret is in the vault exactly once, readable and exact",
            "no legacy plaintext copy is left",
            "no plaintext in the vault directory",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let Some(keywardd) = beside_me("keywardd") else {
            return "keywardd is not installed beside keyward-redteam (build the signer crate)".into();
        };
        let tpm = match Swtpm::try_start() {
            Ok(t) => t,
            Err(e) => return format!("cannot start swtpm: {e}"),
        };
        let cfg = config(&tpm, probe.workdir());
        if let Err(e) = Vault::init(cfg.clone()) {
            return format!("vault init failed: {e}");
        }
        let legacy = probe.workdir().join("legacy");
        let _ = std::fs::create_dir_all(&legacy);
        let mut secrets: Vec<(String, [u8; 32])> = Vec::new();
        let add_keys = |round: usize, secrets: &mut Vec<(String, [u8; 32])>| -> bool {
            (0..3).all(|i| {
                let s = random32();
                let stem = format!("r{round}k{i}");
                secrets.push((format!("file.{stem}"), s));
                std::fs::write(legacy.join(format!("{stem}.key")), s).is_ok()
            })
        };
        let migrate = || {
            Command::new(&keywardd)
                .args(["migrate", "--apply", "--from"])
                .arg(&legacy)
                .arg("--vault")
                .arg(&cfg.dir)
                .args(["--tcti", &tpm.tcti()])
                .env("TSS2_LOG", "all+NONE")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        // One uninterrupted run, to know how long a run takes.
        if !add_keys(0, &mut secrets) {
            return "cannot write legacy keys".into();
        }
        let started = std::time::Instant::now();
        if !migrate().and_then(|mut c| c.wait()).is_ok_and(|s| s.success()) {
            return "an uninterrupted migration failed".into();
        }
        let full_ms = (started.elapsed().as_millis() as u64).max(1);
        let mut kills = 0;
        let rounds = 10;
        for round in 1..=rounds {
            if !add_keys(round, &mut secrets) {
                return "cannot write legacy keys".into();
            }
            let Ok(mut child) = migrate() else { return "cannot run keywardd".into() };
            let r = random32();
            let delay = u64::from(u16::from_le_bytes([r[0], r[1]])) % full_ms;
            std::thread::sleep(std::time::Duration::from_millis(delay));
            let _ = child.kill();
            if child.wait().map(|s| s.signal() == Some(9)).unwrap_or(false) {
                kills += 1;
            }
            tpm.flush_leftovers();
        }
        probe.check(
            "keywardd migrate --apply was SIGKILLed mid-run",
            kills >= 3,
            format!("{kills} of {rounds} runs killed at random moments within one run's length ({full_ms} ms)"),
        );
        // The operator re-runs it to completion.
        let done = Command::new(&keywardd)
            .args(["migrate", "--apply", "--from"])
            .arg(&legacy)
            .arg("--vault")
            .arg(&cfg.dir)
            .args(["--tcti", &tpm.tcti()])
            .env("TSS2_LOG", "all+NONE")
            .output();
        probe.check(
            "a re-run completes",
            done.as_ref().is_ok_and(|o| o.status.success()),
            format!("{:?}", done.map(|o| o.status)),
        );
        let mut v = match Vault::open(cfg.clone()) {
            Ok(v) => v,
            Err(e) => return format!("vault does not open after the interruptions: {e}"),
        };
        let mut wrong = Vec::new();
        for (name, s) in &secrets {
            match v.get(name) {
                Ok(got) if got.bytes.as_slice() == s => {}
                other => wrong.push(format!("{name}: {:?}", other.map(|_| "different bytes").map_err(|e| e.code()))),
            }
        }
        let listed = v.list().map(|l| l.len()).unwrap_or(0);
        probe.check(
            "every legacy secret is in the vault exactly once, readable and exact",
            wrong.is_empty() && listed == secrets.len(),
            format!("{} secrets, {listed} listed, wrong: {wrong:?}", secrets.len()),
        );
        let left = std::fs::read_dir(&legacy).map(|d| d.count()).unwrap_or(usize::MAX);
        probe.check("no legacy plaintext copy is left", left == 0, format!("{left} files left"));
        drop(v);
        let all_clean = secrets.iter().all(|(_, s)| no_plaintext(&cfg.dir, s).is_ok());
        probe.check("no plaintext in the vault directory", all_clean, "scanned for every secret");
        format!("{kills} SIGKILLs mid-migration; {} secrets present exactly once after re-run", secrets.len())
    }
}

#[derive(Debug)]
pub(super) struct PlaintextFallback;

impl Scenario for PlaintextFallback {
    fn id(&self) -> &'static str {
        "RT-017"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "a key present only in plaintext is refused with DENY_STRICT_MODE_FALLBACK, not read",
            "with the TPM gone the answer is DENY_TPM_UNAVAILABLE, never the plaintext copy",
            "a secret-bearing environment variable is wiped by keywardd before use",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let (mut tpm, _cfg, mut v, _secret) = match setup(probe) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let legacy = probe.workdir().join("legacy");
        let _ = std::fs::create_dir_all(&legacy);
        let plaintext = random32();
        let _ = std::fs::write(legacy.join("hot-wallet.key"), plaintext);
        let locations = LegacyLocations { paths: vec![legacy.clone()], env: CapturedEnv::default() };
        // 1. The key exists only as a plaintext legacy file.
        let r = resolve(&mut v, "file.hot-wallet", &locations);
        probe.check(
            "a key present only in plaintext is refused with DENY_STRICT_MODE_FALLBACK, not read",
            matches!(&r, Err(VaultError::StrictModeFallback)),
            format!("{:?}", r.err().map(|e| e.to_string())),
        );
        // 2. The vault fails (TPM gone) while a plaintext copy of a vaulted key exists.
        let _ = std::fs::write(legacy.join("agent-wallet.key"), random32());
        tpm.kill();
        let r = resolve(&mut v, "agent-wallet", &locations);
        probe.check(
            "with the TPM gone the answer is DENY_TPM_UNAVAILABLE, never the plaintext copy",
            matches!(&r, Err(e) if e.code() == "DENY_TPM_UNAVAILABLE"),
            format!("{:?}", r.err().map(|e| e.code())),
        );
        // 3. A secret in a legacy environment variable: the signer wipes it at start.
        let keywardd = beside_me("keywardd");
        let scrubbed = keywardd
            .as_ref()
            .map(|k| Command::new(k).arg("self-check").env("KEYWARD_SIGNING_KEY", "00".repeat(32)).output());
        let evidence = match &scrubbed {
            Some(Ok(o)) => String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.contains("env_scrubbed")).collect(),
            other => format!("{other:?}"),
        };
        probe.check(
            "a secret-bearing environment variable is wiped by keywardd before use",
            evidence.contains("KEYWARD_SIGNING_KEY"),
            evidence,
        );
        "plaintext fallback refused (DENY_STRICT_MODE_FALLBACK); TPM failure never degrades to plaintext".into()
    }
}
