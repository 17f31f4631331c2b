//! `keywardd self-check` as a real process: hardened, scrubbed, and refusing
//! to start when locked memory is impossible.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use serde_json::Value;

const SECRET_VAR: &str = "AGENT_WALLET_PASSPHRASE";
const SECRET_VALUE: &str = "correct-horse-9d1f0b7c-battery-staple";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().nth(1) == Some("0"))
}

/// Runs `keywardd self-check`, optionally as `nobody` and under a memlock limit.
fn self_check(unprivileged: bool, memlock_kib: Option<u64>) -> (Output, tempfile::TempDir) {
    // Copying an executable while another test thread forks leaves the copy's
    // write descriptor open in that fork until it execs, and exec of the copy
    // then fails with ETXTBSY: copy and spawn one child at a time.
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    // A copy `nobody` can execute wherever the build directory lives.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("keywardd");
    std::fs::copy(env!("CARGO_BIN_EXE_keywardd"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = match memlock_kib {
        // The shell lowers the limit (no privilege needed), then becomes keywardd.
        Some(kib) => {
            let mut c = Command::new("/bin/sh");
            c.args(["-c", &format!("ulimit -l {kib} && exec \"$0\" self-check")]).arg(&exe);
            c
        }
        None => {
            let mut c = Command::new(&exe);
            c.arg("self-check");
            c
        }
    };
    cmd.env(SECRET_VAR, SECRET_VALUE).current_dir("/");
    if unprivileged && is_root() {
        cmd.uid(65534).gid(65534);
    }
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop(guard);
    (child.wait_with_output().unwrap(), dir)
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn control<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines.iter().find(|l| l["control"] == name).unwrap_or_else(|| panic!("no line for {name}"))
}

#[test]
fn self_check_passes_hardened_as_root_and_as_an_unprivileged_user() {
    for unprivileged in [false, true] {
        let (out, _dir) = self_check(unprivileged, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "unprivileged={unprivileged}: {stderr}");
        let lines = lines(&out);
        for name in
            ["core_dumps_disabled", "not_dumpable", "no_new_privs", "env_scrubbed", "locked_memory", "dump_exclusion"]
        {
            let c = control(&lines, name);
            assert_eq!(c["state"], "on", "{name}: {c}");
            assert_eq!(c["mandatory"], true);
        }
        let scrubbed = lines.iter().find(|l| l["event"] == "env_scrubbed").expect("scrub reported");
        assert_eq!(scrubbed["variables"], serde_json::json!([SECRET_VAR]));
        assert_eq!(lines.last().unwrap()["result"], "pass");
        let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
        assert!(!all.contains(SECRET_VALUE), "the secret's value never appears in output");
    }
}

#[test]
fn self_check_refuses_to_start_when_memory_cannot_be_locked() {
    // Unprivileged with RLIMIT_MEMLOCK 0: no page can be locked.
    let (out, _dir) = self_check(true, Some(0));
    assert_eq!(out.status.code(), Some(3), "exit code 3 = KW_SELFCHECK_FAILED");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KW_SELFCHECK_FAILED") && stderr.contains("locked_memory"), "{stderr}");
    let lines = lines(&out);
    let locked = control(&lines, "locked_memory");
    assert_eq!(locked["state"], "off");
    let detail = locked["detail"].as_str().unwrap();
    assert!(detail.contains("SECMEM_LOCK_LIMIT") || detail.contains("SECMEM_LOCK_DENIED"), "{detail}");
    assert_eq!(lines.last().unwrap()["result"], "fail");
}
