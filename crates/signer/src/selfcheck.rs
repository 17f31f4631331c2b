//! The strict-profile self-check: one structured line per control, and a
//! refusal (exit code 3, `KW_SELFCHECK_FAILED`) when a mandatory control is off.

use std::io::Write;
use std::process::ExitCode;

use secmem::hardening::{self, HardeningOutcome};

/// Exit code when a mandatory control is off.
pub(crate) const EXIT_SELFCHECK_FAILED: u8 = 3;

pub(crate) fn run(outcome: &HardeningOutcome) -> ExitCode {
    let report = hardening::self_check(secmem::global());
    let mut out = std::io::stdout().lock();
    for line in report.lines() {
        let _ = writeln!(out, "{line}");
    }
    if !outcome.scrubbed_env.is_empty() {
        // Names only: values were wiped before anything could read them.
        let _ = writeln!(
            out,
            "{{\"event\":\"env_scrubbed\",\"variables\":[{}]}}",
            outcome.scrubbed_env.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(",")
        );
    }
    let failures = report.failures();
    if failures.is_empty() {
        let _ = writeln!(out, "{{\"event\":\"selfcheck_result\",\"profile\":\"strict\",\"result\":\"pass\"}}");
        ExitCode::SUCCESS
    } else {
        let names: Vec<&str> = failures.iter().map(|c| c.name).collect();
        let _ = writeln!(out, "{{\"event\":\"selfcheck_result\",\"profile\":\"strict\",\"result\":\"fail\"}}");
        eprintln!("keywardd: KW_SELFCHECK_FAILED: mandatory controls off: {}; refusing to start", names.join(", "));
        ExitCode::from(EXIT_SELFCHECK_FAILED)
    }
}
