//! IPC errors. Each has a stable code; the security-relevant ones use the
//! seed's normative deny codes. None carries key material.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpcError {
    /// A handshake check failed: wrong pinned key, tampered transcript,
    /// bad confirmation, clock skew, low-order key share.
    HandshakeIntegrity { what: &'static str },
    /// A record's counter is not the next expected one (duplicate, stale or
    /// reordered).
    Replay,
    /// A record failed authentication; the session is over.
    AeadIntegrity,
    /// The operation is not allowed in the session's current state.
    InvalidTransition,
    /// A frame longer than the limit.
    FrameTooLarge { max: usize },
    /// A frame or message ended early.
    Truncated,
    /// Not a keyward IPC message, or a field with an impossible value.
    Malformed { what: &'static str },
    /// Another protocol version.
    UnsupportedVersion { version: u16 },
    /// A cipher suite this endpoint does not accept.
    UnsupportedSuite { id: u8 },
    /// The OS random source failed.
    Random,
    /// The transport failed.
    Io { kind: std::io::ErrorKind },
    /// The peer ended the conversation with an alert carrying this code.
    Alert { code: &'static str },
    /// No complete message within the allowed time.
    Timeout,
}

impl IpcError {
    pub fn code(&self) -> &'static str {
        match self {
            IpcError::HandshakeIntegrity { .. } => "DENY_HANDSHAKE_INTEGRITY",
            IpcError::Replay => "DENY_REPLAY",
            IpcError::AeadIntegrity => "DENY_AEAD_INTEGRITY",
            IpcError::InvalidTransition => "DENY_INVALID_TRANSITION",
            IpcError::FrameTooLarge { .. } => "IPC_FRAME_TOO_LARGE",
            IpcError::Truncated => "IPC_TRUNCATED",
            IpcError::Malformed { .. } => "IPC_MALFORMED",
            IpcError::UnsupportedVersion { .. } => "IPC_UNSUPPORTED_VERSION",
            IpcError::UnsupportedSuite { .. } => "IPC_UNSUPPORTED_SUITE",
            IpcError::Random => "IPC_RANDOM_FAILED",
            IpcError::Io { .. } => "IPC_IO",
            IpcError::Alert { code } => code,
            IpcError::Timeout => "IPC_TIMEOUT",
        }
    }
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            IpcError::HandshakeIntegrity { what } => format!("handshake check failed: {what}"),
            IpcError::Replay => "record counter is not the next expected one (replayed or reordered)".into(),
            IpcError::AeadIntegrity => "record failed authentication; session closed".into(),
            IpcError::InvalidTransition => "not allowed in the session's current state".into(),
            IpcError::FrameTooLarge { max } => format!("frame larger than {max} bytes"),
            IpcError::Truncated => "frame or message truncated".into(),
            IpcError::Malformed { what } => format!("malformed {what}"),
            IpcError::UnsupportedVersion { version } => format!("protocol version {version} not supported"),
            IpcError::UnsupportedSuite { id } => format!("cipher suite {id} not accepted"),
            IpcError::Random => "the OS random source failed".into(),
            IpcError::Io { kind } => format!("transport error ({kind})"),
            IpcError::Alert { .. } => "refused by the signer".into(),
            IpcError::Timeout => "no complete message within the allowed time".into(),
        };
        write!(f, "{}: {what}", self.code())
    }
}

impl std::error::Error for IpcError {}

impl From<std::io::Error> for IpcError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            IpcError::Truncated
        } else if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            IpcError::Timeout
        } else {
            IpcError::Io { kind: e.kind() }
        }
    }
}
