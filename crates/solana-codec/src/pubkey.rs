//! The 32-byte account address.

use core::fmt;
use core::str::FromStr;

use crate::base58;
use crate::error::{CodecError, codes};

/// A Solana address: 32 raw bytes, shown as base58.
///
/// This type carries public data only. It is either an Ed25519 public key
/// or an off-curve program-derived address; this crate never needs to
/// know which, except in [`crate::is_on_curve`].
///
/// `Ord` compares raw bytes, which is the order Solana's message compiler
/// uses within each account group.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pubkey(pub [u8; 32]);

impl Pubkey {
    /// Wraps 32 raw bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Base58 text form.
    pub fn to_base58(&self) -> String {
        base58::encode(&self.0)
    }

    /// Parses base58 text that decodes to exactly 32 bytes.
    ///
    /// Every failure is `SOL_PUBKEY_INVALID`.
    pub fn from_base58(s: &str) -> Result<Self, CodecError> {
        // 32 bytes are at most 44 base58 characters.
        if s.len() > 44 {
            return Err(CodecError::new(codes::PUBKEY_INVALID, "address longer than 44 characters"));
        }
        let bytes =
            base58::decode(s).map_err(|_| CodecError::new(codes::PUBKEY_INVALID, "address is not valid base58"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CodecError::new(codes::PUBKEY_INVALID, "address does not decode to 32 bytes"))?;
        Ok(Self(arr))
    }
}

impl FromStr for Pubkey {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base58(s)
    }
}

impl fmt::Display for Pubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for Pubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl From<[u8; 32]> for Pubkey {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Pubkey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
