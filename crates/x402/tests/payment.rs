//! Payment header round trips: `accepted` must come back exactly as the server sent it.

mod common;

use common::*;
use serde_json::{Value, json};
use x402::{MAX_HEADER_BYTES, Version, codes, parse_challenge, parse_payment_header, payment_header};

/// A base64 "wire transaction" placeholder (the codec builds the real one).
fn tx() -> String {
    b64(&[7u8; 300])
}

fn decode_json(value: &str) -> Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(value).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn v2_accepted_is_echoed_verbatim() {
    let c = parse_challenge(v2_header(&fixture("v2_required.json")), b"{}").unwrap();
    let (name, value) = payment_header(&c, &c.accepts[0], &tx());
    assert_eq!(name, "PAYMENT-SIGNATURE");
    let p = parse_payment_header(name, &value).unwrap();
    assert_eq!(p.version, Version::V2);
    assert_eq!(p.scheme, "exact");
    assert_eq!(p.network, "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
    assert_eq!(p.transaction, tx());

    // Deep equality with the fixture as the server wrote it, unknown extra keys included.
    let server = fixture_json("v2_required.json");
    assert_eq!(p.accepted.as_ref(), Some(&server["accepts"][0]));
    assert_eq!(p.resource.as_ref(), Some(&server["resource"]));
    let accepted = p.accepted.unwrap();
    assert_eq!(accepted["extra"]["features"], json!({ "smartWalletSupported": true }));
    assert_eq!(accepted["extra"]["recentBlockhash"], json!("GHtXQBsoZHVnNFa9YevAzFr17DJjgHXk3ycTKD5xD3Zi"));
    assert_eq!(accepted["extra"]["lastValidBlockHeight"], json!("312345678"));

    // Key order does not matter: the same entry written in reverse key order compares equal.
    let reordered: Value = serde_json::from_str(
        r#"{"extra":{"features":{"smartWalletSupported":true},"lastValidBlockHeight":"312345678",
            "recentBlockhash":"GHtXQBsoZHVnNFa9YevAzFr17DJjgHXk3ycTKD5xD3Zi","memo":"pi_3abc123def456",
            "feePayer":"EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd"},"maxTimeoutSeconds":60,
            "payTo":"2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4","asset":"EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "amount":"1000","network":"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp","scheme":"exact"}"#,
    )
    .unwrap();
    assert_eq!(accepted, reordered);

    // Envelope: version, echoed extensions, payload.
    let doc = decode_json(&value);
    assert_eq!(doc["x402Version"], json!(2));
    assert_eq!(doc["extensions"], server["extensions"]);
    assert_eq!(doc["payload"], json!({ "transaction": tx() }));
}

#[test]
fn v2_without_resource_or_extensions_omits_them() {
    let mut doc = fixture_json("v2_required_no_memo.json");
    doc.as_object_mut().unwrap().remove("resource");
    let c = parse_challenge(v2_header(doc.to_string().as_bytes()), b"").unwrap();
    let (_, value) = payment_header(&c, &c.accepts[0], &tx());
    let env = decode_json(&value);
    let keys: Vec<&String> = env.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(env.get("resource").is_none() && env.get("extensions").is_none());
    assert_eq!(parse_payment_header("payment-signature", &value).unwrap().resource, None);
}

#[test]
fn v1_header() {
    let c = parse_challenge(no_headers, &fixture("v1_body.json")).unwrap();
    let (name, value) = payment_header(&c, &c.accepts[0], &tx());
    assert_eq!(name, "X-PAYMENT");
    assert_eq!(
        decode_json(&value),
        json!({ "x402Version": 1, "scheme": "exact", "network": "solana-devnet", "payload": { "transaction": tx() } })
    );
    let p = parse_payment_header("x-payment", &value).unwrap();
    assert_eq!((p.version, p.scheme.as_str(), p.network.as_str()), (Version::V1, "exact", "solana-devnet"));
    assert_eq!((p.accepted, p.resource), (None, None));
    assert_eq!(p.transaction, tx());
}

#[test]
fn malformed_payment_headers() {
    let c = parse_challenge(no_headers, &fixture("v1_body.json")).unwrap();
    let (_, v1) = payment_header(&c, &c.accepts[0], &tx());
    let bad_tx = |t: &str| {
        b64(json!({"x402Version":1,"scheme":"exact","network":"solana","payload":{"transaction":t}})
            .to_string()
            .as_bytes())
    };
    let cases: Vec<(&str, String)> = vec![
        ("X-Payment-Response", v1.clone()),
        ("PAYMENT-SIGNATURE", v1.clone()), // version 1 body under the v2 name
        ("X-PAYMENT", v1[..v1.len() - 1].to_owned()),
        ("X-PAYMENT", v1.replace('/', "_").replace('+', "-") + "-_"),
        ("X-PAYMENT", "x".repeat(MAX_HEADER_BYTES + 1)),
        ("X-PAYMENT", b64(br#"{"x402Version":1,"x402Version":1}"#)),
        ("X-PAYMENT", bad_tx("")),
        ("X-PAYMENT", bad_tx("not base64!")),
        ("X-PAYMENT", bad_tx(&b64(&[0u8; 1233]))),
        ("PAYMENT-SIGNATURE", b64(json!({"x402Version":2,"payload":{"transaction":tx()}}).to_string().as_bytes())),
    ];
    for (name, value) in cases {
        let e = parse_payment_header(name, &value).unwrap_err();
        assert_eq!(e.code, codes::HEADER_MALFORMED, "{name}: {e}");
    }
}
