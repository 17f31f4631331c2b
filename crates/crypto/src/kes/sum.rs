//! `SumKES H D`: two keys of depth d under one verification key
//! `H(vk0 ‖ vk1)`, doubling the periods.
//!
//! The key ([`SumCore`]) is shared with the compact variant: the current
//! subtree's key, the seed `r1` of the right subtree (zeros once used), and
//! both subtree verification keys, raw-serialised in that order
//! (`sk ‖ r1 ‖ vk0 ‖ vk1`), as cardano-base does.

use std::marker::PhantomData;

use secmem::{MLockedSeed, zero_mem};

use super::{KesAlgorithm, KesHash, KesSignature, KesVerificationKey, SEED_SIZE, check_period};
use crate::direct::{DirectDeserialise, DirectSerialise, Pull, Push};
use crate::{CryptoError, VerifyFailure};

/// The sign key of both sum constructions.
pub(crate) struct SumCore<D, H> {
    pub(crate) sk: D,
    r1: MLockedSeed<SEED_SIZE>,
    pub(crate) vk0: KesVerificationKey,
    pub(crate) vk1: KesVerificationKey,
    hash: PhantomData<fn() -> H>,
}

impl<D: std::fmt::Debug, H> std::fmt::Debug for SumCore<D, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SumCore").field("sk", &self.sk).field("vk0", &self.vk0).field("vk1", &self.vk1).finish()
    }
}

impl<D: KesAlgorithm, H: KesHash> SumCore<D, H> {
    /// Periods of one subtree.
    pub(crate) const HALF: u32 = D::TOTAL_PERIODS;
    pub(crate) const TOTAL: u32 = 2 * D::TOTAL_PERIODS;
    pub(crate) const SIZE: usize = D::SIGN_KEY_SIZE + SEED_SIZE + 2 * super::VERIFICATION_KEY_SIZE;

    pub(crate) fn gen_key(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        let (r0, r1) = H::expand_seed(seed)?;
        let sk0 = D::gen_key_unscrubbed(&r0)?;
        r0.finalize();
        let vk0 = sk0.verification_key();
        // The right subtree's key exists only long enough to learn its vk.
        let sk1 = D::gen_key_unscrubbed(&r1)?;
        let vk1 = sk1.verification_key();
        sk1.forget();
        Ok(SumCore { sk: sk0, r1, vk0, vk1, hash: PhantomData })
    }

    pub(crate) fn verification_key(&self) -> KesVerificationKey {
        H::hash_pair(&self.vk0, &self.vk1)
    }

    /// The subtree period for `period`, after a range check.
    pub(crate) fn child_period(period: u32) -> Result<u32, CryptoError> {
        check_period(period, Self::TOTAL)?;
        Ok(if period < Self::HALF { period } else { period - Self::HALF })
    }

    pub(crate) fn update(self, period: u32) -> Result<Option<Self>, CryptoError> {
        check_period(period, Self::TOTAL)?;
        let SumCore { sk, mut r1, vk0, vk1, hash } = self;
        let next = period + 1;
        let sk = if next < Self::HALF {
            sk.update_unscrubbed(period)?
        } else if next == Self::HALF {
            // Into the right subtree: the left key is destroyed, the right key
            // is generated from r1, and r1 is replaced by zeros.
            sk.forget();
            let sk1 = D::gen_key_unscrubbed(&r1)?;
            zero_mem(r1.as_mut_bytes());
            Some(sk1)
        } else {
            sk.update_unscrubbed(period - Self::HALF)?
        };
        Ok(sk.map(|sk| SumCore { sk, r1, vk0, vk1, hash }))
    }

    pub(crate) fn direct_serialise(&self, push: &mut Push<'_>) -> Result<(), CryptoError> {
        self.sk.direct_serialise(push)?;
        push(self.r1.as_bytes())?;
        push(&self.vk0.0)?;
        push(&self.vk1.0)
    }

    pub(crate) fn direct_deserialise(pull: &mut Pull<'_>) -> Result<Self, CryptoError> {
        let sk = D::direct_deserialise(pull)?;
        let mut r1 = MLockedSeed::new()?;
        pull(r1.as_mut_bytes())?;
        let mut vk0 = KesVerificationKey([0; 32]);
        pull(&mut vk0.0)?;
        let mut vk1 = KesVerificationKey([0; 32]);
        pull(&mut vk1.0)?;
        Ok(SumCore { sk, r1, vk0, vk1, hash: PhantomData })
    }
}

/// `SumKES H D`.
#[derive(Debug)]
pub struct SumKes<D, H> {
    core: SumCore<D, H>,
}

/// σ ‖ vk0 ‖ vk1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumSig<S> {
    pub sigma: S,
    pub vk0: KesVerificationKey,
    pub vk1: KesVerificationKey,
}

impl<S: KesSignature> KesSignature for SumSig<S> {
    const SIZE: usize = S::SIZE + 64;

    fn write_raw(&self, out: &mut Vec<u8>) {
        self.sigma.write_raw(out);
        out.extend_from_slice(&self.vk0.0);
        out.extend_from_slice(&self.vk1.0);
    }

    fn read_raw(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != Self::SIZE {
            return Err(CryptoError::BadLength { what: "SumKES signature", expected: Self::SIZE, actual: bytes.len() });
        }
        let (sigma, vks) = bytes.split_at(S::SIZE);
        Ok(SumSig {
            sigma: S::read_raw(sigma)?,
            vk0: KesVerificationKey(vks[..32].try_into().expect("32")),
            vk1: KesVerificationKey(vks[32..].try_into().expect("32")),
        })
    }
}

impl<D: KesAlgorithm, H: KesHash> KesAlgorithm for SumKes<D, H> {
    type Signature = SumSig<D::Signature>;
    const TOTAL_PERIODS: u32 = SumCore::<D, H>::TOTAL;
    const SIGN_KEY_SIZE: usize = SumCore::<D, H>::SIZE;

    fn gen_key_unscrubbed(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        Ok(SumKes { core: SumCore::gen_key(seed)? })
    }

    fn verification_key(&self) -> KesVerificationKey {
        self.core.verification_key()
    }

    fn sign_unscrubbed(&self, period: u32, message: &[u8]) -> Result<Self::Signature, CryptoError> {
        let child = SumCore::<D, H>::child_period(period)?;
        Ok(SumSig { sigma: self.core.sk.sign_unscrubbed(child, message)?, vk0: self.core.vk0, vk1: self.core.vk1 })
    }

    fn verify(vk: &KesVerificationKey, period: u32, message: &[u8], sig: &Self::Signature) -> Result<(), CryptoError> {
        let child = SumCore::<D, H>::child_period(period)?;
        if H::hash_pair(&sig.vk0, &sig.vk1) != *vk {
            return Err(CryptoError::Verify(VerifyFailure::KeyHashMismatch));
        }
        let child_vk = if period < SumCore::<D, H>::HALF { &sig.vk0 } else { &sig.vk1 };
        D::verify(child_vk, child, message, &sig.sigma)
    }

    fn update_unscrubbed(self, period: u32) -> Result<Option<Self>, CryptoError> {
        Ok(self.core.update(period)?.map(|core| SumKes { core }))
    }
}

impl<D: KesAlgorithm, H: KesHash> DirectSerialise for SumKes<D, H> {
    const DIRECT_SIZE: usize = SumCore::<D, H>::SIZE;

    fn direct_serialise(&self, push: &mut Push<'_>) -> Result<(), CryptoError> {
        self.core.direct_serialise(push)
    }
}

impl<D: KesAlgorithm, H: KesHash> DirectDeserialise for SumKes<D, H> {
    fn direct_deserialise(pull: &mut Pull<'_>) -> Result<Self, CryptoError> {
        Ok(SumKes { core: SumCore::direct_deserialise(pull)? })
    }
}

pub(crate) use SumCore as Core;
