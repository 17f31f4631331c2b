//! The `keyward-redteam` binary end to end: the evidence files, the gate and
//! waivers, as CI sees them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ALL_FILES: [&str; 6] = [
    "redteam-summary.json",
    "redteam-results.ndjson",
    "redteam-junit.xml",
    "redteam-coverage.json",
    "redteam-waivers.json",
    "redteam-buf-traceability.json",
];

fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyward-redteam"))
        .arg("--out")
        .arg(out)
        .args(["--run-id", "test-run"])
        .args(extra)
        .output()
        .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids() -> Vec<String> {
    (1..=34).map(|i| format!("RT-{i:03}")).collect()
}

#[test]
fn writes_all_artifacts_with_every_id_and_a_critical_fail_fails_overall() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("evidence");
    // Two scenarios run; the other twenty-two are reported FAIL "not run", which
    // exercises the failure paths of every artifact (CI runs them all).
    let only = ["--only", "RT-011", "--only", "RT-017"];
    let res = run(&out, &only);
    assert!(res.status.success(), "gate=implemented holds while no implemented scenario fails");
    for f in ALL_FILES {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");

    let summary = json(&out.join("redteam-summary.json"));
    assert_eq!(summary["run_id"], "test-run");
    assert_eq!(summary["profile"], "strict");
    let results = summary["results"].as_array().unwrap();
    let got: Vec<String> = results.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, ids());
    for r in results {
        let status = r["status"].as_str().unwrap();
        assert!(["PASS", "FAIL", "SKIP"].contains(&status));
        assert!(!r["reason"].as_str().unwrap().is_empty(), "every result has a reason");
        if r["implemented"] == false {
            assert_eq!(status, "FAIL", "{} did not run, so it cannot pass", r["id"]);
            assert_eq!(r["reason"], "not run (outside --only)");
        }
    }
    let critical_fail = results.iter().any(|r| r["severity"] == "Critical" && r["status"] == "FAIL");
    assert!(critical_fail);
    assert_eq!(summary["overall"], "FAIL", "a Critical FAIL makes the run FAIL");

    let ndjson = std::fs::read_to_string(out.join("redteam-results.ndjson")).unwrap();
    let events: Vec<Value> = ndjson.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().all(|e| e["ts"].as_str().is_some_and(|t| t.contains('T'))), "every event timestamped");
    let result_ids: Vec<&str> =
        events.iter().filter(|e| e["event"] == "result").map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(result_ids.len(), 34);
    assert_eq!(events.last().unwrap()["overall"], "FAIL");

    let junit = std::fs::read_to_string(out.join("redteam-junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 34);
    assert!(junit.contains(r#"tests="34""#));
    assert_eq!(junit.matches("<failure ").count(), results.iter().filter(|r| r["status"] == "FAIL").count());

    let coverage = json(&out.join("redteam-coverage.json"));
    let scenarios = coverage["scenarios"].as_object().unwrap();
    assert_eq!(scenarios.keys().cloned().collect::<Vec<_>>(), ids());
    for (id, entry) in scenarios {
        if entry["implemented"] == true {
            assert!(!entry["checks"].as_array().unwrap().is_empty(), "{id} ran checks");
        }
    }

    let trace = json(&out.join("redteam-buf-traceability.json"));
    let rows = trace["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for row in rows {
        let covered = row["primary"].as_array().unwrap().iter().any(|p| p["status"] == "PASS");
        assert_eq!(row["covered"], covered);
    }
    assert_eq!(trace["compliant"], rows.iter().all(|r| r["covered"] == true));

    // The strict gate refuses this run.
    let strict = run(&dir.path().join("strict"), &[&only[..], &["--gate", "all"]].concat());
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn waivers_turn_non_critical_fails_into_skip_and_critical_waivers_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let waivers = dir.path().join("waivers.json");
    std::fs::write(
        &waivers,
        r#"{"waivers": [
          {"waiver_id": "W-02", "scenario": "RT-002", "owner": "ops-lead", "expires": "2999-12-31", "reason": "policy engine pending"},
          {"waiver_id": "W-01", "scenario": "RT-001", "owner": "ops-lead", "expires": "2999-12-31", "reason": "try to waive a Critical"},
          {"waiver_id": "W-18", "scenario": "RT-018", "owner": "ops-lead", "expires": "2000-01-01", "reason": "stale"}
        ]}"#,
    )
    .unwrap();
    let out = dir.path().join("evidence");
    // Only RT-011 runs, so RT-001, RT-002 and RT-018 are failures to waive.
    let res = run(&out, &["--waivers", waivers.to_str().unwrap(), "--only", "RT-011"]);
    assert!(res.status.success());
    let summary = json(&out.join("redteam-summary.json"));
    let status =
        |id: &str| summary["results"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()["status"].clone();
    assert_eq!(status("RT-002"), "SKIP");
    assert_eq!(status("RT-001"), "FAIL");
    assert_eq!(status("RT-018"), "FAIL");
    let w = json(&out.join("redteam-waivers.json"));
    assert_eq!(w["active"].as_array().unwrap().len(), 1);
    assert_eq!(w["active"][0]["expires"], "2999-12-31");
    let rejected: Vec<&str> =
        w["rejected"].as_array().unwrap().iter().map(|r| r["waiver_id"].as_str().unwrap()).collect();
    assert_eq!(rejected, ["W-01", "W-18"]);
}

#[test]
fn a_malformed_waiver_file_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let waivers = dir.path().join("waivers.json");
    std::fs::write(&waivers, r#"{"waivers": [{"scenario": "RT-016"}]}"#).unwrap();
    let out = dir.path().join("evidence");
    let res = run(&out, &["--waivers", waivers.to_str().unwrap(), "--only", "RT-011"]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("RT_WAIVERS_INVALID"));
    assert!(!out.exists(), "no partial evidence");
}
