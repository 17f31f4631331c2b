//! Key-evolving signatures, byte-compatible with cardano-base
//! (`Cardano.Crypto.KES.*`, cardano-crypto-class 2.6).
//!
//! A KES key signs for period `t` of `TOTAL_PERIODS`, then `update` turns it
//! into the key for `t + 1` and destroys what it was: after an update nothing
//! of an earlier period's secret remains, in the new key or in freed memory
//! (every secret lives in `secmem` containers, which are wiped on drop, and
//! every operation ends with a stack scrub).
//!
//! | scheme | periods | vk | signature | sign key |
//! | --- | --- | --- | --- | --- |
//! | [`SingleKes`] (Ed25519) | 1 | 32 | 64 | 32 |
//! | [`CompactSingleKes`] | 1 | 32 | 96 (sig ‖ vk) | 32 |
//! | [`SumKes<D, H>`] | 2·D | 32 = H(vk0 ‖ vk1) | D + 64 (σ ‖ vk0 ‖ vk1) | D + 96 (sk ‖ r1 ‖ vk0 ‖ vk1) |
//! | [`CompactSumKes<D, H>`] | 2·D | 32 | D + 32 (σ ‖ vk_other) | D + 96 |
//!
//! `Sum6` (Cardano's block-producing KES): vk 32, signature 448, sign key 608;
//! `CompactSum6` signature 288. Key generation splits the seed as
//! `r0 = H(0x01 ‖ seed)`, `r1 = H(0x02 ‖ seed)`; the left subtree comes from
//! r0, the right from r1, which the key keeps until the right half is
//! generated and then replaces with zeros.
//!
//! The period is an argument, as in cardano-base: the raw key encodes no
//! period. A period outside `0..TOTAL_PERIODS` is an error, never a wrap.

mod compact_single;
mod compact_sum;
mod single;
mod sum;

use std::fmt::Debug;

use blake2::Blake2b;
use blake2::digest::{Digest, consts::U32};
use secmem::{MLockedSeed, scrubbed};

pub use compact_single::{CompactSingleKes, CompactSingleSig};
pub use compact_sum::{CompactSumKes, CompactSumSig};
pub use single::{SingleKes, SingleSig};
pub use sum::{SumKes, SumSig};

use crate::CryptoError;
use crate::direct::{DirectDeserialise, DirectSerialise};

pub const SEED_SIZE: usize = 32;
pub const VERIFICATION_KEY_SIZE: usize = 32;

/// A KES verification key (32 bytes at every depth).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KesVerificationKey(pub [u8; VERIFICATION_KEY_SIZE]);

impl Debug for KesVerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KesVerificationKey({})", crate::hex::encode(&self.0))
    }
}

/// A KES signature with a fixed-size raw encoding.
pub trait KesSignature: Sized + Clone + PartialEq + Debug {
    const SIZE: usize;
    /// Appends the raw encoding (cardano-base `rawSerialiseSigKES`).
    fn write_raw(&self, out: &mut Vec<u8>);
    /// Parses exactly [`SIZE`](Self::SIZE) bytes.
    fn read_raw(bytes: &[u8]) -> Result<Self, CryptoError>;

    fn to_raw(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::SIZE);
        self.write_raw(&mut v);
        v
    }

    /// CBOR: one byte string of the raw encoding (for every scheme, the
    /// compact single signature included).
    fn to_cbor(&self) -> Vec<u8> {
        crate::cbor::encode_bytes(&self.to_raw())
    }

    fn from_cbor(cbor: &[u8]) -> Result<Self, CryptoError> {
        Self::read_raw(crate::cbor::decode_bytes(cbor, Self::SIZE)?)
    }
}

impl KesVerificationKey {
    pub fn to_cbor(&self) -> Vec<u8> {
        crate::cbor::encode_bytes(&self.0)
    }

    pub fn from_cbor(cbor: &[u8]) -> Result<Self, CryptoError> {
        let raw = crate::cbor::decode_bytes(cbor, VERIFICATION_KEY_SIZE)?;
        Ok(KesVerificationKey(raw.try_into().expect("length checked")))
    }
}

/// A key-evolving signature scheme.
pub trait KesAlgorithm: Sized + DirectSerialise + DirectDeserialise {
    type Signature: KesSignature;
    const TOTAL_PERIODS: u32;
    const SIGN_KEY_SIZE: usize;
    const SIGNATURE_SIZE: usize = <Self::Signature as KesSignature>::SIZE;

    /// `genKeyKES`: the key for period 0. The seed stays the caller's to
    /// finalize. Ends with a stack scrub.
    fn gen_key(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError> {
        scrubbed(|| Self::gen_key_unscrubbed(seed))
    }

    /// `deriveVerKeyKES`.
    fn verification_key(&self) -> KesVerificationKey;

    /// `signKES` at period `period` (which must be the key's current period for
    /// the signature to verify). Ends with a stack scrub.
    fn sign(&self, period: u32, message: &[u8]) -> Result<Self::Signature, CryptoError> {
        scrubbed(|| self.sign_unscrubbed(period, message))
    }

    /// `verifyKES`.
    fn verify(
        vk: &KesVerificationKey,
        period: u32,
        message: &[u8],
        signature: &Self::Signature,
    ) -> Result<(), CryptoError>;

    /// `updateKES`: consumes the key for `period` and returns the key for
    /// `period + 1`, or `None` after the last period. The old key is wiped.
    /// Ends with a stack scrub.
    fn update(self, period: u32) -> Result<Option<Self>, CryptoError> {
        scrubbed(|| self.update_unscrubbed(period))
    }

    /// `forgetSignKeyKES`: wipes and frees now.
    fn forget(self) {
        drop(self);
    }

    // The recursion of a sum runs these; one scrub at the end of the public
    // call covers the frames of every level below it.
    #[doc(hidden)]
    fn gen_key_unscrubbed(seed: &MLockedSeed<SEED_SIZE>) -> Result<Self, CryptoError>;
    #[doc(hidden)]
    fn sign_unscrubbed(&self, period: u32, message: &[u8]) -> Result<Self::Signature, CryptoError>;
    #[doc(hidden)]
    fn update_unscrubbed(self, period: u32) -> Result<Option<Self>, CryptoError>;
}

/// Free-function spellings of the trait's public operations.
pub fn gen_key<K: KesAlgorithm>(seed: &MLockedSeed<SEED_SIZE>) -> Result<K, CryptoError> {
    K::gen_key(seed)
}

/// See [`KesAlgorithm::sign`].
pub fn sign<K: KesAlgorithm>(key: &K, period: u32, message: &[u8]) -> Result<K::Signature, CryptoError> {
    key.sign(period, message)
}

/// See [`KesAlgorithm::update`].
pub fn update<K: KesAlgorithm>(key: K, period: u32) -> Result<Option<K>, CryptoError> {
    key.update(period)
}

pub(crate) fn check_period(period: u32, total: u32) -> Result<(), CryptoError> {
    if period >= total { Err(CryptoError::PeriodOutOfRange { period, total }) } else { Ok(()) }
}

/// The hash of a sum construction: it combines two verification keys and
/// splits a seed in two.
pub trait KesHash {
    fn hash_pair(a: &KesVerificationKey, b: &KesVerificationKey) -> KesVerificationKey;
    /// `(H(0x01 ‖ seed), H(0x02 ‖ seed))`, written straight into locked seeds.
    fn expand_seed(
        seed: &MLockedSeed<SEED_SIZE>,
    ) -> Result<(MLockedSeed<SEED_SIZE>, MLockedSeed<SEED_SIZE>), CryptoError>;
}

/// BLAKE2b-256, the hash of every Cardano KES sum.
#[derive(Debug)]
pub enum Blake2b256 {}

type Blake2b256Hasher = Blake2b<U32>;

impl KesHash for Blake2b256 {
    fn hash_pair(a: &KesVerificationKey, b: &KesVerificationKey) -> KesVerificationKey {
        let digest = Blake2b256Hasher::new().chain_update(a.0).chain_update(b.0).finalize();
        KesVerificationKey(digest.into())
    }

    fn expand_seed(
        seed: &MLockedSeed<SEED_SIZE>,
    ) -> Result<(MLockedSeed<SEED_SIZE>, MLockedSeed<SEED_SIZE>), CryptoError> {
        let mut r0 = MLockedSeed::new()?;
        let mut r1 = MLockedSeed::new()?;
        for (prefix, out) in [(1u8, &mut r0), (2u8, &mut r1)] {
            let dst: &mut blake2::digest::Output<Blake2b256Hasher> =
                out.as_mut_bytes().as_mut_slice().try_into().expect("32-byte seed for a 32-byte digest");
            Blake2b256Hasher::new().chain_update([prefix]).chain_update(seed.as_bytes()).finalize_into(dst);
        }
        Ok((r0, r1))
    }
}

/// Cardano's KES schemes by depth: `SumN` has 2^N periods.
pub type Sum0 = SingleKes;
pub type Sum1 = SumKes<Sum0, Blake2b256>;
pub type Sum2 = SumKes<Sum1, Blake2b256>;
pub type Sum3 = SumKes<Sum2, Blake2b256>;
pub type Sum4 = SumKes<Sum3, Blake2b256>;
pub type Sum5 = SumKes<Sum4, Blake2b256>;
pub type Sum6 = SumKes<Sum5, Blake2b256>;
pub type Sum7 = SumKes<Sum6, Blake2b256>;

pub type CompactSum0 = CompactSingleKes;
pub type CompactSum1 = CompactSumKes<CompactSum0, Blake2b256>;
pub type CompactSum2 = CompactSumKes<CompactSum1, Blake2b256>;
pub type CompactSum3 = CompactSumKes<CompactSum2, Blake2b256>;
pub type CompactSum4 = CompactSumKes<CompactSum3, Blake2b256>;
pub type CompactSum5 = CompactSumKes<CompactSum4, Blake2b256>;
pub type CompactSum6 = CompactSumKes<CompactSum5, Blake2b256>;
pub type CompactSum7 = CompactSumKes<CompactSum6, Blake2b256>;

/// A KES scheme whose signatures carry enough to recompute the signer's
/// verification key (cardano-base `OptimizedKESAlgorithm`).
pub trait CompactKes: KesAlgorithm {
    /// `verKeyFromSigKES`.
    fn verification_key_from_signature(signature: &Self::Signature, period: u32) -> KesVerificationKey;
    /// Verifies the leaf signature under the leaf key the signature carries
    /// (the caller has already tied that key to the root).
    fn verify_leaf(signature: &Self::Signature, period: u32, message: &[u8]) -> Result<(), CryptoError>;
}
