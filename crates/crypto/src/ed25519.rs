//! Ed25519 (RFC 8032) as Cardano uses it: DSIGN and DSIGN-M.
//!
//! **Keys.** [`Ed25519SigningKey`] keeps its 32-byte seed *and* the expanded
//! secret `SHA-512(seed)` in one locked allocation, so signing neither
//! re-hashes the seed nor copies it out of locked memory. The expansion that
//! signing needs is rebuilt from locked bytes into dalek's
//! `ExpandedSecretKey`, which zeroizes on drop; every stack frame that held a
//! transient copy is then overwritten by [`secmem::scrub_stack`].
//!
//! **Verification follows libsodium**, which is what Cardano nodes run
//! (`crypto_sign_verify_detached`): besides the cofactorless equation with a
//! byte comparison of `R` (which ed25519-dalek's `verify` also does), it
//! rejects a non-canonical `S`, a small-order `R`, and a public key that is
//! non-canonical or of small order. ed25519-dalek alone accepts the last three;
//! accepting a signature a Cardano node rejects would be a consensus bug.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use secmem::{MLockedSeed, MLockedSizedBytes, scrubbed};
use sha2::{Digest, Sha512};

use crate::direct::{DirectDeserialise, DirectSerialise, Pull, Push};
use crate::{CryptoError, VerifyFailure};

pub const SEED_SIZE: usize = 32;
pub const VERIFICATION_KEY_SIZE: usize = 32;
pub const SIGNATURE_SIZE: usize = 64;

/// An Ed25519 verification key: 32 public bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ed25519VerificationKey(pub [u8; VERIFICATION_KEY_SIZE]);

impl std::fmt::Debug for Ed25519VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519VerificationKey({})", crate::hex::encode(&self.0))
    }
}

impl Ed25519VerificationKey {
    /// `rawDeserialiseVerKeyDSIGN`: exactly 32 bytes.
    pub fn from_raw(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Ed25519VerificationKey(bytes.try_into().map_err(|_| CryptoError::BadLength {
            what: "Ed25519 verification key",
            expected: VERIFICATION_KEY_SIZE,
            actual: bytes.len(),
        })?))
    }

    /// CBOR: one 32-byte byte string.
    pub fn to_cbor(&self) -> Vec<u8> {
        crate::cbor::encode_bytes(&self.0)
    }

    pub fn from_cbor(cbor: &[u8]) -> Result<Self, CryptoError> {
        Self::from_raw(crate::cbor::decode_bytes(cbor, VERIFICATION_KEY_SIZE)?)
    }
}

impl Ed25519Signature {
    /// `rawDeserialiseSigDSIGN`: exactly 64 bytes.
    pub fn from_raw(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Ed25519Signature(bytes.try_into().map_err(|_| CryptoError::BadLength {
            what: "Ed25519 signature",
            expected: SIGNATURE_SIZE,
            actual: bytes.len(),
        })?))
    }

    /// CBOR: one 64-byte byte string.
    pub fn to_cbor(&self) -> Vec<u8> {
        crate::cbor::encode_bytes(&self.0)
    }

    pub fn from_cbor(cbor: &[u8]) -> Result<Self, CryptoError> {
        Self::from_raw(crate::cbor::decode_bytes(cbor, SIGNATURE_SIZE)?)
    }
}

/// An Ed25519 signature: 64 public bytes, `R ‖ S`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519Signature(pub [u8; SIGNATURE_SIZE]);

impl std::fmt::Debug for Ed25519Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Signature({})", crate::hex::encode(&self.0))
    }
}

/// Locked layout: seed (32) ‖ SHA-512(seed) (64).
const SECRET_SIZE: usize = SEED_SIZE + 64;

/// An Ed25519 signing key whose secret lives only in locked memory.
pub struct Ed25519SigningKey {
    secret: MLockedSizedBytes<SECRET_SIZE>,
    /// Decompressed once at key generation (public).
    vk: VerifyingKey,
}

impl std::fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519SigningKey(<redacted>, vk={})", crate::hex::encode(self.vk.as_bytes()))
    }
}

impl Ed25519SigningKey {
    /// `genKeyDSIGNM`: derives the key from a locked seed. The seed is copied
    /// (locked to locked) and stays the caller's to finalize.
    pub fn gen_key_m(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        scrubbed(|| Self::gen_key_unscrubbed(seed))
    }

    /// Key derivation without the final stack scrub, for callers (KES) that
    /// scrub once after a whole tree of derivations.
    #[inline(never)]
    pub(crate) fn gen_key_unscrubbed(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        let seed = seed.as_bytes();
        let mut secret = MLockedSizedBytes::<SECRET_SIZE>::new()?;
        let (seed_part, expanded) = secret.as_mut_slice().split_at_mut(SEED_SIZE);
        seed_part.copy_from_slice(seed);
        let out: &mut sha2::digest::Output<Sha512> = expanded.try_into().expect("64-byte slice for a 64-byte digest");
        Sha512::new().chain_update(seed).finalize_into(out);
        let esk = ExpandedSecretKey::from_bytes(secret.as_array()[SEED_SIZE..].try_into().expect("64 bytes"));
        let vk = VerifyingKey::from(&esk);
        drop(esk);
        Ok(Ed25519SigningKey { secret, vk })
    }

    /// `deriveVerKeyDSIGNM`.
    pub fn derive_verification_key_m(&self) -> Ed25519VerificationKey {
        Ed25519VerificationKey(self.vk.to_bytes())
    }

    /// `signDSIGNM`: RFC 8032 signature, deterministic.
    pub fn sign_bytes_m(&self, message: &[u8]) -> Ed25519Signature {
        scrubbed(|| self.sign_unscrubbed(message))
    }

    /// Signing without the final stack scrub (see [`Self::gen_key_unscrubbed`]).
    #[inline(never)]
    pub(crate) fn sign_unscrubbed(&self, message: &[u8]) -> Ed25519Signature {
        let expanded: &[u8; 64] = self.secret.as_array()[SEED_SIZE..].try_into().expect("64 bytes");
        let esk = ExpandedSecretKey::from_bytes(expanded);
        let sig = raw_sign::<Sha512>(&esk, message, &self.vk);
        drop(esk);
        Ed25519Signature(sig.to_bytes())
    }

    /// `cloneKeyDSIGNM`: a deep copy in fresh locked memory.
    pub fn clone_key_m(&self) -> Result<Self, CryptoError> {
        Ok(Ed25519SigningKey { secret: self.secret.try_clone()?, vk: self.vk })
    }

    /// `getSeedDSIGNM`: the seed, copied into a fresh locked seed.
    pub fn get_seed_m(&self) -> Result<MLockedSeed<SEED_SIZE>, CryptoError> {
        let mut seed = MLockedSeed::new()?;
        seed.as_mut_bytes().copy_from_slice(&self.secret.as_slice()[..SEED_SIZE]);
        Ok(seed)
    }

    /// `forgetSignKeyDSIGNM`: wipes and frees now.
    pub fn forget_signing_key_m(self) {
        drop(self);
    }

    /// The seed as it lies in locked memory (for DirectSerialise).
    pub(crate) fn seed_bytes(&self) -> &[u8] {
        &self.secret.as_slice()[..SEED_SIZE]
    }
}

impl Ed25519SigningKey {
    /// The signing key's CBOR form (one byte string of the 32-byte seed, as
    /// cardano-base encodes `SignKeyDSIGN Ed25519DSIGN`), built in locked memory.
    pub fn to_cbor_locked(&self) -> Result<secmem::MLockedBytes, CryptoError> {
        crate::cbor::encode_bytes_locked(self.seed_bytes())
    }

    /// Reads the CBOR form (from locked memory) back into a key.
    pub fn from_cbor(cbor: &[u8]) -> Result<Self, CryptoError> {
        crate::direct::from_slice(crate::cbor::decode_bytes(cbor, SEED_SIZE)?)
    }
}

impl DirectSerialise for Ed25519SigningKey {
    /// Only the seed: the rest is derived from it.
    const DIRECT_SIZE: usize = SEED_SIZE;

    fn direct_serialise(&self, push: &mut Push<'_>) -> Result<(), CryptoError> {
        push(self.seed_bytes())
    }
}

impl DirectDeserialise for Ed25519SigningKey {
    fn direct_deserialise(pull: &mut Pull<'_>) -> Result<Self, CryptoError> {
        let mut seed = MLockedSeed::<SEED_SIZE>::new()?;
        pull(seed.as_mut_bytes())?;
        Self::gen_key_m(&seed)
    }
}

/// Verifies `signature` on `message` under `vk` with libsodium's rules.
pub fn verify(vk: &Ed25519VerificationKey, message: &[u8], signature: &Ed25519Signature) -> Result<(), CryptoError> {
    check_libsodium_rules(&vk.0, &signature.0).map_err(CryptoError::Verify)?;
    let key = VerifyingKey::from_bytes(&vk.0).map_err(|_| CryptoError::Verify(VerifyFailure::InvalidKey))?;
    // Cofactorless, comparing the encoding of the recomputed R with the
    // signature's R bytes: the same equation libsodium checks.
    key.verify(message, &Signature::from_bytes(&signature.0)).map_err(|_| CryptoError::Verify(VerifyFailure::Equation))
}

/// The checks libsodium makes before the equation (see the `sigverify`
/// crate, which holds them so that `keyward` can verify without linking this
/// crate).
pub fn check_libsodium_rules(vk: &[u8; 32], sig: &[u8; 64]) -> Result<(), VerifyFailure> {
    sigverify::check_rules(vk, sig).map_err(VerifyFailure::from)
}

pub use sigverify::{has_small_order, is_canonical_point_encoding};

/// Decompresses an encoding (used by tests to cross-check the list above).
pub fn decompress(s: &[u8; 32]) -> Option<curve25519_dalek::EdwardsPoint> {
    CompressedEdwardsY(*s).decompress()
}
