//! Attacks on availability by hostile local users (issue 14, items 3 to 6):
//! RT-028 (one peer takes every session), RT-029 (a refusal flood fills the
//! disk), RT-031 (the key reaper stopped) and RT-032 (a socket directory
//! owned by someone else). The peers are real unprivileged uids: this runner
//! re-executed as them ([`crate::peer`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use daemon_harness::{AsUser, Daemon, Options, SIGTERM, x402_intent};
use ipc::api::{Request, Response};

use super::FnAttack;
use super::beside_me;
use crate::ledger::Probe;
use crate::peer;

const NOGROUP: u32 = 65534;
const AGENT_A: u32 = 65510;
const AGENT_B: u32 = 65511;
const APPROVER: u32 = 65512;
const STRANGER: u32 = 65534;

pub(super) fn all() -> Vec<FnAttack> {
    vec![
        FnAttack {
            id: "RT-028",
            checks: &["agent_stopped_at_quota", "agents_share_bounded", "admin_answers", "approver_gets_session"],
            attack: session_hog,
        },
        FnAttack { id: "RT-029", checks: &["flood_refused", "records_bounded"], attack: refusal_flood },
        FnAttack {
            id: "RT-031",
            checks: &["keys_wiped_after_stops", "still_signs", "no_thread_died"],
            attack: reaper_stop,
        },
        FnAttack {
            id: "RT-032",
            checks: &["foreign_owner_refused", "sticky_shared_refused", "left_unchanged"],
            attack: socket_dir,
        },
    ]
}

fn rule(uid: u32, role: &str) -> String {
    format!("[[peer]]\nuid = {uid}\nrole = \"{role}\"\n")
}

fn start(options: Options) -> Result<Daemon, String> {
    let keywardd = beside_me("keywardd").ok_or("keywardd is not built beside the runner")?;
    Daemon::try_start(&keywardd, &options).map_err(|e| format!("cannot start keywardd: {e}"))
}

fn as_peer(d: &Daemon, uid: u32, mode: &str) -> Result<AsUser, String> {
    let (socket, pin) = (d.socket.display().to_string(), d.pin_file.display().to_string());
    AsUser::spawn(uid, NOGROUP, &[peer::ARG], &[(peer::MODE, mode), (peer::SOCKET, &socket), (peer::PIN, &pin)])
        .map_err(|e| format!("cannot run a peer as uid {uid}: {e}"))
}

fn opened_and_refused(p: &mut AsUser) -> (usize, String) {
    let opened = p.next("OPENED ").and_then(|n| n.parse().ok()).unwrap_or(0);
    (opened, p.next("REFUSED ").unwrap_or_else(|| format!("no report: {}", p.stderr_text())))
}

fn session_hog(probe: &mut Probe) -> String {
    let peers = [rule(0, "admin"), rule(AGENT_A, "agent"), rule(AGENT_B, "agent"), rule(APPROVER, "approver")].concat();
    let d = match start(Options {
        daemon: format!("socket_group = {NOGROUP}\nmax_connections = 36\nreserved_for_operators = 8"),
        peers,
        // The production per-uid quota (16), not the harness's load-test one.
        max_sessions_per_uid: None,
        ..Options::default()
    }) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let Ok(mut a) = as_peer(&d, AGENT_A, "hold:100") else { return "cannot run agent A".into() };
    let got = opened_and_refused(&mut a);
    probe.check("agent_stopped_at_quota", got == (16, "IPC_PEER_QUOTA".into()), format!("agent A: {got:?}"));
    let Ok(mut b) = as_peer(&d, AGENT_B, "hold:100") else { return "cannot run agent B".into() };
    let got = opened_and_refused(&mut b);
    probe.check("agents_share_bounded", got == (12, "IPC_BUSY".into()), format!("agent B: {got:?}"));
    let t = Instant::now();
    let admin = d.client().map(|mut c| matches!(c.call(&Request::Ping), Ok(Response::Pong { .. })));
    probe.check(
        "admin_answers",
        admin.as_ref().is_ok_and(|ok| *ok),
        format!("admin ping with the agents' share full: {admin:?} in {} us", t.elapsed().as_micros()),
    );
    let Ok(mut approver) = as_peer(&d, APPROVER, "hold:1") else { return "cannot run the approver".into() };
    let got = opened_and_refused(&mut approver);
    probe.check("approver_gets_session", got == (1, "none".into()), format!("approver: {got:?}"));
    drop((a, b, approver));
    "one agent was stopped at 16 sessions, the agents at their share; admin and approver kept theirs".into()
}

fn refusal_flood(probe: &mut Probe) -> String {
    let d = match start(Options { daemon: format!("socket_group = {NOGROUP}"), ..Options::default() }) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let before = d.audit().len();
    let Ok(mut flood) = as_peer(&d, STRANGER, "flood:2000") else { return "cannot run the flood".into() };
    let got = flood.next("FLOOD ").unwrap_or_default();
    let _ = flood.finish();
    probe.check("flood_refused", got == "2000 DENY_PEER_NOT_ALLOWED", got);
    let _ = d.wait_for("peer_rejected_summary", Duration::from_secs(15), |e| e["uid"] == STRANGER);
    let grown = d.audit()[before..].to_vec();
    let records = grown.iter().filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("peer_rejected"))).count();
    let counted: u64 = grown
        .iter()
        .filter(|e| e["uid"] == STRANGER)
        .map(|e| match e["event"].as_str() {
            Some("peer_rejected") => 1,
            Some("peer_rejected_summary") => e["count"].as_u64().unwrap_or(0),
            _ => 0,
        })
        .sum();
    probe.check(
        "records_bounded",
        records <= 4 && counted == 2000,
        format!("{records} audit records account for {counted} of 2000 refusals"),
    );
    "2000 refused connections were audited as a handful of records carrying the full count".into()
}

fn reaper_stop(probe: &mut Probe) -> String {
    let d = match start(Options::default()) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if !matches!(d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }), Ok(Response::Key { .. })) {
        return "cannot create a key".into();
    }
    let sign = |key: &str| {
        matches!(
            d.call(&Request::Submit { intent: x402_intent(key, 1000) }),
            Ok(Response::Decision { signature: Some(_), .. })
        )
    };
    let keys = || match d.call(&Request::DaemonStatus) {
        Ok(Response::Daemon { status }) => status["keys"].clone(),
        _ => serde_json::Value::Null,
    };
    let wiped = |within: Duration| {
        let deadline = Instant::now() + within;
        loop {
            let k = keys();
            if !k.is_null() && k["unseals"] == k["wiped"] && k["unseals"].as_u64() >= Some(1) {
                return (true, k);
            }
            if Instant::now() > deadline {
                return (false, k);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let _ = sign("rt031-1");
    let Some(pid) = d.pid().map(|p| p.to_string()) else { return "no pid".into() };
    for _ in 0..5 {
        let _ = std::process::Command::new("kill").args(["-STOP", &pid]).status();
        std::thread::sleep(Duration::from_millis(30));
        let _ = std::process::Command::new("kill").args(["-CONT", &pid]).status();
        std::thread::sleep(Duration::from_millis(150));
    }
    let (ok, k) = wiped(Duration::from_secs(5));
    probe.check("keys_wiped_after_stops", ok, k.to_string());
    probe.check("still_signs", sign("rt031-2"), "a payment after five stop/continue rounds");
    let died = d.events("thread_died");
    let stderr = d.stderr_text();
    probe.check(
        "no_thread_died",
        died.is_empty() && !stderr.contains("panicked"),
        format!("thread_died records: {}; panics in stderr: {}", died.len(), stderr.contains("panicked")),
    );
    "five SIGSTOP/SIGCONT rounds: the reaper kept wiping keys and the signer kept signing".into()
}

fn mode_of(p: &Path) -> (u32, u32, u32) {
    std::fs::symlink_metadata(p).map(|m| (m.mode() & 0o7777, m.uid(), m.gid())).unwrap_or((0, 0, 0))
}

fn socket_dir(probe: &mut Probe) -> String {
    let mut d = match start(Options::default()) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let dir = match d.socket.parent() {
        Some(p) => p.to_path_buf(),
        None => return "no socket directory".into(),
    };
    if d.signal_and_wait(SIGTERM, Duration::from_secs(10)).is_none() {
        return "keywardd did not stop".into();
    }
    let refused = |d: &mut Daemon| match d.launch() {
        Ok(()) => {
            let _ = d.signal_and_wait(SIGTERM, Duration::from_secs(10));
            (false, "started".to_string())
        }
        Err(e) => (e.0.contains("KW_SOCKET_DIR_UNSAFE"), e.0.lines().last().unwrap_or("").to_string()),
    };
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750));
    let _ = std::os::unix::fs::chown(&dir, Some(65533), Some(NOGROUP));
    let (ok, why) = refused(&mut d);
    probe.check("foreign_owner_refused", ok, why);
    let foreign_kept = mode_of(&dir) == (0o750, 65533, NOGROUP);
    let _ = std::os::unix::fs::chown(&dir, Some(0), Some(0));
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    let (ok, why) = refused(&mut d);
    probe.check("sticky_shared_refused", ok, why);
    let sticky_kept = mode_of(&dir) == (0o1777, 0, 0);
    probe.check(
        "left_unchanged",
        foreign_kept && sticky_kept,
        format!("foreign dir unchanged: {foreign_kept}; sticky dir unchanged: {sticky_kept}"),
    );
    "a socket directory owned by another uid, and a shared sticky one, were refused and left as they were".into()
}
