//! JSON exactly as the Python toolkit reads and writes it.
//!
//! Every root, signed message and result artifact in SPECTRUM-04..06 is the
//! SHA-256 of `json.dumps(obj, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)` over what `json.loads` returned, so two verifiers
//! agree only if they agree on those two functions byte for byte. This module
//! is that pair:
//!
//! * [`parse`] is RFC 8259 with Python's number model kept intact: an integer
//!   stays its digits (Python ints are unbounded; a u64 would change bytes),
//!   a number with a fraction or exponent becomes an `f64` (Python's float).
//! * [`Value::canonical`] writes Python's output: keys sorted by code point
//!   (equal to UTF-8 byte order), floats in Python's `repr` (`1e+16`,
//!   `1.5e-05`, `10.0`), control characters as lowercase `\u00XX`, and either
//!   literal UTF-8 ([`Ascii::Literal`], the SPECTRUM canonical form) or
//!   `\uXXXX` with surrogate pairs ([`Ascii::Escape`], what the toolkit's
//!   `proof_hash` uses).
//!
//! Where Python would accept input that makes two readers disagree, this
//! parser refuses it instead (fail closed; docs/bundle-format.md lists each):
//! duplicate object keys (Python keeps the last, other parsers the first),
//! `NaN`/`Infinity`, a float that overflows, lone UTF-16 surrogates, a byte
//! order mark, integers over 4 300 digits (Python's own limit) and nesting
//! deeper than [`MAX_DEPTH`].

use std::fmt::Write as _;

/// Deepest nesting accepted. Python's recursion limit sits near 1 000; real
/// artifacts nest a handful of levels.
pub const MAX_DEPTH: usize = 128;
const MAX_INT_DIGITS: usize = 4300;

/// A JSON value in Python's model. Objects keep document order (Python dicts
/// do); [`Value::canonical`] sorts.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer: optional `-` then digits, normalised (`-0` is `0`).
    Int(String),
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// How non-ASCII characters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ascii {
    /// Literal UTF-8 (`ensure_ascii=False`): the SPECTRUM canonical form.
    Literal,
    /// `\uXXXX`, surrogate pairs above the BMP (`ensure_ascii=True`).
    Escape,
}

/// Why a document is not acceptable JSON. The position is a byte offset;
/// nothing of the document's content is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub reason: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(bytes: &[u8]) -> Result<Value, ParseError> {
    if bytes.starts_with(&[0xef, 0xbb, 0xbf]) {
        return Err(ParseError { offset: 0, reason: "byte order mark" });
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| ParseError { offset: e.valid_up_to(), reason: "invalid UTF-8" })?;
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing data"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> ParseError {
        ParseError { offset: self.i, reason }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.s.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') if self.eat(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat(b"null") => Ok(Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.i += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.ws();
        if self.eat(b"}") {
            return Ok(Value::Object(members));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a key"));
            }
            let at = self.i;
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(ParseError { offset: at, reason: "duplicate key" });
            }
            self.ws();
            if !self.eat(b":") {
                return Err(self.err("expected ':'"));
            }
            self.ws();
            let v = self.value(depth + 1)?;
            members.push((key, v));
            self.ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"}") {
                return Ok(Value::Object(members));
            }
            return Err(self.err("expected ',' or '}'"));
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat(b"]") {
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"]") {
                return Ok(Value::Array(items));
            }
            return Err(self.err("expected ',' or ']'"));
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let h = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err("short \\u escape"))?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char).to_digit(16).ok_or_else(|| self.err("bad \\u escape"))?;
            v = v * 16 + d;
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&c) = self.s.get(self.i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // The input is valid UTF-8 and we stopped on ASCII bytes only.
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).expect("utf-8 slice"));
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let e = *self.s.get(self.i).ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.err("lone surrogate"));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else if (0xdc00..0xe000).contains(&hi) {
                                return Err(self.err("lone surrogate"));
                            } else {
                                hi
                            };
                            out.push(char::from_u32(cp).ok_or_else(|| self.err("bad code point"))?);
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.i;
        self.eat(b"-");
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - s
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err(self.err("bad number"));
        }
        let mut is_float = false;
        if self.eat(b".") {
            is_float = true;
            if digits(self) == 0 {
                return Err(self.err("bad number"));
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            is_float = true;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("bad number"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
        if is_float {
            let f: f64 = text.parse().map_err(|_| self.err("bad number"))?;
            if !f.is_finite() {
                return Err(ParseError { offset: start, reason: "number out of range" });
            }
            return Ok(Value::Float(f));
        }
        if n > MAX_INT_DIGITS {
            return Err(ParseError { offset: start, reason: "integer too long" });
        }
        Ok(Value::Int(if text == "-0" { "0".into() } else { text.to_string() }))
    }
}

impl Value {
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Python's `json.dumps(self, sort_keys=True, separators=(",", ":"),
    /// ensure_ascii=…)`, as bytes.
    pub fn canonical(&self, ascii: Ascii) -> Vec<u8> {
        let mut out = String::new();
        self.write(&mut out, ascii);
        out.into_bytes()
    }

    fn write(&self, out: &mut String, ascii: Ascii) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Int(d) => out.push_str(d),
            Value::Float(f) => python_float_repr(*f, out),
            Value::Str(s) => write_string(s, out, ascii),
            Value::Array(items) => {
                out.push('[');
                for (n, v) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    v.write(out, ascii);
                }
                out.push(']');
            }
            Value::Object(members) => {
                let mut sorted: Vec<&(String, Value)> = members.iter().collect();
                // Rust orders `str` by UTF-8 bytes, which for valid Unicode
                // is code point order: Python's `sorted` on str keys.
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                out.push('{');
                for (n, (k, v)) in sorted.into_iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    write_string(k, out, ascii);
                    out.push(':');
                    v.write(out, ascii);
                }
                out.push('}');
            }
        }
    }
}

/// Builds an object from `(key, value)` pairs.
pub fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    Value::Object(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

pub fn string(s: impl Into<String>) -> Value {
    Value::Str(s.into())
}

pub fn int(n: u64) -> Value {
    Value::Int(n.to_string())
}

fn write_string(s: &str, out: &mut String, ascii: Ascii) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // Python escapes everything outside space..`~` here, DEL included.
            c if ascii == Ascii::Escape && c > '~' => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", u);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `float.__repr__`: the shortest digits that round-trip (the same
/// digits Rust's `{:e}` yields), laid out as Python does: positional when
/// the decimal exponent is in [-4, 16), otherwise `d.ddde±XX`.
fn python_float_repr(f: f64, out: &mut String) {
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    // Python's decpt: value = 0.DIGITS × 10^decpt.
    let decpt = exp + 1;
    if f.is_sign_negative() {
        out.push('-');
    }
    if (-3..=16).contains(&decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt < n {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
}
