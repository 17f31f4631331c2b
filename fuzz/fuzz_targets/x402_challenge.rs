//! The x402 challenge and receipt parsers on what a hostile server sends:
//! the first byte picks where the rest goes (the `PAYMENT-REQUIRED` header,
//! the 402 body, or both halves), then no panic, and whatever is accepted
//! is within the documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (header, body) = match mode % 3 {
        0 => (Some(String::from_utf8_lossy(rest).into_owned()), &[][..]),
        1 => (None, rest),
        _ => {
            let mid = rest.len() / 2;
            (Some(String::from_utf8_lossy(&rest[..mid]).into_owned()), &rest[mid..])
        }
    };
    let lookup = |name: &str| if name.eq_ignore_ascii_case("PAYMENT-REQUIRED") { header.clone() } else { None };
    if let Ok(c) = x402::parse_challenge(lookup, body) {
        assert!(!c.accepts.is_empty() && c.accepts.len() <= x402::MAX_ACCEPTS);
        for r in &c.accepts {
            assert!(r.amount > 0);
            assert!(r.memo.as_ref().is_none_or(|m| m.len() <= x402::MAX_MEMO_BYTES));
        }
        let _ = x402::solana_exact_candidates(&c);
    }
    let receipt = |name: &str| {
        (name.eq_ignore_ascii_case("PAYMENT-RESPONSE") || name.eq_ignore_ascii_case("X-PAYMENT-RESPONSE"))
            .then(|| String::from_utf8_lossy(rest).into_owned())
    };
    let _ = x402::parse_receipt(x402::Version::V2, receipt);
    let _ = x402::parse_payment_header("PAYMENT-SIGNATURE", &String::from_utf8_lossy(rest));
});
