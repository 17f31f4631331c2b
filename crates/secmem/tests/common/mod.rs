//! Child-process plumbing shared by the secmem integration tests.
//!
//! Some properties can only be observed in a fresh process (a lowered
//! RLIMIT_MEMLOCK, lost CAP_IPC_LOCK, a hardened and non-dumpable process).
//! The test binary re-executes itself, running one named test function, with
//! `SECMEM_TEST_CHILD` set; that function does the work and prints
//! `RESULT key=value` lines for the parent to assert on.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

pub const CHILD_ENV: &str = "SECMEM_TEST_CHILD";
pub const NOBODY: u32 = 65534;

/// True in the child process started by [`run_child`]; child entry points are
/// `#[ignore]`d tests that the parent runs with `--ignored`.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

pub fn report(key: &str, value: impl std::fmt::Display) {
    println!("RESULT {key}={value}");
}

pub struct ChildOutput {
    pub success: bool,
    pub results: BTreeMap<String, String>,
    pub stdout: String,
    pub stderr: String,
}

impl ChildOutput {
    pub fn get(&self, key: &str) -> &str {
        self.results
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("child reported no {key}; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the test function `test_name` of this binary in a child process.
/// With `unprivileged`, the child runs as `nobody` (when we are root): it has
/// no capabilities, so CAP_IPC_LOCK no longer lifts RLIMIT_MEMLOCK.
pub fn run_child(test_name: &str, unprivileged: bool, envs: &[(&str, &str)]) -> ChildOutput {
    // Copying an executable while another thread forks leaves the copy's write
    // descriptor open in that fork until it execs, and exec of the copy then
    // fails with ETXTBSY. Copy and spawn one child at a time.
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let spawn_guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().expect("current_exe");
    // A copy in a world-readable directory, so `nobody` can execute it
    // wherever the build directory lives.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy: PathBuf = dir.path().join("child");
    std::fs::copy(&exe, &copy).expect("copy test binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = Command::new(&copy);
    cmd.args(["--exact", test_name, "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .current_dir("/");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    if unprivileged && is_root() {
        // std drops supplementary groups itself when root sets a uid.
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn child");
    drop(spawn_guard);
    let out = child.wait_with_output().expect("wait for child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let results = stdout
        .lines()
        // libtest may print "test name ... " on the same line before the first result.
        .filter_map(|l| l.find("RESULT ").map(|i| &l[i + "RESULT ".len()..]))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ChildOutput { success: out.status.success(), results, stdout, stderr }
}
