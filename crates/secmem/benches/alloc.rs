//! Allocate + fill + free of a 32-byte and a 4 KiB secret.
//!
//! Baselines, measured in the same run:
//! * `heap_box_zeroize`: a plain `Box<[u8]>`, filled, wiped with `zeroize`, freed.
//!   What a careful program without locked memory does. Goal: pooled small
//!   secrets within 3x of this.
//! * `raw_mmap_mlock`: one `mmap` + `mlock` per secret, wiped, `munlock` +
//!   `munmap` on free. What a locked allocator without a pool does.
//!
//! Candidates: the pooled allocator on each backend, and the unpooled
//! guard-framed path (`Pool::new_unpooled`) for reference.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use secmem::{Backend, MLockedBytes, Pool};
use zeroize::Zeroize;

const SIZES: [(usize, &str); 2] = [(32, "32B"), (4096, "4KiB")];

fn raw_mmap_mlock(n: usize) {
    let len = n.next_multiple_of(secmem::page_size());
    // SAFETY: a fresh private anonymous mapping, used only inside this function
    // and unmapped before it returns.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::mlock(p, len), 0);
        let s = std::slice::from_raw_parts_mut(p.cast::<u8>(), n);
        s.fill(0xA5);
        black_box(&*s);
        s.zeroize();
        libc::munlock(p, len);
        libc::munmap(p, len);
    }
}

fn bench(c: &mut Criterion) {
    let mlock = Pool::new(Backend::Mlock).unwrap().leak();
    let secret = Pool::new(Backend::MemfdSecret).ok().map(Pool::leak);
    let unpooled = Pool::new_unpooled(Backend::Mlock).unwrap().leak();
    let mut g = c.benchmark_group("alloc_fill_free");
    for (n, label) in SIZES {
        g.bench_with_input(BenchmarkId::new("heap_box_zeroize", label), &n, |b, &n| {
            b.iter(|| {
                let mut v = vec![0u8; black_box(n)].into_boxed_slice();
                v.fill(0xA5);
                black_box(&v);
                // Through the slice: the same bulk volatile path secmem uses
                // (`Box<[u8]>::zeroize` goes element by element and would
                // flatter the pool).
                v[..].zeroize();
            })
        });
        g.bench_with_input(BenchmarkId::new("raw_mmap_mlock", label), &n, |b, &n| {
            b.iter(|| raw_mmap_mlock(black_box(n)))
        });
        let pools =
            [("pooled_mlock", Some(mlock)), ("pooled_memfd_secret", secret), ("unpooled_mlock", Some(unpooled))];
        for (name, pool) in pools {
            let Some(pool) = pool else { continue };
            g.bench_with_input(BenchmarkId::new(name, label), &n, |b, &n| {
                b.iter(|| {
                    let mut s = MLockedBytes::new_in(pool, black_box(n)).unwrap();
                    s.as_mut_slice().fill(0xA5);
                    black_box(s.as_slice());
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
