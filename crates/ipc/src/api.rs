//! The intent API carried inside records (normative: docs/ipc-protocol.md,
//! "Application messages").
//!
//! A request record (`0x10`) holds one JSON [`Request`]; the signer answers
//! each with exactly one response record (`0x11`, a [`Response`]) or error
//! record (`0x12`, an [`ApiError`]), in order. Unknown fields are refused in
//! every request ([`request_from_value`]), so a typo cannot silently change
//! what a caller asked for.
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
        use Request::*;
        match request {
            Ping | Status { .. } | DaemonStatus => true,
            Preview { .. } | Submit { .. } | Settle { .. } => matches!(self, Role::Agent | Role::Admin),
            Approvals | Show { .. } | Approve { .. } | Deny { .. } => matches!(self, Role::Approver | Role::Admin),
            KeyCreate { .. } | KeyList | SignProof { .. } | SignBundle { .. } => self == Role::Admin,
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
    /// Decide this intent and, if allowed, sign it.
    Submit {
        intent: serde_json::Value,
    },
    /// Requests waiting for a person.
    Approvals,
    /// One request, as an approver sees it.
    Show {
        request_id: String,
    },
    /// Approve the request whose intent hashes to `intent_hash` (the hash
    /// the approver was shown: an approval never covers another intent).
    Approve {
        request_id: String,
        intent_hash: String,
    },
    Deny {
        request_id: String,
        reason: Option<String>,
    },
    /// Where a request is in its lifecycle.
    Status {
        request_id: String,
    },
    /// The caller reports what became of a signed request. A `receipt`
    /// (base58 transaction signature from an x402 settlement response) is
    /// verified by the signer as the fee payer's signature over the signed
    /// message before it is recorded (`DENY_RECEIPT_INVALID` otherwise).
    /// A report never releases reserved spend.
    Settle {
        request_id: String,
        settled: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
    /// Create a signing key in the vault: `solana`, `raw-ed25519` or
    /// `proof-ed25519` (docs/x402.md, "Key kinds").
    KeyCreate {
        name: String,
        kind: String,
    },
    KeyList,
    /// Sign a proof (the JSON text of `PROOF.json`) with proof key `key`:
    /// the signer canonicalizes it itself and refuses a proof that already
    /// carries a `signature` (docs/bundle-format.md, "Proof signatures").
    SignProof {
        key: String,
        proof: String,
    },
    /// Sign the SPECTRUM-04 payload `{bundle_root, decision: ACCEPT,
    /// validator_id}` for `bundle_root` with proof key `key`; the signer
    /// builds the payload and the domain-separated message itself.
    SignBundle {
        key: String,
        bundle_root: String,
    },
    /// The daemon's counters, audit head and key-window figures.
    DaemonStatus,
}

/// A request as an approver is shown it. Public values only; the rationale
/// has been through the redaction filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingView {
    pub request_id: String,
    pub intent_hash: String,
    pub state: String,
    pub actor: String,
    pub action: String,
    pub key: String,
    pub payee: String,
    pub amount_atomic: String,
    pub asset_id: String,
    pub chain_id: String,
    pub scheme_id: Option<String>,
    pub payment_authority: Option<String>,
    /// The rationale (redacted) and why a person is asked.
    pub rationale: String,
    pub reason_code: String,
    pub reason: String,
    /// Unix seconds after which the request expires.
    pub expires_at: u64,
    /// The most the caller said it would pay (atomic units).
    #[serde(default)]
    pub max_amount_atomic: String,
    /// The amount in the asset's units (from the policy's registry).
    #[serde(default)]
    pub amount_units: Option<String>,
    /// The asset's mint, from the registry (base58).
    #[serde(default)]
    pub mint: Option<String>,
    /// The facilitator that pays the fee and lands the transaction.
    #[serde(default)]
    pub fee_payer: Option<String>,
    /// The x402 version of the challenge.
    #[serde(default)]
    pub x402_version: Option<u8>,
    /// The resource URL and its origin: the client's claim, display-safe.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
    /// SHA-256 (hex) and length of the exact bytes that will be signed.
    #[serde(default)]
    pub message_sha256: String,
    #[serde(default)]
    pub message_len: u64,
}

/// One key, as `key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    pub name: String,
    /// `solana`, `raw-ed25519`, `proof-ed25519` or `legacy`.
    pub kind: String,
    /// Hex.
    pub public_key: String,
    /// What the kind may sign, in words.
    pub signs: String,
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
    /// A decision (or a request's current state) with exactly one reason
    /// code and the layer that decided.
    Decision {
        /// Absent for a preview.
        request_id: Option<String>,
        intent_hash: Option<String>,
        /// `auto_approve`, `approve_user_path`, `prompt`, `deny`, `expire`.
        decision: String,
        /// The lifecycle state (`Submitted`, `AwaitUserApproval`, ...).
        state: String,
        reason_code: String,
        layer: String,
        policy_id: String,
        detail: String,
        /// Hex Ed25519 signature over the intent's message, once signed.
        signature: Option<String>,
        /// Hex public key that verifies `signature`.
        public_key: Option<String>,
        /// For a signed Solana payment: the wire transaction, base64, with
        /// the fee payer's signature slot left as zeros.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transaction: Option<String>,
    },
    Pending {
        requests: Vec<PendingView>,
    },
    Key {
        name: String,
        key_kind: String,
        public_key: String,
    },
    Keys {
        names: Vec<String>,
        /// Proof keys (kind `proof-ed25519`).
        #[serde(default)]
        proof_keys: Vec<String>,
        /// Every key with its kind and public key.
        #[serde(default)]
        keys: Vec<KeyInfo>,
    },
    /// A signature from a proof key, and the public key that verifies it.
    Signature {
        signature: String,
        public_key: String,
    },
    Daemon {
        status: serde_json::Value,
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

fn bad_request() -> ApiError {
    ApiError {
        code: "API_BAD_REQUEST".into(),
        message: "not a valid request (JSON with a known \"op\" and no unknown fields)".into(),
    }
}

/// Parses one request body. Anything but a JSON object with a known `op`
/// and exactly its fields is `API_BAD_REQUEST`. (The signer parses the body
/// with `policy::strict_json` first, which also refuses duplicate keys, and
/// then calls [`request_from_value`].)
pub fn parse_request(body: &[u8]) -> Result<Request, ApiError> {
    request_from_value(serde_json::from_slice(body).map_err(|_| bad_request())?)
}

/// A request from its JSON value: a known `op` and exactly its fields.
///
/// serde's `deny_unknown_fields` covers the requests with fields; an
/// internally tagged variant without fields (`ping`, `approvals`,
/// `key_list`, `daemon_status`) ignores extra keys, so for those the body
/// must be `{"op": …}` alone.
pub fn request_from_value(value: serde_json::Value) -> Result<Request, ApiError> {
    let keys = value.as_object().map_or(0, serde_json::Map::len);
    let request: Request = serde_json::from_value(value).map_err(|_| bad_request())?;
    let fieldless =
        serde_json::to_value(&request).ok().and_then(|v| v.as_object().map(serde_json::Map::len)) == Some(1);
    if fieldless && keys != 1 {
        return Err(bad_request());
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// One of every request; the match below fails to compile when a
    /// variant is added and not listed here.
    fn every_request() -> Vec<Request> {
        let all = vec![
            Request::Ping,
            Request::Preview { intent: json!({"a": 1}) },
            Request::Submit { intent: json!({"a": 1}) },
            Request::Approvals,
            Request::Show { request_id: "r".into() },
            Request::Approve { request_id: "r".into(), intent_hash: "h".into() },
            Request::Deny { request_id: "r".into(), reason: Some("no".into()) },
            Request::Status { request_id: "r".into() },
            Request::Settle { request_id: "r".into(), settled: true, receipt: Some("x".into()) },
            Request::KeyCreate { name: "n".into(), kind: "solana".into() },
            Request::KeyList,
            Request::SignProof { key: "k".into(), proof: "{}".into() },
            Request::SignBundle { key: "k".into(), bundle_root: "00".into() },
            Request::DaemonStatus,
        ];
        for r in &all {
            match r {
                Request::Ping
                | Request::Preview { .. }
                | Request::Submit { .. }
                | Request::Approvals
                | Request::Show { .. }
                | Request::Approve { .. }
                | Request::Deny { .. }
                | Request::Status { .. }
                | Request::Settle { .. }
                | Request::KeyCreate { .. }
                | Request::KeyList
                | Request::SignProof { .. }
                | Request::SignBundle { .. }
                | Request::DaemonStatus => {}
            }
        }
        all
    }

    #[test]
    fn every_request_round_trips_and_refuses_an_unknown_field() {
        for r in every_request() {
            let body = serde_json::to_vec(&r).unwrap();
            assert_eq!(parse_request(&body).unwrap(), r);
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            v["surprise"] = json!(1);
            let e = request_from_value(v.clone()).unwrap_err();
            assert_eq!(e.code, "API_BAD_REQUEST", "{v}");
            assert_eq!(parse_request(&serde_json::to_vec(&v).unwrap()).unwrap_err().code, "API_BAD_REQUEST");
        }
    }

    #[test]
    fn fieldless_requests_are_exactly_their_op() {
        for op in ["ping", "approvals", "key_list", "daemon_status"] {
            assert!(request_from_value(json!({"op": op})).is_ok(), "{op}");
            for extra in [json!({"op": op, "x": null}), json!({"op": op, "intent": {}}), json!({"op": op, "op2": op})] {
                assert_eq!(request_from_value(extra.clone()).unwrap_err().code, "API_BAD_REQUEST", "{extra}");
            }
        }
        // Optional fields may still be absent or null.
        assert!(request_from_value(json!({"op": "deny", "request_id": "r"})).is_ok());
        assert!(
            request_from_value(json!({"op": "settle", "request_id": "r", "settled": false, "receipt": null})).is_ok()
        );
        for bad in [json!([]), json!("ping"), json!({"op": "fly"}), json!({}), json!({"op": "status"})] {
            assert_eq!(request_from_value(bad.clone()).unwrap_err().code, "API_BAD_REQUEST", "{bad}");
        }
    }
}
