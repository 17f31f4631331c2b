//! `keyward-x402-demo`: a local x402 resource server + facilitator + Solana RPC
//! on litesvm, with three demo routes. Prints one JSON line describing the
//! endpoints, then serves until killed.
//!
//! Usage: keyward-x402-demo [--payer BASE58] [--fund ATOMIC_UNITS]
#![forbid(unsafe_code)]

use std::io::Write as _;

use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_harness::{Harness, RouteSpec};

/// Seed of the fixed demo payee key.
const DEMO_PAYEE_SEED: [u8; 32] = *b"keyward-x402-demo-payee-seed-v1!";

fn usage() -> ! {
    eprintln!("usage: keyward-x402-demo [--payer BASE58] [--fund ATOMIC_UNITS]");
    std::process::exit(2)
}

fn main() {
    let mut payer: Option<String> = None;
    let mut fund: u64 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--payer" => payer = Some(args.next().unwrap_or_else(|| usage())),
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
    // Serve until killed (SIGTERM's default action ends the process).
    loop {
        std::thread::park();
    }
}
