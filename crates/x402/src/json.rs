//! Strict JSON and base64 for hostile input.
//!
//! `serde_json` keeps the *last* of two equal keys and says nothing. For a
//! payment that is a trap: a server (or a proxy on the way) can send
//! `{"amount":"1","amount":"1000000"}`, and two parsers that pick different
//! copies will disagree about the price. We therefore build every
//! [`Value`] through our own visitor, which refuses a repeated key at any
//! depth. `serde_json` still does the tokenising, UTF-8 checking and its
//! recursion limit (128), and the callers bound the input size before we
//! get here.
//!
//! Base64 is RFC 4648 standard alphabet with canonical `=` padding (what
//! the TypeScript, Go and Rust reference implementations emit); URL-safe
//! text, missing padding and non-zero trailing bits are refused.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why strict parsing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON (syntax, truncation, invalid UTF-8, nesting too deep, trailing data).
    Syntax,
    /// The same key twice in one object.
    DuplicateKey,
}

impl JsonError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            JsonError::Syntax => "not valid JSON",
            JsonError::DuplicateKey => "duplicate JSON key",
        }
    }
}

/// Parses one JSON document, refusing duplicate keys and trailing data.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match StrictValue::deserialize(&mut de) {
        Ok(StrictValue(v)) => v,
        // Our visitor accepts every JSON shape; its only custom ("data")
        // error is the duplicate key.
        Err(e) if e.classify() == serde_json::error::Category::Data => return Err(JsonError::DuplicateKey),
        Err(_) => return Err(JsonError::Syntax),
    };
    de.end().map_err(|_| JsonError::Syntax)?;
    Ok(value)
}

/// Decodes standard base64 with canonical padding.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s.as_bytes()).ok()
}

/// Encodes standard base64 with padding.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Strips HTTP optional whitespace (SP / HTAB) around a header value.
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite float from text.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|s| s.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                // Deliberately does not name the key: it is server text.
                return Err(de::Error::custom("duplicate key"));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_rejected_at_any_depth() {
        assert_eq!(parse_strict(br#"{"a":1,"a":1}"#), Err(JsonError::DuplicateKey));
        assert_eq!(parse_strict(br#"{"x":[{"b":{"c":1,"c":2}}]}"#), Err(JsonError::DuplicateKey));
        // Escapes that decode to the same key are the same key.
        assert_eq!(parse_strict(br#"{"a":1,"\u0061":2}"#), Err(JsonError::DuplicateKey));
        assert!(parse_strict(br#"{"a":{"a":1},"b":[1,2.5,-3,null,true,"s"]}"#).is_ok());
    }

    #[test]
    fn syntax_and_trailing_data_rejected() {
        assert_eq!(parse_strict(b"{} {}"), Err(JsonError::Syntax));
        assert_eq!(parse_strict(b"{\"a\":"), Err(JsonError::Syntax));
        assert_eq!(parse_strict(b"\"\xff\""), Err(JsonError::Syntax));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse_strict(deep.as_bytes()), Err(JsonError::Syntax));
    }

    #[test]
    fn base64_is_standard_and_padded() {
        assert_eq!(b64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(b64_decode("aGk"), None);
        assert_eq!(b64_decode("-_8="), None);
        assert_eq!(b64_decode("aGl="), None, "non-zero trailing bits");
    }
}
