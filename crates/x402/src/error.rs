//! The error type and its stable codes.
//!
//! Every failure carries a stable `code` (one of [`codes`]) and a `detail`
//! that names the offending field (`accepts[2].extra.memo`) and what was
//! wrong with it. The detail is written by this crate: it never repeats a
//! value that came from the server, because an error ends up in logs, IPC
//! replies and terminals, and a hostile server must not be able to write
//! into any of them through us.

use core::fmt;

/// The stable error codes. Callers match on these strings; they never change meaning.
pub mod codes {
    /// Neither a `PAYMENT-REQUIRED` header nor a v1 challenge body.
    pub const CHALLENGE_MISSING: &str = "X402_CHALLENGE_MISSING";
    /// Bad base64, bad JSON, a duplicate JSON key, a missing or mistyped field.
    pub const CHALLENGE_MALFORMED: &str = "X402_CHALLENGE_MALFORMED";
    /// A header or body over its byte bound, or more than `MAX_ACCEPTS` entries.
    pub const CHALLENGE_TOO_LARGE: &str = "X402_CHALLENGE_TOO_LARGE";
    /// Version confusion, or a v2 header and a v1 body that disagree.
    pub const CHALLENGE_INCONSISTENT: &str = "X402_CHALLENGE_INCONSISTENT";
    /// A scheme other than `exact` (reported per entry by `solana_exact_candidates`).
    pub const SCHEME_UNSUPPORTED: &str = "X402_SCHEME_UNSUPPORTED";
    /// A network that is not a Solana network.
    pub const NETWORK_UNSUPPORTED: &str = "X402_NETWORK_UNSUPPORTED";
    /// An amount that is not a canonical decimal `u64` greater than zero.
    pub const AMOUNT_INVALID: &str = "X402_AMOUNT_INVALID";
    /// `extra.memo` longer than `MAX_MEMO_BYTES` UTF-8 bytes.
    pub const MEMO_TOO_LONG: &str = "X402_MEMO_TOO_LONG";
    /// A Solana `exact` entry without `extra.feePayer`.
    pub const FEE_PAYER_MISSING: &str = "X402_FEE_PAYER_MISSING";
    /// A `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE` that cannot be read.
    pub const RECEIPT_MALFORMED: &str = "X402_RECEIPT_MALFORMED";
    /// A `PAYMENT-SIGNATURE` / `X-PAYMENT` value that cannot be read.
    pub const HEADER_MALFORMED: &str = "X402_HEADER_MALFORMED";
}

/// A parsing or validation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X402Error {
    /// One of the stable [`codes`].
    pub code: &'static str,
    /// Names the field and the problem; never contains server-supplied values.
    pub detail: String,
}

impl X402Error {
    pub(crate) fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into() }
    }
}

impl fmt::Display for X402Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for X402Error {}
