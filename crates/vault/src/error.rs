//! Vault errors with stable codes. None carries secret bytes.

use std::fmt;

use secmem::SecMemError;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultError {
    BadMagic,
    UnknownVersion {
        version: u16,
    },
    UnknownAlgorithm {
        id: u8,
    },
    UnknownKind {
        id: u8,
    },
    BadName,
    Truncated,
    LengthMismatch,
    TooLarge {
        max: usize,
    },
    /// An AES-256-GCM blob under the strict cipher policy.
    CompatDisabled,
    /// The blob was sealed under another data key.
    WrongDek,
    /// The tag did not verify: the blob or its header was modified.
    Tampered,
    Random,
    SecMem(SecMemError),
    /// The TPM path failed; signing and unsealing are denied (fail closed).
    TpmUnavailable(crate::tpm::TpmFailure),
    /// No blob of that name.
    NotFound,
    /// A symlink, or something other than a regular file or directory, where
    /// a blob or the store directory should be.
    InsecurePath,
    /// Owned by another user, or readable/writable by group or others.
    InsecurePermissions,
    /// A file-system operation failed.
    Io {
        kind: std::io::ErrorKind,
    },
    /// A blob or the manifest is older than the TPM epoch counter says it
    /// must be: an older valid copy was put back (RT-012).
    Rollback,
    /// The manifest failed its MAC, or a blob does not match the manifest.
    ManifestTampered,
    /// The manifest is unreadable (bad magic, version, truncated).
    ManifestMalformed,
    /// The vault directory holds no vault (run `keyward vault init`).
    NotInitialised,
    /// Key files are present but the manifest is not: a damaged vault.
    ManifestMissing,
    /// `init` on a directory that already holds a vault.
    AlreadyInitialised,
    /// Another process holds the vault lock.
    Busy,
    /// A secret would have been read from or left in plaintext; strict mode
    /// refuses any plaintext fallback (RT-017).
    StrictModeFallback,
    /// The operation is refused by the vault's own rules (the message says which).
    PolicyDenied {
        why: &'static str,
    },
    /// The recovery key does not match this vault.
    RecoveryKeyMismatch,
}

impl VaultError {
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::BadMagic => "VAULT_BAD_MAGIC",
            VaultError::UnknownVersion { .. } => "VAULT_UNKNOWN_VERSION",
            VaultError::UnknownAlgorithm { .. } => "VAULT_UNKNOWN_ALGORITHM",
            VaultError::UnknownKind { .. } => "VAULT_UNKNOWN_KIND",
            VaultError::BadName => "VAULT_BAD_NAME",
            VaultError::Truncated => "VAULT_TRUNCATED",
            VaultError::LengthMismatch => "VAULT_LENGTH_MISMATCH",
            VaultError::TooLarge { .. } => "VAULT_TOO_LARGE",
            VaultError::CompatDisabled => "VAULT_COMPAT_DISABLED",
            VaultError::WrongDek => "VAULT_WRONG_DEK",
            VaultError::Tampered => "VAULT_TAMPERED",
            VaultError::Random => "VAULT_RANDOM_FAILED",
            VaultError::SecMem(e) => e.code(),
            VaultError::TpmUnavailable(_) => "DENY_TPM_UNAVAILABLE",
            VaultError::NotFound => "VAULT_NOT_FOUND",
            VaultError::InsecurePath => "VAULT_INSECURE_PATH",
            VaultError::InsecurePermissions => "VAULT_INSECURE_PERMISSIONS",
            VaultError::Io { .. } => "VAULT_IO",
            VaultError::Rollback => "DENY_REPLAY",
            VaultError::ManifestTampered => "VAULT_MANIFEST_TAMPERED",
            VaultError::ManifestMalformed => "VAULT_MANIFEST_MALFORMED",
            VaultError::NotInitialised => "VAULT_NOT_INITIALISED",
            VaultError::ManifestMissing => "VAULT_MANIFEST_MISSING",
            VaultError::AlreadyInitialised => "VAULT_ALREADY_INITIALISED",
            VaultError::Busy => "VAULT_BUSY",
            VaultError::StrictModeFallback => "DENY_STRICT_MODE_FALLBACK",
            VaultError::PolicyDenied { .. } => "DENY_USER_POLICY",
            VaultError::RecoveryKeyMismatch => "VAULT_RECOVERY_KEY_MISMATCH",
        }
    }

    /// The seed's normative deny code (docs/envelope-format.md, error table) for a refusal
    /// that is a security decision rather than an operational error: integrity
    /// failures deny with `DENY_AEAD_INTEGRITY`, rollback with `DENY_REPLAY`.
    pub fn deny_code(&self) -> Option<&'static str> {
        match self {
            VaultError::Tampered
            | VaultError::ManifestTampered
            | VaultError::ManifestMalformed
            | VaultError::ManifestMissing
            | VaultError::BadMagic
            | VaultError::UnknownVersion { .. }
            | VaultError::UnknownAlgorithm { .. }
            | VaultError::UnknownKind { .. }
            | VaultError::Truncated
            | VaultError::LengthMismatch
            | VaultError::WrongDek => Some("DENY_AEAD_INTEGRITY"),
            VaultError::Rollback => Some("DENY_REPLAY"),
            VaultError::TpmUnavailable(_) => Some("DENY_TPM_UNAVAILABLE"),
            VaultError::StrictModeFallback => Some("DENY_STRICT_MODE_FALLBACK"),
            VaultError::PolicyDenied { .. } => Some("DENY_USER_POLICY"),
            _ => None,
        }
    }
}

impl From<SecMemError> for VaultError {
    fn from(e: SecMemError) -> Self {
        VaultError::SecMem(e)
    }
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            VaultError::BadMagic => "not a keyward sealed blob".to_string(),
            VaultError::UnknownVersion { version } => format!("envelope format version {version} is not supported"),
            VaultError::UnknownAlgorithm { id } => format!("unknown algorithm id {id}"),
            VaultError::UnknownKind { id } => format!("unknown secret kind {id}"),
            VaultError::BadName => "blob name is not 1..=128 bytes of [A-Za-z0-9._-]".to_string(),
            VaultError::Truncated => "blob is truncated".to_string(),
            VaultError::LengthMismatch => "blob has trailing bytes".to_string(),
            VaultError::TooLarge { max } => format!("secret larger than {max} bytes"),
            VaultError::CompatDisabled => {
                "AES-256-GCM blobs need the compatibility cipher policy; strict mode refuses them".to_string()
            }
            VaultError::WrongDek => "blob was sealed under another data key".to_string(),
            VaultError::Tampered => "integrity check failed: blob or header modified".to_string(),
            VaultError::Random => "the OS random source failed".to_string(),
            VaultError::SecMem(e) => return write!(f, "{e}"),
            VaultError::TpmUnavailable(why) => why.diagnostic(),
            VaultError::NotFound => "no such secret".to_string(),
            VaultError::InsecurePath => {
                "a symlink or special file where a blob or the store should be; refusing".to_string()
            }
            VaultError::InsecurePermissions => {
                "owned by another user or open to group/others (want 0700 directory, 0600 files)".to_string()
            }
            VaultError::Io { kind } => format!("file-system error ({kind})"),
            VaultError::Rollback => "rollback detected: a blob or the manifest is older than the TPM epoch counter \
                 (an older copy was put back); see docs/runbooks/corrupted-blob.md"
                .to_string(),
            VaultError::ManifestTampered => {
                "the manifest or a blob failed its integrity check; see docs/runbooks/corrupted-blob.md".to_string()
            }
            VaultError::ManifestMalformed => "the vault manifest is unreadable".to_string(),
            VaultError::NotInitialised => "no vault here; run `keyward vault init`".to_string(),
            VaultError::ManifestMissing => "key files are present but the manifest is missing; do not run init \
                 over them; see docs/runbooks/corrupted-blob.md"
                .to_string(),
            VaultError::AlreadyInitialised => "a vault already exists here".to_string(),
            VaultError::Busy => "another process holds the vault lock".to_string(),
            VaultError::StrictModeFallback => "strict mode refuses plaintext fallback; seal the secret with \
                 `keyward migrate --apply`"
                .to_string(),
            VaultError::PolicyDenied { why } => (*why).to_string(),
            VaultError::RecoveryKeyMismatch => "the recovery key does not belong to this vault".to_string(),
        };
        write!(f, "{}: {what}", self.code())
    }
}

impl std::error::Error for VaultError {}
