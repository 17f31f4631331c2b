//! `keyward-x402-demo`: a local x402 resource server + facilitator + Solana RPC
//! on litesvm, with three demo routes. Prints one JSON line describing the
//! endpoints, then serves until killed.
//!
//! Usage: keyward-x402-demo [--payer BASE58 | --payer-file PATH] [--fund ATOMIC_UNITS]
//!
//! With `--payer-file`, the demo prints its line first, then waits (up to
//! ten minutes) for PATH to hold the payer's public key (base58, or 64 hex
//! digits as `keyward --json key create` prints it) and funds it: a signer
//! can be configured with the demo's fee payer before its key exists.
#![forbid(unsafe_code)]

use std::io::Write as _;

use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_harness::{Harness, RouteSpec};

/// Seed of the fixed demo payee key.
const DEMO_PAYEE_SEED: [u8; 32] = *b"keyward-x402-demo-payee-seed-v1!";

fn usage() -> ! {
    eprintln!("usage: keyward-x402-demo [--payer BASE58 | --payer-file PATH] [--fund ATOMIC_UNITS]");
    std::process::exit(2)
}

fn main() {
    let mut payer: Option<String> = None;
    let mut fund: u64 = 0;
    let mut payer_file: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--payer" => payer = Some(args.next().unwrap_or_else(|| usage())),
            "--payer-file" => payer_file = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--fund" => fund = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if let Some(p) = &payer
        && p.parse::<solana_address::Address>().is_err()
    {
        eprintln!("--payer: not a base58 32-byte address: {p}");
        std::process::exit(2);
    }

    let harness = Harness::start(false);
    let payee = Keypair::new_from_array(DEMO_PAYEE_SEED).pubkey().to_string();
    harness.create_ata(&payee);
    if let Some(p) = &payer {
        harness.fund(p, fund);
    }
    harness.route("/weather", RouteSpec::new(&harness, 2, 10_000, &payee));
    let mut premium = RouteSpec::new(&harness, 2, 2_000_000, &payee);
    premium.body = r#"{"premium":"content"}"#.to_owned();
    harness.route("/premium", premium);
    let mut quote = RouteSpec::new(&harness, 1, 5_000, &payee);
    quote.body = r#"{"quote":"the best way to predict the future is to invent it"}"#.to_owned();
    harness.route("/v1/quote", quote);

    let line = serde_json::json!({
        "resource_base": harness.resource_base(),
        "rpc_url": harness.rpc_url(),
        "mint": harness.mint(),
        "fee_payer": harness.facilitator_pubkey(),
        "payee": payee,
        "genesis_hash": harness.genesis_hash(),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drop(out);
    if let Some(path) = payer_file {
        match wait_for_payer(&path) {
            Some(p) => harness.fund(&p, fund),
            None => {
                eprintln!("--payer-file: no payer public key appeared in {}", path.display());
                std::process::exit(2);
            }
        }
    }
    // Serve until killed (SIGTERM's default action ends the process).
    loop {
        std::thread::park();
    }
}

/// Waits for `path` to hold a public key: base58, or 64 hex digits.
fn wait_for_payer(path: &std::path::Path) -> Option<String> {
    for _ in 0..6000 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let t = text.trim();
            if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                let bytes: Vec<u8> =
                    (0..32).filter_map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok()).collect();
                let raw: [u8; 32] = bytes.try_into().ok()?;
                return Some(solana_address::Address::new_from_array(raw).to_string());
            }
            if t.parse::<solana_address::Address>().is_ok() {
                return Some(t.to_string());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}
