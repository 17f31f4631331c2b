//! The Solana network registry.

use x402::caip2_of;
use x402::networks::{self, SOLANA_DEVNET, SOLANA_MAINNET, SOLANA_TESTNET, by_name, genesis_matches};

/// Minimal base58 decoder, independent of the crate, to check the pinned hashes.
fn base58_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut bytes: Vec<u8> = Vec::new(); // little-endian
    for c in s.bytes() {
        let mut carry = ALPHABET.iter().position(|&a| a == c).expect("base58") as u32;
        for b in &mut bytes {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    bytes.extend(s.bytes().take_while(|&c| c == b'1').map(|_| 0));
    bytes.reverse();
    bytes
}

#[test]
fn pinned_networks_are_self_consistent() {
    for n in [SOLANA_MAINNET, SOLANA_DEVNET, SOLANA_TESTNET] {
        assert_eq!(base58_decode(n.genesis_hash).len(), 32, "{}", n.v1_name);
        assert_eq!(n.caip2, format!("solana:{}", &n.genesis_hash[..32]));
        assert_eq!(by_name(n.caip2), Some(&n));
        assert_eq!(by_name(n.v1_name), Some(&n));
        assert_eq!(caip2_of(n.v1_name).as_deref(), Some(n.caip2));
        assert_eq!(caip2_of(n.caip2).as_deref(), Some(n.caip2));
        assert!(genesis_matches(n.caip2, n.genesis_hash));
        assert!(genesis_matches(n.v1_name, n.genesis_hash));
    }
    assert_eq!(SOLANA_MAINNET.caip2, "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
    assert_eq!(SOLANA_DEVNET.caip2, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
    assert_eq!(SOLANA_TESTNET.caip2, "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z");
    assert_eq!(SOLANA_MAINNET.v1_name, "solana");
}

#[test]
fn lookups_are_exact() {
    for s in ["Solana", "solana-mainnet", "solana:devnet", "SOLANA:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "", "eip155:8453"]
    {
        assert_eq!(networks::by_name(s), None, "{s}");
    }
}

#[test]
fn caip2_of_accepts_local_validators_only_when_well_formed() {
    let local = "solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K";
    assert_eq!(caip2_of(local).as_deref(), Some(local));
    for bad in [
        "solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44",   // 31
        "solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44KK", // 33
        "solana:0E9rvCKLFQia2Y35HXjjpWzj8weVo44K",  // '0' is not base58
        "solana:devnet",
        "eip155:8453",
        "base-sepolia",
        "solana",
    ] {
        let expected = if bad == "solana" { Some(SOLANA_MAINNET.caip2.to_owned()) } else { None };
        assert_eq!(caip2_of(bad), expected, "{bad}");
    }
}

#[test]
fn genesis_matching() {
    // Known networks need the whole pinned hash, not just the prefix.
    let forged = format!("{}{}", &SOLANA_MAINNET.genesis_hash[..32], "111111111111");
    assert!(!genesis_matches(SOLANA_MAINNET.caip2, &forged));
    assert!(!genesis_matches(SOLANA_MAINNET.caip2, SOLANA_DEVNET.genesis_hash));
    assert!(!genesis_matches(SOLANA_DEVNET.caip2, SOLANA_MAINNET.genesis_hash));
    // Unknown (local) networks compare the CAIP-2 reference with the prefix.
    let genesis = "8E9rvCKLFQia2Y35HXjjpWzj8weVo44KmNdbhKM6Ea9c";
    assert!(genesis_matches("solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K", genesis));
    assert!(!genesis_matches("solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44L", genesis));
    assert!(!genesis_matches("solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K", "8E9rvCKLFQia2Y35HXjjpWzj8weVo44K\u{200b}"));
    assert!(!genesis_matches("eip155:8453", genesis));
    assert!(!genesis_matches("solana:8E9rvCKLFQia2Y35HXjjpWzj8weVo44K", ""));
}
