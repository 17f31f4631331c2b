//! `SingleKES Ed25519DSIGN`: one period, the signing key is an Ed25519 key.

use secmem::MLockedSeed;

use super::{KesAlgorithm, KesSignature, KesVerificationKey, SEED_SIZE, check_period};
use crate::CryptoError;
use crate::direct::{DirectDeserialise, DirectSerialise, Pull, Push};
use crate::ed25519::{self, Ed25519Signature, Ed25519SigningKey, Ed25519VerificationKey};

/// The depth-0 KES: a plain Ed25519 key valid for period 0 only.
#[derive(Debug)]
pub struct SingleKes {
    key: Ed25519SigningKey,
}

/// A [`SingleKes`] signature: an Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleSig(pub Ed25519Signature);

impl KesSignature for SingleSig {
    const SIZE: usize = ed25519::SIGNATURE_SIZE;

    fn write_raw(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.0);
    }

    fn read_raw(bytes: &[u8]) -> Result<Self, CryptoError> {
        let b: [u8; 64] = bytes.try_into().map_err(|_| CryptoError::BadLength {
            what: "SingleKES signature",
            expected: Self::SIZE,
            actual: bytes.len(),
        })?;
        Ok(SingleSig(Ed25519Signature(b)))
    }
}

impl KesAlgorithm for SingleKes {
    type Signature = SingleSig;
    const TOTAL_PERIODS: u32 = 1;
    const SIGN_KEY_SIZE: usize = ed25519::SEED_SIZE;

    fn gen_key_unscrubbed(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        Ok(SingleKes { key: Ed25519SigningKey::gen_key_unscrubbed(seed)? })
    }

    fn verification_key(&self) -> KesVerificationKey {
        KesVerificationKey(self.key.derive_verification_key_m().0)
    }

    fn sign_unscrubbed(&self, period: u32, message: &[u8]) -> Result<SingleSig, CryptoError> {
        check_period(period, Self::TOTAL_PERIODS)?;
        Ok(SingleSig(self.key.sign_unscrubbed(message)))
    }

    fn verify(vk: &KesVerificationKey, period: u32, message: &[u8], sig: &SingleSig) -> Result<(), CryptoError> {
        check_period(period, Self::TOTAL_PERIODS)?;
        ed25519::verify(&Ed25519VerificationKey(vk.0), message, &sig.0)
    }

    fn update_unscrubbed(self, period: u32) -> Result<Option<Self>, CryptoError> {
        check_period(period, Self::TOTAL_PERIODS)?;
        Ok(None)
    }
}

impl DirectSerialise for SingleKes {
    const DIRECT_SIZE: usize = ed25519::SEED_SIZE;

    fn direct_serialise(&self, push: &mut Push<'_>) -> Result<(), CryptoError> {
        self.key.direct_serialise(push)
    }
}

impl DirectDeserialise for SingleKes {
    fn direct_deserialise(pull: &mut Pull<'_>) -> Result<Self, CryptoError> {
        Ok(SingleKes { key: Ed25519SigningKey::direct_deserialise(pull)? })
    }
}
