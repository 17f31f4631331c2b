//! Secret byte containers: runtime-sized [`MLockedBytes`] and compile-time
//! sized [`MLockedSizedBytes`].
//!
//! They have no `Clone` (copying a secret must be an explicit, fallible
//! [`try_clone`](MLockedBytes::try_clone) into a fresh locked allocation), no
//! `Copy`, and a `Debug` that prints only the length. Access is through
//! borrows (`as_slice`, `with_c_ptr`), so no reference outlives the container.

use std::fmt;
use std::io::Read;

use crate::SecMemError;
use crate::pool::{self, LockedRegion, Pool};

/// Overwrites `buf` with zeros using volatile writes the compiler may not
/// elide or reorder past the fence, 8 bytes at a time where aligned.
pub fn zero_mem(buf: &mut [u8]) {
    let len = buf.len();
    let base = buf.as_mut_ptr();
    let head = base.align_offset(8).min(len);
    let words = (len - head) / 8;
    // SAFETY: every write below stays inside `buf`, to which `&mut` gives us
    // exclusive access: `head` bytes, then `words` aligned u64s starting at the
    // 8-aligned address `base + head`, then the remaining tail bytes.
    unsafe {
        for i in 0..head {
            std::ptr::write_volatile(base.add(i), 0);
        }
        let word_ptr = base.add(head).cast::<u64>();
        for i in 0..words {
            std::ptr::write_volatile(word_ptr.add(i), 0);
        }
        for i in head + words * 8..len {
            std::ptr::write_volatile(base.add(i), 0);
        }
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Bytes of stack that [`scrub_stack`] overwrites.
pub const STACK_SCRUB_BYTES: usize = 32 * 1024;

/// Overwrites the [`STACK_SCRUB_BYTES`] of stack just below the caller's frame
/// with zeros.
///
/// Library code we call with secrets (hashing, scalar arithmetic) leaves
/// copies in its stack frames when it returns. Calling this right after such a
/// call, from the same function, runs a frame over exactly the region those
/// callees used and wipes it. The size is four times the depth at which the
/// crypto crate's leak test first finds residue in an unoptimised build.
///
/// The wipe is a plain `memset` followed by an optimisation barrier (an empty
/// `asm!` block that takes the buffer's address and may read memory), so the
/// compiler must keep every store: the same guarantee as volatile writes, at
/// memset speed, which matters on every signing call.
#[inline(never)]
pub fn scrub_stack() {
    let mut area = std::mem::MaybeUninit::<[u8; STACK_SCRUB_BYTES]>::uninit();
    let p = area.as_mut_ptr().cast::<u8>();
    // SAFETY: `p` points to STACK_SCRUB_BYTES bytes of this frame that we own;
    // write_bytes initialises all of them.
    unsafe { std::ptr::write_bytes(p, 0, STACK_SCRUB_BYTES) };
    optimisation_barrier(p);
}

/// Runs `f`, then [`scrub_stack`]: the stack that `f` and its callees used
/// lies below this frame, exactly where the scrub runs.
#[inline(never)]
pub fn scrubbed<T>(f: impl FnOnce() -> T) -> T {
    let r = f();
    scrub_stack();
    r
}

/// Tells the compiler that memory reachable from `p` may be read here, so
/// stores to it before this point cannot be removed.
#[inline(always)]
fn optimisation_barrier(p: *const u8) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: an empty assembly block; it only receives a pointer in a
    // register and executes no instruction.
    unsafe {
        std::arch::asm!("/* {0} */", in(reg) p, options(nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        std::hint::black_box(p);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `src` into `dst`; both must have the same length. Nothing is copied
/// on a mismatch.
pub fn copy_mem(dst: &mut [u8], src: &[u8]) -> Result<(), SecMemError> {
    if dst.len() != src.len() {
        return Err(SecMemError::LengthMismatch { expected: dst.len(), actual: src.len() });
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// Fills `buf` straight from the operating system's CSPRNG (`getrandom(2)`).
pub(crate) fn fill_os_random(buf: &mut [u8]) -> Result<(), SecMemError> {
    getrandom::fill(buf).map_err(|_| SecMemError::RandomFailed)
}

/// Reads exactly `buf.len()` bytes into `buf`. On failure the partial input is
/// wiped before the error is returned.
pub(crate) fn read_exact_into(reader: &mut dyn Read, buf: &mut [u8]) -> Result<(), SecMemError> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) => {
            zero_mem(buf);
            Err(SecMemError::Io { kind: e.kind() })
        }
    }
}

/// A secret of runtime length in locked, dump-excluded memory.
pub struct MLockedBytes {
    region: LockedRegion,
}

impl fmt::Debug for MLockedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MLockedBytes(<{} bytes redacted>)", self.region.len())
    }
}

impl MLockedBytes {
    /// `len` zeroed bytes from the global pool.
    pub fn new(len: usize) -> Result<Self, SecMemError> {
        Self::new_in(pool::global(), len)
    }

    /// `len` zeroed bytes (explicit spelling of [`new`](Self::new): pool memory is always zeroed).
    pub fn new_zeroed(len: usize) -> Result<Self, SecMemError> {
        Self::new(len)
    }

    /// `len` zeroed bytes from a given pool.
    pub fn new_in(pool: &'static Pool, len: usize) -> Result<Self, SecMemError> {
        Ok(MLockedBytes { region: pool.alloc(len)? })
    }

    /// `len` zeroed bytes at an address that is a multiple of `align`; the
    /// capacity is rounded up to a multiple of `align`.
    pub fn new_aligned(len: usize, align: usize) -> Result<Self, SecMemError> {
        Ok(MLockedBytes { region: pool::global().alloc_aligned(len, align)? })
    }

    /// `len` bytes from the OS CSPRNG, written straight into locked memory.
    pub fn new_random(len: usize) -> Result<Self, SecMemError> {
        let mut s = Self::new(len)?;
        s.fill_random()?;
        Ok(s)
    }

    /// Reads exactly `len` bytes from `reader` straight into locked memory.
    /// Pass an unbuffered reader (a `File`, or [`crate::unbuffered_stdin`]) so
    /// that no buffer outside locked memory ever holds the secret.
    pub fn from_reader(reader: &mut dyn Read, len: usize) -> Result<Self, SecMemError> {
        let mut s = Self::new(len)?;
        read_exact_into(reader, s.as_mut_slice())?;
        Ok(s)
    }

    /// Overwrites the contents with fresh OS randomness.
    pub fn fill_random(&mut self) -> Result<(), SecMemError> {
        fill_os_random(self.as_mut_slice())
    }

    /// A deep copy in a fresh locked allocation from the same pool.
    pub fn try_clone(&self) -> Result<Self, SecMemError> {
        let mut copy = Self::new_in(self.region.pool(), self.len())?;
        copy.as_mut_slice().copy_from_slice(self.as_slice());
        Ok(copy)
    }

    pub fn len(&self) -> usize {
        self.region.len()
    }

    pub fn is_empty(&self) -> bool {
        self.region.is_empty()
    }

    /// Reserved bytes (at least `len`; a multiple of the alignment asked for).
    pub fn capacity(&self) -> usize {
        self.region.capacity()
    }

    pub fn as_slice(&self) -> &[u8] {
        self.region.as_slice()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.region.as_mut_slice()
    }

    /// Scoped raw access for C interfaces; the pointer must not escape `f`.
    pub fn with_c_ptr<R>(&self, f: impl FnOnce(*const u8, usize) -> R) -> R {
        f(self.region.as_ptr(), self.len())
    }

    /// Scoped mutable raw access for C interfaces; the pointer must not escape `f`.
    pub fn with_c_ptr_mut<R>(&mut self, f: impl FnOnce(*mut u8, usize) -> R) -> R {
        let len = self.len();
        f(self.as_mut_slice().as_mut_ptr(), len)
    }

    /// Zeroes and frees now, instead of at the end of scope.
    pub fn finalize(self) {
        drop(self);
    }

    /// The underlying allocation (address and pool), for inspection.
    pub fn region(&self) -> &LockedRegion {
        &self.region
    }
}

/// A secret of exactly `N` bytes in locked, dump-excluded memory.
pub struct MLockedSizedBytes<const N: usize> {
    region: LockedRegion,
}

impl<const N: usize> fmt::Debug for MLockedSizedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MLockedSizedBytes<{N}>(<redacted>)")
    }
}

impl<const N: usize> MLockedSizedBytes<N> {
    /// `N` zeroed bytes from the global pool.
    pub fn new() -> Result<Self, SecMemError> {
        Self::new_in(pool::global())
    }

    /// `N` zeroed bytes (explicit spelling of [`new`](Self::new)).
    pub fn new_zeroed() -> Result<Self, SecMemError> {
        Self::new()
    }

    pub fn new_in(pool: &'static Pool) -> Result<Self, SecMemError> {
        Ok(MLockedSizedBytes { region: pool.alloc(N)? })
    }

    /// `N` bytes from the OS CSPRNG, written straight into locked memory.
    pub fn new_random() -> Result<Self, SecMemError> {
        let mut s = Self::new()?;
        s.fill_random()?;
        Ok(s)
    }

    /// Reads exactly `N` bytes from `reader` straight into locked memory.
    pub fn from_reader(reader: &mut dyn Read) -> Result<Self, SecMemError> {
        let mut s = Self::new()?;
        read_exact_into(reader, s.as_mut_slice())?;
        Ok(s)
    }

    pub fn fill_random(&mut self) -> Result<(), SecMemError> {
        fill_os_random(self.as_mut_slice())
    }

    /// A deep copy in a fresh locked allocation from the same pool.
    pub fn try_clone(&self) -> Result<Self, SecMemError> {
        let mut copy = Self::new_in(self.region.pool())?;
        copy.as_mut_slice().copy_from_slice(self.as_slice());
        Ok(copy)
    }

    pub const fn len(&self) -> usize {
        N
    }

    pub const fn is_empty(&self) -> bool {
        N == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        self.region.as_slice()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.region.as_mut_slice()
    }

    pub fn as_array(&self) -> &[u8; N] {
        self.as_slice().try_into().expect("region length is N")
    }

    pub fn as_mut_array(&mut self) -> &mut [u8; N] {
        self.as_mut_slice().try_into().expect("region length is N")
    }

    /// Scoped raw access for C interfaces; the pointer must not escape `f`.
    pub fn with_c_ptr<R>(&self, f: impl FnOnce(*const u8, usize) -> R) -> R {
        f(self.region.as_ptr(), N)
    }

    /// Scoped mutable raw access for C interfaces; the pointer must not escape `f`.
    pub fn with_c_ptr_mut<R>(&mut self, f: impl FnOnce(*mut u8, usize) -> R) -> R {
        f(self.as_mut_slice().as_mut_ptr(), N)
    }

    /// Zeroes and frees now, instead of at the end of scope.
    pub fn finalize(self) {
        drop(self);
    }

    pub fn region(&self) -> &LockedRegion {
        &self.region
    }
}
