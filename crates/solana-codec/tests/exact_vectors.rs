//! Known-answer vectors from an independent implementation (solders, see
//! `vectors/make_vectors.py`): our compiled message must equal solders'
//! `MessageV0.try_compile` byte for byte.

mod common;

use common::{hex, pk, read_json, to_hex};
use solana_codec::{ExactTransfer, MessageV0, check_exact, parse_exact};

fn transfer_of(v: &serde_json::Value) -> ExactTransfer {
    let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("field {k}"));
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("field {k}"));
    ExactTransfer {
        fee_payer: pk(s("fee_payer")),
        authority: pk(s("authority")),
        payee: pk(s("payee")),
        mint: pk(s("mint")),
        token_program: pk(s("token_program")),
        decimals: u8::try_from(n("decimals")).unwrap(),
        amount: s("amount").parse().unwrap(),
        memo: hex(s("memo_hex")),
        compute_unit_limit: u32::try_from(n("compute_unit_limit")).unwrap(),
        compute_unit_price_micro_lamports: s("compute_unit_price_micro_lamports").parse().unwrap(),
        recent_blockhash: pk(s("recent_blockhash")).0,
    }
}

#[test]
fn solders_vectors_match_byte_for_byte() {
    let doc = read_json("exact_transfer.json");
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 6);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let t = transfer_of(v);
        assert_eq!(t.source_ata(), pk(v["source_ata"].as_str().unwrap()), "{name}: source ATA");
        assert_eq!(t.destination_ata(), pk(v["destination_ata"].as_str().unwrap()), "{name}: destination ATA");

        let expected = hex(v["message_hex"].as_str().unwrap());
        let ours = t.compile().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(to_hex(&ours), to_hex(&expected), "{name}: message bytes");

        let decoded = MessageV0::decode(&expected).unwrap();
        let keys: Vec<String> = decoded.keys.iter().map(ToString::to_string).collect();
        let solders_keys: Vec<&str> =
            v["account_keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
        assert_eq!(keys, solders_keys, "{name}: key order");
        assert_eq!(decoded.header, [2, 1, 4], "{name}: header");
        assert_eq!(decoded.encode(), expected, "{name}: re-encode");

        check_exact(&expected, &t).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parse_exact(&expected, &t.payee).unwrap(), t, "{name}: parse");
    }
}
