//! `keywardd run` as a real process on a real Unix socket, with its own
//! software TPM and vault: handshake and many messages with re-keying, peer
//! identity before any crypto (RT-004, a second UID via `setuid`), tampered
//! records (RT-005), replayed and reordered records (RT-006), handshake
//! integrity, hostile frames, slow clients, 64 concurrent clients, the
//! connection bound, the sandbox, and graceful shutdown.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_harness::{Daemon, Options, SIGTERM, answer, sealed_submit};
use ipc::api::{Request, Response, Role};
use ipc::client::{Client, unix_now};
use ipc::frame::{MAX_FRAME, read_frame, write_frame};
use ipc::handshake::ClientHandshake;
use ipc::record::{HEADER_LEN, Suite, SystemClock, msg};

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");
/// An unprivileged user mapped to the agent role, and one mapped to nothing.
const AGENT_UID: u32 = 65533;
const STRANGER_UID: u32 = 65534;
const NOGROUP: u32 = 65534;

fn daemon(options: Options) -> Daemon {
    Daemon::start(Path::new(KEYWARDD), &options)
}

/// A daemon holding key `hot` (the key the harness's sealed request names),
/// so that a genuine request is decided, not refused at admission.
fn daemon_with_key(options: Options) -> Daemon {
    let d = daemon(options);
    match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { .. }) => d,
        other => panic!("key create: {other:?}"),
    }
}

fn keyward() -> std::path::PathBuf {
    Path::new(KEYWARDD).with_file_name("keyward")
}

#[test]
fn handshake_then_thousands_of_requests_with_rekeying_and_a_clean_close() {
    let d = daemon(Options::default());
    let mut c = d.client().unwrap();
    for i in 0..2100 {
        match c.call(&Request::Ping) {
            Ok(Response::Pong { uid: 0, role: Role::Admin, .. }) => {}
            other => panic!("request {i}: {other:?}"),
        }
    }
    // 2 100 records each way: the client and the signer each re-keyed twice.
    assert_eq!(c.channel().generations(), (2, 2));
    c.close().unwrap();
    assert!(d.wait_for("session_closed", Duration::from_secs(10), |e| e["requests"] == 2100));
}

#[test]
fn peers_are_identified_by_the_kernel_before_any_handshake_rt004() {
    let peers = format!("[[peer]]\nuid = 0\nrole = \"admin\"\n[[peer]]\nuid = {AGENT_UID}\nrole = \"agent\"\n");
    let d = daemon(Options { daemon: format!("socket_group = {NOGROUP}"), peers, ..Options::default() });
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let sock = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(sock.permissions().mode() & 0o777, 0o660);
    assert_eq!(sock.gid(), NOGROUP);
    let dir = std::fs::metadata(d.socket.parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o750);

    let run_as = |uid: u32, args: &[&str]| {
        Command::new(keyward())
            .arg("--socket")
            .arg(&d.socket)
            .arg("--pin")
            .arg(&d.pin_file)
            .args(args)
            .uid(uid)
            .gid(NOGROUP)
            .output()
            .unwrap()
    };
    // A second, unmapped UID reaches the socket (it is in the socket's group)
    // and is refused by SO_PEERCRED before any handshake byte is exchanged.
    let stranger = run_as(STRANGER_UID, &["ping"]);
    let err = String::from_utf8_lossy(&stranger.stderr);
    assert!(!stranger.status.success());
    assert!(err.contains("DENY_PEER_NOT_ALLOWED"), "{err}");
    assert!(d.wait_for("peer_rejected", Duration::from_secs(5), |e| e["uid"] == STRANGER_UID
        && e["code"] == "DENY_PEER_NOT_ALLOWED"));
    assert!(
        d.audit().iter().all(|e| e["uid"] != STRANGER_UID || e["event"] == "peer_rejected"),
        "the refused peer got further than the credential check"
    );
    // The mapped unprivileged UID gets in, as an agent, and may not approve.
    let agent = run_as(AGENT_UID, &["--json", "ping"]);
    assert!(agent.status.success(), "{}", String::from_utf8_lossy(&agent.stderr));
    let pong: serde_json::Value = serde_json::from_slice(&agent.stdout).unwrap();
    assert_eq!((pong["uid"].as_u64(), pong["role"].as_str()), (Some(AGENT_UID as u64), Some("agent")));
    let approve = run_as(AGENT_UID, &["approvals", "approve", "00", "--intent-hash", "00"]);
    assert!(String::from_utf8_lossy(&approve.stderr).contains("DENY_ROLE_NOT_PERMITTED"));
    assert!(d.wait_for("request_refused", Duration::from_secs(5), |e| e["uid"] == AGENT_UID));
    // Root, mapped to admin, is unaffected.
    assert!(d.ping_ok());
}

#[test]
fn every_tampered_byte_of_a_record_is_refused_and_nothing_is_processed_rt005() {
    let d = daemon_with_key(Options::default());
    let (_s, mut probe) = d.raw_session().unwrap();
    let len = sealed_submit(&mut probe, 0).len();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..len {
        let (mut s, mut channel) = d.raw_session().unwrap();
        let mut record = sealed_submit(&mut channel, i);
        record[i] ^= 1 << (i % 8);
        write_frame(&mut s, &record).unwrap();
        let expected = match i {
            0..=1 => "IPC_UNSUPPORTED_VERSION",
            20..=27 => "DENY_REPLAY",
            _ => "DENY_AEAD_INTEGRITY",
        };
        assert_eq!(answer(&mut s), Err(expected.to_string()), "byte {i}");
        assert_eq!(answer(&mut s), Err("EOF".to_string()), "byte {i}: the session must end");
        *seen.entry(expected).or_insert(0) += 1;
    }
    // A truncated record, then one the length of a header and tag only.
    let (mut s, mut channel) = d.raw_session().unwrap();
    let record = sealed_submit(&mut channel, 0);
    write_frame(&mut s, &record[..HEADER_LEN + 8]).unwrap();
    assert_eq!(answer(&mut s), Err("IPC_TRUNCATED".to_string()));
    assert!(d.events("intent_decided").is_empty(), "a tampered request was processed");
    assert!(d.events("intent_refused").is_empty(), "a tampered request was processed");
    assert_eq!(d.events("record_rejected").len(), len + 1);
    // Positive control: the same request untampered is decided, once.
    let (mut s, mut channel) = d.raw_session().unwrap();
    write_frame(&mut s, &sealed_submit(&mut channel, 0)).unwrap();
    let reply = channel.open(&answer(&mut s).unwrap(), &SystemClock::default()).unwrap().unwrap();
    assert_eq!(reply.msg_type, msg::RESPONSE);
    assert_eq!(d.events("intent_decided").len(), 1);
    eprintln!("{len} single-byte tampers refused: {seen:?}");
}

#[test]
fn replayed_and_reordered_records_are_refused_rt006() {
    let d = daemon_with_key(Options::default());
    // Exact replay of a record the signer already accepted.
    let (mut s, mut channel) = d.raw_session().unwrap();
    let first = sealed_submit(&mut channel, 1);
    write_frame(&mut s, &first).unwrap();
    assert!(answer(&mut s).is_ok());
    write_frame(&mut s, &first).unwrap();
    assert_eq!(answer(&mut s), Err("DENY_REPLAY".to_string()));
    assert_eq!(answer(&mut s), Err("EOF".to_string()));
    // Reordering: the second record before the first.
    let (mut s, mut channel) = d.raw_session().unwrap();
    let r1 = sealed_submit(&mut channel, 2);
    let r2 = sealed_submit(&mut channel, 3);
    write_frame(&mut s, &r2).unwrap();
    assert_eq!(answer(&mut s), Err("DENY_REPLAY".to_string()));
    drop(r1);
    // A record of one session replayed into another.
    let (mut s, _) = d.raw_session().unwrap();
    write_frame(&mut s, &first).unwrap();
    assert_eq!(answer(&mut s), Err("DENY_AEAD_INTEGRITY".to_string()));
    assert_eq!(d.events("intent_decided").len(), 1, "only the one genuine request was processed");
    let codes: Vec<_> = d.events("record_rejected").iter().map(|e| e["code"].as_str().unwrap().to_string()).collect();
    assert_eq!(codes, ["DENY_REPLAY", "DENY_REPLAY", "DENY_AEAD_INTEGRITY"]);
}

#[test]
fn wrong_pin_and_tampered_transcripts_fail_the_handshake() {
    let d = daemon(Options::default());
    // The client pinned another key: the signer refuses.
    let mut wrong = d.pin();
    wrong[0] ^= 1;
    let e = Client::connect(&d.socket, wrong, Suite::XChaCha20Poly1305, Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.code(), "DENY_HANDSHAKE_INTEGRITY");
    // A ClientHello changed in transit (its claims): the two transcripts
    // differ and the client refuses the signer's confirmation.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let (hs, hello) = ClientHandshake::start(d.pin(), "role=agent", Suite::XChaCha20Poly1305, unix_now()).unwrap();
    let mut sent = hello.clone();
    *sent.last_mut().unwrap() ^= 0x20;
    write_frame(&mut s, &sent).unwrap();
    let server_hello = read_frame(&mut s, MAX_FRAME).unwrap().unwrap();
    assert_eq!(hs.finish(&server_hello, unix_now()).unwrap_err().code(), "DENY_HANDSHAKE_INTEGRITY");
    // A ServerHello changed in transit (its ephemeral share).
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let (hs, hello) = ClientHandshake::start(d.pin(), "", Suite::XChaCha20Poly1305, unix_now()).unwrap();
    write_frame(&mut s, &hello).unwrap();
    let mut server_hello = read_frame(&mut s, MAX_FRAME).unwrap().unwrap();
    server_hello[70] ^= 1;
    assert_eq!(hs.finish(&server_hello, unix_now()).unwrap_err().code(), "DENY_HANDSHAKE_INTEGRITY");
    // A ClientFinished changed in transit: the signer refuses.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let (hs, hello) = ClientHandshake::start(d.pin(), "", Suite::XChaCha20Poly1305, unix_now()).unwrap();
    write_frame(&mut s, &hello).unwrap();
    let server_hello = read_frame(&mut s, MAX_FRAME).unwrap().unwrap();
    let (_, mut fin) = hs.finish(&server_hello, unix_now()).unwrap();
    fin[40] ^= 1;
    write_frame(&mut s, &fin).unwrap();
    assert_eq!(answer(&mut s), Err("DENY_HANDSHAKE_INTEGRITY".to_string()));
    // AES-256-GCM is refused by a strict signer.
    let e = Client::connect(&d.socket, d.pin(), Suite::Aes256Gcm, Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.code(), "IPC_UNSUPPORTED_SUITE");
    // Each failing code is audited at once; a repeat of a code within the
    // interval is counted into a summary (docs/audit-log.md, "Refusals").
    let failed = d.events("handshake_failed");
    let codes: std::collections::BTreeSet<&str> = failed.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["DENY_HANDSHAKE_INTEGRITY", "IPC_UNSUPPORTED_SUITE"].into(), "{failed:?}");
    assert!(d.ping_ok());
}

#[test]
fn aes_gcm_only_under_the_compatibility_setting_with_a_warning() {
    let d = daemon(Options { ipc: "compat_aes_gcm = true".into(), ..Options::default() });
    let mut c = Client::connect(&d.socket, d.pin(), Suite::Aes256Gcm, Duration::from_secs(10)).unwrap();
    assert!(matches!(c.call(&Request::Ping), Ok(Response::Pong { .. })));
    assert_eq!(c.channel().suite(), Suite::Aes256Gcm);
    assert!(d.wait_for("session_opened", Duration::from_secs(5), |e| {
        e["compliance_warning"].as_str().is_some_and(|w| w.starts_with("IPC_COMPLIANCE_AES_GCM"))
    }));
    assert_eq!(d.events("compat_mode").len(), 1);
}

#[test]
fn hostile_frames_and_slow_clients_do_not_stop_the_daemon_serving_others() {
    let d =
        daemon(Options { daemon: "handshake_timeout_ms = 1500\nidle_timeout_ms = 3000".into(), ..Options::default() });
    // A silent client and a slow-loris client, both holding connections open.
    let mut silent = UnixStream::connect(&d.socket).unwrap();
    let mut dribbler = UnixStream::connect(&d.socket).unwrap();
    let started = Instant::now();
    // Oversized length prefix: refused before any allocation.
    let mut big = UnixStream::connect(&d.socket).unwrap();
    big.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert_eq!(answer(&mut big), Err("IPC_FRAME_TOO_LARGE".to_string()));
    // Just over the limit.
    let mut over = UnixStream::connect(&d.socket).unwrap();
    over.write_all(&((MAX_FRAME + 1) as u32).to_be_bytes()).unwrap();
    assert_eq!(answer(&mut over), Err("IPC_FRAME_TOO_LARGE".to_string()));
    // Truncated: a length of 100 and ten bytes, then the writer hangs up.
    let mut short = UnixStream::connect(&d.socket).unwrap();
    short.write_all(&100u32.to_be_bytes()).unwrap();
    short.write_all(&[0u8; 10]).unwrap();
    short.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(answer(&mut short), Err("IPC_TRUNCATED".to_string()));
    // Garbage that is a whole frame but not a ClientHello.
    let mut junk = UnixStream::connect(&d.socket).unwrap();
    write_frame(&mut junk, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(answer(&mut junk), Err("IPC_MALFORMED".to_string()));
    // Meanwhile others are served at once.
    for _ in 0..5 {
        assert!(d.ping_ok());
    }
    assert!(started.elapsed() < Duration::from_millis(1500), "served only after the slow clients timed out");
    // The slow-loris client trickles a ClientHello one byte at a time; the
    // whole handshake still has to fit in the deadline.
    let (_hs, hello) = ClientHandshake::start(d.pin(), "", Suite::XChaCha20Poly1305, unix_now()).unwrap();
    let mut framed = (hello.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&hello);
    let trickle = std::thread::spawn(move || {
        for b in framed {
            if dribbler.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        dribbler
    });
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(answer(&mut silent), Err("IPC_TIMEOUT".to_string()));
    let mut dribbler = trickle.join().unwrap();
    dribbler.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(answer(&mut dribbler), Err("IPC_TIMEOUT".to_string()));
    assert!(d.ping_ok());
    let codes: Vec<String> =
        d.events("handshake_failed").iter().map(|e| e["code"].as_str().unwrap().to_string()).collect();
    for code in ["IPC_FRAME_TOO_LARGE", "IPC_TRUNCATED", "IPC_MALFORMED", "IPC_TIMEOUT"] {
        assert!(codes.iter().any(|c| c == code), "{code} not audited: {codes:?}");
    }
}

#[test]
fn sixty_four_concurrent_clients_and_the_connection_bound() {
    let d = daemon(Options { daemon: "max_connections = 70".into(), ..Options::default() });
    let socket = d.socket.clone();
    let pin = d.pin();
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket, pin, Suite::XChaCha20Poly1305, Duration::from_secs(60)).unwrap();
                for _ in 0..50 {
                    assert!(matches!(c.call(&Request::Ping), Ok(Response::Pong { .. })));
                }
                c.close().unwrap();
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(d.wait_for("session_closed", Duration::from_secs(10), |_| true));
    assert_eq!(d.events("session_opened").len(), 64);
    // The bound: 70 idle connections are held; the 71st is refused at once.
    let held: Vec<_> = (0..70).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    // Time for the accept loop to admit all 70 (generous: other tests of
    // this binary run thousands of sessions in parallel).
    std::thread::sleep(Duration::from_millis(1500));
    let mut extra = UnixStream::connect(&socket).unwrap();
    assert_eq!(answer(&mut extra), Err("IPC_BUSY".to_string()));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.ping_ok() {
        assert!(Instant::now() < deadline, "the daemon did not recover its connection slots");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sandboxed_hardened_and_stops_gracefully_on_sigterm() {
    let mut d = daemon(Options::default());
    assert_eq!(d.proc_status("Seccomp").as_deref(), Some("2"));
    assert_eq!(d.proc_status("Seccomp_filters").as_deref(), Some("2"));
    assert_eq!(d.proc_status("NoNewPrivs").as_deref(), Some("1"));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid().unwrap())).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    let listening = d.events("listening");
    assert_eq!(listening[0]["landlock"], "fully_enforced");
    assert_eq!(listening[0]["seccomp"], "filter");
    // The identity is sealed in the vault and survives a restart.
    let pin = d.pin();
    // A session is open when the signal arrives.
    let mut open = d.client().unwrap();
    assert!(matches!(open.call(&Request::Ping), Ok(Response::Pong { .. })));
    let status = d.signal_and_wait(SIGTERM, Duration::from_secs(10)).expect("keywardd did not stop");
    assert!(status.success(), "{status:?}: {}", d.stderr_text());
    assert!(!d.socket.exists(), "socket file left behind");
    assert!(open.call(&Request::Ping).is_err());
    assert_eq!(d.events("stopped").len(), 1);
    assert_eq!(d.events("identity_loaded")[0]["created"], true);
    d.launch().unwrap();
    assert_eq!(d.pin(), pin);
    assert_eq!(d.events("identity_loaded")[1]["created"], false);
    assert!(d.ping_ok());
    // No plaintext identity key anywhere in the daemon's files: the vault
    // holds it sealed and the pin file holds only the public key.
    let pin_text = std::fs::read_to_string(&d.pin_file).unwrap();
    assert!(pin_text.starts_with("keyward-signer-v1 "));
}

#[test]
fn a_bad_configuration_is_refused_with_a_stable_code() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[daemon]\nsocket = \"/tmp/x.sock\"\npin_file = \"/tmp/p\"\naudit_log = \"/tmp/a\"\nmax_conections = 3\n\
         [vault]\ndir = \"/tmp/v\"\ntcti = \"device:/dev/null\"\n[[peer]]\nuid = 0\nrole = \"admin\"\n",
    )
    .unwrap();
    let out = Command::new(KEYWARDD).arg("run").arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("keywardd: KW_CONFIG_INVALID:") && err.contains("max_conections"), "{err}");
}

#[test]
fn rejected_peer_never_gets_a_handshake_even_if_it_sends_one() {
    // A peer whose uid and gid are both unmapped sends a full ClientHello at
    // once; the only answer is the refusal alert, never a ServerHello.
    let d = daemon(Options {
        daemon: format!("socket_group = {NOGROUP}"),
        peers: "[[peer]]\nuid = 0\nrole = \"admin\"\n".into(),
        ..Options::default()
    });
    let out = Command::new(keyward())
        .arg("--socket")
        .arg(&d.socket)
        .arg("--pin")
        .arg(&d.pin_file)
        .arg("ping")
        .uid(STRANGER_UID)
        .gid(NOGROUP)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("DENY_PEER_NOT_ALLOWED"));
    assert!(d.events("session_opened").is_empty());
    assert!(d.events("handshake_failed").is_empty());
}

#[test]
fn duplicate_keys_and_unknown_fields_are_refused_with_stable_codes() {
    let d = daemon_with_key(Options::default());
    let mut c = d.client().unwrap();
    let code = |r: Result<Response, ipc::client::CallError>| match r {
        Err(ipc::client::CallError::Api(e)) => e.code,
        other => format!("not a refusal: {other:?}"),
    };
    // An intent that names its amount twice: a reader that keeps the first
    // and one that keeps the last would disagree on what was decided.
    let intent = serde_json::to_string(&daemon_harness::x402_intent("dup-1", 1000)).unwrap();
    let twice = intent.replacen(r#""amount_atomic":"1000""#, r#""amount_atomic":"1000","amount_atomic":"900000""#, 1);
    assert_ne!(twice, intent, "the duplicate key is in the body");
    let body = format!(r#"{{"op":"submit","intent":{twice}}}"#);
    assert_eq!(code(c.call_raw(body.as_bytes())), "KW_JSON_DUPLICATE_KEY");
    assert_eq!(code(c.call_raw(br#"{"op":"ping","op":"key_list"}"#)), "KW_JSON_DUPLICATE_KEY");
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert_eq!(code(c.call_raw(deep.as_bytes())), "KW_JSON_TOO_DEEP");
    assert_eq!(code(c.call_raw(br#"{"op":"#)), "KW_JSON_INVALID");
    // Requests without fields refuse unknown ones like the others do.
    assert_eq!(code(c.call_raw(br#"{"op":"ping","extra":1}"#)), "API_BAD_REQUEST");
    assert_eq!(code(c.call_raw(br#"{"op":"key_list","name":"hot"}"#)), "API_BAD_REQUEST");
    // Nothing reached the intent pipeline, and the session stays open.
    assert!(d.events("intent_decided").is_empty() && d.events("intent_refused").is_empty());
    assert!(matches!(c.call(&Request::Ping), Ok(Response::Pong { .. })));
    // Control: the same intent, each key once, is decided.
    let body = format!(r#"{{"op":"submit","intent":{intent}}}"#);
    let answer = c.call_raw(body.as_bytes());
    assert!(
        matches!(&answer, Ok(Response::Decision { reason_code, .. }) if reason_code == "ALLOW_AUTO_POLICY_OK"),
        "{answer:?}"
    );
    assert!(d.wait_for("intent_decided", Duration::from_secs(5), |e| e["reason_code"] == "ALLOW_AUTO_POLICY_OK"));
}
