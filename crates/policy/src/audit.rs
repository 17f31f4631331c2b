//! Reading the audit log's records: the record format, the verifier and the
//! anchors are [`crate::journal`] (normative: docs/audit-log.md); this module
//! only picks a request's story out of a verified log for `keyward audit
//! explain`.

use serde_json::Value;

pub use crate::journal::{GENESIS, whole_lines_len};

/// The `rec` objects of every record (of a verified log) whose
/// `request_id` is `request_id`, in order.
pub fn records_for(text: &str, request_id: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|mut v| v.get_mut("rec").map(Value::take))
        .filter(|r| r.get("request_id").and_then(Value::as_str) == Some(request_id))
        .collect()
}
