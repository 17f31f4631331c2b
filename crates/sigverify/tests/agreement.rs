//! `sigverify::verify` (curve25519-dalek arithmetic, used by `keyward`) and
//! `crypto::ed25519::verify` (ed25519-dalek's equation, used by `keywardd`)
//! must give the same answer on every input: Wycheproof's vectors, honest
//! signatures, and signatures with one bit flipped anywhere.

use crypto::ed25519::{self, Ed25519Signature, Ed25519SigningKey, Ed25519VerificationKey};
use proptest::prelude::*;
use secmem::MLockedSeed;

fn both(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> (bool, bool) {
    let ours = sigverify::verify(pk, msg, sig);
    let theirs = ed25519::verify(&Ed25519VerificationKey(*pk), msg, &Ed25519Signature(*sig));
    if let (Err(a), Err(crypto::CryptoError::Verify(b))) = (ours, &theirs) {
        // The pre-equation rules are shared, so the reason must match too.
        if a != sigverify::Rejection::Equation && a != sigverify::Rejection::InvalidKey {
            assert_eq!(crypto::VerifyFailure::from(a), *b);
        }
    }
    (ours.is_ok(), theirs.is_ok())
}

#[test]
fn wycheproof_vectors_agree_with_crypto() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let (mut accepted, mut refused) = (0, 0);
    for group in &set.test_groups {
        let pk: [u8; 32] = group.key.pk.as_slice().try_into().unwrap();
        for t in &group.tests {
            let Ok(sig) = <[u8; 64]>::try_from(t.sig.as_slice()) else { continue };
            let (ours, theirs) = both(&pk, &t.msg, &sig);
            assert_eq!(ours, theirs, "tc {} ({})", t.tc_id, t.comment);
            if t.result == wycheproof::TestResult::Invalid {
                assert!(!ours, "tc {} must be refused", t.tc_id);
            }
            if ours { accepted += 1 } else { refused += 1 }
        }
    }
    assert!(accepted > 10 && refused > 50, "accepted {accepted}, refused {refused}");
}

#[test]
fn small_order_forgery_is_refused() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&identity);
    assert_eq!(sigverify::verify(&identity, b"anything", &sig), Err(sigverify::Rejection::SmallOrderR));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn honest_and_mangled_signatures_agree(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..200), bit in 0usize..(96 * 8)) {
        let mut locked = MLockedSeed::<32>::new().unwrap();
        locked.as_mut_bytes().copy_from_slice(&seed);
        let key = Ed25519SigningKey::gen_key_m(&locked).unwrap();
        let pk = key.derive_verification_key_m().0;
        let sig = key.sign_bytes_m(&msg).0;
        prop_assert_eq!(both(&pk, &msg, &sig), (true, true));
        // Flip one bit of the key or the signature.
        let (mut pk2, mut sig2) = (pk, sig);
        if bit < 256 { pk2[bit / 8] ^= 1 << (bit % 8) } else { sig2[(bit - 256) / 8] ^= 1 << (bit % 8) }
        let (a, b) = both(&pk2, &msg, &sig2);
        prop_assert_eq!(a, b);
        prop_assert!(!a);
    }
}
