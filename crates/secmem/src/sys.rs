//! The system calls behind locked memory, and nothing else.
//!
//! Every `unsafe` block of the allocator lives in this module, so that a reviewer
//! can audit the whole contact surface with the kernel on one screen. The rest of
//! the crate sees only [`Mapping`], an owned span of locked, dump-excluded pages
//! framed by inaccessible guard pages:
//!
//! ```text
//!   base                data                           data + data_len
//!    | guard (PROT_NONE) | locked read/write pages ... | guard (PROT_NONE) |
//! ```
//!
//! A linear overflow or underflow out of a secret runs into a guard page and
//! faults instead of reading or corrupting a neighbouring secret.

use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::{Backend, SecMemError};

/// The system page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v <= 0 { 4096 } else { v as usize }
    })
}

/// An owned mapping: guard page, `data_len` bytes of locked pages, guard page.
///
/// Dropping a `Mapping` does not free it; the pool decides when pages go back
/// to the kernel and calls [`Mapping::release`], because a page may still hold
/// other live secrets (see `pool.rs`).
#[derive(Debug)]
pub(crate) struct Mapping {
    base: NonNull<u8>,
    total_len: usize,
    data: NonNull<u8>,
    data_len: usize,
    backend: Backend,
}

// SAFETY: a Mapping is a plain owned address range; the pool serialises all
// bookkeeping on it behind a mutex, and the bytes themselves are only reached
// through the unique `LockedRegion` that owns a slot of it.
unsafe impl Send for Mapping {}

impl Mapping {
    pub(crate) fn data(&self) -> NonNull<u8> {
        self.data
    }

    pub(crate) fn data_len(&self) -> usize {
        self.data_len
    }

    /// Maps `data_len` bytes (a multiple of the page size) of locked memory
    /// with the given backend. Fails closed: any step that cannot be applied
    /// (lock, dump exclusion, fork wiping) unmaps everything and returns an error.
    pub(crate) fn new(data_len: usize, backend: Backend) -> Result<Mapping, SecMemError> {
        let page = page_size();
        debug_assert!(data_len > 0 && data_len.is_multiple_of(page));
        let total_len = data_len.checked_add(2 * page).ok_or(SecMemError::InvalidSize { requested: data_len })?;

        // SAFETY: an anonymous PROT_NONE reservation at an address of the
        // kernel's choosing; it aliases nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(SecMemError::MapFailed { errno: errno() });
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or(SecMemError::MapFailed { errno: 0 })?;
        // SAFETY: `page < total_len`, so the data start is inside the reservation.
        let data = unsafe { NonNull::new_unchecked(base.as_ptr().add(page)) };
        let mapping = Mapping { base, total_len, data, data_len, backend };

        let result = match backend {
            Backend::Mlock => mapping.arm_mlock(),
            Backend::MemfdSecret => mapping.arm_memfd_secret(),
        };
        match result {
            Ok(()) => Ok(mapping),
            Err(e) => {
                // Nothing was handed out yet; give the whole reservation back.
                // SAFETY: `base..base+total_len` is exactly the reservation above.
                unsafe { libc::munmap(base.as_ptr().cast(), total_len) };
                Err(e)
            }
        }
    }

    /// Anonymous pages: read/write, excluded from core dumps, wiped in forked
    /// children, then locked. `mlock` also faults every page in, so a later
    /// access cannot fail for lack of memory.
    fn arm_mlock(&self) -> Result<(), SecMemError> {
        let ptr = self.data.as_ptr().cast::<libc::c_void>();
        // SAFETY: `data..data+data_len` lies inside our own reservation.
        if unsafe { libc::mprotect(ptr, self.data_len, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            return Err(SecMemError::MapFailed { errno: errno() });
        }
        self.advise(libc::MADV_DONTDUMP, "MADV_DONTDUMP")?;
        self.advise(libc::MADV_WIPEONFORK, "MADV_WIPEONFORK")?;
        // SAFETY: as above; mlock only changes residency of our own pages.
        if unsafe { libc::mlock(ptr, self.data_len) } != 0 {
            return Err(SecMemError::lock_failed(errno()));
        }
        Ok(())
    }

    /// `memfd_secret(2)` pages: the kernel removes them from its direct map, so
    /// no other process (root included, through `/proc/PID/mem` or ptrace) and
    /// no kernel code path that goes through the direct map can read them.
    /// They are implicitly locked and charged to RLIMIT_MEMLOCK.
    fn arm_memfd_secret(&self) -> Result<(), SecMemError> {
        let fd = memfd_secret()?;
        // SAFETY: `fd` is a descriptor we own; ftruncate sizes the secret file.
        let rc = unsafe { libc::ftruncate(fd, self.data_len as libc::off_t) };
        if rc != 0 {
            let e = errno();
            close(fd);
            return Err(SecMemError::MapFailed { errno: e });
        }
        // SAFETY: MAP_FIXED replaces the middle of our own PROT_NONE
        // reservation and nothing else; the guard pages stay PROT_NONE.
        let p = unsafe {
            libc::mmap(
                self.data.as_ptr().cast(),
                self.data_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                0,
            )
        };
        let map_errno = errno();
        // The mapping keeps the file alive; the descriptor is no longer needed.
        close(fd);
        if p == libc::MAP_FAILED {
            return Err(SecMemError::lock_failed(map_errno));
        }
        self.advise(libc::MADV_DONTDUMP, "MADV_DONTDUMP")?;
        // Shared mappings cannot be wiped on fork; keep them out of children entirely.
        self.advise(libc::MADV_DONTFORK, "MADV_DONTFORK")?;
        // Fault every page in now rather than on first use of a secret.
        // (MADV_POPULATE_WRITE is refused on secret memory, so touch each page.)
        let page = page_size();
        for offset in (0..self.data_len).step_by(page) {
            // SAFETY: `offset < data_len`, inside the read/write mapping just made.
            unsafe { std::ptr::write_volatile(self.data.as_ptr().add(offset), 0) };
        }
        Ok(())
    }

    fn advise(&self, advice: libc::c_int, name: &'static str) -> Result<(), SecMemError> {
        // SAFETY: advice on our own mapped range; none of the advice values
        // used here discards contents that are in use.
        let rc = unsafe { libc::madvise(self.data.as_ptr().cast(), self.data_len, advice) };
        if rc != 0 {
            return Err(SecMemError::AdviceFailed { advice: name, errno: errno() });
        }
        Ok(())
    }

    /// Zeroes the data pages (volatile), unlocks and unmaps the whole
    /// reservation. Consumes the mapping: the pool calls this only once no
    /// slot of it is in use.
    pub(crate) fn release(self) {
        // SAFETY: the pool guarantees no live slot remains, so this is the only
        // reference to the data pages.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.data_len) };
        crate::zero_mem(bytes);
        if self.backend == Backend::Mlock {
            // SAFETY: unlocking our own pages, which nothing uses any more.
            unsafe { libc::munlock(self.data.as_ptr().cast(), self.data_len) };
        }
        // SAFETY: exactly the reservation made in `new`; no reference into it survives.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.total_len) };
    }
}

fn memfd_secret() -> Result<libc::c_int, SecMemError> {
    // SAFETY: memfd_secret takes a flags word and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_secret, libc::O_CLOEXEC as libc::c_uint) };
    if fd < 0 {
        return Err(SecMemError::BackendUnavailable { backend: Backend::MemfdSecret, errno: errno() });
    }
    Ok(fd as libc::c_int)
}

fn close(fd: libc::c_int) {
    // SAFETY: closing a descriptor this module created and still owns.
    unsafe { libc::close(fd) };
}

/// Whether this kernel offers `memfd_secret(2)` to this process.
pub(crate) fn memfd_secret_available() -> bool {
    match memfd_secret() {
        Ok(fd) => {
            close(fd);
            true
        }
        Err(_) => false,
    }
}

pub(crate) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
