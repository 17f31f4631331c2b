//! [`MLockedSeed`]: key-generation seed material in locked memory.
//!
//! A seed is the most sensitive value keyward handles: every KES period key and
//! every Ed25519 key derives from one. It is created random straight from the
//! OS CSPRNG into locked pages, or read from a file or stdin straight into
//! them, and is never copied except by an explicit [`MLockedSeed::try_clone`].

use std::fmt;
use std::io::Read;

use crate::SecMemError;
use crate::bytes::MLockedSizedBytes;
use crate::pool::Pool;

/// `N` bytes of seed material in locked, dump-excluded memory.
pub struct MLockedSeed<const N: usize> {
    bytes: MLockedSizedBytes<N>,
}

impl<const N: usize> fmt::Debug for MLockedSeed<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MLockedSeed<{N}>(<redacted>)")
    }
}

impl<const N: usize> MLockedSeed<N> {
    /// A zeroed seed, to be filled through [`as_mut_bytes`](Self::as_mut_bytes) or
    /// [`fill_random`](Self::fill_random).
    pub fn new() -> Result<Self, SecMemError> {
        Ok(MLockedSeed { bytes: MLockedSizedBytes::new()? })
    }

    /// A zeroed seed (explicit spelling of [`new`](Self::new)).
    pub fn new_zeroed() -> Result<Self, SecMemError> {
        Self::new()
    }

    pub fn new_in(pool: &'static Pool) -> Result<Self, SecMemError> {
        Ok(MLockedSeed { bytes: MLockedSizedBytes::new_in(pool)? })
    }

    /// A seed from the OS CSPRNG, written straight into locked memory.
    pub fn new_random() -> Result<Self, SecMemError> {
        Ok(MLockedSeed { bytes: MLockedSizedBytes::new_random()? })
    }

    /// Reads exactly `N` bytes straight into locked memory.
    pub fn from_reader(reader: &mut dyn Read) -> Result<Self, SecMemError> {
        Ok(MLockedSeed { bytes: MLockedSizedBytes::from_reader(reader)? })
    }

    /// Replaces the contents with fresh OS randomness.
    pub fn fill_random(&mut self) -> Result<(), SecMemError> {
        self.bytes.fill_random()
    }

    /// A deep copy in a fresh locked allocation.
    pub fn try_clone(&self) -> Result<Self, SecMemError> {
        Ok(MLockedSeed { bytes: self.bytes.try_clone()? })
    }

    pub fn as_bytes(&self) -> &[u8; N] {
        self.bytes.as_array()
    }

    pub fn as_mut_bytes(&mut self) -> &mut [u8; N] {
        self.bytes.as_mut_array()
    }

    /// Scoped raw access for C interfaces; the pointer must not escape `f`.
    pub fn with_c_ptr<R>(&self, f: impl FnOnce(*const u8, usize) -> R) -> R {
        self.bytes.with_c_ptr(f)
    }

    /// Zeroes and frees now, instead of at the end of scope.
    pub fn finalize(self) {
        drop(self);
    }

    pub fn region(&self) -> &crate::LockedRegion {
        self.bytes.region()
    }
}
