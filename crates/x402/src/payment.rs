//! The payment header the client sends back, and its decoder.
//!
//! v2 servers and facilitators compare `accepted` with the requirement they
//! issued, field by field and including keys we do not understand (the TS
//! server with `deepEqual`, x402-rs with `==`). So `accepted` is the raw
//! JSON of the chosen entry, never a re-serialisation of our parsed view.
//! The decoder exists for the local proxy, the test facilitator and tests.

use serde_json::{Map, Value};

use crate::challenge::{Challenge, Requirement};
use crate::error::{X402Error, codes};
use crate::json::{b64_decode, b64_encode, parse_strict, trim_ows};
use crate::{MAX_HEADER_BYTES, Version, headers};

/// Upper bound of a Solana wire transaction (`PACKET_DATA_SIZE`).
const MAX_TRANSACTION_BYTES: usize = 1232;

/// A decoded `X-PAYMENT` / `PAYMENT-SIGNATURE` value.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentPayload {
    /// Version named by the header and by its `x402Version`.
    pub version: Version,
    /// v1 `scheme`; v2 `accepted.scheme`.
    pub scheme: String,
    /// v1 `network`; v2 `accepted.network`.
    pub network: String,
    /// v2: the echoed requirement, verbatim.
    pub accepted: Option<Value>,
    /// v2: the echoed `resource` object, verbatim.
    pub resource: Option<Value>,
    /// `payload.transaction`: base64 (standard, padded) wire transaction.
    pub transaction: String,
}

/// The payment header `(name, value)` for `req` of `c` and a base64 wire transaction.
///
/// v1: `X-PAYMENT` = base64 of `{x402Version:1, scheme, network, payload:{transaction}}`.
/// v2: `PAYMENT-SIGNATURE` = base64 of `{x402Version:2, resource, accepted, payload:{transaction}, extensions}`
/// where `accepted` is `req.raw` unchanged and `resource` / `extensions` are
/// the challenge's (omitted when it had none). `req` should be an entry of
/// `c`, and `transaction_base64` the codec's output; neither is re-checked.
pub fn payment_header(c: &Challenge, req: &Requirement, transaction_base64: &str) -> (&'static str, String) {
    let mut doc = Map::new();
    doc.insert("x402Version".into(), Value::from(c.version.number()));
    let payload = Value::Object(Map::from_iter([("transaction".to_owned(), Value::from(transaction_base64))]));
    let name = match c.version {
        Version::V1 => {
            doc.insert("scheme".into(), Value::from(req.scheme.as_str()));
            doc.insert("network".into(), Value::from(req.network.as_str()));
            doc.insert("payload".into(), payload);
            headers::X_PAYMENT
        }
        Version::V2 => {
            if let Some(resource) = &c.raw_resource {
                doc.insert("resource".into(), resource.clone());
            }
            doc.insert("accepted".into(), req.raw.clone());
            doc.insert("payload".into(), payload);
            if let Some(extensions) = &c.extensions {
                doc.insert("extensions".into(), extensions.clone());
            }
            headers::PAYMENT_SIGNATURE
        }
    };
    (name, b64_encode(Value::Object(doc).to_string().as_bytes()))
}

fn bad(detail: impl Into<String>) -> X402Error {
    X402Error::new(codes::HEADER_MALFORMED, detail)
}

/// Decodes a payment header value; `name` (case-insensitive) selects the version.
pub fn parse_payment_header(name: &str, value: &str) -> Result<PaymentPayload, X402Error> {
    let version = if name.eq_ignore_ascii_case(headers::X_PAYMENT) {
        Version::V1
    } else if name.eq_ignore_ascii_case(headers::PAYMENT_SIGNATURE) {
        Version::V2
    } else {
        return Err(bad("name: not X-PAYMENT or PAYMENT-SIGNATURE"));
    };
    if value.len() > MAX_HEADER_BYTES {
        return Err(bad("value: over MAX_HEADER_BYTES"));
    }
    let bytes = b64_decode(trim_ows(value)).ok_or_else(|| bad("value: not standard padded base64"))?;
    let doc = parse_strict(&bytes).map_err(|e| bad(format!("value: {}", e.describe())))?;
    let obj = doc.as_object().ok_or_else(|| bad("value: not a JSON object"))?;
    if obj.get("x402Version").and_then(Value::as_u64) != Some(u64::from(version.number())) {
        return Err(bad("x402Version: does not match the header name"));
    }
    let transaction = match obj.get("payload") {
        Some(Value::Object(p)) => string_field(p, "transaction", "payload.transaction")?,
        _ => return Err(bad("payload: missing or not an object")),
    };
    if transaction.is_empty() || b64_decode(&transaction).is_none_or(|tx| tx.len() > MAX_TRANSACTION_BYTES) {
        return Err(bad("payload.transaction: not base64 of at most 1232 bytes"));
    }
    match version {
        Version::V1 => Ok(PaymentPayload {
            version,
            scheme: string_field(obj, "scheme", "scheme")?,
            network: string_field(obj, "network", "network")?,
            accepted: None,
            resource: None,
            transaction,
        }),
        Version::V2 => {
            let accepted = match obj.get("accepted") {
                Some(Value::Object(a)) => a,
                _ => return Err(bad("accepted: missing or not an object")),
            };
            let resource = match obj.get("resource") {
                None | Some(Value::Null) => None,
                Some(r @ Value::Object(_)) => Some(r.clone()),
                Some(_) => return Err(bad("resource: not an object")),
            };
            Ok(PaymentPayload {
                version,
                scheme: string_field(accepted, "scheme", "accepted.scheme")?,
                network: string_field(accepted, "network", "accepted.network")?,
                accepted: Some(Value::Object(accepted.clone())),
                resource,
                transaction,
            })
        }
    }
}

fn string_field(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, X402Error> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(bad(format!("{path}: missing or not a string"))),
    }
}
