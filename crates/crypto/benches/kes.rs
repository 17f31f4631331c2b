//! KES and Ed25519 against their baselines, measured in the same run.
//!
//! * Sum6 / CompactSum6 keygen, sign, verify, update and a full 64-period
//!   evolution, against `kes-summed-ed25519` (no locked memory, no stack scrub).
//! * Ed25519 sign / verify against raw `ed25519-dalek` (the physical limit).
//! * DirectSerialise + DirectDeserialise of a Sum6 key against CBOR encode +
//!   decode (ciborium) of the same 608 bytes.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use crypto::direct;
use crypto::ed25519::{self, Ed25519SigningKey};
use crypto::kes::{self, KesAlgorithm};
use kes_summed_ed25519::kes::{Sum6CompactKes, Sum6Kes};
use kes_summed_ed25519::traits::{KesCompactSig, KesSig, KesSk};
use secmem::{MLockedBytes, MLockedSeed};

const SEED: [u8; 32] = [42; 32];
const MSG: &[u8] = b"a 64-byte block header hash, give or take, signed every slot....";

fn seed() -> MLockedSeed<32> {
    let mut s = MLockedSeed::new().unwrap();
    s.as_mut_bytes().copy_from_slice(&SEED);
    s
}

macro_rules! kes_group {
    ($c:expr, $name:literal, $ours:ty, $theirs:ty, $verify_theirs:path) => {{
        let mut g = $c.benchmark_group($name);
        let s = seed();
        g.bench_function("keygen/keyward", |b| b.iter(|| kes::gen_key::<$ours>(black_box(&s)).unwrap()));
        g.bench_function("keygen/kes-summed", |b| {
            let mut buf = vec![0u8; <$theirs>::SIZE + 4];
            b.iter(|| {
                let mut sd = SEED;
                let (sk, pk) = <$theirs>::keygen(&mut buf, black_box(&mut sd));
                black_box(pk);
                drop(sk);
            })
        });
        let ours = kes::gen_key::<$ours>(&s).unwrap();
        let vk = ours.verification_key();
        let mut buf = vec![0u8; <$theirs>::SIZE + 4];
        let mut sd = SEED;
        let (theirs, their_pk) = <$theirs>::keygen(&mut buf, &mut sd);
        g.bench_function("sign/keyward", |b| b.iter(|| kes::sign(&ours, 0, black_box(MSG)).unwrap()));
        g.bench_function("sign/kes-summed", |b| b.iter(|| theirs.sign(black_box(MSG))));
        let sig = kes::sign(&ours, 0, MSG).unwrap();
        let their_sig = theirs.sign(MSG);
        g.bench_function("verify/keyward", |b| b.iter(|| <$ours>::verify(&vk, 0, black_box(MSG), &sig).unwrap()));
        g.bench_function("verify/kes-summed", |b| {
            b.iter(|| $verify_theirs(&their_sig, 0, &their_pk, black_box(MSG)).unwrap())
        });
        drop(theirs);
        g.bench_function("update/keyward", |b| {
            b.iter_batched(|| kes::gen_key::<$ours>(&s).unwrap(), |k| kes::update(k, 0).unwrap(), BatchSize::SmallInput)
        });
        g.bench_function("update/kes-summed", |b| {
            // A copy of a fresh period-0 key buffer per iteration (setup, untimed).
            let mut fresh = vec![0u8; <$theirs>::SIZE + 4];
            let mut sd = SEED;
            let (sk, _) = <$theirs>::keygen(&mut fresh, &mut sd);
            let template = sk.as_bytes().to_vec();
            drop(sk);
            b.iter_batched(
                || template.clone(),
                |mut buf| {
                    let mut sk = <$theirs>::from_bytes(&mut buf).unwrap();
                    sk.update().unwrap();
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("evolve64/keyward", |b| {
            b.iter(|| {
                let mut k = kes::gen_key::<$ours>(&s).unwrap();
                for t in 0..63 {
                    k = kes::update(k, t).unwrap().unwrap();
                }
                assert!(kes::update(k, 63).unwrap().is_none());
            })
        });
        g.bench_function("evolve64/kes-summed", |b| {
            let mut buf = vec![0u8; <$theirs>::SIZE + 4];
            b.iter(|| {
                let mut sd = SEED;
                let (mut sk, _) = <$theirs>::keygen(&mut buf, &mut sd);
                for _ in 0..63 {
                    sk.update().unwrap();
                }
                assert!(sk.update().is_err());
            })
        });
        g.finish();
    }};
}

fn verify_sum(
    s: &kes_summed_ed25519::kes::Sum6KesSig,
    t: u32,
    pk: &kes_summed_ed25519::PublicKey,
    m: &[u8],
) -> Result<(), ()> {
    s.verify(t, pk, m).map_err(|_| ())
}

fn bench(c: &mut Criterion) {
    kes_group!(c, "sum6", kes::Sum6, Sum6Kes, verify_sum);
    kes_group!(c, "compact_sum6", kes::CompactSum6, Sum6CompactKes, verify_compact);

    // Ed25519: keyward (locked expanded key, libsodium rules) vs raw dalek.
    let mut g = c.benchmark_group("ed25519");
    let s = seed();
    let ours = Ed25519SigningKey::gen_key_m(&s).unwrap();
    let vk = ours.derive_verification_key_m();
    let sig = ours.sign_bytes_m(MSG);
    let dalek = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let dalek_vk = dalek.verifying_key();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig.0);
    use ed25519_dalek::{Signer, Verifier};
    g.bench_function("sign/keyward", |b| b.iter(|| ours.sign_bytes_m(black_box(MSG))));
    g.bench_function("sign/dalek", |b| b.iter(|| dalek.sign(black_box(MSG))));
    g.bench_function("verify/keyward", |b| b.iter(|| ed25519::verify(&vk, black_box(MSG), &sig).unwrap()));
    g.bench_function("verify/dalek-from-bytes", |b| {
        b.iter(|| {
            let k = ed25519_dalek::VerifyingKey::from_bytes(black_box(&vk.0)).unwrap();
            k.verify(black_box(MSG), &dalek_sig).unwrap()
        })
    });
    g.bench_function("verify/dalek-decompressed", |b| b.iter(|| dalek_vk.verify(black_box(MSG), &dalek_sig).unwrap()));
    g.finish();

    // DirectSerialise round trip vs CBOR of the same bytes.
    let mut g = c.benchmark_group("sum6_serialise");
    let key = kes::gen_key::<kes::Sum6>(&s).unwrap();
    let raw = direct::to_locked(&key).unwrap();
    g.bench_function("direct_roundtrip_to_key/keyward", |b| {
        b.iter(|| {
            let bytes = direct::to_locked(black_box(&key)).unwrap();
            direct::from_slice::<kes::Sum6>(bytes.as_slice()).unwrap()
        })
    });
    g.bench_function("direct_roundtrip_bytes/keyward", |b| {
        b.iter(|| {
            let bytes = direct::to_locked(black_box(&key)).unwrap();
            let mut copy = MLockedBytes::new(bytes.len()).unwrap();
            copy.as_mut_slice().copy_from_slice(bytes.as_slice());
            copy
        })
    });
    g.bench_function("cbor_roundtrip_bytes/ciborium", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            ciborium::into_writer(&ciborium::Value::Bytes(black_box(raw.as_slice()).to_vec()), &mut out).unwrap();
            let v: ciborium::Value = ciborium::from_reader(out.as_slice()).unwrap();
            v.into_bytes().unwrap()
        })
    });
    g.finish();
}

fn verify_compact(
    s: &kes_summed_ed25519::kes::Sum6CompactKesSig,
    t: u32,
    pk: &kes_summed_ed25519::PublicKey,
    m: &[u8],
) -> Result<(), ()> {
    KesCompactSig::verify(s, t, pk, m).map_err(|_| ())
}

criterion_group!(benches, bench);
criterion_main!(benches);
