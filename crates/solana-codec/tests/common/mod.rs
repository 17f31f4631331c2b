//! Helpers shared by the integration tests.
#![allow(dead_code)]

use solana_codec::{ExactTransfer, Pubkey, programs};

pub(crate) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

pub(crate) fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn pk(s: &str) -> Pubkey {
    s.parse().expect("valid base58 pubkey")
}

pub(crate) fn read_json(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("vector file");
    serde_json::from_str(&text).expect("vector JSON")
}

/// SplitMix64: a tiny deterministic RNG for property tests.
#[derive(Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }

    pub(crate) fn key(&mut self) -> Pubkey {
        Pubkey(self.bytes32())
    }

    /// A valid UTF-8 memo of 1..=256 bytes, sometimes with multi-byte characters.
    pub(crate) fn memo(&mut self) -> Vec<u8> {
        let target = 1 + self.below(256) as usize;
        let mut s = String::new();
        loop {
            let c = match self.below(4) {
                0 => 'é',
                1 => '€',
                _ => char::from(b'!' + self.below(94) as u8),
            };
            if s.len() + c.len_utf8() > target {
                break;
            }
            s.push(c);
        }
        if s.is_empty() {
            s.push('x');
        }
        s.into_bytes()
    }

    /// A random transfer that passes `validate`.
    pub(crate) fn transfer(&mut self) -> ExactTransfer {
        loop {
            let t = ExactTransfer {
                fee_payer: self.key(),
                authority: self.key(),
                payee: self.key(),
                mint: self.key(),
                token_program: if self.below(2) == 0 { programs::TOKEN } else { programs::TOKEN_2022 },
                decimals: self.below(256) as u8,
                amount: 1 + self.below(u64::MAX),
                memo: self.memo(),
                compute_unit_limit: self.next_u64() as u32,
                compute_unit_price_micro_lamports: self.next_u64() >> self.below(64),
                recent_blockhash: self.bytes32(),
            };
            if t.validate().is_ok() {
                return t;
            }
        }
    }
}

/// A fixed valid transfer (USDC, defaults of the reference client).
pub(crate) fn sample() -> ExactTransfer {
    let mut rng = Rng(7);
    ExactTransfer {
        fee_payer: rng.key(),
        authority: rng.key(),
        payee: rng.key(),
        mint: pk("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
        token_program: programs::TOKEN,
        decimals: 6,
        amount: 10_000,
        memo: b"0123456789abcdef0123456789abcdef".to_vec(),
        compute_unit_limit: 20_000,
        compute_unit_price_micro_lamports: 1,
        recent_blockhash: rng.bytes32(),
    }
}
