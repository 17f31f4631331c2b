//! `keyward-redteam --out DIR`: run the red-team catalogue and write the
//! evidence artifacts.
//!
//! Exit status: 0 when the gate holds, 1 when it does not, 2 on bad input
//! (unreadable waiver file, unwritable output directory).
//! Gates: `implemented` (default) fails only when an implemented scenario
//! fails; `all` fails whenever the overall result is FAIL.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use redteam::ledger::{self, Status};
use redteam::waivers::WaiverSet;
use redteam::{artifacts, scenarios};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Gate {
    /// Fail only when an implemented scenario fails.
    Implemented,
    /// Fail whenever the overall result is FAIL.
    All,
}

#[derive(Debug, Parser)]
#[command(name = "keyward-redteam", version, about = "Run keyward's red-team scenarios and write the evidence")]
struct Args {
    /// Directory for the evidence artifacts (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Waiver file (JSON); see docs/redteam.md.
    #[arg(long)]
    waivers: Option<PathBuf>,
    /// Run identifier; defaults to $GITHUB_RUN_ID, else a time-based id.
    #[arg(long)]
    run_id: Option<String>,
    #[arg(long, value_enum, default_value = "implemented")]
    gate: Gate,
    /// Run only these scenarios (repeatable); the others are reported as
    /// FAIL "not run". For focused local runs and the runner's own tests;
    /// CI runs everything.
    #[arg(long)]
    only: Vec<String>,
}

fn main() -> ExitCode {
    // The runner re-executed as another uid by an availability scenario.
    if std::env::args().nth(1).as_deref() == Some(redteam::peer::ARG) {
        return ExitCode::from(redteam::peer::child());
    }
    let args = Args::parse();
    let today = time::OffsetDateTime::now_utc().date();
    let waivers = match &args.waivers {
        None => WaiverSet::default(),
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| format!("RT_WAIVERS_INVALID: cannot read ({})", e.kind()))
                .and_then(|text| WaiverSet::parse(&text, today).map_err(|e| e.to_string()));
            match parsed {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("keyward-redteam: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
    };
    let run_id = args.run_id.clone().or_else(|| std::env::var("GITHUB_RUN_ID").ok()).unwrap_or_else(|| {
        format!("local-{}-{}", time::OffsetDateTime::now_utc().unix_timestamp(), std::process::id())
    });
    let scratch = match tempfile::Builder::new().prefix("keyward-redteam-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("keyward-redteam: RT_SCRATCH_UNAVAILABLE: {}", e.kind());
            return ExitCode::from(2);
        }
    };
    let selected: Vec<_> = scenarios::implemented()
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.id()))
        .collect();
    let mut report = ledger::run(&run_id, &selected, waivers, scratch.path());
    if !args.only.is_empty() {
        let known: Vec<&str> = scenarios::implemented().iter().map(|s| s.id()).collect();
        for r in report.results.iter_mut().filter(|r| !r.implemented && known.contains(&r.id)) {
            r.reason = "not run (outside --only)".into();
        }
    }
    if let Err(e) = artifacts::write_all(&report, &args.out) {
        eprintln!("keyward-redteam: RT_ARTIFACTS_UNWRITABLE: {}: {}", args.out.display(), e.kind());
        return ExitCode::from(2);
    }

    println!("keyward red-team run {} (profile {})", report.run_id, report.profile);
    for r in &report.results {
        println!("  {:<7} {:<8} {:<4}  {}  ({})", r.id, r.severity, r.status.name(), r.title, r.reason);
    }
    let implemented = report.results.iter().filter(|r| r.implemented).count();
    println!(
        "overall: {}  ({} passed, {} failed, {} skipped; {implemented} of {} implemented)",
        report.overall().name(),
        report.count(Status::Pass),
        report.count(Status::Fail),
        report.count(Status::Skip),
        report.results.len()
    );
    println!("artifacts: {}", args.out.display());

    let failed_implemented = report.implemented_failures();
    let gate_holds = match args.gate {
        Gate::Implemented => failed_implemented.is_empty(),
        Gate::All => report.overall() == Status::Pass,
    };
    if gate_holds {
        println!("gate {:?}: holds", args.gate);
        ExitCode::SUCCESS
    } else {
        let ids: Vec<&str> = failed_implemented.iter().map(|r| r.id).collect();
        eprintln!("keyward-redteam: gate {:?} fails (implemented scenarios failing: {ids:?})", args.gate);
        ExitCode::from(1)
    }
}
