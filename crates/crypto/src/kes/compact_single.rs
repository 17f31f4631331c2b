//! `CompactSingleKES Ed25519DSIGN`: like [`SingleKes`](super::SingleKes), but
//! the signature carries the verification key, so a compact sum above it can
//! recompute keys instead of storing both halves.

use secmem::MLockedSeed;

use super::{CompactKes, KesAlgorithm, KesSignature, KesVerificationKey, SEED_SIZE, check_period};
use crate::direct::{DirectDeserialise, DirectSerialise, Pull, Push};
use crate::ed25519::{self, Ed25519Signature, Ed25519SigningKey, Ed25519VerificationKey};
use crate::{CryptoError, VerifyFailure};

#[derive(Debug)]
pub struct CompactSingleKes {
    key: Ed25519SigningKey,
}

/// Signature ‖ verification key (96 bytes). Its CBOR form is one byte
/// string of these 96 bytes, as in cardano-base (not a two-element array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactSingleSig {
    pub signature: Ed25519Signature,
    pub vk: KesVerificationKey,
}

impl KesSignature for CompactSingleSig {
    const SIZE: usize = ed25519::SIGNATURE_SIZE + ed25519::VERIFICATION_KEY_SIZE;

    fn write_raw(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.signature.0);
        out.extend_from_slice(&self.vk.0);
    }

    fn read_raw(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != Self::SIZE {
            return Err(CryptoError::BadLength {
                what: "CompactSingleKES signature",
                expected: Self::SIZE,
                actual: bytes.len(),
            });
        }
        Ok(CompactSingleSig {
            signature: Ed25519Signature(bytes[..64].try_into().expect("64")),
            vk: KesVerificationKey(bytes[64..].try_into().expect("32")),
        })
    }
}

impl KesAlgorithm for CompactSingleKes {
    type Signature = CompactSingleSig;
    const TOTAL_PERIODS: u32 = 1;
    const SIGN_KEY_SIZE: usize = ed25519::SEED_SIZE;

    fn gen_key_unscrubbed(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        Ok(CompactSingleKes { key: Ed25519SigningKey::gen_key_unscrubbed(seed)? })
    }

    fn verification_key(&self) -> KesVerificationKey {
        KesVerificationKey(self.key.derive_verification_key_m().0)
    }

    fn sign_unscrubbed(&self, period: u32, message: &[u8]) -> Result<CompactSingleSig, CryptoError> {
        check_period(period, Self::TOTAL_PERIODS)?;
        Ok(CompactSingleSig { signature: self.key.sign_unscrubbed(message), vk: self.verification_key() })
    }

    fn verify(vk: &KesVerificationKey, period: u32, message: &[u8], sig: &CompactSingleSig) -> Result<(), CryptoError> {
        check_period(period, Self::TOTAL_PERIODS)?;
        if sig.vk != *vk {
            return Err(CryptoError::Verify(VerifyFailure::KeyMismatch));
        }
        ed25519::verify(&Ed25519VerificationKey(vk.0), message, &sig.signature)
    }

    fn update_unscrubbed(self, period: u32) -> Result<Option<Self>, CryptoError> {
        check_period(period, Self::TOTAL_PERIODS)?;
        Ok(None)
    }
}

impl CompactKes for CompactSingleKes {
    fn verification_key_from_signature(sig: &CompactSingleSig, _period: u32) -> KesVerificationKey {
        sig.vk
    }

    fn verify_leaf(sig: &CompactSingleSig, period: u32, message: &[u8]) -> Result<(), CryptoError> {
        check_period(period, Self::TOTAL_PERIODS)?;
        ed25519::verify(&Ed25519VerificationKey(sig.vk.0), message, &sig.signature)
    }
}

impl DirectSerialise for CompactSingleKes {
    const DIRECT_SIZE: usize = ed25519::SEED_SIZE;

    fn direct_serialise(&self, push: &mut Push<'_>) -> Result<(), CryptoError> {
        self.key.direct_serialise(push)
    }
}

impl DirectDeserialise for CompactSingleKes {
    fn direct_deserialise(pull: &mut Pull<'_>) -> Result<Self, CryptoError> {
        Ok(CompactSingleKes { key: Ed25519SigningKey::direct_deserialise(pull)? })
    }
}
