//! Constant-time comparison of digests, signatures and MACs, typed by kind.
//!
//! `==` on a [`CtBytes`] runs in time independent of where the operands differ
//! (through `subtle`), so an attacker who can time a verifier learns nothing
//! about how much of a forged tag was right. Each kind of value is its own
//! type: a SHA-256 digest cannot be compared with a BLAKE2b-256 digest or with
//! a MAC, even though all are 32 bytes. Such a mix-up does not compile:
//!
//! ```compile_fail,E0308
//! use secmem::ct::{Blake2b256Digest, Sha256Digest};
//! let a = Sha256Digest::from_bytes([0; 32]);
//! let b = Blake2b256Digest::from_bytes([0; 32]);
//! let _ = a == b; // error: mismatched types
//! ```
//!
//! ```compile_fail,E0308
//! use secmem::ct::{HmacSha256Tag, Sha256Digest};
//! let a = Sha256Digest::from_bytes([0; 32]);
//! let b = HmacSha256Tag::from_bytes([0; 32]);
//! let _ = a.ct_eq(&b); // error: mismatched types
//! ```

use std::fmt;
use std::marker::PhantomData;

use subtle::ConstantTimeEq;

/// What a [`CtBytes`] value is. Implemented by uninhabited marker types.
pub trait Kind {
    const NAME: &'static str;
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $marker:ident = $name:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $marker {}
        impl Kind for $marker {
            const NAME: &'static str = $name;
        }
    )*};
}

kinds! {
    /// A SHA-256 digest.
    Sha256 = "sha256";
    /// A BLAKE2b-256 digest (Cardano's hash of verification keys).
    Blake2b256 = "blake2b-256";
    /// An Ed25519 signature.
    Ed25519Sig = "ed25519-signature";
    /// An HMAC-SHA256 tag.
    HmacSha256 = "hmac-sha256";
    /// A Poly1305 tag.
    Poly1305 = "poly1305";
}

pub type Sha256Digest = CtBytes<Sha256, 32>;
pub type Blake2b256Digest = CtBytes<Blake2b256, 32>;
pub type Ed25519Signature = CtBytes<Ed25519Sig, 64>;
pub type HmacSha256Tag = CtBytes<HmacSha256, 32>;
pub type Poly1305Tag = CtBytes<Poly1305, 16>;

/// `N` public bytes of kind `K`, compared in constant time.
pub struct CtBytes<K: Kind, const N: usize> {
    bytes: [u8; N],
    kind: PhantomData<fn() -> K>,
}

impl<K: Kind, const N: usize> CtBytes<K, N> {
    pub const fn from_bytes(bytes: [u8; N]) -> Self {
        CtBytes { bytes, kind: PhantomData }
    }

    /// `None` unless `slice` has exactly `N` bytes.
    pub fn from_slice(slice: &[u8]) -> Option<Self> {
        Some(Self::from_bytes(slice.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; N] {
        &self.bytes
    }

    /// Constant-time equality (the same as `==`).
    pub fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.bytes.ct_eq(&other.bytes))
    }

    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.bytes)
    }
}

impl<K: Kind, const N: usize> Clone for CtBytes<K, N> {
    fn clone(&self) -> Self {
        Self::from_bytes(self.bytes)
    }
}

impl<K: Kind, const N: usize> PartialEq for CtBytes<K, N> {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl<K: Kind, const N: usize> Eq for CtBytes<K, N> {}

impl<K: Kind, const N: usize> fmt::Debug for CtBytes<K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", K::NAME, self.to_hex())
    }
}

/// Constant-time equality of two byte strings of public length (for example
/// hex digests read from a file). Only the lengths influence the timing.
pub fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
