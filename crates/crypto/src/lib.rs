//! Signing primitives for keyward: Ed25519 with a signing key held only in
//! locked memory, and the Cardano KES family with DirectSerialise.
//!
//! Built on `secmem` containers; this crate itself contains no `unsafe`.
//! The algorithms arrive with the crypto issue; this crate exists now so that
//! the dependency graph (the trust boundary) is in place from the start.
#![forbid(unsafe_code)]
