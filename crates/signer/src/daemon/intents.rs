//! The intent API as the signer answers it today.
//!
//! The policy engine arrives with the policy issue. Until then the signer
//! fails closed: every preview and submission is *denied* with
//! `DENY_USER_POLICY` at the `global_defaults` layer, and nothing is signed.
//! What is already real here is the part this issue owns: the role check
//! (an agent can never approve, an approver can never submit; refused with
//! `DENY_ROLE_NOT_PERMITTED` and an audit event), strict request parsing
//! (`API_BAD_REQUEST`), and a bounded book of submitted requests so that
//! `status`, `approve` and `deny` have something to refer to.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use ipc::api::{ApiError, Request, Response};
use ipc::handshake::hex;
use ipc::msg;
use serde_json::json;

use super::server::{Peer, Shared};

/// How many request outcomes `status` remembers.
const BOOK_CAPACITY: usize = 4096;

const NO_POLICY: &str = "no policy engine is loaded in this build; keywardd denies every intent";

#[derive(Debug, Clone)]
struct Entry {
    state: &'static str,
    reason_code: &'static str,
}

#[derive(Debug, Default)]
pub(crate) struct IntentDesk {
    book: Mutex<(HashMap<String, Entry>, VecDeque<String>)>,
}

impl IntentDesk {
    fn record(&self, id: &str, entry: Entry) {
        let mut g = self.book.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *g;
        if map.insert(id.to_string(), entry).is_none() {
            order.push_back(id.to_string());
            if order.len() > BOOK_CAPACITY
                && let Some(old) = order.pop_front()
            {
                map.remove(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Option<Entry> {
        self.book.lock().unwrap_or_else(|p| p.into_inner()).0.get(id).cloned()
    }
}

fn api_error(code: &str, message: &str) -> (u8, Vec<u8>) {
    let e = ApiError { code: code.into(), message: message.into() };
    (msg::ERROR, serde_json::to_vec(&e).unwrap_or_default())
}

fn respond(r: &Response) -> (u8, Vec<u8>) {
    (msg::RESPONSE, serde_json::to_vec(r).unwrap_or_default())
}

fn new_request_id() -> Option<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).ok()?;
    Some(hex(&b))
}

/// Answers one request payload: the record type and body to send back.
pub(crate) fn handle(shared: &Shared, peer: &Peer, session: &[u8; 16], payload: &[u8]) -> (u8, Vec<u8>) {
    let request = match ipc::api::parse_request(payload) {
        Ok(r) => r,
        Err(e) => return api_error(&e.code, &e.message),
    };
    if !peer.role.permits(&request) {
        let op = serde_json::to_value(&request).ok().and_then(|v| v["op"].as_str().map(str::to_owned));
        shared.audit.record(
            "request_refused",
            json!({"uid": peer.uid, "pid": peer.pid, "role": peer.role.name(), "op": op,
                   "code": "DENY_ROLE_NOT_PERMITTED"}),
        );
        return api_error("DENY_ROLE_NOT_PERMITTED", "this peer's role may not make this request");
    }
    let deny = |request_id: Option<String>| Response::Decision {
        request_id,
        decision: "deny".into(),
        reason_code: "DENY_USER_POLICY".into(),
        layer: "global_defaults".into(),
        detail: NO_POLICY.into(),
    };
    match request {
        Request::Ping => respond(&Response::Pong { uid: peer.uid, role: peer.role, session: hex(session) }),
        Request::Preview { .. } => respond(&deny(None)),
        Request::Submit { .. } => {
            let Some(id) = new_request_id() else { return api_error("IPC_RANDOM_FAILED", "no randomness") };
            shared.desk.record(&id, Entry { state: "denied", reason_code: "DENY_USER_POLICY" });
            shared.audit.record(
                "intent_decided",
                json!({"uid": peer.uid, "role": peer.role.name(), "request_id": id,
                       "decision": "deny", "reason_code": "DENY_USER_POLICY", "layer": "global_defaults"}),
            );
            respond(&deny(Some(id)))
        }
        Request::Status { request_id } => match shared.desk.get(&request_id) {
            Some(e) => {
                respond(&Response::Status { request_id, state: e.state.into(), reason_code: e.reason_code.into() })
            }
            None => api_error("API_REQUEST_NOT_FOUND", "no such request"),
        },
        Request::Approve { request_id } | Request::Deny { request_id, .. } => match shared.desk.get(&request_id) {
            // Only a request awaiting approval can be approved or denied, and
            // without a policy engine none ever waits.
            Some(_) => api_error("DENY_INVALID_TRANSITION", "the request is not awaiting approval"),
            None => api_error("API_REQUEST_NOT_FOUND", "no such request"),
        },
    }
}
