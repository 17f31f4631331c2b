//! `keywardd` over its real socket, against two baselines measured in the
//! same run:
//!
//! * **plaintext**: the same 256-byte request, parsed and answered the same
//!   way (JSON in, JSON decision out, length-prefixed frames, a thread per
//!   connection), over a Unix socket without the handshake or the AEAD: the
//!   cost of the protection;
//! * **ssh-agent**: OpenSSH's agent signing 256 bytes with an Ed25519 key over
//!   its own socket: what a user would reach for instead.
//!
//! Reported: handshake latency (connect + handshake, p50/p99), round trips at
//! 1, 16 and 64 concurrent clients (p50, p99, requests per second), and the
//! daemon's resident memory idle after start-up and after the load.
//!
//! Availability (issue 14), on a daemon with the production session quota,
//! peers being this binary re-executed as unprivileged uids:
//!
//! * **admin ping while one agent holds its full quota** vs **admin ping
//!   idle**: connect, handshake and `ping` as the admin (p50, p99);
//! * **refusal flood: 4 clients**: four uids without a `[[peer]]` rule
//!   connecting in a loop: refusals per second, audit records written per
//!   second and audit bytes per hour (refusals are counted into summary
//!   records), against one record per refusal as before.
//!
//! `cargo bench -p signer --bench daemon` runs the full measurement (release
//! builds of the bench and of `keywardd`); under `cargo test --benches` it
//! runs a few requests of each kind so that the code cannot rot.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_harness::{AsUser, Daemon, Options};
use ipc::api::{Request, Response, parse_request};
use ipc::client::Client;
use ipc::frame::{MAX_FRAME, read_frame, write_frame};

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");

/// A preview request whose JSON body is exactly 256 bytes: a valid intent
/// with a granted `raw-ed25519` key for a chain the policy does not allow, so
/// the signer parses, canonicalizes, checks the grant and the key's kind and
/// decides it (a denial; previews write nothing) and the benchmark measures
/// the transport, not the disk.
fn request_256() -> Vec<u8> {
    let mut pad = String::new();
    loop {
        let intent = serde_json::json!({
            "actor": "agent", "action": "sign", "key": "hot", "chain_id": "bench:none", "amount_atomic": 0,
            "max_amount_atomic": 0, "rationale": pad, "idempotency_key": "b", "request_expiry": 4_000_000_000u64,
            "message_hex": "00"
        });
        let body = serde_json::to_vec(&Request::Preview { intent }).unwrap();
        if body.len() >= 256 {
            assert_eq!(body.len(), 256, "the padding reaches 256 exactly");
            return body;
        }
        pad.push('x');
    }
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    per_sec: f64,
}

fn figures(mut lat: Vec<Duration>, wall: Duration) -> Figures {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    Figures { p50_us: pct(0.50), p99_us: pct(0.99), per_sec: lat.len() as f64 / wall.as_secs_f64() }
}

/// Runs `clients` threads, each making `n` calls through its own connection
/// from `connect`; returns the latency figures over all calls.
fn load<C: 'static>(
    clients: usize,
    n: usize,
    connect: impl Fn() -> C + Send + Sync + Clone + 'static,
    call: fn(&mut C),
) -> Figures {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let connect = connect.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = connect();
                call(&mut c); // warm-up
                barrier.wait();
                let mut lat = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    call(&mut c);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    figures(all, start.elapsed())
}

/// The plaintext baseline server: same framing, same parse, same answer.
fn plaintext_server(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                while let Ok(Some(body)) = read_frame(&mut s, MAX_FRAME) {
                    let answer = match parse_request(&body) {
                        Ok(Request::Preview { .. }) => serde_json::to_vec(&Response::Decision {
                            request_id: None,
                            intent_hash: None,
                            decision: "deny".into(),
                            state: "PolicyEvaluated".into(),
                            reason_code: "DENY_GLOBAL_LIMIT".into(),
                            layer: "global_defaults".into(),
                            policy_id: "harness-1".into(),
                            detail: "global.chain_allowed".into(),
                            signature: None,
                            public_key: None,
                            transaction: None,
                        })
                        .unwrap(),
                        _ => b"{}".to_vec(),
                    };
                    if write_frame(&mut s, &answer).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// ssh-agent with one Ed25519 key; returns its socket, key blob and pid.
fn ssh_agent(dir: &Path) -> Option<(PathBuf, Vec<u8>, u32)> {
    let sock = dir.join("agent.sock");
    let out = Command::new("ssh-agent").arg("-a").arg(&sock).arg("-s").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pid: u32 = text.split("SSH_AGENT_PID=").nth(1)?.split(';').next()?.parse().ok()?;
    let key = dir.join("id_ed25519");
    Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().ok()?;
    Command::new("ssh-add").arg("-q").arg(&key).env("SSH_AUTH_SOCK", &sock).status().ok()?;
    let mut s = UnixStream::connect(&sock).ok()?;
    agent_send(&mut s, &[11]);
    let reply = agent_recv(&mut s);
    let blob_len = u32::from_be_bytes(reply.get(5..9)?.try_into().ok()?) as usize;
    Some((sock, reply.get(9..9 + blob_len)?.to_vec(), pid))
}

fn agent_send(s: &mut UnixStream, body: &[u8]) {
    let mut m = (body.len() as u32).to_be_bytes().to_vec();
    m.extend_from_slice(body);
    s.write_all(&m).unwrap();
}

fn agent_recv(s: &mut UnixStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

type Session = (Client, Vec<u8>);
type Plain = (UnixStream, Vec<u8>);

/// The environment variable that makes this binary a peer child.
const PEER: &str = "KW_BENCH_PEER";
const NOGROUP: u32 = 65534;
const AGENT: u32 = 65520;
/// Uids without a `[[peer]]` rule, one per flooding client.
const STRANGERS: [u32; 4] = [65500, 65501, 65502, 65503];

/// A peer child: `hold:N` opens N sessions, prints `HELD n` and holds
/// them until stdin closes; `flood_for:MS` connects in a loop for MS
/// milliseconds, reading each refusal, and prints `FLOOD n`.
fn peer_child(mode: &str) {
    let socket = PathBuf::from(std::env::var("KW_BENCH_SOCKET").unwrap());
    let (what, n) = mode.split_once(':').unwrap();
    let n: u64 = n.parse().unwrap();
    if what == "hold" {
        let pin = ipc::client::read_pin(Path::new(&std::env::var("KW_BENCH_PIN").unwrap())).unwrap();
        let held: Vec<Client> = (0..n)
            .map_while(|_| Client::connect(&socket, pin, ipc::Suite::XChaCha20Poly1305, Duration::from_secs(60)).ok())
            .collect();
        println!("HELD {}", held.len());
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    } else {
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < Duration::from_millis(n) {
            let mut s = UnixStream::connect(&socket).unwrap();
            let _ = read_frame(&mut s, MAX_FRAME);
            count += 1;
        }
        println!("FLOOD {count}");
    }
}

fn as_peer(d: &Daemon, uid: u32, mode: &str) -> AsUser {
    let (socket, pin) = (d.socket.display().to_string(), d.pin_file.display().to_string());
    let envs = [(PEER, mode), ("KW_BENCH_SOCKET", socket.as_str()), ("KW_BENCH_PIN", pin.as_str())];
    AsUser::spawn(uid, NOGROUP, &[], &envs).expect("spawn a peer")
}

/// Connect, handshake and `ping` as the admin, `n` times.
fn admin_pings(d: &Daemon, n: usize) -> Figures {
    let start = Instant::now();
    let lat = (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut c = d.client().unwrap();
            assert!(matches!(c.call(&Request::Ping), Ok(Response::Pong { .. })));
            let e = t.elapsed();
            c.close().unwrap();
            e
        })
        .collect();
    figures(lat, start.elapsed())
}

fn availability(full: bool) {
    let scale = |n: usize| if full { n } else { 3 };
    let peers = format!("[[peer]]\nuid = 0\nrole = \"admin\"\n[[peer]]\nuid = {AGENT}\nrole = \"agent\"\n");
    let options = Options {
        daemon: format!("socket_group = {NOGROUP}"),
        peers,
        max_sessions_per_uid: None,
        ..Options::default()
    };
    let d = Daemon::start(Path::new(KEYWARDD), &options);
    admin_pings(&d, scale(50)); // warm-up
    let idle = admin_pings(&d, scale(500));
    let mut agent = as_peer(&d, AGENT, "hold:16");
    assert_eq!(agent.next("HELD ").as_deref(), Some("16"), "{}", agent.stderr_text());
    let busy = admin_pings(&d, scale(500));
    println!("admin connect + handshake + ping (production quota 16 per uid):      p50 us   p99 us");
    println!("  admin ping idle                                          {:>8.1} {:>8.1}", idle.p50_us, idle.p99_us);
    println!("  admin ping while one agent holds its full quota (16)     {:>8.1} {:>8.1}", busy.p50_us, busy.p99_us);
    agent.finish().unwrap();
    // The agent's sessions are closed (and audited) before the flood.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.events("session_closed").iter().filter(|e| e["uid"] == AGENT).count() < 16 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }

    // Refusal flood: four unmapped uids connecting in a loop.
    let flood_ms = if full { 20_500 } else { 300 };
    let size = |d: &Daemon| std::fs::metadata(&d.audit_log).map_or(0, |m| m.len());
    let (records0, bytes0) = (d.audit().len(), size(&d));
    let started = Instant::now();
    let mut clients: Vec<AsUser> =
        STRANGERS.iter().map(|&uid| as_peer(&d, uid, &format!("flood_for:{flood_ms}"))).collect();
    let refusals: u64 = clients.iter_mut().map(|c| c.next("FLOOD ").unwrap().parse::<u64>().unwrap()).sum();
    let secs = started.elapsed().as_secs_f64();
    let (records, bytes) = (d.audit().len() - records0, size(&d) - bytes0);
    // What one record per refusal used to cost: the size of the first ones.
    let first: Vec<String> = std::fs::read_to_string(&d.audit_log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"peer_rejected\""))
        .map(str::to_owned)
        .collect();
    let per_record = first.iter().map(|l| l.len() + 1).sum::<usize>() as f64 / first.len().max(1) as f64;
    println!(
        "refusal flood: 4 clients: {:.0} refusals/s over {secs:.1} s; audit: {records} records ({:.2} records/s), \
         {bytes} bytes ({:.2} MB/hour); one record per refusal at this rate \
         would be {:.0} records/s, {:.0} MB/hour (each fsynced, which also bounds the rate)",
        refusals as f64 / secs,
        records as f64 / secs,
        bytes as f64 / secs * 3600.0 / 1e6,
        refusals as f64 / secs,
        refusals as f64 / secs * per_record * 3600.0 / 1e6
    );
}

fn main() {
    if let Ok(mode) = std::env::var(PEER) {
        return peer_child(&mode);
    }
    let full = std::env::args().any(|a| a == "--bench");
    let scale = |n: usize| if full { n } else { 3 };
    let daemon = Daemon::start(Path::new(KEYWARDD), &Options::default());
    match daemon.call(&Request::KeyCreate { name: "hot".into(), kind: "raw-ed25519".into() }) {
        Ok(Response::Key { .. }) => {}
        other => panic!("key create: {other:?}"),
    }
    let pid = daemon.pid().unwrap();
    std::thread::sleep(Duration::from_millis(if full { 1000 } else { 10 }));
    let idle_rss = rss_kib(pid);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.sock");
    plaintext_server(&plain);
    let agent = ssh_agent(dir.path());
    let body = request_256();
    let (socket, pin) = (daemon.socket.clone(), daemon.pin());
    let timeout = Duration::from_secs(60);

    // Handshake latency as a client sees it: connect, three messages, keys.
    let mut hs = Vec::new();
    for _ in 0..scale(500) {
        let t = Instant::now();
        let c = Client::connect(&socket, pin, ipc::Suite::XChaCha20Poly1305, timeout);
        hs.push(t.elapsed());
        c.unwrap().close().unwrap();
    }
    let hs = figures(hs, Duration::from_secs(1));
    println!("handshake (connect + handshake, real daemon): p50 {:.1} us, p99 {:.1} us", hs.p50_us, hs.p99_us);

    println!("round trip of a 256-byte request:      p50 us   p99 us   requests/s");
    for clients in [1usize, 16, 64] {
        let n = scale(match clients {
            1 => 20_000,
            16 => 2_000,
            _ => 500,
        });
        let (socket, body_k) = (socket.clone(), body.clone());
        let kw = load(
            clients,
            n,
            move || -> Session {
                let c = Client::connect(&socket, pin, ipc::Suite::XChaCha20Poly1305, timeout).unwrap();
                (c, body_k.clone())
            },
            |(c, b): &mut Session| {
                c.call_raw(b).unwrap();
            },
        );
        let (plain_path, body_p) = (plain.clone(), body.clone());
        let pl = load(
            clients,
            n,
            move || -> Plain { (UnixStream::connect(&plain_path).unwrap(), body_p.clone()) },
            |(s, b): &mut Plain| {
                write_frame(s, b).unwrap();
                read_frame(s, MAX_FRAME).unwrap().unwrap();
            },
        );
        let line = |name: &str, f: &Figures| {
            println!("  {clients:>2} clients  {name:<22} {:>8.1} {:>8.1} {:>10.0}", f.p50_us, f.p99_us, f.per_sec)
        };
        line("keywardd (encrypted)", &kw);
        line("plaintext socket", &pl);
        if let Some((sock, blob, _)) = &agent {
            let (sock, blob) = (sock.clone(), blob.clone());
            let ag = load(
                clients,
                n,
                move || -> Plain {
                    let mut m = vec![13u8];
                    m.extend_from_slice(&(blob.len() as u32).to_be_bytes());
                    m.extend_from_slice(&blob);
                    m.extend_from_slice(&256u32.to_be_bytes());
                    m.extend_from_slice(&[0x5a; 256]);
                    m.extend_from_slice(&0u32.to_be_bytes());
                    (UnixStream::connect(&sock).unwrap(), m)
                },
                |(s, m): &mut Plain| {
                    agent_send(s, m);
                    assert_eq!(agent_recv(s)[0], 14, "ssh-agent did not sign");
                },
            );
            line("ssh-agent Ed25519 sign", &ag);
            println!(
                "  {clients:>2} clients  keywardd/plaintext: p50 {:.2}x, p99 {:.2}x, throughput {:.2}x; keywardd/ssh-agent: p50 {:.2}x, throughput {:.2}x",
                kw.p50_us / pl.p50_us,
                kw.p99_us / pl.p99_us,
                kw.per_sec / pl.per_sec,
                kw.p50_us / ag.p50_us,
                kw.per_sec / ag.per_sec
            );
        } else {
            println!("  ssh-agent baseline unavailable (ssh-agent, ssh-keygen or ssh-add missing)");
        }
    }
    std::thread::sleep(Duration::from_millis(if full { 1000 } else { 10 }));
    println!(
        "keywardd resident memory: {:.1} MiB idle after start-up, {:.1} MiB idle after the load (goal < 16 MiB)",
        idle_rss as f64 / 1024.0,
        rss_kib(pid) as f64 / 1024.0
    );
    if let Some((_, _, agent_pid)) = agent {
        let _ = Command::new("kill").arg(agent_pid.to_string()).status();
    }
    drop(daemon);
    availability(full);
}
