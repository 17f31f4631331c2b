//! Program ids, base58, shortvec, PDAs and ATAs.

mod common;

use common::{pk, read_json};
use solana_codec::{Pubkey, associated_token_address, base58, find_program_address, is_on_curve, programs, shortvec};

#[test]
fn program_ids_match_their_names() {
    let cases = [
        (programs::TOKEN, "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
        (programs::TOKEN_2022, "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"),
        (programs::ASSOCIATED_TOKEN, "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"),
        (programs::COMPUTE_BUDGET, "ComputeBudget111111111111111111111111111111"),
        (programs::MEMO, "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
        (programs::SYSTEM, "11111111111111111111111111111111"),
    ];
    for (id, name) in cases {
        assert_eq!(id.to_base58(), name);
        assert_eq!(pk(name), id);
        assert_eq!(format!("{id}"), name);
        assert_eq!(format!("{id:?}"), name);
    }
    assert_eq!(programs::SYSTEM, Pubkey::new([0; 32]));
}

#[test]
fn base58_known_answers() {
    let cases: [(&[u8], &str); 8] = [
        (b"", ""),
        (&[0], "1"),
        (&[0, 0, 0], "111"),
        (&[0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd], "11233QC4"),
        (&[0x61], "2g"),
        (&[0xff], "5Q"),
        (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
        (b"The quick brown fox jumps over the lazy dog", "7DdiPPYtxLjCD3wA1po2rvZHTDYjkZYiEtazrfiwJcwnKCizhGFhBGHeRdx"),
    ];
    for (bytes, text) in cases {
        assert_eq!(base58::encode(bytes), text);
        assert_eq!(base58::decode(text).unwrap(), bytes);
    }
}

#[test]
fn base58_round_trips_with_leading_zeros() {
    let mut rng = common::Rng(1);
    for len in 0..=64 {
        for zeros in [0, 1, 2, 5] {
            let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            for x in b.iter_mut().take(zeros) {
                *x = 0;
            }
            let s = base58::encode(&b);
            assert_eq!(s.chars().take_while(|&c| c == '1').count(), b.iter().take_while(|&&x| x == 0).count());
            assert_eq!(base58::decode(&s).unwrap(), b);
        }
    }
}

#[test]
fn base58_rejects_bad_input() {
    for bad in ["0", "O", "I", "l", "abc+", " 1", "1 ", "é", "11\n", "3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5U0"] {
        let e = base58::decode(bad).unwrap_err();
        assert_eq!(e.code, "SOL_BASE58_INVALID", "{bad:?}");
    }
    assert!(base58::decode(&"2".repeat(128)).is_ok());
    assert_eq!(base58::decode(&"2".repeat(129)).unwrap_err().code, "SOL_BASE58_INVALID");
    assert_eq!(base58::decode(&"1".repeat(129)).unwrap_err().code, "SOL_BASE58_INVALID");
}

#[test]
fn pubkey_parsing_is_strict() {
    // 31 and 33 bytes are valid base58 but not addresses.
    for bad in [base58::encode(&[7; 31]), base58::encode(&[7; 33]), String::new(), "0".repeat(44), "2".repeat(60)] {
        let e = bad.parse::<Pubkey>().unwrap_err();
        assert_eq!(e.code, "SOL_PUBKEY_INVALID");
        assert_eq!(Pubkey::from_base58(&bad).unwrap_err().code, "SOL_PUBKEY_INVALID");
    }
    let k = Pubkey([9; 32]);
    assert_eq!(Pubkey::from_base58(&k.to_base58()).unwrap(), k);
    assert_eq!(e_display(), "SOL_PUBKEY_INVALID: address does not decode to 32 bytes");
}

fn e_display() -> String {
    Pubkey::from_base58(&base58::encode(&[1; 31])).unwrap_err().to_string()
}

#[test]
fn shortvec_edges() {
    let cases: [(u16, &[u8]); 8] = [
        (0, &[0x00]),
        (1, &[0x01]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (255, &[0xff, 0x01]),
        (16383, &[0xff, 0x7f]),
        (16384, &[0x80, 0x80, 0x01]),
        (65535, &[0xff, 0xff, 0x03]),
    ];
    for (n, bytes) in cases {
        let mut out = Vec::new();
        shortvec::encode(n, &mut out);
        assert_eq!(out, bytes, "{n}");
        let mut with_tail = bytes.to_vec();
        with_tail.push(0xaa);
        assert_eq!(shortvec::decode(&with_tail).unwrap(), (n, bytes.len()));
    }
    for n in 0..=u16::MAX {
        let mut out = Vec::new();
        shortvec::encode(n, &mut out);
        assert_eq!(shortvec::decode(&out).unwrap(), (n, out.len()));
    }
}

#[test]
fn shortvec_rejects_non_minimal_overflow_truncation() {
    let bad: [&[u8]; 10] = [
        &[],
        &[0x80],
        &[0xff, 0xff],
        &[0x80, 0x00],
        &[0xff, 0x00],
        &[0x80, 0x80, 0x00],
        &[0xff, 0xff, 0x04],
        &[0x80, 0x80, 0x80, 0x01],
        &[0xff, 0xff, 0x83],
        &[0xff, 0xff, 0xff, 0x03],
    ];
    for b in bad {
        assert_eq!(shortvec::decode(b).unwrap_err().code, "SOL_SHORTVEC_INVALID", "{b:?}");
    }
}

#[test]
fn ata_public_vectors() {
    let doc = read_json("ata.json");
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let (owner, mint, program) =
            (pk(v["owner"].as_str().unwrap()), pk(v["mint"].as_str().unwrap()), pk(v["program"].as_str().unwrap()));
        let expected = pk(v["ata"].as_str().unwrap());
        assert_eq!(associated_token_address(&owner, &mint, &program), expected);
        let (pda, bump) = find_program_address(&[&owner.0, &program.0, &mint.0], &programs::ASSOCIATED_TOKEN).unwrap();
        assert_eq!(pda, expected);
        assert_eq!(u64::from(bump), v["bump"].as_u64().unwrap());
        assert!(!is_on_curve(&pda.0));
    }
}

#[test]
fn curve_predicate_and_seed_limits() {
    // Wallet keys of the vectors are on the curve; the all-zero key is not (y = 0 has no x).
    assert!(is_on_curve(&pk("3h1zGmCwsRJnVk5BuRNMLsPaQu1y2aqXqXDWYCgrp5UG").0));
    assert!(is_on_curve(&pk("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v").0));
    // The identity point (y = 1) is on the curve.
    let mut one = [0u8; 32];
    one[0] = 1;
    assert!(is_on_curve(&one));
    let p = programs::ASSOCIATED_TOKEN;
    assert!(find_program_address(&[&[0u8; 33]], &p).is_none());
    let fifteen: Vec<&[u8]> = vec![b"a"; 15];
    assert!(find_program_address(&fifteen, &p).is_some());
    let sixteen: Vec<&[u8]> = vec![b"a"; 16];
    assert!(find_program_address(&sixteen, &p).is_none());
}
