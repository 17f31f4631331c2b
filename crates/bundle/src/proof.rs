//! Proof signatures (seed 000 §4.6.1.2): Ed25519 over a proof's canonical
//! JSON, carried in a signature bundle the toolkit reads unchanged:
//!
//! ```json
//! {"algorithm":"Ed25519","key_id":"<8 hex>","public_key":"<64 hex>",
//!  "signature":"<128 hex>","timestamp":"<ISO 8601>"}
//! ```
//!
//! The message is `json.dumps(proof, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)` of the proof without any `signature` member. Signing
//! refuses a proof that already carries one (re-signing a signed proof would
//! sign a different message than a verifier reconstructs). Signing itself
//! happens in `keywardd`; this module builds and checks the public parts.

use crate::hex;
use crate::json::{self, Ascii, Value};
use crate::verify::ct_eq;

/// The algorithm name the toolkit writes and requires.
pub const ALGORITHM: &str = "Ed25519";

/// A proof-signature failure: a stable code and a fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofError {
    pub code: &'static str,
    pub message: &'static str,
}

const fn err(code: &'static str, message: &'static str) -> ProofError {
    ProofError { code, message }
}

/// The bytes to sign for `proof`, refusing a proof that is not an object or
/// already carries a `signature`.
pub fn message_to_sign(proof: &Value) -> Result<Vec<u8>, ProofError> {
    let members = proof.as_object().ok_or(err("PROOF_MALFORMED", "the proof is not a JSON object"))?;
    if members.iter().any(|(k, _)| k == "signature") {
        return Err(err("PROOF_ALREADY_SIGNED", "the proof already contains a signature field"));
    }
    Ok(proof.canonical(Ascii::Literal))
}

/// The bytes a verifier reconstructs: the proof without its `signature`.
pub fn message_to_verify(proof: &Value) -> Result<Vec<u8>, ProofError> {
    let members = proof.as_object().ok_or(err("PROOF_MALFORMED", "the proof is not a JSON object"))?;
    let rest: Vec<(String, Value)> = members.iter().filter(|(k, _)| k != "signature").cloned().collect();
    Ok(Value::Object(rest).canonical(Ascii::Literal))
}

/// The toolkit's key id: the first 8 hex digits of SHA-256(public key).
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex::sha256(public_key)[..8].to_string()
}

/// The signature bundle for a signature made by `public_key` at `timestamp`.
pub fn signature_bundle(signature: &[u8; 64], public_key: &[u8; 32], timestamp: &str) -> Value {
    json::object([
        ("algorithm", json::string(ALGORITHM)),
        ("key_id", json::string(key_id(public_key))),
        ("public_key", json::string(hex::encode(public_key))),
        ("signature", json::string(hex::encode(signature))),
        ("timestamp", json::string(timestamp)),
    ])
}

/// Verifies a signature bundle on `proof`. With `expected_key`, the bundle's
/// key must be that key (compared in constant time).
pub fn verify(proof: &Value, bundle: &Value, expected_key: Option<&[u8; 32]>) -> Result<[u8; 32], ProofError> {
    let members = bundle.as_object().ok_or(err("SIGNATURE_MALFORMED", "the signature bundle is not a JSON object"))?;
    const FIELDS: [&str; 5] = ["algorithm", "key_id", "public_key", "signature", "timestamp"];
    if FIELDS.iter().any(|f| !members.iter().any(|(k, v)| k == f && v.as_str().is_some())) {
        return Err(err("SIGNATURE_INCOMPLETE", "the signature bundle lacks a required field"));
    }
    if members.len() != FIELDS.len() {
        return Err(err("SIGNATURE_MALFORMED", "the signature bundle has a field it must not have"));
    }
    let field = |k: &str| bundle.get(k).and_then(Value::as_str).unwrap_or("");
    if field("algorithm") != ALGORITHM {
        return Err(err("ALGORITHM_UNSUPPORTED", "the algorithm is not Ed25519"));
    }
    let pk: [u8; 32] =
        hex::decode(field("public_key")).ok_or(err("KEY_INVALID", "public_key is not 64 lowercase hex digits"))?;
    let sig: [u8; 64] = hex::decode(field("signature"))
        .ok_or(err("SIGNATURE_MALFORMED", "signature is not 128 lowercase hex digits"))?;
    if !ct_eq(&key_id(&pk), field("key_id")) {
        return Err(err("IDENTITY_MISMATCH", "key_id does not belong to public_key"));
    }
    if let Some(expected) = expected_key
        && !ct_eq(&hex::encode(expected), field("public_key"))
    {
        return Err(err("KEY_MISMATCH", "the proof was signed by another key"));
    }
    sigverify::verify(&pk, &message_to_verify(proof)?, &sig)
        .map_err(|_| err("SIGNATURE_INVALID", "the Ed25519 signature does not verify"))?;
    Ok(pk)
}

/// Python's `datetime.now(timezone.utc).isoformat()` for `since_epoch`:
/// `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` (microseconds only when non-zero).
pub fn isoformat_utc(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let micros = since_epoch.subsec_micros();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let frac = if micros == 0 { String::new() } else { format!(".{micros:06}") };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{frac}+00:00")
}
