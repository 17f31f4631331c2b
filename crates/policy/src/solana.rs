//! Solana payments: the network and asset registry, and the binding of an
//! intent to the exact transaction the signer will sign (normative:
//! docs/x402.md).
//!
//! Why this lives in the pure policy crate: "what is signed is what was
//! decided" only holds if the bytes are a function of the decided intent.
//! [`bind`] is that function. It takes the canonical intent, the registry
//! from the policy file and the public key of the signing key, and returns
//! the [`ExactTransfer`] (and its compiled v0 message) that the signer will
//! sign, or a refusal with a stable reason code. Everything the policy
//! decides on for a Solana payment (payee, mint, amount, fee payer,
//! network) is then *in* the bytes: a caller cannot name one payee to the
//! policy and another in the message, because it does not write the
//! message.
//!
//! The registry pins, per network (CAIP-2 id), the assets a key may move:
//! mint, token program and decimals, so that a challenge naming an unknown
//! mint, a Token-2022 look-alike or the wrong decimals is refused before
//! anything is unsealed. It also caps the compute budget the signer will
//! put in a transaction (the fee payer pays for it, but a hostile
//! facilitator could otherwise ask for a transaction that is expensive to
//! land), and may list the fee payers (facilitators) trusted to co-sign.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use solana_codec::{ExactTransfer, Pubkey, programs};
use subtle::ConstantTimeEq;

use crate::codes::ReasonCode;
use crate::intent::{Action, CanonicalIntent};

/// The compute-unit limit keyward puts in a transaction unless the intent
/// asks for less (the x402 reference clients' default).
pub const DEFAULT_COMPUTE_UNIT_LIMIT: u32 = 20_000;
/// The compute-unit price (micro-lamports) keyward uses by default.
pub const DEFAULT_COMPUTE_UNIT_PRICE: u64 = 1;
/// The largest compute-unit limit a policy may allow (Solana's per-tx max).
pub const MAX_COMPUTE_UNIT_LIMIT: u32 = 1_400_000;
/// The largest compute-unit price a policy may allow (5 lamports per CU, the
/// x402 specification's ceiling).
pub const MAX_COMPUTE_UNIT_PRICE: u64 = 5_000_000;
/// Domain of the memo keyward derives when the payee asks for none.
pub const MEMO_DOMAIN: &[u8] = b"keyward/solana-memo/v1\0";

/// One asset on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub mint: Pubkey,
    pub token_program: Pubkey,
    pub decimals: u8,
}

/// One Solana network in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// `solana:<genesis hash prefix>`.
    pub caip2: String,
    /// x402 v1 names for it (`solana`, `solana-devnet`).
    pub aliases: BTreeSet<String>,
    pub max_compute_unit_limit: u32,
    pub max_compute_unit_price: u64,
    /// When non-empty, the only fee payers the signer will co-sign with.
    pub fee_payers: BTreeSet<Pubkey>,
    /// Asset id (as in `global.assets`) → its mint.
    pub assets: BTreeMap<String, Asset>,
}

/// Network id → network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    pub networks: BTreeMap<String, Network>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireNetwork {
    #[serde(default)]
    aliases: BTreeSet<String>,
    #[serde(default = "default_limit")]
    max_compute_unit_limit: u32,
    #[serde(default = "default_price")]
    max_compute_unit_price: u64,
    #[serde(default)]
    fee_payers: BTreeSet<String>,
    #[serde(default)]
    assets: BTreeMap<String, WireAsset>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireAsset {
    mint: String,
    token_program: String,
    decimals: u8,
}

fn default_limit() -> u32 {
    DEFAULT_COMPUTE_UNIT_LIMIT
}

fn default_price() -> u64 {
    1_000
}

/// Whether `s` is a Solana CAIP-2 id: `solana:` and a 32-character base58
/// genesis-hash prefix.
pub fn is_solana_caip2(s: &str) -> bool {
    s.strip_prefix("solana:").is_some_and(|r| r.len() == 32 && solana_codec::base58::decode(r).is_ok())
}

impl Registry {
    /// Validates the `[networks]` tables of a policy file. `assets` are the
    /// global asset ids: a registry asset must have a global cap.
    pub(crate) fn from_wire(
        wire: BTreeMap<String, WireNetwork>,
        caps: &BTreeMap<String, crate::config::AssetCaps>,
        warnings: &mut Vec<String>,
    ) -> Result<Registry, String> {
        let mut networks = BTreeMap::new();
        let mut names = BTreeSet::new();
        for (id, w) in wire {
            if !is_solana_caip2(&id) {
                return Err(format!("networks.{id}: not a Solana CAIP-2 id (solana:<32 base58 characters>)"));
            }
            if w.max_compute_unit_limit == 0 || w.max_compute_unit_limit > MAX_COMPUTE_UNIT_LIMIT {
                return Err(format!("networks.{id}.max_compute_unit_limit must be 1 to {MAX_COMPUTE_UNIT_LIMIT}"));
            }
            if w.max_compute_unit_price > MAX_COMPUTE_UNIT_PRICE {
                return Err(format!("networks.{id}.max_compute_unit_price must be at most {MAX_COMPUTE_UNIT_PRICE}"));
            }
            for a in &w.aliases {
                if !names.insert(a.clone()) || a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("networks.{id}.aliases: {a:?} is empty, not visible ASCII or used twice"));
                }
            }
            let mut fee_payers = BTreeSet::new();
            for f in &w.fee_payers {
                let k = Pubkey::from_base58(f).map_err(|_| format!("networks.{id}.fee_payers: not a public key"))?;
                fee_payers.insert(k);
            }
            if fee_payers.is_empty() {
                warnings.push(format!("networks.{id}.fee_payers is empty: any facilitator may co-sign"));
            }
            let mut assets = BTreeMap::new();
            let mut mints = BTreeSet::new();
            for (name, a) in w.assets {
                if !caps.contains_key(&name) {
                    return Err(format!("networks.{id}.assets.{name}: asset is not in global.assets"));
                }
                let mint = Pubkey::from_base58(&a.mint)
                    .map_err(|_| format!("networks.{id}.assets.{name}.mint: not a public key"))?;
                let token_program = Pubkey::from_base58(&a.token_program)
                    .map_err(|_| format!("networks.{id}.assets.{name}.token_program: not a public key"))?;
                if token_program != programs::TOKEN && token_program != programs::TOKEN_2022 {
                    return Err(format!("networks.{id}.assets.{name}.token_program: not SPL Token or Token-2022"));
                }
                if token_program == programs::TOKEN_2022 {
                    warnings.push(format!(
                        "networks.{id}.assets.{name}: a Token-2022 mint may carry transfer fees or hooks"
                    ));
                }
                if !mints.insert(mint) {
                    return Err(format!("networks.{id}.assets.{name}.mint: listed twice"));
                }
                if a.decimals > 19 {
                    return Err(format!("networks.{id}.assets.{name}.decimals must be at most 19"));
                }
                assets.insert(name, Asset { mint, token_program, decimals: a.decimals });
            }
            networks.insert(
                id.clone(),
                Network {
                    caip2: id,
                    aliases: w.aliases,
                    max_compute_unit_limit: w.max_compute_unit_limit,
                    max_compute_unit_price: w.max_compute_unit_price,
                    fee_payers,
                    assets,
                },
            );
        }
        for n in networks.values() {
            for a in &n.aliases {
                if networks.contains_key(a) {
                    return Err(format!("networks.{}.aliases: {a} is itself a network id", n.caip2));
                }
            }
        }
        Ok(Registry { networks })
    }

    /// The network a CAIP-2 id or a v1 alias names.
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.get(name).or_else(|| self.networks.values().find(|n| n.aliases.contains(name)))
    }

    /// The asset `id` (a registry name or a mint in base58) on `network`:
    /// (asset id, asset).
    pub fn asset<'a>(&'a self, network: &Network, id: &str) -> Option<(&'a str, &'a Asset)> {
        let n = self.networks.get(&network.caip2)?;
        if let Some((k, a)) = n.assets.get_key_value(id) {
            return Some((k.as_str(), a));
        }
        let mint = Pubkey::from_base58(id).ok()?;
        n.assets.iter().find(|(_, a)| a.mint == mint).map(|(k, a)| (k.as_str(), a))
    }
}

/// The Solana part of an intent, as the caller wrote it (docs/x402.md,
/// "The payment intent"). Strings are validated by [`bind`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolanaFields {
    /// The facilitator's fee payer (x402 `extra.feePayer`), base58.
    pub fee_payer: String,
    /// A recent blockhash, base58: fixes the transaction's lifetime.
    pub recent_blockhash: String,
    /// The last block height at which the blockhash is valid (from
    /// `getLatestBlockhash`); recorded, shown, not trusted.
    pub last_valid_block_height: u64,
    /// The memo (x402 `extra.memo`), at most 256 UTF-8 bytes. Absent: the
    /// signer derives one from the key and idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_unit_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_unit_price_micro_lamports: Option<u64>,
}

/// Why an intent cannot be bound to a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError {
    pub code: ReasonCode,
    /// The rule, in words: names fields, never their values.
    pub detail: String,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for BindError {}

fn refuse(code: ReasonCode, detail: &str) -> BindError {
    BindError { code, detail: detail.to_string() }
}

/// What [`bind`] produced: the transaction, its message, and the registry
/// facts shown to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub transfer: ExactTransfer,
    pub message: Vec<u8>,
    /// The registry asset id the intent's asset resolved to.
    pub asset_id: String,
    pub network: String,
}

/// The memo keyward writes when the payee asks for none: 16 bytes of
/// SHA-256(domain ‖ key ‖ 0 ‖ idempotency key), lowercase hex (32
/// characters). Deterministic, so that the same logical payment always
/// yields the same transaction (the chain then refuses a second copy), yet
/// distinct per payment, which is what the x402 memo is for.
pub fn derived_memo(key: &str, idempotency_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(MEMO_DOMAIN);
    h.update(key.as_bytes());
    h.update([0]);
    h.update(idempotency_key.as_bytes());
    crate::hex(&h.finalize()[..16])
}

/// Binds a value-moving intent (`x402_payment` or `transfer`) to the exact
/// Solana transaction the signer will sign with `authority` (the signing
/// key's public key), refusing anything the registry does not allow.
/// `held_keys` are the public keys of every key the signer holds: none of
/// them may pay fees for someone else's transaction.
///
/// On success the intent's `chain_id` and `asset_id` are rewritten to the
/// registry's names (so caps apply to the right asset however the caller
/// spelled it) and its message is the compiled transaction message; if the
/// caller also sent message bytes, they must be exactly those bytes.
pub fn bind(
    intent: &mut CanonicalIntent,
    registry: &Registry,
    authority: &Pubkey,
    held_keys: &[Pubkey],
) -> Result<Bound, BindError> {
    use ReasonCode::*;
    if !matches!(intent.action, Action::X402Payment | Action::Transfer) {
        return Err(refuse(DenyKeyKindMismatch, "only x402_payment and transfer build Solana transactions"));
    }
    let Some(s) = intent.solana.clone() else {
        return Err(refuse(DenyInvalidX402Intent, "solana: required for a payment with a solana key"));
    };
    let network = registry
        .network(&intent.chain_id)
        .ok_or_else(|| refuse(DenyAssetNotRegistered, "chain_id: not a network in the policy's registry"))?;
    let (asset_id, asset) = registry
        .asset(network, &intent.asset_id)
        .ok_or_else(|| refuse(DenyAssetNotRegistered, "asset_id: not an asset registered for this network"))?;
    let key = |field: &'static str, v: &str| {
        Pubkey::from_base58(v).map_err(|_| refuse(DenyInvalidX402Intent, &format!("{field}: not a public key")))
    };
    let payee = key("payee", &intent.payee)?;
    let fee_payer = key("solana.fee_payer", &s.fee_payer)?;
    let blockhash = solana_codec::base58::decode(&s.recent_blockhash)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| refuse(DenyInvalidX402Intent, "solana.recent_blockhash: not 32 bytes of base58"))?;
    if fee_payer == *authority || held_keys.contains(&fee_payer) {
        return Err(refuse(DenyFeePayerNotAllowed, "solana.fee_payer is a key this signer holds"));
    }
    if !network.fee_payers.is_empty() && !network.fee_payers.contains(&fee_payer) {
        return Err(refuse(DenyFeePayerNotAllowed, "solana.fee_payer is not a trusted fee payer of this network"));
    }
    if payee == *authority || held_keys.contains(&payee) {
        return Err(refuse(DenyInvalidX402Intent, "payee: a key this signer holds (a payment to itself)"));
    }
    let limit = s.compute_unit_limit.unwrap_or(DEFAULT_COMPUTE_UNIT_LIMIT.min(network.max_compute_unit_limit));
    let price = s.compute_unit_price_micro_lamports.unwrap_or(DEFAULT_COMPUTE_UNIT_PRICE);
    if limit == 0 || limit > network.max_compute_unit_limit || price > network.max_compute_unit_price {
        return Err(refuse(DenyComputeBudgetExceeded, "the compute budget exceeds the network's caps"));
    }
    let memo = match &s.memo {
        Some(m) if m.is_empty() || m.len() > 256 => {
            return Err(refuse(DenyInvalidX402Intent, "solana.memo: must be 1 to 256 bytes"));
        }
        Some(m) => m.clone(),
        None => derived_memo(&intent.key, &intent.idempotency_key),
    };
    let transfer = ExactTransfer {
        fee_payer,
        authority: *authority,
        payee,
        mint: asset.mint,
        token_program: asset.token_program,
        decimals: asset.decimals,
        amount: intent.amount_atomic,
        memo: memo.into_bytes(),
        compute_unit_limit: limit,
        compute_unit_price_micro_lamports: price,
        recent_blockhash: blockhash,
    };
    let message =
        transfer.compile().map_err(|e| refuse(DenyInvalidX402Intent, &format!("transaction: {}", e.detail)))?;
    // Belt and braces: the bytes about to be signed decode to exactly the
    // decided transfer and nothing else (docs/x402.md, "Checks").
    solana_codec::check_exact(&message, &transfer)
        .map_err(|e| refuse(DenyTransactionMismatch, &format!("{}: {}", e.rule, e.detail)))?;
    if let Some(claimed) = &intent.claimed_message
        && !bool::from(claimed.as_slice().ct_eq(&message))
    {
        return Err(refuse(
            DenyTransactionMismatch,
            "message_hex: the bytes differ from the transaction this intent decides",
        ));
    }
    intent.chain_id = network.caip2.clone();
    intent.asset_id = asset_id.to_string();
    intent.solana = Some(SolanaFields {
        memo: Some(String::from_utf8_lossy(&transfer.memo).into_owned()),
        compute_unit_limit: Some(limit),
        compute_unit_price_micro_lamports: Some(price),
        ..s
    });
    intent.set_message(message.clone());
    Ok(Bound { transfer, message, asset_id: asset_id.to_string(), network: network.caip2.clone() })
}

/// `amount` atomic units as a decimal in the asset's units ("0.25" for
/// 250000 with 6 decimals): what a person is shown next to the atomic value.
pub fn format_units(amount: u64, decimals: u8) -> String {
    let s = amount.to_string();
    let d = usize::from(decimals);
    if d == 0 {
        return s;
    }
    let padded = format!("{s:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_formatted_exactly() {
        assert_eq!(format_units(250_000, 6), "0.25");
        assert_eq!(format_units(1, 6), "0.000001");
        assert_eq!(format_units(12_000_000, 6), "12");
        assert_eq!(format_units(u64::MAX, 19), "1.8446744073709551615");
        assert_eq!(format_units(7, 0), "7");
    }

    #[test]
    fn the_derived_memo_is_32_hex_characters_and_per_payment() {
        let a = derived_memo("k", "job-1");
        assert_eq!(a.len(), 32);
        assert_eq!(a, derived_memo("k", "job-1"));
        assert_ne!(a, derived_memo("k", "job-2"));
        assert_ne!(a, derived_memo("k2", "job-1"));
    }

    const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
    const FEE_PAYER: &str = "EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd";
    const PAYEE: &str = "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4";
    const USDC: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";

    fn policy() -> crate::Policy {
        let text = crate::config::tests::EXAMPLE.to_string()
            + &format!(
                "\n[networks.\"{DEVNET}\"]\naliases = [\"solana-devnet\"]\nmax_compute_unit_limit = 20000\n\
                 max_compute_unit_price = 1000\nfee_payers = [\"{FEE_PAYER}\"]\n\
                 [networks.\"{DEVNET}\".assets.usdc]\nmint = \"{USDC}\"\n\
                 token_program = \"TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA\"\ndecimals = 6\n"
            );
        crate::Policy::from_toml(&text).unwrap()
    }

    fn ours() -> Pubkey {
        Pubkey::new([7; 32])
    }

    fn intent(edit: impl FnOnce(&mut serde_json::Value)) -> CanonicalIntent {
        let mut j = serde_json::json!({
            "actor": "agent", "action": "x402_payment", "key": "hot", "chain_id": "solana-devnet",
            "asset_id": USDC, "amount_atomic": "250000", "max_amount_atomic": "250000", "payee": PAYEE,
            "rationale": "r", "idempotency_key": "job-1", "request_expiry": 2_000_000_000u64,
            "x402": {"scheme_id": "v2-solana-exact", "payment_authority": "https://api.example"},
            "solana": {"fee_payer": FEE_PAYER, "recent_blockhash": "5Tx8F3jgSHx21CbtjwmdaKPLM5tWmreWAnPrbqHomSJF",
                       "last_valid_block_height": 1000}
        });
        edit(&mut j);
        CanonicalIntent::from_json(&j).unwrap()
    }

    #[test]
    fn binding_builds_exactly_the_decided_transfer() {
        let p = policy();
        let mut i = intent(|_| {});
        let b = bind(&mut i, &p.registry, &ours(), &[]).unwrap();
        assert_eq!((i.chain_id.as_str(), i.asset_id.as_str()), (DEVNET, "usdc"), "names are canonical");
        assert_eq!(i.message, b.message);
        let t = solana_codec::parse_exact(&i.message, &Pubkey::from_base58(PAYEE).unwrap()).unwrap();
        assert_eq!((t.amount, t.decimals, t.mint.to_base58()), (250_000, 6, USDC.to_string()));
        assert_eq!((t.fee_payer.to_base58(), t.authority), (FEE_PAYER.to_string(), ours()));
        assert_eq!(t.memo, derived_memo("hot", "job-1").into_bytes());
        assert_eq!((t.compute_unit_limit, t.compute_unit_price_micro_lamports), (20_000, 1));
        // Binding is deterministic (same intent, same bytes, same hash) and
        // a bound intent binds again to the same bytes.
        let mut again = intent(|_| {});
        bind(&mut again, &p.registry, &ours(), &[]).unwrap();
        assert_eq!(again.hash(), i.hash());
        let mut stored = CanonicalIntent::from_json(&i.to_wire(&i.rationale)).unwrap();
        bind(&mut stored, &p.registry, &ours(), &[]).unwrap();
        assert_eq!(stored.message, i.message);
    }

    #[test]
    fn every_refusal_has_its_code() {
        use ReasonCode::*;
        let p = policy();
        let fee_payer = Pubkey::from_base58(FEE_PAYER).unwrap();
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Edit, Vec<Pubkey>, ReasonCode)> = vec![
            (
                Box::new(|j| j["chain_id"] = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into()),
                vec![],
                DenyAssetNotRegistered,
            ),
            (
                Box::new(|j| j["asset_id"] = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v".into()),
                vec![],
                DenyAssetNotRegistered,
            ),
            (Box::new(|_| {}), vec![fee_payer], DenyFeePayerNotAllowed),
            (Box::new(|j| j["solana"]["fee_payer"] = PAYEE.into()), vec![], DenyFeePayerNotAllowed),
            (Box::new(|j| j["solana"]["compute_unit_limit"] = 20_001.into()), vec![], DenyComputeBudgetExceeded),
            (
                Box::new(|j| j["solana"]["compute_unit_price_micro_lamports"] = 1_001.into()),
                vec![],
                DenyComputeBudgetExceeded,
            ),
            (Box::new(|j| j["message_hex"] = "00ff".into()), vec![], DenyTransactionMismatch),
            (Box::new(|j| j["payee"] = "not-a-key".into()), vec![], DenyInvalidX402Intent),
            (Box::new(|j| j["solana"]["recent_blockhash"] = "111".into()), vec![], DenyInvalidX402Intent),
        ];
        for (n, (edit, held, code)) in cases.into_iter().enumerate() {
            let mut i = intent(edit);
            let e = bind(&mut i, &p.registry, &ours(), &held).unwrap_err();
            assert_eq!(e.code, code, "case {n}: {e}");
            assert!(i.message.is_empty() || i.claimed_message.is_some(), "case {n}: nothing was bound");
        }
        // The fee payer may never be the signing key itself.
        let mut i = intent(|_| {});
        assert_eq!(bind(&mut i, &p.registry, &fee_payer, &[]).unwrap_err().code, DenyFeePayerNotAllowed);
        // A message the caller sends must be exactly ours.
        let mut i = intent(|_| {});
        let good = bind(&mut i, &p.registry, &ours(), &[]).unwrap().message;
        let mut j = intent(|j| j["message_hex"] = crate::hex(&good).into());
        assert!(bind(&mut j, &p.registry, &ours(), &[]).is_ok(), "the same bytes are accepted");
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut j = intent(|j| j["message_hex"] = crate::hex(&flipped).into());
        assert_eq!(bind(&mut j, &p.registry, &ours(), &[]).unwrap_err().code, DenyTransactionMismatch);
    }

    #[test]
    fn the_registry_is_validated_strictly() {
        let base = crate::config::tests::EXAMPLE.replace("profile = \"strict\"", "profile = \"compat\"");
        let bad = [
            "[networks.\"solana:mainnet\"]\n",
            "[networks.\"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1\"]\nmax_compute_unit_limit = 0\n",
            "[networks.\"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1\"]\nmax_compute_unit_price = 5000001\n",
            "[networks.\"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1\".assets.dai]\nmint = \"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU\"\ntoken_program = \"TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA\"\ndecimals = 6\n",
            "[networks.\"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1\".assets.usdc]\nmint = \"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU\"\ntoken_program = \"MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr\"\ndecimals = 6\n",
            "[networks.\"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1\"]\nsurprise = 1\n",
        ];
        for b in bad {
            assert!(crate::Policy::from_toml(&format!("{base}\n{b}")).is_err(), "accepted: {b}");
        }
        // No trusted fee payer is legal but unsafe: the strict profile refuses it.
        let open = format!("\n[networks.\"{DEVNET}\"]\n");
        assert!(crate::Policy::from_toml(&(crate::config::tests::EXAMPLE.to_string() + &open)).is_err());
        assert_eq!(crate::Policy::from_toml(&(base + &open)).unwrap().warnings.len(), 1);
    }

    #[test]
    fn caip2_ids_are_recognised() {
        assert!(is_solana_caip2("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"));
        assert!(!is_solana_caip2("solana:mainnet"));
        assert!(!is_solana_caip2("eip155:8453"));
    }
}
