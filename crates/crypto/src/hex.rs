//! Hex for public values, and hex decoding straight into locked memory for
//! secret ones.

use secmem::MLockedBytes;

use crate::CryptoError;

pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes public hex.
pub fn decode(text: &str) -> Result<Vec<u8>, CryptoError> {
    let t = text.trim().as_bytes();
    if !t.len().is_multiple_of(2) {
        return Err(CryptoError::Malformed { what: "hex" });
    }
    t.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(CryptoError::Malformed { what: "hex" })
}

/// Decodes secret hex into locked memory, byte by byte, so that no decoded
/// copy exists anywhere else. Surrounding whitespace is ignored.
pub fn decode_locked(text: &[u8]) -> Result<MLockedBytes, CryptoError> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    let t = &text[start..end];
    if !t.len().is_multiple_of(2) {
        return Err(CryptoError::Malformed { what: "hex" });
    }
    let mut out = MLockedBytes::new(t.len() / 2)?;
    for (dst, pair) in out.as_mut_slice().iter_mut().zip(t.chunks(2)) {
        *dst = match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => h << 4 | l,
            _ => return Err(CryptoError::Malformed { what: "hex" }),
        };
    }
    Ok(out)
}
