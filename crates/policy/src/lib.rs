//! Intents, the decision table and reason codes: a pure, deterministic
//! function from (intent, policy, usage) to a decision with exactly one
//! reason code and the layer that decided. No I/O, no clock, no keys: the
//! daemon supplies the time and the spend ledger's view, so the same inputs
//! always give the same decision and a recorded decision can be replayed.
//!
//! * [`intent`]: the caller's intent, strictly parsed and canonicalized into
//!   bytes with one hash ([`intent::CanonicalIntent::hash`]), the value every
//!   approval and every audit record binds to.
//! * [`config`]: the policy file (TOML), validated strictly.
//! * [`decide`]: the decision table of docs/policy.md.
//! * [`codes`]: reason codes (append-only) and layers.
//! * [`solana`]: the network/asset registry and [`solana::bind`], which
//!   turns a payment intent into the exact transaction the signer signs.
//! * [`redact`]: the filter that keeps secrets out of free-text fields.
//! * [`strict_json`]: JSON parsing that refuses duplicate keys, deep nesting
//!   and oversized input (for intents and IPC request bodies).
//! * [`journal`]: the signed, hash-chained, TPM-anchored format of the audit
//!   log and the spend ledger and its verifier, shared by the daemon that
//!   writes them and the CLI that checks them; [`audit`] reads a request's
//!   records.
#![forbid(unsafe_code)]

pub mod audit;
pub mod codes;
pub mod config;
pub mod decide;
pub mod intent;
pub mod journal;
pub mod redact;
pub mod solana;
pub mod strict_json;

pub use codes::{Layer, Outcome, ReasonCode};
pub use config::{Policy, PolicyError};
pub use decide::{Decision, Usage, decide};
pub use intent::{CanonicalIntent, IntentError};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses lower- or upper-case hex; `None` on odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes().chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}
