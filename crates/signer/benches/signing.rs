//! End-to-end signed requests through the real socket, with policy, the
//! lifecycle, the durable spend ledger and the signed, anchored audit log
//! (every released signature waits for a TPM-counter anchor), at 1,
//! 16 and 64 clients, against raw in-process Ed25519 signing on one core
//! (ed25519-dalek through the `crypto` crate's mlocked key: the limit).
//!
//! `cargo bench -p signer --bench signing`; under `cargo test --benches` it
//! runs a few requests only, so the code cannot rot.

use std::path::Path;
use std::time::{Duration, Instant};

use crypto::ed25519::Ed25519SigningKey;
use daemon_harness::{Daemon, Options, x402_intent};
use ipc::api::{Request, Response};
use secmem::MLockedSeed;

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let run_for = if full { Duration::from_secs(4) } else { Duration::from_millis(200) };

    // Baseline: raw signing on one core.
    let seed = MLockedSeed::<32>::new_random().unwrap();
    let key = Ed25519SigningKey::gen_key_m(&seed).unwrap();
    let message = [7u8; 8];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for {
        std::hint::black_box(key.sign_bytes_m(std::hint::black_box(&message)));
        n += 1;
    }
    let raw_rate = n as f64 / start.elapsed().as_secs_f64();
    println!("raw in-process Ed25519 signing, 1 core: {raw_rate:.0} signatures/s");

    let policy = Options::default()
        .policy
        .replace("daily_cap = 100000000", "daily_cap = 18000000000000000000")
        .replace("daily_limit = 50000000", "daily_limit = 18000000000000000000");
    let d = Daemon::start(Path::new(KEYWARDD), &Options { policy, ..Options::default() });
    let mut admin = d.client().unwrap();
    assert!(matches!(
        admin.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }),
        Ok(Response::Key { .. })
    ));
    println!("end-to-end signed requests (policy + lifecycle + fsynced ledger and audit):");
    println!("clients   requests/s   vs raw   p50 us   p99 us");
    for clients in [1usize, 16, 64] {
        let lat: Vec<Vec<Duration>> = std::thread::scope(|s| {
            let d = &d;
            let hs: Vec<_> = (0..clients)
                .map(|c| {
                    s.spawn(move || {
                        let mut client = d.client().unwrap();
                        let mut lat = Vec::new();
                        let begin = Instant::now();
                        let mut i = 0;
                        while begin.elapsed() < run_for {
                            let intent = x402_intent(&format!("b{clients}-{c}-{i}"), 1);
                            let t = Instant::now();
                            match client.call(&Request::Submit { intent }) {
                                Ok(Response::Decision { signature: Some(_), .. }) => lat.push(t.elapsed()),
                                other => panic!("{other:?}"),
                            }
                            i += 1;
                        }
                        lat
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<Duration> = lat.into_iter().flatten().collect();
        all.sort();
        let rate = all.len() as f64 / run_for.as_secs_f64();
        println!(
            "{clients:>7}   {rate:>10.0}   {:>5.1}%   {:>6.0}   {:>6.0}",
            100.0 * rate / raw_rate,
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        );
    }
    if let Ok(Response::Daemon { status }) = admin.call(&Request::DaemonStatus) {
        println!("key window: {}", status["keys"]);
        // Every released signature waits for an anchor (a TPM counter
        // increment) covering it; group commit shares one among the waiters.
        let anchors = status["anchor"]["committed_this_run"].as_u64().unwrap_or(0);
        let signed = status["requests"]["Submitted"].as_u64().unwrap_or(0);
        println!(
            "anchors committed: {anchors} for {signed} signatures ({:.2} signatures per anchor)",
            signed as f64 / anchors.max(1) as f64
        );
    }
}
