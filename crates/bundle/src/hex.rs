//! Lowercase hex, the only encoding SPECTRUM-04 allows.

pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Whether `s` is exactly `len` lowercase hex digits.
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decodes exactly `N` bytes from `2N` lowercase hex digits.
pub fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if !is_lower_hex(s, 2 * N) {
        return None;
    }
    let nib = |b: u8| if b <= b'9' { b - b'0' } else { b - b'a' + 10 };
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        out[i] = (nib(pair[0]) << 4) | nib(pair[1]);
    }
    Some(out)
}

/// Lowercase hex of SHA-256(`data`).
pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    encode(&Sha256::digest(data))
}
