//! Errors with stable codes. None carries secret bytes.

use std::fmt;

use secmem::SecMemError;

/// Why a signature did not verify. Public information: it describes the
/// signature, key and message, never a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyFailure {
    /// `S` is not below the group order (libsodium rejects; RFC 8032 requires).
    NonCanonicalS,
    /// `R` has small order (libsodium rejects).
    SmallOrderR,
    /// The public key's encoding is not canonical (libsodium rejects).
    NonCanonicalKey,
    /// The public key has small order (libsodium rejects).
    SmallOrderKey,
    /// The public key is not a curve point.
    InvalidKey,
    /// The verification equation does not hold.
    Equation,
    /// A KES tree node's hash does not match the verification key.
    KeyHashMismatch,
    /// A compact KES leaf carries a different verification key.
    KeyMismatch,
}

impl From<sigverify::Rejection> for VerifyFailure {
    fn from(r: sigverify::Rejection) -> Self {
        use sigverify::Rejection as R;
        match r {
            R::NonCanonicalS => VerifyFailure::NonCanonicalS,
            R::SmallOrderR => VerifyFailure::SmallOrderR,
            R::NonCanonicalKey => VerifyFailure::NonCanonicalKey,
            R::SmallOrderKey => VerifyFailure::SmallOrderKey,
            R::InvalidKey => VerifyFailure::InvalidKey,
            R::Equation => VerifyFailure::Equation,
        }
    }
}

/// A crypto operation's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// Secure memory could not be had (see the wrapped code).
    SecMem(SecMemError),
    /// A KES period at or beyond the scheme's number of periods.
    PeriodOutOfRange { period: u32, total: u32 },
    /// Input of the wrong length for what it encodes.
    BadLength { what: &'static str, expected: usize, actual: usize },
    /// A serialised value is malformed (bad CBOR header, bad hex, bad envelope).
    Malformed { what: &'static str },
    /// DirectDeserialise was fed fewer bytes than the type needs.
    DirectShortInput { expected: usize },
    /// DirectDeserialise was fed more bytes than the type takes.
    DirectLongInput { expected: usize },
    /// A signature did not verify.
    Verify(VerifyFailure),
}

impl CryptoError {
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::SecMem(e) => e.code(),
            CryptoError::PeriodOutOfRange { .. } => "CRYPTO_PERIOD_OUT_OF_RANGE",
            CryptoError::BadLength { .. } => "CRYPTO_BAD_LENGTH",
            CryptoError::Malformed { .. } => "CRYPTO_MALFORMED",
            CryptoError::DirectShortInput { .. } => "CRYPTO_DIRECT_SHORT_INPUT",
            CryptoError::DirectLongInput { .. } => "CRYPTO_DIRECT_LONG_INPUT",
            CryptoError::Verify(_) => "CRYPTO_SIGNATURE_INVALID",
        }
    }
}

impl From<SecMemError> for CryptoError {
    fn from(e: SecMemError) -> Self {
        CryptoError::SecMem(e)
    }
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::SecMem(e) => write!(f, "{e}"),
            CryptoError::PeriodOutOfRange { period, total } => {
                write!(f, "{}: period {period} is outside 0..{total}", self.code())
            }
            CryptoError::BadLength { what, expected, actual } => {
                write!(f, "{}: {what} must be {expected} bytes, got {actual}", self.code())
            }
            CryptoError::Malformed { what } => write!(f, "{}: malformed {what}", self.code()),
            CryptoError::DirectShortInput { expected } => {
                write!(f, "{}: input ended before {expected} bytes", self.code())
            }
            CryptoError::DirectLongInput { expected } => {
                write!(f, "{}: input longer than {expected} bytes", self.code())
            }
            CryptoError::Verify(why) => write!(f, "{}: {why:?}", self.code()),
        }
    }
}

impl std::error::Error for CryptoError {}
