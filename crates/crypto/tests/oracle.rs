//! Cross-implementation: every Sum and CompactSum depth against the
//! `kes-summed-ed25519` crate (an independent implementation of the same
//! cardano-base constructions). Equal verification keys, equal signatures at
//! every period, equal raw signing keys through a whole evolution, and each
//! side verifies the other's signatures. Its key buffer appends a 4-byte
//! big-endian period, which is compared separately.

use crypto::direct;
use crypto::kes::{self, KesAlgorithm, KesSignature};
use kes_summed_ed25519::PublicKey;
use kes_summed_ed25519::traits::{KesCompactSig, KesSig, KesSk};
use proptest::prelude::*;
use secmem::MLockedSeed;

fn locked_seed(seed: &[u8; 32]) -> MLockedSeed<32> {
    let mut s = MLockedSeed::new().unwrap();
    s.as_mut_bytes().copy_from_slice(seed);
    s
}

macro_rules! oracle_test {
    ($test:ident, $ours:ty, $theirs:ty, $verify_theirs:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $test(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
                let total = <$ours>::TOTAL_PERIODS;
                let mut their_buf = vec![0u8; <$theirs>::SIZE + 4];
                let mut their_seed = seed;
                let (mut theirs, their_pk) = <$theirs>::keygen(&mut their_buf, &mut their_seed);
                let mut ours = kes::gen_key::<$ours>(&locked_seed(&seed)).unwrap();
                let vk = ours.verification_key();
                prop_assert_eq!(&vk.0[..], their_pk.as_bytes(), "verification keys");
                for t in 0..total {
                    let raw = direct::to_locked(&ours).unwrap();
                    prop_assert_eq!(raw.as_slice(), &theirs.as_bytes()[..<$theirs>::SIZE], "raw sign key at period {}", t);
                    prop_assert_eq!(&theirs.as_bytes()[<$theirs>::SIZE..], &t.to_be_bytes()[..], "their period suffix");
                    let sig = kes::sign(&ours, t, &msg).unwrap();
                    let their_sig = theirs.sign(&msg);
                    prop_assert_eq!(sig.to_raw(), their_sig.to_bytes().to_vec(), "signature at period {}", t);
                    prop_assert!(<$ours>::verify(&vk, t, &msg, &sig).is_ok());
                    prop_assert!($verify_theirs(&their_sig, t, &their_pk, &msg));
                    let parsed = <<$ours as KesAlgorithm>::Signature>::read_raw(&their_sig.to_bytes()).unwrap();
                    prop_assert!(<$ours>::verify(&vk, t, &msg, &parsed).is_ok(), "ours verifies theirs");
                    match kes::update(ours, t).unwrap() {
                        Some(next) => {
                            prop_assert!(t + 1 < total);
                            theirs.update().unwrap();
                            ours = next;
                        }
                        None => {
                            prop_assert_eq!(t + 1, total, "update returns none only after the last period");
                            prop_assert!(theirs.update().is_err());
                            break;
                        }
                    }
                }
            }
        }
    };
}

fn verify_sum<S: KesSig>(sig: &S, t: u32, pk: &PublicKey, m: &[u8]) -> bool {
    sig.verify(t, pk, m).is_ok()
}

fn verify_compact<S: KesCompactSig>(sig: &S, t: u32, pk: &PublicKey, m: &[u8]) -> bool {
    KesCompactSig::verify(sig, t, pk, m).is_ok()
}

use kes_summed_ed25519::kes as theirs;

oracle_test!(sum1_matches_oracle, kes::Sum1, theirs::Sum1Kes, verify_sum);
oracle_test!(sum2_matches_oracle, kes::Sum2, theirs::Sum2Kes, verify_sum);
oracle_test!(sum3_matches_oracle, kes::Sum3, theirs::Sum3Kes, verify_sum);
oracle_test!(sum4_matches_oracle, kes::Sum4, theirs::Sum4Kes, verify_sum);
oracle_test!(sum5_matches_oracle, kes::Sum5, theirs::Sum5Kes, verify_sum);
oracle_test!(sum6_matches_oracle, kes::Sum6, theirs::Sum6Kes, verify_sum);
oracle_test!(sum7_matches_oracle, kes::Sum7, theirs::Sum7Kes, verify_sum);
oracle_test!(compact_sum1_matches_oracle, kes::CompactSum1, theirs::Sum1CompactKes, verify_compact);
oracle_test!(compact_sum2_matches_oracle, kes::CompactSum2, theirs::Sum2CompactKes, verify_compact);
oracle_test!(compact_sum3_matches_oracle, kes::CompactSum3, theirs::Sum3CompactKes, verify_compact);
oracle_test!(compact_sum4_matches_oracle, kes::CompactSum4, theirs::Sum4CompactKes, verify_compact);
oracle_test!(compact_sum5_matches_oracle, kes::CompactSum5, theirs::Sum5CompactKes, verify_compact);
oracle_test!(compact_sum6_matches_oracle, kes::CompactSum6, theirs::Sum6CompactKes, verify_compact);
oracle_test!(compact_sum7_matches_oracle, kes::CompactSum7, theirs::Sum7CompactKes, verify_compact);

#[test]
fn sizes_match_cardano_base() {
    assert_eq!(kes::Sum6::SIGN_KEY_SIZE, 608);
    assert_eq!(<kes::Sum6 as KesAlgorithm>::Signature::SIZE, 448);
    assert_eq!(<kes::CompactSum6 as KesAlgorithm>::Signature::SIZE, 288);
    assert_eq!(kes::Sum6::TOTAL_PERIODS, 64);
    assert_eq!(kes::Sum7::TOTAL_PERIODS, 128);
    assert_eq!(kes::Sum0::SIGN_KEY_SIZE, 32);
    assert_eq!(<kes::CompactSum0 as KesAlgorithm>::Signature::SIZE, 96);
    assert_eq!(<kes::Sum6 as direct::DirectSerialise>::DIRECT_SIZE, 608);
}
