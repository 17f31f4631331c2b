//! `keywardd run`: the daemon.
//!
//! Start-up, in this order, each step failing closed with a stable code:
//!
//! 1. process hardening (done first thing in `main`) and the strict-profile
//!    self-check (`KW_SELFCHECK_FAILED`);
//! 2. the configuration, parsed strictly ([`config`], `KW_CONFIG_INVALID`);
//! 3. the policy (`KW_POLICY_INVALID`) and the vault;
//! 4. both journals ([`journals`]): the anchor and the journal key from the
//!    vault ([`anchor`]), the audit log ([`audit`]) and the spend ledger
//!    ([`ledger`]) verified against the anchor (cut, emptied, deleted,
//!    edited or rolled back: `KW_AUDIT_TRUNCATED`, `KW_AUDIT_CHAIN_BROKEN`,
//!    `KW_LEDGER_TRUNCATED`, `KW_LEDGER_TAMPERED`, `KW_ANCHOR_*`), the
//!    ledger replayed so totals, pending approvals and idempotency survive,
//!    the two cross-checked (`KW_JOURNALS_DISAGREE`);
//! 5. the signer's identity key ([`identity`]), whose public half is written
//!    to the pin file; the vault stays open for signing ([`keys`]);
//! 6. the socket: its directory created 0750, or used as it is only if it
//!    is the daemon user's and not writable by others ([`socket_dir`],
//!    `KW_SOCKET_DIR_UNSAFE`), socket 0660, optional group
//!    (`KW_SOCKET_FAILED`; `KW_ALREADY_RUNNING` if another daemon answers);
//!    SIGTERM/SIGINT handlers, SIGXFSZ handled (a file-size limit is a
//!    failed write, not a kill);
//! 7. the sandbox ([`sandbox`]: Landlock and seccomp, `KW_SANDBOX_FAILED`);
//! 8. everything recorded so far anchored; the anchor and key-reaper threads
//!    (their death fails closed, [`watchdog`]); serving ([`server`]) until a
//!    signal, then a graceful shutdown: every session is closed, their keys
//!    are wiped as they drop, the identity key is wiped, the socket file is
//!    removed, and the `stopped` record is anchored.

pub mod admission;
pub mod anchor;
pub mod audit;
pub mod config;
pub mod diagrams;
mod fsutil;
pub mod identity;
mod intents;
pub mod journal;
pub mod journals;
pub mod keys;
pub mod ledger;
pub mod lifecycle;
pub mod refusals;
pub mod sandbox;
pub mod server;
pub mod socket_dir;
pub mod watchdog;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use secmem::hardening::{self, HardeningOutcome};
use serde_json::json;
use vault::tpm::{PcrPolicy, TpmConfig};
use vault::{Vault, VaultConfig};

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

/// Binds the socket with the modes the spec requires. The directory is
/// created 0750 if missing and otherwise used only if safe, never changed
/// ([`socket_dir`], `KW_SOCKET_DIR_UNSAFE`). A stale socket file is
/// replaced only when nothing answers on it.
fn bind(c: &Config) -> Result<UnixListener, (&'static str, String)> {
    let path = &c.daemon.socket;
    let dir = path.parent().ok_or(("KW_SOCKET_FAILED", "socket path has no directory".to_string()))?;
    socket_dir::prepare(dir, c.daemon.socket_group)?;
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

/// The anchor thread: retries journals that failed a write (a full disk
/// heals without a restart) and anchors new records every
/// [`anchor::ANCHOR_EVERY`], until the daemon stops.
fn anchor_loop(shared: &Shared) {
    let mut last = std::time::Instant::now();
    while !shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(journal::RETRY_EVERY);
        let healthy = shared.audit.retry() & shared.ledger.retry();
        if healthy && last.elapsed() >= anchor::ANCHOR_EVERY {
            last = std::time::Instant::now();
            let _ = shared.anchorer.cover_now(shared);
        }
    }
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
    let policy = match policy::Policy::load(&config.daemon.policy_file) {
        Ok(p) => p,
        Err(e) => return die("KW_POLICY_INVALID", &e.0),
    };
    let mut vault = match Vault::open(vault_config(&config)) {
        Ok(v) => v,
        Err(e) => return die(e.code(), e),
    };
    // The journals are checked against their anchor before anything is
    // appended: appending to a cut or rewritten log would launder it.
    let journals::Journals { audit, ledger, anchorer, adopted } = match journals::open(&config, &mut vault) {
        Ok(j) => j,
        Err(e) => return die(e.code, e.message),
    };
    if let Some((a, l)) = adopted {
        audit.record(
            "journals_anchored",
            json!({"adopted_audit_records": a, "adopted_ledger_records": l,
                   "journal_key": ipc::handshake::hex(&anchorer.journal_key())}),
        );
    }
    let ledger_path = journals::ledger_path(&config);
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
    // A write past the file-size limit must fail (EFBIG) and be handled as
    // a full disk is, not kill the daemon (SIGXFSZ's default action).
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, Arc::new(AtomicBool::new(false))) {
        return die("KW_SIGNAL_SETUP_FAILED", e);
    }
    let socket_dir: PathBuf = config.daemon.socket.parent().map(Path::to_path_buf).unwrap_or_default();
    // The anchor file is rewritten (temporary file and rename) beside the
    // audit log; the journals themselves are appended through open files.
    let audit_dir: PathBuf = config.daemon.audit_log.parent().map(Path::to_path_buf).unwrap_or_default();
    let writable = vec![socket_dir, config.vault.dir.clone(), audit_dir];
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
               "max_connections": config.daemon.max_connections,
               "max_sessions_per_uid": config.daemon.max_sessions_per_uid,
               "reserved_for_operators": config.daemon.reserved_for_operators()}),
    );
    let shared = Arc::new(Shared::new(config, identity, audit, stopping, (policy, ledger, keys, anchorer)));
    // Everything recorded so far is anchored before the first request.
    if let Err(e) = shared.anchorer.cover_now(&*shared) {
        let _ = std::fs::remove_file(&shared.config.daemon.socket);
        return die("KW_ANCHOR_FAILED", e.0);
    }
    // The anchor thread heals failed journals and anchors new records; its
    // death fails closed like the reaper's ([`watchdog`]).
    let anchor_thread = {
        let (mine, theirs) = (Arc::clone(&shared), Arc::clone(&shared));
        let on_death = move |d: &watchdog::Death| watchdog::fail_closed(&theirs, d);
        let body = move || {
            anchor_loop(&mine);
            Ok(())
        };
        watchdog::spawn("anchor", Arc::clone(&shared.stopping), on_death, body)
    };
    // The reaper keeps the unseal window: no key outlives it by more than
    // one reaper interval. If it dies, signing stops and the daemon shuts
    // down with status 70 for its supervisor to restart it ([`watchdog`]).
    let reaper = {
        let (mine, theirs) = (Arc::clone(&shared), Arc::clone(&shared));
        let on_death = move |d: &watchdog::Death| watchdog::fail_closed(&theirs, d);
        let body = move || {
            let interval = mine.keys.reap_interval();
            while !mine.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(interval);
                mine.keys.reap(false);
            }
            Ok(())
        };
        watchdog::spawn("key-reaper", Arc::clone(&shared.stopping), on_death, body)
    };
    let (reaper, anchor_thread) = match (reaper, anchor_thread) {
        (Ok(r), Ok(a)) => (r, a),
        (Err(e), _) | (_, Err(e)) => {
            shared.keys.stop_signing();
            shared.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = std::fs::remove_file(&shared.config.daemon.socket);
            return die("KW_THREAD_SPAWN_FAILED", format!("key-reaper or anchor: {e}"));
        }
    };
    server::serve(&listener, &shared);
    let _ = reaper.join();
    // Set before `stopping` was: no thread can die (for the watchdog) now.
    let exit = shared.watchdog.exit_code();
    shared.keys.reap(true);
    let l = shared.keys.lifetimes();
    drop(listener);
    let _ = std::fs::remove_file(&socket);
    let _ = anchor_thread.join();
    let head = shared.audit.head();
    shared.audit.record(
        "stopped",
        json!({"graceful": true, "keys_unsealed": l.unseals, "keys_wiped": l.wiped,
               "plaintext_lifetime_max_us": l.max_us as u64, "audit_records": head.records + 1,
               "audit_prev": head.head}),
    );
    // The last anchor covers the `stopped` record: a log cut before it no
    // longer matches the counter.
    if let Err(e) = shared.anchorer.cover_now(&*shared) {
        eprintln!("keywardd: KW_ANCHOR_FAILED: the stop could not be anchored: {}", e.0);
    }
    // Dropping the last reference wipes the identity key.
    drop(shared);
    exit
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
    let journals::Journals { audit, ledger, anchorer, adopted } = match journals::open(&config, &mut vault) {
        Ok(j) => j,
        Err(e) => return die(e.code, e.message),
    };
    let ledger_path = journals::ledger_path(&config);
    let journal_key = ipc::handshake::hex(&anchorer.journal_key());
    if let Some((a, l)) = adopted {
        audit.record(
            "journals_anchored",
            json!({"adopted_audit_records": a, "adopted_ledger_records": l, "journal_key": journal_key}),
        );
    }
    let report = json!({
        "ok": true, "vault": config.vault.dir.display().to_string(), "vault_created": vault_created,
        "identity_created": identity_created, "pin_file": config.daemon.pin_file.display().to_string(),
        "signer_key": ipc::handshake::hex(&ipc::StaticKey::public(&identity)),
        "policy_id": policy.id, "ledger": ledger_path.display().to_string(),
        "audit_log": config.daemon.audit_log.display().to_string(), "tcti": config.vault.tcti,
        "journal_key": journal_key,
    });
    let sources = journals::StartupSources { audit: &audit, ledger: &ledger, vault: std::sync::Mutex::new(&mut vault) };
    if audit.try_record("initialized", report.clone()).is_err() {
        return die("KW_AUDIT_WRITE_FAILED", config.daemon.audit_log.display());
    }
    if let Err(e) = anchorer.cover_now(&sources) {
        return die("KW_ANCHOR_FAILED", e.0);
    }
    if json_out {
        println!("{report}");
    } else {
        println!(
            "keyward initialized: vault {} ({}), signer key {} (pin file {}), policy {}, journal key {}",
            config.vault.dir.display(),
            if vault_created { "created" } else { "already present" },
            report["signer_key"].as_str().unwrap_or(""),
            config.daemon.pin_file.display(),
            policy.id,
            report["journal_key"].as_str().unwrap_or("")
        );
    }
    ExitCode::SUCCESS
}
