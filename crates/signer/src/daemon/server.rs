//! The socket: accept, identify the peer, run one session per connection.
//!
//! Order on every connection, before a single protocol byte is read:
//! `SO_PEERCRED`, then the role mapping, then admission ([`admission`]:
//! the connection limit, the peer's per-uid quota and the operators'
//! reserve; `IPC_BUSY` or `IPC_PEER_QUOTA`). A peer with no role gets the
//! `DENY_PEER_NOT_ALLOWED` alert, an audit event, and the connection is
//! closed (RT-004). Only then does the handshake run, on the connection's
//! own thread. Refusals and failed handshakes are audited through
//! [`refusals`]: the first per uid and code in an interval at once, the rest
//! as one summary record.
//!
//! A slow or silent client costs one thread and nothing else: the handshake
//! must complete within `handshake_timeout_ms`, and each later frame must
//! arrive whole within `idle_timeout_ms` of the previous one, so a client
//! that dribbles bytes is cut off too. The number of live connections is
//! bounded by `max_connections`.

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipc::api::Role;
use ipc::client::unix_now;
use ipc::frame::{MAX_FRAME, read_frame, write_frame};
use ipc::handshake::{ServerHandshake, hex};
use ipc::record::{Suite, SystemClock, msg};
use ipc::{IpcError, SuitePolicy, alert};
use policy::journal::Position;
use rustix::event::{PollFd, PollFlags, poll};
use serde_json::json;

use super::admission::{self, Limits, Live};
use super::anchor::{Anchorer, Sources};
use super::audit::AuditLog;
use super::config::Config;
use super::identity::LockedIdentity;
use super::journal::Journal;
use super::keys::Keys;
use super::ledger::Book;
use super::refusals::{self, Refusal, Refusals};
use super::watchdog::Watchdog;

/// Everything the connection threads share.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub identity: LockedIdentity,
    pub audit: AuditLog,
    pub stopping: Arc<AtomicBool>,
    pub policy: policy::Policy,
    pub ledger: Journal<Book>,
    pub keys: Keys,
    /// Keeps both journals anchored (no signature leaves before its
    /// records are).
    pub anchorer: Anchorer,
    /// Deaths of background threads ([`super::watchdog`]).
    pub watchdog: Watchdog,
    /// Refusals counted for their summary records.
    pub refusals: Refusals,
    /// Refusal records the audit log could not take (a full disk), kept to
    /// be written once it heals, so the fact of refusals is never lost.
    unwritten: Mutex<HeldRefusals>,
    limits: Limits,
    live: Mutex<Live>,
    next_id: AtomicU64,
}

/// The kernel's word on who is at the other end.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    pub role: Role,
}

impl Shared {
    pub fn new(
        config: Config,
        identity: LockedIdentity,
        audit: AuditLog,
        stopping: Arc<AtomicBool>,
        services: (policy::Policy, Journal<Book>, Keys, Anchorer),
    ) -> Shared {
        let (policy, ledger, keys, anchorer) = services;
        let limits = Limits::of(&config.daemon);
        Shared {
            config,
            identity,
            audit,
            stopping,
            policy,
            ledger,
            keys,
            anchorer,
            watchdog: Watchdog::default(),
            refusals: Refusals::default(),
            unwritten: Mutex::default(),
            limits,
            live: Mutex::new(Live::default()),
            next_id: AtomicU64::new(1),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Audits refusal `r` through the aggregation: its own record
    /// (`fields`) if it is the first of its kind in the interval, and any
    /// summaries now due.
    fn refused(&self, r: Refusal, fields: impl FnOnce() -> serde_json::Value) {
        let (mut due, own) = self.refusals.note(now_ms(), r);
        if own {
            due.push((r.event.to_string(), fields()));
        }
        self.write_summaries(due);
    }

    fn write_summaries(&self, summaries: Vec<refusals::Summary>) {
        let mut held = self.unwritten.lock().unwrap_or_else(|p| p.into_inner());
        let mut queue: Vec<refusals::Summary> = std::mem::take(&mut held.records);
        if held.dropped > 0 {
            queue.push(("refusal_records_dropped".into(), json!({"records": held.dropped})));
            held.dropped = 0;
        }
        queue.extend(summaries);
        let mut rest = queue.into_iter();
        for (event, fields) in rest.by_ref() {
            if self.audit.try_record(&event, fields.clone()).is_err() {
                held.keep(event, fields);
                break;
            }
        }
        for (event, fields) in rest {
            held.keep(event, fields);
        }
    }

    fn suite_policy(&self) -> SuitePolicy {
        if self.config.ipc.compat_aes_gcm { SuitePolicy::Compatibility } else { SuitePolicy::Strict }
    }
}

/// Refusal records waiting for the audit log to heal: at most
/// [`HeldRefusals::MAX`] kept whole, the rest counted (and the count
/// recorded as `refusal_records_dropped`).
#[derive(Debug, Default)]
struct HeldRefusals {
    records: Vec<refusals::Summary>,
    dropped: u64,
}

impl HeldRefusals {
    const MAX: usize = 1024;

    fn keep(&mut self, event: String, fields: serde_json::Value) {
        if self.records.len() < Self::MAX {
            self.records.push((event, fields));
        } else {
            self.dropped += 1;
        }
    }
}

impl Sources for Shared {
    fn durable(&self) -> (Position, Position) {
        (self.audit.head(), self.ledger.durable())
    }

    fn with_vault<R>(&self, f: impl FnOnce(&mut vault::Vault) -> R) -> R {
        self.keys.with_vault(f)
    }
}

/// Accepts until `stopping` is set, then closes every session and waits
/// (bounded) for their threads.
pub fn serve(listener: &UnixListener, shared: &Arc<Shared>) {
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: 200_000_000 };
    while !shared.stopping.load(Ordering::SeqCst) {
        shared.write_summaries(shared.refusals.due(now_ms()));
        match poll(&mut fds, Some(&tick)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                shared.audit.record("accept_failed", json!({"errno": e.raw_os_error()}));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        match listener.accept() {
            Ok((stream, _)) => admit(stream, shared),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => shared.audit.record("accept_failed", json!({"errno": e.raw_os_error()})),
        }
    }
    // Shutdown: wake every session thread and let it wipe its keys.
    for s in shared.live().streams() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !shared.live().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // What was counted but not yet written, before the `stopped` record.
    shared.write_summaries(shared.refusals.drain());
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn refuse(mut stream: UnixStream, code: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = write_frame(&mut stream, &alert::encode(code));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Peer credentials, role, admission; then a thread for the session.
fn admit(stream: UnixStream, shared: &Arc<Shared>) {
    const NOT_ALLOWED: &str = "DENY_PEER_NOT_ALLOWED";
    let cred = match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(c) => c,
        Err(e) => {
            let r = Refusal { event: "peer_rejected", uid: None, gid: None, code: NOT_ALLOWED };
            let errno = e.raw_os_error();
            shared.refused(r, || json!({"reason": "SO_PEERCRED failed", "errno": errno, "code": NOT_ALLOWED}));
            return refuse(stream, NOT_ALLOWED);
        }
    };
    let (uid, gid, pid) = (cred.uid.as_raw(), cred.gid.as_raw(), cred.pid.as_raw_pid());
    let Some(role) = shared.config.role_of(uid, gid) else {
        let r = Refusal { event: "peer_rejected", uid: Some(uid), gid: Some(gid), code: NOT_ALLOWED };
        shared.refused(r, || json!({"uid": uid, "gid": gid, "pid": pid, "code": NOT_ALLOWED}));
        return refuse(stream, NOT_ALLOWED);
    };
    let peer = Peer { uid, gid, pid, role };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let admitted = shared.live().admit(&shared.limits, id, uid, role, || stream.try_clone());
    if let Err(why) = admitted {
        let code = why.code();
        let r = Refusal { event: "connection_refused", uid: Some(uid), gid: Some(gid), code };
        shared.refused(r, || json!({"uid": uid, "gid": gid, "pid": pid, "role": role.name(), "code": code}));
        return refuse(stream, code);
    }
    let worker = Arc::clone(shared);
    let spawned = std::thread::Builder::new().name(format!("conn-{id}")).stack_size(512 * 1024).spawn(move || {
        // The slot is given back however the session ends, a panic included.
        let _slot = Slot { shared: &worker, id };
        session(stream, peer, &worker);
    });
    if spawned.is_err()
        && let Some(s) = shared.live().remove(id)
    {
        refuse(s, admission::Refused::Busy.code());
    }
}

/// A live session's place in the table, released when dropped.
struct Slot<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.shared.live().remove(self.id);
    }
}

/// How far a read may overrun its deadline, so that the socket timeout is
/// not re-set (one system call) before every read of a busy session.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);

/// A reader that gives up at a fixed instant (within [`DEADLINE_SLACK`]),
/// however the bytes trickle in.
struct ByDeadline<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
    /// The socket's current read timeout.
    timeout: &'a mut Duration,
}

impl Read for ByDeadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        if self.timeout.saturating_sub(left) > DEADLINE_SLACK || *self.timeout < left {
            self.stream.set_read_timeout(Some(left))?;
            *self.timeout = left;
        }
        (&*self.stream).read(buf)
    }
}

fn read_by(stream: &UnixStream, within: Duration, timeout: &mut Duration) -> Result<Option<Vec<u8>>, IpcError> {
    read_frame(&mut ByDeadline { stream, deadline: Instant::now() + within, timeout }, MAX_FRAME)
}

/// One connection: handshake, then requests until close, error or shutdown.
fn session(mut stream: UnixStream, peer: Peer, shared: &Shared) {
    let _ = stream.set_write_timeout(Some(shared.config.idle_timeout()));
    // The socket's read timeout as last set (none yet: blocking).
    let mut timeout = Duration::MAX;
    let who = json!({"uid": peer.uid, "pid": peer.pid, "role": peer.role.name()});
    let fail = |stream: UnixStream, event: &str, e: &IpcError, session: Option<[u8; 16]>| {
        let mut fields = who.clone();
        fields["code"] = e.code().into();
        if let Some(s) = session {
            fields["session"] = hex(&s).into();
        }
        shared.audit.record(event, fields);
        refuse(stream, e.code());
    };
    let mut handshake = || -> Result<Option<ipc::Channel>, IpcError> {
        let deadline = shared.config.handshake_timeout();
        let start = Instant::now();
        let Some(hello) = read_by(&stream, deadline, &mut timeout)? else { return Ok(None) };
        let (hs, server_hello) = ServerHandshake::respond(&shared.identity, &hello, unix_now(), shared.suite_policy())?;
        write_frame(&mut &stream, &server_hello)?;
        let Some(finished) = read_by(&stream, deadline.saturating_sub(start.elapsed()), &mut timeout)? else {
            return Err(IpcError::Truncated);
        };
        hs.finish(&finished).map(Some)
    };
    let mut channel = match handshake() {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            // Counted like refusals: a peer may fail handshakes in a loop.
            let code = e.code();
            let r = Refusal { event: "handshake_failed", uid: Some(peer.uid), gid: Some(peer.gid), code };
            shared.refused(r, || {
                let mut fields = who.clone();
                fields["code"] = code.into();
                fields
            });
            return refuse(stream, code);
        }
    };
    let sid = channel.session_id();
    let mut opened = who.clone();
    opened["session"] = hex(&sid).into();
    if channel.suite() == Suite::Aes256Gcm {
        opened["compliance_warning"] =
            "IPC_COMPLIANCE_AES_GCM: session uses AES-256-GCM under the compatibility setting".into();
    }
    shared.audit.record("session_opened", opened);
    let clock = SystemClock::default();
    let mut requests = 0u64;
    loop {
        let frame = match read_by(&stream, shared.config.idle_timeout(), &mut timeout) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) if shared.stopping.load(Ordering::SeqCst) => break,
            Err(e) => return fail(stream, "session_failed", &e, Some(sid)),
        };
        let record = match channel.open(&frame, &clock) {
            Ok(None) => continue,
            Ok(Some(r)) => r,
            Err(e) => return fail(stream, "record_rejected", &e, Some(sid)),
        };
        match record.msg_type {
            msg::REQUEST => {
                requests += 1;
                let (msg_type, body) = super::intents::handle(shared, &peer, &sid, &record.payload);
                let sent = channel
                    .seal(msg_type, &body, &clock)
                    .and_then(|rs| rs.iter().try_for_each(|r| write_frame(&mut stream, r)));
                if let Err(e) = sent {
                    return fail(stream, "session_failed", &e, Some(sid));
                }
            }
            msg::CLOSE => break,
            _ => {
                return fail(stream, "record_rejected", &IpcError::Malformed { what: "record type" }, Some(sid));
            }
        }
    }
    if shared.stopping.load(Ordering::SeqCst)
        && let Ok(rs) = channel.seal(msg::CLOSE, &[], &clock)
    {
        let _ = rs.iter().try_for_each(|r| write_frame(&mut stream, r));
    }
    let mut closed = who;
    closed["session"] = hex(&sid).into();
    closed["requests"] = requests.into();
    shared.audit.record("session_closed", closed);
}
