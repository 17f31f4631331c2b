//! The sealed blob envelope, version 1 (normative spec: docs/envelope-format.md).
//!
//! A public header (bound as AEAD associated data) and the ciphertext of one
//! secret under a data-encryption key. Plaintext exists only in `secmem`:
//! sealing encrypts a locked copy in place and lets only ciphertext out;
//! opening decrypts a locked copy in place.

use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use secmem::{MLockedBytes, MLockedSizedBytes, scrubbed};

use crate::VaultError;

pub const MAGIC: [u8; 4] = *b"KWSB";
pub const FORMAT_VERSION: u16 = 1;
pub const NONCE_SIZE: usize = 12;
pub const TAG_SIZE: usize = 16;
pub const MAX_NAME: usize = 128;
pub const MAX_SECRET: usize = 4 * 1024 * 1024;
/// Header bytes before the name.
const FIXED_HEAD: usize = 49;

/// The AEAD of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    ChaCha20Poly1305 = 1,
    /// Only under [`CipherPolicy::Compatibility`].
    Aes256Gcm = 2,
}

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Ed25519Seed = 1,
    KesSum6SigningKey = 2,
    Opaque = 3,
    /// A data-encryption key, sealed under the KEK (see [`crate::hierarchy`]).
    WrappedDek = 4,
    /// The signer's static X25519 IPC identity key (docs/ipc-protocol.md).
    SignerIdentity = 5,
}

impl SecretKind {
    /// The kind with wire id `id`.
    pub fn from_id(id: u8) -> Result<Self, VaultError> {
        Ok(match id {
            1 => SecretKind::Ed25519Seed,
            2 => SecretKind::KesSum6SigningKey,
            3 => SecretKind::Opaque,
            4 => SecretKind::WrappedDek,
            5 => SecretKind::SignerIdentity,
            other => return Err(VaultError::UnknownKind { id: other }),
        })
    }

    /// The name used by the operator tools and in reports.
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::Ed25519Seed => "ed25519-seed",
            SecretKind::KesSum6SigningKey => "kes-sum6-signing-key",
            SecretKind::Opaque => "opaque",
            SecretKind::WrappedDek => "wrapped-dek",
            SecretKind::SignerIdentity => "signer-identity-x25519",
        }
    }
}

/// Which algorithms a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherPolicy {
    /// ChaCha20-Poly1305 only (the strict profile).
    Strict,
    /// Also AES-256-GCM, reported through [`Opened::compliance_warning`].
    Compatibility,
}

pub const COMPLIANCE_WARNING_AES_GCM: &str =
    "VAULT_COMPLIANCE_AES_GCM: blob sealed with AES-256-GCM under the compatibility policy";

/// A data-encryption key: 32 bytes in locked memory, and its public id.
pub struct DataKey {
    id: [u8; 16],
    key: MLockedSizedBytes<32>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(id={}, <redacted>)", hex(&self.id))
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl DataKey {
    /// A fresh random DEK with a random id.
    pub fn generate() -> Result<Self, VaultError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|_| VaultError::Random)?;
        Ok(DataKey { id, key: MLockedSizedBytes::new_random()? })
    }

    /// A DEK from key bytes already in locked memory (after unwrapping).
    pub fn from_locked(id: [u8; 16], key: MLockedSizedBytes<32>) -> Self {
        DataKey { id, key }
    }

    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// The key bytes, for wrapping under the KEK (they stay in locked memory).
    pub(crate) fn key_bytes(&self) -> &[u8] {
        self.key.as_slice()
    }
}

/// The public header of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub algorithm: Algorithm,
    pub kind: SecretKind,
    pub kek_id: [u8; 16],
    pub dek_id: [u8; 16],
    pub epoch: u64,
    pub name: String,
}

/// An opened blob: its header and the plaintext, in locked memory.
#[derive(Debug)]
pub struct Opened {
    pub header: Header,
    pub plaintext: MLockedBytes,
    /// Set when the blob used an algorithm only the compatibility policy
    /// allows; the caller must log it and record an audit event.
    pub compliance_warning: Option<&'static str>,
}

/// Checks a blob name: 1..=128 bytes of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(VaultError::BadName) }
}

/// Seals `plaintext` under `dek`. `header.dek_id` is taken from the key.
pub fn seal(dek: &DataKey, header: &Header, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    validate_name(&header.name)?;
    if plaintext.len() > MAX_SECRET {
        return Err(VaultError::TooLarge { max: MAX_SECRET });
    }
    let mut nonce = [0u8; NONCE_SIZE];
    getrandom::fill(&mut nonce).map_err(|_| VaultError::Random)?;
    let mut blob = Vec::with_capacity(FIXED_HEAD + header.name.len() + NONCE_SIZE + 4 + plaintext.len() + TAG_SIZE);
    blob.extend_from_slice(&MAGIC);
    blob.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    blob.push(header.algorithm as u8);
    blob.push(header.kind as u8);
    blob.extend_from_slice(&header.kek_id);
    blob.extend_from_slice(&dek.id);
    blob.extend_from_slice(&header.epoch.to_be_bytes());
    blob.push(header.name.len() as u8);
    blob.extend_from_slice(header.name.as_bytes());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&(plaintext.len() as u32).to_be_bytes());
    let aad_len = blob.len();

    // Encrypt a locked copy in place; only ciphertext leaves locked memory.
    let mut work = MLockedBytes::new(plaintext.len())?;
    work.as_mut_slice().copy_from_slice(plaintext);
    let tag = encrypt(header.algorithm, dek, &nonce, &blob[..aad_len], work.as_mut_slice())?;
    blob.extend_from_slice(work.as_slice());
    blob.extend_from_slice(&tag);
    Ok(blob)
}

/// Parses and checks the public header; returns it with the byte offset of
/// the ciphertext. Needs no key (for listing and integrity triage).
pub fn parse_header(blob: &[u8]) -> Result<(Header, usize), VaultError> {
    let need = |n: usize| if blob.len() < n { Err(VaultError::Truncated) } else { Ok(()) };
    // Identify the file first, so a foreign file is "not a blob", not "truncated".
    need(MAGIC.len())?;
    if blob[..4] != MAGIC {
        return Err(VaultError::BadMagic);
    }
    need(6)?;
    let version = u16::from_be_bytes([blob[4], blob[5]]);
    if version != FORMAT_VERSION {
        return Err(VaultError::UnknownVersion { version });
    }
    need(FIXED_HEAD)?;
    let algorithm = match blob[6] {
        1 => Algorithm::ChaCha20Poly1305,
        2 => Algorithm::Aes256Gcm,
        other => return Err(VaultError::UnknownAlgorithm { id: other }),
    };
    let kind = SecretKind::from_id(blob[7])?;
    let kek_id: [u8; 16] = blob[8..24].try_into().expect("16");
    let dek_id: [u8; 16] = blob[24..40].try_into().expect("16");
    let epoch = u64::from_be_bytes(blob[40..48].try_into().expect("8"));
    let name_len = usize::from(blob[48]);
    need(FIXED_HEAD + name_len + NONCE_SIZE + 4)?;
    let name = std::str::from_utf8(&blob[FIXED_HEAD..FIXED_HEAD + name_len]).map_err(|_| VaultError::BadName)?;
    validate_name(name)?;
    let len_at = FIXED_HEAD + name_len + NONCE_SIZE;
    let ct_len = u32::from_be_bytes(blob[len_at..len_at + 4].try_into().expect("4")) as usize;
    if ct_len > MAX_SECRET {
        return Err(VaultError::TooLarge { max: MAX_SECRET });
    }
    let ct_at = len_at + 4;
    let total = ct_at + ct_len + TAG_SIZE;
    need(total)?;
    if blob.len() != total {
        return Err(VaultError::LengthMismatch);
    }
    Ok((Header { algorithm, kind, kek_id, dek_id, epoch, name: name.to_string() }, ct_at))
}

/// Opens a blob: header checks, cipher policy, key id, then the tag.
pub fn open(dek: &DataKey, blob: &[u8], policy: CipherPolicy) -> Result<Opened, VaultError> {
    let (header, ct_at) = parse_header(blob)?;
    let compliance_warning = match (header.algorithm, policy) {
        (Algorithm::ChaCha20Poly1305, _) => None,
        (Algorithm::Aes256Gcm, CipherPolicy::Compatibility) => Some(COMPLIANCE_WARNING_AES_GCM),
        (Algorithm::Aes256Gcm, CipherPolicy::Strict) => return Err(VaultError::CompatDisabled),
    };
    if header.dek_id != dek.id {
        return Err(VaultError::WrongDek);
    }
    let nonce_at = ct_at - 4 - NONCE_SIZE;
    let nonce: [u8; NONCE_SIZE] = blob[nonce_at..nonce_at + NONCE_SIZE].try_into().expect("12");
    let ct_len = blob.len() - ct_at - TAG_SIZE;
    let tag: [u8; TAG_SIZE] = blob[ct_at + ct_len..].try_into().expect("16");
    let mut plaintext = MLockedBytes::new(ct_len)?;
    plaintext.as_mut_slice().copy_from_slice(&blob[ct_at..ct_at + ct_len]);
    // On a tag failure `plaintext` (still ciphertext) is wiped on drop.
    decrypt(header.algorithm, dek, &nonce, &blob[..ct_at], plaintext.as_mut_slice(), &tag)?;
    Ok(Opened { header, plaintext, compliance_warning })
}

/// Encrypts `buf` in place under `dek`; returns the tag.
fn encrypt(
    algorithm: Algorithm,
    dek: &DataKey,
    nonce: &[u8; NONCE_SIZE],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_SIZE], VaultError> {
    // The cipher's key schedule lives in callee frames; scrub them after.
    scrubbed(|| match algorithm {
        Algorithm::ChaCha20Poly1305 => encrypt_with::<ChaCha20Poly1305>(dek, nonce, aad, buf),
        Algorithm::Aes256Gcm => encrypt_with::<Aes256Gcm>(dek, nonce, aad, buf),
    })
}

/// Decrypts `buf` in place under `dek` and checks the tag.
fn decrypt(
    algorithm: Algorithm,
    dek: &DataKey,
    nonce: &[u8; NONCE_SIZE],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_SIZE],
) -> Result<(), VaultError> {
    scrubbed(|| match algorithm {
        Algorithm::ChaCha20Poly1305 => decrypt_with::<ChaCha20Poly1305>(dek, nonce, aad, buf, tag),
        Algorithm::Aes256Gcm => decrypt_with::<Aes256Gcm>(dek, nonce, aad, buf, tag),
    })
}

#[inline(never)]
fn encrypt_with<C: KeyInit + AeadInOut>(
    dek: &DataKey,
    nonce: &[u8; NONCE_SIZE],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_SIZE], VaultError> {
    let cipher = C::new_from_slice(dek.key.as_slice()).expect("32-byte key for a 256-bit AEAD");
    let nonce = nonce.as_slice().try_into().expect("96-bit nonce");
    let tag =
        cipher.encrypt_inout_detached(nonce, aad, buf.into()).map_err(|_| VaultError::TooLarge { max: MAX_SECRET })?;
    Ok(tag.as_slice().try_into().expect("16-byte tag"))
}

#[inline(never)]
fn decrypt_with<C: KeyInit + AeadInOut>(
    dek: &DataKey,
    nonce: &[u8; NONCE_SIZE],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_SIZE],
) -> Result<(), VaultError> {
    let cipher = C::new_from_slice(dek.key.as_slice()).expect("32-byte key for a 256-bit AEAD");
    let nonce = nonce.as_slice().try_into().expect("96-bit nonce");
    let tag = tag.as_slice().try_into().expect("16-byte tag");
    cipher.decrypt_inout_detached(nonce, aad, buf.into(), tag).map_err(|_| VaultError::Tampered)
}
