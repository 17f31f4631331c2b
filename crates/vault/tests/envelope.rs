//! The sealed-blob envelope: round trips, and every way a blob at rest can be
//! damaged or forged failing closed with its stable code.

use proptest::prelude::*;
use secmem::MLockedSizedBytes;
use vault::VaultError;
use vault::envelope::{
    self, Algorithm, COMPLIANCE_WARNING_AES_GCM, CipherPolicy, DataKey, Header, MAX_NAME, SecretKind,
};

fn header(name: &str, algorithm: Algorithm) -> Header {
    Header {
        algorithm,
        kind: SecretKind::Ed25519Seed,
        kek_id: [7; 16],
        dek_id: [0; 16],
        epoch: 42,
        name: name.to_string(),
    }
}

fn code(r: Result<envelope::Opened, VaultError>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[test]
fn round_trips_and_binds_the_header() {
    let dek = DataKey::generate().unwrap();
    for len in [0usize, 1, 32, 1000, 70_000] {
        let secret: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let blob = envelope::seal(&dek, &header("payment-key", Algorithm::ChaCha20Poly1305), &secret).unwrap();
        assert_eq!(blob.len(), 81 + "payment-key".len() + len);
        let opened = envelope::open(&dek, &blob, CipherPolicy::Strict).unwrap();
        assert_eq!(opened.plaintext.as_slice(), &secret[..]);
        assert_eq!(opened.header.name, "payment-key");
        assert_eq!(opened.header.epoch, 42);
        assert_eq!(opened.header.dek_id, dek.id());
        assert_eq!(opened.compliance_warning, None);
        if len >= 16 {
            assert!(!blob.windows(16).any(|w| w == &secret[..16]), "no plaintext in the blob");
        }
    }
    // Fresh nonce per seal.
    let a = envelope::seal(&dek, &header("k", Algorithm::ChaCha20Poly1305), b"same").unwrap();
    let b = envelope::seal(&dek, &header("k", Algorithm::ChaCha20Poly1305), b"same").unwrap();
    assert_ne!(a, b);
}

#[test]
fn every_flipped_bit_fails_closed() {
    let dek = DataKey::generate().unwrap();
    let blob = envelope::seal(&dek, &header("kes-hot", Algorithm::ChaCha20Poly1305), &[0x5a; 32]).unwrap();
    let mut codes = std::collections::BTreeMap::<&str, usize>::new();
    for i in 0..blob.len() {
        for bit in 0..8 {
            let mut b = blob.clone();
            b[i] ^= 1 << bit;
            let c = code(envelope::open(&dek, &b, CipherPolicy::Compatibility));
            assert_ne!(c, "OK", "flipping bit {bit} of byte {i} must be refused");
            *codes.entry(c).or_default() += 1;
        }
    }
    // Most flips reach the tag check; header fields fail their own checks first.
    assert!(codes["VAULT_TAMPERED"] > blob.len() * 4, "{codes:?}");
    for expected in ["VAULT_BAD_MAGIC", "VAULT_UNKNOWN_VERSION", "VAULT_WRONG_DEK"] {
        assert!(codes.contains_key(expected), "{expected} in {codes:?}");
    }
}

#[test]
fn truncated_extended_and_foreign_blobs_are_refused() {
    let dek = DataKey::generate().unwrap();
    let blob = envelope::seal(&dek, &header("k1", Algorithm::ChaCha20Poly1305), &[1; 40]).unwrap();
    for len in 0..blob.len() {
        let c = code(envelope::open(&dek, &blob[..len], CipherPolicy::Strict));
        assert!(
            ["VAULT_TRUNCATED", "VAULT_BAD_NAME"].contains(&c),
            "a blob cut to {len} bytes must be refused as truncated, got {c}"
        );
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(code(envelope::open(&dek, &longer, CipherPolicy::Strict)), "VAULT_LENGTH_MISMATCH");
    assert_eq!(code(envelope::open(&dek, b"-----BEGIN PRIVATE KEY-----", CipherPolicy::Strict)), "VAULT_BAD_MAGIC");

    let mut v2 = blob.clone();
    v2[5] = 2;
    assert_eq!(code(envelope::open(&dek, &v2, CipherPolicy::Strict)), "VAULT_UNKNOWN_VERSION");
    let mut alg = blob.clone();
    alg[6] = 9;
    assert_eq!(code(envelope::open(&dek, &alg, CipherPolicy::Strict)), "VAULT_UNKNOWN_ALGORITHM");
    let mut kind = blob.clone();
    kind[7] = 0;
    assert_eq!(code(envelope::open(&dek, &kind, CipherPolicy::Strict)), "VAULT_UNKNOWN_KIND");
    let mut huge = blob.clone();
    let len_at = 49 + 2 + 12;
    huge[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(code(envelope::open(&dek, &huge, CipherPolicy::Strict)), "VAULT_TOO_LARGE");
}

#[test]
fn header_fields_cannot_be_rebound() {
    let dek = DataKey::generate().unwrap();
    let blob = envelope::seal(&dek, &header("alpha", Algorithm::ChaCha20Poly1305), b"seed").unwrap();
    // Valid-looking edits: rename, other kind, older epoch, other KEK id.
    let mut renamed = blob.clone();
    renamed[49] = b'b';
    let mut rekinded = blob.clone();
    rekinded[7] = SecretKind::Opaque as u8;
    let mut rolled = blob.clone();
    rolled[47] = 41;
    let mut rekek = blob.clone();
    rekek[8] ^= 0xff;
    for (what, b) in [("name", renamed), ("kind", rekinded), ("epoch", rolled), ("kek id", rekek)] {
        assert_eq!(code(envelope::open(&dek, &b, CipherPolicy::Strict)), "VAULT_TAMPERED", "{what}");
    }
}

#[test]
fn keys_and_cipher_policy() {
    let dek = DataKey::generate().unwrap();
    let other = DataKey::generate().unwrap();
    let blob = envelope::seal(&dek, &header("k", Algorithm::ChaCha20Poly1305), b"s").unwrap();
    assert_eq!(code(envelope::open(&other, &blob, CipherPolicy::Strict)), "VAULT_WRONG_DEK");
    // Same id, different key bytes: the tag catches it.
    let impostor = DataKey::from_locked(dek.id(), MLockedSizedBytes::new_random().unwrap());
    assert_eq!(code(envelope::open(&impostor, &blob, CipherPolicy::Strict)), "VAULT_TAMPERED");

    let gcm = envelope::seal(&dek, &header("legacy", Algorithm::Aes256Gcm), b"old secret").unwrap();
    assert_eq!(code(envelope::open(&dek, &gcm, CipherPolicy::Strict)), "VAULT_COMPAT_DISABLED");
    let opened = envelope::open(&dek, &gcm, CipherPolicy::Compatibility).unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"old secret");
    assert_eq!(opened.compliance_warning, Some(COMPLIANCE_WARNING_AES_GCM));
    // Relabelling an AES-GCM blob as ChaCha fails the tag, not the policy.
    let mut relabelled = gcm.clone();
    relabelled[6] = Algorithm::ChaCha20Poly1305 as u8;
    assert_eq!(code(envelope::open(&dek, &relabelled, CipherPolicy::Strict)), "VAULT_TAMPERED");
}

#[test]
fn hostile_names_are_refused_at_seal() {
    let dek = DataKey::generate().unwrap();
    let long = "a".repeat(MAX_NAME + 1);
    for name in ["", ".hidden", "../../etc/passwd", "a/b", "nul\0byte", "space name", long.as_str()] {
        let r = envelope::seal(&dek, &header(name, Algorithm::ChaCha20Poly1305), b"x");
        assert_eq!(r.unwrap_err().code(), "VAULT_BAD_NAME", "{name:?}");
    }
    assert!(envelope::seal(&dek, &header(&"a".repeat(MAX_NAME), Algorithm::ChaCha20Poly1305), b"x").is_ok());
}

#[test]
fn errors_and_debug_never_show_secrets() {
    let dek = DataKey::generate().unwrap();
    let blob = envelope::seal(&dek, &header("k", Algorithm::ChaCha20Poly1305), b"hunter2-hunter2").unwrap();
    let opened = envelope::open(&dek, &blob, CipherPolicy::Strict).unwrap();
    let rendered = format!("{dek:?} {opened:?}");
    assert!(!rendered.contains("hunter2"));
    let mut bad = blob.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = envelope::open(&dek, &bad, CipherPolicy::Strict).unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_secrets_round_trip_and_random_damage_is_refused(
        secret in proptest::collection::vec(any::<u8>(), 0..300),
        name in "[a-z0-9][a-z0-9._-]{0,40}",
        epoch in any::<u64>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let dek = DataKey::generate().unwrap();
        let mut h = header(&name, Algorithm::ChaCha20Poly1305);
        h.epoch = epoch;
        let blob = envelope::seal(&dek, &h, &secret).unwrap();
        let opened = envelope::open(&dek, &blob, CipherPolicy::Strict).unwrap();
        prop_assert_eq!(opened.plaintext.as_slice(), &secret[..]);
        prop_assert_eq!(opened.header.epoch, epoch);
        let mut bad = blob.clone();
        let i = at.index(bad.len());
        bad[i] ^= xor;
        prop_assert!(envelope::open(&dek, &bad, CipherPolicy::Compatibility).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]
    /// Arbitrary bytes, and arbitrary bytes behind a valid magic and version,
    /// are refused with an error, never a panic.
    #[test]
    fn arbitrary_input_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), prefixed in any::<bool>()) {
        if prefixed && bytes.len() >= 6 {
            bytes[..4].copy_from_slice(b"KWSB");
            bytes[4..6].copy_from_slice(&1u16.to_be_bytes());
        }
        let dek = DataKey::generate().unwrap();
        prop_assert!(envelope::open(&dek, &bytes, CipherPolicy::Compatibility).is_err());
        let _ = envelope::parse_header(&bytes);
    }
}
