//! Parsing 402 challenges: fixtures from the research brief §1 and hostile variants.

mod common;

use common::*;
use serde_json::{Value, json};
use x402::{
    Challenge, MAX_ACCEPTS, MAX_BODY_BYTES, MAX_HEADER_BYTES, Version, X402Error, codes, encode_challenge_v2,
    parse_challenge, solana_exact_candidates,
};

const FEE_PAYER: &str = "EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd";
const PAY_TO: &str = "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4";

fn v2(json: &[u8]) -> Result<Challenge, X402Error> {
    parse_challenge(v2_header(json), b"{}")
}

fn code_of(r: Result<Challenge, X402Error>) -> &'static str {
    match r {
        Ok(c) => panic!("expected an error, parsed {c:?}"),
        Err(e) => {
            assert!(e.to_string().starts_with(e.code), "Display is CODE: detail");
            e.code
        }
    }
}

#[test]
fn v1_body_fixture() {
    let c = parse_challenge(no_headers, &fixture("v1_body.json")).unwrap();
    assert_eq!(c.version, Version::V1);
    assert_eq!(c.error.as_deref(), Some("X-PAYMENT header is required"));
    assert_eq!(c.resource_url.as_deref(), Some("https://api.example.com/premium-data"));
    assert_eq!(c.raw_resource, None);
    assert_eq!(c.extensions, None);
    let r = &c.accepts[0];
    assert_eq!(r.scheme, "exact");
    assert_eq!(r.network, "solana-devnet");
    assert_eq!(r.caip2.as_deref(), Some("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"));
    assert_eq!(r.amount, 10_000);
    assert_eq!(r.asset, "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
    assert_eq!(r.pay_to, PAY_TO);
    assert_eq!(r.max_timeout_seconds, 60);
    assert_eq!(r.fee_payer.as_deref(), Some(FEE_PAYER));
    assert_eq!(r.memo, None);
    assert_eq!(r.resource.as_deref(), Some("https://api.example.com/premium-data"));
    assert_eq!(r.description.as_deref(), Some("Access to premium market data"));
    assert_eq!(r.raw, fixture_json("v1_body.json")["accepts"][0]);
}

#[test]
fn v2_header_fixture_with_memo_and_unknown_extra_keys() {
    let text = fixture("v2_required.b64");
    let value = String::from_utf8(text).unwrap().trim_end().to_owned();
    let c = parse_challenge(headers(&[("payment-required", &value)]), b"{}").unwrap();
    assert_eq!(c.version, Version::V2);
    assert_eq!(c.resource_url.as_deref(), Some("https://example.com/weather"));
    let doc = fixture_json("v2_required.json");
    assert_eq!(c.raw_resource.as_ref(), Some(&doc["resource"]));
    assert_eq!(c.extensions.as_ref(), Some(&doc["extensions"]));
    assert_eq!(c.accepts.len(), 1);
    let r = &c.accepts[0];
    assert_eq!(r.network, "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
    assert_eq!(r.caip2.as_deref(), Some(r.network.as_str()));
    assert_eq!(r.amount, 1000);
    assert_eq!(r.asset, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v");
    assert_eq!(r.memo.as_deref(), Some("pi_3abc123def456"));
    assert_eq!(r.fee_payer.as_deref(), Some(FEE_PAYER));
    assert_eq!(r.resource, None, "v2 entries carry no resource");
    assert_eq!(r.description.as_deref(), Some("Current weather"), "falls back to resource.description");
    assert_eq!(r.raw, doc["accepts"][0], "raw keeps features, recentBlockhash, lastValidBlockHeight");
    assert_eq!(r.raw["extra"]["features"]["smartWalletSupported"], json!(true));
}

#[test]
fn v2_header_fixture_without_memo() {
    let c = v2(&fixture("v2_required_no_memo.json")).unwrap();
    let r = &c.accepts[0];
    assert_eq!(r.memo, None);
    assert_eq!(r.amount, 2500);
    assert_eq!(r.max_timeout_seconds, 300);
    assert_eq!(r.description, None);
    assert_eq!(c.error, None);
    assert_eq!(c.extensions, None);
}

#[test]
fn header_name_is_case_insensitive_and_ows_trimmed() {
    let value = format!(" {}\t", b64(&fixture("v2_required_no_memo.json")));
    for name in ["PAYMENT-REQUIRED", "Payment-Required", "payment-required"] {
        assert!(parse_challenge(headers(&[(name, &value)]), b"").is_ok(), "{name}");
    }
}

#[test]
fn encode_challenge_v2_round_trips() {
    let doc = fixture_json("v2_required.json");
    let value = encode_challenge_v2(&doc);
    let c = parse_challenge(headers(&[("PAYMENT-REQUIRED", &value)]), b"").unwrap();
    assert_eq!(c.accepts[0].raw, doc["accepts"][0]);
}

#[test]
fn missing_challenge() {
    for body in [&b""[..], b"{}", b"<html>pay me</html>", b"{\"accepts\":[]}", b"[1]"] {
        assert_eq!(code_of(parse_challenge(no_headers, body)), codes::CHALLENGE_MISSING);
    }
}

#[test]
fn duplicate_key_is_malformed() {
    assert_eq!(code_of(v2(&fixture("v2_duplicate_amount.json"))), codes::CHALLENGE_MALFORMED);
    let body = br#"{"x402Version":1,"x402Version":1,"accepts":[]}"#;
    assert_eq!(code_of(parse_challenge(no_headers, body)), codes::CHALLENGE_MALFORMED);
}

#[test]
fn hostile_amounts() {
    for bad in ["01", "-1", "+1", "1.5", "1e3", " 1", "1 ", "18446744073709551616", "0", "00", "", "0x10", "１"] {
        let r = v2(&v2_with("amount", json!(bad)));
        assert_eq!(code_of(r), codes::AMOUNT_INVALID, "amount {bad:?}");
    }
    for bad in [json!(1000), json!(null), json!(["1"])] {
        assert_eq!(code_of(v2(&v2_with("amount", bad.clone()))), codes::AMOUNT_INVALID, "amount {bad}");
    }
    let max = v2(&v2_with("amount", json!("18446744073709551615"))).unwrap();
    assert_eq!(max.accepts[0].amount, u64::MAX);
    let mut doc = fixture_json("v1_body.json");
    doc["accepts"][0]["maxAmountRequired"] = json!("1e3");
    assert_eq!(code_of(parse_challenge(no_headers, doc.to_string().as_bytes())), codes::AMOUNT_INVALID);
}

#[test]
fn memo_bound() {
    let ok = json!({ "feePayer": FEE_PAYER, "memo": "é".repeat(128) }); // 256 bytes
    assert_eq!(v2(&v2_with("extra", ok)).unwrap().accepts[0].memo.as_ref().map(String::len), Some(256));
    let long = json!({ "feePayer": FEE_PAYER, "memo": "m".repeat(257) });
    assert_eq!(code_of(v2(&v2_with("extra", long))), codes::MEMO_TOO_LONG);
    let typed = json!({ "feePayer": FEE_PAYER, "memo": 7 });
    assert_eq!(code_of(v2(&v2_with("extra", typed))), codes::CHALLENGE_MALFORMED);
}

#[test]
fn v2_object_claiming_version_1_is_inconsistent() {
    let mut doc = fixture_json("v2_required.json");
    doc["x402Version"] = json!(1);
    assert_eq!(code_of(v2(doc.to_string().as_bytes())), codes::CHALLENGE_INCONSISTENT);
    doc["x402Version"] = json!(3);
    assert_eq!(code_of(v2(doc.to_string().as_bytes())), codes::CHALLENGE_INCONSISTENT);
    doc["x402Version"] = json!("2");
    assert_eq!(code_of(v2(doc.to_string().as_bytes())), codes::CHALLENGE_MALFORMED);
}

#[test]
fn v2_body_without_header_is_inconsistent() {
    let body = fixture("v2_required.json");
    assert_eq!(code_of(parse_challenge(no_headers, &body)), codes::CHALLENGE_INCONSISTENT);
}

#[test]
fn v2_header_and_disagreeing_v1_body() {
    // The v1 body that matches the v2 no-memo fixture.
    let mut body = fixture_json("v1_body.json");
    body["accepts"][0]["maxAmountRequired"] = json!("2500");
    let header = fixture("v2_required_no_memo.json");
    assert!(parse_challenge(v2_header(&header), body.to_string().as_bytes()).is_ok(), "agreeing body is fine");

    for (key, value) in [
        ("maxAmountRequired", json!("2501")),
        ("payTo", json!(FEE_PAYER)),
        ("asset", json!("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")),
        ("network", json!("solana")),
    ] {
        let mut b = body.clone();
        b["accepts"][0][key] = value;
        assert_eq!(
            code_of(parse_challenge(v2_header(&header), b.to_string().as_bytes())),
            codes::CHALLENGE_INCONSISTENT,
            "{key}"
        );
    }
    // A body claiming to be a v2 challenge next to a v2 header.
    let r = parse_challenge(v2_header(&header), &fixture("v2_required_no_memo.json"));
    assert_eq!(code_of(r), codes::CHALLENGE_INCONSISTENT);
    // A body that is not an x402 challenge is ignored.
    assert!(parse_challenge(v2_header(&header), b"<html>402</html>").is_ok());
    assert!(parse_challenge(v2_header(&header), br#"{"a":1,"a":2}"#).is_ok());
}

#[test]
fn version_mixed_networks_and_fields() {
    assert_eq!(code_of(v2(&v2_with("network", json!("solana-devnet")))), codes::CHALLENGE_INCONSISTENT);
    assert_eq!(code_of(v2(&v2_with("maxAmountRequired", json!("2500")))), codes::CHALLENGE_INCONSISTENT);
    let mut doc = fixture_json("v1_body.json");
    doc["accepts"][0]["network"] = json!("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
    assert_eq!(code_of(parse_challenge(no_headers, doc.to_string().as_bytes())), codes::CHALLENGE_INCONSISTENT);
}

#[test]
fn mixed_challenge_candidates() {
    let c = v2(&fixture("v2_mixed.json")).unwrap();
    assert_eq!(c.accepts.len(), 4);
    assert_eq!(c.accepts[1].caip2, None, "EVM entries parse but are not Solana");
    let (candidates, skipped) = solana_exact_candidates(&c);
    assert_eq!(candidates.len(), 1);
    assert!(std::ptr::eq(candidates[0], &c.accepts[3]));
    assert_eq!(
        skipped,
        vec![(0, codes::SCHEME_UNSUPPORTED), (1, codes::NETWORK_UNSUPPORTED), (2, codes::FEE_PAYER_MISSING)]
    );
}

#[test]
fn local_validator_network_is_a_candidate() {
    let c = v2(&v2_with("network", json!("solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K"))).unwrap();
    assert_eq!(c.accepts[0].caip2.as_deref(), Some("solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K"));
    assert_eq!(solana_exact_candidates(&c).0.len(), 1);
}

#[test]
fn accepts_count_bounds() {
    let doc = fixture_json("v2_required_no_memo.json");
    let entry = doc["accepts"][0].clone();
    let mut many = doc.clone();
    many["accepts"] = Value::Array(vec![entry.clone(); MAX_ACCEPTS]);
    assert_eq!(v2(many.to_string().as_bytes()).unwrap().accepts.len(), MAX_ACCEPTS);
    many["accepts"] = Value::Array(vec![entry; MAX_ACCEPTS + 1]);
    assert_eq!(code_of(v2(many.to_string().as_bytes())), codes::CHALLENGE_TOO_LARGE);
    many["accepts"] = json!([]);
    assert_eq!(code_of(v2(many.to_string().as_bytes())), codes::CHALLENGE_MALFORMED);
    many["accepts"] = json!({});
    assert_eq!(code_of(v2(many.to_string().as_bytes())), codes::CHALLENGE_MALFORMED);
}

#[test]
fn oversized_inputs() {
    let mut doc = fixture_json("v2_required_no_memo.json");
    doc["pad"] = json!("x".repeat(MAX_HEADER_BYTES));
    let value = encode_challenge_v2(&doc);
    assert!(value.len() > MAX_HEADER_BYTES);
    assert_eq!(code_of(parse_challenge(headers(&[("PAYMENT-REQUIRED", &value)]), b"")), codes::CHALLENGE_TOO_LARGE);

    let mut body = fixture_json("v1_body.json");
    body["pad"] = json!("x".repeat(MAX_BODY_BYTES));
    assert_eq!(code_of(parse_challenge(no_headers, body.to_string().as_bytes())), codes::CHALLENGE_TOO_LARGE);
    // Exactly at the bound is accepted.
    let mut text = fixture("v1_body.json");
    text.resize(MAX_BODY_BYTES, b' ');
    assert!(parse_challenge(no_headers, &text).is_ok());
}

#[test]
fn invalid_base64() {
    // Pad the (valid) JSON with spaces until its standard encoding needs both
    // padding and one of '+' / '/', so each mutation below is a pure base64 fault.
    let mut doc = fixture_json("v2_required_no_memo.json");
    doc["resource"]["description"] = json!("?????"); // any run of three '?' encodes as "Pz8/"
    let mut json = doc.to_string().into_bytes();
    if json.len().is_multiple_of(3) {
        json.push(b' ');
    }
    let good = b64(&json);
    assert!(good.contains('/') && good.ends_with('='));
    assert!(parse_challenge(headers(&[("PAYMENT-REQUIRED", &good)]), b"").is_ok());
    let url_safe = good.replace('+', "-").replace('/', "_");
    let unpadded = good.trim_end_matches('=').to_owned();
    for bad in [url_safe.as_str(), unpadded.as_str(), "", "!!!!", "eyJ4NDAyVmVyc2lvbiI6Mn0=\n=="] {
        let r = parse_challenge(headers(&[("PAYMENT-REQUIRED", bad)]), b"");
        assert_eq!(code_of(r), codes::CHALLENGE_MALFORMED, "{bad:.20}");
    }
}

#[test]
fn mistyped_and_missing_fields() {
    let cases = [
        ("scheme", json!(1)),
        ("scheme", json!("")),
        ("network", json!(null)),
        ("asset", json!("0x036CbD53842c5426634e7929541eC2318f3dCF7e")),
        ("payTo", json!("2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg0")),
        ("payTo", json!("short")),
        ("maxTimeoutSeconds", json!("60")),
        ("maxTimeoutSeconds", json!(-1)),
        ("maxTimeoutSeconds", json!(1.5)),
        ("extra", json!("feePayer")),
        ("extra", json!({ "feePayer": "not base58 0OIl" })),
        ("description", json!({})),
    ];
    for (key, value) in cases {
        assert_eq!(code_of(v2(&v2_with(key, value.clone()))), codes::CHALLENGE_MALFORMED, "{key} = {value}");
    }
    for key in ["scheme", "network", "asset", "payTo", "maxTimeoutSeconds"] {
        let mut doc = fixture_json("v2_required_no_memo.json");
        doc["accepts"][0].as_object_mut().unwrap().remove(key);
        assert_eq!(code_of(v2(doc.to_string().as_bytes())), codes::CHALLENGE_MALFORMED, "missing {key}");
    }
    let mut doc = fixture_json("v2_required_no_memo.json");
    doc["resource"] = json!({ "description": "no url" });
    assert_eq!(code_of(v2(doc.to_string().as_bytes())), codes::CHALLENGE_MALFORMED);
    doc["resource"] = json!({ "url": "https://x" });
    doc["extensions"] = json!([1]);
    assert_eq!(code_of(v2(doc.to_string().as_bytes())), codes::CHALLENGE_MALFORMED);
}

#[test]
fn errors_do_not_echo_server_values() {
    let secret = "ATTACKER-CONTROLLED-TEXT";
    for (key, value) in [("amount", json!(secret)), ("payTo", json!(secret)), ("scheme", json!(7))] {
        let e = v2(&v2_with(key, value)).unwrap_err();
        assert!(!e.detail.contains(secret), "{e}");
        assert!(e.detail.starts_with("accepts[0]."), "{e}");
    }
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let deep = format!(r#"{{"x402Version":1,"accepts":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
    assert_eq!(code_of(parse_challenge(no_headers, deep.as_bytes())), codes::CHALLENGE_MISSING);
    let deep_v2 = format!(r#"{{"x402Version":2,"extensions":{{"a":{}1{}}}}}"#, "[".repeat(5000), "]".repeat(5000));
    assert_eq!(code_of(v2(deep_v2.as_bytes())), codes::CHALLENGE_MALFORMED);
}
