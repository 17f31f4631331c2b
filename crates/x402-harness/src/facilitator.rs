//! The facilitator's verification rules for the SVM "exact" scheme, written
//! from the x402 spec (research §4.1) and the reference facilitators (§4.3),
//! independently of keyward's own transaction builder. Decoding uses the
//! Solana crates (`solana-transaction`, `solana-message`, `spl-token-interface`,
//! `spl-associated-token-account-interface`), never a hand-rolled parser.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use solana_address::Address;
use solana_message::VersionedMessage;
use solana_transaction::versioned::VersionedTransaction;
use spl_token_interface::instruction::TokenInstruction;

use crate::RouteSpec;

pub(crate) const TOKEN_PROGRAM: Address = solana_address::address!("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
pub(crate) const TOKEN_2022_PROGRAM: Address = solana_address::address!("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
pub(crate) const MEMO_PROGRAM: Address = solana_address::address!("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
pub(crate) const LIGHTHOUSE_PROGRAM: Address = solana_address::address!("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95");
const COMPUTE_BUDGET_PROGRAM: Address = solana_sdk_ids::compute_budget::ID;

/// Compute-unit limit cap (x402-rs `max_compute_unit_limit`).
pub(crate) const MAX_COMPUTE_UNIT_LIMIT: u32 = 400_000;
/// Compute-unit price cap in micro-lamports (spec: 5 lamports per CU).
pub(crate) const MAX_COMPUTE_UNIT_PRICE: u64 = 5_000_000;

/// A payment that passed every rule and may be settled.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) tx: VersionedTransaction,
    /// The exact message bytes the client signed (from the wire).
    pub(crate) message: Vec<u8>,
    /// The transfer authority (= the client, signer index 1).
    pub(crate) payer: Address,
    pub(crate) amount: u64,
}

fn fail<T>(reason: &str) -> Result<T, String> {
    Err(reason.to_owned())
}

/// Parses a payment header (`X-PAYMENT` / `PAYMENT-SIGNATURE`) and applies the
/// facilitator rules against `requirement` (the JSON the route advertised).
pub(crate) fn verify(
    spec: &RouteSpec,
    requirement: &Value,
    facilitator: &Address,
    header: &str,
) -> Result<Verified, String> {
    let raw = STANDARD.decode(header.trim()).or_else(|_| fail("invalid_payload"))?;
    let payload: Value = serde_json::from_slice(&raw).or_else(|_| fail("invalid_payload"))?;

    if payload.get("x402Version").and_then(Value::as_u64) != Some(u64::from(spec.version)) {
        return fail("invalid_x402_version");
    }
    // Which scheme/network the client claims to pay with.
    let (scheme, network) = if spec.version >= 2 {
        let Some(accepted) = payload.get("accepted") else {
            return fail("invalid_payload");
        };
        if accepted.get("scheme").and_then(Value::as_str) != Some(spec.scheme.as_str()) {
            return fail("unsupported_scheme");
        }
        if accepted.get("network").and_then(Value::as_str) != Some(spec.network.as_str()) {
            return fail("invalid_network");
        }
        if accepted != requirement {
            return fail("invalid_exact_svm_payload_accepted_requirements_mismatch");
        }
        (accepted.get("scheme").and_then(Value::as_str), accepted.get("network").and_then(Value::as_str))
    } else {
        (payload.get("scheme").and_then(Value::as_str), payload.get("network").and_then(Value::as_str))
    };
    if scheme != Some("exact") || scheme != Some(spec.scheme.as_str()) {
        return fail("unsupported_scheme");
    }
    if network != Some(spec.network.as_str()) {
        return fail("invalid_network");
    }

    let Some(tx_b64) = payload.get("payload").and_then(|p| p.get("transaction")).and_then(Value::as_str) else {
        return fail("invalid_exact_svm_payload_transaction");
    };
    let wire = STANDARD.decode(tx_b64).or_else(|_| fail("invalid_exact_svm_payload_transaction"))?;
    let tx: VersionedTransaction =
        wincode::deserialize(&wire).or_else(|_| fail("invalid_exact_svm_payload_transaction"))?;
    // Canonical encoding only (no trailing bytes, no alternative encodings).
    match wincode::serialize(&tx) {
        Ok(re) if re == wire => {}
        _ => return fail("invalid_exact_svm_payload_transaction"),
    }
    if tx.sanitize().is_err() {
        return fail("invalid_exact_svm_payload_transaction");
    }
    let message_bytes = tx.message.serialize();
    // The message is the wire tail after the signatures.
    if !wire.ends_with(&message_bytes) {
        return fail("invalid_exact_svm_payload_transaction");
    }

    let VersionedMessage::V0(msg) = &tx.message else {
        return fail("invalid_exact_svm_payload_transaction_version");
    };
    if !msg.address_table_lookups.is_empty() {
        return fail("invalid_exact_svm_payload_transaction_address_lookup_tables");
    }
    let keys = &msg.account_keys;
    if keys.first() != Some(facilitator) {
        return fail("invalid_exact_svm_payload_fee_payer_not_managed_by_facilitator");
    }
    if msg.header.num_required_signatures != 2 || tx.signatures.len() != 2 {
        return fail("invalid_exact_svm_payload_excessive_signers");
    }
    let ixs = &msg.instructions;
    if !(3..=6).contains(&ixs.len()) {
        return fail("invalid_exact_svm_payload_transaction_instructions_length");
    }
    // Fee payer isolation: index 0 in no instruction's accounts, never a program.
    for ix in ixs {
        if ix.program_id_index == 0 || ix.accounts.contains(&0) {
            return fail("invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts");
        }
    }
    let key = |i: u8| keys.get(usize::from(i)).copied();
    let program = |i: usize| key(ixs[i].program_id_index);

    // ix0: SetComputeUnitLimit.
    let cu = &ixs[0];
    if program(0) != Some(COMPUTE_BUDGET_PROGRAM) || !cu.accounts.is_empty() || cu.data.len() != 5 || cu.data[0] != 2 {
        return fail("invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction");
    }
    let units = u32::from_le_bytes([cu.data[1], cu.data[2], cu.data[3], cu.data[4]]);
    if units > MAX_COMPUTE_UNIT_LIMIT {
        return fail("invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction_too_high");
    }
    // ix1: SetComputeUnitPrice.
    let cp = &ixs[1];
    if program(1) != Some(COMPUTE_BUDGET_PROGRAM) || !cp.accounts.is_empty() || cp.data.len() != 9 || cp.data[0] != 3 {
        return fail("invalid_exact_svm_payload_transaction_instructions_compute_price_instruction");
    }
    let mut price = [0u8; 8];
    price.copy_from_slice(&cp.data[1..9]);
    if u64::from_le_bytes(price) > MAX_COMPUTE_UNIT_PRICE {
        return fail("invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high");
    }
    // ix2: TransferChecked on Token or Token-2022.
    let tr = &ixs[2];
    let Some(token_program) = program(2) else {
        return fail("invalid_exact_svm_payload_no_transfer_instruction");
    };
    if token_program != TOKEN_PROGRAM && token_program != TOKEN_2022_PROGRAM {
        return fail("invalid_exact_svm_payload_no_transfer_instruction");
    }
    if tr.data.len() != 10 || tr.data[0] != 12 || tr.accounts.len() != 4 {
        return fail("invalid_exact_svm_payload_no_transfer_instruction");
    }
    let Ok(TokenInstruction::TransferChecked { amount, .. }) = TokenInstruction::unpack(&tr.data) else {
        return fail("invalid_exact_svm_payload_no_transfer_instruction");
    };
    let (Some(_source), Some(mint), Some(destination), Some(authority)) =
        (key(tr.accounts[0]), key(tr.accounts[1]), key(tr.accounts[2]), key(tr.accounts[3]))
    else {
        return fail("invalid_exact_svm_payload_transaction");
    };
    if authority == *facilitator {
        return fail("invalid_exact_svm_payload_transaction_fee_payer_transferring_funds");
    }
    // The only other signer is index 1: the authority must be it.
    if keys.get(1) != Some(&authority) {
        return fail("invalid_exact_svm_payload_authority_not_signer");
    }
    let asset: Address = spec.asset.parse().or_else(|_| fail("invalid_exact_svm_payload_mint_mismatch"))?;
    if mint != asset {
        return fail("invalid_exact_svm_payload_mint_mismatch");
    }
    let pay_to: Address = spec.pay_to.parse().or_else(|_| fail("invalid_exact_svm_payload_recipient_mismatch"))?;
    let expected_dst = spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        &pay_to,
        &asset,
        &token_program,
    );
    if destination != expected_dst {
        return fail("invalid_exact_svm_payload_recipient_mismatch");
    }
    if amount != spec.amount {
        return fail("invalid_exact_svm_payload_amount_mismatch");
    }
    // ix3..: Memo or Lighthouse only; a 6th instruction may only be Memo.
    let mut memos: Vec<&[u8]> = Vec::new();
    for (i, ix) in ixs.iter().enumerate().skip(3) {
        match program(i) {
            Some(p) if p == MEMO_PROGRAM => memos.push(&ix.data),
            Some(p) if p == LIGHTHOUSE_PROGRAM && i < 5 => {}
            _ => return fail("invalid_exact_svm_payload_unknown_instruction"),
        }
    }
    if let Some(memo) = &spec.memo
        && (memos.len() != 1 || memos[0] != memo.as_bytes())
    {
        return fail("invalid_exact_svm_payload_memo_mismatch");
    }

    // The client's Ed25519 signature (index 1) over the exact message bytes.
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&authority.to_bytes())
        .or_else(|_| fail("invalid_exact_svm_payload_signature_invalid"))?;
    let sig = ed25519_dalek::Signature::from_bytes(tx.signatures[1].as_array());
    if vk.verify_strict(&message_bytes, &sig).is_err() {
        return fail("invalid_exact_svm_payload_signature_invalid");
    }

    Ok(Verified { tx, message: message_bytes, payer: authority, amount })
}
