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
            VaultError::NotFound => "no such blob".to_string(),
            VaultError::InsecurePath => {
                "a symlink or special file where a blob or the store should be; refusing".to_string()
            }
            VaultError::InsecurePermissions => {
                "owned by another user or open to group/others (want 0700 directory, 0600 files)".to_string()
            }
            VaultError::Io { kind } => format!("file-system error ({kind})"),
        };
        write!(f, "{}: {what}", self.code())
    }
}

impl std::error::Error for VaultError {}
