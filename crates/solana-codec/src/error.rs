//! Error types with stable codes.
//!
//! Both types carry only `&'static str` fields. That is deliberate: an
//! error can end up in a log, an IPC reply or a terminal, and none of
//! those should ever carry bytes that came from a caller or a network
//! peer (keys, memos, amounts). The `code` is the stable, machine-readable
//! part; `detail` is a fixed human sentence chosen by this crate.

use core::fmt;

/// A decoding or validation failure.
///
/// `code` is one of the stable codes listed in the crate documentation
/// (`SOL_BASE58_INVALID`, `SOL_PUBKEY_INVALID`, `SOL_SHORTVEC_INVALID`,
/// `SOL_MESSAGE_MALFORMED`, `SOL_MESSAGE_TOO_LARGE`, `SOL_MESSAGE_NOT_V0`,
/// `SOL_TRANSFER_INVALID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Fixed human-readable explanation; never contains input bytes.
    pub detail: &'static str,
}

impl CodecError {
    pub(crate) const fn new(code: &'static str, detail: &'static str) -> Self {
        Self { code, detail }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for CodecError {}

/// A message that is not exactly the expected x402 "exact" transaction.
///
/// `code` is `SOL_TRANSACTION_MISMATCH` (or `SOL_TRANSFER_INVALID` when the
/// *expected* transfer itself fails [`crate::ExactTransfer::validate`]).
/// `rule` names the violated rule of the research brief §4.4: `"M1"` ..
/// `"M8"`, `"EXACT_BYTES"` when every rule passed but the bytes still differ
/// from the canonical encoding, or `"EXPECTED"` for an invalid expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// The violated rule (`"M1"`..`"M8"`, `"EXACT_BYTES"`, `"EXPECTED"`).
    pub rule: &'static str,
    /// Fixed human-readable explanation; never contains input bytes.
    pub detail: &'static str,
}

impl CheckError {
    pub(crate) const fn mismatch(rule: &'static str, detail: &'static str) -> Self {
        Self { code: codes::TRANSACTION_MISMATCH, rule, detail }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.code, self.rule, self.detail)
    }
}

impl std::error::Error for CheckError {}

/// The stable error codes, in one place.
pub(crate) mod codes {
    pub(crate) const BASE58_INVALID: &str = "SOL_BASE58_INVALID";
    pub(crate) const PUBKEY_INVALID: &str = "SOL_PUBKEY_INVALID";
    pub(crate) const SHORTVEC_INVALID: &str = "SOL_SHORTVEC_INVALID";
    pub(crate) const MESSAGE_MALFORMED: &str = "SOL_MESSAGE_MALFORMED";
    pub(crate) const MESSAGE_TOO_LARGE: &str = "SOL_MESSAGE_TOO_LARGE";
    pub(crate) const MESSAGE_NOT_V0: &str = "SOL_MESSAGE_NOT_V0";
    pub(crate) const TRANSFER_INVALID: &str = "SOL_TRANSFER_INVALID";
    pub(crate) const TRANSACTION_MISMATCH: &str = "SOL_TRANSACTION_MISMATCH";
}
