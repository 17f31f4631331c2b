//! The Solana networks keyward can pay on.
//!
//! x402 v1 names networks with short aliases (`solana`, `solana-devnet`);
//! v2 uses CAIP-2 ids, whose Solana reference is the first 32 characters
//! of the base58 genesis hash. The registry pins both spellings and the
//! full genesis hash, so a caller can ask an RPC endpoint for
//! `getGenesisHash` and refuse to pay through a node that serves another
//! cluster ([`genesis_matches`]).
//!
//! The full hashes below are the published cluster genesis hashes
//! (mainnet-beta, devnet, testnet; e.g. agave's `--expected-genesis-hash`
//! values), cross-checked against several independent codebases.
//!
//! A local test validator has its own genesis and is not in the static
//! list; [`caip2_of`] accepts any syntactically valid `solana:<32 base58>`
//! id so such a network can still be named.

/// One Solana cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// CAIP-2 id, `solana:<first 32 base58 characters of the genesis hash>`.
    pub caip2: &'static str,
    /// The x402 v1 network name.
    pub v1_name: &'static str,
    /// The full base58 genesis hash.
    pub genesis_hash: &'static str,
}

/// Solana mainnet-beta.
pub const SOLANA_MAINNET: Network = Network {
    caip2: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    v1_name: "solana",
    genesis_hash: "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",
};

/// Solana devnet.
pub const SOLANA_DEVNET: Network = Network {
    caip2: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    v1_name: "solana-devnet",
    genesis_hash: "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
};

/// Solana testnet.
pub const SOLANA_TESTNET: Network = Network {
    caip2: "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
    v1_name: "solana-testnet",
    genesis_hash: "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY",
};

static ALL: [Network; 3] = [SOLANA_MAINNET, SOLANA_DEVNET, SOLANA_TESTNET];

/// Length of the CAIP-2 reference of a Solana chain.
const REFERENCE_LEN: usize = 32;

/// Looks up a known network by CAIP-2 id or v1 name (exact, case-sensitive).
pub fn by_name(s: &str) -> Option<&'static Network> {
    ALL.iter().find(|n| n.caip2 == s || n.v1_name == s)
}

/// `true` when `genesis_base58` is the genesis hash of the network `caip2`.
///
/// `caip2` may also be a v1 name. For a known network the whole hash must
/// equal the pinned one (stronger than the CAIP-2 rule, which only compares
/// the first 32 characters); for any other `solana:<ref>` the hash must be
/// base58 of plausible length and start with `<ref>`.
pub fn genesis_matches(caip2: &str, genesis_base58: &str) -> bool {
    if !crate::base58_shape(genesis_base58, 32, 44) {
        return false;
    }
    if let Some(n) = by_name(caip2) {
        return n.genesis_hash == genesis_base58;
    }
    match solana_reference(caip2) {
        Some(reference) => genesis_base58.starts_with(reference),
        None => false,
    }
}

/// The CAIP-2 id for a network name.
///
/// A v1 alias maps to its CAIP-2 id; a syntactically valid
/// `solana:<32 base58 characters>` maps to itself (so a local validator
/// with its own genesis works); anything else, including every non-Solana
/// network, is `None`.
pub fn caip2_of(name: &str) -> Option<String> {
    if let Some(n) = by_name(name) {
        return Some(n.caip2.to_owned());
    }
    solana_reference(name).map(|_| name.to_owned())
}

/// The reference part of a syntactically valid Solana CAIP-2 id.
fn solana_reference(caip2: &str) -> Option<&str> {
    let reference = caip2.strip_prefix("solana:")?;
    (reference.len() == REFERENCE_LEN && crate::base58_shape(reference, REFERENCE_LEN, REFERENCE_LEN))
        .then_some(reference)
}
