#![forbid(unsafe_code)]
//! Key-free Solana codec for keyward.
//!
//! This crate turns public data into Solana bytes and back: base58
//! addresses, program-derived and associated token addresses, strict v0
//! messages, wire transactions, and the one transaction shape keyward signs
//! for an x402 "exact" payment ([`ExactTransfer`]).
//!
//! # Why it exists, and why it holds no keys
//!
//! Both the signer daemon (`keywardd`) and the client (`keyward`) link this
//! crate. The client uses it to build and explain a payment; the daemon
//! uses it to check, byte for byte, that the message it is asked to sign is
//! exactly that payment ([`check_exact`]) before it signs. Because the
//! client links it, the crate must never depend on anything that defines a
//! signing key (no `ed25519-dalek`, no `solana-keypair`, none of keyward's
//! `crypto`/`secmem` crates): it only ever sees public keys, and signatures
//! are opaque 64-byte arrays that [`wire_transaction`] frames.
//!
//! It does not use the Solana SDK crates either. The SDK is large, changes
//! often, and accepts more than keyward wants to sign (legacy messages,
//! lookup tables, non-minimal lengths). The few hundred lines here accept
//! exactly one canonical form and are checked against an independent
//! implementation (solders) in the test vectors.
//!
//! # Strictness
//!
//! * [`base58::decode`] is canonical and bounded to 128 characters.
//! * [`shortvec::decode`] rejects non-minimal and overflowing encodings.
//! * [`MessageV0::decode`] accepts only prefix `0x80`, in-range indexes,
//!   no trailing bytes, at most 1232 bytes; so `decode(b).encode() == b`.
//!
//! # Stable error codes
//!
//! Errors carry a stable `code` and a fixed `detail`; neither ever contains
//! bytes supplied by a caller or a peer.
//!
//! | code | when |
//! |---|---|
//! | `SOL_BASE58_INVALID` | character outside the alphabet, input over 128 characters |
//! | `SOL_PUBKEY_INVALID` | an address is not base58 of exactly 32 bytes |
//! | `SOL_SHORTVEC_INVALID` | truncated, non-minimal or overflowing compact-u16 |
//! | `SOL_MESSAGE_MALFORMED` | truncated, trailing bytes, bad header, index out of range, signature count mismatch |
//! | `SOL_MESSAGE_TOO_LARGE` | message or transaction over 1232 bytes (or over 1103 for an [`ExactTransfer`]) |
//! | `SOL_MESSAGE_NOT_V0` | legacy message or a version other than 0 |
//! | `SOL_TRANSFER_INVALID` | [`ExactTransfer::validate`] failed; `detail` says why |
//! | `SOL_TRANSACTION_MISMATCH` | [`CheckError`] from [`check_exact`] / [`parse_exact`]; `rule` is `M1`..`M8` or `EXACT_BYTES` |
//!
//! A [`CheckError`] whose *expected* transfer is itself invalid has code
//! `SOL_TRANSFER_INVALID` and rule `EXPECTED`.

pub mod base58;
mod error;
mod exact;
mod message;
mod pda;
pub mod programs;
mod pubkey;
pub mod shortvec;
mod transaction;

pub use error::{CheckError, CodecError};
pub use exact::{ExactTransfer, MAX_EXACT_MESSAGE_LEN, MAX_MEMO_LEN, check_exact, parse_exact};
pub use message::{AddressTableLookup, CompiledInstruction, MessageV0, PACKET_DATA_SIZE};
pub use pda::{ATA_MEMO_ENTRIES, associated_token_address, find_program_address, is_on_curve};
pub use pubkey::Pubkey;
pub use transaction::{decode_transaction, wire_transaction};
