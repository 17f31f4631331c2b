//! Handshake latency, and the record layer on a 256-byte request against raw
//! XChaCha20-Poly1305 on the same bytes (same run). Socket round trips and
//! the ssh-agent comparison arrive with the daemon.

use std::hint::black_box;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use criterion::{Criterion, criterion_group, criterion_main};
use ipc::{ClientHandshake, ServerHandshake, SignerIdentity, Suite, SuitePolicy, SystemClock, msg};

const NOW: u64 = 1_800_000_000;

fn bench(c: &mut Criterion) {
    let identity = SignerIdentity::generate().unwrap();
    let mut g = c.benchmark_group("ipc");
    g.bench_function("handshake/full (both sides)", |b| {
        b.iter(|| {
            let (client, hello) =
                ClientHandshake::start(identity.public(), "role=agent", Suite::XChaCha20Poly1305, NOW).unwrap();
            let (server, sh) = ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict).unwrap();
            let (ch, fin) = client.finish(&sh, NOW).unwrap();
            (ch, server.finish(&fin).unwrap())
        })
    });
    let (client, hello) = ClientHandshake::start(identity.public(), "", Suite::XChaCha20Poly1305, NOW).unwrap();
    let (server, sh) = ServerHandshake::respond(&identity, &hello, NOW, SuitePolicy::Strict).unwrap();
    let (mut ch, fin) = client.finish(&sh, NOW).unwrap();
    let mut sv = server.finish(&fin).unwrap();
    let clock = SystemClock::default();
    let payload = [0x42u8; 256];
    g.bench_function("record/seal+open 256B (keyward)", |b| {
        b.iter(|| {
            for r in ch.seal(msg::REQUEST, black_box(&payload), &clock).unwrap() {
                black_box(sv.open(&r, &clock).unwrap());
            }
        })
    });
    let raw = XChaCha20Poly1305::new_from_slice(&[7u8; 32]).unwrap();
    let nonce = [9u8; 24];
    g.bench_function("record/seal+open 256B (raw xchacha20poly1305)", |b| {
        b.iter(|| {
            let mut buf = payload.to_vec();
            let tag = raw.encrypt_inout_detached((&nonce).into(), b"aad", buf.as_mut_slice().into()).unwrap();
            raw.decrypt_inout_detached((&nonce).into(), b"aad", buf.as_mut_slice().into(), &tag).unwrap();
            black_box(buf)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
