//! When memory cannot be locked, allocation fails with a typed error; there is
//! no unlocked fallback. Run in an unprivileged child (no CAP_IPC_LOCK) with a
//! lowered RLIMIT_MEMLOCK, for both backends.

mod common;

use common::{is_child, report, run_child};
use secmem::{Backend, MLockedBytes, Pool};

/// Child side: lower the limit, then allocate until the kernel says no.
#[test]
#[ignore = "child-process entry point: its parent test runs it in a fresh, unprivileged process"]
fn child_allocates_under_a_memlock_limit() {
    assert!(is_child(), "run only as a child of its parent test");
    let limit: u64 = std::env::var("SECMEM_CHILD_MEMLOCK").unwrap().parse().unwrap();
    let backend = match std::env::var("SECMEM_CHILD_BACKEND").unwrap().as_str() {
        "mlock" => Backend::Mlock,
        _ => Backend::MemfdSecret,
    };
    let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: setrlimit reads a struct we own; lowering a limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) }, 0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim().to_string();
    report("cap_eff", cap_eff);
    // SAFETY: geteuid has no preconditions.
    report("euid", unsafe { libc::geteuid() });

    let pool = Pool::new(backend).unwrap().leak();
    // Small secrets until the limit is reached: every one that succeeds is locked.
    let mut held = Vec::new();
    let err = loop {
        match MLockedBytes::new_in(pool, 2048) {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        if held.len() > 100_000 {
            panic!("no limit enforced");
        }
    };
    report("small_ok", held.len());
    report("small_err", err.code());
    report("locked_bytes", pool.stats().locked_bytes);
    drop(held);
    pool.trim();
    // A single secret larger than the limit.
    match MLockedBytes::new_in(pool, 4 * limit as usize + 4096) {
        Ok(_) => report("big_err", "none"),
        Err(e) => report("big_err", e.code()),
    }
}

fn parent(backend: &str, limit: u64) -> common::ChildOutput {
    let limit_s = limit.to_string();
    let out = run_child(
        "child_allocates_under_a_memlock_limit",
        true,
        &[("SECMEM_CHILD_MEMLOCK", limit_s.as_str()), ("SECMEM_CHILD_BACKEND", backend)],
    );
    assert!(out.success, "child failed:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.get("cap_eff"), "0000000000000000", "the child has no capabilities");
    assert_ne!(out.get("euid"), "0");
    out
}

#[test]
fn mlock_backend_fails_closed_at_the_limit() {
    let limit = 64 * 1024;
    let out = parent("mlock", limit);
    assert_eq!(out.get("small_err"), "SECMEM_LOCK_LIMIT");
    let ok: u64 = out.get("small_ok").parse().unwrap();
    let locked: u64 = out.get("locked_bytes").parse().unwrap();
    assert!(ok >= 2 * 15, "secrets within the limit were allocated ({ok})");
    assert!(locked <= limit, "never more locked than the limit allows ({locked})");
    assert_eq!(out.get("big_err"), "SECMEM_LOCK_LIMIT");
    // With a zero limit the kernel refuses locking outright.
    let out = parent("mlock", 0);
    assert_eq!(out.get("small_ok"), "0");
    assert_eq!(out.get("small_err"), "SECMEM_LOCK_DENIED");
}

#[test]
fn memfd_secret_backend_fails_closed_at_the_limit() {
    if Pool::new(Backend::MemfdSecret).is_err() {
        println!("SKIP reason: this kernel has no memfd_secret(2); the mlock case covers fail-closed");
        return;
    }
    let limit = 64 * 1024;
    let out = parent("memfd_secret", limit);
    assert_eq!(out.get("small_err"), "SECMEM_LOCK_LIMIT");
    let locked: u64 = out.get("locked_bytes").parse().unwrap();
    assert!(out.get("small_ok").parse::<u64>().unwrap() >= 2 * 15);
    assert!(locked <= limit, "never more locked than the limit allows ({locked})");
    assert_eq!(out.get("big_err"), "SECMEM_LOCK_LIMIT");
    let out = parent("memfd_secret", 0);
    assert_eq!(out.get("small_ok"), "0");
    assert_eq!(out.get("small_err"), "SECMEM_LOCK_LIMIT");
}
