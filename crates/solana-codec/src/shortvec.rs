//! Solana's compact-u16 ("shortvec") length prefix.
//!
//! Seven bits per byte, little-endian, high bit = "more bytes follow", at
//! most three bytes. Decoding is strict: a non-minimal encoding (such as
//! `80 00` for zero) or one that overflows `u16` is rejected, so every
//! length has exactly one encoding and a message has exactly one byte form.

use crate::error::{CodecError, codes};

/// Appends the minimal encoding of `n` to `out` (1 to 3 bytes).
pub fn encode(n: u16, out: &mut Vec<u8>) {
    let mut rem = n;
    loop {
        let low = (rem & 0x7f) as u8;
        rem >>= 7;
        if rem == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Decodes a compact-u16 at the start of `bytes`.
///
/// Returns the value and the number of bytes consumed. Fails with
/// `SOL_SHORTVEC_INVALID` on truncation, a non-minimal encoding, more than
/// three bytes, or a value above `u16::MAX`.
pub fn decode(bytes: &[u8]) -> Result<(u16, usize), CodecError> {
    let mut value: u32 = 0;
    for i in 0..3 {
        let Some(&b) = bytes.get(i) else {
            return Err(CodecError::new(codes::SHORTVEC_INVALID, "truncated compact-u16"));
        };
        let low = u32::from(b & 0x7f);
        if i == 2 && b > 0x03 {
            return Err(CodecError::new(codes::SHORTVEC_INVALID, "compact-u16 overflows u16"));
        }
        value |= low << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(CodecError::new(codes::SHORTVEC_INVALID, "non-minimal compact-u16"));
            }
            // i <= 2 and the third byte is at most 3, so value <= 0xffff.
            return Ok((value as u16, i + 1));
        }
    }
    // Unreachable in practice: the third byte either returned or failed above.
    Err(CodecError::new(codes::SHORTVEC_INVALID, "compact-u16 longer than three bytes"))
}
