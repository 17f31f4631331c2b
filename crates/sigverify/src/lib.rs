//! Ed25519 verification (RFC 8032) with libsodium's acceptance rules, for
//! callers that must never be able to hold a signing key.
//!
//! `keyward` verifies signed proofs and bundles on its own, offline, but its
//! crate graph is the trust boundary: it cannot link `crypto` (whose
//! `Ed25519SigningKey` lives in locked memory) nor ed25519-dalek (which
//! defines `SigningKey`). This crate is the public half: the checks libsodium
//! makes before the equation (`crypto_sign_verify_detached`) and the
//! cofactorless equation itself, on curve25519-dalek's group arithmetic. It
//! has no secret input, so nothing here needs constant time or zeroizing.
//!
//! `crypto::ed25519::verify` uses the same rules (re-exported from here) with
//! ed25519-dalek's equation; `tests/agreement.rs` holds the two to the same
//! answer on Wycheproof's vectors and on random and mangled signatures.
#![forbid(unsafe_code)]

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// Why a signature was refused. Public information only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// `S` is not below the group order.
    NonCanonicalS,
    /// `R` has small order.
    SmallOrderR,
    /// The public key's encoding is not canonical.
    NonCanonicalKey,
    /// The public key has small order.
    SmallOrderKey,
    /// The public key is not a curve point.
    InvalidKey,
    /// The verification equation does not hold.
    Equation,
}

/// The checks libsodium makes before the equation, in its order.
pub fn check_rules(public_key: &[u8; 32], signature: &[u8; 64]) -> Result<(), Rejection> {
    let s: [u8; 32] = signature[32..].try_into().expect("32 bytes");
    if bool::from(Scalar::from_canonical_bytes(s).is_none()) {
        return Err(Rejection::NonCanonicalS);
    }
    let r: [u8; 32] = signature[..32].try_into().expect("32 bytes");
    if has_small_order(&r) {
        return Err(Rejection::SmallOrderR);
    }
    if !is_canonical_point_encoding(public_key) {
        return Err(Rejection::NonCanonicalKey);
    }
    if has_small_order(public_key) {
        return Err(Rejection::SmallOrderKey);
    }
    Ok(())
}

/// Verifies `signature` on `message` under `public_key`: libsodium's rules,
/// then the cofactorless equation `[S]B = R + [k]A` checked, as libsodium
/// does, by comparing the encoding of `[S]B − [k]A` with the bytes of `R`.
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), Rejection> {
    check_rules(public_key, signature)?;
    let a = CompressedEdwardsY(*public_key).decompress().ok_or(Rejection::InvalidKey)?;
    let s_bytes: [u8; 32] = signature[32..].try_into().expect("32 bytes");
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(Rejection::NonCanonicalS)?;
    let mut h = Sha512::new();
    h.update(&signature[..32]);
    h.update(public_key);
    h.update(message);
    let digest: [u8; 64] = h.finalize().into();
    let k = Scalar::from_bytes_mod_order_wide(&digest);
    let r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s);
    if r.compress().as_bytes() == &signature[..32] { Ok(()) } else { Err(Rejection::Equation) }
}

/// libsodium's `ge25519_is_canonical`: the y coordinate (sign bit aside) is
/// below p = 2^255 − 19.
pub fn is_canonical_point_encoding(s: &[u8; 32]) -> bool {
    let top_is_max = s[31] & 0x7f == 0x7f && s[1..31].iter().all(|&b| b == 0xff);
    !(top_is_max && s[0] >= 0xed)
}

/// The encodings, sign bit cleared, of every point of order dividing 8, plus
/// the non-canonical encodings p and p+1 of y = 0 and y = 1: the same list as
/// libsodium's `ge25519_has_small_order`.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 7] = [
    // y = 0 (order 4)
    [0; 32],
    // y = 1, the identity (order 1)
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
    // y = p − 1 = −1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    // y = p, non-canonical 0 (order 4)
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    // y = p + 1, non-canonical 1 (order 1)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
];

/// libsodium's `ge25519_has_small_order`, on an encoding (sign bit ignored).
pub fn has_small_order(s: &[u8; 32]) -> bool {
    let mut masked = *s;
    masked[31] &= 0x7f;
    SMALL_ORDER_ENCODINGS.contains(&masked)
}
