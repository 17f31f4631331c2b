//! What the kernel says about secret pages: locked, excluded from dumps,
//! wiped on fork, guarded, hidden from /proc/self/mem, shared by reference count.

use secmem::inspect::{mapping_containing, own_mappings, read_via_proc_mem};
use secmem::{Backend, MLockedBytes, Pool};

fn page() -> usize {
    secmem::page_size()
}

#[test]
fn mlock_backend_pages_are_locked_and_excluded_from_dumps() {
    let pool = Pool::new(Backend::Mlock).unwrap().leak();
    for len in [32usize, 3000, 3 * 4096 + 1] {
        let secret = MLockedBytes::new_in(pool, len).unwrap();
        let m = mapping_containing(secret.region().as_ptr()).unwrap().expect("mapping of the secret");
        assert!(m.size_kb > 0);
        assert_eq!(m.locked_kb, m.size_kb, "Locked: covers the whole mapping ({len} bytes)");
        assert!(m.has_flag("lo"), "VmFlags lo: {:?}", m.vm_flags);
        assert!(m.has_flag("dd"), "VmFlags dd (MADV_DONTDUMP): {:?}", m.vm_flags);
        assert!(m.has_flag("wf"), "VmFlags wf (MADV_WIPEONFORK): {:?}", m.vm_flags);
        assert!(m.size_kb * 1024 >= len as u64);
    }
}

#[test]
fn every_mapping_is_framed_by_guard_pages() {
    let pool = Pool::new(Backend::Mlock).unwrap().leak();
    let secret = MLockedBytes::new_in(pool, 9000).unwrap();
    let maps = own_mappings().unwrap();
    let i = maps
        .iter()
        .position(|m| m.start <= secret.region().as_ptr() as usize && (secret.region().as_ptr() as usize) < m.end)
        .unwrap();
    let (before, data, after) = (&maps[i - 1], &maps[i], &maps[i + 1]);
    assert_eq!(before.end, data.start, "guard page directly below");
    assert_eq!(after.start, data.end, "guard page directly above");
    for guard in [before, after] {
        assert_eq!(&guard.perms[..3], "---", "guard pages are PROT_NONE");
        // Neighbouring mappings' guards merge into one PROT_NONE area.
        assert!(guard.end - guard.start >= page());
    }
}

#[test]
fn memfd_secret_pages_cannot_be_read_through_proc_mem() {
    let Ok(pool) = Pool::new(Backend::MemfdSecret) else {
        println!("SKIP reason: this kernel has no memfd_secret(2); the mlock backend tests cover the fallback");
        return;
    };
    let pool = pool.leak();
    let mut secret = MLockedBytes::new_in(pool, 64).unwrap();
    secret.as_mut_slice().fill(0x42);
    assert_eq!(secret.as_slice(), &[0x42; 64], "the owner reads its secret normally");
    let err = read_via_proc_mem(secret.region().as_ptr(), 64).expect_err("secret page must not be readable");
    assert!(err.raw_os_error().is_some(), "refused by the kernel: {err}");
    // Positive control: the same read path works on ordinary memory.
    let public = vec![0x42u8; 64];
    assert_eq!(read_via_proc_mem(public.as_ptr(), 64).unwrap(), public);
    let m = mapping_containing(secret.region().as_ptr()).unwrap().unwrap();
    assert!(m.path.starts_with("/secretmem"), "{}", m.path);
    assert!(m.has_flag("lo") && m.has_flag("dd"), "{:?}", m.vm_flags);
}

#[test]
fn a_page_shared_by_two_secrets_stays_locked_until_both_are_dropped() {
    let pool = Pool::new(Backend::Mlock).unwrap().leak();
    let mut a = MLockedBytes::new_in(pool, 32).unwrap();
    let mut b = MLockedBytes::new_in(pool, 32).unwrap();
    let page_of = |p: *const u8| p as usize / page() * page();
    assert_eq!(page_of(a.region().as_ptr()), page_of(b.region().as_ptr()), "small secrets share a page");
    a.as_mut_slice().fill(1);
    b.as_mut_slice().fill(2);
    let b_ptr = b.region().as_ptr();
    drop(a);
    let m = mapping_containing(b_ptr).unwrap().expect("page still mapped");
    assert_eq!(m.locked_kb, m.size_kb, "the page still holding b stays locked");
    assert!(m.has_flag("lo"));
    assert_eq!(b.as_slice(), &[2u8; 32]);
    assert_eq!(pool.stats().live_allocations, 1);
    drop(b);
    // One empty page per size class is kept (zeroed, locked) for reuse...
    assert_eq!(pool.stats().locked_bytes, page());
    // ...and trim returns it to the kernel. (The pool's counters, not the
    // address: a test running in parallel may map a new page right there.)
    pool.trim();
    assert_eq!(pool.stats().mappings, 0);
    assert_eq!(pool.stats().locked_bytes, 0);
}

#[test]
fn unpooled_pool_gives_each_secret_its_own_mapping_and_returns_it_on_drop() {
    let pool = Pool::new_unpooled(Backend::Mlock).unwrap().leak();
    let a = MLockedBytes::new_in(pool, 32).unwrap();
    let b = MLockedBytes::new_in(pool, 32).unwrap();
    assert_ne!(a.region().as_ptr() as usize / page(), b.region().as_ptr() as usize / page());
    assert_eq!(pool.stats().mappings, 2);
    drop(a);
    drop(b);
    assert_eq!(pool.stats().mappings, 0);
    assert_eq!(pool.stats().locked_bytes, 0);
}

#[test]
fn many_small_secrets_pack_into_few_pages() {
    let pool = Pool::new(Backend::Mlock).unwrap().leak();
    let secrets: Vec<_> = (0..1000).map(|_| MLockedBytes::new_in(pool, 32).unwrap()).collect();
    // 128 slots of 32 bytes per 4 KiB page.
    assert_eq!(pool.stats().mappings, 1000usize.div_ceil(page() / 32));
    assert_eq!(pool.stats().live_bytes, 32_000);
    drop(secrets);
    assert_eq!(pool.stats().live_allocations, 0);
    assert!(pool.stats().mappings <= 1, "all but one empty page returned at once");
}
