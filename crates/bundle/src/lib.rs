//! Signed proofs, SPECTRUM bundle and chain verification, and restore.
//!
//! keyward reads and writes the artifacts of the Python proof/bundle
//! toolkit unchanged (normative: docs/bundle-format.md): the same canonical
//! JSON ([`json`]), roots and signed message ([`verify`]), the same proof
//! signature bundle ([`proof`]) and the same error codes. What the toolkit
//! does on a best-effort basis is a guarantee here: comparisons are
//! constant-time, errors carry no parser text or file content, and the
//! restore runner ([`restore`]) cannot be raced into writing outside its
//! root or over a file it did not create.
//!
//! This crate is linked by `keyward`, the client, so it holds no signing
//! key and cannot: signatures are made by `keywardd` and checked here with
//! `sigverify` (public keys only). [`make`] assembles a bundle around a
//! signature obtained from the signer.
#![forbid(unsafe_code)]

mod fsx;
pub mod hex;
pub mod json;
pub mod make;
pub mod proof;
pub mod restore;
pub mod verify;
