//! Signer-side cost of "what is signed is what was decided": binding a
//! payment intent to its transaction (registry look-up, two associated token
//! accounts, compiling the v0 message, the exact check of the result) and
//! signing it, against raw Ed25519 signing of the same message bytes (same
//! run, same key). Goal: at most 1.2x the raw signature. Token-account
//! derivations are memoised (solana-codec), so the steady state (paying a
//! known payee) and the cold case (a new payee) are measured apart.
//!
//! `cargo bench -p signer --bench x402_build`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crypto::ed25519::Ed25519SigningKey;
use daemon_harness::{TEST_POLICY, x402_intent};
use policy::CanonicalIntent;
use secmem::MLockedSeed;
use solana_codec::Pubkey;

fn bench(c: &mut Criterion) {
    let policy = policy::Policy::from_toml(&TEST_POLICY.replace("profile = \"strict\"", "profile = \"compat\""))
        .expect("the harness policy parses");
    let seed = MLockedSeed::<32>::new_random().unwrap();
    let key = Ed25519SigningKey::gen_key_m(&seed).unwrap();
    let ours = Pubkey::new(key.derive_verification_key_m().0);
    let parsed = CanonicalIntent::from_json(&x402_intent("bench-1", 250_000)).unwrap();
    let mut bound = parsed.clone();
    policy::solana::bind(&mut bound, &policy.registry, &ours, &[]).unwrap();
    let message = bound.message.clone();

    let mut g = c.benchmark_group("x402");
    g.bench_function("raw Ed25519 sign of the transaction message (baseline)", |b| {
        b.iter(|| black_box(key.sign_bytes_m(black_box(&message))))
    });
    // Each iteration binds a fresh copy of the parsed intent (the copy is
    // made outside the timed part, as the signer parses once per request).
    g.bench_function("bind (build + exact check) + sign", |b| {
        b.iter_batched(
            || parsed.clone(),
            |mut i| {
                policy::solana::bind(&mut i, &policy.registry, &ours, &[]).unwrap();
                black_box(key.sign_bytes_m(&i.message))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("bind only", |b| {
        b.iter_batched(
            || parsed.clone(),
            |mut i| black_box(policy::solana::bind(&mut i, &policy.registry, &ours, &[]).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    // A first payment to a new payee: its token account is derived afresh.
    let mut n = 0u64;
    g.bench_function("bind + sign, new payee each time (cold derivation)", |b| {
        b.iter_batched(
            || {
                n += 1;
                let mut payee = [0u8; 32];
                payee[..8].copy_from_slice(&n.to_le_bytes());
                payee[31] = 0x42;
                let mut j = x402_intent("bench-1", 250_000);
                j["payee"] = serde_json::json!(Pubkey::new(payee).to_base58());
                CanonicalIntent::from_json(&j).unwrap()
            },
            |mut i| {
                policy::solana::bind(&mut i, &policy.registry, &ours, &[]).unwrap();
                black_box(key.sign_bytes_m(&i.message))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
