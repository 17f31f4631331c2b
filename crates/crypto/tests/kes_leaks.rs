//! Leak tests in the spirit of cardano-base's: every locked allocation made by
//! keygen, sign and update is freed, and no copy of a secret survives where it
//! should not, in the locked pool, the heap or the stack.
//!
//! The global pool runs on the mlock backend here so that a scan of
//! `/proc/self/mem` can see locked pages too (memfd_secret pages would hide
//! them, and with them the positive control). Secrets the test must look for
//! are held only as their bitwise complements, and each scan first counts
//! where a secret must be: a stray copy, including one left by this test,
//! shows up as a count that is too high.
//!
//! One test function: the pool counters are process-wide.

use blake2::Blake2b;
use blake2::digest::{Digest, consts::U32};
use crypto::ed25519::Ed25519SigningKey;
use crypto::kes::{self, KesAlgorithm};
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use secmem::inspect::scan_own_memory;
use secmem::{Backend, MLockedSeed};
use sha2::Sha512;

/// A 32-byte secret, stored complemented.
struct Needle {
    name: &'static str,
    inverted: [u8; 32],
}

impl Needle {
    fn new(name: &'static str, mut bytes: [u8; 32]) -> Needle {
        for b in &mut bytes {
            *b = !*b;
        }
        Needle { name, inverted: bytes }
    }
}

/// Occurrences of each needle in readable process memory.
fn count(needles: &[Needle]) -> Vec<usize> {
    let mut counts = vec![0usize; needles.len()];
    scan_own_memory(31, |_, bytes| {
        if bytes.len() < 32 {
            return;
        }
        for j in 0..=bytes.len() - 32 {
            for (n, c) in needles.iter().zip(counts.iter_mut()) {
                if bytes[j] == !n.inverted[0] && bytes[j..j + 32].iter().zip(&n.inverted).all(|(b, i)| *b == !*i) {
                    *c += 1;
                }
            }
        }
    })
    .unwrap();
    counts
}

fn expect(needles: &[Needle], want: &[usize], when: &str) {
    // Chunks overlap by 31 bytes, so a needle across a chunk boundary is seen
    // once; dedup is unnecessary for 32-byte needles.
    let got = count(needles);
    let report: Vec<String> =
        needles.iter().zip(got.iter().zip(want)).map(|(n, (g, w))| format!("{}: {g} (want {w})", n.name)).collect();
    assert_eq!(got, want, "{when}: {report:?}");
}

/// The secrets of a Sum1 key from `seed`, complemented. Each hash runs in this
/// frame and the stack is scrubbed after, so the test keeps no plain copy.
#[inline(never)]
fn sum1_needles(seed: &MLockedSeed<32>) -> Vec<Needle> {
    let mut out = Vec::new();
    out.push(Needle::new("seed", *seed.as_bytes()));
    for (tag, name) in [(1u8, "r0"), (2u8, "r1")] {
        let r: [u8; 32] = Blake2b::<U32>::new().chain_update([tag]).chain_update(seed.as_bytes()).finalize().into();
        let h: [u8; 64] = Sha512::digest(r).into();
        let scalar = Scalar::from_bytes_mod_order(clamp_integer(h[..32].try_into().unwrap())).to_bytes();
        let (lo, hi) = (h[..32].try_into().unwrap(), h[32..].try_into().unwrap());
        out.push(Needle::new(name, r));
        out.push(Needle::new(if tag == 1 { "sha512(r0)[..32]" } else { "sha512(r1)[..32]" }, lo));
        out.push(Needle::new(if tag == 1 { "sha512(r0)[32..]" } else { "sha512(r1)[32..]" }, hi));
        out.push(Needle::new(if tag == 1 { "scalar(r0)" } else { "scalar(r1)" }, scalar));
    }
    out
}

#[test]
fn kes_and_ed25519_leave_no_secret_behind() {
    let pool = secmem::configure_global(Backend::Mlock).expect("first use of the global pool in this process");
    let live = || pool.stats().live_allocations;

    // --- Sum1 through a whole evolution ---------------------------------
    let base = live();
    let seed = MLockedSeed::new_random().unwrap();
    let needles = sum1_needles(&seed);
    secmem::scrub_stack();
    //              seed r0 s0lo s0hi sc0 r1 s1lo s1hi sc1
    expect(&needles, &[1, 0, 0, 0, 0, 0, 0, 0, 0], "before keygen: only the caller's seed");

    let key = kes::gen_key::<kes::Sum1>(&seed).unwrap();
    assert!(live() > base + 1, "the key holds locked allocations besides the seed");
    seed.finalize();
    // sk0 = r0 ‖ sha512(r0) in locked memory; r1 kept; the right leaf key was
    // generated for its vk and destroyed; the master seed is gone.
    expect(&needles, &[0, 1, 1, 1, 0, 1, 0, 0, 0], "after keygen");

    let sig0 = kes::sign(&key, 0, b"period 0").unwrap();
    expect(&needles, &[0, 1, 1, 1, 0, 1, 0, 0, 0], "after signing at period 0 (stack scrubbed)");

    let key = kes::update(key, 0).unwrap().expect("period 1 exists");
    // Forward security: nothing of period 0's key remains; r1 now lives only
    // as the new leaf's seed (its own slot is zeroed).
    expect(&needles, &[0, 0, 0, 0, 0, 1, 1, 1, 0], "after update to period 1");

    let sig1 = kes::sign(&key, 1, b"period 1").unwrap();
    expect(&needles, &[0, 0, 0, 0, 0, 1, 1, 1, 0], "after signing at period 1");
    let vk = key.verification_key();
    kes::Sum1::verify(&vk, 0, b"period 0", &sig0).unwrap();
    kes::Sum1::verify(&vk, 1, b"period 1", &sig1).unwrap();

    assert!(kes::update(key, 1).unwrap().is_none());
    expect(&needles, &[0, 0, 0, 0, 0, 0, 0, 0, 0], "after the last update");
    assert_eq!(live(), base, "every locked allocation of the key is freed");

    // --- Ed25519 DSIGN-M: forget ----------------------------------------
    let base = live();
    let seed = MLockedSeed::new_random().unwrap();
    let needles = sum1_needles(&seed);
    secmem::scrub_stack();
    let ed_seed_needle = [Needle { name: "ed seed", inverted: needles[0].inverted }];
    let sk = Ed25519SigningKey::gen_key_m(&seed).unwrap();
    seed.finalize();
    expect(&ed_seed_needle, &[1], "Ed25519 key holds its seed once, locked");
    let _ = sk.sign_bytes_m(b"m");
    expect(&ed_seed_needle, &[1], "after signing");
    sk.forget_signing_key_m();
    expect(&ed_seed_needle, &[0], "after forget");
    assert_eq!(live(), base);

    // --- Sum6: allocations balance over keygen, 64 signs, 63 updates -----
    let stats0 = pool.stats();
    let seed = MLockedSeed::new_random().unwrap();
    let mut key = kes::gen_key::<kes::Sum6>(&seed).unwrap();
    seed.finalize();
    for t in 0..64 {
        let _ = kes::sign(&key, t, b"x").unwrap();
        match kes::update(key, t).unwrap() {
            Some(k) => key = k,
            None => {
                assert_eq!(t, 63);
                break;
            }
        }
    }
    let stats1 = pool.stats();
    assert_eq!(stats1.live_allocations, stats0.live_allocations, "no locked allocation outlives the key");
    assert_eq!(
        stats1.total_allocations - stats0.total_allocations,
        stats1.total_frees - stats0.total_frees,
        "allocations and frees balance"
    );
    assert!(stats1.total_allocations - stats0.total_allocations > 64, "the evolution really allocated");
}
