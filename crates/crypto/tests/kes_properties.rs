//! Properties of every KES scheme: round trips at every period, rejection of
//! wrong periods / flipped bits / wrong keys, the end of evolution, range
//! errors, DirectSerialise, CBOR and text envelopes.

use crypto::direct::{self, DirectSerialise};
use crypto::kes::{self, KesAlgorithm, KesSignature};
use crypto::{CryptoError, cbor, envelope};
use secmem::MLockedSeed;

fn seed(b: u8) -> MLockedSeed<32> {
    let mut s = MLockedSeed::new().unwrap();
    for (i, x) in s.as_mut_bytes().iter_mut().enumerate() {
        *x = b.wrapping_mul(31).wrapping_add(i as u8);
    }
    s
}

fn exercise<K: KesAlgorithm>(seed_byte: u8) {
    let total = K::TOTAL_PERIODS;
    let msg = b"block header body hash";
    let mut key = kes::gen_key::<K>(&seed(seed_byte)).unwrap();
    let vk = key.verification_key();
    let other_vk = kes::gen_key::<K>(&seed(seed_byte ^ 0xff)).unwrap().verification_key();
    for t in 0..total {
        // DirectSerialise equals the raw layout and round-trips.
        let raw = direct::to_locked(&key).unwrap();
        assert_eq!(raw.len(), K::SIGN_KEY_SIZE);
        assert_eq!(<K as DirectSerialise>::DIRECT_SIZE, K::SIGN_KEY_SIZE);
        let copy: K = direct::from_slice(raw.as_slice()).unwrap();
        assert_eq!(direct::to_locked(&copy).unwrap().as_slice(), raw.as_slice(), "deserialise . serialise = id");
        assert_eq!(copy.verification_key(), vk);

        let sig = kes::sign(&key, t, msg).unwrap();
        assert_eq!(sig.to_raw().len(), K::SIGNATURE_SIZE);
        assert_eq!(kes::sign(&copy, t, msg).unwrap(), sig, "a deserialised key signs identically");
        K::verify(&vk, t, msg, &sig).unwrap();
        // Raw and CBOR codec round trips.
        let parsed = K::Signature::read_raw(&sig.to_raw()).unwrap();
        assert_eq!(parsed, sig);
        assert_eq!(K::Signature::from_cbor(&sig.to_cbor()).unwrap(), sig);
        assert_eq!(crypto::kes::KesVerificationKey::from_cbor(&vk.to_cbor()).unwrap(), vk);
        assert!(K::Signature::read_raw(&sig.to_raw()[1..]).is_err());
        // Wrong period, wrong message, wrong key, every flipped byte.
        if total > 1 {
            assert!(K::verify(&vk, (t + 1) % total, msg, &sig).is_err(), "period {t} sig at another period");
        }
        assert!(K::verify(&vk, t, b"another message", &sig).is_err());
        assert!(K::verify(&other_vk, t, msg, &sig).is_err());
        let raw_sig = sig.to_raw();
        for i in (0..raw_sig.len()).step_by(7) {
            let mut b = raw_sig.clone();
            b[i] ^= 0x01;
            let s = K::Signature::read_raw(&b).unwrap();
            assert!(K::verify(&vk, t, msg, &s).is_err(), "flipped byte {i} at period {t}");
        }
        // Out of range is an error, not a wrap.
        assert!(matches!(kes::sign(&key, total, msg), Err(CryptoError::PeriodOutOfRange { .. })));
        assert!(matches!(K::verify(&vk, total + t, msg, &sig), Err(CryptoError::PeriodOutOfRange { .. })));
        copy.forget();
        match kes::update(key, t).unwrap() {
            Some(next) => {
                assert!(t + 1 < total);
                key = next;
            }
            None => {
                assert_eq!(t + 1, total, "update returns none exactly after the last period");
                return;
            }
        }
    }
    unreachable!("evolution must end with None");
}

#[test]
fn every_scheme_round_trips_at_every_period() {
    exercise::<kes::Sum0>(1);
    exercise::<kes::Sum1>(2);
    exercise::<kes::Sum2>(3);
    exercise::<kes::Sum3>(4);
    exercise::<kes::Sum4>(5);
    exercise::<kes::Sum5>(6);
    exercise::<kes::Sum6>(7);
    exercise::<kes::Sum7>(8);
    exercise::<kes::CompactSum0>(9);
    exercise::<kes::CompactSum1>(10);
    exercise::<kes::CompactSum2>(11);
    exercise::<kes::CompactSum3>(12);
    exercise::<kes::CompactSum4>(13);
    exercise::<kes::CompactSum5>(14);
    exercise::<kes::CompactSum6>(15);
    exercise::<kes::CompactSum7>(16);
}

#[test]
fn update_with_a_period_out_of_range_is_an_error() {
    let key = kes::gen_key::<kes::Sum2>(&seed(1)).unwrap();
    assert_eq!(kes::update(key, 4).unwrap_err(), CryptoError::PeriodOutOfRange { period: 4, total: 4 });
}

#[test]
fn r1_is_replaced_by_zeros_once_the_right_half_is_generated() {
    // Sum1 raw key: sk (32) | r1 (32) | vk0 | vk1.
    let key = kes::gen_key::<kes::Sum1>(&seed(5)).unwrap();
    let before = direct::to_locked(&key).unwrap();
    assert_ne!(&before.as_slice()[32..64], &[0u8; 32]);
    let key = kes::update(key, 0).unwrap().unwrap();
    let after = direct::to_locked(&key).unwrap();
    assert_eq!(&after.as_slice()[32..64], &[0u8; 32]);
    // The new leaf key is the one generated from the old r1.
    assert_eq!(&after.as_slice()[..32], &before.as_slice()[32..64]);
    // vk0 and vk1 are unchanged.
    assert_eq!(&after.as_slice()[64..], &before.as_slice()[64..]);
    // Sum6: the top-level r1 (after the 32-period left subtree's key) is zero
    // from period 32 on.
    let off = <kes::Sum5 as KesAlgorithm>::SIGN_KEY_SIZE;
    let mut k = kes::gen_key::<kes::Sum6>(&seed(6)).unwrap();
    for t in 0..32 {
        assert_ne!(&direct::to_locked(&k).unwrap().as_slice()[off..off + 32], &[0u8; 32], "period {t}");
        k = kes::update(k, t).unwrap().unwrap();
    }
    assert_eq!(&direct::to_locked(&k).unwrap().as_slice()[off..off + 32], &[0u8; 32]);
}

#[test]
fn direct_deserialise_checks_sizes() {
    let key = kes::gen_key::<kes::Sum6>(&seed(2)).unwrap();
    let raw = direct::to_locked(&key).unwrap();
    assert_eq!(
        direct::from_slice::<kes::Sum6>(&raw.as_slice()[..607]).unwrap_err().code(),
        "CRYPTO_DIRECT_SHORT_INPUT"
    );
    let mut long = raw.as_slice().to_vec();
    long.push(0);
    assert_eq!(direct::from_slice::<kes::Sum6>(&long).unwrap_err().code(), "CRYPTO_DIRECT_LONG_INPUT");
    assert_eq!(direct::from_slice::<kes::Sum6>(&[]).unwrap_err().code(), "CRYPTO_DIRECT_SHORT_INPUT");
    // Chunks arrive in cardano-base order: child key, r1, vk0, vk1.
    let mut sizes = Vec::new();
    key.direct_serialise(&mut |c: &[u8]| {
        sizes.push(c.len());
        Ok(())
    })
    .unwrap();
    assert_eq!(sizes.iter().sum::<usize>(), 608);
    assert_eq!(&sizes[sizes.len() - 3..], &[32, 32, 32]);
}

#[test]
fn cbor_is_one_byte_string_for_every_key_and_signature() {
    let key = kes::gen_key::<kes::CompactSum0>(&seed(3)).unwrap();
    let sig = kes::sign(&key, 0, b"m").unwrap();
    let enc = cbor::encode_bytes(&sig.to_raw());
    assert_eq!(&enc[..2], &[0x58, 96], "CompactSingle signature: one 96-byte byte string, not an array");
    assert_eq!(cbor::decode_bytes(&enc, 96).unwrap(), &sig.to_raw()[..]);
    let vk = key.verification_key();
    assert_eq!(&cbor::encode_bytes(&vk.0)[..2], &[0x58, 32]);
    let sum6 = kes::gen_key::<kes::Sum6>(&seed(4)).unwrap();
    let sig = kes::sign(&sum6, 0, b"m").unwrap().to_raw();
    assert_eq!(&cbor::encode_bytes(&sig)[..3], &[0x59, 0x01, 0xc0], "448-byte signature");
    assert!(cbor::decode_bytes(&[0x58, 31], 32).is_err());
    assert!(cbor::decode_bytes(&[0x40 | 5, 1, 2, 3, 4, 5], 5).is_ok());
    assert!(cbor::decode_bytes(&[0x58, 5, 1, 2, 3, 4, 5], 5).is_err(), "non-minimal header refused");
}

#[test]
fn sum6_text_envelopes_round_trip_and_refuse_bad_input() {
    let key = kes::gen_key::<kes::Sum6>(&seed(8)).unwrap();
    let vk = key.verification_key();
    let vk_env = envelope::write_sum6_verification_key(&vk);
    let text = String::from_utf8(vk_env.clone()).unwrap();
    assert!(text.contains("\"type\": \"KesVerificationKey_ed25519_kes_2^6\""));
    assert!(text.contains("\"cborHex\": \"5820"));
    assert_eq!(envelope::read_sum6_verification_key(&vk_env).unwrap(), vk);

    let sk_env = envelope::write_sum6_signing_key(&key).unwrap();
    let sk_text = std::str::from_utf8(sk_env.as_slice()).unwrap();
    assert!(sk_text.contains("\"type\": \"KesSigningKey_ed25519_kes_2^6\""));
    assert!(sk_text.contains("\"cborHex\": \"590260"), "608-byte CBOR byte string");
    let back = envelope::read_sum6_signing_key(&sk_env).unwrap();
    assert_eq!(back.verification_key(), vk);
    assert_eq!(kes::sign(&back, 0, b"x").unwrap(), kes::sign(&key, 0, b"x").unwrap());

    let locked = |s: &str| {
        let mut b = secmem::MLockedBytes::new(s.len()).unwrap();
        b.as_mut_slice().copy_from_slice(s.as_bytes());
        b
    };
    // Wrong type, truncated hex, bad hex, not JSON, duplicate key.
    let wrong_type = sk_text.replace("KesSigningKey", "StakeSigningKey");
    let truncated = sk_text.replacen("590260", "590260ab", 1);
    let bad_hex = sk_text.replacen("590260", "59026z", 1);
    let dup = sk_text.replacen("{", "{\"type\": \"x\",", 1);
    for bad in [wrong_type.as_str(), truncated.as_str(), bad_hex.as_str(), "not json", dup.as_str(), ""] {
        assert!(envelope::read_sum6_signing_key(&locked(bad)).is_err(), "{bad:.40}");
    }
    assert!(envelope::read_sum6_verification_key(sk_text.as_bytes()).is_err(), "a signing key is not a vk");
}
