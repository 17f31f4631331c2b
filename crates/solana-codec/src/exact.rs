//! The one transaction shape keyward signs, its builder and its checker.
//!
//! An x402 "exact" payment on Solana is a v0 message with four
//! instructions (research brief §3.1):
//!
//! | # | program | accounts | data |
//! |---|---|---|---|
//! | 0 | ComputeBudget | none | `02 ‖ u32 LE` units |
//! | 1 | ComputeBudget | none | `03 ‖ u64 LE` µlamports per CU |
//! | 2 | Token / Token-2022 | `[srcATA (w), mint, dstATA (w), authority (signer)]` | `0c ‖ u64 LE amount ‖ u8 decimals` |
//! | 3 | Memo v2 | none | UTF-8 memo |
//!
//! The fee payer (the facilitator) is account 0 and signs too, but it is in
//! no instruction, so our signature cannot commit its funds to anything.
//!
//! **Why byte equality.** The signer does not trust whoever built the
//! message (a client, an RPC, a compromised helper). [`check_exact`] first
//! checks each rule of §4.4 on the decoded message, so a refusal names the
//! rule, and only then requires the bytes to equal
//! [`ExactTransfer::compile`]. The rule checks give good errors; the byte
//! comparison is what makes the check complete.
//!
//! **Key order.** Static keys follow solana-message's `CompiledKeys`:
//! fee payer, writable signers, read-only signers, writable non-signers,
//! read-only non-signers, each group sorted by raw bytes. That gives
//! `[fee_payer, authority, sort{srcATA, dstATA}, sort{ComputeBudget, Memo,
//! token program, mint}]` and header `(2, 1, 4)`.

use crate::error::{CheckError, CodecError, codes};
use crate::message::{CompiledInstruction, MessageV0, PACKET_DATA_SIZE};
use crate::pda::associated_token_address;
use crate::programs;
use crate::pubkey::Pubkey;

/// Longest memo keyward signs (x402 `MAX_MEMO_BYTES`).
pub const MAX_MEMO_LEN: usize = 256;
/// Largest message whose two-signature wire transaction fits a packet.
pub const MAX_EXACT_MESSAGE_LEN: usize = PACKET_DATA_SIZE - 1 - 2 * 64;

const HEADER: [u8; 3] = [2, 1, 4];
const CB_SET_LIMIT: u8 = 2;
const CB_SET_PRICE: u8 = 3;
const TRANSFER_CHECKED: u8 = 12;

/// The one transaction shape keyward signs for an x402 "exact" payment or
/// an SPL transfer: `[SetComputeUnitLimit, SetComputeUnitPrice,
/// TransferChecked(srcATA, mint, dstATA, authority), Memo]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactTransfer {
    /// The facilitator's `extra.feePayer`: account 0, writable signer.
    pub fee_payer: Pubkey,
    /// Our key, owner of the source ATA: account 1, read-only signer.
    pub authority: Pubkey,
    /// Wallet that owns the destination ATA (x402 `payTo`).
    pub payee: Pubkey,
    /// The token mint.
    pub mint: Pubkey,
    /// [`programs::TOKEN`] or [`programs::TOKEN_2022`].
    pub token_program: Pubkey,
    /// The mint's decimals, checked on chain by TransferChecked.
    pub decimals: u8,
    /// Amount in base units; must be > 0.
    pub amount: u64,
    /// 1..=256 bytes of UTF-8.
    pub memo: Vec<u8>,
    /// SetComputeUnitLimit units.
    pub compute_unit_limit: u32,
    /// SetComputeUnitPrice, in micro-lamports per compute unit.
    pub compute_unit_price_micro_lamports: u64,
    /// Recent blockhash; bounds the transaction's lifetime.
    pub recent_blockhash: [u8; 32],
}

const fn invalid(detail: &'static str) -> CodecError {
    CodecError::new(codes::TRANSFER_INVALID, detail)
}

impl ExactTransfer {
    /// The source token account: `ATA(authority, mint, token_program)`.
    pub fn source_ata(&self) -> Pubkey {
        associated_token_address(&self.authority, &self.mint, &self.token_program)
    }

    /// The destination token account: `ATA(payee, mint, token_program)`.
    pub fn destination_ata(&self) -> Pubkey {
        associated_token_address(&self.payee, &self.mint, &self.token_program)
    }

    /// Checks the transfer is one keyward may build. Every failure is
    /// `SOL_TRANSFER_INVALID`; the detail names the problem.
    ///
    /// Caps on amount, compute units and price are policy, not codec, and
    /// are not checked here.
    pub fn validate(&self) -> Result<(), CodecError> {
        let (src, dst) = (self.source_ata(), self.destination_ata());
        self.validate_with(src, dst)
    }

    /// [`Self::validate`] with the two token accounts already derived (each
    /// derivation costs point decompressions; derive once per operation).
    fn validate_with(&self, src: Pubkey, dst: Pubkey) -> Result<(), CodecError> {
        if self.amount == 0 {
            return Err(invalid("amount is zero"));
        }
        if self.memo.is_empty() {
            return Err(invalid("memo is empty"));
        }
        if self.memo.len() > MAX_MEMO_LEN {
            return Err(invalid("memo is longer than 256 bytes"));
        }
        if core::str::from_utf8(&self.memo).is_err() {
            return Err(invalid("memo is not UTF-8"));
        }
        if self.recent_blockhash == [0u8; 32] {
            return Err(invalid("recent blockhash is all zero"));
        }
        if self.token_program != programs::TOKEN && self.token_program != programs::TOKEN_2022 {
            return Err(invalid("token program is neither SPL Token nor Token-2022"));
        }
        if self.fee_payer == self.authority {
            return Err(invalid("fee payer equals the authority"));
        }
        if self.payee == self.authority {
            return Err(invalid("payee is the authority itself"));
        }
        let is_program = |k: &Pubkey| programs::ALL.contains(k);
        if is_program(&self.fee_payer) {
            return Err(invalid("fee payer is a program id"));
        }
        if is_program(&self.authority) {
            return Err(invalid("authority is a program id"));
        }
        if is_program(&self.mint) {
            return Err(invalid("mint is a program id"));
        }
        if is_program(&self.payee) {
            return Err(invalid("payee is a program id"));
        }
        if self.payee == self.mint {
            return Err(invalid("payee is the mint"));
        }
        for k in [self.mint, src, dst] {
            if self.fee_payer == k {
                return Err(invalid("fee payer is the mint or a token account of the transfer"));
            }
            if self.authority == k {
                return Err(invalid("authority is the mint or a token account of the transfer"));
            }
        }
        let keys = self.static_keys_unsorted(src, dst);
        for (i, a) in keys.iter().enumerate() {
            if keys[i + 1..].contains(a) {
                return Err(invalid("account keys are not distinct"));
            }
        }
        Ok(())
    }

    fn static_keys_unsorted(&self, src: Pubkey, dst: Pubkey) -> [Pubkey; 8] {
        [
            self.fee_payer,
            self.authority,
            src,
            dst,
            programs::COMPUTE_BUDGET,
            programs::MEMO,
            self.token_program,
            self.mint,
        ]
    }

    /// The static keys in `CompiledKeys` order (see the module docs).
    fn static_keys(&self, src: Pubkey, dst: Pubkey) -> [Pubkey; 8] {
        let mut writable = [src, dst];
        writable.sort_unstable();
        let mut readonly = [programs::COMPUTE_BUDGET, programs::MEMO, self.token_program, self.mint];
        readonly.sort_unstable();
        [self.fee_payer, self.authority, writable[0], writable[1], readonly[0], readonly[1], readonly[2], readonly[3]]
    }

    /// Validates, then builds the v0 message bytes (with the `0x80` prefix).
    pub fn compile(&self) -> Result<Vec<u8>, CodecError> {
        let (src, dst) = (self.source_ata(), self.destination_ata());
        self.validate_with(src, dst)?;
        self.compile_with(src, dst)
    }

    /// [`Self::compile`] after validation, with the token accounts derived.
    fn compile_with(&self, src: Pubkey, dst: Pubkey) -> Result<Vec<u8>, CodecError> {
        let keys = self.static_keys(src, dst);
        // All eight keys are distinct (validated) and present by construction.
        let idx = |k: Pubkey| keys.iter().position(|x| *x == k).map_or(0, |i| i as u8);

        let mut limit = vec![CB_SET_LIMIT];
        limit.extend_from_slice(&self.compute_unit_limit.to_le_bytes());
        let mut price = vec![CB_SET_PRICE];
        price.extend_from_slice(&self.compute_unit_price_micro_lamports.to_le_bytes());
        let mut transfer = vec![TRANSFER_CHECKED];
        transfer.extend_from_slice(&self.amount.to_le_bytes());
        transfer.push(self.decimals);

        let cb = idx(programs::COMPUTE_BUDGET);
        let message = MessageV0 {
            header: HEADER,
            keys: keys.to_vec(),
            recent_blockhash: self.recent_blockhash,
            instructions: vec![
                CompiledInstruction { program_index: cb, accounts: vec![], data: limit },
                CompiledInstruction { program_index: cb, accounts: vec![], data: price },
                CompiledInstruction {
                    program_index: idx(self.token_program),
                    accounts: vec![idx(src), idx(self.mint), idx(dst), 1],
                    data: transfer,
                },
                CompiledInstruction { program_index: idx(programs::MEMO), accounts: vec![], data: self.memo.clone() },
            ],
            lookups: vec![],
        };
        let bytes = message.encode();
        if bytes.len() > MAX_EXACT_MESSAGE_LEN {
            return Err(CodecError::new(codes::MESSAGE_TOO_LARGE, "message too large for a two-signature transaction"));
        }
        Ok(bytes)
    }
}

const fn mismatch(rule: &'static str, detail: &'static str) -> CheckError {
    CheckError::mismatch(rule, detail)
}

fn expected_invalid(e: CodecError) -> CheckError {
    CheckError { code: e.code, rule: "EXPECTED", detail: e.detail }
}

/// Size (M8) and strict v0 decoding (M1).
fn decode_checked(message: &[u8]) -> Result<MessageV0, CheckError> {
    if message.len() > MAX_EXACT_MESSAGE_LEN {
        return Err(mismatch("M8", "message too large for a two-signature transaction"));
    }
    MessageV0::decode(message).map_err(|e| {
        if e.code == codes::MESSAGE_TOO_LARGE { mismatch("M8", e.detail) } else { mismatch("M1", e.detail) }
    })
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// Checks that `message` is exactly the transaction `expected` describes.
///
/// Each rule of research §4.4 is checked separately, in an order that
/// reports the most specific rule first; only when all pass are the bytes
/// compared with [`ExactTransfer::compile`] (rule `EXACT_BYTES`). Errors
/// have code `SOL_TRANSACTION_MISMATCH`, except an invalid `expected`
/// (code `SOL_TRANSFER_INVALID`, rule `EXPECTED`).
///
/// | rule | meaning |
/// |---|---|
/// | M1 | strict v0 message (prefix `0x80`, well formed) |
/// | M2 | header `(2, 1, 4)`, fee payer at 0, our key at 1 |
/// | M3 | no lookups; exactly the 8 expected keys, no duplicates |
/// | M4 | blockhash not zero and as expected |
/// | M5 | exactly the 4 expected instructions; no system program, no other compute budget instruction |
/// | M6 | fee payer in no instruction; our key only as transfer authority |
/// | M7 | the two token accounts are the writable non-signers |
/// | M8 | fits a two-signature transaction of 1232 bytes |
pub fn check_exact(message: &[u8], expected: &ExactTransfer) -> Result<(), CheckError> {
    let (src, dst) = (expected.source_ata(), expected.destination_ata());
    expected.validate_with(src, dst).map_err(expected_invalid)?;
    let msg = decode_checked(message)?;

    if !msg.lookups.is_empty() {
        return Err(mismatch("M3", "address table lookups present"));
    }
    let keys = &msg.keys;
    if keys.contains(&programs::SYSTEM) {
        return Err(mismatch("M5", "durable nonce / system program present"));
    }
    let program_of = |ix: &CompiledInstruction| keys[usize::from(ix.program_index)];
    for ix in &msg.instructions {
        if program_of(ix) == programs::COMPUTE_BUDGET
            && !matches!(ix.data.first(), Some(&CB_SET_LIMIT) | Some(&CB_SET_PRICE))
        {
            return Err(mismatch("M5", "compute budget instruction other than unit limit or price"));
        }
    }

    // M6 before the layout rules, so that a misused fee payer is named as such.
    for (i, k) in keys.iter().enumerate() {
        let uses = |ix: &CompiledInstruction| usize::from(ix.program_index) == i;
        if *k == expected.fee_payer {
            for ix in &msg.instructions {
                if uses(ix) || ix.accounts.iter().any(|&a| usize::from(a) == i) {
                    return Err(mismatch("M6", "fee payer appears in an instruction"));
                }
            }
        }
        if *k == expected.authority {
            for (n, ix) in msg.instructions.iter().enumerate() {
                if uses(ix) {
                    return Err(mismatch("M6", "our key is invoked as a program"));
                }
                for (p, &a) in ix.accounts.iter().enumerate() {
                    if usize::from(a) == i && !(n == 2 && p == 3) {
                        return Err(mismatch("M6", "our key appears outside the transfer authority slot"));
                    }
                }
            }
        }
    }

    if keys.len() != 8 {
        return Err(mismatch("M3", "expected exactly 8 static keys"));
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[i + 1..].contains(k) {
            return Err(mismatch("M3", "duplicate static keys"));
        }
    }
    let wanted = expected.static_keys_unsorted(src, dst);
    if keys.iter().any(|k| !wanted.contains(k)) {
        return Err(mismatch("M3", "unexpected account key"));
    }

    if msg.header != HEADER {
        return Err(mismatch("M2", "header is not (2, 1, 4)"));
    }
    if keys[0] != expected.fee_payer {
        return Err(mismatch("M2", "fee payer is not account 0"));
    }
    if keys[1] != expected.authority {
        return Err(mismatch("M2", "our key is not account 1"));
    }
    if !((keys[2] == src && keys[3] == dst) || (keys[2] == dst && keys[3] == src)) {
        return Err(mismatch("M7", "token accounts are not the writable non-signers"));
    }

    if msg.recent_blockhash == [0u8; 32] {
        return Err(mismatch("M4", "blockhash is all zero"));
    }
    if msg.recent_blockhash != expected.recent_blockhash {
        return Err(mismatch("M4", "blockhash differs"));
    }

    check_instructions(&msg, expected, src, dst)?;

    let compiled = expected.compile_with(src, dst).map_err(expected_invalid)?;
    if compiled != message {
        return Err(mismatch("EXACT_BYTES", "message differs from the canonical encoding"));
    }
    Ok(())
}

/// M5 for a message whose keys already passed M2, M3 and M7.
fn check_instructions(msg: &MessageV0, expected: &ExactTransfer, src: Pubkey, dst: Pubkey) -> Result<(), CheckError> {
    let [limit, price, transfer, memo] = msg.instructions.as_slice() else {
        return Err(mismatch("M5", "expected exactly 4 instructions"));
    };
    let keys = &msg.keys;
    let program_of = |ix: &CompiledInstruction| keys[usize::from(ix.program_index)];
    let index_of = |k: Pubkey| keys.iter().position(|x| *x == k);

    if program_of(limit) != programs::COMPUTE_BUDGET || limit.data.len() != 5 || limit.data[0] != CB_SET_LIMIT {
        return Err(mismatch("M5", "instruction 0 is not SetComputeUnitLimit"));
    }
    if program_of(price) != programs::COMPUTE_BUDGET || price.data.len() != 9 || price.data[0] != CB_SET_PRICE {
        return Err(mismatch("M5", "instruction 1 is not SetComputeUnitPrice"));
    }
    if !limit.accounts.is_empty() || !price.accounts.is_empty() {
        return Err(mismatch("M5", "compute budget instruction has accounts"));
    }
    if le_u32(&limit.data[1..]) != expected.compute_unit_limit {
        return Err(mismatch("M5", "compute unit limit differs"));
    }
    if le_u64(&price.data[1..]) != expected.compute_unit_price_micro_lamports {
        return Err(mismatch("M5", "compute unit price differs"));
    }

    if program_of(transfer) != expected.token_program {
        return Err(mismatch("M5", "transfer program differs"));
    }
    if transfer.data.len() != 10 || transfer.data[0] != TRANSFER_CHECKED {
        return Err(mismatch("M5", "instruction 2 is not TransferChecked"));
    }
    let [a_src, a_mint, a_dst, a_auth] = transfer.accounts.as_slice() else {
        return Err(mismatch("M5", "transfer does not have exactly 4 accounts"));
    };
    let is = |a: u8, k: Pubkey| index_of(k) == Some(usize::from(a));
    if !is(*a_src, src) {
        return Err(mismatch("M5", "transfer source differs"));
    }
    if !is(*a_mint, expected.mint) {
        return Err(mismatch("M5", "transfer mint differs"));
    }
    if !is(*a_dst, dst) {
        return Err(mismatch("M5", "transfer destination differs"));
    }
    if !is(*a_auth, expected.authority) {
        return Err(mismatch("M5", "transfer authority differs"));
    }
    if le_u64(&transfer.data[1..9]) != expected.amount {
        return Err(mismatch("M5", "amount differs"));
    }
    if transfer.data[9] != expected.decimals {
        return Err(mismatch("M5", "decimals differ"));
    }

    if program_of(memo) != programs::MEMO {
        return Err(mismatch("M5", "instruction 3 is not a memo"));
    }
    if !memo.accounts.is_empty() {
        return Err(mismatch("M5", "memo instruction has accounts"));
    }
    if memo.data != expected.memo {
        return Err(mismatch("M5", "memo differs"));
    }
    Ok(())
}

/// Rebuilds the [`ExactTransfer`] a message encodes, if the message has
/// exactly keyward's layout.
///
/// The payee's wallet cannot be recovered from the message (only its ATA,
/// a hash, is in it), so the caller supplies `payee` (x402 `payTo`) and
/// the destination ATA must match it. Everything else comes from the
/// message. The result is then re-checked with [`check_exact`], so success
/// means `compile()` of the result reproduces `message` byte for byte.
pub fn parse_exact(message: &[u8], payee: &Pubkey) -> Result<ExactTransfer, CheckError> {
    let msg = decode_checked(message)?;
    if !msg.lookups.is_empty() {
        return Err(mismatch("M3", "address table lookups present"));
    }
    if msg.keys.len() != 8 {
        return Err(mismatch("M3", "expected exactly 8 static keys"));
    }
    if msg.header != HEADER {
        return Err(mismatch("M2", "header is not (2, 1, 4)"));
    }
    let [limit, price, transfer, memo] = msg.instructions.as_slice() else {
        return Err(mismatch("M5", "expected exactly 4 instructions"));
    };
    if limit.data.len() != 5 || limit.data[0] != CB_SET_LIMIT {
        return Err(mismatch("M5", "instruction 0 is not SetComputeUnitLimit"));
    }
    if price.data.len() != 9 || price.data[0] != CB_SET_PRICE {
        return Err(mismatch("M5", "instruction 1 is not SetComputeUnitPrice"));
    }
    if transfer.data.len() != 10 || transfer.data[0] != TRANSFER_CHECKED {
        return Err(mismatch("M5", "instruction 2 is not TransferChecked"));
    }
    let Some(&mint_index) = transfer.accounts.get(1) else {
        return Err(mismatch("M5", "transfer does not have exactly 4 accounts"));
    };
    let key = |i: u8| msg.keys.get(usize::from(i)).copied().ok_or(mismatch("M3", "account index out of range"));
    let parsed = ExactTransfer {
        fee_payer: msg.keys[0],
        authority: msg.keys[1],
        payee: *payee,
        mint: key(mint_index)?,
        token_program: key(transfer.program_index)?,
        decimals: transfer.data[9],
        amount: le_u64(&transfer.data[1..9]),
        memo: memo.data.clone(),
        compute_unit_limit: le_u32(&limit.data[1..]),
        compute_unit_price_micro_lamports: le_u64(&price.data[1..]),
        recent_blockhash: msg.recent_blockhash,
    };
    check_exact(message, &parsed)?;
    Ok(parsed)
}
