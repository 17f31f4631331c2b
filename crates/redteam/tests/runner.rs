//! The runner's rule, with fake scenarios: a scenario passes only if every
//! check it declared ran and held and it recorded no other. These doubles
//! exercise how results are judged and make no claim about any component.

use redteam::ledger::{Probe, Report, Scenario, ScenarioResult, Status, run};
use redteam::waivers::WaiverSet;

/// What a fake scenario does: record these (name, held) checks in order,
/// or panic after them.
struct Fake {
    id: &'static str,
    declared: &'static [&'static str],
    records: &'static [(&'static str, bool)],
    panics: bool,
}

impl Scenario for Fake {
    fn id(&self) -> &'static str {
        self.id
    }

    fn checks(&self) -> &'static [&'static str] {
        self.declared
    }

    fn run(&self, probe: &mut Probe) -> String {
        for (name, held) in self.records {
            if !probe.check(name, *held, format!("evidence for {name}")) {
                break;
            }
        }
        if self.panics {
            panic!("the fake scenario panics");
        }
        format!("{} of {} checks recorded", self.records.len(), self.declared.len())
    }
}

const ABC: &[&str] = &["attack refused", "refusal audited", "control served"];

fn fake(
    id: &'static str,
    declared: &'static [&'static str],
    records: &'static [(&'static str, bool)],
) -> Box<dyn Scenario> {
    Box::new(Fake { id, declared, records, panics: false })
}

fn judged(scenarios: Vec<Box<dyn Scenario>>) -> Report {
    let dir = tempfile::tempdir().unwrap();
    run("runner-test", &scenarios, WaiverSet::default(), dir.path())
}

fn result<'a>(report: &'a Report, id: &str) -> &'a ScenarioResult {
    report.result(id).unwrap()
}

#[test]
fn a_scenario_that_returns_early_fails_whatever_passed_before() {
    let report = judged(vec![
        fake("RT-004", ABC, &[("attack refused", true)]),
        fake("RT-005", ABC, &[]),
        fake("RT-006", ABC, &[("attack refused", true), ("refusal audited", true)]),
    ]);
    let r = result(&report, "RT-004");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.reason, "check refusal audited never ran (and 1 more): 1 of 3 checks recorded");
    assert_eq!(r.checks.len(), 1, "what ran is still reported");
    let r = result(&report, "RT-005");
    assert_eq!(r.status, Status::Fail);
    assert!(r.reason.starts_with("check attack refused never ran (and 2 more)"), "{}", r.reason);
    let r = result(&report, "RT-006");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.reason, "check control served never ran: 2 of 3 checks recorded");
    let failed: Vec<&str> = report.implemented_failures().iter().map(|r| r.id).collect();
    assert_eq!(failed, ["RT-004", "RT-005", "RT-006"]);
}

#[test]
fn a_scenario_that_runs_every_declared_check_and_all_hold_passes() {
    let report = judged(vec![
        fake("RT-004", ABC, &[("attack refused", true), ("refusal audited", true), ("control served", true)]),
        // Order is free, and a check may be recorded more than once.
        fake(
            "RT-005",
            ABC,
            &[("control served", true), ("attack refused", true), ("attack refused", true), ("refusal audited", true)],
        ),
    ]);
    for id in ["RT-004", "RT-005"] {
        let r = result(&report, id);
        assert_eq!(r.status, Status::Pass, "{id}: {}", r.reason);
        assert_eq!(r.declared_checks, ABC);
    }
    assert_eq!(result(&report, "RT-004").reason, "3 of 3 checks recorded");
    assert!(report.implemented_failures().is_empty());
}

#[test]
fn a_scenario_whose_check_fails_fails() {
    let report = judged(vec![
        fake("RT-004", ABC, &[("attack refused", true), ("refusal audited", false), ("control served", true)]),
        // A repeated check must hold every time.
        fake(
            "RT-005",
            ABC,
            &[("attack refused", true), ("refusal audited", true), ("control served", true), ("attack refused", false)],
        ),
    ]);
    let r = result(&report, "RT-004");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.reason, "check refusal audited did not hold: evidence for refusal audited");
    let r = result(&report, "RT-005");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.reason, "check attack refused did not hold: evidence for attack refused");
}

#[test]
fn a_scenario_that_runs_an_undeclared_check_fails() {
    let report =
        judged(vec![fake("RT-004", &["attack refused"], &[("attack refused", true), ("something else", true)])]);
    let r = result(&report, "RT-004");
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.reason, "check something else was not declared (a scenario declares every check it makes)");
}

#[test]
fn declarations_must_be_non_empty_and_unique_and_a_panic_fails() {
    let report = judged(vec![
        fake("RT-004", &[], &[]),
        fake("RT-005", &["a", "a"], &[("a", true)]),
        Box::new(Fake { id: "RT-006", declared: &["a"], records: &[("a", true)], panics: true }),
    ]);
    assert!(result(&report, "RT-004").reason.starts_with("the scenario declares no checks"));
    assert!(result(&report, "RT-005").reason.starts_with("check a is declared twice"));
    assert_eq!(result(&report, "RT-006").reason, "scenario panicked before completing its attack");
    assert!(["RT-004", "RT-005", "RT-006"].iter().all(|id| result(&report, id).status == Status::Fail));
}

#[test]
fn every_real_scenario_declares_unique_checks() {
    let all = redteam::scenarios::implemented();
    let mut ids = std::collections::BTreeSet::new();
    for s in &all {
        assert!(ids.insert(s.id()), "{} is implemented twice", s.id());
        let checks = s.checks();
        assert!(!checks.is_empty(), "{} declares no checks", s.id());
        let unique: std::collections::BTreeSet<_> = checks.iter().collect();
        assert_eq!(unique.len(), checks.len(), "{} declares a check twice", s.id());
        assert!(checks.iter().all(|c| !c.trim().is_empty()), "{}", s.id());
    }
}

/// The scenario sources (`src/scenarios/*.rs`), for the check below: no
/// scenario is run (they need binaries and TPMs).
fn sources() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let sources: Vec<String> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(sources.len() >= 4, "{files:?}");
    sources
}

/// The string literal at the start of `s` (after `"`), unescaped enough for
/// check names (`\"` and `\\`).
fn literal(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// A name the real runner would find undeclared or never run shows up here
/// without a TPM: every literal check name a scenario records is declared by
/// some scenario, and every declared name is in the sources (a literal, or
/// a `{path}: …` format of RT-024).
#[test]
fn the_scenario_sources_record_what_the_scenarios_declare() {
    let declared: Vec<&str> =
        redteam::scenarios::implemented().iter().flat_map(|s| s.checks().iter().copied()).collect();
    let sources = sources();
    let mut recorded = 0;
    for src in &sources {
        for (at, _) in src.match_indices("probe.check(") {
            let rest = src[at + "probe.check(".len()..].trim_start();
            let name = if let Some(lit) = rest.strip_prefix('"') {
                literal(lit)
            } else if let Some(fmt) = rest.strip_prefix("&format!(\"") {
                literal(fmt).filter(|f| f.starts_with("{path}: ")).map(|f| f.replacen("{path}", "/bait", 1))
            } else {
                None // a name held in a variable or a constant; the declarations below cover it
            };
            if let Some(name) = name {
                recorded += 1;
                assert!(declared.contains(&name.as_str()), "{name:?} is recorded but no scenario declares it");
            }
        }
    }
    assert!(recorded >= 60, "only {recorded} literal check names found: the scan is broken");
    let all = redteam::scenarios::implemented();
    for name in &declared {
        // Once in each declaration, and at least once where it is recorded.
        let declarers = all.iter().filter(|s| s.checks().contains(name)).count();
        let quoted = format!("{name:?}");
        let literal_uses: usize = sources.iter().map(|s| s.matches(&quoted).count()).sum();
        let formatted = name
            .strip_prefix("/bait: ")
            .or(name.strip_prefix("/loop: "))
            .is_some_and(|n| sources.iter().any(|s| s.contains(&format!("\"{{path}}: {n}\""))));
        assert!(
            literal_uses > declarers || formatted,
            "{name:?} is declared ({declarers}x) but never recorded by name in the sources"
        );
    }
}
