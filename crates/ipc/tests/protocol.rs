//! The protocol engine: known answers from an independent implementation,
//! handshake refusals, record tamper/replay/reorder, re-keying, lifecycle.

use std::cell::Cell;
use std::time::Duration;

use ipc::handshake::{ClientHandshake, ServerHandshake, SignerIdentity, SuitePolicy, pin_from_text, pin_to_text};
use ipc::record::{Channel, Clock, RekeyPolicy, Suite, msg};
use zeroize::Zeroizing;

struct FakeClock(Cell<u64>);

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        Duration::from_secs(self.0.get())
    }
}

fn clock() -> FakeClock {
    FakeClock(Cell::new(0))
}

fn vectors() -> std::collections::HashMap<String, Vec<u8>> {
    let text = include_str!("vectors/kat-v1.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            let bytes = (0..v.len()).step_by(2).map(|i| u8::from_str_radix(&v[i..i + 2], 16).unwrap()).collect();
            (k.to_string(), bytes)
        })
        .collect()
}

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into().unwrap()
}

#[test]
fn known_answers_from_an_independent_implementation() {
    let v = vectors();
    let identity = SignerIdentity::from_secret(Zeroizing::new(arr(&v["static_secret"])));
    assert_eq!(identity.public()[..], v["static_public"][..]);
    let t_client = u64::from_be_bytes(arr(&v["client_time"]));
    let t_server = u64::from_be_bytes(arr(&v["server_time"]));
    let (client, hello) = ClientHandshake::start_with_ephemeral(
        Zeroizing::new(arr(&v["client_ephemeral_secret"])),
        identity.public(),
        std::str::from_utf8(&v["claims"]).unwrap(),
        Suite::XChaCha20Poly1305,
        t_client,
    )
    .unwrap();
    assert_eq!(hello, v["client_hello"]);
    let (server, server_hello) = ServerHandshake::respond_with(
        &identity,
        &hello,
        t_server,
        SuitePolicy::Strict,
        Zeroizing::new(arr(&v["server_ephemeral_secret"])),
        arr(&v["session_id"]),
    )
    .unwrap();
    assert_eq!(server_hello, v["server_hello"]);
    assert_eq!(server.claims.claims, "role=agent");
    let (mut c, fin) = client.finish(&server_hello, t_client).unwrap();
    assert_eq!(fin, v["client_finished"]);
    let mut s = server.finish(&fin).unwrap();
    let clk = clock();
    let r1 = c.seal(msg::REQUEST, b"hello signer", &clk).unwrap();
    assert_eq!(r1, vec![v["record_c2s_1"].clone()]);
    let r2 = s.seal(msg::RESPONSE, b"hello client", &clk).unwrap();
    assert_eq!(r2, vec![v["record_s2c_1"].clone()]);
    c.set_rekey_policy(RekeyPolicy { max_records: 1, max_age: Duration::from_secs(300) });
    let r3 = c.seal(msg::REQUEST, b"after rekey", &clk).unwrap();
    assert_eq!(r3, vec![v["record_c2s_2_key_update"].clone(), v["record_c2s_3"].clone()]);
    // And the Rust opener reads the independent implementation's records.
    assert_eq!(s.open(&v["record_c2s_1"], &clk).unwrap().unwrap().payload.as_slice(), b"hello signer");
    assert_eq!(s.open(&v["record_c2s_2_key_update"], &clk).unwrap(), None);
    assert_eq!(s.open(&v["record_c2s_3"], &clk).unwrap().unwrap().payload.as_slice(), b"after rekey");
    assert_eq!(s.generations(), (0, 1));
}

const NOW: u64 = 1_800_000_000;

fn pair(suite: Suite, policy: SuitePolicy) -> (Channel, Channel) {
    let identity = SignerIdentity::generate().unwrap();
    let (client, hello) = ClientHandshake::start(identity.public(), "role=agent", suite, NOW).unwrap();
    let (server, sh) = ServerHandshake::respond(&identity, &hello, NOW, policy).unwrap();
    let (c, fin) = client.finish(&sh, NOW).unwrap();
    (c, server.finish(&fin).unwrap())
}

#[test]
fn many_messages_both_ways_with_rekeying_at_1000() {
    let (mut c, mut s) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let clk = clock();
    for i in 0..2500u32 {
        let payload = i.to_be_bytes();
        for r in c.seal(msg::REQUEST, &payload, &clk).unwrap() {
            if let Some(o) = s.open(&r, &clk).unwrap() {
                assert_eq!(o.payload.as_slice(), payload);
            }
        }
        for r in s.seal(msg::RESPONSE, &payload, &clk).unwrap() {
            if let Some(o) = c.open(&r, &clk).unwrap() {
                assert_eq!(o.payload.as_slice(), payload);
            }
        }
    }
    assert_eq!(c.generations(), (2, 2), "re-keyed after 1000 and 2000 records each way");
    assert_eq!(s.generations(), (2, 2));
}

#[test]
fn rekeying_at_the_time_limit() {
    let (mut c, mut s) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let clk = clock();
    let send = |c: &mut Channel, s: &mut Channel| {
        for r in c.seal(msg::REQUEST, b"x", &clk).unwrap() {
            s.open(&r, &clk).unwrap();
        }
    };
    send(&mut c, &mut s);
    clk.0.set(299);
    send(&mut c, &mut s);
    assert_eq!(c.generations().0, 0);
    clk.0.set(300);
    send(&mut c, &mut s);
    assert_eq!((c.generations().0, s.generations().1), (1, 1), "re-keyed at 5 minutes");
    clk.0.set(599);
    send(&mut c, &mut s);
    assert_eq!(c.generations().0, 1);
    clk.0.set(600);
    send(&mut c, &mut s);
    assert_eq!(c.generations().0, 2);
}

#[test]
fn every_bit_flip_of_a_record_is_refused_and_ends_the_session() {
    let clk = clock();
    let (mut c, _) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let record = c.seal(msg::REQUEST, b"transfer 5 lovelace", &clk).unwrap().remove(0);
    let mut codes = std::collections::BTreeSet::new();
    for i in 0..record.len() * 8 {
        // A fresh pair per flip: a refused record ends its session.
        let (mut c, mut s) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
        let mut r = c.seal(msg::REQUEST, b"transfer 5 lovelace", &clk).unwrap().remove(0);
        r[i / 8] ^= 1 << (i % 8);
        let err = s.open(&r, &clk).unwrap_err();
        codes.insert(err.code());
        assert!(s.is_closed(), "bit {i}: session closed");
        let good = c.seal(msg::REQUEST, b"next", &clk).unwrap().remove(0);
        assert_eq!(s.open(&good, &clk).unwrap_err().code(), "DENY_INVALID_TRANSITION", "nothing after a failure");
    }
    assert!(codes.iter().all(|c| ["DENY_AEAD_INTEGRITY", "DENY_REPLAY", "IPC_UNSUPPORTED_VERSION"].contains(c)));
    assert!(codes.contains("DENY_AEAD_INTEGRITY"));
}

#[test]
fn replayed_and_reordered_records_are_refused() {
    let clk = clock();
    let (mut c, mut s) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let r1 = c.seal(msg::REQUEST, b"one", &clk).unwrap().remove(0);
    s.open(&r1, &clk).unwrap();
    assert_eq!(s.open(&r1, &clk).unwrap_err().code(), "DENY_REPLAY", "exact replay");

    let (mut c, mut s) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let r1 = c.seal(msg::REQUEST, b"one", &clk).unwrap().remove(0);
    let r2 = c.seal(msg::REQUEST, b"two", &clk).unwrap().remove(0);
    assert_eq!(s.open(&r2, &clk).unwrap_err().code(), "DENY_REPLAY", "reordered");
    assert!(s.is_closed());
    drop(r1);

    // A record from another session (same keys impossible; same counter) is a forgery.
    let (mut c2, _) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let (_, mut s3) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let foreign = c2.seal(msg::REQUEST, b"x", &clk).unwrap().remove(0);
    assert_eq!(s3.open(&foreign, &clk).unwrap_err().code(), "DENY_AEAD_INTEGRITY");
    // A signer's own record reflected back at it is refused.
    let (_, mut s4) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let own = s4.seal(msg::RESPONSE, b"x", &clk).unwrap().remove(0);
    assert_eq!(s4.open(&own, &clk).unwrap_err().code(), "DENY_AEAD_INTEGRITY");
}

#[test]
fn wrong_pinned_key_and_tampered_transcripts_are_refused() {
    let identity = SignerIdentity::generate().unwrap();
    let impostor = SignerIdentity::generate().unwrap();
    // The client pinned another signer: the signer refuses the hello.
    let (_, hello) = ClientHandshake::start(impostor.public(), "", Suite::XChaCha20Poly1305, NOW).unwrap();
    let err = ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict).unwrap_err();
    assert_eq!(err.code(), "DENY_HANDSHAKE_INTEGRITY");
    // An impostor answering for the pinned key (it cannot: it would need the
    // pinned key's secret). It answers with its own key: refused.
    let (client, hello) = ClientHandshake::start(identity.public(), "", Suite::XChaCha20Poly1305, NOW).unwrap();
    let mut forged = hello.clone();
    forged[48..64].copy_from_slice(&ipc::handshake::key_id(&impostor.public()));
    let (_, sh) = ServerHandshake::respond(&impostor, &forged, NOW, SuitePolicy::Strict).unwrap();
    assert_eq!(client.finish(&sh, NOW).unwrap_err().code(), "DENY_HANDSHAKE_INTEGRITY");

    // Every byte of each handshake message flipped in transit.
    for target in 0..3 {
        let len = {
            let (client, hello) =
                ClientHandshake::start(identity.public(), "role=agent", Suite::XChaCha20Poly1305, NOW).unwrap();
            let (server, sh) = ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict).unwrap();
            let (_, fin) = client.finish(&sh, NOW).unwrap();
            drop(server);
            [hello.len(), sh.len(), fin.len()][target]
        };
        for i in 0..len {
            let (client, mut hello) =
                ClientHandshake::start(identity.public(), "role=agent", Suite::XChaCha20Poly1305, NOW).unwrap();
            if target == 0 {
                hello[i] ^= 0x01;
            }
            let refused = match ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict) {
                Err(_) => true,
                Ok((server, mut sh)) => {
                    if target == 1 {
                        sh[i] ^= 0x01;
                    }
                    match client.finish(&sh, NOW) {
                        Err(_) => true,
                        Ok((_, mut fin)) => {
                            if target == 2 {
                                fin[i] ^= 0x01;
                            }
                            server.finish(&fin).is_err()
                        }
                    }
                }
            };
            assert!(refused, "message {target} byte {i} flipped: handshake must fail");
        }
    }
}

#[test]
fn suites_clock_skew_and_low_order_shares() {
    let identity = SignerIdentity::generate().unwrap();
    let (_, hello) = ClientHandshake::start(identity.public(), "", Suite::Aes256Gcm, NOW).unwrap();
    assert_eq!(
        ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict).unwrap_err().code(),
        "IPC_UNSUPPORTED_SUITE"
    );
    let (mut c, mut s) = pair(Suite::Aes256Gcm, SuitePolicy::Compatibility);
    let clk = clock();
    let r = c.seal(msg::REQUEST, b"gcm", &clk).unwrap().remove(0);
    assert_eq!(s.open(&r, &clk).unwrap().unwrap().payload.as_slice(), b"gcm");

    let (_, hello) = ClientHandshake::start(identity.public(), "", Suite::XChaCha20Poly1305, NOW - 121).unwrap();
    assert_eq!(
        ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict).unwrap_err().code(),
        "DENY_HANDSHAKE_INTEGRITY"
    );
    // A client "ephemeral" of all zeros (a low-order point).
    let (_, mut hello) = ClientHandshake::start(identity.public(), "", Suite::XChaCha20Poly1305, NOW).unwrap();
    hello[16..48].fill(0);
    assert_eq!(
        ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict).unwrap_err().code(),
        "DENY_HANDSHAKE_INTEGRITY"
    );
}

#[test]
fn lifecycle_refuses_use_after_close() {
    let clk = clock();
    let (mut c, mut s) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    let close = c.seal(msg::CLOSE, b"", &clk).unwrap().remove(0);
    assert!(c.is_closed());
    assert_eq!(c.seal(msg::REQUEST, b"x", &clk).unwrap_err().code(), "DENY_INVALID_TRANSITION");
    assert_eq!(s.open(&close, &clk).unwrap().unwrap().msg_type, msg::CLOSE);
    assert!(s.is_closed());
    assert_eq!(s.seal(msg::RESPONSE, b"x", &clk).unwrap_err().code(), "DENY_INVALID_TRANSITION");
    // A caller may not forge a KeyUpdate.
    let (mut c, _) = pair(Suite::XChaCha20Poly1305, SuitePolicy::Strict);
    assert_eq!(c.seal(msg::KEY_UPDATE, b"", &clk).unwrap_err().code(), "DENY_INVALID_TRANSITION");
}

#[test]
fn pin_files() {
    let id = SignerIdentity::generate().unwrap();
    let text = pin_to_text(&id.public());
    assert_eq!(pin_from_text(&format!("# signer\n\n{text}")).unwrap(), id.public());
    assert_eq!(pin_from_text("keyward-signer-v1 00").unwrap_err().code(), "IPC_MALFORMED");
    let secret_hex: String = id.secret().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!format!("{id:?}").contains(&secret_hex), "Debug never shows the secret");
}

#[test]
fn a_client_refused_before_it_writes_reports_the_signers_alert_not_a_broken_pipe() {
    use std::os::unix::net::UnixStream;
    // The signer refuses at accept (SO_PEERCRED) and hangs up before the
    // client's ClientHello: the client's write fails with EPIPE, and the
    // alert already in its receive buffer is what it must report.
    let (client_end, mut signer_end) = UnixStream::pair().unwrap();
    ipc::frame::write_frame(&mut signer_end, &ipc::alert::encode("DENY_PEER_NOT_ALLOWED")).unwrap();
    drop(signer_end);
    let pinned = SignerIdentity::generate().unwrap().public();
    let e =
        ipc::client::Client::handshake(client_end, pinned, Suite::XChaCha20Poly1305, std::time::Duration::from_secs(5))
            .unwrap_err();
    assert_eq!(e.code(), "DENY_PEER_NOT_ALLOWED");
}
