//! The sealed vault: no plaintext secret at rest, and secrets recoverable only
//! through a TPM-governed path. Linked only by the signer (`keywardd`) and the
//! red-team runner, never by the client (`keyward`).
//!
//! The envelope, key hierarchy and TPM provider arrive with the vault issue.
#![forbid(unsafe_code)]
