//! The sealed vault: no plaintext secret at rest, and secrets recoverable only
//! through a TPM-governed path. Linked only by the signer (`keywardd`) and the
//! red-team runner, never by the client (`keyward`).
//!
//! * [`envelope`]: the versioned sealed-blob format (docs/envelope-format.md):
//!   AEAD-bound header, ChaCha20-Poly1305 by default, AES-256-GCM only under
//!   an explicit compatibility policy, plaintext only in `secmem`.
//!
//! * [`tpm`]: the TPM2 key-encryption key: generated and sealed by the TPM,
//!   unsealed through salted, encrypting sessions, PCR-bound in strict mode.
//!
//! * [`hierarchy`]: DEKs wrapped under the KEK, as envelopes of their own.
//! * [`store`]: atomic, owner- and mode-checked storage of blobs in one directory.
//!
//! DEK rotation, anti-rollback, the store and the migration engine arrive
//! next (issue 4).
#![forbid(unsafe_code)]

pub mod envelope;
mod error;
pub mod hierarchy;
pub mod store;
pub mod tpm;

pub use error::VaultError;
