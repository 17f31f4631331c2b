//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A header getter over `(name, value)` pairs, case-insensitive like HTTP.
pub fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
    move |name: &str| pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

pub fn no_headers(_: &str) -> Option<String> {
    None
}

/// A getter that serves `json` (text, as is) base64-encoded as `PAYMENT-REQUIRED`.
pub fn v2_header(json: &[u8]) -> impl Fn(&str) -> Option<String> {
    let value = b64(json);
    move |name: &str| name.eq_ignore_ascii_case("payment-required").then(|| value.clone())
}

/// The v2 fixture with `accepts[0][key]` replaced by `value`.
pub fn v2_with(key: &str, value: Value) -> Vec<u8> {
    let mut doc = fixture_json("v2_required_no_memo.json");
    doc["accepts"][0][key] = value;
    doc.to_string().into_bytes()
}
