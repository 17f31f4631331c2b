//! Running the catalogue and judging each scenario.
//!
//! Every catalogue ID gets exactly one result. An implemented scenario
//! declares up front the checks it makes ([`Scenario::checks`]), then runs
//! its attack through a [`Probe`] that records each check as it is made. The
//! ledger accepts a `PASS` only if every declared check ran and held and no
//! other check was recorded: a scenario that returns early (its set-up
//! failed, a step went wrong) is `FAIL` with `check X never ran`, whatever
//! passed before it, so a scenario cannot pass without having made its whole
//! attack. A scenario that is not implemented is `FAIL` with reason `not
//! implemented`, never `PASS`; it becomes `SKIP` only under an active waiver,
//! and Critical scenarios cannot be waived.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::catalogue::{BUF_MAP, CATALOGUE, ScenarioSpec, Severity};
use crate::waivers::WaiverSet;

pub const NOT_IMPLEMENTED: &str = "not implemented";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "SKIP")]
    Skip,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One thing a scenario checked while attacking.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub evidence: String,
    pub ts: String,
}

/// What a scenario gets to record its attack with: a scratch directory of its
/// own and a list of checks.
#[derive(Debug)]
pub struct Probe {
    workdir: PathBuf,
    checks: Vec<Check>,
}

impl Probe {
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Records a check and returns whether it held.
    pub fn check(&mut self, name: &str, passed: bool, evidence: impl Into<String>) -> bool {
        self.checks.push(Check { name: name.to_string(), passed, evidence: evidence.into(), ts: now_rfc3339() });
        passed
    }
}

/// An attack against a real component.
pub trait Scenario {
    /// The catalogue ID this scenario implements.
    fn id(&self) -> &'static str;
    /// The name of every check [`Scenario::run`] records when it makes its
    /// whole attack, each once in this list (a check may be recorded more
    /// than once; every record must hold). The scenario passes only if each
    /// of them ran and held, and it recorded no other.
    fn checks(&self) -> &'static [&'static str];
    /// Runs the attack, recording every check on `probe`. Returns a one-line
    /// reason (what was attempted and how it was refused, or what went wrong).
    fn run(&self, probe: &mut Probe) -> String;
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub id: &'static str,
    pub severity: &'static str,
    pub title: &'static str,
    pub status: Status,
    pub reason: String,
    pub implemented: bool,
    pub waiver_id: Option<String>,
    /// The checks the scenario declared (empty when not implemented).
    pub declared_checks: Vec<&'static str>,
    pub checks: Vec<Check>,
    pub started: String,
    pub finished: String,
}

/// The outcome of one red-team run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub profile: &'static str,
    pub catalogue_version: &'static str,
    pub started: String,
    pub finished: String,
    pub results: Vec<ScenarioResult>,
    pub waivers: WaiverSet,
}

impl Report {
    /// `FAIL` when any scenario failed (every catalogue ID is required in the
    /// strict profile); `PASS` otherwise.
    pub fn overall(&self) -> Status {
        if self.results.iter().any(|r| r.status == Status::Fail) { Status::Fail } else { Status::Pass }
    }

    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// Implemented scenarios whose attack was not refused.
    pub fn implemented_failures(&self) -> Vec<&ScenarioResult> {
        self.results.iter().filter(|r| r.implemented && r.status == Status::Fail).collect()
    }

    pub fn result(&self, id: &str) -> Option<&ScenarioResult> {
        self.results.iter().find(|r| r.id == id)
    }

    /// Whether `buf_id`'s primary coverage has at least one passing scenario.
    pub fn buf_covered(&self, primary: &[&str]) -> bool {
        primary.iter().any(|id| self.result(id).is_some_and(|r| r.status == Status::Pass))
    }

    pub fn buf_rows(&self) -> impl Iterator<Item = (&'static crate::catalogue::BufRow, bool)> {
        BUF_MAP.iter().map(|row| (row, self.buf_covered(row.primary)))
    }
}

pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Runs every catalogue scenario: the implemented ones from `scenarios`, the
/// rest judged as not implemented. `scratch` holds one directory per scenario.
pub fn run(run_id: &str, scenarios: &[Box<dyn Scenario>], waivers: WaiverSet, scratch: &Path) -> Report {
    let started = now_rfc3339();
    let results = CATALOGUE
        .iter()
        .map(|spec| {
            let implementation = scenarios.iter().find(|s| s.id() == spec.id);
            judge(spec, implementation.map(|b| b.as_ref()), &waivers, scratch)
        })
        .collect();
    Report {
        run_id: run_id.to_string(),
        profile: "strict",
        catalogue_version: crate::catalogue::CATALOGUE_VERSION,
        started,
        finished: now_rfc3339(),
        results,
        waivers,
    }
}

fn judge(
    spec: &'static ScenarioSpec,
    implementation: Option<&dyn Scenario>,
    waivers: &WaiverSet,
    scratch: &Path,
) -> ScenarioResult {
    let started = now_rfc3339();
    let (mut status, mut reason, checks) = match implementation {
        None => (Status::Fail, NOT_IMPLEMENTED.to_string(), Vec::new()),
        Some(s) => attack(spec, s, scratch),
    };
    let mut waiver_id = None;
    if status == Status::Fail
        && spec.severity != Severity::Critical
        && let Some(w) = waivers.for_scenario(spec.id)
    {
        reason = format!(
            "waived by {} ({}) until {}: {}; underlying result: {reason}",
            w.owner, w.waiver_id, w.expires, w.reason
        );
        status = Status::Skip;
        waiver_id = Some(w.waiver_id.clone());
    }
    ScenarioResult {
        id: spec.id,
        severity: spec.severity.name(),
        title: spec.title,
        status,
        reason,
        implemented: implementation.is_some(),
        waiver_id,
        declared_checks: implementation.map(|s| s.checks().to_vec()).unwrap_or_default(),
        checks,
        started,
        finished: now_rfc3339(),
    }
}

fn attack(spec: &ScenarioSpec, scenario: &dyn Scenario, scratch: &Path) -> (Status, String, Vec<Check>) {
    let workdir = scratch.join(spec.id);
    if let Err(e) = std::fs::create_dir_all(&workdir) {
        return (Status::Fail, format!("could not create scratch directory: {}", e.kind()), Vec::new());
    }
    let mut probe = Probe { workdir, checks: Vec::new() };
    let outcome = catch_unwind(AssertUnwindSafe(|| scenario.run(&mut probe)));
    let checks = probe.checks;
    let verdict = match outcome {
        Err(_) => Err("scenario panicked before completing its attack".to_string()),
        Ok(reason) => judge_checks(scenario.checks(), &checks, reason),
    };
    match verdict {
        Ok(reason) => (Status::Pass, reason, checks),
        Err(why) => (Status::Fail, why, checks),
    }
}

/// The verdict on what a scenario recorded against what it declared:
/// `Ok(reason)` only when every declared check ran and held and nothing
/// else was recorded; otherwise `Err` with the first thing wrong, in this
/// order: no or duplicate declarations, an undeclared check, a check that
/// did not hold, a declared check that never ran.
fn judge_checks(declared: &[&str], recorded: &[Check], reason: String) -> Result<String, String> {
    if declared.is_empty() {
        return Err(format!("the scenario declares no checks, so nothing can be judged: {reason}"));
    }
    if let Some((i, d)) = declared.iter().enumerate().find(|(i, d)| declared[..*i].contains(d)) {
        return Err(format!("check {d} is declared twice (at {i}): {reason}"));
    }
    if let Some(c) = recorded.iter().find(|c| !declared.contains(&c.name.as_str())) {
        return Err(format!("check {} was not declared (a scenario declares every check it makes)", c.name));
    }
    if let Some(c) = recorded.iter().find(|c| !c.passed) {
        return Err(format!("check {} did not hold: {}", c.name, c.evidence));
    }
    let missing: Vec<&str> = declared.iter().copied().filter(|d| !recorded.iter().any(|c| c.name == *d)).collect();
    match missing.as_slice() {
        [] => Ok(reason),
        [one] => Err(format!("check {one} never ran: {reason}")),
        [first, rest @ ..] => Err(format!("check {first} never ran (and {} more): {reason}", rest.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    /// Ledger-logic doubles: they exercise how results are judged, and make no
    /// claim about any component.
    /// Declares `c0..cN` for N results and records them.
    struct Recorded(&'static str, Vec<bool>);
    const NAMES: [&str; 4] = ["c0", "c1", "c2", "c3"];
    impl Scenario for Recorded {
        fn id(&self) -> &'static str {
            self.0
        }
        fn checks(&self) -> &'static [&'static str] {
            &NAMES[..self.1.len()]
        }
        fn run(&self, probe: &mut Probe) -> String {
            for (i, ok) in self.1.iter().enumerate() {
                probe.check(&format!("c{i}"), *ok, "e");
            }
            "done".to_string()
        }
    }
    struct Panics;
    impl Scenario for Panics {
        fn id(&self) -> &'static str {
            "RT-018"
        }
        fn checks(&self) -> &'static [&'static str] {
            &["c0"]
        }
        fn run(&self, _: &mut Probe) -> String {
            panic!("boom")
        }
    }

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn unimplemented_scenarios_fail_and_fail_the_run() {
        let dir = scratch();
        let report = run("t", &[], WaiverSet::default(), dir.path());
        assert_eq!(report.results.len(), crate::catalogue::CATALOGUE.len());
        assert!(report.results.iter().all(|r| r.status == Status::Fail && r.reason == NOT_IMPLEMENTED));
        assert_eq!(report.overall(), Status::Fail);
        assert!(report.implemented_failures().is_empty());
    }

    #[test]
    fn pass_needs_recorded_checks_that_all_held() {
        let dir = scratch();
        let scenarios: Vec<Box<dyn Scenario>> = vec![
            Box::new(Recorded("RT-004", vec![true, true])),
            Box::new(Recorded("RT-005", vec![])),
            Box::new(Recorded("RT-006", vec![true, false])),
            Box::new(Panics),
        ];
        let report = run("t", &scenarios, WaiverSet::default(), dir.path());
        assert_eq!(report.result("RT-004").unwrap().status, Status::Pass);
        let no_checks = report.result("RT-005").unwrap();
        assert_eq!(no_checks.status, Status::Fail);
        assert!(no_checks.reason.starts_with("the scenario declares no checks"), "{}", no_checks.reason);
        assert_eq!(report.result("RT-006").unwrap().status, Status::Fail);
        assert!(report.result("RT-018").unwrap().reason.contains("panicked"));
        let failed: Vec<&str> = report.implemented_failures().iter().map(|r| r.id).collect();
        assert_eq!(failed, ["RT-005", "RT-006", "RT-018"]);
    }

    #[test]
    fn waivers_skip_only_non_critical_failures() {
        let dir = scratch();
        let json = r#"{"waivers":[
            {"waiver_id":"W1","scenario":"RT-016","owner":"o","expires":"2027-01-01","reason":"later"},
            {"waiver_id":"W2","scenario":"RT-003","owner":"o","expires":"2027-01-01","reason":"no"}]}"#;
        let waivers = WaiverSet::parse(json, date!(2026 - 11 - 24)).unwrap();
        let report = run("t", &[], waivers, dir.path());
        let r16 = report.result("RT-016").unwrap();
        assert_eq!(r16.status, Status::Skip);
        assert_eq!(r16.waiver_id.as_deref(), Some("W1"));
        assert!(r16.reason.contains("not implemented"));
        assert_eq!(report.result("RT-003").unwrap().status, Status::Fail);
        assert_eq!(report.waivers.rejected.len(), 1);
    }

    #[test]
    fn a_critical_fail_fails_the_run_even_when_everything_else_passes() {
        let dir = scratch();
        // Every scenario but RT-003 (Critical) recorded a passing check.
        let scenarios: Vec<Box<dyn Scenario>> = CATALOGUE
            .iter()
            .filter(|s| s.id != "RT-003")
            .map(|s| Box::new(Recorded(s.id, vec![true])) as Box<dyn Scenario>)
            .collect();
        let report = run("t", &scenarios, WaiverSet::default(), dir.path());
        assert_eq!(report.count(Status::Pass), CATALOGUE.len() - 1);
        assert_eq!(report.result("RT-003").unwrap().status, Status::Fail);
        assert_eq!(report.overall(), Status::Fail);
        // And with it passing too, the run passes.
        let all: Vec<Box<dyn Scenario>> =
            CATALOGUE.iter().map(|s| Box::new(Recorded(s.id, vec![true])) as Box<dyn Scenario>).collect();
        assert_eq!(run("t", &all, WaiverSet::default(), dir.path()).overall(), Status::Pass);
    }
}
