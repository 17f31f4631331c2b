//! The audit log's format and its verifier (normative: docs/audit-log.md).
//!
//! One record per line (NDJSON):
//!
//! ```text
//! {"seq":N,"prev":"<hex>","hash":"<hex>","rec":{...}}
//! hash = SHA-256("keyward/audit/v1\0" ‖ N ‖ "\0" ‖ prev ‖ "\0" ‖ rec bytes)
//! ```
//!
//! `seq` counts from 1, `prev` is the previous record's `hash` (64 zeros for
//! the first), and the hash covers `rec` byte for byte as written. Editing,
//! inserting, deleting or reordering records breaks the chain at the first
//! record touched; truncating the tail is visible against an anchor (the last
//! hash, which `keywardd` reports in `status` and at shutdown).
//!
//! The daemon writes with [`seal`]; `keyward audit verify` and `explain` read
//! with [`verify`] and [`records_for`]. Both sides link this one module.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Domain separation for record hashes.
pub const DOMAIN: &[u8] = b"keyward/audit/v1\0";
/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn link_hash(seq: u64, prev: &str, rec: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_string().as_bytes());
    h.update(b"\0");
    h.update(prev.as_bytes());
    h.update(b"\0");
    h.update(rec);
    crate::hex(&h.finalize())
}

/// The line (with its newline) for record `rec` at `seq` after `prev`, and
/// its hash (the next record's `prev`).
pub fn seal(seq: u64, prev: &str, rec: &Value) -> (String, String) {
    let body = serde_json::to_string(rec).unwrap_or_else(|_| "{}".into());
    let hash = link_hash(seq, prev, body.as_bytes());
    (format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"hash\":\"{hash}\",\"rec\":{body}}}\n"), hash)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    seq: u64,
    prev: String,
    hash: String,
    #[serde(borrow)]
    rec: &'a RawValue,
}

/// The first broken record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// 1-based line number.
    pub line: usize,
    pub why: &'static str,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KW_AUDIT_CHAIN_BROKEN: line {}: {}", self.line, self.why)
    }
}

impl std::error::Error for ChainBreak {}

/// A verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// The hash of the last record ([`GENESIS`] for an empty log).
    pub head: String,
}

/// Verifies every record of `text`; the first failure is reported.
pub fn verify(text: &str) -> Result<Verified, ChainBreak> {
    let mut prev = GENESIS.to_string();
    let mut seq = 0u64;
    let mut rest = text;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        line_no += 1;
        let Some(end) = rest.find('\n') else {
            return Err(ChainBreak { line: line_no, why: "truncated record (no newline)" });
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let l: Line<'_> =
            serde_json::from_str(line).map_err(|_| ChainBreak { line: line_no, why: "not a chained record" })?;
        if l.seq != seq + 1 {
            return Err(ChainBreak { line: line_no, why: "sequence number out of order" });
        }
        if l.prev != prev {
            return Err(ChainBreak { line: line_no, why: "prev does not match the previous record's hash" });
        }
        if link_hash(l.seq, &l.prev, l.rec.get().as_bytes()) != l.hash {
            return Err(ChainBreak { line: line_no, why: "hash does not match the record" });
        }
        seq = l.seq;
        prev = l.hash;
    }
    Ok(Verified { records: seq, head: prev })
}

/// The `rec` objects of every record (of a verified log) whose
/// `request_id` is `request_id`, in order.
pub fn records_for(text: &str, request_id: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|mut v| v.get_mut("rec").map(Value::take))
        .filter(|r| r.get("request_id").and_then(Value::as_str) == Some(request_id))
        .collect()
}

/// The byte length of the longest prefix of `text` made of whole lines: what
/// survives when a crash tore the last write.
pub fn whole_lines_len(text: &[u8]) -> usize {
    text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(n: u64) -> String {
        let mut prev = GENESIS.to_string();
        let mut out = String::new();
        for i in 1..=n {
            let (line, h) = seal(i, &prev, &json!({"event": "x", "request_id": format!("r{}", i % 3), "n": i}));
            out.push_str(&line);
            prev = h;
        }
        out
    }

    #[test]
    fn a_sealed_log_verifies() {
        let v = verify(&log(10)).unwrap();
        assert_eq!(v.records, 10);
        assert_eq!(verify("").unwrap(), Verified { records: 0, head: GENESIS.into() });
        assert_eq!(records_for(&log(10), "r1").len(), 4);
    }

    #[test]
    fn every_kind_of_tampering_is_caught_at_the_first_touched_record() {
        let good = log(6);
        let lines: Vec<&str> = good.lines().collect();
        let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
        // An edited field.
        let edited = good.replacen("\"n\":3", "\"n\":4", 1);
        assert_eq!(verify(&edited).unwrap_err().line, 3);
        // A deleted record.
        let deleted = join(&[lines[0], lines[1], lines[3], lines[4]]);
        assert_eq!(verify(&deleted).unwrap_err().line, 3);
        // Two records swapped.
        let swapped = join(&[lines[0], lines[2], lines[1]]);
        assert_eq!(verify(&swapped).unwrap_err().line, 2);
        // A record re-hashed by someone without the rest of the chain.
        let forged = good.replacen(lines[1], seal(2, GENESIS, &json!({"event": "forged"})).0.trim_end(), 1);
        assert_eq!(verify(&forged).unwrap_err().line, 2);
        // A torn tail.
        assert_eq!(verify(&good[..good.len() - 5]).unwrap_err().why, "truncated record (no newline)");
        assert_eq!(whole_lines_len(&good.as_bytes()[..good.len() - 5]), good.len() - lines[5].len() - 1);
        // Whitespace inside rec is covered byte for byte.
        let spaced = good.replacen("{\"event\":\"x\"", "{ \"event\":\"x\"", 1);
        assert_eq!(verify(&spaced).unwrap_err().line, 1);
    }
}
