//! Reading a 402 challenge.
//!
//! The server is the adversary here: it chooses the price, the payee and
//! every byte we parse. So the money fields (amount, asset, payee, fee
//! payer, network, memo) are parsed strictly and anything ambiguous is
//! refused: a repeated JSON key, an amount that two parsers could read
//! differently (`"01"`, `"1e3"`, `" 1"`), a v2 entry using v1 names, or a
//! v2 header and a v1 body that quote different prices. Everything the
//! spec says a client must tolerate (unknown `extra` keys such as
//! `features` or `recentBlockhash`, unknown top-level keys and
//! `extensions`) is kept untouched in [`Requirement::raw`] and
//! [`Challenge::extensions`], because v2 requires the chosen entry to be
//! echoed back exactly as received.

use serde_json::{Map, Value};

use crate::error::{X402Error, codes};
use crate::json::{b64_decode, b64_encode, parse_strict, trim_ows};
use crate::networks::caip2_of;
use crate::{MAX_ACCEPTS, MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_MEMO_BYTES, Version, headers};

/// One `accepts[]` entry, normalised, plus its raw JSON for verbatim echo.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// Payment scheme, e.g. `exact`.
    pub scheme: String,
    /// Network as written by the server (v1 name or CAIP-2 id).
    pub network: String,
    /// [`crate::caip2_of`] of `network`: `Some` only for Solana networks.
    pub caip2: Option<String>,
    /// v1 `maxAmountRequired` / v2 `amount`, in atomic units; always > 0.
    pub amount: u64,
    /// Token mint (base58 for Solana entries).
    pub asset: String,
    /// Payee wallet (base58 for Solana entries).
    pub pay_to: String,
    /// `maxTimeoutSeconds`.
    pub max_timeout_seconds: u64,
    /// `extra.feePayer` (base58 for Solana entries).
    pub fee_payer: Option<String>,
    /// `extra.memo`, at most [`MAX_MEMO_BYTES`] UTF-8 bytes.
    pub memo: Option<String>,
    /// v1 only: the entry's `resource` URL.
    pub resource: Option<String>,
    /// The entry's `description`; for v2, else the top-level `resource.description`.
    pub description: Option<String>,
    /// The entry exactly as received.
    pub raw: Value,
}

/// A parsed 402 challenge (`PaymentRequired`).
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// Protocol version of the challenge.
    pub version: Version,
    /// v2 `resource.url`; v1 the first entry's `resource`.
    pub resource_url: Option<String>,
    /// The entries, in server order (1..=[`MAX_ACCEPTS`]).
    pub accepts: Vec<Requirement>,
    /// The server's `error` text (display it only through `policy::redact::display_safe`).
    pub error: Option<String>,
    /// v2 `resource` object, verbatim.
    pub raw_resource: Option<Value>,
    /// v2 `extensions` object, verbatim.
    pub extensions: Option<Value>,
}

fn malformed(detail: impl Into<String>) -> X402Error {
    X402Error::new(codes::CHALLENGE_MALFORMED, detail)
}

fn inconsistent(detail: impl Into<String>) -> X402Error {
    X402Error::new(codes::CHALLENGE_INCONSISTENT, detail)
}

/// Reads a challenge from a 402 response.
///
/// `header` looks a response header up by case-insensitive name; `body` is
/// the response body. The v2 `PAYMENT-REQUIRED` header wins; without it the
/// body must be a v1 challenge (`x402Version` 1). When both a v2 header and
/// a body that is itself an x402 challenge are present, the body must be
/// v1 and quote the same entries (scheme, network, amount, asset, payTo),
/// otherwise the challenge is refused as inconsistent. A body next to a
/// header is ignored when it is not JSON with an `x402Version` key or is
/// larger than [`MAX_BODY_BYTES`].
pub fn parse_challenge(header: impl Fn(&str) -> Option<String>, body: &[u8]) -> Result<Challenge, X402Error> {
    if let Some(value) = header(headers::PAYMENT_REQUIRED) {
        let challenge = parse_v2_header(&value)?;
        if looks_like_challenge(body) {
            let other = parse_body(body)?;
            check_agree(&challenge, &other)?;
        }
        return Ok(challenge);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(X402Error::new(codes::CHALLENGE_TOO_LARGE, "body: over MAX_BODY_BYTES"));
    }
    if !looks_like_challenge(body) {
        return Err(X402Error::new(codes::CHALLENGE_MISSING, "no PAYMENT-REQUIRED header and no x402 body"));
    }
    parse_body(body)
}

/// Base64 (standard, padded) of the compact JSON of `value`: a `PAYMENT-REQUIRED` value.
pub fn encode_challenge_v2(value: &Value) -> String {
    b64_encode(value.to_string().as_bytes())
}

/// The `exact` entries on Solana networks, in server order, and the skipped
/// entries with their index and reason (`X402_SCHEME_UNSUPPORTED`,
/// `X402_NETWORK_UNSUPPORTED`, or `X402_FEE_PAYER_MISSING` for a Solana
/// `exact` entry without `extra.feePayer`). Choosing among the candidates is
/// policy's job.
pub fn solana_exact_candidates(c: &Challenge) -> (Vec<&Requirement>, Vec<(usize, &'static str)>) {
    let mut candidates = Vec::new();
    let mut skipped = Vec::new();
    for (i, r) in c.accepts.iter().enumerate() {
        if r.scheme != "exact" {
            skipped.push((i, codes::SCHEME_UNSUPPORTED));
        } else if r.caip2.is_none() {
            skipped.push((i, codes::NETWORK_UNSUPPORTED));
        } else if r.fee_payer.is_none() {
            skipped.push((i, codes::FEE_PAYER_MISSING));
        } else {
            candidates.push(r);
        }
    }
    (candidates, skipped)
}

fn parse_v2_header(value: &str) -> Result<Challenge, X402Error> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(X402Error::new(codes::CHALLENGE_TOO_LARGE, "PAYMENT-REQUIRED: over MAX_HEADER_BYTES"));
    }
    let bytes = b64_decode(trim_ows(value)).ok_or_else(|| malformed("PAYMENT-REQUIRED: not standard padded base64"))?;
    let doc = parse_strict(&bytes).map_err(|e| malformed(format!("PAYMENT-REQUIRED: {}", e.describe())))?;
    match version_of(&doc)? {
        2 => parse_document(&doc, Version::V2),
        _ => Err(inconsistent("PAYMENT-REQUIRED: x402Version is not 2")),
    }
}

fn parse_body(body: &[u8]) -> Result<Challenge, X402Error> {
    let doc = parse_strict(body).map_err(|e| malformed(format!("body: {}", e.describe())))?;
    match version_of(&doc)? {
        1 => parse_document(&doc, Version::V1),
        _ => Err(inconsistent("body: x402Version is not 1")),
    }
}

/// Cheap, lenient test: is `body` a JSON object with an `x402Version` key?
fn looks_like_challenge(body: &[u8]) -> bool {
    body.len() <= MAX_BODY_BYTES
        && matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(m)) if m.contains_key("x402Version"))
}

fn version_of(doc: &Value) -> Result<u64, X402Error> {
    let obj = doc.as_object().ok_or_else(|| malformed("challenge: not a JSON object"))?;
    obj.get("x402Version")
        .ok_or_else(|| malformed("x402Version: missing"))?
        .as_u64()
        .ok_or_else(|| malformed("x402Version: not a non-negative integer"))
}

fn parse_document(doc: &Value, version: Version) -> Result<Challenge, X402Error> {
    let obj = doc.as_object().ok_or_else(|| malformed("challenge: not a JSON object"))?;
    let entries = match obj.get("accepts") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(malformed("accepts: not an array")),
        None => return Err(malformed("accepts: missing")),
    };
    if entries.is_empty() {
        return Err(malformed("accepts: empty"));
    }
    if entries.len() > MAX_ACCEPTS {
        return Err(X402Error::new(codes::CHALLENGE_TOO_LARGE, "accepts: more than MAX_ACCEPTS entries"));
    }
    let error = opt_string(obj, "error", "error")?;

    let (raw_resource, resource_url, resource_description, extensions) = match version {
        Version::V1 => (None, None, None, None),
        Version::V2 => {
            let (raw, url, description) = match obj.get("resource") {
                None | Some(Value::Null) => (None, None, None),
                Some(r @ Value::Object(m)) => {
                    let url =
                        opt_string(m, "url", "resource.url")?.ok_or_else(|| malformed("resource.url: missing"))?;
                    (Some(r.clone()), Some(url), opt_string(m, "description", "resource.description")?)
                }
                Some(_) => return Err(malformed("resource: not an object")),
            };
            let extensions = match obj.get("extensions") {
                None | Some(Value::Null) => None,
                Some(e @ Value::Object(_)) => Some(e.clone()),
                Some(_) => return Err(malformed("extensions: not an object")),
            };
            (raw, url, description, extensions)
        }
    };

    let mut accepts = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let mut r = parse_requirement(entry, i, version)?;
        if r.description.is_none() {
            r.description.clone_from(&resource_description);
        }
        accepts.push(r);
    }
    let resource_url = match version {
        Version::V1 => accepts[0].resource.clone(),
        Version::V2 => resource_url,
    };
    Ok(Challenge { version, resource_url, accepts, error, raw_resource, extensions })
}

fn parse_requirement(entry: &Value, i: usize, version: Version) -> Result<Requirement, X402Error> {
    let field = |name: &str| format!("accepts[{i}].{name}");
    let obj = entry.as_object().ok_or_else(|| malformed(format!("accepts[{i}]: not an object")))?;

    let scheme = req_string(obj, "scheme", &field("scheme"))?;
    if scheme.is_empty() {
        return Err(malformed(format!("{}: empty", field("scheme"))));
    }
    let network = req_string(obj, "network", &field("network"))?;
    // CAIP-2 ids always contain ':' and v1 names never do.
    match (version, network.contains(':')) {
        (Version::V1, true) => return Err(inconsistent(format!("{}: CAIP-2 id in a v1 challenge", field("network")))),
        (Version::V2, false) => return Err(inconsistent(format!("{}: v1 name in a v2 challenge", field("network")))),
        _ => {}
    }
    let caip2 = caip2_of(&network);
    let solana = caip2.is_some();

    let (amount_key, other_key) = match version {
        Version::V1 => ("maxAmountRequired", "amount"),
        Version::V2 => ("amount", "maxAmountRequired"),
    };
    if obj.contains_key(other_key) {
        return Err(inconsistent(format!("{}: field of the other protocol version", field(other_key))));
    }
    let amount = match obj.get(amount_key) {
        Some(Value::String(s)) => parse_amount(s)
            .map_err(|why| X402Error::new(codes::AMOUNT_INVALID, format!("{}: {why}", field(amount_key))))?,
        Some(_) => return Err(X402Error::new(codes::AMOUNT_INVALID, format!("{}: not a string", field(amount_key)))),
        None => return Err(malformed(format!("{}: missing", field(amount_key)))),
    };

    let asset = address(obj, "asset", &field("asset"), solana)?
        .ok_or_else(|| malformed(format!("{}: missing", field("asset"))))?;
    let pay_to = address(obj, "payTo", &field("payTo"), solana)?
        .ok_or_else(|| malformed(format!("{}: missing", field("payTo"))))?;
    let max_timeout_seconds = match obj.get("maxTimeoutSeconds") {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| malformed(format!("{}: not a non-negative integer", field("maxTimeoutSeconds"))))?,
        None => return Err(malformed(format!("{}: missing", field("maxTimeoutSeconds")))),
    };

    let (fee_payer, memo) = match obj.get("extra") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(extra)) => {
            let fee_payer = address(extra, "feePayer", &field("extra.feePayer"), solana)?;
            let memo = opt_string(extra, "memo", &field("extra.memo"))?;
            if memo.as_ref().is_some_and(|m| m.len() > MAX_MEMO_BYTES) {
                return Err(X402Error::new(
                    codes::MEMO_TOO_LONG,
                    format!("{}: over MAX_MEMO_BYTES", field("extra.memo")),
                ));
            }
            (fee_payer, memo)
        }
        Some(_) => return Err(malformed(format!("{}: not an object", field("extra")))),
    };

    let resource = match version {
        Version::V1 => opt_string(obj, "resource", &field("resource"))?,
        Version::V2 => None,
    };
    let description = opt_string(obj, "description", &field("description"))?;

    Ok(Requirement {
        scheme,
        network,
        caip2,
        amount,
        asset,
        pay_to,
        max_timeout_seconds,
        fee_payer,
        memo,
        resource,
        description,
        raw: entry.clone(),
    })
}

/// A canonical decimal `u64` greater than zero: ASCII digits only, no sign,
/// no leading zero, no whitespace, no exponent or fraction.
pub(crate) fn parse_amount(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not ASCII decimal digits");
    }
    if s == "0" {
        return Err("zero");
    }
    if s.starts_with('0') {
        return Err("leading zero");
    }
    s.parse::<u64>().map_err(|_| "does not fit u64")
}

fn req_string(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, X402Error> {
    opt_string(obj, key, path)?.ok_or_else(|| malformed(format!("{path}: missing")))
}

/// Absent or `null` is `None`; a string is `Some`; anything else is malformed.
fn opt_string(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, X402Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(format!("{path}: not a string"))),
    }
}

/// An optional address; on a Solana entry it must look like a base58 key.
fn address(obj: &Map<String, Value>, key: &str, path: &str, solana: bool) -> Result<Option<String>, X402Error> {
    let value = opt_string(obj, key, path)?;
    if solana && value.as_deref().is_some_and(|s| !crate::base58_shape(s, 32, 44)) {
        return Err(malformed(format!("{path}: not a base58 address")));
    }
    Ok(value)
}

/// Refuses a v2 header and a v1 body that do not quote the same entries.
fn check_agree(header: &Challenge, body: &Challenge) -> Result<(), X402Error> {
    if header.accepts.len() != body.accepts.len() {
        return Err(inconsistent("header and body: different number of accepts entries"));
    }
    for (i, (h, b)) in header.accepts.iter().zip(&body.accepts).enumerate() {
        let network_agrees = match (&h.caip2, &b.caip2) {
            (Some(x), Some(y)) => x == y,
            (None, None) => true, // non-Solana names cannot be mapped; we never pay them
            _ => false,
        };
        if h.scheme != b.scheme || h.amount != b.amount || h.asset != b.asset || h.pay_to != b.pay_to || !network_agrees
        {
            return Err(inconsistent(format!("header and body: accepts[{i}] differ")));
        }
    }
    Ok(())
}
