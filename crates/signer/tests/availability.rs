//! Availability under hostile local peers (issue 14), against a real
//! `keywardd` with its own software TPM and vault, peers being real
//! unprivileged uids (this binary re-executed as them, [`AsUser`]):
//!
//! * one uid cannot take every session, and the operators' reserve keeps a
//!   session for an approver or admin however many agents fill theirs;
//! * refused connections are counted, not each written and fsynced;
//! * `kill -STOP`/`-CONT` does not kill the key reaper;
//! * the socket directory is created 0750, or used as it is only if it is
//!   safe, and never changed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use daemon_harness::{AsUser, Daemon, Options, SIGTERM, answer, x402_intent};
use ipc::api::{Request, Response, Role};
use ipc::frame::write_frame;

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");
const NOGROUP: u32 = 65534;
/// Unprivileged uids with no `[[peer]]` rule unless a test gives them one.
const AGENT_A: u32 = 65520;
const AGENT_B: u32 = 65521;
const AGENT_C: u32 = 65522;
const APPROVER: u32 = 65523;
const STRANGER: u32 = 65534;

/// What the re-executed child does (see [`peer_child`]).
const MODE: &str = "KW_AVAIL_MODE";
const SOCKET: &str = "KW_AVAIL_SOCKET";
const PIN: &str = "KW_AVAIL_PIN";

fn daemon(options: Options) -> Daemon {
    Daemon::start(Path::new(KEYWARDD), &options)
}

fn rule(uid: u32, role: &str) -> String {
    format!("[[peer]]\nuid = {uid}\nrole = \"{role}\"\n")
}

/// This binary, re-executed as `uid` (group [`NOGROUP`], the socket's),
/// running [`peer_child`] in `mode` against `d`.
fn peer(d: &Daemon, uid: u32, mode: &str) -> AsUser {
    let (socket, pin) = (d.socket.display().to_string(), d.pin_file.display().to_string());
    let args = ["--exact", "peer_child", "--ignored", "--nocapture", "--test-threads=1"];
    AsUser::spawn(uid, NOGROUP, &args, &[(MODE, mode), (SOCKET, &socket), (PIN, &pin)]).expect("spawn peer")
}

/// Not a test: the body of [`peer`]'s children (`daemon_harness::peer`).
#[test]
#[ignore = "run by the other tests as another uid"]
fn peer_child() {
    let Ok(mode) = std::env::var(MODE) else { return };
    let socket = std::path::PathBuf::from(std::env::var(SOCKET).unwrap());
    let pin = ipc::client::read_pin(Path::new(&std::env::var(PIN).unwrap())).unwrap();
    assert_eq!(daemon_harness::peer::run(&mode, &socket, pin), 0, "peer mode {mode}");
}

fn opened_and_refused(p: &mut AsUser) -> (usize, String) {
    let opened = p.next("OPENED ").unwrap_or_else(|| panic!("no report: {}", p.stderr_text()));
    (opened.parse().unwrap(), p.next("REFUSED ").unwrap())
}

/// Item 3: one agent uid opens sessions until its quota refuses it
/// (`IPC_PEER_QUOTA`, audited); a second agent fills the agents' share
/// (`IPC_BUSY` below its own quota), a third gets nothing; an admin and an
/// approver still get sessions that answer. Production quota (16 per uid);
/// `max_connections = 36` with 8 reserved puts the agents' share at 28.
#[test]
fn one_agent_cannot_hold_the_socket_and_operators_keep_their_reserve() {
    let peers = [rule(0, "admin"), rule(AGENT_A, "agent"), rule(AGENT_B, "agent"), rule(AGENT_C, "agent")].concat()
        + &rule(APPROVER, "approver");
    let d = daemon(Options {
        daemon: format!("socket_group = {NOGROUP}\nmax_connections = 36\nreserved_for_operators = 8"),
        peers,
        max_sessions_per_uid: None,
        ..Options::default()
    });
    let mut a = peer(&d, AGENT_A, "hold:100");
    assert_eq!(opened_and_refused(&mut a), (16, "IPC_PEER_QUOTA".to_string()), "agent A at its quota");
    let mut b = peer(&d, AGENT_B, "hold:100");
    assert_eq!(opened_and_refused(&mut b), (12, "IPC_BUSY".to_string()), "agent B at the agents' share");
    let mut c = peer(&d, AGENT_C, "hold:1");
    assert_eq!(opened_and_refused(&mut c), (0, "IPC_BUSY".to_string()), "agent C: nothing left for agents");
    // The reserve: an admin's session answers, and so does an approver's.
    let mut admin = d.client().expect("an admin session within the reserve");
    assert!(matches!(admin.call(&Request::Ping), Ok(Response::Pong { uid: 0, role: Role::Admin, .. })));
    let mut approver = peer(&d, APPROVER, "hold:1");
    assert_eq!(opened_and_refused(&mut approver), (1, "none".to_string()), "{}", approver.stderr_text());
    // Refusals are audited with their codes (the first of each at once).
    let refused = d.events("connection_refused");
    let has = |uid: u32, code: &str| refused.iter().any(|e| e["uid"] == uid && e["code"] == code);
    assert!(has(AGENT_A, "IPC_PEER_QUOTA") && has(AGENT_B, "IPC_BUSY") && has(AGENT_C, "IPC_BUSY"), "{refused:?}");
    // Agent A lets go: its share is the agents' again.
    a.finish().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = peer(&d, AGENT_C, "hold:1");
        if opened_and_refused(&mut c).0 == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "agent C never got a session back");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((b, approver));
    assert!(d.ping_ok());
}

/// Item 4: 2 000 connections from a uid without a rule, and 300 failed
/// handshakes from an admitted peer, leave a handful of records whose
/// counts add up to every refusal; the interval's summary is written by the
/// accept loop, and what is still counted at shutdown before `stopped`.
#[test]
fn a_refusal_flood_is_counted_not_written_record_by_record() {
    let mut d = daemon(Options { daemon: format!("socket_group = {NOGROUP}"), ..Options::default() });
    let before = d.audit().len();
    let mut flood = peer(&d, STRANGER, "flood:2000");
    assert_eq!(flood.next("FLOOD ").as_deref(), Some("2000 DENY_PEER_NOT_ALLOWED"), "{}", flood.stderr_text());
    flood.finish().unwrap();
    // Failed handshakes (garbage instead of a ClientHello) from root.
    let garbage = |n: usize| {
        for _ in 0..n {
            let mut s = UnixStream::connect(&d.socket).unwrap();
            write_frame(&mut s, b"GET / HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(answer(&mut s), Err("IPC_MALFORMED".to_string()));
        }
    };
    garbage(300);
    // Within one interval (10 s) and one accept-loop tick, the summaries.
    assert!(
        d.wait_for("peer_rejected_summary", Duration::from_secs(15), |e| e["uid"] == STRANGER),
        "no summary: {:?}",
        d.audit()[before..].to_vec()
    );
    assert!(d.wait_for("handshake_failed_summary", Duration::from_secs(2), |e| e["uid"] == 0));
    let grown = d.audit()[before..].to_vec();
    let of = |event: &str, uid: u32| -> Vec<serde_json::Value> {
        grown.iter().filter(|e| e["event"] == event && e["uid"] == uid).cloned().collect()
    };
    let counted = |event: &str, uid: u32| -> u64 {
        of(&format!("{event}_summary"), uid).iter().map(|e| e["count"].as_u64().unwrap()).sum::<u64>()
            + of(event, uid).len() as u64
    };
    assert_eq!(counted("peer_rejected", STRANGER), 2000, "{grown:?}");
    assert_eq!(counted("handshake_failed", 0), 300, "{grown:?}");
    let summary = of("peer_rejected_summary", STRANGER).remove(0);
    assert_eq!(
        (summary["gid"].as_u64(), summary["code"].as_str()),
        (Some(NOGROUP.into()), Some("DENY_PEER_NOT_ALLOWED"))
    );
    assert!(summary["first_ts_ms"].as_u64() <= summary["last_ts_ms"].as_u64());
    let refusal_records = grown
        .iter()
        .filter(|e| ["peer_rejected", "handshake_failed"].iter().any(|p| e["event"].as_str().unwrap().starts_with(p)))
        .count();
    assert!(refusal_records <= 6, "{refusal_records} records for 2 300 refusals: {grown:?}");
    // A new interval: again one record at once, the rest counted until the
    // shutdown writes them before `stopped`.
    garbage(50);
    let status = d.signal_and_wait(SIGTERM, Duration::from_secs(10)).expect("keywardd did not stop");
    assert!(status.success(), "{status:?}");
    let tail: Vec<_> = d.audit()[before + grown.len()..].to_vec();
    let names: Vec<&str> = tail.iter().map(|e| e["event"].as_str().unwrap()).collect();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("no {name}: {names:?}"));
    assert!(at("handshake_failed") < at("handshake_failed_summary") && at("handshake_failed_summary") < at("stopped"));
    let last = &tail[at("handshake_failed_summary")];
    assert_eq!(last["count"], 49, "{last}");
}

/// Item 5: stopping and continuing the daemon (as a debugger or `kill
/// -STOP` does) used to kill the key reaper (its sleep was resumed through
/// `restart_syscall`, which the sandbox refused, and std's sleep panicked):
/// keys then stayed unsealed. Now the reaper lives on and wipes.
#[test]
fn stop_and_continue_do_not_kill_the_key_reaper() {
    let d = daemon(Options::default());
    assert!(matches!(
        d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }),
        Ok(Response::Key { .. })
    ));
    let sign = |key: &str| match d.call(&Request::Submit { intent: x402_intent(key, 1000) }) {
        Ok(Response::Decision { signature: Some(_), .. }) => {}
        other => panic!("not signed: {other:?}"),
    };
    let keys = || match d.call(&Request::DaemonStatus) {
        Ok(Response::Daemon { status }) => status["keys"].clone(),
        other => panic!("{other:?}; thread_died: {:?}; stderr: {}", d.events("thread_died"), d.stderr_text()),
    };
    sign("stop-1");
    let pid = d.pid().unwrap().to_string();
    for _ in 0..5 {
        let stop = std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let cont = std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap();
        assert!(stop.success() && cont.success());
        std::thread::sleep(Duration::from_millis(150));
    }
    // The reaper still runs: within the window (2 s) and a margin, every
    // unsealed key is wiped.
    let wiped_all = |within: Duration| {
        let deadline = Instant::now() + within;
        loop {
            let k = keys();
            if k["unseals"] == k["wiped"] {
                return k;
            }
            assert!(Instant::now() < deadline, "keys stay unsealed: {k}; stderr: {}", d.stderr_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let k = wiped_all(Duration::from_secs(5));
    assert!(k["unseals"].as_u64() >= Some(1), "{k}");
    // It still signs, and wipes again.
    sign("stop-2");
    let after = wiped_all(Duration::from_secs(5));
    assert!(after["unseals"].as_u64() > k["unseals"].as_u64());
    let stderr = d.stderr_text();
    assert!(!stderr.contains("panicked") && !stderr.contains("KW_THREAD_DIED"), "{stderr}");
    assert!(d.events("thread_died").is_empty());
    assert!(d.ping_ok());
}

fn mode_of(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
}

/// Item 6: a fresh socket directory is created 0750 with the socket's
/// group; an existing safe one is used as it is; one owned by another
/// user, a shared sticky one like /tmp and a symbolic link are refused with
/// `KW_SOCKET_DIR_UNSAFE`, and none of them is changed.
#[test]
fn the_socket_directory_is_created_or_used_as_is_never_changed() {
    let mut d = daemon(Options { daemon: format!("socket_group = {NOGROUP}"), ..Options::default() });
    let dir = d.socket.parent().unwrap().to_path_buf();
    assert_eq!(mode_of(&dir), (0o750, 0, NOGROUP), "created by keywardd");
    let stop = |d: &mut Daemon| {
        let s = d.signal_and_wait(SIGTERM, Duration::from_secs(10)).expect("keywardd did not stop");
        assert!(s.success(), "{s:?}");
    };
    stop(&mut d);
    // Our own, not writable by others: used as it is (no chmod, no chgrp).
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710)).unwrap();
    chown(&dir, 0, 0);
    d.launch().unwrap();
    assert_eq!(mode_of(&dir), (0o710, 0, 0), "an existing directory was changed");
    assert!(d.ping_ok());
    stop(&mut d);
    let refused = |d: &mut Daemon, why: &str| {
        let e = d.launch().expect_err("an unsafe socket directory was accepted").0;
        assert!(e.contains("KW_SOCKET_DIR_UNSAFE") && e.contains(why), "{e}");
    };
    // Owned by another user (who could swap the socket).
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    chown(&dir, 65533, NOGROUP);
    refused(&mut d, "owned by uid 65533");
    assert_eq!(mode_of(&dir), (0o750, 65533, NOGROUP));
    // Shared and sticky, like /tmp: refused, and not chmod-ed or chgrp-ed.
    chown(&dir, 0, 0);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    refused(&mut d, "writable by its group or by others (mode 1777)");
    assert_eq!(mode_of(&dir), (0o1777, 0, 0));
    // Group-writable, owned by us.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    refused(&mut d, "mode 0770");
    assert_eq!(mode_of(&dir), (0o770, 0, 0));
    // A symbolic link to a safe directory.
    let real = dir.with_file_name("run.real");
    std::fs::rename(&dir, &real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink(&real, &dir).unwrap();
    refused(&mut d, "symbolic link");
    assert_eq!(mode_of(&real), (0o750, 0, 0));
    // Gone: created afresh, 0750 with the socket's group.
    std::fs::remove_file(&dir).unwrap();
    d.launch().unwrap();
    assert_eq!(mode_of(&dir), (0o750, 0, NOGROUP));
    assert!(d.ping_ok());
}
