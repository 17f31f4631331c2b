//! Ed25519 DSIGN / DSIGN-M: known answers, an independent signer, Wycheproof,
//! and the cases where libsodium (Cardano's verifier) is stricter than
//! ed25519-dalek.

use crypto::direct::{self, DirectSerialise};
use crypto::ed25519::{
    self, Ed25519Signature, Ed25519SigningKey, Ed25519VerificationKey, has_small_order, is_canonical_point_encoding,
};
use crypto::{CryptoError, VerifyFailure};
use proptest::prelude::*;
use secmem::MLockedSeed;

fn key(seed: &[u8; 32]) -> Ed25519SigningKey {
    let mut s = MLockedSeed::new().unwrap();
    s.as_mut_bytes().copy_from_slice(seed);
    Ed25519SigningKey::gen_key_m(&s).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" { Vec::new() } else { hex::decode(s).unwrap() }
}

fn failure(r: Result<(), CryptoError>) -> VerifyFailure {
    match r {
        Err(CryptoError::Verify(f)) => f,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

#[test]
fn rfc8032_known_answers() {
    let text = include_str!("vectors/rfc8032-ed25519.txt");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let sk = key(&unhex(f[0]).try_into().unwrap());
        let vk = sk.derive_verification_key_m();
        assert_eq!(vk.0.to_vec(), unhex(f[1]));
        let msg = unhex(f[2]);
        let sig = sk.sign_bytes_m(&msg);
        assert_eq!(sig.0.to_vec(), unhex(f[3]));
        ed25519::verify(&vk, &msg, &sig).unwrap();
        n += 1;
    }
    assert_eq!(n, 3);
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// ed25519-dalek's own SigningKey as an independent signer.
    #[test]
    fn signatures_equal_an_independent_signer(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
        use ed25519_dalek::Signer;
        let reference = ed25519_dalek::SigningKey::from_bytes(&seed);
        let ours = key(&seed);
        prop_assert_eq!(ours.derive_verification_key_m().0, reference.verifying_key().to_bytes());
        prop_assert_eq!(ours.sign_bytes_m(&msg).0, reference.sign(&msg).to_bytes());
    }

    #[test]
    fn flipped_bits_never_verify(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 1..64), bit in 0usize..(8 * 64)) {
        let sk = key(&seed);
        let vk = sk.derive_verification_key_m();
        let sig = sk.sign_bytes_m(&msg);
        let mut bad = sig;
        bad.0[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(ed25519::verify(&vk, &msg, &bad).is_err());
        let mut bad_msg = msg.clone();
        bad_msg[bit % msg.len()] ^= 1;
        prop_assert!(ed25519::verify(&vk, &bad_msg, &sig).is_err());
        let mut bad_vk = vk;
        bad_vk.0[bit % 32] ^= 1 << (bit % 8);
        prop_assert!(ed25519::verify(&bad_vk, &msg, &sig).is_err());
    }
}

#[test]
fn wycheproof_vectors_follow_libsodium() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let (mut valid, mut invalid, mut stricter) = (0, 0, Vec::new());
    for group in &set.test_groups {
        let vk = Ed25519VerificationKey(group.key.pk.as_slice().try_into().unwrap());
        for t in &group.tests {
            let sig: Option<[u8; 64]> = t.sig.as_slice().try_into().ok();
            let result = match sig {
                Some(s) => ed25519::verify(&vk, &t.msg, &Ed25519Signature(s)),
                None => Err(CryptoError::BadLength { what: "signature", expected: 64, actual: t.sig.len() }),
            };
            match t.result {
                wycheproof::TestResult::Invalid => {
                    assert!(result.is_err(), "tc {} ({}) must be rejected", t.tc_id, t.comment);
                    invalid += 1;
                }
                _ => match result {
                    Ok(()) => valid += 1,
                    // Wycheproof accepts a few signatures that libsodium refuses;
                    // only libsodium's extra rules may be the reason.
                    Err(CryptoError::Verify(
                        f
                        @ (VerifyFailure::SmallOrderR | VerifyFailure::SmallOrderKey | VerifyFailure::NonCanonicalKey),
                    )) => stricter.push((t.tc_id, f)),
                    Err(e) => panic!("tc {} ({}) must verify: {e}", t.tc_id, t.comment),
                },
            }
        }
    }
    assert!(valid > 10 && invalid > 50, "valid {valid}, invalid {invalid}");
    println!("wycheproof: {valid} valid accepted, {invalid} invalid rejected, libsodium-stricter: {stricter:?}");
}

/// The identity key with R = identity and S = 0 "verifies" every message under
/// the cofactorless equation. ed25519-dalek's verify accepts it; libsodium,
/// and therefore keyward, does not.
#[test]
fn small_order_key_and_r_forgery_is_refused_unlike_plain_dalek() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&identity);
    let msg = b"pay 1000 ADA to the attacker";
    let dalek = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    use ed25519_dalek::Verifier;
    assert!(dalek.verify(msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok(), "plain dalek accepts");
    let r = ed25519::verify(&Ed25519VerificationKey(identity), msg, &Ed25519Signature(sig));
    assert_eq!(failure(r), VerifyFailure::SmallOrderR);
}

#[test]
fn small_order_and_non_canonical_keys_are_refused() {
    let sk = key(&[7; 32]);
    let msg = b"m";
    let sig = sk.sign_bytes_m(msg);
    let small: [[u8; 32]; 5] = [
        [0; 32],
        {
            let mut a = [0; 32];
            a[0] = 1;
            a
        },
        hex::decode("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05").unwrap().try_into().unwrap(),
        hex::decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a").unwrap().try_into().unwrap(),
        hex::decode("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f").unwrap().try_into().unwrap(),
    ];
    // Every entry is a point of small order, with either sign bit: the list is
    // libsodium's and is checked against the curve here.
    for enc in small {
        for sign in [0u8, 0x80] {
            let mut e = enc;
            e[31] |= sign;
            assert!(has_small_order(&e));
            if let Some(p) = ed25519::decompress(&e) {
                assert!(p.is_small_order(), "{}", hex::encode(e));
            }
            let r = ed25519::verify(&Ed25519VerificationKey(e), msg, &sig);
            assert_eq!(failure(r), VerifyFailure::SmallOrderKey);
        }
    }
    // The five canonical small-order y values cover all 8 torsion points.
    let points: usize = small
        .iter()
        .map(|e| {
            [0u8, 0x80]
                .iter()
                .filter_map(|s| {
                    let mut x = *e;
                    x[31] |= s;
                    ed25519::decompress(&x).map(|p| p.compress().to_bytes())
                })
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        })
        .sum();
    assert_eq!(points, 8);
    // Non-canonical encodings (y >= p) are refused before decompression.
    for low in [0xedu8, 0xee, 0xf0, 0xff] {
        let mut e = [0xffu8; 32];
        e[0] = low;
        e[31] = 0x7f;
        assert!(!is_canonical_point_encoding(&e));
        assert!(ed25519::verify(&Ed25519VerificationKey(e), msg, &sig).is_err());
    }
    assert!(is_canonical_point_encoding(&sk.derive_verification_key_m().0));
}

#[test]
fn non_canonical_s_and_small_order_r_are_refused() {
    let sk = key(&[9; 32]);
    let vk = sk.derive_verification_key_m();
    let msg = b"x";
    let sig = sk.sign_bytes_m(msg);
    // S + L: the same scalar, non-canonically encoded.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut malleable = sig;
    let mut carry = 0u16;
    for (s_byte, l_byte) in malleable.0[32..].iter_mut().zip(L) {
        let v = u16::from(*s_byte) + u16::from(l_byte) + carry;
        *s_byte = v as u8;
        carry = v >> 8;
    }
    assert_eq!(failure(ed25519::verify(&vk, msg, &malleable)), VerifyFailure::NonCanonicalS);
    let mut small_r = sig;
    small_r.0[..32].copy_from_slice(&[0; 32]);
    assert_eq!(failure(ed25519::verify(&vk, msg, &small_r)), VerifyFailure::SmallOrderR);
}

#[test]
fn dsign_m_operations() {
    let sk = key(&[3; 32]);
    let vk = sk.derive_verification_key_m();
    let clone = sk.clone_key_m().unwrap();
    assert_eq!(clone.derive_verification_key_m(), vk);
    assert_eq!(clone.sign_bytes_m(b"a"), sk.sign_bytes_m(b"a"));
    assert_eq!(sk.get_seed_m().unwrap().as_bytes(), &[3; 32]);
    // DirectSerialise carries only the seed, and round-trips.
    let raw = direct::to_locked(&sk).unwrap();
    assert_eq!(raw.as_slice(), &[3; 32]);
    assert_eq!(<Ed25519SigningKey as DirectSerialise>::DIRECT_SIZE, 32);
    let back: Ed25519SigningKey = direct::from_slice(raw.as_slice()).unwrap();
    assert_eq!(back.derive_verification_key_m(), vk);
    assert_eq!(direct::from_slice::<Ed25519SigningKey>(&[3; 31]).unwrap_err().code(), "CRYPTO_DIRECT_SHORT_INPUT");
    assert_eq!(direct::from_slice::<Ed25519SigningKey>(&[3; 33]).unwrap_err().code(), "CRYPTO_DIRECT_LONG_INPUT");
    assert!(!format!("{sk:?}").contains("0303"), "Debug never shows the seed");
    clone.forget_signing_key_m();
    sk.forget_signing_key_m();
}

#[test]
fn raw_and_cbor_codecs_round_trip_and_check_lengths() {
    let sk = key(&[5; 32]);
    let vk = sk.derive_verification_key_m();
    let sig = sk.sign_bytes_m(b"codec");
    assert_eq!(Ed25519VerificationKey::from_raw(&vk.0).unwrap(), vk);
    assert_eq!(Ed25519VerificationKey::from_cbor(&vk.to_cbor()).unwrap(), vk);
    assert_eq!(&vk.to_cbor()[..2], &[0x58, 32]);
    assert_eq!(Ed25519Signature::from_cbor(&sig.to_cbor()).unwrap(), sig);
    assert_eq!(&sig.to_cbor()[..2], &[0x58, 64]);
    assert_eq!(Ed25519Signature::from_raw(&sig.0[..63]).unwrap_err().code(), "CRYPTO_BAD_LENGTH");
    assert_eq!(Ed25519VerificationKey::from_cbor(&sig.to_cbor()).unwrap_err().code(), "CRYPTO_MALFORMED");
    let cbor = sk.to_cbor_locked().unwrap();
    assert_eq!(&cbor.as_slice()[..2], &[0x58, 32]);
    assert_eq!(&cbor.as_slice()[2..], &[5; 32]);
    let back = Ed25519SigningKey::from_cbor(cbor.as_slice()).unwrap();
    assert_eq!(back.derive_verification_key_m(), vk);
    assert!(Ed25519SigningKey::from_cbor(&cbor.as_slice()[..33]).is_err());
}
