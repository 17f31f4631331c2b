//! Proves the harness with a transaction built here by the Solana crates.

mod common;

use common::*;
use serde_json::{Value, json};
use solana_address::Address;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_harness::{Harness, Hostile, RouteSpec};

struct Setup {
    h: Harness,
    client: Keypair,
    payee: Address,
}

fn setup(tls: bool, fund: u64) -> Setup {
    let h = Harness::start(tls);
    let client = Keypair::new();
    let payee = Keypair::new().pubkey();
    h.fund(&client.pubkey().to_string(), fund);
    h.create_ata(&payee.to_string());
    Setup { h, client, payee }
}

fn params(s: &Setup, accepted: &Value, amount: u64) -> TxParams {
    TxParams {
        fee_payer: accepted["extra"]["feePayer"].as_str().unwrap().parse().unwrap(),
        mint: accepted["asset"].as_str().unwrap().parse().unwrap(),
        pay_to: accepted["payTo"].as_str().unwrap().parse().unwrap(),
        amount,
        decimals: 6,
        memo: accepted["extra"]["memo"]
            .as_str()
            .map(|m| m.as_bytes().to_vec())
            .unwrap_or_else(|| b"0123456789abcdef0123456789abcdef".to_vec()),
        blockhash: latest_blockhash(&s.h.rpc_url()),
        source_override: None,
    }
}

/// GET → 402 (v2), returns (decoded PAYMENT-REQUIRED, accepts[0]).
fn challenge_v2(s: &Setup, path: &str) -> (Value, Value) {
    let r = http(&s.h.resource_base(), "GET", path, &[], b"");
    assert_eq!(r.status, 402);
    assert_eq!(r.json(), json!({}));
    let required = r.b64_header("PAYMENT-REQUIRED").expect("PAYMENT-REQUIRED");
    assert_eq!(required["x402Version"], 2);
    let accepted = required["accepts"][0].clone();
    (required, accepted)
}

fn pay_v2(s: &Setup, path: &str, header: &str) -> HttpResponse {
    http(&s.h.resource_base(), "GET", path, &[("PAYMENT-SIGNATURE", header)], b"")
}

fn reason(r: &HttpResponse, name: &str) -> String {
    let receipt = r.b64_header(name).expect("receipt header");
    assert_eq!(receipt["success"], false);
    assert_eq!(receipt["transaction"], "");
    receipt["errorReason"].as_str().unwrap().to_owned()
}

#[test]
fn v2_exact_payment_settles_and_duplicate_is_refused() {
    let s = setup(false, 1_000_000);
    let payee = s.payee.to_string();
    let client = s.client.pubkey().to_string();
    let fp = s.h.facilitator_pubkey();
    s.h.route("/weather", RouteSpec::new(&s.h, 2, 10_000, &payee));

    let (required, accepted) = challenge_v2(&s, "/weather");
    assert_eq!(accepted["scheme"], "exact");
    assert_eq!(accepted["network"], "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
    assert_eq!(accepted["amount"], "10000");
    assert_eq!(accepted["asset"], "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
    assert_eq!(accepted["payTo"], payee.as_str());
    assert_eq!(accepted["extra"]["feePayer"], fp.as_str());
    assert_eq!(required["resource"]["url"], format!("{}/weather", s.h.resource_base()));

    let tx = build_tx(&s.client, &params(&s, &accepted, 10_000));
    assert_eq!(tx.message.instructions().len(), 4);
    let header = v2_header(&required, &accepted, &tx);
    let fp_before = s.h.lamports(&fp);

    let r = pay_v2(&s, "/weather", &header);
    assert_eq!(r.status, 200, "receipt: {:?}", r.b64_header("PAYMENT-RESPONSE"));
    assert_eq!(r.json(), json!({"paid": true}));
    let receipt = r.b64_header("PAYMENT-RESPONSE").unwrap();
    assert_eq!(receipt["success"], true);
    assert_eq!(receipt["network"], "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
    assert_eq!(receipt["payer"], client.as_str());

    assert_eq!(s.h.token_balance(&client), 1_000_000 - 10_000);
    assert_eq!(s.h.token_balance(&payee), 10_000);
    let settlements = s.h.settlements();
    assert_eq!(settlements.len(), 1);
    let st = &settlements[0];
    assert_eq!(st.path, "/weather");
    assert_eq!(st.amount, 10_000);
    assert_eq!(st.payer, client);
    assert_eq!(receipt["transaction"], st.signature.as_str());
    assert_eq!(st.message, tx.message.serialize());
    // Fee: 2 signatures × 5000 + priority (20 000 CU × 1 µL rounded up).
    assert!((10_000..=10_001).contains(&st.fee), "fee {}", st.fee);
    assert_eq!(fp_before - s.h.lamports(&fp), st.fee);
    // The receipt's signature is the fee payer's over the message the client signed.
    let sig: solana_signature::Signature = st.signature.parse().unwrap();
    let fp_addr: Address = fp.parse().unwrap();
    assert!(sig.verify(fp_addr.as_ref(), &st.message));
    // The RPC endpoint knows it.
    let status = rpc(&s.h.rpc_url(), "getSignatureStatuses", json!([[st.signature]]));
    assert_eq!(status["result"]["value"][0]["err"], Value::Null);
    assert_eq!(status["result"]["value"][0]["confirmationStatus"], "finalized");
    // The header the client sent was recorded.
    let sent = s.h.last_request_headers("/weather");
    assert!(sent.iter().any(|(k, v)| k.eq_ignore_ascii_case("payment-signature") && *v == header));
    assert_eq!(s.h.hits("/weather"), 2);

    // Same transaction again: refused, nothing moves.
    let r = pay_v2(&s, "/weather", &header);
    assert_eq!(r.status, 402);
    assert_eq!(reason(&r, "PAYMENT-RESPONSE"), "duplicate_settlement");
    assert!(r.header("PAYMENT-REQUIRED").is_some());
    assert_eq!(s.h.token_balance(&client), 990_000);
    assert_eq!(s.h.settlements().len(), 1);
}

#[test]
fn wrong_amount_is_refused_with_reason() {
    let s = setup(false, 1_000_000);
    let payee = s.payee.to_string();
    s.h.route("/x", RouteSpec::new(&s.h, 2, 10_000, &payee));
    let (required, accepted) = challenge_v2(&s, "/x");
    let tx = build_tx(&s.client, &params(&s, &accepted, 9_999));
    let r = pay_v2(&s, "/x", &v2_header(&required, &accepted, &tx));
    assert_eq!(r.status, 402);
    assert_eq!(reason(&r, "PAYMENT-RESPONSE"), "invalid_exact_svm_payload_amount_mismatch");
    assert_eq!(s.h.token_balance(&s.client.pubkey().to_string()), 1_000_000);
    assert!(s.h.settlements().is_empty());
}

#[test]
fn fee_payer_in_transfer_accounts_is_refused() {
    let s = setup(false, 1_000_000);
    let payee = s.payee.to_string();
    s.h.route("/x", RouteSpec::new(&s.h, 2, 10_000, &payee));
    let (required, accepted) = challenge_v2(&s, "/x");
    let mut p = params(&s, &accepted, 10_000);
    p.source_override = Some(p.fee_payer);
    let tx = build_tx(&s.client, &p);
    let fp_before = s.h.lamports(&s.h.facilitator_pubkey());
    let r = pay_v2(&s, "/x", &v2_header(&required, &accepted, &tx));
    assert_eq!(r.status, 402);
    assert_eq!(
        reason(&r, "PAYMENT-RESPONSE"),
        "invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts"
    );
    assert_eq!(s.h.lamports(&s.h.facilitator_pubkey()), fp_before);
    assert!(s.h.settlements().is_empty());
}

#[test]
fn tampered_accepted_and_bad_signature_are_refused() {
    let s = setup(false, 1_000_000);
    let payee = s.payee.to_string();
    let mut spec = RouteSpec::new(&s.h, 2, 10_000, &payee);
    spec.memo = Some("order-42".to_owned());
    spec.extra.insert("features".to_owned(), json!({"smartWalletSupported": true}));
    s.h.route("/x", spec);
    let (required, accepted) = challenge_v2(&s, "/x");
    assert_eq!(accepted["extra"]["memo"], "order-42");
    assert_eq!(accepted["extra"]["features"]["smartWalletSupported"], true);

    // `accepted` must deep-equal the requirement: dropping an extra key fails.
    let tx = build_tx(&s.client, &params(&s, &accepted, 10_000));
    let mut trimmed = accepted.clone();
    trimmed["extra"].as_object_mut().unwrap().remove("features");
    let r = pay_v2(&s, "/x", &v2_header(&required, &trimmed, &tx));
    assert_eq!(reason(&r, "PAYMENT-RESPONSE"), "invalid_exact_svm_payload_accepted_requirements_mismatch");

    // Wrong memo.
    let mut p = params(&s, &accepted, 10_000);
    p.memo = b"order-43".to_vec();
    let bad_memo = build_tx(&s.client, &p);
    let r = pay_v2(&s, "/x", &v2_header(&required, &accepted, &bad_memo));
    assert_eq!(reason(&r, "PAYMENT-RESPONSE"), "invalid_exact_svm_payload_memo_mismatch");

    // Signature by another key.
    let mut forged = tx.clone();
    forged.signatures[1] = Keypair::new().sign_message(&tx.message.serialize());
    let r = pay_v2(&s, "/x", &v2_header(&required, &accepted, &forged));
    assert_eq!(reason(&r, "PAYMENT-RESPONSE"), "invalid_exact_svm_payload_signature_invalid");

    // The honest one lands.
    let r = pay_v2(&s, "/x", &v2_header(&required, &accepted, &tx));
    assert_eq!(r.status, 200);
    assert_eq!(s.h.settlements().len(), 1);
}

#[test]
fn stale_blockhash_fails_execution_and_is_reported() {
    let s = setup(false, 1_000_000);
    let payee = s.payee.to_string();
    s.h.route("/x", RouteSpec::new(&s.h, 2, 10_000, &payee));
    let (required, accepted) = challenge_v2(&s, "/x");
    let tx = build_tx(&s.client, &params(&s, &accepted, 10_000));
    s.h.advance_blockhash();
    let r = pay_v2(&s, "/x", &v2_header(&required, &accepted, &tx));
    assert_eq!(r.status, 402);
    let receipt = r.b64_header("PAYMENT-RESPONSE").unwrap();
    assert_eq!(receipt["errorReason"], "invalid_exact_svm_payload_transaction_execution_failed");
    assert!(receipt["errorMessage"].as_str().unwrap().contains("BlockhashNotFound"));
    assert!(s.h.settlements().is_empty());
}

#[test]
fn v1_exact_payment_settles() {
    let s = setup(false, 50_000);
    let payee = s.payee.to_string();
    s.h.route("/v1/quote", RouteSpec::new(&s.h, 1, 5_000, &payee));
    let r = http(&s.h.resource_base(), "POST", "/v1/quote", &[], b"{}");
    assert_eq!(r.status, 402);
    assert!(r.header("PAYMENT-REQUIRED").is_none());
    let body = r.json();
    assert_eq!(body["x402Version"], 1);
    assert_eq!(body["error"], "X-PAYMENT header is required");
    let accepted = body["accepts"][0].clone();
    assert_eq!(accepted["network"], "solana-devnet");
    assert_eq!(accepted["maxAmountRequired"], "5000");
    assert_eq!(accepted["resource"], format!("{}/v1/quote", s.h.resource_base()));
    assert_eq!(accepted["mimeType"], "application/json");

    let tx = build_tx(&s.client, &params(&s, &accepted, 5_000));
    let header = v1_header(&accepted, &tx);
    let r = http(&s.h.resource_base(), "POST", "/v1/quote", &[("X-PAYMENT", &header)], b"{}");
    assert_eq!(r.status, 200);
    let receipt = r.b64_header("X-PAYMENT-RESPONSE").unwrap();
    assert_eq!(receipt["success"], true);
    assert_eq!(receipt["network"], "solana-devnet");
    assert_eq!(s.h.token_balance(&payee), 5_000);
    assert_eq!(s.h.token_balance(&s.client.pubkey().to_string()), 45_000);
}

#[test]
fn hostile_routes() {
    let s = setup(false, 1_000_000);
    let payee = s.payee.to_string();
    let client = s.client.pubkey().to_string();

    // A 402 loop never settles.
    let mut spec = RouteSpec::new(&s.h, 2, 10_000, &payee);
    spec.hostile = Hostile::AlwaysPaymentRequired;
    s.h.route("/loop", spec);
    let (required, accepted) = challenge_v2(&s, "/loop");
    let tx = build_tx(&s.client, &params(&s, &accepted, 10_000));
    let r = pay_v2(&s, "/loop", &v2_header(&required, &accepted, &tx));
    assert_eq!(r.status, 402);
    assert!(r.header("PAYMENT-REQUIRED").is_some());
    assert!(s.h.settlements().is_empty());
    assert_eq!(s.h.token_balance(&client), 1_000_000);

    // Amount changes on retry.
    let mut spec = RouteSpec::new(&s.h, 2, 10_000, &payee);
    spec.hostile = Hostile::AmountChangesOnRetry(20_000);
    s.h.route("/bait", spec);
    let (required, accepted) = challenge_v2(&s, "/bait");
    let tx = build_tx(&s.client, &params(&s, &accepted, 10_000));
    let r = pay_v2(&s, "/bait", &v2_header(&required, &accepted, &tx));
    assert_eq!(r.status, 402);
    let again = r.b64_header("PAYMENT-REQUIRED").unwrap();
    assert_eq!(again["accepts"][0]["amount"], "20000");
    assert!(s.h.settlements().is_empty());

    // Inconsistent v2: header says 10000, body is a v1 challenge for 10001.
    let mut spec = RouteSpec::new(&s.h, 2, 10_000, &payee);
    spec.hostile = Hostile::InconsistentV2;
    s.h.route("/mixed", spec);
    let r = http(&s.h.resource_base(), "GET", "/mixed", &[], b"");
    assert_eq!(r.status, 402);
    assert_eq!(r.b64_header("PAYMENT-REQUIRED").unwrap()["accepts"][0]["amount"], "10000");
    let body = r.json();
    assert_eq!(body["x402Version"], 1);
    assert_eq!(body["accepts"][0]["maxAmountRequired"], "10001");

    // Extra accepts are prepended.
    let mut spec = RouteSpec::new(&s.h, 2, 10_000, &payee);
    spec.hostile =
        Hostile::ExtraAccepts(vec![json!({"scheme": "upto", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"})]);
    s.h.route("/upto", spec);
    let r = http(&s.h.resource_base(), "GET", "/upto", &[], b"");
    let req = r.b64_header("PAYMENT-REQUIRED").unwrap();
    assert_eq!(req["accepts"][0]["scheme"], "upto");
    assert_eq!(req["accepts"][1]["scheme"], "exact");

    // Advertised fee payer = the client's own key: the facilitator never signs for it.
    let mut spec = RouteSpec::new(&s.h, 2, 10_000, &payee);
    spec.fee_payer = Some(client.clone());
    s.h.route("/selfpay", spec);
    let (required, accepted) = challenge_v2(&s, "/selfpay");
    assert_eq!(accepted["extra"]["feePayer"], client.as_str());
    let tx = build_tx(&s.client, &params(&s, &accepted, 10_000));
    let r = pay_v2(&s, "/selfpay", &v2_header(&required, &accepted, &tx));
    assert_eq!(r.status, 402);
    assert_eq!(reason(&r, "PAYMENT-RESPONSE"), "invalid_exact_svm_payload_fee_payer_not_managed_by_facilitator");
    assert!(s.h.settlements().is_empty());

    // Unknown path.
    let r = http(&s.h.resource_base(), "GET", "/nope", &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(s.h.hits("/nope"), 1);
}

#[test]
fn rpc_endpoint() {
    let h = Harness::start(false);
    let url = h.rpc_url();
    let v = rpc(&url, "getGenesisHash", json!([]));
    assert_eq!(v["result"], "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG");
    assert_eq!(h.genesis_hash(), "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG");
    h.set_genesis_hash("5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d");
    assert_eq!(rpc(&url, "getGenesisHash", json!([]))["result"], "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d");
    let v = rpc(&url, "getLatestBlockhash", json!([]));
    let slot = v["result"]["context"]["slot"].as_u64().unwrap();
    assert_eq!(v["result"]["value"]["lastValidBlockHeight"], slot + 150);
    let bh = v["result"]["value"]["blockhash"].as_str().unwrap().to_owned();
    assert_eq!(bh, h.latest_blockhash());
    // Stable until advanced.
    assert_eq!(latest_blockhash(&url).to_string(), bh);
    h.advance_blockhash();
    assert_ne!(latest_blockhash(&url).to_string(), bh);
    let v = rpc(&url, "noSuchMethod", json!([]));
    assert_eq!(v["error"]["code"], -32601);
    // The mint as a client would read it.
    let v = rpc(&url, "getAccountInfo", json!([h.mint(), {"encoding": "base64"}]));
    assert_eq!(v["result"]["value"]["owner"], "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
    let v = rpc(&url, "getSignatureStatuses", json!([[solana_signature::Signature::default().to_string()]]));
    assert_eq!(v["result"]["value"][0], Value::Null);
}

#[test]
fn tls_mode_with_test_ca() {
    let s = setup(true, 1_000_000);
    let base = s.h.resource_base();
    assert!(base.starts_with("https://localhost:"), "{base}");
    let ca = s.h.ca_pem().expect("CA PEM in TLS mode");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let payee = s.payee.to_string();
    s.h.route("/weather", RouteSpec::new(&s.h, 2, 10_000, &payee));
    let r = https(&base, &ca, "GET", "/weather", &[], b"");
    assert_eq!(r.status, 402);
    let required = r.b64_header("PAYMENT-REQUIRED").unwrap();
    let accepted = required["accepts"][0].clone();
    assert_eq!(required["resource"]["url"], format!("{base}/weather"));
    let tx = build_tx(&s.client, &params(&s, &accepted, 10_000));
    let header = v2_header(&required, &accepted, &tx);
    let r = https(&base, &ca, "GET", "/weather", &[("PAYMENT-SIGNATURE", &header)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(s.h.token_balance(&payee), 10_000);
    // Plain mode has no CA.
    assert!(Harness::start(false).ca_pem().is_none());
}
