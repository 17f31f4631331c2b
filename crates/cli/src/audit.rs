//! `keyward audit verify|explain`: read the signer's audit log directly (the
//! operator can read it; no daemon needed, so a stopped or compromised
//! daemon cannot lie about its own history).
//!
//! `verify` checks the whole hash chain (`policy::audit`) and reports the
//! first broken record. `explain` verifies first (an explanation from a
//! tampered log would be worthless), then reconstructs why a request was
//! auto-approved, prompted or denied, and what happened after.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check every record's hash chain; exit 1 at the first broken record.
    Verify {
        #[arg(long, default_value = "/var/lib/keyward/audit/audit.jsonl")]
        log: PathBuf,
    },
    /// Why a request ended as it did, from the audit log.
    Explain {
        request_id: String,
        #[arg(long, default_value = "/var/lib/keyward/audit/audit.jsonl")]
        log: PathBuf,
    },
}

fn read(log: &Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(log)
        .map_err(|e| crate::fail("KW_AUDIT_READ_FAILED", &format!("{}: {}", log.display(), e.kind())))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("-")
}

/// One record of a request's story, in words.
fn narrate(r: &Value) -> String {
    let ts = r.get("ts_ms").and_then(Value::as_u64).unwrap_or(0);
    let what = match s(r, "event") {
        "intent_decided" => {
            let why = match s(r, "decision") {
                "auto_approve" => "auto-approved: inside the autonomous envelope",
                "approve_user_path" => "approved on the user path: a person initiated it",
                "prompt" => "prompted: a person must approve",
                "deny" => "denied",
                "expire" => "expired",
                _ => "decided",
            };
            let trace = r
                .get("trace")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
            format!(
                "{why} ({} at layer {}, rule {}; policy {}); {} {} {} to {} via {}; caller uid {} ({}){}",
                s(r, "reason_code"),
                s(r, "layer"),
                s(r, "detail"),
                s(r, "policy_id"),
                s(r, "action"),
                s(r, "amount_atomic"),
                s(r, "asset_id"),
                s(r, "payee"),
                s(r, "payment_authority"),
                r.get("uid").map(Value::to_string).unwrap_or_default(),
                s(r, "role"),
                trace.map(|t| format!("; checks: {t}")).unwrap_or_default()
            )
        }
        "approved" => format!("approved by uid {} ({}) for intent {}", r["uid"], s(r, "role"), s(r, "intent_hash")),
        "rejected" => format!("denied by uid {} ({}): {}", r["uid"], s(r, "role"), s(r, "reason")),
        "approval_refused" => format!("an approval by uid {} was refused: {}", r["uid"], s(r, "code")),
        "transition_refused" => {
            format!("refused transition {} from {}: {}", s(r, "input"), s(r, "from"), s(r, "code"))
        }
        "signed" => format!("signed with key {} (public key {})", s(r, "key"), s(r, "public_key")),
        "signing_failed" | "recovered_failed" => format!("failed: {} ({})", s(r, "reason_code"), s(r, "detail")),
        "idempotent_replay" => format!("a resubmission returned request {} unchanged", s(r, "original_request_id")),
        "settled" => format!("reported settled: {}", r["settled"]),
        other => other.to_string(),
    };
    format!("{ts} {what}")
}

pub(crate) fn run(cmd: &AuditCommand, json_out: bool) -> ExitCode {
    let (log, id) = match cmd {
        AuditCommand::Verify { log } => (log, None),
        AuditCommand::Explain { request_id, log } => (log, Some(request_id)),
    };
    let text = match read(log) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let verified = match policy::audit::verify(&text) {
        Ok(v) => v,
        Err(b) => {
            if json_out {
                println!("{}", json!({"ok": false, "code": "KW_AUDIT_CHAIN_BROKEN", "line": b.line, "why": b.why}));
            }
            return crate::fail("KW_AUDIT_CHAIN_BROKEN", &format!("{}: line {}: {}", log.display(), b.line, b.why));
        }
    };
    let Some(id) = id else {
        if json_out {
            println!("{}", json!({"ok": true, "records": verified.records, "head": verified.head}));
        } else {
            println!("audit log intact: {} records, head {}", verified.records, verified.head);
        }
        return ExitCode::SUCCESS;
    };
    // A resubmission's record names the original request too.
    let mut records = policy::audit::records_for(&text, id);
    records.extend(
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|mut v| v.get_mut("rec").map(Value::take))
            .filter(|r| r.get("original_request_id").and_then(Value::as_str) == Some(id.as_str())),
    );
    records.sort_by_key(|r| r.get("ts_ms").and_then(Value::as_u64).unwrap_or(0));
    if records.is_empty() {
        return crate::fail("API_REQUEST_NOT_FOUND", "the audit log has no record of this request");
    }
    if json_out {
        let story: Vec<String> = records.iter().map(narrate).collect();
        println!("{}", json!({"ok": true, "request_id": id, "records": records, "story": story}));
    } else {
        println!("request {id} (audit log verified, {} records):", verified.records);
        for r in &records {
            println!("  {}", narrate(r));
        }
    }
    ExitCode::SUCCESS
}
