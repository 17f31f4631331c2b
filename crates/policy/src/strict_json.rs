//! Strict JSON for what callers send (intents, IPC request bodies).
//!
//! `serde_json::Value` accepts an object with the same key twice and keeps
//! the last value, so two components (or a signer and a log reader) can read
//! one text as two different requests. [`parse`] refuses that, at any depth,
//! and bounds what it reads:
//!
//! | refusal | code |
//! | --- | --- |
//! | an object key that occurs twice (after unescaping: `"a"` and `"\u0061"` are one key) | `KW_JSON_DUPLICATE_KEY` |
//! | more than [`MAX_DEPTH`] (64) nested arrays and objects | `KW_JSON_TOO_DEEP` |
//! | more than [`MAX_INPUT`] (1 MiB) of input | `KW_JSON_TOO_LARGE` |
//! | anything else that is not one RFC 8259 JSON text (trailing bytes, invalid UTF-8, lone surrogates, ...) | `KW_JSON_INVALID` |
//!
//! The error names the code and, for `KW_JSON_INVALID`, where the text went
//! wrong (line and column); it never quotes the input, which may hold a
//! secret.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 64;
/// Largest input accepted, in bytes.
pub const MAX_INPUT: usize = 1 << 20;

/// Why a text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonKind {
    DuplicateKey,
    TooDeep,
    TooLarge,
    Invalid,
}

/// A refused JSON text. Never holds any of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictJsonError {
    pub kind: StrictJsonKind,
    /// Line and column (1-based) where the parser stopped, when known.
    pub at: Option<(usize, usize)>,
}

impl StrictJsonError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self.kind {
            StrictJsonKind::DuplicateKey => "KW_JSON_DUPLICATE_KEY",
            StrictJsonKind::TooDeep => "KW_JSON_TOO_DEEP",
            StrictJsonKind::TooLarge => "KW_JSON_TOO_LARGE",
            StrictJsonKind::Invalid => "KW_JSON_INVALID",
        }
    }

    /// What went wrong, in words (no input quoted).
    pub fn message(&self) -> String {
        let what = match self.kind {
            StrictJsonKind::DuplicateKey => "an object has the same key twice",
            StrictJsonKind::TooDeep => "arrays and objects are nested more than 64 deep",
            StrictJsonKind::TooLarge => "the JSON text is larger than 1 MiB",
            StrictJsonKind::Invalid => "not a valid JSON text",
        };
        match self.at {
            Some((line, column)) => format!("{what} (line {line}, column {column})"),
            None => what.to_string(),
        }
    }
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for StrictJsonError {}

/// Parses one JSON text into a [`Value`], refusing duplicate keys, nesting
/// deeper than [`MAX_DEPTH`] and input larger than [`MAX_INPUT`].
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    if bytes.len() > MAX_INPUT {
        return Err(StrictJsonError { kind: StrictJsonKind::TooLarge, at: None });
    }
    let refusal = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed { refusal: &refusal, depth: 0 }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        let at = (e.line() > 0).then(|| (e.line(), e.column()));
        StrictJsonError { kind: refusal.get().unwrap_or(StrictJsonKind::Invalid), at }
    })
}

/// Builds a [`Value`] at nesting `depth`, noting in `refusal` why it
/// stopped when the reason is ours rather than the syntax's.
struct ValueSeed<'a> {
    refusal: &'a Cell<Option<StrictJsonKind>>,
    depth: usize,
}

impl ValueSeed<'_> {
    fn refuse<E: de::Error>(&self, kind: StrictJsonKind) -> E {
        self.refusal.set(Some(kind));
        E::custom(match kind {
            StrictJsonKind::DuplicateKey => "duplicate key",
            StrictJsonKind::TooDeep => "nested too deep",
            _ => "refused",
        })
    }

    /// The seed for a container's members, or a refusal past the limit.
    fn nested<E: de::Error>(&self) -> Result<ValueSeed<'_>, E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.refuse(StrictJsonKind::TooDeep));
        }
        Ok(ValueSeed { refusal: self.refusal, depth: self.depth + 1 })
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.nested()?)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // The depth is checked before the first key, so that `{}` at the
        // limit is refused as `[]` is.
        let member = self.nested()?;
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(self.refuse(StrictJsonKind::DuplicateKey));
            }
            let value = map.next_value_seed(ValueSeed { refusal: member.refusal, depth: member.depth })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<StrictJsonKind> {
        parse(text.as_bytes()).err().map(|e| e.kind)
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"op":"submit","intent":{"amount_atomic":"1","amount_atomic":"900000"}}"#,
            r#"[{"x":{"y":[{"z":1,"z":2}]}}]"#,
            r#"{"a":{},"b":[],"a":null}"#,
        ] {
            assert_eq!(kind(text), Some(StrictJsonKind::DuplicateKey), "{text}");
            assert_eq!(parse(text.as_bytes()).unwrap_err().code(), "KW_JSON_DUPLICATE_KEY");
        }
        // The same key in sibling objects is no duplicate.
        let v = parse(br#"{"a":{"k":1},"b":{"k":2},"c":[{"k":3},{"k":4}]}"#).unwrap();
        assert_eq!(v["c"][1]["k"], 4);
    }

    #[test]
    fn what_serde_json_accepts_is_accepted_and_identical() {
        for text in [
            r#"{"op":"ping"}"#,
            r#"{"s":"a\"b\\c\u00e9\ud83d\ude00","n":-12,"u":18446744073709551615,"f":1.5e3,"t":true,"z":null}"#,
            "[]",
            "  {\"a\" : [1, 2, {\"b\": []}]}\n",
            "\"just a string\"",
            "0",
        ] {
            let strict = parse(text.as_bytes()).unwrap();
            let lax: Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict, lax, "{text}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |n: usize, open: &str, close: &str| format!("{}{}", open.repeat(n), close.repeat(n));
        assert!(parse(nest(MAX_DEPTH, "[", "]").as_bytes()).is_ok());
        assert_eq!(kind(&nest(MAX_DEPTH + 1, "[", "]")), Some(StrictJsonKind::TooDeep));
        let objects = |n: usize| format!("{}{}", "{\"a\":".repeat(n - 1) + "{}", "}".repeat(n - 1));
        assert!(parse(objects(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(kind(&objects(MAX_DEPTH + 1)), Some(StrictJsonKind::TooDeep));
        // Far past serde_json's own limit (128): still our code, no stack overflow.
        assert_eq!(kind(&nest(100_000, "[", "]")), Some(StrictJsonKind::TooDeep));
        assert_eq!(parse(nest(65, "[", "]").as_bytes()).unwrap_err().code(), "KW_JSON_TOO_DEEP");
    }

    #[test]
    fn size_is_bounded() {
        let big = format!("\"{}\"", "a".repeat(MAX_INPUT - 2));
        assert!(parse(big.as_bytes()).is_ok());
        let bigger = format!("\"{}\"", "a".repeat(MAX_INPUT - 1));
        let e = parse(bigger.as_bytes()).unwrap_err();
        assert_eq!((e.kind, e.code()), (StrictJsonKind::TooLarge, "KW_JSON_TOO_LARGE"));
    }

    #[test]
    fn malformed_text_is_invalid_and_never_quoted() {
        let secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        for text in [
            String::new(),
            "{".into(),
            r#"{"a":1,}"#.into(),
            r#"{"a":1} {"b":2}"#.into(),
            r#"{"a":"\ud800"}"#.into(),
            r#"{'a':1}"#.into(),
            "NaN".into(),
            format!(r#"{{"key":"{secret}" "#),
            format!(r#"{{"key":{secret}}}"#),
        ] {
            let e = parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "KW_JSON_INVALID", "{text}");
            assert!(!e.to_string().contains(secret) && !format!("{e:?}").contains(secret), "{e}");
        }
        assert_eq!(kind("\u{feff}{}"), Some(StrictJsonKind::Invalid), "a byte-order mark is not JSON");
        assert_eq!(parse(&[b'"', 0xff, b'"']).unwrap_err().kind, StrictJsonKind::Invalid);
        let e = parse(b"{\n  \"a\": 1,\n  \"a\": 2\n}").unwrap_err();
        assert_eq!(e.to_string(), "KW_JSON_DUPLICATE_KEY: an object has the same key twice (line 3, column 5)");
    }
}
