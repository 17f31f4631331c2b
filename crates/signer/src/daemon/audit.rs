//! The audit log: append-only NDJSON, every record hash-chained to the one
//! before it (format: docs/audit-log.md, code: `policy::audit`) and fsynced
//! before the daemon acts on it or answers (group commit, [`Journal`]).
//!
//! Fields are public values only: uids, pids, roles, session and request
//! ids, stable codes, intent hashes, amounts, payees. Free text (an intent's
//! rationale, a denial's reason) goes through `policy::redact` first.
//! Never a payload, never a key.
//!
//! At start-up the existing chain is verified; a broken chain refuses the
//! start (`KW_AUDIT_CHAIN_BROKEN`), because appending to it would launder
//! the tampering. A torn last line (a crash mid-write) is cut off and the
//! cut is itself recorded.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::journal::{Journal, JournalFailed};

/// The chain's tip.
#[derive(Debug)]
pub struct Chain {
    seq: u64,
    head: String,
}

#[derive(Debug)]
pub struct AuditLog {
    journal: Journal<Chain>,
    /// The records found at start-up, for reconciliation with the ledger.
    startup_text: std::sync::Mutex<Option<String>>,
}

/// Why the audit log could not be opened.
#[derive(Debug)]
pub enum AuditOpenError {
    Io(std::io::Error),
    Broken(policy::audit::ChainBreak),
}

impl std::fmt::Display for AuditOpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditOpenError::Io(e) => write!(f, "{e}"),
            AuditOpenError::Broken(b) => write!(f, "{b}"),
        }
    }
}

impl AuditOpenError {
    pub fn code(&self) -> &'static str {
        match self {
            AuditOpenError::Io(_) => "KW_AUDIT_OPEN_FAILED",
            AuditOpenError::Broken(_) => "KW_AUDIT_CHAIN_BROKEN",
        }
    }
}

impl AuditLog {
    pub fn open(path: &Path) -> Result<AuditLog, AuditOpenError> {
        let mut verdict = Ok(policy::audit::Verified { records: 0, head: policy::audit::GENESIS.into() });
        let opened = Journal::open(path, |text| {
            verdict = policy::audit::verify(text);
            let v = verdict.clone().unwrap_or(policy::audit::Verified { records: 0, head: String::new() });
            Chain { seq: v.records, head: v.head }
        })
        .map_err(AuditOpenError::Io)?;
        verdict.map_err(AuditOpenError::Broken)?;
        let log = AuditLog { journal: opened.journal, startup_text: std::sync::Mutex::new(Some(opened.existing)) };
        if opened.torn_bytes > 0 {
            log.record("audit_tail_repaired", serde_json::json!({"torn_bytes": opened.torn_bytes}));
        }
        Ok(log)
    }

    /// Appends `event` with `fields` (an object) and returns once it is
    /// durable. Failure is reported to stderr and returned.
    pub fn try_record(&self, event: &str, fields: Value) -> Result<(), JournalFailed> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut rec = Map::new();
        rec.insert("ts_ms".into(), Value::from(now.as_millis() as u64));
        rec.insert("event".into(), Value::from(event));
        if let Value::Object(f) = fields {
            rec.extend(f);
        }
        let rec = Value::Object(rec);
        let r = self.journal.append(|chain| {
            let (line, hash) = policy::audit::seal(chain.seq + 1, &chain.head, &rec);
            chain.seq += 1;
            chain.head = hash;
            (line.into_bytes(), ())
        });
        if r.is_err() {
            eprintln!("keywardd: KW_AUDIT_WRITE_FAILED: could not append event {event}");
        }
        r
    }

    /// [`AuditLog::try_record`] for events whose refusal happens anyway.
    pub fn record(&self, event: &str, fields: Value) {
        let _ = self.try_record(event, fields);
    }

    /// The request ids of every `signed` record written before this start
    /// (once; the text is dropped afterwards).
    pub fn take_signed_at_startup(&self) -> std::collections::HashSet<String> {
        let text = self.startup_text.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("\"event\":\"signed\""))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["rec"]["request_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// (records, head hash): the anchor `status` reports.
    pub fn head(&self) -> (u64, String) {
        self.journal.with_state(|c| (c.seq, c.head.clone()))
    }
}
