//! Signed proof bundles: canonical-JSON proof signing, strict bundle and chain
//! verification, and restore that cannot be raced outside its root.
//!
//! The formats arrive with the bundle issue.
#![forbid(unsafe_code)]
