//! The signer's library half: everything `keywardd` does with the vault, so
//! that tests and the red-team runner drive the same code the binary runs.
//!
//! * [`legacy`]: recognising and reading pre-keyward secrets.
//! * [`migrate`]: moving them into the vault without loss (checkpoint journal).
//! * [`fallback`]: the only way to obtain a secret by name; never plaintext.
//! * [`operator`]: `keywardd vault …` and `keywardd migrate …`.
//! * [`daemon`]: `keywardd run`: the socket, peer identity, IPC sessions, sandbox.
#![forbid(unsafe_code)]

pub mod daemon;
pub mod fallback;
pub mod legacy;
pub mod migrate;
pub mod offline;
pub mod operator;
