//! Program ids keyward's transaction touches, as byte constants.
//!
//! Stored as bytes (not parsed from base58 at run time) so they are usable
//! in `const` context and cannot fail. The integration tests check each
//! against its well-known base58 name.

use crate::pubkey::Pubkey;

const fn hex32(s: &str) -> Pubkey {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex digit in program id constant"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 64, "program id constant must be 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    Pubkey(out)
}

/// SPL Token, `TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA`.
pub const TOKEN: Pubkey = hex32("06ddf6e1d765a193d9cbe146ceeb79ac1cb485ed5f5b37913a8cf5857eff00a9");
/// SPL Token-2022, `TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb`.
pub const TOKEN_2022: Pubkey = hex32("06ddf6e1ee758fde18425dbce46ccddab61afc4d83b90d27febdf928d8a18bfc");
/// Associated Token Account program, `ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL`.
pub const ASSOCIATED_TOKEN: Pubkey = hex32("8c97258f4e2489f1bb3d1029148e0d830b5a1399daff1084048e7bd8dbe9f859");
/// Compute Budget program, `ComputeBudget111111111111111111111111111111`.
pub const COMPUTE_BUDGET: Pubkey = hex32("0306466fe5211732ffecadba72c39be7bc8ce5bbc5f7126b2c439b3a40000000");
/// SPL Memo v2, `MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr`.
pub const MEMO: Pubkey = hex32("054a535a992921064d24e87160da387c7c35b5ddbc92bb81e41fa8404105448d");
/// System program, `11111111111111111111111111111111` (all zero bytes).
pub const SYSTEM: Pubkey = Pubkey([0u8; 32]);

/// Every program id above. Used to refuse a wallet or mint that is a program.
pub(crate) const ALL: [Pubkey; 6] = [TOKEN, TOKEN_2022, ASSOCIATED_TOKEN, COMPUTE_BUDGET, MEMO, SYSTEM];
