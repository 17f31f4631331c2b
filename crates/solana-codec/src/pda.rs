//! Program-derived addresses and associated token accounts.
//!
//! keyward computes both ATAs itself instead of trusting a builder or an
//! RPC answer: the destination ATA is where the money goes, so it must be
//! derived from the payee's wallet by the same rule the chain uses.

use curve25519_dalek::edwards::CompressedEdwardsY;
use sha2::{Digest, Sha256};

use crate::programs;
use crate::pubkey::Pubkey;

/// Solana's seed limits: at most 16 seeds in total (the bump is one) and
/// at most 32 bytes each.
const MAX_SEEDS: usize = 16;
const MAX_SEED_LEN: usize = 32;
const PDA_MARKER: &[u8] = b"ProgramDerivedAddress";

/// Whether 32 bytes decode to a point on the Ed25519 curve.
///
/// This is exactly the predicate of solana-address (`bytes_are_curve_point`):
/// `CompressedEdwardsY(b).decompress().is_some()`, with no further
/// canonicality or torsion checks. A different predicate would derive a
/// different ATA for rare inputs.
pub fn is_on_curve(b: &[u8; 32]) -> bool {
    CompressedEdwardsY(*b).decompress().is_some()
}

/// Finds the program-derived address for `seeds` under `program`.
///
/// Tries bump seeds 255 down to 0 and returns the first
/// `SHA-256(seeds ‖ [bump] ‖ program ‖ "ProgramDerivedAddress")` that is
/// off the curve, with its bump. Returns `None` if the seeds break Solana's
/// limits (more than 15 seeds, or a seed longer than 32 bytes) or, with
/// negligible probability, if no bump works.
pub fn find_program_address(seeds: &[&[u8]], program: &Pubkey) -> Option<(Pubkey, u8)> {
    if seeds.len() >= MAX_SEEDS || seeds.iter().any(|s| s.len() > MAX_SEED_LEN) {
        return None;
    }
    (0..=u8::MAX).rev().find_map(|bump| {
        let mut h = Sha256::new();
        for seed in seeds {
            h.update(seed);
        }
        h.update([bump]);
        h.update(program.0);
        h.update(PDA_MARKER);
        let out: [u8; 32] = h.finalize().into();
        (!is_on_curve(&out)).then_some((Pubkey(out), bump))
    })
}

/// The associated token account of `owner` for `mint` under `token_program`.
///
/// Seeds are `[owner, token_program, mint]` under the Associated Token
/// Account program, as in spl-associated-token-account.
///
/// Derivations are memoised (a pure function of public inputs, so a cached
/// answer is the answer): each try costs a point decompression, and an
/// agent pays the same few merchants with the same key over and over. The
/// memo is bounded ([`ATA_MEMO_ENTRIES`]; it is emptied when full).
pub fn associated_token_address(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    let mut k = [0u8; 96];
    k[..32].copy_from_slice(&owner.0);
    k[32..64].copy_from_slice(&mint.0);
    k[64..].copy_from_slice(&token_program.0);
    if let Some(hit) = memo().lock().unwrap_or_else(|p| p.into_inner()).get(&k) {
        return *hit;
    }
    let ata = derive_ata(owner, mint, token_program);
    let mut m = memo().lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= ATA_MEMO_ENTRIES {
        m.clear();
    }
    m.insert(k, ata);
    ata
}

/// How many derivations [`associated_token_address`] remembers.
pub const ATA_MEMO_ENTRIES: usize = 4096;

type Memo = std::sync::Mutex<std::collections::HashMap<[u8; 96], Pubkey>>;

fn memo() -> &'static Memo {
    static MEMO: std::sync::OnceLock<Memo> = std::sync::OnceLock::new();
    MEMO.get_or_init(Memo::default)
}

fn derive_ata(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    match find_program_address(&[&owner.0, &token_program.0, &mint.0], &programs::ASSOCIATED_TOKEN) {
        Some((ata, _bump)) => ata,
        // Three 32-byte seeds are within the limits, so `None` would need all
        // 256 hashes to land on the curve (probability about 2^-256). Solana's
        // own `find_program_address` panics in the same case.
        None => panic!("no off-curve associated token address (probability 2^-256)"),
    }
}
