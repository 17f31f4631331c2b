//! A pool of locked pages shared by many small secrets.
//!
//! Locking a page per 32-byte seed would exhaust an 8 MiB RLIMIT_MEMLOCK after
//! 2 048 secrets and cost a handful of system calls per allocation. Instead the
//! pool carves each locked page (one [`Mapping`] with its own guard pages) into
//! slots of one size class, 16 to 2 048 bytes, and keeps a live count per page.
//! A page goes back to the kernel (zero, `munlock`, `munmap`) only when its
//! count is zero: a page that still holds another secret is never unlocked.
//!
//! Larger secrets get a dedicated span of whole pages. To keep allocation
//! cheap, a bounded number of empty pages and free spans stay mapped and locked
//! (already zeroed) for reuse; [`Pool::trim`] returns them to the kernel.
//!
//! Invariant: every free byte the pool holds is zero. Slots and spans are
//! zeroed with volatile writes when their owner drops them, fresh pages come
//! zeroed from the kernel, so every allocation starts zeroed.

use std::fmt;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::sys::{self, Mapping, page_size};
use crate::{Backend, SecMemError};

/// Smallest slot, in bytes (2^4).
const MIN_SLOT_SHIFT: u32 = 4;
/// Largest slot, in bytes (2^11); larger requests get a dedicated span.
const MAX_SLOT_SHIFT: u32 = 11;
const CLASSES: usize = (MAX_SLOT_SHIFT - MIN_SLOT_SHIFT + 1) as usize;
/// Empty slab pages kept per size class, so that an allocate/free cycle of a
/// single secret does not map and unmap a page every time.
const MAX_EMPTY_SLABS_PER_CLASS: usize = 1;
/// Free spans kept for reuse, by count and by bytes.
const SPAN_CACHE_MAX_ENTRIES: usize = 8;
// Large enough to keep one 1 MiB secret's span warm (a quarter of the default
// 8 MiB RLIMIT_MEMLOCK); `Pool::trim` gives it back.
const SPAN_CACHE_MAX_BYTES: usize = 2 * 1024 * 1024;

/// Counters describing what a pool holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Allocations handed out and not yet dropped.
    pub live_allocations: usize,
    /// Bytes requested by those allocations.
    pub live_bytes: usize,
    /// Bytes of locked pages this pool holds, in use or retained for reuse.
    /// This is what counts against RLIMIT_MEMLOCK.
    pub locked_bytes: usize,
    /// Mappings (each with two guard pages) this pool holds.
    pub mappings: usize,
    /// Allocations made since the pool was created.
    pub total_allocations: u64,
    /// Allocations dropped since the pool was created.
    pub total_frees: u64,
}

/// A source of locked secret memory with one backend.
pub struct Pool {
    backend: Backend,
    pooled: bool,
    state: Mutex<State>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("backend", &self.backend)
            .field("pooled", &self.pooled)
            .field("stats", &self.stats())
            .finish()
    }
}

#[derive(Default)]
struct State {
    slabs: Vec<Option<Slab>>,
    free_ids: Vec<usize>,
    /// Per class: slab ids with at least one free slot (the last is used first).
    partial: [Vec<usize>; CLASSES],
    /// Per class: how many slabs have no live slot.
    empty: [usize; CLASSES],
    span_cache: Vec<Mapping>,
    span_cache_bytes: usize,
    stats: PoolStats,
}

struct Slab {
    mapping: Mapping,
    slot_shift: u32,
    slots: usize,
    live: usize,
    bitmap: [u64; 4],
}

impl Slab {
    fn take_slot(&mut self) -> usize {
        for (word_index, word) in self.bitmap.iter_mut().enumerate() {
            if *word != u64::MAX {
                let bit = (!*word).trailing_zeros() as usize;
                let index = word_index * 64 + bit;
                if index < self.slots {
                    *word |= 1 << bit;
                    self.live += 1;
                    return index;
                }
            }
        }
        unreachable!("take_slot on a full slab: the partial list is out of step");
    }

    fn put_slot(&mut self, index: usize) {
        let (word, bit) = (index / 64, index % 64);
        debug_assert!(self.bitmap[word] & (1 << bit) != 0, "double free of a secret slot");
        self.bitmap[word] &= !(1 << bit);
        self.live -= 1;
    }
}

enum Origin {
    Slot { slab: usize, index: usize },
    Span(Option<Mapping>),
}

impl Pool {
    /// A pool on the given backend, if this kernel offers it.
    pub fn new(backend: Backend) -> Result<Pool, SecMemError> {
        if backend == Backend::MemfdSecret && !sys::memfd_secret_available() {
            return Err(SecMemError::BackendUnavailable { backend, errno: libc::ENOSYS });
        }
        Ok(Pool { backend, pooled: true, state: Mutex::new(State::default()) })
    }

    /// A pool that gives every secret its own mapping and returns it to the
    /// kernel on free: no page sharing, no reuse. It exists as the baseline the
    /// pooled allocator is benchmarked against, and for callers that want one
    /// guard-framed mapping per secret whatever it costs.
    pub fn new_unpooled(backend: Backend) -> Result<Pool, SecMemError> {
        let mut pool = Pool::new(backend)?;
        pool.pooled = false;
        Ok(pool)
    }

    /// The strongest backend this kernel offers: `memfd_secret` where it
    /// exists, plain `mlock` otherwise.
    pub fn best_available() -> Pool {
        Pool::new(Backend::MemfdSecret)
            .unwrap_or_else(|_| Pool::new(Backend::Mlock).expect("the mlock backend has no precondition"))
    }

    /// Gives the pool a `'static` lifetime, as the secret containers require.
    /// Pools are process-wide by nature; this is how a test or a daemon makes
    /// its own next to [`global`].
    pub fn leak(self) -> &'static Pool {
        Box::leak(Box::new(self))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; if one ever did, the
        // bookkeeping is still consistent enough to free memory.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocates `len` zeroed, locked bytes.
    pub fn alloc(&'static self, len: usize) -> Result<LockedRegion, SecMemError> {
        self.alloc_aligned(len, 1)
    }

    /// Allocates `len` zeroed, locked bytes starting at a multiple of `align`
    /// (a power of two, at most a page). The capacity is rounded up to a
    /// multiple of `align` as well.
    pub fn alloc_aligned(&'static self, len: usize, align: usize) -> Result<LockedRegion, SecMemError> {
        let page = page_size();
        if !align.is_power_of_two() || align > page {
            return Err(SecMemError::InvalidAlignment { align });
        }
        let need = len.max(1);
        let slot = need
            .checked_next_power_of_two()
            .ok_or(SecMemError::InvalidSize { requested: len })?
            .max(1 << MIN_SLOT_SHIFT)
            .max(align);
        if self.pooled && slot <= (1 << MAX_SLOT_SHIFT) && slot <= page {
            self.alloc_slot(len, slot.trailing_zeros())
        } else {
            let span_len = need.checked_next_multiple_of(page).ok_or(SecMemError::InvalidSize { requested: len })?;
            self.alloc_span(len, span_len)
        }
    }

    fn alloc_slot(&'static self, len: usize, slot_shift: u32) -> Result<LockedRegion, SecMemError> {
        let class = (slot_shift - MIN_SLOT_SHIFT) as usize;
        let mut st = self.lock();
        let id = match st.partial[class].last() {
            Some(&id) => id,
            None => {
                // Mapping a page under the lock keeps the bookkeeping simple;
                // it happens once per 4 KiB of small secrets.
                let mapping = Mapping::new(page_size(), self.backend)?;
                let slots = mapping.data_len() >> slot_shift;
                let slab = Slab { mapping, slot_shift, slots, live: 0, bitmap: [0; 4] };
                st.stats.mappings += 1;
                st.stats.locked_bytes += slab.mapping.data_len();
                let id = match st.free_ids.pop() {
                    Some(id) => {
                        st.slabs[id] = Some(slab);
                        id
                    }
                    None => {
                        st.slabs.push(Some(slab));
                        st.slabs.len() - 1
                    }
                };
                st.partial[class].push(id);
                st.empty[class] += 1;
                id
            }
        };
        let slab = st.slabs[id].as_mut().expect("partial list names a live slab");
        let was_empty = slab.live == 0;
        let index = slab.take_slot();
        let now_full = slab.live == slab.slots;
        // `index < slots`, so the slot lies inside the slab's page.
        let ptr = slab.mapping.data().as_ptr().wrapping_add(index << slot_shift);
        if was_empty {
            st.empty[class] -= 1;
        }
        if now_full {
            st.partial[class].pop();
        }
        st.stats.live_allocations += 1;
        st.stats.live_bytes += len;
        st.stats.total_allocations += 1;
        drop(st);
        Ok(LockedRegion {
            ptr: NonNull::new(ptr).expect("slot pointer inside a mapping is non-null"),
            len,
            capacity: 1 << slot_shift,
            pool: self,
            origin: Origin::Slot { slab: id, index },
        })
    }

    fn alloc_span(&'static self, len: usize, span_len: usize) -> Result<LockedRegion, SecMemError> {
        let mut st = self.lock();
        let cached = st.span_cache.iter().position(|m| m.data_len() == span_len);
        let mapping = match cached {
            Some(pos) => {
                let m = st.span_cache.swap_remove(pos);
                st.span_cache_bytes -= span_len;
                m
            }
            None => {
                drop(st);
                let m = Mapping::new(span_len, self.backend)?;
                st = self.lock();
                st.stats.mappings += 1;
                st.stats.locked_bytes += span_len;
                m
            }
        };
        st.stats.live_allocations += 1;
        st.stats.live_bytes += len;
        st.stats.total_allocations += 1;
        drop(st);
        Ok(LockedRegion {
            ptr: mapping.data(),
            len,
            capacity: span_len,
            pool: self,
            origin: Origin::Span(Some(mapping)),
        })
    }

    /// Returns a zeroed slot or span to the pool; pages with no live secret
    /// left go back to the kernel unless kept for reuse.
    fn free(&self, origin: &mut Origin, len: usize) {
        let mut to_release: Option<Mapping> = None;
        let mut st = self.lock();
        st.stats.live_allocations -= 1;
        st.stats.live_bytes -= len;
        st.stats.total_frees += 1;
        match origin {
            Origin::Slot { slab: id, index } => {
                let (id, index) = (*id, *index);
                let slab = st.slabs[id].as_mut().expect("a live slot names a live slab");
                let class = (slab.slot_shift - MIN_SLOT_SHIFT) as usize;
                let was_full = slab.live == slab.slots;
                slab.put_slot(index);
                let now_empty = slab.live == 0;
                if was_full {
                    st.partial[class].push(id);
                }
                if now_empty {
                    if self.pooled && st.empty[class] < MAX_EMPTY_SLABS_PER_CLASS {
                        st.empty[class] += 1;
                    } else {
                        st.partial[class].retain(|&p| p != id);
                        let slab = st.slabs[id].take().expect("checked above");
                        st.free_ids.push(id);
                        to_release = Some(slab.mapping);
                    }
                }
            }
            Origin::Span(mapping) => {
                let mapping = mapping.take().expect("a span is freed once");
                let n = mapping.data_len();
                if self.pooled
                    && st.span_cache.len() < SPAN_CACHE_MAX_ENTRIES
                    && st.span_cache_bytes + n <= SPAN_CACHE_MAX_BYTES
                {
                    st.span_cache_bytes += n;
                    st.span_cache.push(mapping);
                } else {
                    to_release = Some(mapping);
                }
            }
        }
        if let Some(m) = &to_release {
            st.stats.mappings -= 1;
            st.stats.locked_bytes -= m.data_len();
        }
        drop(st);
        if let Some(m) = to_release {
            m.release();
        }
    }

    /// Returns every retained empty page and cached span to the kernel.
    /// Pages that hold a live secret are untouched.
    pub fn trim(&self) {
        let mut released = Vec::new();
        let mut st = self.lock();
        for class in 0..CLASSES {
            let ids: Vec<usize> = st.partial[class]
                .iter()
                .copied()
                .filter(|&id| st.slabs[id].as_ref().is_some_and(|s| s.live == 0))
                .collect();
            for id in ids {
                st.partial[class].retain(|&p| p != id);
                let slab = st.slabs[id].take().expect("filtered on presence");
                st.free_ids.push(id);
                st.empty[class] -= 1;
                released.push(slab.mapping);
            }
        }
        released.append(&mut st.span_cache);
        st.span_cache_bytes = 0;
        for m in &released {
            st.stats.mappings -= 1;
            st.stats.locked_bytes -= m.data_len();
        }
        drop(st);
        released.into_iter().for_each(Mapping::release);
    }
}

static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// The process-wide pool used by the secret containers' plain constructors.
/// On first use it picks [`Pool::best_available`], unless [`configure_global`]
/// chose first.
pub fn global() -> &'static Pool {
    GLOBAL.get_or_init(Pool::best_available)
}

/// Chooses the global pool's backend. Call it before the first secret is
/// allocated; afterwards it succeeds only if the backend already matches.
pub fn configure_global(backend: Backend) -> Result<&'static Pool, SecMemError> {
    let mut created = None;
    let pool = GLOBAL.get_or_init(|| match Pool::new(backend) {
        Ok(p) => p,
        Err(e) => {
            created = Some(e);
            Pool::best_available()
        }
    });
    if let Some(e) = created {
        return Err(e);
    }
    if pool.backend() != backend {
        return Err(SecMemError::AlreadyConfigured { active: pool.backend() });
    }
    Ok(pool)
}

/// Locked bytes held by the global pool (what counts against RLIMIT_MEMLOCK).
pub fn locked_bytes_in_use() -> usize {
    GLOBAL.get().map_or(0, |p| p.stats().locked_bytes)
}

/// One allocation of locked memory: the building block of every secret container.
///
/// It owns `capacity` bytes, of which the first `len` are the secret. On drop
/// all `capacity` bytes are zeroed with volatile writes before the slot goes
/// back to the pool.
pub struct LockedRegion {
    ptr: NonNull<u8>,
    len: usize,
    capacity: usize,
    pool: &'static Pool,
    origin: Origin,
}

// SAFETY: a LockedRegion uniquely owns its bytes, like a Box<[u8]>; the pool
// it returns them to is Sync.
unsafe impl Send for LockedRegion {}
// SAFETY: shared references only give out `&[u8]`.
unsafe impl Sync for LockedRegion {}

impl fmt::Debug for LockedRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedRegion").field("len", &self.len).finish_non_exhaustive()
    }
}

impl LockedRegion {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes actually reserved (slot or span size); at least `len`.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Start address, for callers that must hand it to C or inspect the
    /// mapping (tests read `/proc/self/smaps` with it).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub fn pool(&self) -> &'static Pool {
        self.pool
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is inside memory this region owns exclusively,
        // initialised (zeroed at allocation), and alive until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LockedRegion {
    fn drop(&mut self) {
        // SAFETY: the whole capacity belongs to this region until `free` below.
        let all = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity) };
        crate::zero_mem(all);
        self.pool.free(&mut self.origin, self.len);
    }
}
