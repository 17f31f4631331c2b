//! CBOR byte strings (major type 2), the only CBOR the KES and DSIGN types
//! use: cardano-base encodes every key and signature as one byte string of its
//! raw serialisation, CompactSingleKES signatures included.
//!
//! Decoding is strict: the shortest length header, the exact length the type
//! needs, and no trailing bytes.

use secmem::MLockedBytes;

use crate::CryptoError;

/// The header of a byte string of `len` bytes.
pub fn bytes_header(len: usize) -> Vec<u8> {
    match len {
        0..=23 => vec![0x40 | len as u8],
        24..=0xff => vec![0x58, len as u8],
        0x100..=0xffff => vec![0x59, (len >> 8) as u8, len as u8],
        _ => {
            let l = len as u32;
            vec![0x5a, (l >> 24) as u8, (l >> 16) as u8, (l >> 8) as u8, l as u8]
        }
    }
}

/// Encodes public bytes as a CBOR byte string.
pub fn encode_bytes(raw: &[u8]) -> Vec<u8> {
    let mut v = bytes_header(raw.len());
    v.extend_from_slice(raw);
    v
}

/// The payload of a CBOR byte string that must hold exactly `expected` bytes.
pub fn decode_bytes(cbor: &[u8], expected: usize) -> Result<&[u8], CryptoError> {
    let header = bytes_header(expected);
    if !cbor.starts_with(&header) {
        return Err(CryptoError::Malformed { what: "CBOR byte string header" });
    }
    let payload = &cbor[header.len()..];
    if payload.len() != expected {
        return Err(CryptoError::BadLength { what: "CBOR byte string", expected, actual: payload.len() });
    }
    Ok(payload)
}

/// Encodes secret bytes as a CBOR byte string into locked memory.
pub fn encode_bytes_locked(raw: &[u8]) -> Result<MLockedBytes, CryptoError> {
    let header = bytes_header(raw.len());
    let mut out = MLockedBytes::new(header.len() + raw.len())?;
    out.as_mut_slice()[..header.len()].copy_from_slice(&header);
    out.as_mut_slice()[header.len()..].copy_from_slice(raw);
    Ok(out)
}
