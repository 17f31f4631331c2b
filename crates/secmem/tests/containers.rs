//! The container API: seed 001's tests, plus secret input and redaction.

use secmem::{
    Backend, MLockedBytes, MLockedSeed, MLockedSizedBytes, Pool, SecMemError, SecretBytes, SecretString, copy_mem,
    zero_mem,
};

#[test]
fn aligned_allocation_rounds_up() {
    for (len, align) in [(1usize, 64usize), (33, 64), (100, 128), (5000, 256), (7, 4096)] {
        let b = MLockedBytes::new_aligned(len, align).unwrap();
        assert_eq!(b.len(), len);
        assert_eq!(b.region().as_ptr() as usize % align, 0, "pointer aligned to {align}");
        assert!(b.capacity() >= len.next_multiple_of(align), "capacity rounded up to a multiple of {align}");
        assert_eq!(b.capacity() % align, 0);
    }
    assert!(matches!(MLockedBytes::new_aligned(8, 3), Err(SecMemError::InvalidAlignment { align: 3 })));
    let too_big = secmem::page_size() * 2;
    assert_eq!(MLockedBytes::new_aligned(8, too_big).unwrap_err().code(), "SECMEM_INVALID_ALIGNMENT");
}

#[test]
fn allocate_zeroed() {
    // Dirty a slot, free it, and allocate again from the same pool: the pool
    // must hand out zeroes whether the slot is fresh or reused.
    let pool = Pool::new(Backend::Mlock).unwrap().leak();
    let mut dirty = MLockedBytes::new_in(pool, 48).unwrap();
    dirty.as_mut_slice().fill(0xA5);
    drop(dirty);
    for len in [1usize, 16, 48, 2048, 4097, 20000] {
        let b = MLockedBytes::new_in(pool, len).unwrap();
        assert!(b.as_slice().iter().all(|&x| x == 0), "{len} bytes start zeroed");
    }
    let z = MLockedSizedBytes::<64>::new_zeroed().unwrap();
    assert_eq!(z.as_array(), &[0u8; 64]);
    let s = MLockedSeed::<32>::new_zeroed().unwrap();
    assert_eq!(s.as_bytes(), &[0u8; 32]);
}

#[test]
fn clone_copies_contents() {
    let mut a = MLockedSizedBytes::<32>::new().unwrap();
    for (i, b) in a.as_mut_slice().iter_mut().enumerate() {
        *b = i as u8;
    }
    let c = a.try_clone().unwrap();
    assert_eq!(a.as_slice(), c.as_slice());
    assert_ne!(a.region().as_ptr(), c.region().as_ptr(), "a clone is a fresh allocation");
    // Independent storage: changing the original leaves the clone alone.
    a.as_mut_slice()[0] = 0xFF;
    assert_eq!(c.as_slice()[0], 0);
}

#[test]
fn copy_mem_moves_bytes() {
    let mut src = MLockedBytes::new(40).unwrap();
    src.as_mut_slice().copy_from_slice(&[7u8; 40]);
    let mut dst = MLockedBytes::new(40).unwrap();
    copy_mem(dst.as_mut_slice(), src.as_slice()).unwrap();
    assert_eq!(dst.as_slice(), &[7u8; 40]);
    let mut short = MLockedBytes::new(39).unwrap();
    let err = copy_mem(short.as_mut_slice(), src.as_slice()).unwrap_err();
    assert_eq!(err, SecMemError::LengthMismatch { expected: 39, actual: 40 });
    assert!(short.as_slice().iter().all(|&b| b == 0), "nothing copied on mismatch");
}

#[test]
fn dynamic_allocate_and_clone() {
    for len in [0usize, 1, 31, 32, 100, 2048, 2049, 4096, 70_000] {
        let mut a = MLockedBytes::new(len).unwrap();
        assert_eq!(a.len(), len);
        assert_eq!(a.is_empty(), len == 0);
        for (i, b) in a.as_mut_slice().iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
        let c = a.try_clone().unwrap();
        assert_eq!(c.len(), len);
        assert_eq!(a.as_slice(), c.as_slice());
    }
}

#[test]
fn zero_mem_clears_region() {
    let mut b = MLockedBytes::new(300).unwrap();
    b.as_mut_slice().fill(0x5A);
    zero_mem(&mut b.as_mut_slice()[100..200]);
    assert!(b.as_slice()[..100].iter().all(|&x| x == 0x5A));
    assert!(b.as_slice()[100..200].iter().all(|&x| x == 0));
    assert!(b.as_slice()[200..].iter().all(|&x| x == 0x5A));
}

#[test]
fn zero_mem_clears_exactly_the_region_at_any_alignment() {
    let mut b = MLockedBytes::new(96).unwrap();
    for start in 0..17 {
        for len in 0..41 {
            b.as_mut_slice().fill(0xEE);
            zero_mem(&mut b.as_mut_slice()[start..start + len]);
            let s = b.as_slice();
            assert!(s[..start].iter().all(|&x| x == 0xEE), "before {start}+{len}");
            assert!(s[start..start + len].iter().all(|&x| x == 0), "inside {start}+{len}");
            assert!(s[start + len..].iter().all(|&x| x == 0xEE), "after {start}+{len}");
        }
    }
}

#[test]
fn random_seed_has_content() {
    let a = MLockedSeed::<32>::new_random().unwrap();
    let b = MLockedSeed::<32>::new_random().unwrap();
    assert_ne!(a.as_bytes(), &[0u8; 32]);
    assert_ne!(a.as_bytes(), b.as_bytes(), "two random seeds differ");
    let mut c = a.try_clone().unwrap();
    assert_eq!(a.as_bytes(), c.as_bytes());
    c.fill_random().unwrap();
    assert_ne!(a.as_bytes(), c.as_bytes());
    // Across many draws every bit position takes both values.
    let mut or = [0u8; 32];
    let mut and = [0xFFu8; 32];
    for _ in 0..64 {
        let s = MLockedSeed::<32>::new_random().unwrap();
        for i in 0..32 {
            or[i] |= s.as_bytes()[i];
            and[i] &= s.as_bytes()[i];
        }
    }
    assert_eq!(or, [0xFF; 32]);
    assert_eq!(and, [0; 32]);
}

#[test]
fn seed_reads_straight_from_reader_and_fails_cleanly_when_short() {
    let input: Vec<u8> = (0..32).collect();
    let seed = MLockedSeed::<32>::from_reader(&mut input.as_slice()).unwrap();
    assert_eq!(&seed.as_bytes()[..], &input[..]);
    let err = MLockedSeed::<32>::from_reader(&mut &input[..31]).unwrap_err();
    assert_eq!(err.code(), "SECMEM_IO");
    let b = MLockedBytes::from_reader(&mut input.as_slice(), 16).unwrap();
    assert_eq!(b.as_slice(), &input[..16]);
}

#[test]
fn secret_strings_read_lines_and_bound_length() {
    let mut input: &[u8] = b"correct horse\r\nnext line";
    let s = SecretString::read_line(&mut input, 64).unwrap();
    assert_eq!(s.expose(), "correct horse");
    assert_eq!(input, b"next line", "nothing after the line is consumed");
    let mut long: &[u8] = b"0123456789abcdef\n";
    assert_eq!(SecretString::read_line(&mut long, 8).unwrap_err(), SecMemError::TooLong { max: 8 });
    let mut exact: &[u8] = b"12345678";
    assert_eq!(SecretBytes::read_to_end(&mut exact, 8).unwrap().expose(), b"12345678");
    let mut over: &[u8] = b"123456789";
    assert_eq!(SecretBytes::read_to_end(&mut over, 8).unwrap_err().code(), "SECMEM_TOO_LONG");
    let mut bad: &[u8] = b"\xff\xfe\n";
    assert_eq!(SecretString::read_line(&mut bad, 8).unwrap_err(), SecMemError::InvalidUtf8);
}

#[test]
fn debug_output_never_shows_contents() {
    let mut b = MLockedBytes::new(4).unwrap();
    b.as_mut_slice().copy_from_slice(b"\x41\x42\x43\x44");
    let sized = MLockedSizedBytes::<4>::new_random().unwrap();
    let seed = MLockedSeed::<4>::new_random().unwrap();
    let text = SecretString::read_line(&mut &b"hunter2"[..], 16).unwrap();
    let rendered = format!("{b:?} {sized:?} {seed:?} {text:?} {:?}", b.region());
    assert!(!rendered.contains("hunter2"));
    assert!(!rendered.contains("ABCD") && !rendered.contains("65, 66"));
    assert!(rendered.contains("redacted"));
    for secret in [sized.as_slice(), &seed.as_bytes()[..]] {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let decimal = format!("{secret:?}");
        assert!(!rendered.contains(&hex) && !rendered.contains(&decimal));
    }
}

#[test]
fn stats_count_allocations_and_frees() {
    let pool = Pool::new(Backend::Mlock).unwrap().leak();
    let a = MLockedBytes::new_in(pool, 32).unwrap();
    let b = MLockedBytes::new_in(pool, 10_000).unwrap();
    let s = pool.stats();
    assert_eq!(s.live_allocations, 2);
    assert_eq!(s.live_bytes, 10_032);
    assert_eq!(s.locked_bytes, secmem::page_size() + 12_288);
    drop(a);
    drop(b);
    let s = pool.stats();
    assert_eq!((s.live_allocations, s.live_bytes, s.total_allocations, s.total_frees), (0, 0, 2, 2));
    pool.trim();
    assert_eq!(pool.stats().locked_bytes, 0, "trim returns every unused page");
    assert_eq!(pool.stats().mappings, 0);
}

#[test]
fn global_pool_rejects_a_second_backend() {
    let active = secmem::global().backend();
    let other = if active == Backend::Mlock { Backend::MemfdSecret } else { Backend::Mlock };
    assert!(secmem::configure_global(active).is_ok());
    let err = secmem::configure_global(other).unwrap_err();
    assert!(matches!(err, SecMemError::AlreadyConfigured { .. } | SecMemError::BackendUnavailable { .. }), "{err}");
}
