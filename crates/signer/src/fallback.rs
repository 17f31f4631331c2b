//! No plaintext fallback, ever (RT-017).
//!
//! Before keyward, keys lived in files and environment variables. Code that
//! loads a key must not quietly go back there when the vault says "not
//! found" or cannot be opened: that would turn every vault failure into a
//! plaintext read. [`resolve`] is the one way the signer obtains a secret by
//! name: the vault, or a refusal. When a legacy copy of the requested secret
//! is still lying around, the refusal says so (`DENY_STRICT_MODE_FALLBACK`)
//! and names the migration command, instead of reading it.

use std::path::PathBuf;

use vault::{Secret, SecretProvider, VaultError};

use crate::legacy::{self, CapturedEnv};

/// Where legacy copies might still be (to name them in the refusal).
#[derive(Debug, Default)]
pub struct LegacyLocations {
    pub paths: Vec<PathBuf>,
    pub env: CapturedEnv,
}

/// The secret `name` from the vault. Never from a legacy location: if the
/// vault does not have it and a legacy copy exists, the answer is
/// `DENY_STRICT_MODE_FALLBACK`; if the vault is unavailable, its own error
/// (e.g. `DENY_TPM_UNAVAILABLE`) stands, whatever legacy copies exist.
pub fn resolve(vault: &mut dyn SecretProvider, name: &str, legacy: &LegacyLocations) -> Result<Secret, VaultError> {
    match vault.get(name) {
        Err(VaultError::NotFound) => {
            let (found, _) = legacy::discover(&legacy.paths, &legacy.env);
            if found.iter().any(|c| c.name == name) {
                Err(VaultError::StrictModeFallback)
            } else {
                Err(VaultError::NotFound)
            }
        }
        other => other,
    }
}
