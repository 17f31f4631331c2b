//! `keyward`: the client and operator tool.
//!
//! It talks to `keywardd` and never holds key bytes: it does not link the
//! vault, the secret-memory containers or the signing-key types, so no code
//! path in this binary can reach a key. Its commands arrive with the signer,
//! policy, crypto and bundle issues.
#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "keyward",
    version,
    about = "keyward client: submit intents to keywardd (commands arrive with the signer issue)"
)]
struct Args {}

fn main() {
    let _args = Args::parse();
    println!("keyward {}: no commands yet; see README.md for the capability status", env!("CARGO_PKG_VERSION"));
}
