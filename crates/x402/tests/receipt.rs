//! Settlement receipts (`PAYMENT-RESPONSE`, `X-PAYMENT-RESPONSE`).

mod common;

use common::*;
use serde_json::json;
use x402::{MAX_HEADER_BYTES, Receipt, Version, codes, encode_receipt, parse_receipt};

const SIG: &str = "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";
const PAYER: &str = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU";

fn receipt_of(version: Version, name: &str, doc: &serde_json::Value) -> Result<Option<Receipt>, x402::X402Error> {
    parse_receipt(version, headers(&[(name, &b64(doc.to_string().as_bytes()))]))
}

#[test]
fn success_receipt_round_trips_both_versions() {
    let r = Receipt {
        success: true,
        transaction: SIG.into(),
        network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
        payer: Some(PAYER.into()),
        error_reason: None,
    };
    for (version, expected) in [(Version::V1, "X-PAYMENT-RESPONSE"), (Version::V2, "PAYMENT-RESPONSE")] {
        let (name, value) = encode_receipt(version, &r);
        assert_eq!(name, expected);
        assert_eq!(parse_receipt(version, headers(&[(&name.to_lowercase(), &value)])).unwrap(), Some(r.clone()));
    }
}

#[test]
fn absent_receipt_is_none() {
    assert_eq!(parse_receipt(Version::V2, no_headers).unwrap(), None);
    // A v1 header does not answer a v2 request.
    let (_, value) = encode_receipt(
        Version::V1,
        &Receipt {
            success: false,
            transaction: String::new(),
            network: "solana".into(),
            payer: None,
            error_reason: Some("x".into()),
        },
    );
    assert_eq!(parse_receipt(Version::V2, headers(&[("X-PAYMENT-RESPONSE", &value)])).unwrap(), None);
}

#[test]
fn error_reason_in_both_spellings() {
    for key in ["errorReason", "error_reason"] {
        let doc = json!({ "success": false, "transaction": "", "network": "solana", key: "insufficient_funds" });
        let r = receipt_of(Version::V1, "X-PAYMENT-RESPONSE", &doc).unwrap().unwrap();
        assert!(!r.success);
        assert_eq!(r.transaction, "");
        assert_eq!(r.error_reason.as_deref(), Some("insufficient_funds"), "{key}");
    }
    let both =
        json!({ "success": false, "transaction": "", "network": "solana", "errorReason": "a", "error_reason": "b" });
    assert_eq!(receipt_of(Version::V1, "X-PAYMENT-RESPONSE", &both).unwrap_err().code, codes::RECEIPT_MALFORMED);
}

#[test]
fn unknown_receipt_keys_are_tolerated_and_empty_payer_is_none() {
    let doc = json!({ "success": true, "transaction": SIG, "network": "solana", "payer": "", "extensions": {"x": 1} });
    let r = receipt_of(Version::V2, "PAYMENT-RESPONSE", &doc).unwrap().unwrap();
    assert_eq!(r.payer, None);
}

#[test]
fn malformed_receipts() {
    let cases = [
        json!({ "transaction": SIG, "network": "solana" }),
        json!({ "success": "true", "transaction": SIG, "network": "solana" }),
        json!({ "success": true, "transaction": "", "network": "solana" }),
        json!({ "success": true, "network": "solana" }),
        json!({ "success": true, "transaction": "0xdeadbeef", "network": "solana" }),
        json!({ "success": true, "transaction": SIG }),
        json!({ "success": true, "transaction": SIG, "network": "solana", "payer": "0OIl" }),
        json!({ "success": false, "transaction": "", "network": "solana", "errorReason": 5 }),
        json!([true]),
    ];
    for doc in cases {
        assert_eq!(
            receipt_of(Version::V2, "PAYMENT-RESPONSE", &doc).unwrap_err().code,
            codes::RECEIPT_MALFORMED,
            "{doc}"
        );
    }
    for raw in [
        "e30".to_owned(),
        "x".repeat(MAX_HEADER_BYTES + 1),
        b64(br#"{"success":true,"success":false}"#),
        b64(b"not json"),
    ] {
        let e = parse_receipt(Version::V2, headers(&[("PAYMENT-RESPONSE", &raw)])).unwrap_err();
        assert_eq!(e.code, codes::RECEIPT_MALFORMED);
    }
}
