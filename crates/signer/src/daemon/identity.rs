//! The signer's static X25519 identity key: created once, sealed in the vault
//! (kind `signer-identity-x25519`), unsealed at start-up into locked memory,
//! and published as a pin file that clients copy, like `known_hosts`.
//!
//! The scalar lives in an `MLockedSizedBytes<32>` for the life of the daemon
//! and is wiped when the daemon drops it at shutdown. The handshake only
//! calls [`StaticKey::agree`]; the X25519 routine takes the scalar by value,
//! so one transient stack copy exists for the length of that call.

use std::path::Path;

use ipc::StaticKey;
use ipc::handshake::{pin_to_text, x25519, x25519_public};
use secmem::MLockedSizedBytes;
use vault::envelope::SecretKind;
use vault::{SecretProvider, Vault, VaultError};
use zeroize::Zeroizing;

/// The vault name of the identity key.
pub const IDENTITY_NAME: &str = "keywardd.identity";

pub struct LockedIdentity {
    secret: MLockedSizedBytes<32>,
    public: [u8; 32],
}

impl std::fmt::Debug for LockedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockedIdentity").field("public", &pin_to_text(&self.public).trim()).finish_non_exhaustive()
    }
}

impl StaticKey for LockedIdentity {
    fn public(&self) -> [u8; 32] {
        self.public
    }

    fn agree(&self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, ipc::IpcError> {
        x25519(self.secret.as_array(), peer)
    }
}

/// Why the identity could not be loaded.
#[derive(Debug)]
pub enum IdentityError {
    Vault(VaultError),
    /// The vault holds something else under [`IDENTITY_NAME`].
    WrongKind,
    Memory(secmem::SecMemError),
}

impl IdentityError {
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::Vault(e) => e.code(),
            IdentityError::WrongKind => "KW_IDENTITY_INVALID",
            IdentityError::Memory(_) => "KW_SECMEM_FAILED",
        }
    }
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityError::Vault(e) => write!(f, "{e}"),
            IdentityError::WrongKind => write!(f, "KW_IDENTITY_INVALID: {IDENTITY_NAME} is not a 32-byte identity key"),
            IdentityError::Memory(e) => write!(f, "KW_SECMEM_FAILED: {e}"),
        }
    }
}

impl LockedIdentity {
    /// Unseals the identity, creating and sealing a fresh one on first start.
    /// Returns the identity and whether it was created.
    pub fn load_or_create(vault: &mut Vault) -> Result<(LockedIdentity, bool), IdentityError> {
        let mut secret = MLockedSizedBytes::<32>::new_zeroed().map_err(IdentityError::Memory)?;
        let created = match vault.get(IDENTITY_NAME) {
            Ok(s) => {
                if s.kind != SecretKind::SignerIdentity || s.bytes.as_slice().len() != 32 {
                    return Err(IdentityError::WrongKind);
                }
                secret.as_mut_slice().copy_from_slice(s.bytes.as_slice());
                false
            }
            Err(VaultError::NotFound) => {
                secret.fill_random().map_err(IdentityError::Memory)?;
                vault
                    .put(IDENTITY_NAME, SecretKind::SignerIdentity, secret.as_slice())
                    .map_err(IdentityError::Vault)?;
                true
            }
            Err(e) => return Err(IdentityError::Vault(e)),
        };
        let public = x25519_public(secret.as_array());
        Ok((LockedIdentity { secret, public }, created))
    }

    /// Writes the pin file (public key only; mode 0644) atomically.
    pub fn write_pin(&self, path: &Path) -> std::io::Result<()> {
        super::fsutil::write_atomic(path, pin_to_text(&self.public).as_bytes(), 0o644)
    }
}
