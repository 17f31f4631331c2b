//! `keywardd run`: the daemon.
//!
//! Start-up, in this order, each step failing closed with a stable code:
//!
//! 1. process hardening (done first thing in `main`) and the strict-profile
//!    self-check (`KW_SELFCHECK_FAILED`);
//! 2. the configuration, parsed strictly ([`config`], `KW_CONFIG_INVALID`);
//! 3. the audit log ([`audit`]; a broken chain is `KW_AUDIT_CHAIN_BROKEN`),
//!    the policy (`KW_POLICY_INVALID`) and the spend ledger ([`ledger`],
//!    `KW_LEDGER_CORRUPT`), replayed so totals and idempotency survive;
//! 4. the vault, and from it the signer's identity key ([`identity`]), whose
//!    public half is written to the pin file; the vault stays open for
//!    signing ([`keys`]);
//! 5. the socket: directory 0750, socket 0660, optional group
//!    (`KW_SOCKET_FAILED`; `KW_ALREADY_RUNNING` if another daemon answers);
//! 6. SIGTERM/SIGINT handlers;
//! 7. the sandbox ([`sandbox`]: Landlock and seccomp, `KW_SANDBOX_FAILED`);
//! 8. serving ([`server`]) until a signal, then a graceful shutdown: every
//!    session is closed, their keys are wiped as they drop, the identity key
//!    is wiped, the socket file is removed.

pub mod audit;
pub mod config;
pub mod diagrams;
mod fsutil;
pub mod identity;
mod intents;
pub mod journal;
pub mod keys;
pub mod ledger;
pub mod lifecycle;
pub mod sandbox;
pub mod server;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use secmem::hardening::{self, HardeningOutcome};
use serde_json::{Value, json};
use vault::tpm::{PcrPolicy, TpmConfig};
use vault::{Vault, VaultConfig};

use audit::AuditLog;
use config::Config;
use identity::LockedIdentity;
use server::Shared;

fn die(code: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("keywardd: {code}: {message}");
    ExitCode::from(1)
}

fn vault_config(c: &Config) -> VaultConfig {
    let pcr_policy = (!c.vault.compat_no_pcr).then(PcrPolicy::default);
    let mut v = VaultConfig::new(&c.vault.dir, TpmConfig { tcti: c.vault.tcti.clone(), pcr_policy });
    if c.vault.compat_aes_gcm {
        v.cipher = vault::envelope::CipherPolicy::Compatibility;
    }
    v
}

/// Binds the socket with the modes the spec requires. A stale socket file is
/// replaced only when nothing answers on it.
fn bind(c: &Config) -> Result<UnixListener, (&'static str, String)> {
    let path = &c.daemon.socket;
    let dir = path.parent().ok_or(("KW_SOCKET_FAILED", "socket path has no directory".to_string()))?;
    fsutil::ensure_dir(dir, 0o750).map_err(|e| ("KW_SOCKET_FAILED", format!("{}: {e}", dir.display())))?;
    if let Some(gid) = c.daemon.socket_group {
        rustix::fs::chown(dir, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|e| ("KW_SOCKET_FAILED", format!("chown {}: {e}", dir.display())))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(("KW_SOCKET_FAILED", format!("{} exists and is not a socket", path.display())));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(("KW_ALREADY_RUNNING", format!("a daemon already answers on {}", path.display())));
        }
        std::fs::remove_file(path).map_err(|e| ("KW_SOCKET_FAILED", e.to_string()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| ("KW_SOCKET_FAILED", format!("{}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| ("KW_SOCKET_FAILED", e.to_string()))?;
    if let Some(gid) = c.daemon.socket_group {
        rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|e| ("KW_SOCKET_FAILED", format!("chown: {e}")))?;
    }
    listener.set_nonblocking(true).map_err(|e| ("KW_SOCKET_FAILED", e.to_string()))?;
    Ok(listener)
}

/// Runs the daemon with the configuration at `path`.
pub fn run(path: &Path, outcome: &HardeningOutcome) -> ExitCode {
    let report = hardening::self_check(secmem::global());
    let failures = report.failures();
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|c| c.name).collect();
        return die("KW_SELFCHECK_FAILED", format!("mandatory controls off: {}", names.join(", ")));
    }
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return die("KW_CONFIG_INVALID", &e.0),
    };
    let audit = match AuditLog::open(&config.daemon.audit_log) {
        Ok(a) => a,
        Err(e) => return die(e.code(), format!("{}: {e}", config.daemon.audit_log.display())),
    };
    let policy = match policy::Policy::load(&config.daemon.policy_file) {
        Ok(p) => p,
        Err(e) => return die("KW_POLICY_INVALID", &e.0),
    };
    let mut replay_error = None;
    let ledger_path = config.daemon.state_dir.join("ledger.jsonl");
    let ledger = match journal::Journal::open(&ledger_path, |text| {
        ledger::Book::replay(text).unwrap_or_else(|e| {
            replay_error = Some(e);
            ledger::Book::default()
        })
    }) {
        Ok(o) => {
            if let Some(e) = replay_error {
                return die("KW_LEDGER_CORRUPT", e);
            }
            if o.torn_bytes > 0 {
                audit.record("ledger_tail_repaired", json!({"torn_bytes": o.torn_bytes}));
            }
            o.journal
        }
        Err(e) => return die("KW_LEDGER_OPEN_FAILED", format!("{}: {e}", ledger_path.display())),
    };
    // Requests approved but never signed when the last run stopped: nothing
    // left the daemon for them, so they fail and release their reservation.
    let stuck = ledger.with_state(|b| std::mem::take(&mut b.recovered_failed));
    for id in &stuck {
        let r = ledger::Record::Failed {
            id: id.clone(),
            code: policy::ReasonCode::FailSigning,
            detail: "keywardd stopped before signing".into(),
        };
        if ledger.append(|b| (b.record(r), ())).is_err() {
            return die("KW_LEDGER_WRITE_FAILED", ledger_path.display());
        }
        audit.record("recovered_failed", json!({"request_id": id, "reason_code": "FAIL_SIGNING"}));
    }
    // A crash between the ledger's `signed` record and the audit's leaves a
    // signature the audit log does not show yet (no answer had left: the
    // audit record precedes it). Record those now, marked as recovered.
    let audited = audit.take_signed_at_startup();
    let missing: Vec<Value> = ledger.with_state(|b| {
        b.requests
            .values()
            .filter(|e| e.signature.is_some() && !audited.contains(&e.id))
            .map(|e| {
                json!({"request_id": e.id, "intent_hash": e.hash, "key": e.intent.key, "public_key": e.public_key,
                       "signature": e.signature, "recovered": true})
            })
            .collect()
    });
    for m in missing {
        audit.record("signed", m);
    }
    let replayed = ledger.with_state(|b| b.replayed);
    audit.record(
        "policy_loaded",
        json!({"policy_id": policy.id, "profile": format!("{:?}", policy.profile).to_lowercase(),
               "warnings": policy.warnings, "ledger_requests": replayed, "recovered_failed": stuck.len()}),
    );
    let scrubbed = &outcome.scrubbed_env;
    audit.record("starting", json!({"pid": std::process::id(), "env_scrubbed": scrubbed}));
    if config.vault.compat_no_pcr || config.vault.compat_aes_gcm || config.ipc.compat_aes_gcm {
        audit.record(
            "compat_mode",
            json!({"vault_no_pcr": config.vault.compat_no_pcr, "vault_aes_gcm": config.vault.compat_aes_gcm,
                   "ipc_aes_gcm": config.ipc.compat_aes_gcm}),
        );
    }
    let mut vault = match Vault::open(vault_config(&config)) {
        Ok(v) => v,
        Err(e) => return die(e.code(), e),
    };
    let identity = match LockedIdentity::load_or_create(&mut vault) {
        Ok((id, created)) => {
            audit.record("identity_loaded", json!({"created": created}));
            id
        }
        Err(e) => return die(e.code(), e),
    };
    let keys = keys::Keys::new(vault, std::time::Duration::from_millis(config.signing.unseal_window_ms));
    match keys.load_directory() {
        Ok((n, unusable)) => {
            for (entry, why) in unusable {
                audit.record("key_unusable", json!({"entry": entry, "detail": why}));
            }
            audit.record("keys_loaded", json!({"keys": n}));
        }
        Err(e) => return die(e.code.as_str(), e.detail),
    }
    if let Err(e) = identity.write_pin(&config.daemon.pin_file) {
        return die("KW_PIN_WRITE_FAILED", format!("{}: {e}", config.daemon.pin_file.display()));
    }
    let listener = match bind(&config) {
        Ok(l) => l,
        Err((code, msg)) => return die(code, msg),
    };
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stopping)) {
            return die("KW_SIGNAL_SETUP_FAILED", e);
        }
    }
    let socket_dir: PathBuf = config.daemon.socket.parent().map(Path::to_path_buf).unwrap_or_default();
    let writable = vec![socket_dir, config.vault.dir.clone()];
    let sandbox = match sandbox::enter(&writable, &config.vault.tcti) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&config.daemon.socket);
            return die("KW_SANDBOX_FAILED", e.0);
        }
    };
    let socket = config.daemon.socket.clone();
    audit.record(
        "listening",
        json!({"socket": socket.display().to_string(), "landlock": sandbox.landlock, "seccomp": sandbox.seccomp,
               "max_connections": config.daemon.max_connections}),
    );
    let shared = Arc::new(Shared::new(config, identity, audit, stopping, (policy, ledger, keys)));
    // The reaper keeps the unseal window: no key outlives it by more than
    // one reaper interval.
    let reaper = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new().name("key-reaper".into()).spawn(move || {
            let interval = shared.keys.reap_interval();
            while !shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(interval);
                shared.keys.reap(false);
            }
        })
    };
    server::serve(&listener, &shared);
    if let Ok(r) = reaper {
        let _ = r.join();
    }
    shared.keys.reap(true);
    let l = shared.keys.lifetimes();
    drop(listener);
    let _ = std::fs::remove_file(&socket);
    let (records, head) = shared.audit.head();
    shared.audit.record(
        "stopped",
        json!({"graceful": true, "keys_unsealed": l.unseals, "keys_wiped": l.wiped,
               "plaintext_lifetime_max_us": l.max_us as u64, "audit_records": records + 1, "audit_prev": head}),
    );
    // Dropping the last reference wipes the identity key.
    drop(shared);
    ExitCode::SUCCESS
}

/// `keywardd init --config PATH`: everything `run` needs, created once.
///
/// Creates (or, if present, opens and checks) the vault sealed under the
/// configured TPM, the signer's identity key and pin file, the spend ledger
/// and the audit log, after validating the configuration and the policy.
/// Safe to re-run: nothing that exists is replaced.
pub fn init(path: &Path, json_out: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return die("KW_CONFIG_INVALID", &e.0),
    };
    let policy = match policy::Policy::load(&config.daemon.policy_file) {
        Ok(p) => p,
        Err(e) => return die("KW_POLICY_INVALID", &e.0),
    };
    let audit = match AuditLog::open(&config.daemon.audit_log) {
        Ok(a) => a,
        Err(e) => return die(e.code(), format!("{}: {e}", config.daemon.audit_log.display())),
    };
    let (mut vault, vault_created) = match Vault::init(vault_config(&config)) {
        Ok(v) => (v, true),
        Err(vault::VaultError::AlreadyInitialised) => match Vault::open(vault_config(&config)) {
            Ok(v) => (v, false),
            Err(e) => return die(e.code(), e),
        },
        Err(e) => return die(e.code(), e),
    };
    let (identity, identity_created) = match LockedIdentity::load_or_create(&mut vault) {
        Ok(x) => x,
        Err(e) => return die(e.code(), e),
    };
    if let Err(e) = identity.write_pin(&config.daemon.pin_file) {
        return die("KW_PIN_WRITE_FAILED", format!("{}: {e}", config.daemon.pin_file.display()));
    }
    let ledger_path = config.daemon.state_dir.join("ledger.jsonl");
    if let Err(e) = journal::Journal::open(&ledger_path, |_| ()) {
        return die("KW_LEDGER_OPEN_FAILED", format!("{}: {e}", ledger_path.display()));
    }
    let report = json!({
        "ok": true, "vault": config.vault.dir.display().to_string(), "vault_created": vault_created,
        "identity_created": identity_created, "pin_file": config.daemon.pin_file.display().to_string(),
        "signer_key": ipc::handshake::hex(&ipc::StaticKey::public(&identity)),
        "policy_id": policy.id, "ledger": ledger_path.display().to_string(),
        "audit_log": config.daemon.audit_log.display().to_string(), "tcti": config.vault.tcti,
    });
    audit.record("initialized", report.clone());
    if json_out {
        println!("{report}");
    } else {
        println!(
            "keyward initialized: vault {} ({}), signer key {} (pin file {}), policy {}",
            config.vault.dir.display(),
            if vault_created { "created" } else { "already present" },
            report["signer_key"].as_str().unwrap_or(""),
            config.daemon.pin_file.display(),
            policy.id
        );
    }
    ExitCode::SUCCESS
}
