//! Connection-level audit events: one JSON object per line, appended to the
//! audit log and fsynced before the daemon acts on the event (a refused peer
//! is recorded before it is dropped). Fields are public values only: uids,
//! pids, roles, session ids, stable codes. Never a payload, never a key.
//!
//! The hash-chained decision log of the policy issue builds on this file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            super::fsutil::ensure_dir(dir, 0o750)?;
        }
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
        Ok(AuditLog { file: Mutex::new(file) })
    }

    /// Records `event` with `fields` (an object). Failure to write is
    /// reported to stderr; the caller still refuses what it was refusing.
    pub fn record(&self, event: &str, fields: Value) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut line = Map::new();
        line.insert("ts_ms".into(), Value::from(now.as_millis() as u64));
        line.insert("event".into(), Value::from(event));
        if let Value::Object(f) = fields {
            line.extend(f);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if f.write_all(text.as_bytes()).and_then(|()| f.sync_data()).is_err() {
            eprintln!("keywardd: KW_AUDIT_WRITE_FAILED: could not append event {event}");
        }
    }
}
