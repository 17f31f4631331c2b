//! Signing primitives for keyward, byte-compatible with Cardano's
//! `cardano-crypto-class` (cardano-base 2.6):
//!
//! * [`ed25519`]: Ed25519 DSIGN and DSIGN-M. The signing key (seed and its
//!   SHA-512 expansion) lives only in `secmem` locked memory; verification
//!   follows libsodium's rules, as Cardano nodes do.
//! * [`kes`]: the KES family (`SingleKes`, `CompactSingleKes`, `SumKes`,
//!   `CompactSumKes`, `Sum0..Sum7`, `CompactSum0..CompactSum7`), forward
//!   secure: an update leaves nothing of the previous period's secret.
//! * [`direct`]: DirectSerialise / DirectDeserialise, which move secret keys
//!   in chunks straight from and into locked memory.
//! * [`cbor`] and [`envelope`]: the CBOR byte-string codecs and cardano-cli
//!   text envelopes.
//!
//! Built on `secmem`; this crate contains no `unsafe`.
#![forbid(unsafe_code)]

pub mod cbor;
pub mod direct;
pub mod ed25519;
pub mod envelope;
mod error;
pub mod hex;
pub mod kes;

pub use error::{CryptoError, VerifyFailure};
