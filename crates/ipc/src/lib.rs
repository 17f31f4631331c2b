//! keyward's local wire protocol: the handshake, AEAD record framing and replay
//! defence shared by the signer and its clients. It holds no key storage, so
//! linking it gives a client no path to key bytes.
//!
//! The protocol (normative in docs/ipc-protocol.md) arrives with the signer issue.
#![forbid(unsafe_code)]
