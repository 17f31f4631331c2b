//! The audit log: append-only NDJSON, every record hash-chained to the one
//! before it, signed with the journal key and anchored under a TPM counter
//! (format: docs/audit-log.md, code: `policy::journal`, [`super::anchor`]),
//! and fsynced before the daemon acts on it or answers (group commit,
//! [`Journal`]).
//!
//! Fields are public values only: uids, pids, roles, session and request
//! ids, stable codes, intent hashes, amounts, payees. Free text (an intent's
//! rationale, a denial's reason) goes through `policy::redact` first.
//! Never a payload, never a key.
//!
//! At start-up the log is verified against the anchor: a changed record, a
//! forged signature, a file cut below the anchor, emptied or deleted refuses
//! the start (`KW_AUDIT_CHAIN_BROKEN`, `KW_AUDIT_TRUNCATED`), because
//! appending to it would launder the tampering. A torn last line (a crash
//! mid-write) is cut off and the cut is itself recorded.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use policy::journal::{Position, Stream};
use serde_json::{Map, Value};

use super::anchor::JournalKey;
use super::journal::{Journal, JournalFailed, OpenError, Trust};

#[derive(Debug)]
pub struct AuditLog {
    journal: Journal<()>,
    /// Request ids of the `signed` records found at start-up, for the
    /// cross-check with the ledger (taken once).
    signed_at_startup: Mutex<Option<HashSet<String>>>,
    /// Records written before the journals were anchored.
    pub unsigned_at_startup: u64,
}

impl AuditLog {
    /// Opens and verifies the log.
    pub fn open(path: &Path, key: Arc<JournalKey>, trust: Trust<'_>) -> Result<AuditLog, OpenError> {
        let mut signed = HashSet::new();
        let opened = Journal::open(path, Stream::Audit, key, trust, |bodies| {
            for b in bodies {
                if b.contains("\"event\":\"signed\"")
                    && let Ok(v) = serde_json::from_str::<Value>(b)
                    && v["event"] == "signed"
                    && let Some(id) = v["request_id"].as_str()
                {
                    signed.insert(id.to_string());
                }
            }
        })?;
        let log = AuditLog {
            journal: opened.journal,
            signed_at_startup: Mutex::new(Some(signed)),
            unsigned_at_startup: opened.unsigned,
        };
        if opened.torn_bytes > 0 {
            log.record("audit_tail_repaired", serde_json::json!({"torn_bytes": opened.torn_bytes}));
        }
        Ok(log)
    }

    /// Appends `event` with `fields` (an object) and returns once it is
    /// durable. Failure is returned; the journal reports it once.
    pub fn try_record(&self, event: &str, fields: Value) -> Result<(), JournalFailed> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut rec = Map::new();
        rec.insert("ts_ms".into(), Value::from(now.as_millis() as u64));
        rec.insert("event".into(), Value::from(event));
        if let Value::Object(f) = fields {
            rec.extend(f);
        }
        let mut body = serde_json::to_vec(&Value::Object(rec)).unwrap_or_else(|_| b"{}".to_vec());
        body.push(b'\n');
        self.journal.append(|()| (body, ()))
    }

    /// [`AuditLog::try_record`] for events whose refusal happens anyway.
    pub fn record(&self, event: &str, fields: Value) {
        let _ = self.try_record(event, fields);
    }

    /// The request ids of every `signed` record written before this start
    /// (once).
    pub fn take_signed_at_startup(&self) -> HashSet<String> {
        self.signed_at_startup.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default()
    }

    /// The last durable record: what `status` reports and an anchor covers.
    pub fn head(&self) -> Position {
        self.journal.durable()
    }

    /// Retries a failed write; `true` when the log is healthy.
    pub fn retry(&self) -> bool {
        self.journal.retry()
    }

    /// Whether the log is refusing appends after a failed write.
    pub fn failed(&self) -> bool {
        self.journal.failed()
    }
}
