//! Attacks on the signer process and its socket: RT-004 (unauthorised
//! caller), RT-005 (record tampering), RT-006 (record replay), RT-014
//! (memory scraping outside the signer) and RT-015 (core dumps).
//!
//! Each scenario starts a real `keywardd` (the binary beside this runner)
//! with its own software TPM and vault, production settings throughout, and
//! attacks it over its real Unix socket or through `/proc`.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon_harness::{Daemon, Options, answer, sealed_submit};
use ipc::api::Request;
use ipc::frame::write_frame;
use vault::SecretProvider;

use super::beside_me;
use crate::ledger::{Probe, Scenario};

const NOBODY: u32 = 65534;

fn start(options: Options) -> Result<Daemon, String> {
    let keywardd = beside_me("keywardd").ok_or("keywardd is not built beside the runner")?;
    Daemon::try_start(&keywardd, &options).map_err(|e| format!("cannot start keywardd: {e}"))
}

#[derive(Debug)]
pub(super) struct UnauthorisedCaller;

impl Scenario for UnauthorisedCaller {
    fn id(&self) -> &'static str {
        "RT-004"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "an unmapped UID is refused with DENY_PEER_NOT_ALLOWED",
            "the refusal is an audit event with the peer's uid and pid",
            "it was refused before any handshake (no session or handshake event for it)",
            "a mapped caller is still served",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let d = match start(Options { daemon: format!("socket_group = {NOBODY}"), ..Options::default() }) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let Some(keyward) = beside_me("keyward") else { return "keyward is not built beside the runner".into() };
        // The attacker is a different local user who can reach the socket
        // (it is in the socket's group) but is in no [[peer]] rule.
        let out = Command::new(&keyward)
            .arg("--socket")
            .arg(&d.socket)
            .arg("--pin")
            .arg(&d.pin_file)
            .args(["submit", "-"])
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::null())
            .output();
        let stderr = out.as_ref().map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string()).unwrap_or_default();
        probe.check(
            "an unmapped UID is refused with DENY_PEER_NOT_ALLOWED",
            out.as_ref().is_ok_and(|o| !o.status.success()) && stderr.contains("DENY_PEER_NOT_ALLOWED"),
            stderr.clone(),
        );
        let logged = d.wait_for("peer_rejected", Duration::from_secs(5), |e| e["uid"] == NOBODY);
        probe.check(
            "the refusal is an audit event with the peer's uid and pid",
            logged,
            format!("{:?}", d.events("peer_rejected")),
        );
        let further = d.audit().into_iter().filter(|e| e["uid"] == NOBODY && e["event"] != "peer_rejected").count();
        probe.check(
            "it was refused before any handshake (no session or handshake event for it)",
            further == 0 && d.events("session_opened").is_empty(),
            format!("{further} later events for uid {NOBODY}"),
        );
        probe.check("a mapped caller is still served", d.ping_ok(), "root mapped to admin");
        format!("uid {NOBODY} refused by SO_PEERCRED before the handshake: {stderr}")
    }
}

#[derive(Debug)]
pub(super) struct RecordTamper;

impl Scenario for RecordTamper {
    fn id(&self) -> &'static str {
        "RT-005"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "every single-bit change to header, ciphertext or tag is refused and ends the session",
            "no tampered request reached the request handler",
            "every refusal is an audit event",
            "the untampered request is answered",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let d = match start(Options::default()) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let mut refused = 0;
        let mut wrong = Vec::new();
        let mut len = 0;
        // Every bit of one sealed request, one session per flip.
        for bit in 0.. {
            let (mut s, mut channel) = match d.raw_session() {
                Ok(x) => x,
                Err(e) => return format!("handshake failed: {e}"),
            };
            let mut record = sealed_submit(&mut channel, bit);
            len = record.len();
            if bit >= len * 8 {
                break;
            }
            record[bit / 8] ^= 1 << (bit % 8);
            let _ = write_frame(&mut s, &record);
            match answer(&mut s) {
                Err(code) if code.starts_with("DENY_") || code == "IPC_UNSUPPORTED_VERSION" => refused += 1,
                other => wrong.push(format!("bit {bit}: {:?}", other.map(|_| "a record"))),
            }
        }
        probe.check(
            "every single-bit change to header, ciphertext or tag is refused and ends the session",
            wrong.is_empty() && refused == len * 8,
            format!("{refused} of {} flips refused; accepted: {wrong:?}", len * 8),
        );
        let processed = handled(&d);
        probe.check("no tampered request reached the request handler", processed == 0, format!("{processed} handled"));
        let rejected = d.events("record_rejected").len();
        probe.check(
            "every refusal is an audit event",
            rejected == len * 8,
            format!("{rejected} record_rejected events"),
        );
        // Positive control: the same request untampered is decided.
        let control = d.raw_session().map_err(|e| e.to_string()).and_then(|(mut s, mut c)| {
            let _ = write_frame(&mut s, &sealed_submit(&mut c, 0));
            answer(&mut s)
        });
        probe.check("the untampered request is answered", control.is_ok(), format!("{:?}", control.err()));
        format!("{refused} bit flips over a {len}-byte record refused (DENY_AEAD_INTEGRITY / DENY_REPLAY / version)")
    }
}

#[derive(Debug)]
pub(super) struct RecordReplay;

impl Scenario for RecordReplay {
    fn id(&self) -> &'static str {
        "RT-006"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "an exact replay is refused with DENY_REPLAY",
            "a reordered record is refused with DENY_REPLAY",
            "a record replayed into another session is refused",
            "only the one genuine request was processed",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let d = match start(Options::default()) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let attempt = || -> Result<(String, String, String), String> {
            let (mut s, mut c) = d.raw_session().map_err(|e| e.to_string())?;
            let first = sealed_submit(&mut c, 1);
            write_frame(&mut s, &first).map_err(|e| e.to_string())?;
            answer(&mut s)?;
            write_frame(&mut s, &first).map_err(|e| e.to_string())?;
            let replay = answer(&mut s).err().unwrap_or_else(|| "ACCEPTED".into());
            let (mut s, mut c) = d.raw_session().map_err(|e| e.to_string())?;
            let _r1 = sealed_submit(&mut c, 2);
            let r2 = sealed_submit(&mut c, 3);
            write_frame(&mut s, &r2).map_err(|e| e.to_string())?;
            let reorder = answer(&mut s).err().unwrap_or_else(|| "ACCEPTED".into());
            let (mut s, _) = d.raw_session().map_err(|e| e.to_string())?;
            write_frame(&mut s, &first).map_err(|e| e.to_string())?;
            let cross = answer(&mut s).err().unwrap_or_else(|| "ACCEPTED".into());
            Ok((replay, reorder, cross))
        };
        let (replay, reorder, cross) = match attempt() {
            Ok(x) => x,
            Err(e) => return format!("could not run the attack: {e}"),
        };
        probe.check("an exact replay is refused with DENY_REPLAY", replay == "DENY_REPLAY", replay.clone());
        probe.check("a reordered record is refused with DENY_REPLAY", reorder == "DENY_REPLAY", reorder.clone());
        probe.check("a record replayed into another session is refused", cross == "DENY_AEAD_INTEGRITY", cross.clone());
        let handled = handled(&d);
        probe.check("only the one genuine request was processed", handled == 1, format!("{handled} handled"));
        format!("replay: {replay}; reorder: {reorder}; cross-session: {cross}")
    }
}

/// Intents the request handler acted on: decided, or refused at admission
/// (the harness intent names key `hot`, which these daemons do not hold).
fn handled(d: &Daemon) -> usize {
    d.events("intent_decided").len() + d.events("intent_refused").len()
}

/// Whether `needle` occurs in any readable mapping of process `pid`.
fn memory_contains(pid: u32, needle: &[u8]) -> Result<(bool, usize), String> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).map_err(|e| e.to_string())?;
    let mut scanned = 0;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else { continue };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else { continue };
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        scanned += buf.len();
        if buf.windows(needle.len()).any(|w| w == needle) {
            return Ok((true, scanned));
        }
    }
    Ok((false, scanned))
}

#[derive(Debug)]
pub(super) struct MemoryScraper;

impl Scenario for MemoryScraper {
    fn id(&self) -> &'static str {
        "RT-014"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "a non-signer process cannot read the signer's /proc memory paths",
            "the oracle read the signer's identity key from the vault",
            "the scraper works: it finds the signer's public key in the client",
            "the signer's private key is nowhere in the client's memory",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let mut d = match start(Options::default()) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let Some(keyward) = beside_me("keyward") else { return "keyward is not built beside the runner".into() };
        let Some(pid) = d.pid() else { return "no keywardd pid".into() };
        // 1. Another local user tries the signer's memory paths.
        let mut denied = Vec::new();
        for path in ["mem", "environ", "maps"] {
            let out = Command::new("head")
                .args(["-c", "1"])
                .arg(format!("/proc/{pid}/{path}"))
                .uid(NOBODY)
                .gid(NOBODY)
                .output();
            let ok = out.as_ref().is_ok_and(|o| !o.status.success() && o.stdout.is_empty());
            denied.push((path, ok, out.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())));
        }
        probe.check(
            "a non-signer process cannot read the signer's /proc memory paths",
            denied.iter().all(|(_, ok, _)| *ok),
            format!("{denied:?}"),
        );
        // 2. The signer's key (its identity key, which it uses on every
        //    handshake) is never in a client's memory. The oracle reads the
        //    key from the vault while the daemon is stopped (a running daemon
        //    holds the vault's lock), then the daemon is started again.
        let stopped = d.signal_and_wait(daemon_harness::SIGTERM, Duration::from_secs(10)).is_some();
        let cfg = vault::VaultConfig::new(
            &d.vault_dir,
            vault::tpm::TpmConfig { tcti: d.tpm.tcti(), pcr_policy: Some(vault::tpm::PcrPolicy::default()) },
        );
        let oracle = vault::Vault::open(cfg).and_then(|mut v| v.get("keywardd.identity"));
        let relaunched = d.launch();
        let oracle_ok = stopped && oracle.is_ok() && relaunched.is_ok();
        let oracle_why = format!(
            "stopped: {stopped}; oracle: {:?}; relaunch: {:?}",
            oracle.as_ref().err(),
            relaunched.as_ref().err()
        );
        if !probe.check("the oracle read the signer's identity key from the vault", oracle_ok, oracle_why.clone()) {
            return format!("cannot read the identity for the oracle: {oracle_why}");
        }
        let Ok(secret) = oracle else { return oracle_why };
        // A real client mid-session: it has connected and completed the
        // handshake, and waits for its intent on stdin.
        let mut client = match Command::new(&keyward)
            .arg("--socket")
            .arg(&d.socket)
            .arg("--pin")
            .arg(&d.pin_file)
            .args(["submit", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return format!("cannot start keyward: {e}"),
        };
        let in_session = d.wait_for("session_opened", Duration::from_secs(10), |_| true);
        let public = d.pin();
        let control = memory_contains(client.id(), &public);
        let scraped = memory_contains(client.id(), secret.bytes.as_slice());
        drop(client.stdin.take());
        let _ = client.wait();
        probe.check(
            "the scraper works: it finds the signer's public key in the client",
            in_session && matches!(control, Ok((true, _))),
            format!("session open: {in_session}; {control:?}"),
        );
        probe.check(
            "the signer's private key is nowhere in the client's memory",
            matches!(scraped, Ok((false, n)) if n > 0),
            format!("{scraped:?} bytes scanned"),
        );
        format!("signer /proc paths closed to other users; identity key absent from a live client ({scraped:?})")
    }
}

#[derive(Debug)]
pub(super) struct CoreDump;

impl Scenario for CoreDump {
    fn id(&self) -> &'static str {
        "RT-015"
    }

    fn checks(&self) -> &'static [&'static str] {
        &[
            "RLIMIT_CORE is 0 (soft and hard) in the running signer",
            "the crash path was really taken (killed by SIGABRT)",
            "no core was dumped, and no core file exists",
        ]
    }

    fn run(&self, probe: &mut Probe) -> String {
        let mut d = match start(Options::default()) {
            Ok(d) => d,
            Err(e) => return e,
        };
        let Some(pid) = d.pid() else { return "no keywardd pid".into() };
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap_or("").to_string();
        probe.check(
            "RLIMIT_CORE is 0 (soft and hard) in the running signer",
            core.split_whitespace().skip(4).take(2).all(|v| v == "0") && !core.is_empty(),
            core.clone(),
        );
        // A session is open, so the identity key is in use when it crashes.
        let session = d.client();
        let _ = session.map(|mut c| c.call(&Request::Ping));
        // SIGABRT: its default action dumps core (Rust's own SIGSEGV handler would
        // swallow a SIGSEGV sent by kill(2), which is no fault).
        let status = d.signal_and_wait(libc::SIGABRT, Duration::from_secs(10));
        probe.check(
            "the crash path was really taken (killed by SIGABRT)",
            status.is_some_and(|s| s.signal() == Some(libc::SIGABRT)),
            format!("{status:?}"),
        );
        let dumped = status.is_some_and(|s| s.core_dumped());
        let cores = find_cores(d.dir.path());
        probe.check(
            "no core was dumped, and no core file exists",
            !dumped && cores.is_empty(),
            format!(
                "core_dumped flag {dumped}; core files {cores:?}; core_pattern {:?}",
                std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default().trim()
            ),
        );
        format!("SIGABRT with a live session: no dump ({core})")
    }
}

fn find_cores(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name == "core" || name.starts_with("core.") {
            out.push(e.path());
        }
    }
    out
}
