//! Attacks on the journals (docs/audit-log.md): RT-025 (the spend ledger
//! reset offline), RT-026 (the audit log cut, deleted or rewritten), RT-027
//! (an older copy of both restored) and RT-030 (a signature answered before
//! its audit record is durable). Each runs a real `keywardd` with its own
//! TPM, edits the real files as someone who can write them would (with the
//! daemon stopped), and checks the start, or `keyward audit verify` beside
//! this runner, refuses with the documented code.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_harness::{Daemon, Options, SIGTERM, x402_intent};
use ipc::api::{Request, Response};
use serde_json::Value;

use super::FnAttack;
use super::beside_me;
use crate::ledger::Probe;

pub(super) fn all() -> Vec<FnAttack> {
    vec![
        FnAttack {
            id: "RT-025",
            checks: &["cap_reached", "emptied", "deleted", "edited", "cut", "intact_starts_and_cap_holds"],
            attack: ledger_reset,
        },
        FnAttack {
            id: "RT-026",
            checks: &["verifies_before", "stopped_cut", "emptied", "deleted", "rewritten", "anchor_deleted"],
            attack: audit_tamper,
        },
        FnAttack { id: "RT-027", checks: &["rollback_refused"], attack: rollback },
        FnAttack {
            id: "RT-030",
            checks: &["no_signature_while_failing", "no_torn_record", "heals_and_releases"],
            attack: audit_write_failure,
        },
    ]
}

/// A daemon whose agent may spend 0.3 USDC a day, with key `hot`.
fn capped() -> Result<Daemon, String> {
    let keywardd = beside_me("keywardd").ok_or("keywardd is not built beside the runner")?;
    let o = Options::default();
    let policy = o.policy.replace("daily_limit = 50000000", "daily_limit = 300000");
    let d = Daemon::try_start(&keywardd, &Options { policy, ..o }).map_err(|e| format!("cannot start: {e}"))?;
    match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { .. }) => Ok(d),
        other => Err(format!("cannot create key: {other:?}")),
    }
}

fn paid(client: &mut ipc::client::Client, key: &str) -> bool {
    matches!(
        client.call(&Request::Submit { intent: x402_intent(key, 100_000) }),
        Ok(Response::Decision { signature: Some(_), .. })
    )
}

fn stop(d: &mut Daemon) -> Result<(), String> {
    d.signal_and_wait(SIGTERM, Duration::from_secs(20)).map(|_| ()).ok_or("keywardd did not stop".into())
}

fn files(d: &Daemon) -> [PathBuf; 3] {
    [d.state_dir.join("ledger.jsonl"), d.audit_log.clone(), d.anchor_file()]
}

fn save(d: &Daemon) -> Vec<Vec<u8>> {
    files(d).iter().map(|p| std::fs::read(p).unwrap_or_default()).collect()
}

fn restore(d: &Daemon, saved: &[Vec<u8>]) {
    for (p, b) in files(d).iter().zip(saved) {
        let _ = std::fs::write(p, b);
    }
}

/// Starts the daemon after an attack; returns (refused with `code`, evidence).
fn start_refused(d: &mut Daemon, code: &str) -> (bool, String) {
    match d.launch() {
        Ok(()) => {
            let _ = stop(d);
            (false, "keywardd started on the attacked files".into())
        }
        Err(e) => (e.0.contains(code), e.0.lines().last().unwrap_or("").to_string()),
    }
}

/// (check name, expected code, the edit).
type Attack<'a> = (&'static str, &'static str, Box<dyn Fn() + 'a>);

fn ledger_reset(probe: &mut Probe) -> String {
    let mut d = match capped() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let Ok(mut c) = d.client() else { return "no session".into() };
    let within = ["r25-1", "r25-2", "r25-3"].iter().all(|k| paid(&mut c, k));
    let over = paid(&mut c, "r25-4");
    probe.check("cap_reached", within && !over, format!("three payments signed: {within}; the fourth: {over}"));
    drop(c);
    if let Err(e) = stop(&mut d) {
        return e;
    }
    let saved = save(&d);
    let ledger = files(&d)[0].clone();
    let text = String::from_utf8_lossy(&saved[0]).to_string();
    let attacks: [Attack<'_>; 4] = [
        ("emptied", "KW_LEDGER_TRUNCATED", Box::new(|| drop(std::fs::write(&ledger, b"")))),
        ("deleted", "KW_LEDGER_TRUNCATED", Box::new(|| drop(std::fs::remove_file(&ledger)))),
        (
            "edited",
            "KW_LEDGER_TAMPERED",
            Box::new(|| drop(std::fs::write(&ledger, text.replace("\"100000\"", "\"1\"")))),
        ),
        (
            "cut",
            "KW_LEDGER_TRUNCATED",
            Box::new(|| {
                let lines: Vec<&str> = text.lines().collect();
                let kept: String = lines[..lines.len().saturating_sub(3)].iter().map(|l| format!("{l}\n")).collect();
                drop(std::fs::write(&ledger, kept));
            }),
        ),
    ];
    for (name, code, attack) in attacks {
        attack();
        let (refused, evidence) = start_refused(&mut d, code);
        probe.check(name, refused, evidence);
        restore(&d, &saved);
    }
    let started = d.launch().is_ok();
    let spent = if started { d.spent_today("usdc") } else { String::new() };
    let holds = started && d.client().is_ok_and(|mut c| !paid(&mut c, "r25-5"));
    probe.check(
        "intact_starts_and_cap_holds",
        started && spent == "300000" && holds,
        format!("intact files start: {started}; spent today {spent}; fifth payment refused: {holds}"),
    );
    "emptied, deleted, edited and cut ledgers refused the start; the day's spend survived".into()
}

fn verify(d: &Daemon) -> (bool, Value) {
    let Some(keyward) = beside_me("keyward") else { return (true, Value::Null) };
    let out = Command::new(keyward).args(["--json", "audit", "verify", "--log"]).arg(&d.audit_log).output();
    let Ok(out) = out else { return (true, Value::Null) };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.success(), serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or(Value::Null))
}

fn audit_tamper(probe: &mut Probe) -> String {
    let mut d = match capped() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let Ok(mut c) = d.client() else { return "no session".into() };
    let _ = paid(&mut c, "r26-1");
    drop(c);
    if let Err(e) = stop(&mut d) {
        return e;
    }
    let (ok, report) = verify(&d);
    probe.check("verifies_before", ok, report.to_string());
    let saved = save(&d);
    let log = d.audit_log.clone();
    let text = String::from_utf8_lossy(&saved[1]).to_string();
    let lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
    let attempt = |probe: &mut Probe, name: &str, code: &str, d: &mut Daemon| {
        let (ok, report) = verify(d);
        let verifier_refused = !ok && (report.is_null() || report["code"] == code);
        let (refused, evidence) = start_refused(d, code);
        probe.check(name, verifier_refused && refused, format!("verify: {report}; start: {evidence}"));
        restore(d, &saved);
    };
    let last_is_stopped = lines.last().is_some_and(|l| l.contains("\"event\":\"stopped\""));
    let _ = std::fs::write(&log, lines[..lines.len() - 1].concat());
    if last_is_stopped {
        attempt(probe, "stopped_cut", "KW_AUDIT_TRUNCATED", &mut d);
    }
    let _ = std::fs::write(&log, b"");
    attempt(probe, "emptied", "KW_AUDIT_TRUNCATED", &mut d);
    let _ = std::fs::remove_file(&log);
    attempt(probe, "deleted", "KW_AUDIT_TRUNCATED", &mut d);
    let _ = std::fs::write(
        &log,
        daemon_harness::rechain(policy::journal::Stream::Audit, &text.replace("\"uid\":0", "\"uid\":1000")),
    );
    attempt(probe, "rewritten", "KW_AUDIT_CHAIN_BROKEN", &mut d);
    let _ = std::fs::remove_file(d.anchor_file());
    attempt(probe, "anchor_deleted", "KW_ANCHOR_MISSING", &mut d);
    "cut, emptied, deleted and rewritten audit logs and a deleted anchor were refused by the verifier and the start"
        .into()
}

fn rollback(probe: &mut Probe) -> String {
    let mut d = match capped() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let Ok(mut c) = d.client() else { return "no session".into() };
    let _ = paid(&mut c, "r27-1");
    drop(c);
    if let Err(e) = stop(&mut d) {
        return e;
    }
    let old = save(&d);
    if d.launch().is_err() {
        return "the daemon did not restart".into();
    }
    if let Ok(mut c) = d.client() {
        let _ = paid(&mut c, "r27-2") && paid(&mut c, "r27-3");
    }
    if let Err(e) = stop(&mut d) {
        return e;
    }
    restore(&d, &old);
    let (refused, evidence) = start_refused(&mut d, "KW_ANCHOR_ROLLED_BACK");
    probe.check("rollback_refused", refused, evidence);
    "an older, authentic copy of the ledger, audit log and anchor was refused as a rollback".into()
}

fn audit_write_failure(probe: &mut Probe) -> String {
    let d = match capped() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let Ok(mut c) = d.client() else { return "no session".into() };
    if !(paid(&mut c, "r30-1") && paid(&mut c, "r30-2")) {
        return "payments were not signed before the attack".into();
    }
    let text = std::fs::read_to_string(&d.audit_log).unwrap_or_default();
    let lens: Vec<u64> = text.lines().rev().take(2).map(|l| l.len() as u64 + 1).collect();
    if lens.len() < 2 {
        return "no audit records".into();
    }
    let limit = text.len() as u64 + lens[1] + lens[0] / 2;
    let Some(pid) = d.pid() else { return "no pid".into() };
    if !daemon_harness::set_file_size_limit(pid, &limit.to_string()) {
        return "prlimit failed".into();
    }
    let answered = paid(&mut c, "r30-3");
    probe.check("no_signature_while_failing", !answered, format!("a signature was answered: {answered}"));
    let bytes = std::fs::read(&d.audit_log).unwrap_or_default();
    probe.check(
        "no_torn_record",
        bytes.last() == Some(&b'\n') && d.verify_audit().is_ok(),
        format!("log ends with a newline: {}", bytes.last() == Some(&b'\n')),
    );
    daemon_harness::set_file_size_limit(pid, "unlimited");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut healed = false;
    while Instant::now() < deadline && !healed {
        healed = paid(&mut c, "r30-3");
        std::thread::sleep(Duration::from_millis(100));
    }
    probe.check(
        "heals_and_releases",
        healed && d.verify_audit().is_ok(),
        format!("the withheld signature released after the limit was lifted: {healed}"),
    );
    "a payment whose signed record could not be written got no signature; the daemon healed by itself".into()
}
