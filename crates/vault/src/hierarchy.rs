//! The key hierarchy: TPM-sealed KEK → wrapped DEK → secrets.
//!
//! A DEK is 32 random bytes in locked memory. At rest it is an envelope of
//! kind [`SecretKind::WrappedDek`] sealed under the KEK, whose 16-byte id is
//! the blob's `kek_id` and `dek_id` both (the KEK is the data key of that
//! blob). Unwrapping needs the KEK, which only the TPM can unseal; the
//! plaintext DEK then lives in `secmem` for as long as the caller keeps it.

use crate::VaultError;
use crate::envelope::{self, Algorithm, CipherPolicy, DataKey, Header, SecretKind};
use crate::tpm::Kek;

/// The KEK's id: 16 random bytes chosen when the KEK is provisioned and stored
/// beside the sealed KEK. Public.
pub type KekId = [u8; 16];

/// Seals `dek` under `kek` as a wrapped-DEK blob named `name`.
pub fn wrap_dek(kek: &Kek, kek_id: KekId, dek: &DataKey, name: &str) -> Result<Vec<u8>, VaultError> {
    let kek_key = kek_as_data_key(kek, kek_id)?;
    let header = Header {
        algorithm: Algorithm::ChaCha20Poly1305,
        kind: SecretKind::WrappedDek,
        kek_id,
        dek_id: kek_id,
        epoch: 0,
        name: name.to_string(),
    };
    seal_dek(&kek_key, &header, dek)
}

/// Opens a wrapped-DEK blob with `kek`.
pub fn unwrap_dek(kek: &Kek, kek_id: KekId, blob: &[u8]) -> Result<DataKey, VaultError> {
    let kek_key = kek_as_data_key(kek, kek_id)?;
    let opened = envelope::open(&kek_key, blob, CipherPolicy::Strict)?;
    if opened.header.kind != SecretKind::WrappedDek || opened.header.kek_id != kek_id {
        return Err(VaultError::WrongDek);
    }
    dek_from_body(opened.plaintext.as_slice())
}

/// Seals `dek` (its id, then its key, in locked memory) under `wrapping`
/// as a kind-4 envelope with `header`. Shared by the KEK wrap and the
/// recovery-key wrap.
pub(crate) fn seal_dek(wrapping: &DataKey, header: &Header, dek: &DataKey) -> Result<Vec<u8>, VaultError> {
    let mut body = secmem::MLockedBytes::new(16 + 32)?;
    body.as_mut_slice()[..16].copy_from_slice(&dek.id());
    body.as_mut_slice()[16..].copy_from_slice(dek.key_bytes());
    envelope::seal(wrapping, header, body.as_slice())
}

/// The DEK in an opened kind-4 body (48 bytes: id, key).
pub(crate) fn dek_from_body(body: &[u8]) -> Result<DataKey, VaultError> {
    if body.len() != 48 {
        return Err(VaultError::Tampered);
    }
    let mut key = secmem::MLockedSizedBytes::<32>::new()?;
    key.as_mut_slice().copy_from_slice(&body[16..]);
    Ok(DataKey::from_locked(body[..16].try_into().expect("16"), key))
}

/// The KEK, used as the data key of wrapped-DEK blobs (a locked-to-locked copy).
fn kek_as_data_key(kek: &Kek, kek_id: KekId) -> Result<DataKey, VaultError> {
    Ok(DataKey::from_locked(kek_id, kek.as_locked().try_clone()?))
}
