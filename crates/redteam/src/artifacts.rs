//! The evidence bundle of a run (seed 002, "CI Evidence Output Contract").
//!
//! | file | content |
//! | --- | --- |
//! | `redteam-summary.json` | run id, profile, overall, per-ID status and reason |
//! | `redteam-results.ndjson` | timestamped event stream: start, every check, every result |
//! | `redteam-junit.xml` | one test case per ID, for CI user interfaces |
//! | `redteam-coverage.json` | each ID → the checks that ran |
//! | `redteam-waivers.json` | active and rejected waivers, with expiry |
//! | `redteam-buf-traceability.json` | each BUF-* surface → its RT-* coverage and status |
//!
//! Each file is written to a temporary name, fsynced, renamed into place and
//! the directory fsynced: a crash leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::ledger::{Report, Status};

pub const SUMMARY: &str = "redteam-summary.json";
pub const RESULTS: &str = "redteam-results.ndjson";
pub const JUNIT: &str = "redteam-junit.xml";
pub const COVERAGE: &str = "redteam-coverage.json";
pub const WAIVERS: &str = "redteam-waivers.json";
pub const BUF_TRACE: &str = "redteam-buf-traceability.json";

pub const ALL: [&str; 6] = [SUMMARY, RESULTS, JUNIT, COVERAGE, WAIVERS, BUF_TRACE];

/// Writes every artifact of `report` into `dir` (created if missing).
pub fn write_all(report: &Report, dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let pretty = |v: Value| serde_json::to_string_pretty(&v).expect("JSON values serialise") + "\n";
    write_atomic(dir, SUMMARY, pretty(summary(report)).as_bytes())?;
    write_atomic(dir, RESULTS, results_ndjson(report).as_bytes())?;
    write_atomic(dir, JUNIT, junit(report).as_bytes())?;
    write_atomic(dir, COVERAGE, pretty(coverage(report)).as_bytes())?;
    write_atomic(dir, WAIVERS, pretty(waivers(report)).as_bytes())?;
    write_atomic(dir, BUF_TRACE, pretty(buf_traceability(report)).as_bytes())?;
    Ok(())
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub fn summary(r: &Report) -> Value {
    json!({
        "run_id": r.run_id,
        "profile": r.profile,
        "overall": r.overall().name(),
        "catalogue_version": r.catalogue_version,
        "started": r.started,
        "finished": r.finished,
        "counts": {
            "PASS": r.count(Status::Pass),
            "FAIL": r.count(Status::Fail),
            "SKIP": r.count(Status::Skip),
        },
        "results": r.results.iter().map(|s| json!({
            "id": s.id,
            "severity": s.severity,
            "title": s.title,
            "status": s.status.name(),
            "reason": s.reason,
            "implemented": s.implemented,
            "waiver_id": s.waiver_id,
        })).collect::<Vec<_>>(),
    })
}

pub fn results_ndjson(r: &Report) -> String {
    let mut events = vec![json!({"ts": r.started, "run_id": r.run_id, "event": "run_start", "profile": r.profile})];
    for s in &r.results {
        events.push(json!({"ts": s.started, "run_id": r.run_id, "event": "scenario_start", "id": s.id}));
        for c in &s.checks {
            events.push(json!({
                "ts": c.ts, "run_id": r.run_id, "event": "check", "id": s.id,
                "check": c.name, "passed": c.passed, "evidence": c.evidence,
            }));
        }
        events.push(json!({
            "ts": s.finished, "run_id": r.run_id, "event": "result", "id": s.id,
            "severity": s.severity, "status": s.status.name(), "reason": s.reason,
        }));
    }
    events.push(json!({"ts": r.finished, "run_id": r.run_id, "event": "run_end", "overall": r.overall().name()}));
    events.iter().map(|e| e.to_string() + "\n").collect()
}

pub fn coverage(r: &Report) -> Value {
    let scenarios: serde_json::Map<String, Value> = r
        .results
        .iter()
        .map(|s| {
            let checks: Vec<Value> =
                s.checks.iter().map(|c| json!({"check": c.name, "passed": c.passed, "evidence": c.evidence})).collect();
            (s.id.to_string(), json!({"implemented": s.implemented, "status": s.status.name(), "checks": checks}))
        })
        .collect();
    json!({"run_id": r.run_id, "scenarios": scenarios})
}

pub fn waivers(r: &Report) -> Value {
    json!({"run_id": r.run_id, "active": r.waivers.active, "rejected": r.waivers.rejected})
}

pub fn buf_traceability(r: &Report) -> Value {
    let status = |id: &&str| json!({"id": id, "status": r.result(id).map_or("FAIL", |s| s.status.name())});
    let rows: Vec<Value> = r
        .buf_rows()
        .map(|(row, covered)| {
            json!({
                "buf": row.id,
                "surface": row.surface,
                "primary": row.primary.iter().map(status).collect::<Vec<_>>(),
                "secondary": row.secondary.iter().map(status).collect::<Vec<_>>(),
                "pass_condition": row.pass_condition,
                "covered": covered,
            })
        })
        .collect();
    let compliant = rows.iter().all(|v| v["covered"] == true);
    json!({"run_id": r.run_id, "compliant": compliant, "rows": rows})
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub fn junit(r: &Report) -> String {
    let (fails, skips) = (r.count(Status::Fail), r.count(Status::Skip));
    let n = r.results.len();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x += &format!("<testsuites name=\"keyward-redteam\" tests=\"{n}\" failures=\"{fails}\" skipped=\"{skips}\">\n");
    x += &format!(
        "  <testsuite name=\"redteam.{}\" tests=\"{n}\" failures=\"{fails}\" skipped=\"{skips}\" errors=\"0\" timestamp=\"{}\">\n",
        xml_escape(r.profile),
        xml_escape(&r.started)
    );
    for s in &r.results {
        x += &format!(
            "    <testcase classname=\"redteam.{}\" name=\"{} {}\">\n",
            s.severity.to_lowercase(),
            s.id,
            xml_escape(s.title)
        );
        match s.status {
            Status::Fail => {
                x += &format!("      <failure type=\"FAIL\" message=\"{}\"/>\n", xml_escape(&s.reason));
            }
            Status::Skip => x += &format!("      <skipped message=\"{}\"/>\n", xml_escape(&s.reason)),
            Status::Pass => {}
        }
        if !s.checks.is_empty() {
            let lines: Vec<String> = s
                .checks
                .iter()
                .map(|c| format!("{} {}: {}", if c.passed { "ok" } else { "FAILED" }, c.name, c.evidence))
                .collect();
            x += &format!("      <system-out>{}</system-out>\n", xml_escape(&lines.join("\n")));
        }
        x += "    </testcase>\n";
    }
    x += "  </testsuite>\n</testsuites>\n";
    x
}
