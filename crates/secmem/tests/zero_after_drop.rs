//! A dropped secret leaves no copy anywhere in this process's readable memory.
//!
//! The canary is never held in clear outside the secret: the test keeps only
//! its bitwise complement and compares memory against the complement, so the
//! scan cannot find the test's own copy. Each scan first proves it *can* see
//! the canary while the secret lives (positive control, mlock backend), so an
//! empty result after drop means the bytes are gone, not that the scan is blind.

use secmem::inspect::scan_own_memory;
use secmem::{Backend, MLockedBytes, MLockedSeed, Pool};

const LEN: usize = 32;

/// The complement of a fresh random canary.
fn inverted_canary() -> Vec<u8> {
    let mut v = vec![0u8; LEN];
    getrandom::fill(&mut v).unwrap();
    v
}

fn plant(dst: &mut [u8], inverted: &[u8]) {
    for (d, i) in dst.iter_mut().zip(inverted) {
        *d = !std::hint::black_box(*i);
    }
}

/// Addresses at which the canary (the complement of `inverted`) occurs.
fn find_canary(inverted: &[u8]) -> Vec<usize> {
    let mut hits = Vec::new();
    scan_own_memory(LEN - 1, |base, bytes| {
        if bytes.len() < LEN {
            return;
        }
        for j in 0..=bytes.len() - LEN {
            if bytes[j] == !inverted[0] && bytes[j..j + LEN].iter().zip(inverted).all(|(b, i)| *b == !*i) {
                hits.push(base + j);
            }
        }
    })
    .unwrap();
    hits.sort_unstable();
    hits.dedup();
    hits
}

#[test]
fn dropped_secrets_leave_no_copy_in_process_memory() {
    let pool = Pool::new(Backend::Mlock).unwrap().leak();

    // A small slot, a slot in a page shared with a survivor, and a dedicated span.
    let survivor = MLockedBytes::new_in(pool, LEN).unwrap();
    let cases: [(&str, usize, usize); 3] = [("slot", LEN, 0), ("shared page", 64, 17), ("span", 9000, 5000)];
    for (what, len, offset) in cases {
        let inverted = inverted_canary();
        let mut secret = MLockedBytes::new_in(pool, len).unwrap();
        plant(&mut secret.as_mut_slice()[offset..offset + LEN], &inverted);
        let at = secret.region().as_ptr() as usize + offset;
        assert_eq!(find_canary(&inverted), vec![at], "{what}: positive control finds exactly the live secret");
        drop(secret);
        assert_eq!(find_canary(&inverted), Vec::<usize>::new(), "{what}: canary gone after drop");
    }

    // Seeds, and copies made by try_clone, are wiped too.
    let inverted = inverted_canary();
    let mut seed = MLockedSeed::<LEN>::new_in(pool).unwrap();
    plant(seed.as_mut_bytes(), &inverted);
    let clone = seed.try_clone().unwrap();
    assert_eq!(find_canary(&inverted).len(), 2, "seed and its clone are both visible");
    seed.finalize();
    clone.finalize();
    assert!(find_canary(&inverted).is_empty(), "seed and clone wiped");
    drop(survivor);
}

#[test]
fn live_memfd_secret_pages_are_invisible_to_a_memory_scan() {
    let Ok(pool) = Pool::new(Backend::MemfdSecret) else {
        println!("SKIP reason: this kernel has no memfd_secret(2)");
        return;
    };
    let pool = pool.leak();
    let inverted = inverted_canary();
    let mut secret = MLockedBytes::new_in(pool, LEN).unwrap();
    plant(secret.as_mut_slice(), &inverted);
    // The owner can use it...
    assert!(secret.as_slice().iter().zip(&inverted).all(|(b, i)| *b == !*i));
    // ...but a scraper reading /proc/self/mem cannot see it while it lives.
    assert!(find_canary(&inverted).is_empty());
}
