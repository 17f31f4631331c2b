//! `keyward x402 fetch` end to end, with nothing mocked: a real `keywardd`
//! (its own swtpm and vault), a local x402 resource server over HTTPS with
//! its own CA, a facilitator whose rules are written independently of
//! keyward's builder (x402-harness, on solana crates), a local JSON-RPC
//! endpoint, and a real Solana VM (litesvm) with the real SPL Token program
//! executing the co-signed transaction.
//!
//! Then every hostile challenge of docs/x402.md "Hostile servers": each is
//! refused with its code, nothing is signed and nothing is reserved.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use x402_harness::world::{PAYEE, World, code};
use x402_harness::{Hostile, RouteSpec};

const KEYWARD: &str = env!("CARGO_BIN_EXE_keyward");

fn keywardd() -> PathBuf {
    Path::new(KEYWARD).with_file_name("keywardd")
}

/// A payee the policy refuses outright.
const DENIED: &str = "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG";

fn world() -> World {
    World::start(&keywardd(), Path::new(KEYWARD), |p| {
        p.replace("trusted_authorities = [", &format!("denied_payees = [\"{DENIED}\"]\ntrusted_authorities = ["))
    })
    .unwrap()
}

#[test]
fn a_402_is_paid_on_a_real_solana_vm_and_the_receipt_is_verified() {
    let w = world();
    for (path, version, amount) in [("/weather", 2u8, 10_000u64), ("/quote", 1, 5_000)] {
        let mut spec = RouteSpec::new(&w.h, version, amount, PAYEE);
        spec.body = format!("{{\"paid\":\"{path}\"}}");
        w.h.route(path, spec);
    }
    let fee_payer = w.h.facilitator_pubkey();
    let (ours0, payee0, fees0) = (w.h.token_balance(&w.ours), w.h.token_balance(PAYEE), w.h.lamports(&fee_payer));

    let (status, v) = w.fetch("/weather", &[]);
    assert_eq!(status, 0, "{v}");
    assert_eq!(v["outcome"], "paid", "{v}");
    assert_eq!(v["body"], "{\"paid\":\"/weather\"}");
    assert_eq!(v["payment"]["receipt_verified"], true, "{v}");
    assert_eq!(w.h.token_balance(&w.ours), ours0 - 10_000, "the payer's token account drops by exactly the amount");
    assert_eq!(w.h.token_balance(PAYEE), payee0 + 10_000, "the payee's rises by it");
    assert!(w.h.lamports(&fee_payer) < fees0, "the fee payer pays the fee");
    let s = w.h.settlements();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].payer, w.ours);
    assert_eq!(Some(s[0].signature.as_str()), v["payment"]["transaction"].as_str());
    // The signer recorded the verified receipt and settled the request.
    assert!(w.d.events("settled").iter().any(|e| e["receipt_verified"] == true));

    // v1 (X-PAYMENT) too.
    let (status, v) = w.fetch("/quote", &[]);
    assert_eq!((status, v["outcome"].as_str()), (0, Some("paid")), "{v}");
    assert_eq!(w.h.token_balance(PAYEE), payee0 + 15_000);
    assert!(w.h.last_request_headers("/quote").iter().any(|(k, _)| k.eq_ignore_ascii_case("x-payment")));
    assert_eq!(w.signed(), 2);

    // A dry run pays nothing and signs nothing.
    let (status, v) = w.fetch("/weather", &["--dry-run"]);
    assert_eq!((status, v["outcome"].as_str()), (3, Some("dry_run")), "{v}");
    assert_eq!(w.signed(), 2);
    assert_eq!(w.h.settlements().len(), 2);

    // Re-running with the same idempotency key never pays twice.
    let (status, _) = w.fetch("/weather", &["--idempotency-key", "job-7"]);
    assert_eq!(status, 0);
    let balance = w.h.token_balance(&w.ours);
    let (_, v) = w.fetch("/weather", &["--idempotency-key", "job-7"]);
    assert_ne!(v["outcome"], "error", "{v}");
    assert_eq!(w.h.token_balance(&w.ours), balance, "the second run re-sent the same transaction at most");
    assert_eq!(w.signed(), 3, "one signature for one idempotency key");
}

#[test]
fn hostile_servers_are_refused_and_nothing_is_signed_or_reserved() {
    let w = world();
    let ours = w.ours.clone();
    type Edit = Box<dyn Fn(&mut RouteSpec)>;
    let cases: Vec<(&str, Edit, i32, &str)> = vec![
        ("/denied-payee", Box::new(|s| s.pay_to = DENIED.into()), 2, "DENY_UNTRUSTED_FACILITATOR_OR_PAYEE"),
        (
            "/unknown-mint",
            Box::new(|s| s.asset = "CKfatsPMUf8SkiURsDXs7eK6GWb4Jsd6UDbs7twMCWxo".into()),
            2,
            "DENY_ASSET_NOT_REGISTERED",
        ),
        ("/fee-payer-is-us", Box::new(move |s| s.fee_payer = Some(ours.clone())), 2, "DENY_FEE_PAYER_NOT_ALLOWED"),
        ("/over-cap", Box::new(|s| s.amount = 2_000_000), 2, "DENY_GLOBAL_LIMIT"),
        ("/long-memo", Box::new(|s| s.memo = Some("m".repeat(257))), 2, "X402_MEMO_TOO_LONG"),
        ("/inconsistent", Box::new(|s| s.hostile = Hostile::InconsistentV2), 2, "X402_CHALLENGE_INCONSISTENT"),
        ("/not-exact", Box::new(|s| s.scheme = "upto".into()), 2, "X402_SCHEME_UNSUPPORTED"),
    ];
    for (path, edit, exit, expect) in &cases {
        let mut spec = RouteSpec::new(&w.h, 2, 10_000, PAYEE);
        edit(&mut spec);
        w.h.route(path, spec);
        let (status, v) = w.fetch(path, &[]);
        assert_eq!(status, *exit, "{path}: {v}");
        assert_eq!(code(&v), *expect, "{path}: {v}");
        assert_eq!(w.signed(), 0, "{path}: nothing signed");
        assert_eq!(w.spent(), "0", "{path}: nothing reserved");
        assert!(w.h.settlements().is_empty());
    }

    // A network that differs from the RPC's genesis.
    w.h.route("/wrong-network", RouteSpec::new(&w.h, 2, 10_000, PAYEE));
    let devnet = w.h.genesis_hash();
    w.h.set_genesis_hash("5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d");
    let (status, v) = w.fetch("/wrong-network", &[]);
    assert_eq!(status, 2, "{v}");
    assert_eq!(v["skipped"][0]["code"], "X402_NETWORK_MISMATCH", "{v}");
    w.h.set_genesis_hash(&devnet);
    assert_eq!(w.signed(), 0);

    // The price changes between the challenge and the retry: paid once,
    // never again; a 402 loop likewise.
    for (path, hostile, expect) in [
        ("/bait", Hostile::AmountChangesOnRetry(90_000), "X402_CHALLENGE_CHANGED"),
        ("/loop", Hostile::AlwaysPaymentRequired, "X402_PAYMENT_NOT_ACCEPTED"),
    ] {
        let before = w.signed();
        let mut spec = RouteSpec::new(&w.h, 2, 10_000, PAYEE);
        spec.hostile = hostile;
        w.h.route(path, spec);
        let (status, v) = w.fetch(path, &[]);
        assert_eq!(status, 3, "{path}: {v}");
        assert_eq!(code(&v), expect, "{path}: {v}");
        assert_eq!(w.signed(), before + 1, "{path}: exactly one signature");
        assert_eq!(w.h.hits(path), 2, "{path}: one challenge, one paid retry, no third request");
    }
    assert!(w.h.settlements().is_empty(), "nothing hostile landed");
}

/// `keyward x402 proxy`: an agent that knows nothing of x402 changes its
/// base URL to the proxy and gets the paid resource; a refused payment is
/// the server's 402 with keyward's code; CONNECT is refused.
#[test]
fn the_local_proxy_pays_for_any_agent() {
    use std::io::{BufRead, BufReader, Read, Write};
    let w = world();
    w.h.route("/weather", RouteSpec::new(&w.h, 2, 10_000, PAYEE));
    let mut denied = RouteSpec::new(&w.h, 2, 10_000, DENIED);
    denied.body = "never".into();
    w.h.route("/denied", denied);
    let mut proxy = Command::new(KEYWARD)
        .arg("--socket")
        .arg(&w.d.socket)
        .arg("--pin")
        .arg(&w.d.pin_file)
        .args(["x402", "proxy", "--listen", "127.0.0.1:0", "--upstream", &w.h.resource_base()])
        .args(["--key", "hot", "--rpc", &w.h.rpc_url(), "--max-requests", "3", "--cacert"])
        .arg(&w.ca)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(proxy.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = serde_json::from_str::<Value>(&line).unwrap()["listening"].as_str().unwrap().to_string();
    let ask = |head: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let paid = ask("GET /weather HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(paid.starts_with("HTTP/1.1 200"), "{paid}");
    assert!(paid.contains("X-Keyward-Outcome: paid"), "{paid}");
    assert!(paid.ends_with("{\"paid\":true}"), "{paid}");
    let refused = ask("GET /denied HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 402"), "{refused}");
    assert!(refused.contains("X-Keyward-Code: DENY_UNTRUSTED_FACILITATOR_OR_PAYEE"), "{refused}");
    let tunnel = ask("CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n");
    assert!(tunnel.starts_with("HTTP/1.1 405"), "{tunnel}");
    assert!(proxy.wait().unwrap().success(), "the proxy stops after --max-requests");
    assert_eq!(w.h.settlements().len(), 1, "one payment, for the one paid request");
    assert_eq!(w.signed(), 1);
}
