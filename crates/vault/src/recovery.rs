//! Offline recovery: DEKs also wrapped to an X25519 recovery public key.
//!
//! A TPM-sealed KEK dies with its TPM (cleared, replaced, or a new machine).
//! So that the secrets do not die with it, an operator may enrol a recovery
//! key: its private half is handed out once, to be kept offline; the vault
//! keeps only the public half and wraps every DEK to it as well (a fresh
//! ephemeral X25519 key per wrap, like an age recipient). Recovery needs the
//! offline key *and* the vault files, and re-seals everything under a fresh
//! DEK and a KEK sealed by the new TPM.
//!
//! File layout of a recovery-wrapped DEK: the 32-byte ephemeral public key,
//! then a kind-4 envelope sealed under
//! `HMAC-SHA256(shared, "keyward/v1/recovery-wrap" ‖ ephemeral ‖ recipient)`.

use curve25519_dalek::montgomery::MontgomeryPoint;
use hmac::{KeyInit, Mac};
use secmem::MLockedSizedBytes;
use sha2::{Digest, Sha256};

use crate::VaultError;
use crate::envelope::{self, Algorithm, CipherPolicy, DataKey, Header, SecretKind};

const LABEL: &[u8] = b"keyward/v1/recovery-wrap";
/// Text form of the private recovery key: this prefix, then 64 hex digits.
pub const RECOVERY_KEY_PREFIX: &str = "keyward-recovery-key-v1:";

/// The private recovery key, in locked memory.
pub struct RecoveryKey(MLockedSizedBytes<32>);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

impl RecoveryKey {
    pub fn generate() -> Result<Self, VaultError> {
        Ok(RecoveryKey(MLockedSizedBytes::new_random()?))
    }

    pub fn public(&self) -> [u8; 32] {
        secmem::scrubbed(|| MontgomeryPoint::mul_base_clamped(self.scalar()).to_bytes())
    }

    fn scalar(&self) -> [u8; 32] {
        self.0.as_slice().try_into().expect("32")
    }

    /// The text form (`keyward-recovery-key-v1:<hex>` and a newline), in
    /// locked memory, for the operator to store offline.
    pub fn to_text(&self) -> Result<secmem::MLockedBytes, VaultError> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = secmem::MLockedBytes::new(RECOVERY_KEY_PREFIX.len() + 65)?;
        let s = out.as_mut_slice();
        s[..RECOVERY_KEY_PREFIX.len()].copy_from_slice(RECOVERY_KEY_PREFIX.as_bytes());
        for (i, b) in self.0.as_slice().iter().enumerate() {
            s[RECOVERY_KEY_PREFIX.len() + 2 * i] = DIGITS[usize::from(b >> 4)];
            s[RECOVERY_KEY_PREFIX.len() + 2 * i + 1] = DIGITS[usize::from(b & 15)];
        }
        s[RECOVERY_KEY_PREFIX.len() + 64] = b'\n';
        Ok(out)
    }

    /// Parses the text form (surrounding whitespace allowed).
    pub fn from_text(text: &[u8]) -> Result<Self, VaultError> {
        let bad = VaultError::PolicyDenied { why: "not a keyward recovery key (keyward-recovery-key-v1:<64 hex>)" };
        let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
        let end = text.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
        let t = &text[start..end];
        let Some(hex) = t.strip_prefix(RECOVERY_KEY_PREFIX.as_bytes()) else { return Err(bad) };
        if hex.len() != 64 {
            return Err(bad);
        }
        let mut key = MLockedSizedBytes::<32>::new()?;
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        for (i, pair) in hex.chunks(2).enumerate() {
            let (Some(h), Some(l)) = (nibble(pair[0]), nibble(pair[1])) else { return Err(bad) };
            key.as_mut_slice()[i] = (h << 4) | l;
        }
        Ok(RecoveryKey(key))
    }
}

/// The 16-byte id of a recipient public key (first half of its SHA-256).
pub fn recipient_id(public: &[u8; 32]) -> [u8; 16] {
    Sha256::digest(public)[..16].try_into().expect("16")
}

fn wrap_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> Result<DataKey, VaultError> {
    // An all-zero shared secret means a small-order point: refuse it.
    if shared.iter().all(|b| *b == 0) {
        return Err(VaultError::RecoveryKeyMismatch);
    }
    let mut key = MLockedSizedBytes::<32>::new()?;
    secmem::scrubbed(|| {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(shared).expect("any key length");
        mac.update(LABEL);
        mac.update(ephemeral);
        mac.update(recipient);
        key.as_mut_slice().copy_from_slice(&mac.finalize().into_bytes());
    });
    Ok(DataKey::from_locked(recipient_id(recipient), key))
}

/// Wraps `dek` to the recovery public key `recipient`.
pub fn wrap_to_recipient(recipient: &[u8; 32], dek: &DataKey) -> Result<Vec<u8>, VaultError> {
    let ephemeral_secret = MLockedSizedBytes::<32>::new_random()?;
    // The shared secret exists only in this (scrubbed) frame and the
    // locked wrap key.
    let (ephemeral, key) = secmem::scrubbed(|| {
        let e: [u8; 32] = ephemeral_secret.as_slice().try_into().expect("32");
        let ephemeral = MontgomeryPoint::mul_base_clamped(e).to_bytes();
        let mut shared = MontgomeryPoint(*recipient).mul_clamped(e).to_bytes();
        let key = wrap_key(&shared, &ephemeral, recipient);
        secmem::zero_mem(&mut shared);
        (ephemeral, key)
    });
    let key = key?;
    let id = recipient_id(recipient);
    let header = Header {
        algorithm: Algorithm::ChaCha20Poly1305,
        kind: SecretKind::WrappedDek,
        kek_id: id,
        dek_id: id,
        epoch: 0,
        name: "recovery".into(),
    };
    let mut out = ephemeral.to_vec();
    out.extend_from_slice(&crate::hierarchy::seal_dek(&key, &header, dek)?);
    Ok(out)
}

/// Unwraps a recovery-wrapped DEK with the private recovery key.
pub fn unwrap_with_recovery(key: &RecoveryKey, file: &[u8]) -> Result<DataKey, VaultError> {
    if file.len() < 32 {
        return Err(VaultError::Truncated);
    }
    let ephemeral: [u8; 32] = file[..32].try_into().expect("32");
    let recipient = key.public();
    let (header, _) = envelope::parse_header(&file[32..])?;
    if header.kek_id != recipient_id(&recipient) {
        return Err(VaultError::RecoveryKeyMismatch);
    }
    let wrap = secmem::scrubbed(|| {
        let mut shared = MontgomeryPoint(ephemeral).mul_clamped(key.scalar()).to_bytes();
        let wrap = wrap_key(&shared, &ephemeral, &recipient);
        secmem::zero_mem(&mut shared);
        wrap
    })?;
    let opened = envelope::open(&wrap, &file[32..], CipherPolicy::Strict)?;
    if opened.header.kind != SecretKind::WrappedDek {
        return Err(VaultError::Tampered);
    }
    crate::hierarchy::dek_from_body(opened.plaintext.as_slice())
}
