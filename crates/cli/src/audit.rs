//! `keyward audit verify|explain`: read the signer's audit log directly (the
//! operator can read it; no daemon needed, so a stopped or compromised
//! daemon cannot lie about its own history).
//!
//! `verify` checks every record's chain link and signature against the
//! anchor (`policy::journal`; public material only: the anchor file and the
//! journal key) and reports the first broken record, or a log cut below its
//! anchor. `explain` verifies first (an explanation from a
//! tampered log would be worthless), then reconstructs why a request was
//! auto-approved, prompted or denied, and what happened after.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use policy::journal::{Anchor, JournalError, Rules, Stream, Verifier};

use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check every record's chain link and signature, and that the log
    /// reaches its anchor; exit 1 at the first broken record or when records
    /// were cut.
    Verify {
        #[arg(long, default_value = "/var/lib/keyward/audit/audit.jsonl")]
        log: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
    /// Why a request ended as it did, from the audit log (verified first).
    Explain {
        request_id: String,
        #[arg(long, default_value = "/var/lib/keyward/audit/audit.jsonl")]
        log: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
}

/// What the log is checked against: only public material.
#[derive(Debug, clap::Args)]
pub(crate) struct Trust {
    /// The anchor file keywardd writes beside the log [default: anchor.json
    /// in the log's directory].
    #[arg(long)]
    anchor: Option<PathBuf>,
    /// The journal key to pin (64 hex digits, from `keyward init` or
    /// `keyward status`). Without it the key the anchor names is used, which
    /// cannot detect a log and anchor rewritten together under a new key.
    #[arg(long)]
    journal_key: Option<String>,
}

/// Fails with `code`, also as one JSON document under `--json`.
fn refuse(json_out: bool, code: &str, detail: &str) -> ExitCode {
    if json_out {
        println!("{}", json!({"ok": false, "code": code, "detail": detail}));
    }
    crate::fail(code, detail)
}

fn read_anchor(log: &Path, trust: &Trust, json_out: bool) -> Result<(Anchor, bool), ExitCode> {
    let path = trust.anchor.clone().unwrap_or_else(|| log.parent().unwrap_or(Path::new(".")).join("anchor.json"));
    let bytes = match bounded_read::read_file(&path, policy::journal::MAX_ANCHOR_BYTES) {
        Ok(b) => b,
        Err(bounded_read::ReadError::Unreadable { kind }) => {
            return Err(refuse(
                json_out,
                "KW_ANCHOR_MISSING",
                &format!("{}: {kind}: without the anchor a cut log cannot be told from an intact one", path.display()),
            ));
        }
        Err(e) => return Err(refuse(json_out, "KW_ANCHOR_INVALID", &format!("{}: {e}", path.display()))),
    };
    let anchor = Anchor::parse(&bytes)
        .map_err(|why| refuse(json_out, "KW_ANCHOR_INVALID", &format!("{}: {why}", path.display())))?;
    let pinned = match &trust.journal_key {
        None => false,
        Some(hex) => {
            let key: [u8; 32] = policy::unhex(hex.trim())
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| crate::fail("KW_USAGE", "--journal-key is 64 hex digits"))?;
            if key != anchor.journal_key {
                return Err(refuse(
                    json_out,
                    "KW_ANCHOR_INVALID",
                    &format!("{}: signed by another journal key than the pinned one", path.display()),
                ));
            }
            true
        }
    };
    Ok((anchor, pinned))
}

/// Streams the log through the verifier, keeping the records `keep` wants.
fn verify_log(
    log: &Path,
    anchor: &Anchor,
    json_out: bool,
    torn: &mut u64,
    keep: &mut dyn FnMut(&str),
) -> Result<policy::journal::Verified, ExitCode> {
    // A missing log is an empty one: it falls short of its anchor.
    let file: Box<dyn Read> = match std::fs::File::open(log) {
        Ok(f) => Box::new(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Box::new(std::io::empty()),
        Err(e) => return Err(crate::fail("KW_AUDIT_READ_FAILED", &format!("{}: {}", log.display(), e.kind()))),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut verifier = Verifier::new(Rules {
        stream: Stream::Audit,
        key: Some(&anchor.journal_key),
        anchor: Some((anchor.audit.records, &anchor.audit.head)),
        check_anchored_signatures: true,
        adopting: false,
    });
    let broken = |e: JournalError| {
        if json_out {
            let mut report = json!({"ok": false, "code": e.code(), "detail": e.to_string()});
            match &e {
                JournalError::Broken { line, why, .. } => {
                    report["line"] = (*line).into();
                    report["why"] = (*why).into();
                }
                JournalError::Truncated { records, anchored, .. } => {
                    report["records"] = (*records).into();
                    report["anchored_records"] = (*anchored).into();
                }
            }
            println!("{report}");
        }
        crate::fail(e.code(), &format!("{}: {e}", log.display()))
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(bounded_read::AUDIT_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| crate::fail("KW_AUDIT_READ_FAILED", &format!("{}: {}", log.display(), e.kind())))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            if n as u64 > bounded_read::AUDIT_LINE {
                return Err(refuse(json_out, "KW_INPUT_TOO_LARGE", &format!("{}: a line over 1 MiB", log.display())));
            }
            // A last line without its newline is a write in progress (or
            // torn by a crash, which keywardd cuts off at start-up): it is
            // not a record yet, and it is reported, not verified.
            *torn = n as u64;
            break;
        }
        let text = std::str::from_utf8(&line[..line.len() - 1]).map_err(|_| {
            refuse(json_out, "KW_AUDIT_CHAIN_BROKEN", &format!("{}: a line is not UTF-8", log.display()))
        })?;
        keep(verifier.line(text).map_err(broken)?);
    }
    verifier.finish().map_err(broken)
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
    let (log, trust, id) = match cmd {
        AuditCommand::Verify { log, trust } => (log, trust, None),
        AuditCommand::Explain { request_id, log, trust } => (log, trust, Some(request_id)),
    };
    let (anchor, pinned) = match read_anchor(log, trust, json_out) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // A request's records, and a resubmission's, which names the original.
    let mut records = Vec::new();
    let mut keep = |rec: &str| {
        let Some(id) = id else { return };
        if rec.contains(id.as_str())
            && let Ok(r) = serde_json::from_str::<Value>(rec)
            && [r.get("request_id"), r.get("original_request_id")]
                .iter()
                .any(|v| v.and_then(|v| v.as_str()) == Some(id.as_str()))
        {
            records.push(r);
        }
    };
    let mut torn = 0;
    let verified = match verify_log(log, &anchor, json_out, &mut torn, &mut keep) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let Some(id) = id else {
        let past = verified.records - anchor.audit.records;
        if json_out {
            println!(
                "{}",
                json!({"ok": true, "records": verified.records, "head": verified.head,
                       "signatures_checked": verified.signatures_checked, "unsigned_before_anchoring": verified.unsigned,
                       "anchor": {"counter": anchor.counter, "audit_records": anchor.audit.records, "ts_ms": anchor.ts_ms},
                       "records_past_anchor": past, "journal_key": policy::hex(&anchor.journal_key),
                       "journal_key_pinned": pinned, "torn_tail_bytes": torn})
            );
        } else {
            println!(
                "audit log intact: {} records ({} signatures checked, {} written before anchoring), head {}",
                verified.records, verified.signatures_checked, verified.unsigned, verified.head
            );
            println!(
                "anchor: counter {} covers {} records; {past} records since, each signed; journal key {} ({})",
                anchor.counter,
                anchor.audit.records,
                policy::hex(&anchor.journal_key),
                if pinned { "pinned" } else { "NOT pinned: pass --journal-key to detect a rewrite under a new key" }
            );
            if torn > 0 {
                println!("a last line of {torn} bytes has no newline yet (a write in progress, or torn): not verified");
            }
        }
        return ExitCode::SUCCESS;
    };
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
