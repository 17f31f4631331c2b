//! The settlement receipt (`PAYMENT-RESPONSE`, v1 `X-PAYMENT-RESPONSE`).
//!
//! A receipt is what the server says happened; it does not move money, so
//! the parser is tolerant of unknown keys and of both spellings of the
//! failure reason (`errorReason` per the spec, `error_reason` as x402-rs v1
//! writes it). It is still bounded and strict about types and duplicate
//! keys, and a success without a transaction signature is refused: the
//! caller needs that signature to tie the receipt to the payment.

use serde_json::{Map, Value};

use crate::error::{X402Error, codes};
use crate::json::{b64_decode, b64_encode, parse_strict, trim_ows};
use crate::{MAX_HEADER_BYTES, Version, headers};

/// A decoded settlement response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Whether the facilitator settled the payment.
    pub success: bool,
    /// Base58 transaction signature; may be empty on failure.
    pub transaction: String,
    /// Network as written by the server.
    pub network: String,
    /// The payer the server reports (implementations report the token authority).
    pub payer: Option<String>,
    /// `errorReason` / `error_reason`.
    pub error_reason: Option<String>,
}

fn bad(detail: impl Into<String>) -> X402Error {
    X402Error::new(codes::RECEIPT_MALFORMED, detail)
}

fn header_name(version: Version) -> &'static str {
    match version {
        Version::V1 => headers::X_PAYMENT_RESPONSE,
        Version::V2 => headers::PAYMENT_RESPONSE,
    }
}

/// Reads the receipt header for `version`; `Ok(None)` when it is absent.
pub fn parse_receipt(version: Version, header: impl Fn(&str) -> Option<String>) -> Result<Option<Receipt>, X402Error> {
    let Some(value) = header(header_name(version)) else {
        return Ok(None);
    };
    if value.len() > MAX_HEADER_BYTES {
        return Err(bad("value: over MAX_HEADER_BYTES"));
    }
    let bytes = b64_decode(trim_ows(&value)).ok_or_else(|| bad("value: not standard padded base64"))?;
    let doc = parse_strict(&bytes).map_err(|e| bad(format!("value: {}", e.describe())))?;
    let obj = doc.as_object().ok_or_else(|| bad("value: not a JSON object"))?;

    let success =
        obj.get("success").and_then(Value::as_bool).ok_or_else(|| bad("success: missing or not a boolean"))?;
    let transaction = match obj.get("transaction") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) if !success => String::new(),
        _ => return Err(bad("transaction: missing or not a string")),
    };
    if success && transaction.is_empty() {
        return Err(bad("transaction: empty on success"));
    }
    if !transaction.is_empty() && !crate::base58_shape(&transaction, 64, 88) {
        return Err(bad("transaction: not a base58 signature"));
    }
    let network = match obj.get("network") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) if !success => String::new(),
        _ => return Err(bad("network: missing or not a string")),
    };
    let payer = opt_string(obj, "payer")?.filter(|p| !p.is_empty());
    if payer.as_deref().is_some_and(|p| !crate::base58_shape(p, 32, 44)) {
        return Err(bad("payer: not a base58 address"));
    }
    let error_reason = match (opt_string(obj, "errorReason")?, opt_string(obj, "error_reason")?) {
        (Some(_), Some(_)) => return Err(bad("errorReason and error_reason: both present")),
        (a, b) => a.or(b),
    };
    Ok(Some(Receipt { success, transaction, network, payer, error_reason }))
}

/// The receipt header `(name, value)` for `version`, as the test resource server sends it.
///
/// Writes `errorReason` (the spec spelling) and omits absent optional fields.
pub fn encode_receipt(version: Version, r: &Receipt) -> (&'static str, String) {
    let mut doc = Map::new();
    doc.insert("success".into(), Value::Bool(r.success));
    doc.insert("transaction".into(), Value::from(r.transaction.as_str()));
    doc.insert("network".into(), Value::from(r.network.as_str()));
    if let Some(payer) = &r.payer {
        doc.insert("payer".into(), Value::from(payer.as_str()));
    }
    if let Some(reason) = &r.error_reason {
        doc.insert("errorReason".into(), Value::from(reason.as_str()));
    }
    (header_name(version), b64_encode(Value::Object(doc).to_string().as_bytes()))
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, X402Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{key}: not a string"))),
    }
}
