//! Base58 with the Bitcoin alphabet, as Solana uses for addresses and
//! blockhashes.
//!
//! Hand-rolled rather than a dependency: it is forty lines, it runs on
//! untrusted input (x402 challenges), and we want a hard input bound. Each
//! leading `'1'` stands for one leading zero byte, so the mapping between
//! byte strings and base58 strings is one-to-one: there is exactly one
//! encoding for every byte string, and [`decode`] accepts only that one.

use crate::error::{CodecError, codes};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Longest input [`decode`] accepts, in characters. A 64-byte signature
/// is at most 88 characters; nothing keyward decodes is longer.
pub const MAX_DECODE_LEN: usize = 128;

/// Digit value of each byte, 0xff for bytes outside the alphabet.
const DIGITS: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

fn digit(c: u8) -> Option<u8> {
    let d = DIGITS[usize::from(c)];
    (d != 0xff).then_some(d)
}

/// Encodes `bytes` as base58 (Bitcoin alphabet).
pub fn encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Little-endian base-58 digits of the big-endian number in `bytes[zeros..]`.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &b in &bytes[zeros..] {
        let mut carry = u32::from(b);
        for d in &mut digits {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(core::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|&d| char::from(ALPHABET[usize::from(d)])));
    out
}

/// Decodes a base58 string (Bitcoin alphabet).
///
/// The empty string decodes to no bytes. Fails with `SOL_BASE58_INVALID`
/// for any character outside the alphabet (including whitespace) and for
/// input longer than [`MAX_DECODE_LEN`].
pub fn decode(s: &str) -> Result<Vec<u8>, CodecError> {
    let input = s.as_bytes();
    if input.len() > MAX_DECODE_LEN {
        return Err(CodecError::new(codes::BASE58_INVALID, "base58 input too long"));
    }
    let zeros = input.iter().take_while(|&&c| c == b'1').count();
    // Little-endian base-256 bytes of the number in `input[zeros..]`.
    let mut bytes: Vec<u8> = Vec::with_capacity(input.len());
    for &c in &input[zeros..] {
        let Some(d) = digit(c) else {
            return Err(CodecError::new(codes::BASE58_INVALID, "character outside the base58 alphabet"));
        };
        let mut carry = u32::from(d);
        for b in &mut bytes {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Ok(out)
}
