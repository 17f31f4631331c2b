//! Intents: what a caller asks the signer to do, and its canonical form.
//!
//! A caller sends an intent as JSON (docs/policy.md, "Intent"). It is parsed
//! strictly (unknown fields, floats, signs, leading zeros, control
//! characters, oversized strings, an idempotency key or correlation id that
//! could be a secret ([`opaque_id`]): all refused) and canonicalized into a
//! [`CanonicalIntent`]. Its canonical bytes are JSON with sorted keys and no
//! whitespace, and its hash is SHA-256 over a domain tag and those bytes.
//! Everything downstream (the decision, an approval, the spend ledger, the
//! audit record) names the intent by that hash, so a material change (amount,
//! payee, payment authority, scheme, message) is a different intent.
//!
//! Any canonicalization failure is `DENY_INVALID_X402_INTENT`: the seed's one
//! code for an intent that cannot be put into canonical form, x402 or not.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::solana::SolanaFields;

/// Domain separation for the intent hash.
pub const HASH_DOMAIN: &[u8] = b"keyward/intent/v1\0";
/// Largest message the signer will sign for one intent.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Largest identifier (payee, asset, ...).
pub const MAX_ID: usize = 256;
/// Largest idempotency key or correlation id ([`opaque_id`]).
pub const MAX_OPAQUE_ID: usize = 128;
/// Most hex digits an idempotency key or correlation id may end in after a
/// label (128 bits: `keyward x402 fetch` uses `x402-` and 32 hex digits).
pub const MAX_OPAQUE_HEX: usize = 32;
/// Largest free-text rationale, in characters.
pub const MAX_RATIONALE: usize = 1024;
/// The x402 schemes keyward knows. Anything else is never auto-approved.
pub const KNOWN_SCHEMES: &[&str] = &["v1-solana-exact", "v2-solana-exact"];

/// Why an intent could not be canonicalized. The message names the field,
/// never its value (values may be hostile or secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentError {
    pub field: &'static str,
    pub why: &'static str,
}

impl std::fmt::Display for IntentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DENY_INVALID_X402_INTENT: {}: {}", self.field, self.why)
    }
}

impl std::error::Error for IntentError {}

fn bad(field: &'static str, why: &'static str) -> IntentError {
    IntentError { field, why }
}

/// Who initiated the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// Software acting on its own (the autonomous lane).
    Agent,
    /// A person acting directly (the interactive lane).
    User,
}

/// What the signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An x402 payment: requires the `x402` block.
    X402Payment,
    /// A transfer of value.
    Transfer,
    /// A token approval (allowance).
    Approve,
    /// A signature over a message that moves no value by itself
    /// (amount 0; asset and payee optional).
    Sign,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::X402Payment => "x402_payment",
            Action::Transfer => "transfer",
            Action::Approve => "approve",
            Action::Sign => "sign",
        }
    }
}

/// The wire form of an intent, before canonicalization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIntent {
    actor: Actor,
    action: Action,
    key: String,
    chain_id: String,
    asset_id: Option<String>,
    amount_atomic: Value,
    max_amount_atomic: Value,
    payee: Option<String>,
    rationale: String,
    idempotency_key: String,
    request_expiry: u64,
    correlation_id: Option<String>,
    #[serde(default)]
    context_requires_approval: bool,
    message_hex: Option<String>,
    kes_period: Option<u32>,
    x402: Option<WireX402>,
    solana: Option<SolanaFields>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireX402 {
    scheme_id: String,
    /// The facilitator/settlement endpoint if the challenge names one,
    /// otherwise the merchant origin.
    payment_authority: String,
    program_id: Option<String>,
    /// The x402 protocol version of the challenge (1 or 2).
    version: Option<u8>,
    /// The resource URL the payment is for: the client's claim, recorded
    /// and shown, never a basis for a decision (docs/x402.md).
    resource: Option<String>,
}

/// The x402 part of a canonical intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct X402 {
    pub scheme_id: String,
    pub payment_authority: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// An intent in canonical form. Public values only: the message to sign is
/// public data (a transaction message), and nothing here is a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanonicalIntent {
    pub actor: Actor,
    pub action: Action,
    /// The vault name of the signing key.
    pub key: String,
    pub chain_id: String,
    pub asset_id: String,
    /// Atomic units, as a decimal string in the canonical bytes.
    #[serde(serialize_with = "decimal")]
    pub amount_atomic: u64,
    #[serde(serialize_with = "decimal")]
    pub max_amount_atomic: u64,
    pub payee: String,
    pub rationale: String,
    pub idempotency_key: String,
    /// Unix seconds after which the request is void.
    pub request_expiry: u64,
    pub correlation_id: String,
    pub context_requires_approval: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kes_period: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x402: Option<X402>,
    /// The Solana transaction parameters of a payment; the signer builds
    /// the message from them (crate::solana::bind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solana: Option<SolanaFields>,
    /// SHA-256 of the message, hex: the hash covers the message through it.
    pub message_sha256: String,
    /// The bytes the signer signs: the caller's for `sign`, the compiled
    /// transaction message for a bound Solana payment.
    #[serde(skip)]
    pub message: Vec<u8>,
    /// Message bytes a caller sent with a Solana payment: never signed as
    /// such, only compared with what the signer builds.
    #[serde(skip)]
    pub claimed_message: Option<Vec<u8>>,
}

fn decimal<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// An amount: a JSON integer or a decimal string of digits, no sign, no
/// leading zero, no fraction, at most `u64::MAX`.
fn amount(field: &'static str, v: &Value) -> Result<u64, IntentError> {
    match v {
        Value::Number(n) => n.as_u64().ok_or(bad(field, "must be a non-negative integer")),
        Value::String(s) => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(field, "must be decimal digits"));
            }
            if s.len() > 1 && s.starts_with('0') {
                return Err(bad(field, "leading zero"));
            }
            s.parse::<u64>().map_err(|_| bad(field, "too large"))
        }
        _ => Err(bad(field, "must be an integer or a decimal string")),
    }
}

/// An identifier: 1..=256 visible ASCII characters (no space, no control,
/// nothing a terminal or a homoglyph could disguise).
fn ident(field: &'static str, s: &str) -> Result<String, IntentError> {
    if s.is_empty() || s.len() > MAX_ID {
        return Err(bad(field, "must be 1 to 256 characters"));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(field, "must be visible ASCII"));
    }
    Ok(s.to_string())
}

/// Whether `t` is a UUID in its canonical text form (8-4-4-4-12 hex digits).
fn is_uuid(t: &str) -> bool {
    t.len() == 36
        && t.bytes()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

/// Whether `s` is a label (that the redaction filter leaves alone) and an
/// opaque hex part: a UUID, or at most [`MAX_OPAQUE_HEX`] hex digits after a
/// label holding a letter that is not a hex digit. The filter would redact
/// the hex part, but at most 128 bits of hex (half an Ed25519 seed) is an
/// identifier's nonce or digest, not a key.
fn opaque_hex_form(s: &str) -> bool {
    const SEPARATORS: [char; 5] = ['-', '_', ':', '.', '/'];
    let label_ok = |label: &str| !crate::redact::contains_secret_like(label);
    if let Some((label, uuid)) = s.len().checked_sub(36).map(|n| s.split_at(n))
        && is_uuid(uuid)
        && (label.is_empty() || (label.ends_with(SEPARATORS) && label_ok(label)))
    {
        return true;
    }
    let hex = s.bytes().rev().take_while(u8::is_ascii_hexdigit).count();
    let label = &s[..s.len() - hex];
    (1..=MAX_OPAQUE_HEX).contains(&hex)
        && label.ends_with(SEPARATORS)
        && label.bytes().any(|c| c.is_ascii_alphabetic() && !c.is_ascii_hexdigit())
        && label_ok(label)
}

/// An idempotency key or correlation id: kept verbatim in the ledger and the
/// audit log (idempotency matching needs the exact value), so it is never
/// redacted; a value that could be a secret is refused instead. The rule:
///
/// * 1 to [`MAX_OPAQUE_ID`] (128) characters of `[A-Za-z0-9._:/@+=-]`;
/// * the redaction filter ([`crate::redact`]) leaves it unchanged (no long
///   hex, base58/base64 run or random-looking token), or it is a UUID
///   (`8-4-4-4-12` hex digits, alone or after such a label ending in `-`,
///   `_`, `:`, `.` or `/`), or such a label holding a letter that is not a
///   hex digit followed by 1 to [`MAX_OPAQUE_HEX`] (32) hex digits (`x402-`
///   and 32 hex digits, what `keyward x402 fetch` generates).
///
/// A 64-hex-digit digest (or anything longer) is refused: it cannot be told
/// from an Ed25519 seed.
pub fn opaque_id(field: &'static str, s: &str) -> Result<String, IntentError> {
    if s.is_empty() || s.len() > MAX_OPAQUE_ID {
        return Err(bad(field, "must be 1 to 128 characters"));
    }
    if !s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._:/@+=-".contains(&c)) {
        return Err(bad(field, "must be characters of [A-Za-z0-9._:/@+=-]"));
    }
    if crate::redact::contains_secret_like(s) && !opaque_hex_form(s) {
        return Err(bad(
            field,
            "looks like a secret (long hex, base58/base64, random-looking text); use a UUID or a label \
             and at most 32 hex digits",
        ));
    }
    Ok(s.to_string())
}

/// A resource URL: `https://` or `http://`, visible ASCII, at most 2048
/// characters. It is a claim, so it is only checked for shape.
fn resource_url(s: &str) -> Result<String, IntentError> {
    if s.is_empty() || s.len() > 2048 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("x402.resource", "must be 1 to 2048 visible ASCII characters"));
    }
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(bad("x402.resource", "must be an http(s) URL"));
    }
    Ok(s.to_string())
}

/// The origin (`scheme://host[:port]`, lower-cased) of an `http://` or
/// `https://` URL; `None` for another scheme, no host, or user info in the
/// authority (`https://trusted.example@evil.example` names `evil.example`,
/// and a person reading it would not think so).
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    (!host.is_empty() && !host.contains('@')).then(|| format!("{scheme}://{host}"))
}

/// A payment authority: an `https://` URL; the scheme and host are
/// lower-cased and one trailing slash dropped, so that the trust check
/// compares like with like.
pub fn normalize_authority(s: &str) -> Result<String, IntentError> {
    let s = ident("x402.payment_authority", s)?;
    let lower = s.to_ascii_lowercase();
    let (scheme, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        ("https://", rest)
    } else if let Some(rest) = lower.strip_prefix("http://").filter(|r| is_loopback_host(r)) {
        // Plain HTTP only to this machine (a local proxy or test server).
        ("http://", rest)
    } else {
        return Err(bad("x402.payment_authority", "must be an https:// URL (http:// only for loopback)"));
    };
    let host_len = rest.find('/').unwrap_or(rest.len());
    if host_len == 0 || rest[..host_len].contains('@') {
        return Err(bad("x402.payment_authority", "must name a host (and no user info)"));
    }
    // Lower-case only the host; the path keeps its case.
    let original_rest = &s[scheme.len()..];
    let mut out = format!("{scheme}{}{}", &rest[..host_len], &original_rest[host_len..]);
    if out.ends_with('/') && out.len() > scheme.len() + host_len {
        out.pop();
    }
    Ok(out)
}

/// Whether an authority (`host[:port][/path]`) names this machine.
fn is_loopback_host(rest: &str) -> bool {
    let host = rest.split('/').next().unwrap_or("");
    let host = if host.starts_with('[') { host.split(']').next().map(|h| h.to_string() + "]") } else { None }
        .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(h, _)| h).to_string());
    matches!(host.as_str(), "localhost" | "[::1]") || host.starts_with("127.")
}

impl CanonicalIntent {
    /// Parses and canonicalizes an intent a caller sent. Expiry is not
    /// judged here (that is a decision, `EXPIRE_TTL_REACHED`). The
    /// idempotency key and correlation id must pass [`opaque_id`].
    pub fn from_json(value: &Value) -> Result<CanonicalIntent, IntentError> {
        Self::parse(value, opaque_id)
    }

    /// Reads back an intent this signer recorded ([`CanonicalIntent::to_wire`]
    /// in its spend ledger): as [`CanonicalIntent::from_json`], except that
    /// the idempotency key and correlation id are only held to the older
    /// identifier rule (1 to 256 visible ASCII characters), so that records
    /// written before [`opaque_id`] still replay. Never for a caller's intent.
    pub fn from_recorded_json(value: &Value) -> Result<CanonicalIntent, IntentError> {
        Self::parse(value, ident)
    }

    fn parse(
        value: &Value,
        id_rule: fn(&'static str, &str) -> Result<String, IntentError>,
    ) -> Result<CanonicalIntent, IntentError> {
        let w: WireIntent = serde_json::from_value(value.clone()).map_err(|_| {
            bad("intent", "not an intent object (known fields only, with the right types; see docs/policy.md)")
        })?;
        let amount_atomic = amount("amount_atomic", &w.amount_atomic)?;
        let max_amount_atomic = amount("max_amount_atomic", &w.max_amount_atomic)?;
        if amount_atomic > max_amount_atomic {
            return Err(bad("amount_atomic", "exceeds max_amount_atomic"));
        }
        let value_moving = w.action != Action::Sign;
        let asset_id = match (&w.asset_id, value_moving) {
            (Some(a), _) => ident("asset_id", a)?,
            (None, true) => return Err(bad("asset_id", "required for this action")),
            (None, false) => String::new(),
        };
        let payee = match (&w.payee, value_moving) {
            (Some(p), _) => ident("payee", p)?,
            (None, true) => return Err(bad("payee", "required for this action")),
            (None, false) => String::new(),
        };
        if value_moving && amount_atomic == 0 {
            return Err(bad("amount_atomic", "must be greater than zero for this action"));
        }
        if !value_moving && (amount_atomic != 0 || max_amount_atomic != 0) {
            return Err(bad("amount_atomic", "must be zero for a plain signature"));
        }
        let x402 = match (w.action, w.x402) {
            (Action::X402Payment, Some(x)) => {
                let scheme_id = ident("x402.scheme_id", &x.scheme_id)?;
                let payment_authority = normalize_authority(&x.payment_authority)?;
                let program_id = x.program_id.as_deref().map(|p| ident("x402.program_id", p)).transpose()?;
                if x.version.is_some_and(|v| v != 1 && v != 2) {
                    return Err(bad("x402.version", "must be 1 or 2"));
                }
                let resource = x.resource.as_deref().map(resource_url).transpose()?;
                Some(X402 { scheme_id, payment_authority, program_id, version: x.version, resource })
            }
            (Action::X402Payment, None) => return Err(bad("x402", "required for x402_payment")),
            (_, Some(_)) => return Err(bad("x402", "only for x402_payment")),
            (_, None) => None,
        };
        if w.rationale.chars().count() > MAX_RATIONALE {
            return Err(bad("rationale", "longer than 1024 characters"));
        }
        if w.rationale.chars().any(char::is_control) {
            return Err(bad("rationale", "contains control characters"));
        }
        let message = match &w.message_hex {
            Some(h) if h.len() > 2 * MAX_MESSAGE => return Err(bad("message_hex", "longer than 16 KiB")),
            Some(h) => {
                let m = crate::unhex(h).ok_or(bad("message_hex", "not hex"))?;
                if m.is_empty() {
                    return Err(bad("message_hex", "empty"));
                }
                Some(m)
            }
            None => None,
        };
        let solana = match (w.action, w.solana) {
            (Action::X402Payment | Action::Transfer, Some(s)) => {
                if s.memo.as_ref().is_some_and(|m| m.is_empty() || m.len() > 256) {
                    return Err(bad("solana.memo", "must be 1 to 256 bytes"));
                }
                for (field, v) in [("solana.fee_payer", &s.fee_payer), ("solana.recent_blockhash", &s.recent_blockhash)]
                {
                    ident(field, v)?;
                }
                Some(s)
            }
            (Action::X402Payment | Action::Transfer, None) => {
                return Err(bad("solana", "required for a payment (the signer builds the transaction)"));
            }
            (_, Some(_)) => return Err(bad("solana", "only for x402_payment and transfer")),
            (_, None) => None,
        };
        // A payment's message is built by the signer; bytes a caller sends
        // with it are only a claim to compare against. Anything else signs
        // the caller's message, which it must then send.
        let (message, claimed_message) = match (&solana, message) {
            (Some(_), claimed) => (claimed.clone().unwrap_or_default(), claimed),
            (None, Some(m)) => (m, None),
            (None, None) => return Err(bad("message_hex", "required for this action")),
        };
        if w.request_expiry == 0 {
            return Err(bad("request_expiry", "must be a Unix time in seconds"));
        }
        Ok(CanonicalIntent {
            actor: w.actor,
            action: w.action,
            key: ident("key", &w.key)?,
            chain_id: ident("chain_id", &w.chain_id)?,
            asset_id,
            amount_atomic,
            max_amount_atomic,
            payee,
            rationale: w.rationale,
            idempotency_key: id_rule("idempotency_key", &w.idempotency_key)?,
            request_expiry: w.request_expiry,
            correlation_id: w
                .correlation_id
                .as_deref()
                .map(|c| id_rule("correlation_id", c))
                .transpose()?
                .unwrap_or_default(),
            context_requires_approval: w.context_requires_approval,
            kes_period: w.kes_period,
            x402,
            solana,
            message_sha256: crate::hex(&Sha256::digest(&message)),
            message,
            claimed_message,
        })
    }

    /// Sets the message the signer signs (and its digest).
    pub fn set_message(&mut self, message: Vec<u8>) {
        self.message_sha256 = crate::hex(&Sha256::digest(&message));
        self.message = message;
    }

    /// The canonical bytes: JSON, keys sorted, no whitespace, UTF-8.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // serde_json's Value keeps object keys sorted (no preserve_order),
        // so going through a Value sorts every level.
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// SHA-256(domain ‖ canonical bytes), hex. What approvals bind to.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(HASH_DOMAIN);
        h.update(self.canonical_bytes());
        crate::hex(&h.finalize())
    }

    /// The wire form of this intent with `rationale` in place of its own:
    /// what the spend ledger stores (with the redacted rationale), and what
    /// [`CanonicalIntent::from_json`] reads back.
    pub fn to_wire(&self, rationale: &str) -> Value {
        let opt = |s: &str| if s.is_empty() { Value::Null } else { Value::from(s) };
        let mut v = serde_json::json!({
            "actor": self.actor, "action": self.action, "key": self.key, "chain_id": self.chain_id,
            "asset_id": opt(&self.asset_id), "amount_atomic": self.amount_atomic.to_string(),
            "max_amount_atomic": self.max_amount_atomic.to_string(), "payee": opt(&self.payee),
            "rationale": rationale, "idempotency_key": self.idempotency_key,
            "request_expiry": self.request_expiry, "correlation_id": opt(&self.correlation_id),
            "context_requires_approval": self.context_requires_approval,
            "message_hex": crate::hex(&self.message), "kes_period": self.kes_period,
        });
        if let Some(x) = &self.x402 {
            v["x402"] = serde_json::json!({"scheme_id": x.scheme_id, "payment_authority": x.payment_authority,
                                           "program_id": x.program_id, "version": x.version,
                                           "resource": x.resource});
        }
        if let Some(s) = &self.solana {
            v["solana"] = serde_json::to_value(s).unwrap_or(Value::Null);
        }
        if self.message.is_empty() {
            v["message_hex"] = Value::Null;
        }
        v
    }

    /// Who is paid or what is authorised, for prompts and audit: the
    /// caller's claim (`x402.payment_authority`).
    pub fn authority(&self) -> Option<&str> {
        self.x402.as_ref().map(|x| x.payment_authority.as_str())
    }

    /// Who settles the payment, as far as the signer can tell by itself:
    /// for a Solana payment the fee payer, which is in the signed bytes (only
    /// its holder can land the transaction); otherwise the claimed
    /// authority. The "authority changed" confirmation compares this, so an
    /// agent cannot avoid it by repeating a familiar URL.
    pub fn settlement_authority(&self) -> Option<&str> {
        match &self.solana {
            Some(s) => Some(s.fee_payer.as_str()),
            None => self.authority(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample() -> Value {
        json!({
            "actor": "agent", "action": "x402_payment", "key": "agent-hot",
            "chain_id": "solana:mainnet", "asset_id": "usdc", "amount_atomic": "250000",
            "max_amount_atomic": 300000, "payee": "MerchantPayee111", "rationale": "weather API call",
            "idempotency_key": "job-1", "request_expiry": 1_900_000_000u64, "correlation_id": "trace-1",
            "context_requires_approval": false, "message_hex": "00ff",
            "x402": {"scheme_id": "v2-solana-exact", "payment_authority": "HTTPS://Facilitator.Example/Settle/"},
            "solana": {"fee_payer": "EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd",
                       "recent_blockhash": "5Tx8F3jgSHx21CbtjwmdaKPLM5tWmreWAnPrbqHomSJF",
                       "last_valid_block_height": 1000}
        })
    }

    #[test]
    fn canonical_bytes_are_sorted_compact_and_stable() {
        let i = CanonicalIntent::from_json(&sample()).unwrap();
        let text = String::from_utf8(i.canonical_bytes()).unwrap();
        assert!(!text.contains(' ') || text.contains("weather API call"));
        assert!(text.starts_with("{\"action\":\"x402_payment\",\"actor\":\"agent\",\"amount_atomic\":\"250000\""));
        assert!(text.contains("\"payment_authority\":\"https://facilitator.example/Settle\""));
        assert!(text.contains("\"max_amount_atomic\":\"300000\""), "integers and strings canonicalize alike");
        // Reordering the input's keys changes nothing.
        let mut reordered = serde_json::Map::new();
        let obj = sample();
        for (k, v) in obj.as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        assert_eq!(CanonicalIntent::from_json(&Value::Object(reordered)).unwrap().hash(), i.hash());
    }

    #[test]
    fn the_wire_form_round_trips() {
        let i = CanonicalIntent::from_json(&sample()).unwrap();
        assert_eq!(CanonicalIntent::from_json(&i.to_wire(&i.rationale)).unwrap(), i);
        let mut sign = sample();
        sign["action"] = json!("sign");
        for k in ["x402", "asset_id", "payee", "correlation_id", "solana"] {
            sign.as_object_mut().unwrap().remove(k);
        }
        sign["amount_atomic"] = json!(0);
        sign["max_amount_atomic"] = json!("0");
        let i = CanonicalIntent::from_json(&sign).unwrap();
        assert_eq!(CanonicalIntent::from_json(&i.to_wire(&i.rationale)).unwrap(), i);
    }

    #[test]
    fn every_material_field_changes_the_hash() {
        let base = CanonicalIntent::from_json(&sample()).unwrap().hash();
        let edits: &[(&str, Value)] = &[
            ("amount_atomic", json!("250001")),
            ("payee", json!("OtherPayee")),
            ("message_hex", json!("00fe")),
            ("context_requires_approval", json!(true)),
            (
                "x402",
                json!({"scheme_id": "v1-solana-exact", "payment_authority": "https://facilitator.example/Settle"}),
            ),
            ("x402", json!({"scheme_id": "v2-solana-exact", "payment_authority": "https://other.example"})),
        ];
        for (field, v) in edits {
            let mut j = sample();
            j[*field] = v.clone();
            assert_ne!(CanonicalIntent::from_json(&j).unwrap().hash(), base, "{field}");
        }
    }

    #[test]
    fn malformed_intents_are_refused_with_the_field_named() {
        let cases: &[(&str, Value, &str)] = &[
            ("amount_atomic", json!("01"), "amount_atomic"),
            ("amount_atomic", json!("-1"), "amount_atomic"),
            ("amount_atomic", json!(1.5), "amount_atomic"),
            ("amount_atomic", json!("18446744073709551616"), "amount_atomic"),
            ("amount_atomic", json!("400000"), "amount_atomic"),
            ("payee", json!("pay\u{0}ee"), "payee"),
            ("payee", json!("pаyee"), "payee"),
            ("message_hex", json!("0g"), "message_hex"),
            (
                "x402",
                json!({"scheme_id": "v2-solana-exact", "payment_authority": "http://x"}),
                "x402.payment_authority",
            ),
            (
                "x402",
                json!({"scheme_id": "v2-solana-exact", "payment_authority": "https://u@x"}),
                "x402.payment_authority",
            ),
            ("rationale", json!("a\u{1b}[2J"), "rationale"),
        ];
        for (field, v, expect) in cases {
            let mut j = sample();
            j[*field] = v.clone();
            let e = CanonicalIntent::from_json(&j).unwrap_err();
            assert_eq!(e.field, *expect, "{field} = {v}");
            assert!(e.to_string().starts_with("DENY_INVALID_X402_INTENT: "));
        }
        let mut j = sample();
        j["surprise"] = json!(1);
        assert_eq!(CanonicalIntent::from_json(&j).unwrap_err().field, "intent");
        let mut j = sample();
        j.as_object_mut().unwrap().remove("x402");
        assert_eq!(CanonicalIntent::from_json(&j).unwrap_err().field, "x402");
        let mut j = sample();
        j.as_object_mut().unwrap().remove("solana");
        assert_eq!(CanonicalIntent::from_json(&j).unwrap_err().field, "solana", "a payment needs its transaction");
        let mut j = sample();
        j["solana"]["memo"] = json!("m".repeat(257));
        assert_eq!(CanonicalIntent::from_json(&j).unwrap_err().field, "solana.memo");
        let mut j = sample();
        j["action"] = json!("sign");
        j["amount_atomic"] = json!(0);
        j["max_amount_atomic"] = json!(0);
        j.as_object_mut().unwrap().remove("x402");
        assert_eq!(CanonicalIntent::from_json(&j).unwrap_err().field, "solana", "a plain signature has no transaction");
    }

    #[test]
    fn idempotency_keys_and_correlation_ids_that_could_be_secrets_are_refused() {
        // What `keyward x402 fetch` generates (crates/cli/src/x402_cmd.rs,
        // fresh_idempotency_key): `x402-` and 16 bytes of a SHA-256, in hex.
        let digest = Sha256::digest(b"keyward/x402-fetch/v1\0 GET https://api.example/ agent-hot nonce");
        let cli_key = format!("x402-{}", crate::hex(&digest[..16]));
        assert!(crate::redact::contains_secret_like(&cli_key), "the filter alone would refuse it");
        let accepted = [
            cli_key.as_str(),
            "job-1",
            "trace-1",
            "rt010-new",
            "550e8400-e29b-41d4-a716-446655440000",
            "550E8400-E29B-41D4-A716-446655440000",
            "order:550e8400-e29b-41d4-a716-446655440000",
            "tenant/acme/job-7",
            "agent@example.com",
            "2026-05-01T12:30:45Z",
            "a+b=c.d",
            "job_1",
            "job:ffff",
            &"k".repeat(128),
        ];
        let refused = [
            ("", "must be 1 to 128 characters"),
            (&"k".repeat(129), "must be 1 to 128 characters"),
            ("job 1", "must be characters of [A-Za-z0-9._:/@+=-]"),
            ("job#1", "must be characters of [A-Za-z0-9._:/@+=-]"),
            ("ключ", "must be characters of [A-Za-z0-9._:/@+=-]"),
            // An Ed25519 seed in hex, alone or behind a label.
            ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "looks like a secret"),
            ("x402-9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "looks like a secret"),
            // 33 hex digits is more than the label form allows; 16 bare ones
            // are a 64-bit secret, and hex labels do not make a label.
            ("x402-9d61b19deffd5a60ba844af492ec2cc44", "looks like a secret"),
            ("9d61b19deffd5a60", "looks like a secret"),
            ("deadbeef-9d61b19deffd5a60ba844af492ec2cc4", "looks like a secret"),
            // A secret-looking label in front of a UUID.
            ("9d61b19deffd5a60ba844af4-550e8400-e29b-41d4-a716-446655440000", "looks like a secret"),
            ("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", "looks like a secret"),
            ("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=", "looks like a secret"),
            ("de:ad:be:ef:9d:61:b1:9d:ef:fd:5a:60:ba:84:4a:f4", "looks like a secret"),
        ];
        for field in ["idempotency_key", "correlation_id"] {
            for ok in accepted {
                let mut j = sample();
                j[field] = json!(ok);
                let i = CanonicalIntent::from_json(&j).unwrap_or_else(|e| panic!("{field} = {ok}: {e}"));
                let kept = if field == "idempotency_key" { &i.idempotency_key } else { &i.correlation_id };
                assert_eq!(kept, ok, "kept verbatim");
            }
            for (value, why) in &refused {
                let mut j = sample();
                j[field] = json!(value);
                let e = CanonicalIntent::from_json(&j).unwrap_err();
                assert_eq!(e.field, field, "{value}");
                assert!(e.why.starts_with(why), "{field} = {value}: {}", e.why);
                let text = e.to_string();
                assert!(text.starts_with("DENY_INVALID_X402_INTENT: "), "{text}");
                assert!(value.is_empty() || !text.contains(*value), "the value is never echoed: {text}");
            }
        }
    }

    #[test]
    fn recorded_intents_from_before_the_identifier_rule_still_replay() {
        let mut j = sample();
        j["idempotency_key"] = json!("job#1");
        j["correlation_id"] = json!("9d61b19deffd5a60ba844af492ec2cc4");
        assert_eq!(CanonicalIntent::from_json(&j).unwrap_err().field, "idempotency_key");
        let recorded = CanonicalIntent::from_recorded_json(&j).unwrap();
        assert_eq!(
            (recorded.idempotency_key.as_str(), recorded.correlation_id.as_str()),
            ("job#1", j["correlation_id"].as_str().unwrap())
        );
        // Everything else is held to the same rules.
        j["payee"] = json!("pay ee");
        assert_eq!(CanonicalIntent::from_recorded_json(&j).unwrap_err().field, "payee");
    }

    #[test]
    fn origins_are_scheme_and_host_only() {
        assert_eq!(origin("HTTPS://Api.Example:8443/x?q=1#f").as_deref(), Some("https://api.example:8443"));
        assert_eq!(origin("http://127.0.0.1:9/").as_deref(), Some("http://127.0.0.1:9"));
        for bad in ["ftp://x/", "https://", "https://trusted.example@evil.example/", "no-scheme"] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn message_bytes_sent_with_a_payment_are_only_a_claim() {
        let i = CanonicalIntent::from_json(&sample()).unwrap();
        assert_eq!(i.claimed_message.as_deref(), Some(&[0x00, 0xff][..]));
        let mut j = sample();
        j.as_object_mut().unwrap().remove("message_hex");
        let i = CanonicalIntent::from_json(&j).unwrap();
        assert!(i.message.is_empty() && i.claimed_message.is_none());
    }
}
