//! One operation, repeated: the workload for `scripts/bench-instructions.sh`,
//! which counts instructions under callgrind (repeatable on a noisy machine,
//! unlike wall-clock time). Usage: `kes_ops OP N`; OP as listed below.

use std::hint::black_box;

use crypto::ed25519::{self, Ed25519SigningKey};
use crypto::kes::{self, KesAlgorithm};
use kes_summed_ed25519::kes::{Sum6CompactKes, Sum6Kes};
use kes_summed_ed25519::traits::{KesCompactSig, KesSig, KesSk};
use secmem::MLockedSeed;

const SEED: [u8; 32] = [42; 32];
const MSG: &[u8] = b"a 64-byte block header hash, give or take, signed every slot....";

fn seed() -> MLockedSeed<32> {
    let mut s = MLockedSeed::new().unwrap();
    s.as_mut_bytes().copy_from_slice(&SEED);
    s
}

macro_rules! family {
    ($op:expr, $n:expr, $prefix:literal, $ours:ty, $theirs:ty, $verify:expr) => {
        'family: {
            let s = seed();
            let mut tb = vec![0u8; <$theirs>::SIZE + 4];
            let mut sd = SEED;
            let (theirs, their_pk) = <$theirs>::keygen(&mut tb, &mut sd);
            let template = theirs.as_bytes().to_vec();
            let ours = <$ours>::gen_key(&s).unwrap();
            let vk = ours.verification_key();
            let sig = ours.sign(0, MSG).unwrap();
            let their_sig = theirs.sign(MSG);
            match $op.strip_prefix(concat!($prefix, "/")) {
                Some("keygen/keyward") => (0..$n).for_each(|_| drop(black_box(<$ours>::gen_key(&s).unwrap()))),
                Some("keygen/kes-summed") => (0..$n).for_each(|_| {
                    let mut b = vec![0u8; <$theirs>::SIZE + 4];
                    let mut sd = SEED;
                    black_box(<$theirs>::keygen(&mut b, &mut sd));
                }),
                Some("sign/keyward") => (0..$n).for_each(|_| {
                    black_box(ours.sign(0, MSG).unwrap());
                }),
                Some("sign/kes-summed") => (0..$n).for_each(|_| {
                    black_box(theirs.sign(MSG));
                }),
                Some("verify/keyward") => (0..$n).for_each(|_| <$ours>::verify(&vk, 0, MSG, &sig).unwrap()),
                Some("verify/kes-summed") => (0..$n).for_each(|_| assert!($verify(&their_sig, &their_pk))),
                // A fresh period-0 key per update: keyward generates one (the
                // script subtracts keygen/keyward), kes-summed copies a template
                // (the script subtracts update-setup/kes-summed).
                Some("keygen+update/keyward") => (0..$n).for_each(|_| {
                    black_box(<$ours>::gen_key(&s).unwrap().update(0).unwrap());
                }),
                Some("update-setup/kes-summed") => (0..$n).for_each(|_| {
                    let mut b = template.clone();
                    black_box(<$theirs>::from_bytes(&mut b).unwrap());
                }),
                Some("update-setup+update/kes-summed") => (0..$n).for_each(|_| {
                    let mut b = template.clone();
                    let mut k = <$theirs>::from_bytes(&mut b).unwrap();
                    k.update().unwrap();
                }),
                Some("evolve64/keyward") => (0..$n).for_each(|_| {
                    let mut k = <$ours>::gen_key(&s).unwrap();
                    for t in 0..63 {
                        k = k.update(t).unwrap().unwrap();
                    }
                }),
                Some("evolve64/kes-summed") => (0..$n).for_each(|_| {
                    let mut b = vec![0u8; <$theirs>::SIZE + 4];
                    let mut sd = SEED;
                    let (mut k, _) = <$theirs>::keygen(&mut b, &mut sd);
                    for _ in 0..63 {
                        k.update().unwrap();
                    }
                }),
                _ => break 'family false,
            }
            true
        }
    };
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (op, n): (&str, usize) = (&args[1], args[2].parse().unwrap());
    let done = family!(op, n, "sum6", kes::Sum6, Sum6Kes, |s: &kes_summed_ed25519::kes::Sum6KesSig, pk| s
        .verify(0, pk, MSG)
        .is_ok())
        || family!(
            op,
            n,
            "compact_sum6",
            kes::CompactSum6,
            Sum6CompactKes,
            |s: &kes_summed_ed25519::kes::Sum6CompactKesSig, pk| { KesCompactSig::verify(s, 0, pk, MSG).is_ok() }
        );
    if done {
        return;
    }
    let s = seed();
    let ours = Ed25519SigningKey::gen_key_m(&s).unwrap();
    let vk = ours.derive_verification_key_m();
    let sig = ours.sign_bytes_m(MSG);
    let dalek = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let dsig = ed25519_dalek::Signature::from_bytes(&sig.0);
    use ed25519_dalek::{Signer, Verifier};
    match op {
        "ed25519/sign/keyward" => (0..n).for_each(|_| {
            black_box(ours.sign_bytes_m(MSG));
        }),
        "ed25519/sign/dalek" => (0..n).for_each(|_| {
            black_box(dalek.sign(MSG));
        }),
        "scrub_stack" => (0..n).for_each(|_| secmem::scrub_stack()),
        "ed25519/verify/keyward" => (0..n).for_each(|_| ed25519::verify(&vk, MSG, &sig).unwrap()),
        "ed25519/verify/dalek-from-bytes" => {
            (0..n).for_each(|_| ed25519_dalek::VerifyingKey::from_bytes(&vk.0).unwrap().verify(MSG, &dsig).unwrap())
        }
        other => panic!("unknown op {other}"),
    }
}
