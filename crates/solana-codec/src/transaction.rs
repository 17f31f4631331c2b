//! The wire transaction: `shortvec(nsig) ‖ 64-byte signatures ‖ message`.
//!
//! This crate never signs. The daemon signs the message bytes elsewhere and
//! hands the signatures back here to be framed; the client splits a wire
//! transaction here to show or re-check what it carries.

use crate::error::{CodecError, codes};
use crate::message::{MessageV0, PACKET_DATA_SIZE};
use crate::shortvec;

/// Frames `message` with `signatures` into a wire transaction.
///
/// The message must decode as a strict v0 message, the number of
/// signatures must equal its `header[0]`, and the result must fit
/// [`PACKET_DATA_SIZE`]. An unsigned slot is 64 zero bytes.
pub fn wire_transaction(message: &[u8], signatures: &[[u8; 64]]) -> Result<Vec<u8>, CodecError> {
    let decoded = MessageV0::decode(message)?;
    if signatures.len() != usize::from(decoded.header[0]) {
        return Err(CodecError::new(codes::MESSAGE_MALFORMED, "signature count differs from the message header"));
    }
    // header[0] <= 255, so the count fits a u16.
    let mut out = Vec::with_capacity(3 + 64 * signatures.len() + message.len());
    shortvec::encode(u16::from(decoded.header[0]), &mut out);
    for sig in signatures {
        out.extend_from_slice(sig);
    }
    out.extend_from_slice(message);
    if out.len() > PACKET_DATA_SIZE {
        return Err(CodecError::new(codes::MESSAGE_TOO_LARGE, "transaction exceeds 1232 bytes"));
    }
    Ok(out)
}

/// Splits a wire transaction into its signatures and message bytes.
///
/// Strict: at most [`PACKET_DATA_SIZE`] bytes, a minimal signature count
/// equal to the message's `header[0]`, and a message that decodes as a
/// strict v0 message with nothing after it.
pub fn decode_transaction(bytes: &[u8]) -> Result<(Vec<[u8; 64]>, Vec<u8>), CodecError> {
    if bytes.len() > PACKET_DATA_SIZE {
        return Err(CodecError::new(codes::MESSAGE_TOO_LARGE, "transaction exceeds 1232 bytes"));
    }
    let (nsig, used) =
        shortvec::decode(bytes).map_err(|_| CodecError::new(codes::MESSAGE_MALFORMED, "invalid signature count"))?;
    let nsig = usize::from(nsig);
    let sig_end = used + 64 * nsig;
    if sig_end > bytes.len() {
        return Err(CodecError::new(codes::MESSAGE_MALFORMED, "transaction truncated in signatures"));
    }
    let signatures: Vec<[u8; 64]> = bytes[used..sig_end]
        .chunks_exact(64)
        .map(|c| {
            let mut s = [0u8; 64];
            s.copy_from_slice(c);
            s
        })
        .collect();
    let message = &bytes[sig_end..];
    let decoded = MessageV0::decode(message)?;
    if nsig != usize::from(decoded.header[0]) {
        return Err(CodecError::new(codes::MESSAGE_MALFORMED, "signature count differs from the message header"));
    }
    Ok((signatures, message.to_vec()))
}
