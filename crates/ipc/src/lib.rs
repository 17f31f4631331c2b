//! keyward's local wire protocol, version 1 (normative: docs/ipc-protocol.md):
//! the handshake, AEAD records, replay defence, re-keying and the session
//! lifecycle shared by the signer and its clients.
//!
//! It is sans-IO apart from [`frame`] and [`client`]: callers move bytes, this crate decides
//! what they mean. It holds no key storage (session keys live in `zeroize`d
//! buffers for the life of a session), so linking it gives a client no path
//! to signing-key bytes.
//!
//! * [`frame`]: 4-byte length prefix, bounded before allocation.
//! * [`handshake`]: X25519 ephemeral-ephemeral plus ephemeral-static against
//!   the pinned signer key, transcript-bound HKDF-SHA256 key schedule.
//! * [`record`]: XChaCha20-Poly1305 records with the header as AAD, strict
//!   counters, derived nonces, per-direction re-keying.
//! * [`session`]: the lifecycle state machine.
//! * [`alert`]: the plaintext refusal a signer sends before it hangs up.
//! * [`api`]: the intent API (JSON inside records) and which role may send what.
//! * [`client`]: the caller's blocking connection over the Unix socket.
#![forbid(unsafe_code)]

pub mod alert;
pub mod api;
pub mod client;
mod error;
pub mod frame;
pub mod handshake;
pub mod record;
pub mod session;

pub use error::IpcError;
pub use handshake::{ClientHandshake, ServerHandshake, SignerIdentity, StaticKey, SuitePolicy};
pub use record::{Channel, Clock, Direction, RekeyPolicy, Suite, SystemClock, msg};
