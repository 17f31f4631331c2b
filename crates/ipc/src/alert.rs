//! Alerts (normative: docs/ipc-protocol.md, "Alerts").
//!
//! When the signer refuses a connection or ends a session, it sends one
//! plaintext alert frame naming the stable error code and closes. An alert is
//! not authenticated (a refused peer has no session keys), so it can only
//! ever *end* a conversation: a client treats it as an error and never as a
//! reason to accept anything. It carries a code from a fixed list and nothing
//! else, so it cannot leak state.

use crate::IpcError;
use crate::handshake::{MAGIC, VERSION};

pub const TYPE_ALERT: u8 = 0x0f;

/// Every code an alert may carry. Anything else is `IPC_MALFORMED`.
pub const CODES: &[&str] = &[
    "DENY_PEER_NOT_ALLOWED",
    "DENY_HANDSHAKE_INTEGRITY",
    "DENY_REPLAY",
    "DENY_AEAD_INTEGRITY",
    "DENY_INVALID_TRANSITION",
    "IPC_FRAME_TOO_LARGE",
    "IPC_TRUNCATED",
    "IPC_MALFORMED",
    "IPC_UNSUPPORTED_VERSION",
    "IPC_UNSUPPORTED_SUITE",
    "IPC_RANDOM_FAILED",
    "IPC_TIMEOUT",
    "IPC_BUSY",
    "IPC_SHUTTING_DOWN",
    // The peer's uid holds `max_sessions_per_uid` sessions already.
    "IPC_PEER_QUOTA",
];

/// `KWIP ‖ version ‖ 0x0f ‖ 0x00 ‖ code`. An unknown code is sent as `IPC_MALFORMED`.
pub fn encode(code: &str) -> Vec<u8> {
    let code = CODES.iter().find(|c| **c == code).copied().unwrap_or("IPC_MALFORMED");
    let mut out = Vec::with_capacity(8 + code.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.push(TYPE_ALERT);
    out.push(0);
    out.extend_from_slice(code.as_bytes());
    out
}

/// `Some(error)` when `frame` is an alert: [`IpcError::Alert`] with its code,
/// or `IPC_MALFORMED` for an alert with a code outside [`CODES`].
pub fn decode(frame: &[u8]) -> Option<IpcError> {
    if frame.len() < 8 || frame[..4] != MAGIC || frame[6] != TYPE_ALERT {
        return None;
    }
    let code = CODES.iter().find(|c| c.as_bytes() == &frame[8..]).copied();
    Some(match code {
        Some(code) => IpcError::Alert { code },
        None => IpcError::Malformed { what: "alert code" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_others_are_malformed() {
        for code in CODES {
            assert_eq!(decode(&encode(code)).map(|e| e.code()), Some(*code));
        }
        assert_eq!(decode(&encode("IPC_PEER_QUOTA")).map(|e| e.code()), Some("IPC_PEER_QUOTA"));
        let mut unknown = encode("IPC_BUSY");
        unknown.extend_from_slice(b"_LATER");
        assert_eq!(decode(&unknown).map(|e| e.code()), Some("IPC_MALFORMED"));
        assert_eq!(decode(&encode("NOT_A_CODE")).map(|e| e.code()), Some("IPC_MALFORMED"));
    }
}
