//! The intent API carried inside records (normative: docs/ipc-protocol.md,
//! "Application messages").
//!
//! A request record (`0x10`) holds one JSON [`Request`]; the signer answers
//! each with exactly one response record (`0x11`, a [`Response`]) or error
//! record (`0x12`, an [`ApiError`]), in order. Unknown fields are refused, so
//! a typo cannot silently change what a caller asked for.
//!
//! Which peer may send what is decided here, from the role the signer mapped
//! the peer's kernel-reported UID/GID to ([`Role::permits`]), so that the
//! rule reads the same in the signer and in the spec.

use serde::{Deserialize, Serialize};

/// What a peer may do, from the signer's configuration (`[roles]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits and previews intents and reads their status.
    Agent,
    /// Approves or denies pending requests and reads their status.
    Approver,
    /// The operator: everything above.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether a peer in this role may send `request`. An agent can never
    /// approve or deny; an approver cannot submit.
    pub fn permits(self, request: &Request) -> bool {
        match request {
            Request::Ping | Request::Status { .. } => true,
            Request::Preview { .. } | Request::Submit { .. } => matches!(self, Role::Agent | Role::Admin),
            Request::Approve { .. } | Request::Deny { .. } => matches!(self, Role::Approver | Role::Admin),
        }
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Who am I to the signer (uid, role, session).
    Ping,
    /// What would the signer decide for this intent? Nothing is recorded.
    Preview {
        intent: serde_json::Value,
    },
    /// Decide this intent and, if allowed, act on it.
    Submit {
        intent: serde_json::Value,
    },
    Approve {
        request_id: String,
    },
    Deny {
        request_id: String,
        reason: Option<String>,
    },
    Status {
        request_id: String,
    },
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Pong {
        uid: u32,
        role: Role,
        /// The session id, hex.
        session: String,
    },
    /// A decision with exactly one reason code and the layer that decided.
    Decision {
        /// Absent for a preview.
        request_id: Option<String>,
        decision: String,
        reason_code: String,
        layer: String,
        detail: String,
    },
    Status {
        request_id: String,
        state: String,
        reason_code: String,
    },
}

/// An application-level refusal; the session stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// Stable code, e.g. `DENY_ROLE_NOT_PERMITTED`, `API_BAD_REQUEST`, `API_REQUEST_NOT_FOUND`.
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Parses one request body. Anything but a JSON object with a known `op`
/// and exactly its fields is `API_BAD_REQUEST`.
pub fn parse_request(body: &[u8]) -> Result<Request, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError {
        code: "API_BAD_REQUEST".into(),
        message: "not a valid request (JSON with a known \"op\" and no unknown fields)".into(),
    })
}
