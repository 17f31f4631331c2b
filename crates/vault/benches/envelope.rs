//! Seal and open against raw ChaCha20-Poly1305 on the same bytes (same run),
//! and the `cocoon` password container (PBKDF2-SHA256, 100 000 iterations) a
//! user might pick instead.

use std::hint::black_box;

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use vault::envelope::{self, Algorithm, CipherPolicy, DataKey, Header, SecretKind};

fn bench(c: &mut Criterion) {
    let dek = DataKey::generate().unwrap();
    let header = Header {
        algorithm: Algorithm::ChaCha20Poly1305,
        kind: SecretKind::Opaque,
        kek_id: [1; 16],
        dek_id: dek.id(),
        epoch: 1,
        name: "bench-secret".to_string(),
    };
    let raw = ChaCha20Poly1305::new_from_slice(&[9u8; 32]).unwrap();
    let nonce = [3u8; 12];
    let mut g = c.benchmark_group("envelope");
    for (size, label) in [(64usize, "64B"), (1024, "1KiB"), (1 << 20, "1MiB")] {
        let secret = vec![0x5au8; size];
        g.bench_with_input(BenchmarkId::new("seal/keyward", label), &secret, |b, s| {
            b.iter(|| envelope::seal(&dek, &header, black_box(s)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("seal/raw-chacha20poly1305", label), &secret, |b, s| {
            b.iter(|| {
                let mut buf = black_box(s).clone();
                let tag = raw.encrypt_inout_detached((&nonce).into(), b"aad", buf.as_mut_slice().into()).unwrap();
                (buf, tag)
            })
        });
        let blob = envelope::seal(&dek, &header, &secret).unwrap();
        g.bench_with_input(BenchmarkId::new("open/keyward", label), &blob, |b, blob| {
            b.iter(|| envelope::open(&dek, black_box(blob), CipherPolicy::Strict).unwrap())
        });
        let mut ct = secret.clone();
        let tag = raw.encrypt_inout_detached((&nonce).into(), b"aad", ct.as_mut_slice().into()).unwrap();
        g.bench_with_input(BenchmarkId::new("open/raw-chacha20poly1305", label), &ct, |b, ct| {
            b.iter(|| {
                let mut buf = black_box(ct).clone();
                raw.decrypt_inout_detached((&nonce).into(), b"aad", buf.as_mut_slice().into(), &tag).unwrap();
                buf
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cocoon_password_container");
    g.sample_size(10);
    let secret = vec![0x5au8; 64];
    g.bench_function("wrap+unwrap/64B", |b| {
        b.iter(|| {
            let mut cocoon = cocoon::Cocoon::new(b"correct horse battery staple");
            let wrapped = cocoon.wrap(black_box(&secret)).unwrap();
            cocoon.unwrap(&wrapped).unwrap()
        })
    });
    g.bench_function("seal+open/keyward/64B", |b| {
        b.iter(|| {
            let blob = envelope::seal(&dek, &header, black_box(&secret)).unwrap();
            envelope::open(&dek, &blob, CipherPolicy::Strict).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
