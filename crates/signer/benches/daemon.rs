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
//! `cargo bench -p signer --bench daemon` runs the full measurement (release
//! builds of the bench and of `keywardd`); under `cargo test --benches` it
//! runs a few requests of each kind so that the code cannot rot.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_harness::{Daemon, Options};
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

fn main() {
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
}
