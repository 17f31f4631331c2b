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
//! * [`manifest`]: the MACed list of secrets and epochs, tied to the TPM's
//!   monotonic counter (anti-rollback, crash-consistent transactions).
//! * [`recovery`]: DEKs also wrapped to an offline X25519 recovery key.
//! * [`sealed_vault`]: all of it together behind [`SecretProvider`]:
//!   put/get/delete/list, DEK and KEK rotation, recovery, backup.
#![forbid(unsafe_code)]

pub mod envelope;
mod error;
pub mod hierarchy;
pub mod manifest;
pub mod recovery;
pub mod sealed_vault;
pub mod store;
pub mod tpm;

pub use error::VaultError;
pub use sealed_vault::{Checkpoint, RecoveryReport, Secret, SecretProvider, Vault, VaultConfig, VaultStatus};
