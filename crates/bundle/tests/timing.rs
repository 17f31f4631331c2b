//! dudect-style leakage test for the hash/identity comparison (seed 000
//! §4.6.2.3, done as a statistical test rather than a wall-clock ratio).
//!
//! Two classes of inputs, interleaved in random order: strings that differ
//! in the first character, and strings that differ only in the last. An
//! early-exit comparison takes longer on the second class; Welch's t over
//! many cropped samples measures whether the two timing distributions
//! differ. The same harness run on a deliberately leaky comparison must
//! find the leak, so a quiet result means something.

use std::hint::black_box;
use std::time::Instant;

const SAMPLES: usize = 40_000;
const BATCH: usize = 8;
/// dudect's threshold for "definitely leaking" is 10; below 4.5 is no
/// evidence at all. The constant-time path must stay under 10 while the
/// leaky control must exceed it.
const THRESHOLD: f64 = 10.0;

fn leaky_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    for i in 0..a.len() {
        if a[i] != b[i] {
            return false;
        }
    }
    true
}

fn welch_t(x: &[f64], y: &[f64]) -> f64 {
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var, n)
    };
    let (mx, vx, nx) = stats(x);
    let (my, vy, ny) = stats(y);
    (mx - my) / (vx / nx + vy / ny).sqrt()
}

/// |t| for `cmp`, after dropping the slowest 10 % of each class (dudect's
/// cropping of interrupts and preemption).
fn leakage(cmp: fn(&str, &str) -> bool) -> f64 {
    let reference = "7f".repeat(32);
    let first = format!("0{}", &reference[1..]).into_bytes();
    let last = format!("{}0", &reference[..63]).into_bytes();
    // Both classes are compared from the same buffer, so that only its
    // content differs between them, not its address or cache state.
    let mut other = reference.clone().into_bytes();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (mut a, mut b) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..2 * SAMPLES {
        // splitmix64: class labels must not correlate with slow drift of
        // the machine (xorshift's low bit did, and biased even a null test).
        rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let class_b = (z ^ (z >> 31)) >> 63 == 1;
        other.copy_from_slice(if class_b { &last } else { &first });
        let other = std::str::from_utf8(&other).expect("ascii");
        let t = Instant::now();
        for _ in 0..BATCH {
            black_box(cmp(black_box(&reference), black_box(other)));
        }
        let ns = t.elapsed().as_nanos() as f64;
        if class_b { b.push(ns) } else { a.push(ns) }
    }
    let crop = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
        v.truncate(v.len() * 9 / 10);
    };
    crop(&mut a);
    crop(&mut b);
    welch_t(&a, &b).abs()
}

#[test]
fn hash_comparison_shows_no_timing_leak_and_the_harness_can_see_one() {
    let control = leakage(leaky_eq);
    let ours = leakage(bundle::verify::ct_eq);
    println!("dudect: |t| constant-time = {ours:.2}, early-exit control = {control:.2} (threshold {THRESHOLD})");
    assert!(
        control > THRESHOLD,
        "the harness cannot detect a known leak (|t| = {control:.2}); the test would prove nothing"
    );
    assert!(ours < THRESHOLD, "ct_eq leaks timing: |t| = {ours:.2}");
}
