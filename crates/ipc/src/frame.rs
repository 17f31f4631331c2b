//! Framing: every message on the socket is a 4-byte big-endian length and
//! that many bytes. The length is checked against the limit *before* any
//! allocation, so an oversized or hostile length costs nothing.

use std::io::{Read, Write};

use crate::IpcError;

/// Largest frame either side accepts (a record header, 64 KiB of payload and a tag fit).
pub const MAX_FRAME: usize = 64 * 1024 + 64;

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> Result<(), IpcError> {
    if body.len() > MAX_FRAME {
        return Err(IpcError::FrameTooLarge { max: MAX_FRAME });
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame of at most `max` bytes. `Ok(None)` on a clean end of
/// stream before the first length byte.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, IpcError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(IpcError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max.min(MAX_FRAME) {
        return Err(IpcError::FrameTooLarge { max: max.min(MAX_FRAME) });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Splits one frame off the front of `buf` (for non-blocking readers):
/// `Ok(Some((frame, consumed)))`, `Ok(None)` if more bytes are needed.
pub fn split_frame(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, IpcError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes(buf[..4].try_into().expect("4")) as usize;
    if len > max.min(MAX_FRAME) {
        return Err(IpcError::FrameTooLarge { max: max.min(MAX_FRAME) });
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some((&buf[4..4 + len], 4 + len)))
}
