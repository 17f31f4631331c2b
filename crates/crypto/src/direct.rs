//! DirectSerialise / DirectDeserialise: moving secret keys in and out without
//! an intermediate heap buffer.
//!
//! As in cardano-base, serialising hands the caller one chunk at a time,
//! each a slice of the key's own locked memory, through a callback; the
//! caller decides where the bytes go (a socket, a locked buffer). Deserialising
//! asks the caller to fill slices of freshly allocated locked memory. The
//! concatenation of the chunks equals the raw serialisation of the key.

use secmem::MLockedBytes;

use crate::CryptoError;

/// Receives one chunk of a serialisation (a slice of locked memory).
pub type Push<'a> = dyn FnMut(&[u8]) -> Result<(), CryptoError> + 'a;
/// Fills one chunk of a deserialisation (a slice of locked memory).
pub type Pull<'a> = dyn FnMut(&mut [u8]) -> Result<(), CryptoError> + 'a;

pub trait DirectSerialise {
    /// Total bytes pushed by [`direct_serialise`](Self::direct_serialise).
    const DIRECT_SIZE: usize;

    fn direct_serialise(&self, push: &mut Push<'_>) -> Result<(), CryptoError>;
}

pub trait DirectDeserialise: Sized {
    fn direct_deserialise(pull: &mut Pull<'_>) -> Result<Self, CryptoError>;
}

/// Serialises `value` into a fresh locked buffer.
pub fn to_locked<T: DirectSerialise>(value: &T) -> Result<MLockedBytes, CryptoError> {
    let mut out = MLockedBytes::new(T::DIRECT_SIZE)?;
    let mut at = 0;
    value.direct_serialise(&mut |chunk: &[u8]| {
        let end = at + chunk.len();
        if end > T::DIRECT_SIZE {
            return Err(CryptoError::DirectLongInput { expected: T::DIRECT_SIZE });
        }
        out.as_mut_slice()[at..end].copy_from_slice(chunk);
        at = end;
        Ok(())
    })?;
    if at != T::DIRECT_SIZE {
        return Err(CryptoError::DirectShortInput { expected: T::DIRECT_SIZE });
    }
    Ok(out)
}

/// Deserialises exactly `T::DIRECT_SIZE` bytes from `bytes`; shorter or
/// longer input is an error.
pub fn from_slice<T: DirectSerialise + DirectDeserialise>(bytes: &[u8]) -> Result<T, CryptoError> {
    if bytes.len() > T::DIRECT_SIZE {
        return Err(CryptoError::DirectLongInput { expected: T::DIRECT_SIZE });
    }
    let mut at = 0;
    let value = T::direct_deserialise(&mut |dst: &mut [u8]| {
        let end = at + dst.len();
        let src = bytes.get(at..end).ok_or(CryptoError::DirectShortInput { expected: T::DIRECT_SIZE })?;
        dst.copy_from_slice(src);
        at = end;
        Ok(())
    })?;
    if at != bytes.len() {
        return Err(CryptoError::DirectShortInput { expected: T::DIRECT_SIZE });
    }
    Ok(value)
}
