//! [`SecretBytes`] and [`SecretString`]: non-key secrets such as passphrases
//! and API tokens.
//!
//! They live in locked memory like keys do, are read from a file or stdin
//! straight into it (never from argv or the environment), zeroize on drop, and
//! print as `<redacted>`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;

use crate::SecMemError;
use crate::bytes::{MLockedBytes, zero_mem};

/// Standard input as an unbuffered `File` (a duplicate of descriptor 0).
///
/// `std::io::stdin()` reads through a process-wide heap buffer that is never
/// wiped; reading a secret through this handle instead puts the bytes only
/// where the caller's locked buffer is.
pub fn unbuffered_stdin() -> io::Result<File> {
    Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
}

/// Secret bytes of runtime length, at most the capacity chosen at creation.
pub struct SecretBytes {
    buf: MLockedBytes,
    len: usize,
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl SecretBytes {
    /// Copies `src` into locked memory. The caller remains responsible for
    /// wiping its own copy.
    pub fn copy_from_slice(src: &[u8]) -> Result<Self, SecMemError> {
        let mut buf = MLockedBytes::new(src.len())?;
        buf.as_mut_slice().copy_from_slice(src);
        Ok(SecretBytes { len: src.len(), buf })
    }

    /// Reads `reader` to its end, at most `max` bytes, into locked memory.
    /// Longer input is an error, and what was read is wiped.
    pub fn read_to_end(reader: &mut dyn Read, max: usize) -> Result<Self, SecMemError> {
        // One spare byte tells "exactly max" from "longer than max".
        let cap = max.checked_add(1).ok_or(SecMemError::InvalidSize { requested: max })?;
        let mut buf = MLockedBytes::new(cap)?;
        let mut len = 0;
        loop {
            let dst = &mut buf.as_mut_slice()[len..];
            if dst.is_empty() {
                return Err(SecMemError::TooLong { max });
            }
            match reader.read(dst) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SecMemError::Io { kind: e.kind() }),
            }
        }
        if len > max {
            return Err(SecMemError::TooLong { max });
        }
        Ok(SecretBytes { buf, len })
    }

    /// Reads one line (up to `\n` or end of input), at most `max` bytes
    /// without the line ending, which is not kept (`\r\n` or `\n`). Reads one
    /// byte at a time so that nothing after the line is consumed.
    pub fn read_line(reader: &mut dyn Read, max: usize) -> Result<Self, SecMemError> {
        let cap = max.checked_add(1).ok_or(SecMemError::InvalidSize { requested: max })?;
        let mut buf = MLockedBytes::new(cap)?;
        let mut len = 0;
        loop {
            if len == cap {
                return Err(SecMemError::TooLong { max });
            }
            match reader.read(&mut buf.as_mut_slice()[len..len + 1]) {
                Ok(0) => break,
                Ok(_) if buf.as_slice()[len] == b'\n' => {
                    zero_mem(&mut buf.as_mut_slice()[len..len + 1]);
                    break;
                }
                Ok(_) => len += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SecMemError::Io { kind: e.kind() }),
            }
        }
        if len > 0 && buf.as_slice()[len - 1] == b'\r' {
            len -= 1;
            zero_mem(&mut buf.as_mut_slice()[len..len + 1]);
        }
        if len > max {
            return Err(SecMemError::TooLong { max });
        }
        Ok(SecretBytes { buf, len })
    }

    pub fn expose(&self) -> &[u8] {
        &self.buf.as_slice()[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A secret UTF-8 string (passphrase, token) in locked memory.
pub struct SecretString {
    bytes: SecretBytes,
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl TryFrom<SecretBytes> for SecretString {
    type Error = SecMemError;

    /// Fails (and the bytes are wiped on drop) unless they are valid UTF-8.
    fn try_from(bytes: SecretBytes) -> Result<Self, SecMemError> {
        std::str::from_utf8(bytes.expose()).map_err(|_| SecMemError::InvalidUtf8)?;
        Ok(SecretString { bytes })
    }
}

impl SecretString {
    /// Reads one line of UTF-8 (see [`SecretBytes::read_line`]).
    pub fn read_line(reader: &mut dyn Read, max: usize) -> Result<Self, SecMemError> {
        SecretBytes::read_line(reader, max)?.try_into()
    }

    pub fn expose(&self) -> &str {
        std::str::from_utf8(self.bytes.expose()).expect("validated at construction")
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
