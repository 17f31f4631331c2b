//! Errors with stable codes.
//!
//! Every variant carries only sizes, errno values and names: never a byte of
//! the secret it concerns. The code string is stable and append-only, so that
//! scripts, logs and the red-team ledger can key on it.

use std::fmt;

use crate::Backend;

/// Why a secure-memory operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecMemError {
    /// The kernel refused to lock more pages: RLIMIT_MEMLOCK is exhausted.
    LockLimit { errno: i32 },
    /// The process may not lock memory at all (no CAP_IPC_LOCK and a zero limit).
    LockDenied { errno: i32 },
    /// `mmap`/`mprotect` failed.
    MapFailed { errno: i32 },
    /// A mandatory `madvise` (dump exclusion, fork wiping, population) failed.
    AdviceFailed { advice: &'static str, errno: i32 },
    /// The requested backend does not exist on this kernel.
    BackendUnavailable { backend: Backend, errno: i32 },
    /// The global pool was already set up with another backend.
    AlreadyConfigured { active: Backend },
    /// A size of zero where a secret is required, or one that overflows.
    InvalidSize { requested: usize },
    /// An alignment that is not a power of two, or larger than a page.
    InvalidAlignment { align: usize },
    /// Two buffers that must have one length do not.
    LengthMismatch { expected: usize, actual: usize },
    /// The operating system's random source failed.
    RandomFailed,
    /// Reading a secret from a file or stdin failed (or ended early).
    Io { kind: std::io::ErrorKind },
    /// A secret read from input is longer than the caller allows.
    TooLong { max: usize },
    /// A secret string is not valid UTF-8.
    InvalidUtf8,
}

impl SecMemError {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            SecMemError::LockLimit { .. } => "SECMEM_LOCK_LIMIT",
            SecMemError::LockDenied { .. } => "SECMEM_LOCK_DENIED",
            SecMemError::MapFailed { .. } => "SECMEM_MAP_FAILED",
            SecMemError::AdviceFailed { .. } => "SECMEM_ADVICE_FAILED",
            SecMemError::BackendUnavailable { .. } => "SECMEM_BACKEND_UNAVAILABLE",
            SecMemError::AlreadyConfigured { .. } => "SECMEM_ALREADY_CONFIGURED",
            SecMemError::InvalidSize { .. } => "SECMEM_INVALID_SIZE",
            SecMemError::InvalidAlignment { .. } => "SECMEM_INVALID_ALIGNMENT",
            SecMemError::LengthMismatch { .. } => "SECMEM_LENGTH_MISMATCH",
            SecMemError::RandomFailed => "SECMEM_RANDOM_FAILED",
            SecMemError::Io { .. } => "SECMEM_IO",
            SecMemError::TooLong { .. } => "SECMEM_TOO_LONG",
            SecMemError::InvalidUtf8 => "SECMEM_INVALID_UTF8",
        }
    }

    /// Maps an errno from `mlock` or a locked `mmap` to the error a caller can act on.
    pub(crate) fn lock_failed(errno: i32) -> SecMemError {
        match errno {
            libc::EPERM => SecMemError::LockDenied { errno },
            libc::EAGAIN | libc::ENOMEM => SecMemError::LockLimit { errno },
            _ => SecMemError::MapFailed { errno },
        }
    }
}

impl fmt::Display for SecMemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.code())?;
        match self {
            SecMemError::LockLimit { errno } => write!(
                f,
                "cannot lock secret memory: RLIMIT_MEMLOCK is exhausted (errno {errno}); \
                 raise the limit (systemd LimitMEMLOCK=) or hold fewer secrets"
            ),
            SecMemError::LockDenied { errno } => write!(
                f,
                "this process may not lock memory (errno {errno}); refusing to keep secrets in swappable pages"
            ),
            SecMemError::MapFailed { errno } => write!(f, "mapping secret pages failed (errno {errno})"),
            SecMemError::AdviceFailed { advice, errno } => {
                write!(f, "{advice} on secret pages failed (errno {errno}); refusing to continue")
            }
            SecMemError::BackendUnavailable { backend, errno } => {
                write!(f, "secret-memory backend {backend} is unavailable on this kernel (errno {errno})")
            }
            SecMemError::AlreadyConfigured { active } => {
                write!(f, "the global secret pool is already running with backend {active}")
            }
            SecMemError::InvalidSize { requested } => write!(f, "invalid secret size {requested}"),
            SecMemError::InvalidAlignment { align } => {
                write!(f, "invalid alignment {align}: must be a power of two no larger than a page")
            }
            SecMemError::LengthMismatch { expected, actual } => {
                write!(f, "length mismatch: expected {expected} bytes, got {actual}")
            }
            SecMemError::RandomFailed => write!(f, "the operating system random source failed"),
            SecMemError::Io { kind } => write!(f, "reading secret input failed ({kind})"),
            SecMemError::TooLong { max } => write!(f, "secret input is longer than {max} bytes"),
            SecMemError::InvalidUtf8 => write!(f, "secret text is not valid UTF-8"),
        }
    }
}

impl std::error::Error for SecMemError {}
