//! The socket: accept, identify the peer, run one session per connection.
//!
//! Order on every connection, before a single protocol byte is read:
//! connection limit (`IPC_BUSY`), then `SO_PEERCRED`, then the role mapping.
//! A peer with no role gets the `DENY_PEER_NOT_ALLOWED` alert, an audit
//! event, and the connection is closed (RT-004). Only then does the
//! handshake run, on the connection's own thread.
//!
//! A slow or silent client costs one thread and nothing else: the handshake
//! must complete within `handshake_timeout_ms`, and each later frame must
//! arrive whole within `idle_timeout_ms` of the previous one, so a client
//! that dribbles bytes is cut off too. The number of live connections is
//! bounded by `max_connections`.

use std::collections::HashMap;
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
use rustix::event::{PollFd, PollFlags, poll};
use serde_json::json;

use super::audit::AuditLog;
use super::config::Config;
use super::identity::LockedIdentity;
use super::journal::Journal;
use super::keys::Keys;
use super::ledger::Book;

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
    live: Mutex<HashMap<u64, UnixStream>>,
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
        services: (policy::Policy, Journal<Book>, Keys),
    ) -> Shared {
        let (policy, ledger, keys) = services;
        Shared {
            config,
            identity,
            audit,
            stopping,
            policy,
            ledger,
            keys,
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, UnixStream>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn suite_policy(&self) -> SuitePolicy {
        if self.config.ipc.compat_aes_gcm { SuitePolicy::Compatibility } else { SuitePolicy::Strict }
    }
}

/// Accepts until `stopping` is set, then closes every session and waits
/// (bounded) for their threads.
pub fn serve(listener: &UnixListener, shared: &Arc<Shared>) {
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: 200_000_000 };
    while !shared.stopping.load(Ordering::SeqCst) {
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
    for s in shared.live().values() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !shared.live().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn refuse(mut stream: UnixStream, code: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = write_frame(&mut stream, &alert::encode(code));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Limit, peer credentials, role; then a thread for the session.
fn admit(stream: UnixStream, shared: &Arc<Shared>) {
    let cred = match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(c) => c,
        Err(e) => {
            shared.audit.record("peer_rejected", json!({"reason": "SO_PEERCRED failed", "errno": e.raw_os_error()}));
            return refuse(stream, "DENY_PEER_NOT_ALLOWED");
        }
    };
    let (uid, gid, pid) = (cred.uid.as_raw(), cred.gid.as_raw(), cred.pid.as_raw_pid());
    let Some(role) = shared.config.role_of(uid, gid) else {
        shared
            .audit
            .record("peer_rejected", json!({"uid": uid, "gid": gid, "pid": pid, "code": "DENY_PEER_NOT_ALLOWED"}));
        return refuse(stream, "DENY_PEER_NOT_ALLOWED");
    };
    let peer = Peer { uid, gid, pid, role };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut live = shared.live();
        if live.len() >= shared.config.daemon.max_connections {
            drop(live);
            shared.audit.record("connection_refused", json!({"uid": uid, "pid": pid, "code": "IPC_BUSY"}));
            return refuse(stream, "IPC_BUSY");
        }
        match stream.try_clone() {
            Ok(c) => live.insert(id, c),
            Err(_) => return refuse(stream, "IPC_BUSY"),
        };
    }
    let worker = Arc::clone(shared);
    let spawned = std::thread::Builder::new().name(format!("conn-{id}")).stack_size(512 * 1024).spawn(move || {
        session(stream, peer, &worker);
        worker.live().remove(&id);
    });
    if spawned.is_err()
        && let Some(s) = shared.live().remove(&id)
    {
        refuse(s, "IPC_BUSY");
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
        Err(e) => return fail(stream, "handshake_failed", &e, None),
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
