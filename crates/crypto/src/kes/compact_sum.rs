//! `CompactSumKES H D`: the sum construction with the smaller signature
//! σ ‖ vk_other. The verifier recomputes the signing subtree's key from σ,
//! so the signature carries only the key of the other subtree.

use secmem::MLockedSeed;

use super::sum::Core;
use super::{CompactKes, KesAlgorithm, KesHash, KesSignature, KesVerificationKey, SEED_SIZE};
use crate::direct::{DirectDeserialise, DirectSerialise, Pull, Push};
use crate::{CryptoError, VerifyFailure};

/// `CompactSumKES H D`.
#[derive(Debug)]
pub struct CompactSumKes<D, H> {
    core: Core<D, H>,
}

/// σ ‖ vk_other, where vk_other is the key of the subtree that did not sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactSumSig<S> {
    pub sigma: S,
    pub vk_other: KesVerificationKey,
}

impl<S: KesSignature> KesSignature for CompactSumSig<S> {
    const SIZE: usize = S::SIZE + 32;

    fn write_raw(&self, out: &mut Vec<u8>) {
        self.sigma.write_raw(out);
        out.extend_from_slice(&self.vk_other.0);
    }

    fn read_raw(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != Self::SIZE {
            return Err(CryptoError::BadLength {
                what: "CompactSumKES signature",
                expected: Self::SIZE,
                actual: bytes.len(),
            });
        }
        let (sigma, vk) = bytes.split_at(S::SIZE);
        Ok(CompactSumSig { sigma: S::read_raw(sigma)?, vk_other: KesVerificationKey(vk.try_into().expect("32")) })
    }
}

impl<D: CompactKes, H: KesHash> KesAlgorithm for CompactSumKes<D, H> {
    type Signature = CompactSumSig<D::Signature>;
    const TOTAL_PERIODS: u32 = Core::<D, H>::TOTAL;
    const SIGN_KEY_SIZE: usize = Core::<D, H>::SIZE;

    fn gen_key_unscrubbed(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        Ok(CompactSumKes { core: Core::gen_key(seed)? })
    }

    fn verification_key(&self) -> KesVerificationKey {
        self.core.verification_key()
    }

    fn sign_unscrubbed(&self, period: u32, message: &[u8]) -> Result<Self::Signature, CryptoError> {
        let child = Core::<D, H>::child_period(period)?;
        let vk_other = if period < Core::<D, H>::HALF { self.core.vk1 } else { self.core.vk0 };
        Ok(CompactSumSig { sigma: self.core.sk.sign_unscrubbed(child, message)?, vk_other })
    }

    /// Recomputes the root key from the signature (one hash per level) and
    /// compares it with `vk`, then verifies the leaf Ed25519 signature under
    /// the leaf key the signature carries. Accepts exactly what cardano-base's
    /// level-by-level check accepts.
    fn verify(vk: &KesVerificationKey, period: u32, message: &[u8], sig: &Self::Signature) -> Result<(), CryptoError> {
        Core::<D, H>::child_period(period)?;
        if Self::verification_key_from_signature(sig, period) != *vk {
            return Err(CryptoError::Verify(VerifyFailure::KeyHashMismatch));
        }
        Self::verify_leaf(sig, period, message)
    }

    fn update_unscrubbed(self, period: u32) -> Result<Option<Self>, CryptoError> {
        Ok(self.core.update(period)?.map(|core| CompactSumKes { core }))
    }
}

impl<D: CompactKes, H: KesHash> CompactKes for CompactSumKes<D, H> {
    fn verification_key_from_signature(sig: &Self::Signature, period: u32) -> KesVerificationKey {
        let half = Core::<D, H>::HALF;
        if period < half {
            H::hash_pair(&D::verification_key_from_signature(&sig.sigma, period), &sig.vk_other)
        } else {
            H::hash_pair(&sig.vk_other, &D::verification_key_from_signature(&sig.sigma, period - half))
        }
    }

    fn verify_leaf(sig: &Self::Signature, period: u32, message: &[u8]) -> Result<(), CryptoError> {
        let child = Core::<D, H>::child_period(period)?;
        D::verify_leaf(&sig.sigma, child, message)
    }
}

impl<D: CompactKes, H: KesHash> DirectSerialise for CompactSumKes<D, H> {
    const DIRECT_SIZE: usize = Core::<D, H>::SIZE;

    fn direct_serialise(&self, push: &mut Push<'_>) -> Result<(), CryptoError> {
        self.core.direct_serialise(push)
    }
}

impl<D: CompactKes, H: KesHash> DirectDeserialise for CompactSumKes<D, H> {
    fn direct_deserialise(pull: &mut Pull<'_>) -> Result<Self, CryptoError> {
        Ok(CompactSumKes { core: Core::direct_deserialise(pull)? })
    }
}
