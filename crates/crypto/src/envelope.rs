//! cardano-cli text envelopes: `{"type", "description", "cborHex"}` JSON files.
//!
//! Operators bring KES keys as `KesSigningKey_ed25519_kes_2^6` and
//! `KesVerificationKey_ed25519_kes_2^6` envelopes. A signing-key envelope is
//! read into locked memory and parsed in place: its `cborHex` is decoded
//! straight into locked memory and never becomes a `String`. Written
//! envelopes are built in locked memory too.
//!
//! Only Sum6 (2^6 periods) has envelope types in cardano-cli.

use secmem::MLockedBytes;

use crate::CryptoError;
use crate::kes::{KesAlgorithm, KesVerificationKey, Sum6};

pub const SUM6_SIGNING_KEY_TYPE: &str = "KesSigningKey_ed25519_kes_2^6";
pub const SUM6_SIGNING_KEY_DESCRIPTION: &str = "KES Signing Key";
pub const SUM6_VERIFICATION_KEY_TYPE: &str = "KesVerificationKey_ed25519_kes_2^6";
pub const SUM6_VERIFICATION_KEY_DESCRIPTION: &str = "KES Verification Key";

/// Byte ranges of the three fields of an envelope.
struct Fields {
    kind: std::ops::Range<usize>,
    cbor_hex: std::ops::Range<usize>,
}

/// A strict parser for one flat JSON object whose values are strings. Only
/// the byte ranges of the values are returned, so a secret value is never
/// copied. Unknown keys are ignored (cardano-cli may add some); duplicate
/// known keys are an error.
fn parse_fields(text: &[u8]) -> Result<Fields, CryptoError> {
    let bad = || CryptoError::Malformed { what: "text envelope" };
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < text.len() && text[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    // A JSON string starting at text[i] == '"'; returns the range of its body.
    let string = |i: &mut usize| -> Result<std::ops::Range<usize>, CryptoError> {
        if text.get(*i) != Some(&b'"') {
            return Err(bad());
        }
        let start = *i + 1;
        let mut j = start;
        while j < text.len() && text[j] != b'"' {
            if text[j] == b'\\' {
                j += 1;
            }
            j += 1;
        }
        if j >= text.len() {
            return Err(bad());
        }
        *i = j + 1;
        Ok(start..j)
    };
    skip_ws(&mut i);
    if text.get(i) != Some(&b'{') {
        return Err(bad());
    }
    i += 1;
    let (mut kind, mut cbor, mut description) = (None, None, None);
    loop {
        skip_ws(&mut i);
        let key = string(&mut i)?;
        skip_ws(&mut i);
        if text.get(i) != Some(&b':') {
            return Err(bad());
        }
        i += 1;
        skip_ws(&mut i);
        let value = string(&mut i)?;
        let slot = match &text[key] {
            b"type" => &mut kind,
            b"cborHex" => &mut cbor,
            b"description" => &mut description,
            _ => &mut None,
        };
        if slot.replace(value).is_some() {
            return Err(bad());
        }
        skip_ws(&mut i);
        match text.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return Err(bad()),
        }
    }
    // `text[i]` is the closing brace; only whitespace may follow.
    if !text[i + 1..].iter().all(u8::is_ascii_whitespace) {
        return Err(bad());
    }
    Ok(Fields { kind: kind.ok_or_else(bad)?, cbor_hex: cbor.ok_or_else(bad)? })
}

fn expect_type(text: &[u8], fields: &Fields, want: &str) -> Result<(), CryptoError> {
    if &text[fields.kind.clone()] != want.as_bytes() {
        return Err(CryptoError::Malformed { what: "text envelope type" });
    }
    Ok(())
}

/// Reads a Sum6 verification-key envelope.
pub fn read_sum6_verification_key(text: &[u8]) -> Result<KesVerificationKey, CryptoError> {
    let f = parse_fields(text)?;
    expect_type(text, &f, SUM6_VERIFICATION_KEY_TYPE)?;
    let cbor = crate::hex::decode(
        std::str::from_utf8(&text[f.cbor_hex]).map_err(|_| CryptoError::Malformed { what: "cborHex" })?,
    )?;
    let raw = crate::cbor::decode_bytes(&cbor, 32)?;
    Ok(KesVerificationKey(raw.try_into().expect("checked length")))
}

/// Reads a Sum6 signing-key envelope (held in locked memory) into a key.
pub fn read_sum6_signing_key(text: &MLockedBytes) -> Result<Sum6, CryptoError> {
    let text = text.as_slice();
    let f = parse_fields(text)?;
    expect_type(text, &f, SUM6_SIGNING_KEY_TYPE)?;
    let cbor = crate::hex::decode_locked(&text[f.cbor_hex])?;
    let raw = crate::cbor::decode_bytes(cbor.as_slice(), Sum6::SIGN_KEY_SIZE)?;
    crate::direct::from_slice::<Sum6>(raw)
}

fn envelope(kind: &str, description: &str, cbor_hex_len: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        format!("{{\n    \"type\": \"{kind}\",\n    \"description\": \"{description}\",\n    \"cborHex\": \"")
            .as_bytes(),
    );
    let at = out.len();
    out.resize(at + cbor_hex_len, 0);
    fill(&mut out[at..]);
    out.extend_from_slice(b"\"\n}\n");
    out
}

fn hex_into(dst: &mut [u8], src: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in dst.chunks_mut(2).zip(src) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// A Sum6 verification-key envelope.
pub fn write_sum6_verification_key(vk: &KesVerificationKey) -> Vec<u8> {
    let cbor = crate::cbor::encode_bytes(&vk.0);
    envelope(SUM6_VERIFICATION_KEY_TYPE, SUM6_VERIFICATION_KEY_DESCRIPTION, cbor.len() * 2, |d| hex_into(d, &cbor))
}

/// A Sum6 signing-key envelope, built in locked memory.
pub fn write_sum6_signing_key(key: &Sum6) -> Result<MLockedBytes, CryptoError> {
    let raw = crate::direct::to_locked(key)?;
    let cbor = crate::cbor::encode_bytes_locked(raw.as_slice())?;
    let head = format!(
        "{{\n    \"type\": \"{SUM6_SIGNING_KEY_TYPE}\",\n    \"description\": \"{SUM6_SIGNING_KEY_DESCRIPTION}\",\n    \"cborHex\": \""
    );
    let tail = "\"\n}\n";
    let mut out = MLockedBytes::new(head.len() + cbor.len() * 2 + tail.len())?;
    let s = out.as_mut_slice();
    s[..head.len()].copy_from_slice(head.as_bytes());
    hex_into(&mut s[head.len()..head.len() + cbor.len() * 2], cbor.as_slice());
    s[head.len() + cbor.len() * 2..].copy_from_slice(tail.as_bytes());
    Ok(out)
}

/// What a legacy cardano-cli signing-key envelope holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyKeyKind {
    /// A 32-byte Ed25519 seed (payment, stake, genesis, VRF-free `_ed25519` types).
    Ed25519Seed,
    /// A Sum6 KES signing key in its `DirectSerialise` layout.
    KesSum6,
    /// Another signing-key type: kept as its raw CBOR payload.
    Other,
}

/// Reads any cardano-cli signing-key text envelope (held in locked memory)
/// for migration: the `type` (public) and the payload of its CBOR byte
/// string, in locked memory. Ed25519 and Sum6 payloads are length-checked;
/// a Sum6 key must also parse.
pub fn read_signing_key_envelope(text: &MLockedBytes) -> Result<(String, LegacyKeyKind, MLockedBytes), CryptoError> {
    let t = text.as_slice();
    let f = parse_fields(t)?;
    let kind_text = std::str::from_utf8(&t[f.kind.clone()]).map_err(|_| CryptoError::Malformed { what: "type" })?;
    if !kind_text.contains("SigningKey") {
        return Err(CryptoError::Malformed { what: "text envelope type (not a signing key)" });
    }
    let cbor = crate::hex::decode_locked(&t[f.cbor_hex])?;
    let c = cbor.as_slice();
    // A CBOR byte string: major type 2 with a 0..=23, 1-byte or 2-byte length.
    let (len, at) = match c.first() {
        Some(&b) if (0x40..=0x57).contains(&b) => (usize::from(b - 0x40), 1),
        Some(0x58) if c.len() >= 2 => (usize::from(c[1]), 2),
        Some(0x59) if c.len() >= 3 => (usize::from(u16::from_be_bytes([c[1], c[2]])), 3),
        _ => return Err(CryptoError::Malformed { what: "CBOR byte string header" }),
    };
    if c.len() != at + len {
        return Err(CryptoError::BadLength { what: "CBOR byte string", expected: len, actual: c.len() - at });
    }
    let kind = if kind_text == SUM6_SIGNING_KEY_TYPE {
        crate::direct::from_slice::<Sum6>(&c[at..])?;
        LegacyKeyKind::KesSum6
    } else if kind_text.ends_with("_ed25519") {
        if len != 32 {
            return Err(CryptoError::BadLength { what: "Ed25519 seed", expected: 32, actual: len });
        }
        LegacyKeyKind::Ed25519Seed
    } else {
        LegacyKeyKind::Other
    };
    let mut payload = MLockedBytes::new(len)?;
    payload.as_mut_slice().copy_from_slice(&c[at..]);
    Ok((kind_text.to_string(), kind, payload))
}
