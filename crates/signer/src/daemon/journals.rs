//! Opening the two journals together: the anchor decides how they are
//! checked, both are verified against it, the ledger is replayed, the two
//! are cross-checked, and then the anchor is committed (rolled forward, or
//! written for the first time). Shared by `keywardd run` and `init`.

use std::path::PathBuf;
use std::sync::Mutex;

use policy::journal::{Position, Stream};
use serde_json::json;
use vault::Vault;

use super::anchor::{self, Anchorer, Sources, StartError};
use super::audit::AuditLog;
use super::config::Config;
use super::journal::{Journal, Trust, convert_legacy_ledger};
use super::ledger::Book;

/// Both journals, verified, and the anchorer that keeps them anchored.
#[derive(Debug)]
pub struct Journals {
    pub audit: AuditLog,
    pub ledger: Journal<Book>,
    pub anchorer: Anchorer,
    /// Set on the first anchored start: (audit, ledger) records adopted.
    pub adopted: Option<(u64, u64)>,
}

/// The ledger's path under `state_dir`.
pub fn ledger_path(config: &Config) -> PathBuf {
    config.daemon.state_dir.join("ledger.jsonl")
}

/// Opens, verifies and anchors both journals.
pub fn open(config: &Config, vault: &mut Vault) -> Result<Journals, StartError> {
    let plan = anchor::plan(vault, &config.daemon.audit_log)?;
    let key = plan.key.clone();
    let ledger_path = ledger_path(config);
    let positions = plan.anchor.as_ref().map(|a| (a.audit.clone(), a.ledger.clone()));
    let (audit_trust, ledger_trust) = match &positions {
        Some((a, l)) => (Trust::Anchored { anchor: a }, Trust::Anchored { anchor: l }),
        None => (Trust::Adopting, Trust::Adopting),
    };
    let mut converted = 0;
    if positions.is_none() {
        converted = convert_legacy_ledger(&ledger_path, &key).map_err(|e| {
            StartError::new("KW_LEDGER_OPEN_FAILED", format!("{}: converting: {e}", ledger_path.display()))
        })?;
    }
    let audit_path = &config.daemon.audit_log;
    let audit = AuditLog::open(audit_path, key.clone(), audit_trust)
        .map_err(|e| StartError::new(e.code(Stream::Audit), format!("{}: {e}", audit_path.display())))?;
    let mut replay_error = None;
    let opened = Journal::open(&ledger_path, Stream::Ledger, key.clone(), ledger_trust, |bodies| {
        Book::replay(bodies).unwrap_or_else(|e| {
            replay_error = Some(e);
            Book::default()
        })
    })
    .map_err(|e| StartError::new(e.code(Stream::Ledger), format!("{}: {e}", ledger_path.display())))?;
    if let Some(e) = replay_error {
        return Err(StartError::new("KW_LEDGER_CORRUPT", e));
    }
    if opened.torn_bytes > 0 {
        audit.record("ledger_tail_repaired", json!({"torn_bytes": opened.torn_bytes}));
    }
    let ledger = opened.journal;
    // Cross-check: the ledger's `signed` record is written before the
    // audit's, so an audit `signed` record without its ledger record means
    // the ledger lost records.
    let audited = audit.take_signed_at_startup();
    let orphans = ledger
        .with_state(|b| audited.iter().filter(|id| b.requests.get(*id).is_none_or(|e| e.signature.is_none())).count());
    if orphans > 0 {
        return Err(StartError::new(
            "KW_JOURNALS_DISAGREE",
            format!(
                "{orphans} signatures in the audit log are missing from the ledger: the ledger lost records \
                 (docs/runbooks/journal-integrity.md)"
            ),
        ));
    }
    // Signatures the ledger has and the audit log does not: the audit's
    // record was not durable yet when the last run stopped (no answer had
    // left). Recorded now, marked as recovered.
    let missing: Vec<serde_json::Value> = ledger.with_state(|b| {
        b.requests
            .values()
            .filter(|e| e.signature.is_some() && !audited.contains(&e.id))
            .map(|e| e.signed_record(Some("recovered")))
            .collect()
    });
    for m in missing {
        audit
            .try_record("signed", m)
            .map_err(|_| StartError::new("KW_AUDIT_WRITE_FAILED", "could not record a recovered signature"))?;
    }
    // Every signature in the ledger now has its durable audit record.
    ledger.with_state(|b| {
        for e in b.requests.values_mut() {
            e.audited = e.signature.is_some();
        }
    });
    let adopted = positions.is_none().then_some((audit.unsigned_at_startup, converted));
    let anchor = plan.establish(vault, audit.head(), ledger.durable())?;
    let anchorer = Anchorer::new(key, anchor::anchor_path(audit_path), anchor);
    Ok(Journals { audit, ledger, anchorer, adopted })
}

/// The anchor's inputs while only the journals and the vault exist (`init`).
#[derive(Debug)]
pub struct StartupSources<'a> {
    pub audit: &'a AuditLog,
    pub ledger: &'a Journal<Book>,
    pub vault: Mutex<&'a mut Vault>,
}

impl Sources for StartupSources<'_> {
    fn durable(&self) -> (Position, Position) {
        (self.audit.head(), self.ledger.durable())
    }

    fn with_vault<R>(&self, f: impl FnOnce(&mut Vault) -> R) -> R {
        let mut v = self.vault.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut v)
    }
}
