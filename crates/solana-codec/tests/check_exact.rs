//! `check_exact`: one negative case per rule, and properties over random
//! valid transfers.

mod common;

use common::{Rng, sample};
use solana_codec::{
    AddressTableLookup, CheckError, CompiledInstruction, ExactTransfer, MessageV0, Pubkey, check_exact,
    decode_transaction, parse_exact, programs, wire_transaction,
};

type Edit = Box<dyn Fn(&mut MessageV0)>;

/// Compiles the sample, applies `edit` to the decoded message, re-encodes.
fn edited(edit: impl FnOnce(&mut MessageV0, &ExactTransfer)) -> (Vec<u8>, ExactTransfer) {
    let t = sample();
    let mut m = MessageV0::decode(&t.compile().unwrap()).unwrap();
    edit(&mut m, &t);
    (m.encode(), t)
}

#[track_caller]
fn assert_rule(result: Result<(), CheckError>, rule: &str, detail: &str) {
    let e = result.expect_err("check_exact must refuse");
    assert_eq!(e.code, "SOL_TRANSACTION_MISMATCH", "{e}");
    assert_eq!((e.rule, e.detail), (rule, detail), "{e}");
}

#[track_caller]
fn assert_edit(edit: impl FnOnce(&mut MessageV0, &ExactTransfer), rule: &str, detail: &str) {
    let (msg, t) = edited(edit);
    assert_rule(check_exact(&msg, &t), rule, detail);
}

fn index_of(m: &MessageV0, k: Pubkey) -> u8 {
    m.keys.iter().position(|x| *x == k).unwrap() as u8
}

/// Swaps two static keys and remaps every instruction index accordingly.
fn swap_keys(m: &mut MessageV0, a: u8, b: u8) {
    m.keys.swap(usize::from(a), usize::from(b));
    let remap = |i: &mut u8| {
        if *i == a {
            *i = b;
        } else if *i == b {
            *i = a;
        }
    };
    for ix in &mut m.instructions {
        remap(&mut ix.program_index);
        ix.accounts.iter_mut().for_each(remap);
    }
}

#[test]
fn accepts_its_own_compilation() {
    let t = sample();
    let msg = t.compile().unwrap();
    check_exact(&msg, &t).unwrap();
    assert_eq!(parse_exact(&msg, &t.payee).unwrap(), t);
    assert!(msg.len() <= solana_codec::MAX_EXACT_MESSAGE_LEN);
}

#[test]
fn m1_version_and_form() {
    let t = sample();
    let msg = t.compile().unwrap();
    let mut v1 = msg.clone();
    v1[0] = 0x81;
    assert_rule(check_exact(&v1, &t), "M1", "message version is not 0");
    let legacy = &msg[1..];
    assert_rule(check_exact(legacy, &t), "M1", "legacy message without version prefix");
    let mut trailing = msg.clone();
    trailing.push(0);
    assert_rule(check_exact(&trailing, &t), "M1", "trailing bytes after message");
    assert_rule(check_exact(&msg[..msg.len() - 1], &t), "M1", "invalid compact-u16 length");
    assert_rule(check_exact(&msg[..100], &t), "M1", "message truncated");
    assert_rule(check_exact(&[], &t), "M1", "message truncated");
}

#[test]
fn m2_header_and_signer_positions() {
    assert_edit(|m, _| m.header = [2, 0, 4], "M2", "header is not (2, 1, 4)");
    assert_edit(|m, _| m.header = [2, 1, 3], "M2", "header is not (2, 1, 4)");
    // A third signer: move the header boundary so an ATA becomes a signer.
    assert_edit(|m, _| m.header = [3, 1, 4], "M2", "header is not (2, 1, 4)");
}

#[test]
fn m3_lookups_and_key_set() {
    assert_edit(
        |m, _| m.lookups.push(AddressTableLookup { table: Pubkey([7; 32]), writable: vec![0], readonly: vec![] }),
        "M3",
        "address table lookups present",
    );
    assert_edit(|m, _| m.keys.push(Pubkey([9; 32])), "M3", "expected exactly 8 static keys");
    assert_edit(|m, _| m.keys[7] = m.keys[6], "M3", "duplicate static keys");
    // Destination swapped for an attacker's token account.
    assert_edit(
        |m, t| {
            let dst = index_of(m, t.destination_ata());
            m.keys[usize::from(dst)] = Pubkey([0xee; 32]);
        },
        "M3",
        "unexpected account key",
    );
    // The same message checked against a different payee.
    let t = sample();
    let msg = t.compile().unwrap();
    let other = ExactTransfer { payee: Pubkey([0x42; 32]), ..t };
    assert_rule(check_exact(&msg, &other), "M3", "unexpected account key");
}

#[test]
fn m4_blockhash() {
    assert_edit(|m, _| m.recent_blockhash = [0; 32], "M4", "blockhash is all zero");
    assert_edit(|m, _| m.recent_blockhash[31] ^= 1, "M4", "blockhash differs");
}

#[test]
fn m5_instructions() {
    let sys_nonce = |m: &mut MessageV0, _: &ExactTransfer| {
        m.keys.push(programs::SYSTEM);
        let sys = (m.keys.len() - 1) as u8;
        m.instructions.insert(0, CompiledInstruction { program_index: sys, accounts: vec![2], data: vec![4, 0, 0, 0] });
    };
    assert_edit(sys_nonce, "M5", "durable nonce / system program present");
    assert_edit(
        |m, _| {
            let extra = m.instructions[3].clone();
            m.instructions.push(extra);
        },
        "M5",
        "expected exactly 4 instructions",
    );
    assert_edit(
        |m, _| {
            m.instructions.pop();
        },
        "M5",
        "expected exactly 4 instructions",
    );
    // RequestHeapFrame (discriminator 1) in place of the unit limit.
    assert_edit(
        |m, _| m.instructions[0].data = vec![1, 0, 0, 4, 0],
        "M5",
        "compute budget instruction other than unit limit or price",
    );
    // SetLoadedAccountsDataSizeLimit (discriminator 4) added as a fifth instruction.
    assert_edit(
        |m, _| {
            let cb = m.instructions[0].program_index;
            m.instructions.push(CompiledInstruction { program_index: cb, accounts: vec![], data: vec![4, 0, 0, 1, 0] });
        },
        "M5",
        "compute budget instruction other than unit limit or price",
    );
    assert_edit(|m, _| m.instructions.swap(0, 1), "M5", "instruction 0 is not SetComputeUnitLimit");
    assert_edit(|m, _| m.instructions[0].data[1] ^= 1, "M5", "compute unit limit differs");
    assert_edit(|m, _| m.instructions[1].data[8] = 1, "M5", "compute unit price differs");
    assert_edit(|m, _| m.instructions[0].accounts.push(2), "M5", "compute budget instruction has accounts");
    assert_edit(|m, _| m.instructions[2].data[1] = m.instructions[2].data[1].wrapping_add(1), "M5", "amount differs");
    assert_edit(|m, _| m.instructions[2].data[9] = 9, "M5", "decimals differ");
    assert_edit(|m, _| m.instructions[2].data[0] = 3, "M5", "instruction 2 is not TransferChecked");
    assert_edit(|m, _| m.instructions[2].data.push(0), "M5", "instruction 2 is not TransferChecked");
    assert_edit(|m, _| m.instructions[2].accounts.swap(0, 2), "M5", "transfer source differs");
    assert_edit(
        |m, _| {
            m.instructions[2].accounts.pop();
        },
        "M5",
        "transfer does not have exactly 4 accounts",
    );
    assert_edit(|m, t| m.instructions[2].program_index = index_of(m, t.mint), "M5", "transfer program differs");
    assert_edit(|m, _| m.instructions[3].data[0] ^= 1, "M5", "memo differs");
    assert_edit(|m, _| m.instructions[3].accounts.push(2), "M5", "memo instruction has accounts");
}

#[test]
fn m6_fee_payer_and_authority_isolation() {
    assert_edit(|m, _| m.instructions[2].accounts[0] = 0, "M6", "fee payer appears in an instruction");
    assert_edit(|m, _| m.instructions[3].accounts.push(0), "M6", "fee payer appears in an instruction");
    assert_edit(|m, _| m.instructions[0].accounts.push(0), "M6", "fee payer appears in an instruction");
    assert_edit(|m, _| m.instructions[3].accounts.push(1), "M6", "our key appears outside the transfer authority slot");
    assert_edit(|m, _| m.instructions[3].program_index = 1, "M6", "our key is invoked as a program");
    // Fee payer and our key trade places: our signature slot would sign as fee payer.
    assert_edit(|m, _| swap_keys(m, 0, 1), "M2", "fee payer is not account 0");
}

#[test]
fn m7_writability() {
    // Mint moved into the writable range, an ATA into the read-only range.
    assert_edit(
        |m, t| {
            let (dst, mint) = (index_of(m, t.destination_ata()), index_of(m, t.mint));
            swap_keys(m, dst, mint);
        },
        "M7",
        "token accounts are not the writable non-signers",
    );
}

#[test]
fn m8_size() {
    let t = sample();
    let msg = t.compile().unwrap();
    let mut m = MessageV0::decode(&msg).unwrap();
    m.instructions[3].data = vec![b'a'; 800];
    let big = m.encode();
    assert!(big.len() > 1103 && big.len() <= 1232);
    assert_rule(check_exact(&big, &t), "M8", "message too large for a two-signature transaction");
    assert_rule(check_exact(&vec![0x80; 1300], &t), "M8", "message too large for a two-signature transaction");
}

#[test]
fn exact_bytes_catches_non_canonical_order() {
    // Swapping two read-only keys keeps every rule satisfied but is not
    // the CompiledKeys order.
    assert_edit(|m, _| swap_keys(m, 4, 5), "EXACT_BYTES", "message differs from the canonical encoding");
    // Same for the writable pair.
    assert_edit(|m, _| swap_keys(m, 2, 3), "EXACT_BYTES", "message differs from the canonical encoding");
}

#[test]
fn invalid_expectation_is_reported_as_such() {
    let t = sample();
    let msg = t.compile().unwrap();
    let bad = ExactTransfer { amount: 0, ..t };
    let e = check_exact(&msg, &bad).unwrap_err();
    assert_eq!((e.code, e.rule, e.detail), ("SOL_TRANSFER_INVALID", "EXPECTED", "amount is zero"));
}

#[test]
fn validate_refuses_mistakes() {
    let t = sample();
    let cases: Vec<(ExactTransfer, &str)> = vec![
        (ExactTransfer { amount: 0, ..t.clone() }, "amount is zero"),
        (ExactTransfer { memo: vec![], ..t.clone() }, "memo is empty"),
        (ExactTransfer { memo: vec![b'a'; 257], ..t.clone() }, "memo is longer than 256 bytes"),
        (ExactTransfer { memo: vec![0xff, 0xfe], ..t.clone() }, "memo is not UTF-8"),
        (ExactTransfer { recent_blockhash: [0; 32], ..t.clone() }, "recent blockhash is all zero"),
        (
            ExactTransfer { token_program: programs::MEMO, ..t.clone() },
            "token program is neither SPL Token nor Token-2022",
        ),
        (ExactTransfer { fee_payer: t.authority, ..t.clone() }, "fee payer equals the authority"),
        (ExactTransfer { payee: t.authority, ..t.clone() }, "payee is the authority itself"),
        (ExactTransfer { fee_payer: programs::SYSTEM, ..t.clone() }, "fee payer is a program id"),
        (ExactTransfer { authority: programs::TOKEN_2022, ..t.clone() }, "authority is a program id"),
        (ExactTransfer { mint: programs::COMPUTE_BUDGET, ..t.clone() }, "mint is a program id"),
        (ExactTransfer { payee: programs::ASSOCIATED_TOKEN, ..t.clone() }, "payee is a program id"),
        (ExactTransfer { payee: t.mint, ..t.clone() }, "payee is the mint"),
        (ExactTransfer { fee_payer: t.mint, ..t.clone() }, "fee payer is the mint or a token account of the transfer"),
        (
            ExactTransfer { fee_payer: t.source_ata(), ..t.clone() },
            "fee payer is the mint or a token account of the transfer",
        ),
        (
            ExactTransfer { fee_payer: t.destination_ata(), ..t.clone() },
            "fee payer is the mint or a token account of the transfer",
        ),
        (ExactTransfer { authority: t.mint, ..t.clone() }, "authority is the mint or a token account of the transfer"),
    ];
    for (bad, detail) in cases {
        let e = bad.validate().unwrap_err();
        assert_eq!((e.code, e.detail), ("SOL_TRANSFER_INVALID", detail));
        assert_eq!(bad.compile().unwrap_err(), e);
    }
    // The fee payer may be the payee (x402 allows feePayer == payTo).
    let same = ExactTransfer { payee: t.fee_payer, ..t.clone() };
    same.validate().unwrap();
    check_exact(&same.compile().unwrap(), &same).unwrap();
    // 256 bytes of multi-byte UTF-8 is fine.
    let long = ExactTransfer { memo: "é".repeat(128).into_bytes(), ..t };
    check_exact(&long.compile().unwrap(), &long).unwrap();
}

#[test]
fn property_random_transfers() {
    let mut rng = Rng(0x006b_6579_7761_7264);
    for _ in 0..1000 {
        let t = rng.transfer();
        let msg = t.compile().unwrap();
        let decoded = MessageV0::decode(&msg).unwrap();
        assert_eq!(decoded.encode(), msg);
        assert_eq!(decoded.header, [2, 1, 4]);
        assert_eq!(decoded.keys[0], t.fee_payer);
        assert_eq!(decoded.keys[1], t.authority);
        assert!(decoded.keys[2] < decoded.keys[3]);
        assert!(decoded.keys[4..].windows(2).all(|w| w[0] < w[1]));
        check_exact(&msg, &t).unwrap();
        assert_eq!(parse_exact(&msg, &t.payee).unwrap(), t);

        let wire = wire_transaction(&msg, &[[0; 64], [1; 64]]).unwrap();
        assert!(wire.len() <= 1232);
        assert_eq!(decode_transaction(&wire).unwrap(), (vec![[0; 64], [1; 64]], msg.clone()));

        // Any single-byte change is refused, and nothing panics.
        let pos = rng.below(msg.len() as u64) as usize;
        let mut mutated = msg.clone();
        mutated[pos] ^= 1 + rng.below(255) as u8;
        assert!(check_exact(&mutated, &t).is_err(), "byte {pos}");
        let _ = parse_exact(&mutated, &t.payee);
        let _ = MessageV0::decode(&mutated);
        let cut = rng.below(msg.len() as u64) as usize;
        assert!(check_exact(&msg[..cut], &t).is_err());
    }
}

#[test]
fn decoder_survives_random_bytes() {
    let mut rng = Rng(99);
    let base = sample().compile().unwrap();
    for _ in 0..3000 {
        let mut b = base.clone();
        for _ in 0..=rng.below(6) {
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        if let Ok(m) = MessageV0::decode(&b) {
            // Canonical: whatever decodes re-encodes to the same bytes.
            assert_eq!(m.encode(), b);
        }
        let len = rng.below(200) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = MessageV0::decode(&junk);
        let _ = decode_transaction(&junk);
    }
}

#[test]
fn parse_exact_reads_values_and_refuses_other_shapes() {
    let t = sample();
    let msg = t.compile().unwrap();
    // Value edits parse into a different transfer (which the signer then compares).
    let mut m = MessageV0::decode(&msg).unwrap();
    m.instructions[2].data[1] ^= 1;
    let parsed = parse_exact(&m.encode(), &t.payee).unwrap();
    assert_eq!(parsed.amount, t.amount ^ 1);
    assert_rule(check_exact(&m.encode(), &t), "M5", "amount differs");
    // Wrong payee: the destination ATA does not match.
    let e = parse_exact(&msg, &Pubkey([0x42; 32])).unwrap_err();
    assert_eq!((e.rule, e.detail), ("M3", "unexpected account key"));
    // Structural edits are refused.
    let shapes: Vec<Edit> = vec![
        Box::new(|m| m.keys.push(Pubkey([9; 32]))),
        Box::new(|m| {
            m.instructions.pop();
        }),
        Box::new(|m| m.instructions[3].accounts.push(1)),
        Box::new(|m| m.instructions[2].accounts[0] = 0),
        Box::new(|m| swap_keys(m, 4, 5)),
        Box::new(|m| m.header = [2, 1, 3]),
    ];
    for edit in shapes {
        let mut m = MessageV0::decode(&msg).unwrap();
        edit(&mut m);
        let e = parse_exact(&m.encode(), &t.payee).unwrap_err();
        assert_eq!(e.code, "SOL_TRANSACTION_MISMATCH");
    }
    // A zero amount parses structurally but is not a valid transfer.
    let mut m = MessageV0::decode(&msg).unwrap();
    m.instructions[2].data[1..9].copy_from_slice(&[0; 8]);
    let e = parse_exact(&m.encode(), &t.payee).unwrap_err();
    assert_eq!((e.code, e.rule), ("SOL_TRANSFER_INVALID", "EXPECTED"));
}
