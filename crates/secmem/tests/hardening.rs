//! Process hardening, observed from inside a fresh child process: the core
//! limit, dumpability, no_new_privs and the environment scrub, as the kernel
//! reports them before and after `harden_process`.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{is_child, report, run_child};
use secmem::hardening;

const CANARY_VAR: &str = "EXAMPLE_API_TOKEN";
const CANARY: &str = "tok3n-7f4c1d9e2ab84c55-canary";

fn core_limit() -> (u64, u64) {
    let mut lim = libc::rlimit { rlim_cur: 9, rlim_max: 9 };
    // SAFETY: getrlimit writes into a struct we own.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) }, 0);
    (lim.rlim_cur, lim.rlim_max)
}

/// From this thread's status: no_new_privs is a per-thread attribute, and
/// libtest runs the child's test on a thread of its own.
fn status_field(name: &str) -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_string()
}

#[test]
#[ignore = "child-process entry point: its parent test runs it in a fresh, unprivileged process"]
fn child_hardens_itself() {
    assert!(is_child(), "run only as a child of its parent test");
    let environ_has_canary = || {
        std::fs::read("/proc/self/environ")
            .map(|b| b.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()).to_string())
            .unwrap_or_else(|e| format!("unreadable:{:?}", e.kind()))
    };
    report("before_environ_canary", environ_has_canary());
    report("before_getenv", std::env::var(CANARY_VAR).is_ok());
    report("before_core", format!("{:?}", core_limit()));
    report("before_status_owner", std::fs::metadata("/proc/self/status").unwrap().uid());

    let outcome = hardening::harden_process();
    report("scrubbed", outcome.scrubbed_env.join(","));
    report("after_core", format!("{:?}", core_limit()));
    // SAFETY: prctl with integer arguments only.
    report("after_dumpable", unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) });
    report("after_nnp", status_field("NoNewPrivs:"));
    report("after_status_owner", std::fs::metadata("/proc/self/status").unwrap().uid());
    report("after_getenv", std::env::var(CANARY_VAR).is_ok());
    report("after_environ_canary", environ_has_canary());
    let check = hardening::self_check(secmem::global());
    for c in &check.controls {
        report(&format!("control_{}", c.name), c.on);
    }
    report("selfcheck_passed", check.passed());
}

#[test]
fn hardening_disables_core_dumps_and_dumpability_and_scrubs_secrets() {
    for unprivileged in [false, true] {
        let out = run_child("child_hardens_itself", unprivileged, &[(CANARY_VAR, CANARY), ("PLAIN_SETTING", "x")]);
        assert!(out.success, "child failed:\n{}\n{}", out.stdout, out.stderr);
        // Before: the secret is visible and core dumps are possible (positive control).
        assert_eq!(out.get("before_environ_canary"), "true");
        assert_eq!(out.get("before_getenv"), "true");
        assert_ne!(out.get("before_core"), "(0, 0)");
        // After: RLIMIT_CORE 0/0, not dumpable, no_new_privs.
        assert_eq!(out.get("after_core"), "(0, 0)");
        assert_eq!(out.get("after_dumpable"), "0");
        assert_eq!(out.get("after_nnp"), "1");
        assert_eq!(out.get("scrubbed"), CANARY_VAR, "only the secret-named variable is scrubbed");
        assert_eq!(out.get("after_getenv"), "false");
        if unprivileged {
            // The kernel hands a non-dumpable process's /proc files to root:
            // its own user can no longer read its environment or memory.
            assert_ne!(out.get("before_status_owner"), "0");
            assert_eq!(out.get("after_status_owner"), "0");
            assert!(out.get("after_environ_canary").starts_with("unreadable"));
        } else {
            // Root can still read /proc/self/environ: the value is wiped in place.
            assert_eq!(out.get("after_environ_canary"), "false");
        }
        for control in
            ["core_dumps_disabled", "not_dumpable", "no_new_privs", "env_scrubbed", "locked_memory", "dump_exclusion"]
        {
            assert_eq!(out.get(&format!("control_{control}")), "true", "{control} (unprivileged={unprivileged})");
        }
        assert_eq!(out.get("selfcheck_passed"), "true");
    }
}

#[test]
fn self_check_reports_mandatory_controls_off_in_an_unhardened_process() {
    // This test process is not hardened: the check must say so, not pass.
    let check = hardening::self_check(secmem::global());
    assert!(!check.passed());
    let off: Vec<&str> = check.failures().iter().map(|c| c.name).collect();
    assert!(off.contains(&"not_dumpable") && off.contains(&"no_new_privs"), "{off:?}");
    for line in check.lines() {
        let v: serde_json::Value = serde_json::from_str(&line).expect("each line is one JSON object");
        assert!(v["control"].is_string() && (v["state"] == "on" || v["state"] == "off"));
    }
}

#[test]
fn secret_env_names_are_recognised() {
    for name in ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "db_password", "SOLANA_KEYPAIR", "KES_SKEY", "OPENAI_API_KEY"]
    {
        assert!(hardening::is_secret_env_name(name.as_bytes()), "{name}");
    }
    for name in ["PATH", "HOME", "KEYWARD_CONFIG", "RUST_LOG", "LANG"] {
        assert!(!hardening::is_secret_env_name(name.as_bytes()), "{name}");
    }
}
