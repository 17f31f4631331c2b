#![forbid(unsafe_code)]
//! The x402 payment protocol, v1 and v2, as keyward's client speaks it.
//!
//! This crate turns the bytes of an HTTP 402 exchange into typed values and
//! back: the challenge ([`parse_challenge`]), the payment header
//! ([`payment_header`]), the settlement receipt ([`parse_receipt`]) and the
//! Solana network registry ([`networks`]). It is linked by the `keyward`
//! client (an agent's x402 client and a local paying proxy) and by the test
//! harness.
//!
//! # Why it is pure
//!
//! It does no I/O, holds no keys and builds no transactions. The caller
//! hands it header values and body bytes and gets back data; the Solana
//! transaction comes from `solana-codec`, the decision to pay from
//! `policy`, the signature from the daemon. Keeping the protocol layer
//! free of all three makes it easy to test against hostile input and
//! impossible for a parsing bug to reach a key.
//!
//! # The adversary is the server
//!
//! A paid resource chooses the price, the payee and every byte we read.
//! So every input is bounded before it is parsed ([`MAX_HEADER_BYTES`],
//! [`MAX_BODY_BYTES`], [`MAX_ACCEPTS`], [`MAX_MEMO_BYTES`]), JSON with a
//! repeated key is refused (two parsers could otherwise see two different
//! prices), amounts must be canonical decimal `u64`s, v1/v2 mixtures are
//! refused, and a v2 header must agree with a v1 body that comes with it.
//! Leniency is kept for what the spec says clients must tolerate: unknown
//! `extra` keys (`features`, `recentBlockhash`, …), unknown top-level keys
//! and `extensions`. Those are carried through untouched, because v2
//! requires the chosen requirement to be echoed back verbatim.
//!
//! Text the server writes (`error`, `description`, receipt reasons) is
//! returned as is; keyward shows it to a person only through
//! `policy::redact::display_safe` (controls, bidi and zero-width characters
//! removed, length bounded).
//! Errors never quote server values (see [`X402Error`]).
//!
//! # Stable error codes
//!
//! | code | when |
//! |---|---|
//! | `X402_CHALLENGE_MISSING` | no `PAYMENT-REQUIRED` header and the body is not JSON with `x402Version` |
//! | `X402_CHALLENGE_MALFORMED` | bad base64, bad JSON, duplicate key, missing or mistyped field, empty `accepts`, bad base58 on a Solana entry |
//! | `X402_CHALLENGE_TOO_LARGE` | header over [`MAX_HEADER_BYTES`], body over [`MAX_BODY_BYTES`], more than [`MAX_ACCEPTS`] entries |
//! | `X402_CHALLENGE_INCONSISTENT` | header `x402Version` ≠ 2, body `x402Version` ≠ 1, v1 name in v2 / CAIP-2 in v1, the other version's amount field, header and body disagree |
//! | `X402_SCHEME_UNSUPPORTED` | entry skipped by [`solana_exact_candidates`]: scheme is not `exact` |
//! | `X402_NETWORK_UNSUPPORTED` | entry skipped by [`solana_exact_candidates`]: not a Solana network |
//! | `X402_AMOUNT_INVALID` | amount not a string of ASCII digits without sign or leading zero, zero, or over `u64::MAX` |
//! | `X402_MEMO_TOO_LONG` | `extra.memo` over [`MAX_MEMO_BYTES`] UTF-8 bytes |
//! | `X402_FEE_PAYER_MISSING` | entry skipped by [`solana_exact_candidates`]: no `extra.feePayer`; also for callers |
//! | `X402_RECEIPT_MALFORMED` | receipt header oversized, not base64/JSON, mistyped, success without a signature |
//! | `X402_HEADER_MALFORMED` | [`parse_payment_header`]: unknown name, oversized, not base64/JSON, version mismatch, bad transaction |
//!
//! The same strings are available as constants in [`codes`].

mod challenge;
mod error;
mod json;
pub mod networks;
mod payment;
mod receipt;

pub use challenge::{Challenge, Requirement, encode_challenge_v2, parse_challenge, solana_exact_candidates};
pub use error::{X402Error, codes};
pub use networks::{Network, caip2_of};
pub use payment::{PaymentPayload, parse_payment_header, payment_header};
pub use receipt::{Receipt, encode_receipt, parse_receipt};

/// Largest header value (base64 text) we decode.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest 402 body we parse.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most `accepts` entries in one challenge.
pub const MAX_ACCEPTS: usize = 16;
/// Longest `extra.memo`, in UTF-8 bytes.
pub const MAX_MEMO_BYTES: usize = 256;

/// HTTP header names (HTTP names are case-insensitive; these are the spec spellings).
pub mod headers {
    /// v2 challenge, server → client.
    pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
    /// v2 payment, client → server.
    pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
    /// v2 receipt, server → client.
    pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
    /// v1 payment, client → server.
    pub const X_PAYMENT: &str = "X-PAYMENT";
    /// v1 receipt, server → client.
    pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
}

/// x402 protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Challenge in the body, `X-PAYMENT`, v1 network names.
    V1,
    /// Challenge in `PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE`, CAIP-2 networks.
    V2,
}

impl Version {
    /// The `x402Version` number.
    pub fn number(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }
}

/// `s` is base58-alphabet text of `min..=max` characters.
///
/// This is a shape check only; decoding to exactly 32 (or 64) bytes is
/// `solana-codec`'s job.
pub(crate) fn base58_shape(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| matches!(b, b'1'..=b'9' | b'A'..=b'H' | b'J'..=b'N' | b'P'..=b'Z' | b'a'..=b'k' | b'm'..=b'z'))
}
