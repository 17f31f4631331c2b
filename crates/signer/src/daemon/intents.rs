//! The intent API as the signer answers it: parse, check the role, decide,
//! record, sign (docs/ipc-protocol.md "Application messages", docs/policy.md).
//!
//! Order for a submission, each step durable before the next:
//!
//! 1. the intent is canonicalized (`DENY_INVALID_X402_INTENT`); an agent
//!    peer may only submit agent-lane intents (`DENY_ROLE_NOT_PERMITTED`);
//!    the peer must hold a `[[grant]]` for the key and action
//!    (`DENY_KEY_NOT_GRANTED`), the key's kind must sign that action
//!    (`DENY_KEY_KIND_MISMATCH`), and a payment is bound to the exact
//!    transaction the signer builds from it (`policy::solana::bind`: an
//!    unknown asset, a fee payer we hold, compute caps, a caller's bytes
//!    that differ from ours, all refused here). Nothing is reserved and
//!    nothing is unsealed for a request refused at this step; each refusal
//!    is audited;
//! 2. under the ledger's lock: overdue approvals expire, the idempotency key
//!    is looked up (same intent: the first request's outcome is returned and
//!    nothing is signed again; a different intent: `DENY_REPLAY`), the policy
//!    decides against the ledger's usage, and the decision, with its
//!    reservation when it allows, is journaled;
//! 3. the decision is audited (hash-chained, fsynced);
//! 4. only an allowed request moves `Approved → Signing`: a payment is
//!    bound again under the policy in force and must give the very bytes
//!    that were decided (`DENY_TRANSACTION_MISMATCH` otherwise); the key is
//!    unsealed (or taken from its bounded window) and must be the key the
//!    transaction was built for; the message is signed, the signature
//!    journaled and audited, and only then answered (for a payment, with the
//!    wire transaction: fee payer's slot empty, ours signed).
//!
//! A prompted request waits in `AwaitUserApproval` until an approver
//! approves it *by its intent hash* (an approval never covers a different
//! intent, RT-010), denies it, or its deadline passes (`EXPIRE_TTL_REACHED`).
//! At approval time the global layer is consulted again, so a cap reached
//! since the prompt still holds.

use std::time::{SystemTime, UNIX_EPOCH};

use ipc::api::{ApiError, PendingView, Request, Response};
use ipc::handshake::hex;
use ipc::msg;
use policy::codes::{Layer, Outcome, ReasonCode};
use policy::intent::{Actor, CanonicalIntent};
use policy::redact::redact;
use serde_json::{Value, json};

use super::journal::JournalFailed;
use super::keys::{INTENT_KINDS, Purpose};
use super::ledger::{self, Entry, Record};
use super::lifecycle::{Input, State, state_name};
use super::server::{Peer, Shared};

fn api_error(code: &str, message: &str) -> (u8, Vec<u8>) {
    let e = ApiError { code: code.into(), message: message.into() };
    (msg::ERROR, serde_json::to_vec(&e).unwrap_or_default())
}

fn respond(r: &Response) -> (u8, Vec<u8>) {
    (msg::RESPONSE, serde_json::to_vec(r).unwrap_or_default())
}

/// Answers `r`; a response that carries a signature (alone or inside a
/// transaction) is released only when both journals are healthy and an
/// anchor covers every durable record, so the records that justify it can
/// neither be missing nor cut (docs/audit-log.md, "Signatures and anchors").
fn release(shared: &Shared, r: &Response) -> (u8, Vec<u8>) {
    let signs = match r {
        Response::Decision { signature, transaction, .. } => signature.is_some() || transaction.is_some(),
        Response::Signature { .. } => true,
        _ => false,
    };
    if signs {
        // What the state shows may still be in another thread's write: wait
        // until the ledger holds it (its `signed` record included), so that
        // a late audit record can never precede the ledger's and the anchor
        // below covers both.
        if shared.ledger.wait_durable().is_err() || shared.audit.failed() {
            return api_error(
                "KW_AUDIT_WRITE_FAILED",
                "the audit log or the ledger cannot be written; the signature is withheld until it can",
            );
        }
        if let Response::Decision { request_id: Some(id), .. } = r
            && let Err(e) = ensure_audited(shared, id)
        {
            return e;
        }
        if let Err(e) = shared.anchorer.cover_now(shared) {
            return api_error("KW_ANCHOR_FAILED", &format!("the signature is withheld: {}", e.0));
        }
    }
    respond(r)
}

fn mark_audited(shared: &Shared, id: &str) {
    shared.ledger.with_state(|b| {
        if let Some(e) = b.requests.get_mut(id) {
            e.audited = true;
        }
    });
}

/// A signed request whose audit `signed` record did not become known
/// durable when it was signed (the write failed, the answer was withheld):
/// the record is written now, marked `"late": true`, before the signature
/// is answered. (The first attempt may land too once the disk heals; the
/// log then has two `signed` records for the request, one late.)
fn ensure_audited(shared: &Shared, id: &str) -> Result<(), (u8, Vec<u8>)> {
    let late = shared.ledger.with_state(|b| {
        let e = b.requests.get(id)?;
        (e.signature.is_some() && !e.audited).then(|| e.signed_record(Some("late")))
    });
    let Some(fields) = late else { return Ok(()) };
    if shared.audit.try_record("signed", fields).is_err() {
        return Err(api_error(
            "KW_AUDIT_WRITE_FAILED",
            "the audit log cannot be written; the signature is withheld until it can",
        ));
    }
    mark_audited(shared, id);
    Ok(())
}

fn journal_failed(_: JournalFailed) -> (u8, Vec<u8>) {
    api_error("KW_LEDGER_WRITE_FAILED", "the spend ledger could not be written; nothing was signed")
}

fn new_request_id() -> Option<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).ok()?;
    Some(hex(&b))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a caller is told about a request.
#[derive(Debug, Clone)]
struct Snapshot {
    id: String,
    hash: String,
    outcome: Outcome,
    state: State,
    code: ReasonCode,
    layer: Layer,
    detail: String,
    signature: Option<String>,
    public_key: Option<String>,
    transaction: Option<String>,
}

/// The wire transaction of a signed Solana payment, base64: the fee
/// payer's slot (index 0) empty, ours (index 1) signed.
fn wire_transaction(e: &Entry) -> Option<String> {
    use base64::Engine as _;
    e.intent.solana.as_ref()?;
    let sig: [u8; 64] = policy::unhex(e.signature.as_deref()?)?.try_into().ok()?;
    let wire = solana_codec::wire_transaction(&e.intent.message, &[[0u8; 64], sig]).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(wire))
}

impl Snapshot {
    fn of(e: &Entry) -> Snapshot {
        Snapshot {
            id: e.id.clone(),
            hash: e.hash.clone(),
            outcome: e.outcome,
            state: e.lifecycle.state(),
            code: e.code,
            layer: e.layer,
            detail: e.detail.clone(),
            signature: e.signature.clone(),
            public_key: e.public_key.clone(),
            transaction: wire_transaction(e),
        }
    }

    fn response(&self, policy_id: &str) -> Response {
        Response::Decision {
            request_id: Some(self.id.clone()),
            intent_hash: Some(self.hash.clone()),
            decision: self.outcome.name().into(),
            state: state_name(self.state).into(),
            reason_code: self.code.as_str().into(),
            layer: self.layer.name().into(),
            policy_id: policy_id.into(),
            detail: self.detail.clone(),
            signature: self.signature.clone(),
            public_key: self.public_key.clone(),
            transaction: self.transaction.clone(),
        }
    }
}

fn pending_view(shared: &Shared, e: &Entry) -> PendingView {
    let i = &e.intent;
    let registry = &shared.policy.registry;
    let asset = registry.network(&i.chain_id).and_then(|n| registry.asset(n, &i.asset_id)).map(|(_, a)| a);
    let resource = i.x402.as_ref().and_then(|x| x.resource.as_deref());
    PendingView {
        request_id: e.id.clone(),
        intent_hash: e.hash.clone(),
        state: state_name(e.lifecycle.state()).into(),
        actor: if i.actor == Actor::Agent { "agent".into() } else { "user".into() },
        action: i.action.name().into(),
        key: i.key.clone(),
        payee: i.payee.clone(),
        amount_atomic: i.amount_atomic.to_string(),
        asset_id: i.asset_id.clone(),
        chain_id: i.chain_id.clone(),
        scheme_id: i.x402.as_ref().map(|x| x.scheme_id.clone()),
        payment_authority: i.authority().map(str::to_owned),
        rationale: policy::redact::display_safe(&redact(&i.rationale), 1024),
        reason_code: e.code.as_str().into(),
        reason: e.detail.clone(),
        expires_at: e.deadline,
        max_amount_atomic: i.max_amount_atomic.to_string(),
        amount_units: asset.map(|a| policy::solana::format_units(i.amount_atomic, a.decimals)),
        mint: asset.map(|a| a.mint.to_base58()),
        fee_payer: i.solana.as_ref().map(|s| s.fee_payer.clone()),
        x402_version: i.x402.as_ref().and_then(|x| x.version),
        resource: resource.map(|r| policy::redact::display_safe(r, 512)),
        origin: resource.and_then(policy::intent::origin).map(|o| policy::redact::display_safe(&o, 256)),
        message_sha256: i.message_sha256.clone(),
        message_len: i.message.len() as u64,
    }
}

/// Answers one request payload: the record type and body to send back.
pub(crate) fn handle(shared: &Shared, peer: &Peer, session: &[u8; 16], payload: &[u8]) -> (u8, Vec<u8>) {
    // Strict JSON first (a duplicate key anywhere, the intent included, is
    // refused rather than resolved by "last wins"), then exactly one known
    // request with exactly its fields.
    let value = match policy::strict_json::parse(payload) {
        Ok(v) => v,
        Err(e) => return api_error(e.code(), &e.message()),
    };
    let request = match ipc::api::request_from_value(value) {
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
    match request {
        Request::Ping => respond(&Response::Pong { uid: peer.uid, role: peer.role, session: hex(session) }),
        Request::Preview { intent } => preview(shared, peer, &intent),
        Request::Submit { intent } => submit(shared, peer, &intent),
        Request::Approvals => approvals(shared),
        Request::Show { request_id } => show(shared, &request_id),
        Request::Approve { request_id, intent_hash } => approve(shared, peer, &request_id, &intent_hash),
        Request::Deny { request_id, reason } => reject(shared, peer, &request_id, reason.as_deref()),
        Request::Status { request_id } => status(shared, &request_id),
        Request::Settle { request_id, settled, receipt } => settle(shared, peer, &request_id, settled, receipt),
        Request::KeyCreate { name, kind } => key_create(shared, peer, &name, &kind),
        Request::SignProof { key, proof } => sign_proof(shared, peer, &key, &proof),
        Request::SignBundle { key, bundle_root } => sign_bundle(shared, peer, &key, &bundle_root),
        Request::KeyList => key_list(shared),
        Request::DaemonStatus => daemon_status(shared),
    }
}

/// A refusal before any decision: audited, answered as a denial, nothing
/// reserved, nothing unsealed.
fn refuse_intent(shared: &Shared, peer: &Peer, op: &str, code: ReasonCode, detail: &str) -> (u8, Vec<u8>) {
    shared.audit.record(
        "intent_refused",
        json!({"op": op, "uid": peer.uid, "role": peer.role.name(), "decision": "deny",
               "reason_code": code.as_str(), "layer": "global_defaults", "detail": detail,
               "policy_id": shared.policy.id}),
    );
    respond(&Response::Decision {
        request_id: None,
        intent_hash: None,
        decision: "deny".into(),
        state: "Denied".into(),
        reason_code: code.as_str().into(),
        layer: "global_defaults".into(),
        policy_id: shared.policy.id.clone(),
        detail: detail.into(),
        signature: None,
        public_key: None,
        transaction: None,
    })
}

/// Binds a payment to the transaction this signer builds for key
/// `public` (a no-op for the caller's own message under `sign`).
fn bind_to_key(
    shared: &Shared,
    intent: &mut CanonicalIntent,
    purpose: Purpose,
    public: &[u8; 32],
) -> Result<(), policy::solana::BindError> {
    if purpose != Purpose::Solana {
        return Ok(());
    }
    let held: Vec<solana_codec::Pubkey> =
        shared.keys.held_public_keys().into_iter().map(solana_codec::Pubkey::new).collect();
    policy::solana::bind(intent, &shared.policy.registry, &solana_codec::Pubkey::new(*public), &held).map(|_| ())
}

/// Canonicalizes, checks the lane against the peer's role, the peer's
/// grant for the key and action, the key's kind, and binds a payment to its
/// transaction.
fn admit(shared: &Shared, peer: &Peer, intent: &Value, op: &str) -> Result<CanonicalIntent, (u8, Vec<u8>)> {
    let mut intent = CanonicalIntent::from_json(intent).map_err(|e| {
        refuse_intent(shared, peer, op, ReasonCode::DenyInvalidX402Intent, &format!("{}: {}", e.field, e.why))
    })?;
    if intent.actor == Actor::User && peer.role == ipc::api::Role::Agent {
        shared.audit.record(
            "request_refused",
            json!({"op": op, "uid": peer.uid, "role": peer.role.name(), "code": "DENY_ROLE_NOT_PERMITTED",
                   "detail": "an agent peer submitted a user-lane intent"}),
        );
        return Err(api_error("DENY_ROLE_NOT_PERMITTED", "an agent peer may only submit agent-lane intents"));
    }
    // A role lets a peer talk; only a grant lets it use a key. The grant is
    // checked before the key is looked up, so an ungranted peer learns
    // nothing about which keys exist.
    if !shared.config.granted(peer.uid, peer.gid, &intent.key, intent.action.name()) {
        return Err(refuse_intent(
            shared,
            peer,
            op,
            ReasonCode::DenyKeyNotGranted,
            "no [[grant]] gives this peer this key for this action",
        ));
    }
    let Some((purpose, public)) = shared.keys.resolve(&intent.key) else {
        return Err(refuse_intent(shared, peer, op, ReasonCode::DenyInvalidX402Intent, "key: no such key"));
    };
    if !purpose.may_sign(intent.action) {
        let detail = format!("a {} key may not sign a {} intent", purpose.kind(), intent.action.name());
        return Err(refuse_intent(shared, peer, op, ReasonCode::DenyKeyKindMismatch, &detail));
    }
    bind_to_key(shared, &mut intent, purpose, &public)
        .map_err(|e| refuse_intent(shared, peer, op, e.code, &e.detail))?;
    Ok(intent)
}

fn preview(shared: &Shared, peer: &Peer, intent: &Value) -> (u8, Vec<u8>) {
    let intent = match admit(shared, peer, intent, "preview") {
        Ok(i) => i,
        Err(r) => return r,
    };
    let d = shared.ledger.with_state(|book| policy::decide(&intent, &shared.policy, &book.usage(&intent, now())));
    respond(&Response::Decision {
        request_id: None,
        intent_hash: Some(intent.hash()),
        decision: d.outcome.name().into(),
        state: "PolicyEvaluated".into(),
        reason_code: d.code.as_str().into(),
        layer: d.layer.name().into(),
        policy_id: shared.policy.id.clone(),
        detail: d.detail,
        signature: None,
        public_key: None,
        transaction: None,
    })
}

enum Admitted {
    New(policy::Decision),
    Existing(Snapshot),
    Conflict(String),
}

fn submit(shared: &Shared, peer: &Peer, intent: &Value) -> (u8, Vec<u8>) {
    let intent = match admit(shared, peer, intent, "submit") {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(id) = new_request_id() else { return api_error("KW_RANDOM_FAILED", "no randomness") };
    let hash = intent.hash();
    let now = now();
    let ttl = shared.policy.user.approval_ttl_s;
    let admitted = shared.ledger.append(|book| {
        let mut lines = book.expire_due(now);
        if let Some(e) = book.by_idempotency(&intent.idempotency_key) {
            let out =
                if e.hash == hash { Admitted::Existing(Snapshot::of(e)) } else { Admitted::Conflict(e.id.clone()) };
            return (lines, out);
        }
        let usage = book.usage(&intent, now);
        let d = policy::decide(&intent, &shared.policy, &usage);
        lines.extend(book.record(ledger::decided(&id, now, &intent, &hash, &d, ttl)));
        (lines, Admitted::New(d))
    });
    let base = json!({"request_id": id, "correlation_id": intent.correlation_id, "uid": peer.uid, "pid": peer.pid,
                      "role": peer.role.name(), "intent_hash": hash, "policy_id": shared.policy.id});
    let audit = |event: &str, extra: Value| {
        let mut v = base.clone();
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        shared.audit.try_record(event, v)
    };
    match admitted {
        Err(e) => journal_failed(e),
        Ok(Admitted::Existing(s)) => {
            let _ = audit("idempotent_replay", json!({"original_request_id": s.id, "state": state_name(s.state)}));
            release(shared, &s.response(&shared.policy.id))
        }
        Ok(Admitted::Conflict(original)) => {
            let _ = audit(
                "intent_decided",
                json!({"decision": "deny", "reason_code": "DENY_REPLAY", "layer": "lifecycle",
                       "detail": "idempotency key already used for a different intent",
                       "original_request_id": original}),
            );
            respond(&Response::Decision {
                request_id: Some(id),
                intent_hash: Some(hash),
                decision: "deny".into(),
                state: "Denied".into(),
                reason_code: "DENY_REPLAY".into(),
                layer: "lifecycle".into(),
                policy_id: shared.policy.id.clone(),
                detail: "idempotency key already used for a different intent".into(),
                signature: None,
                public_key: None,
                transaction: None,
            })
        }
        Ok(Admitted::New(d)) => {
            let i = &intent;
            let recorded = audit(
                "intent_decided",
                json!({"actor": if i.actor == Actor::Agent { "agent" } else { "user" }, "action": i.action.name(),
                       "key": i.key, "chain_id": i.chain_id, "asset_id": i.asset_id,
                       "amount_atomic": i.amount_atomic.to_string(), "payee": i.payee,
                       "scheme_id": i.x402.as_ref().map(|x| x.scheme_id.clone()),
                       "payment_authority": i.authority(), "context_requires_approval": i.context_requires_approval,
                       "resource": i.x402.as_ref().and_then(|x| x.resource.clone()),
                       "message_sha256": i.message_sha256, "solana": i.solana,
                       "rationale": redact(&i.rationale), "decision": d.outcome.name(),
                       "reason_code": d.code.as_str(), "layer": d.layer.name(), "detail": d.detail,
                       "trace": d.trace}),
            );
            if d.outcome.is_allow() {
                if recorded.is_err() {
                    fail(shared, &id, ReasonCode::FailSigning, "the audit log could not be written");
                    return api_error(
                        "KW_AUDIT_WRITE_FAILED",
                        "the audit log could not be written; nothing was signed",
                    );
                }
                sign_and_record(shared, &id);
            }
            snapshot_response(shared, &id)
        }
    }
}

fn snapshot_response(shared: &Shared, id: &str) -> (u8, Vec<u8>) {
    match shared.ledger.with_state(|b| b.requests.get(id).map(Snapshot::of)) {
        Some(s) => release(shared, &s.response(&shared.policy.id)),
        None => api_error("API_REQUEST_NOT_FOUND", "no such request"),
    }
}

fn fail(shared: &Shared, id: &str, code: ReasonCode, detail: &str) {
    let r = Record::Failed { id: id.into(), code, detail: detail.into() };
    let _ = shared.ledger.append(|b| (b.record(r), ()));
    shared.audit.record("signing_failed", json!({"request_id": id, "reason_code": code.as_str(), "detail": detail}));
}

/// `Approved → Signing → Submitted` (or `Failed`).
fn sign_and_record(shared: &Shared, id: &str) {
    let job = shared.ledger.with_state(|b| {
        let e = b.requests.get(id)?;
        ledger::check(e, Input::BeginSigning).ok()?;
        Some((e.intent.clone(), e.hash.clone()))
    });
    let Some((intent, hash)) = job else {
        shared.audit.record(
            "transition_refused",
            json!({"request_id": id, "input": "BeginSigning", "code": "DENY_INVALID_TRANSITION"}),
        );
        return;
    };
    if intent.kes_period.is_some() {
        return fail(shared, id, ReasonCode::FailSigning, "KES keys are signed by the operator tool in this version");
    }
    let key = intent.key.clone();
    let message = intent.message.clone();
    let Some((purpose, public)) = shared.keys.resolve(&key).filter(|(p, _)| p.may_sign(intent.action)) else {
        return fail(shared, id, ReasonCode::DenyKeyKindMismatch, "the key no longer exists or may not sign this");
    };
    // What is signed is what was decided: bind the decided intent again
    // under the policy in force and require the very bytes it was decided
    // with (a changed registry or a tampered record gives other bytes).
    let mut again = intent.clone();
    again.claimed_message = Some(message.clone());
    if let Err(e) = bind_to_key(shared, &mut again, purpose, &public) {
        return fail(shared, id, e.code, &e.detail);
    }
    match shared.keys.sign_for(purpose, &key, &public, &message) {
        Ok((sig, public)) => {
            let r = Record::Signed { id: id.into(), signature: hex(&sig), public_key: hex(&public) };
            let ok = shared.ledger.append(|b| (b.record(r), ()));
            if ok.is_err() {
                return;
            }
            // A failure here withholds the signature: [`release`] answers
            // it only once its audit record is known durable.
            let recorded = shared
                .audit
                .try_record("signed", ledger::signed_record(id, &hash, &key, &hex(&public), &hex(&sig), None));
            if recorded.is_ok() {
                mark_audited(shared, id);
            }
        }
        Err(e) => fail(shared, id, e.code, &e.detail),
    }
}

fn approvals(shared: &Shared) -> (u8, Vec<u8>) {
    let now = now();
    let listed = shared.ledger.append(|b| {
        let lines = b.expire_due(now);
        let mut v: Vec<(&u64, PendingView)> = b
            .requests
            .values()
            .filter(|e| e.lifecycle.state() == State::AwaitUserApproval)
            .map(|e| (&e.ts, pending_view(shared, e)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0).then(a.1.request_id.cmp(&b.1.request_id)));
        (lines, v.into_iter().map(|(_, p)| p).collect())
    });
    match listed {
        Ok(requests) => respond(&Response::Pending { requests }),
        Err(e) => journal_failed(e),
    }
}

fn show(shared: &Shared, id: &str) -> (u8, Vec<u8>) {
    let now = now();
    match shared.ledger.append(|b| (b.expire_due(now), b.requests.get(id).map(|e| pending_view(shared, e)))) {
        Ok(Some(v)) => respond(&Response::Pending { requests: vec![v] }),
        Ok(None) => api_error("API_REQUEST_NOT_FOUND", "no such request"),
        Err(e) => journal_failed(e),
    }
}

fn status(shared: &Shared, id: &str) -> (u8, Vec<u8>) {
    let now = now();
    if let Err(e) = shared.ledger.append(|b| (b.expire_due(now), ())) {
        return journal_failed(e);
    }
    snapshot_response(shared, id)
}

enum Verdict {
    Done,
    NotFound,
    Invalid(State),
    Mismatch,
    PolicyNow(policy::Decision),
}

/// Runs a person's decision on a pending request under the ledger's lock.
fn person_decides(shared: &Shared, peer: &Peer, id: &str, input: Input, bound_hash: Option<&str>) -> Verdict {
    let now = now();
    let r = shared.ledger.append(|b| {
        let mut lines = b.expire_due(now);
        let Some(e) = b.requests.get(id) else { return (lines, Verdict::NotFound) };
        if ledger::check(e, input).is_err() {
            return (lines, Verdict::Invalid(e.lifecycle.state()));
        }
        if let Some(h) = bound_hash {
            if !secmem::ct::ct_eq_bytes(h.as_bytes(), e.hash.as_bytes()) {
                return (lines, Verdict::Mismatch);
            }
            // The hard layer again: a cap reached or a trust list changed
            // since the prompt still refuses.
            let intent = e.intent.clone();
            let d = policy::decide(&intent, &shared.policy, &b.usage(&intent, now));
            if matches!(d.outcome, Outcome::Deny | Outcome::Expire) {
                return (lines, Verdict::PolicyNow(d));
            }
        }
        let r = if input == Input::UserApprove {
            Record::Approved { id: id.into(), ts: now, by: peer.uid }
        } else {
            Record::Rejected { id: id.into(), ts: now, by: peer.uid }
        };
        lines.extend(b.record(r));
        (lines, Verdict::Done)
    });
    r.unwrap_or(Verdict::NotFound)
}

fn refusal(shared: &Shared, peer: &Peer, id: &str, input: Input, v: Verdict) -> (u8, Vec<u8>) {
    let op = if input == Input::UserApprove { "approve" } else { "deny" };
    match v {
        Verdict::Done => snapshot_response(shared, id),
        Verdict::NotFound => api_error("API_REQUEST_NOT_FOUND", "no such request"),
        Verdict::Invalid(from) => {
            shared.audit.record(
                "transition_refused",
                json!({"request_id": id, "op": op, "uid": peer.uid, "role": peer.role.name(), "from": state_name(from),
                       "input": super::lifecycle::input_name(input), "code": "DENY_INVALID_TRANSITION"}),
            );
            api_error("DENY_INVALID_TRANSITION", &format!("the request is {}, not awaiting approval", state_name(from)))
        }
        Verdict::Mismatch => {
            shared.audit.record(
                "approval_refused",
                json!({"request_id": id, "uid": peer.uid, "role": peer.role.name(),
                       "code": "API_APPROVAL_HASH_MISMATCH"}),
            );
            api_error(
                "API_APPROVAL_HASH_MISMATCH",
                "the approval names a different intent than the request holds; show it again and re-approve",
            )
        }
        Verdict::PolicyNow(d) => {
            shared.audit.record(
                "approval_refused",
                json!({"request_id": id, "uid": peer.uid, "role": peer.role.name(), "code": d.code.as_str(),
                       "layer": d.layer.name(), "detail": d.detail}),
            );
            api_error(d.code.as_str(), &format!("the policy refuses this request now ({})", d.detail))
        }
    }
}

fn approve(shared: &Shared, peer: &Peer, id: &str, intent_hash: &str) -> (u8, Vec<u8>) {
    let v = person_decides(shared, peer, id, Input::UserApprove, Some(intent_hash));
    if !matches!(v, Verdict::Done) {
        return refusal(shared, peer, id, Input::UserApprove, v);
    }
    let recorded = shared.audit.try_record(
        "approved",
        json!({"request_id": id, "intent_hash": intent_hash, "uid": peer.uid, "role": peer.role.name(),
               "policy_id": shared.policy.id}),
    );
    if recorded.is_err() {
        fail(shared, id, ReasonCode::FailSigning, "the audit log could not be written");
        return api_error("KW_AUDIT_WRITE_FAILED", "the audit log could not be written; nothing was signed");
    }
    sign_and_record(shared, id);
    snapshot_response(shared, id)
}

fn reject(shared: &Shared, peer: &Peer, id: &str, reason: Option<&str>) -> (u8, Vec<u8>) {
    let v = person_decides(shared, peer, id, Input::UserDeny, None);
    if !matches!(v, Verdict::Done) {
        return refusal(shared, peer, id, Input::UserDeny, v);
    }
    shared.audit.record(
        "rejected",
        json!({"request_id": id, "uid": peer.uid, "role": peer.role.name(), "decision": "deny",
               "reason_code": "DENY_USER_REJECTED", "layer": "context",
               "reason": reason.map(|r| redact(&r.chars().take(1024).collect::<String>()))}),
    );
    snapshot_response(shared, id)
}

/// Whether `receipt` (a base58 transaction signature from an x402
/// settlement response) is the fee payer's Ed25519 signature over the
/// message this request signed: then the settled transaction is ours,
/// byte for byte, whatever the server says.
fn receipt_verifies(e: &Entry, receipt: &str) -> bool {
    let Some(s) = &e.intent.solana else { return false };
    let (Ok(fee_payer), Ok(sig)) =
        (solana_codec::Pubkey::from_base58(&s.fee_payer), solana_codec::base58::decode(receipt))
    else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else { return false };
    let vk = crypto::ed25519::Ed25519VerificationKey(fee_payer.0);
    crypto::ed25519::verify(&vk, &e.intent.message, &crypto::ed25519::Ed25519Signature(sig)).is_ok()
}

fn settle(shared: &Shared, peer: &Peer, id: &str, ok: bool, receipt: Option<String>) -> (u8, Vec<u8>) {
    let input = if ok { Input::Settle } else { Input::Fail };
    let r = shared.ledger.append(|b| {
        let Some(e) = b.requests.get(id) else { return (vec![], Err(None)) };
        if e.lifecycle.state() != State::Submitted {
            return (vec![], Err(Some(e.lifecycle.state())));
        }
        if receipt.as_deref().is_some_and(|r| !receipt_verifies(e, r)) {
            return (vec![], Ok(false));
        }
        (b.record(Record::Settled { id: id.into(), ok, receipt: receipt.clone() }), Ok(true))
    });
    match r {
        Ok(Ok(false)) => {
            shared
                .audit
                .record("settle_refused", json!({"request_id": id, "uid": peer.uid, "code": "DENY_RECEIPT_INVALID"}));
            api_error(
                "DENY_RECEIPT_INVALID",
                "the receipt is not the fee payer's signature over the transaction this request signed",
            )
        }
        Ok(Ok(true)) => {
            shared.audit.record(
                "settled",
                json!({"request_id": id, "uid": peer.uid, "settled": ok, "receipt": receipt,
                       "receipt_verified": receipt.is_some()}),
            );
            snapshot_response(shared, id)
        }
        Ok(Err(None)) => api_error("API_REQUEST_NOT_FOUND", "no such request"),
        Ok(Err(Some(from))) => {
            shared.audit.record(
                "transition_refused",
                json!({"request_id": id, "op": "settle", "uid": peer.uid, "from": state_name(from),
                       "input": super::lifecycle::input_name(input), "code": "DENY_INVALID_TRANSITION"}),
            );
            api_error("DENY_INVALID_TRANSITION", &format!("the request is {}, not Submitted", state_name(from)))
        }
        Err(e) => journal_failed(e),
    }
}

fn key_create(shared: &Shared, peer: &Peer, name: &str, kind: &str) -> (u8, Vec<u8>) {
    let Some(purpose) = Purpose::from_kind(kind) else {
        return api_error(
            "KW_KEY_KIND_UNSUPPORTED",
            "keywardd creates solana, raw-ed25519 and proof-ed25519 keys (KES keys: keyward kes)",
        );
    };
    if vault::envelope::validate_name(&purpose.vault_name(name)).is_err() || name.len() > 64 {
        return api_error("KW_KEY_NAME_INVALID", "key names are 1-64 characters of [A-Za-z0-9._-]");
    }
    match shared.keys.create(purpose, name) {
        Ok(public) => {
            shared.audit.record(
                "key_created",
                json!({"name": name, "kind": kind, "public_key": hex(&public), "uid": peer.uid}),
            );
            respond(&Response::Key { name: name.into(), key_kind: kind.into(), public_key: hex(&public) })
        }
        Err(e) => api_error(e.code.as_str(), &e.detail),
    }
}

/// Signs a proof's canonical JSON with a proof key. The signer parses and
/// canonicalizes the proof itself: a caller cannot have it sign bytes that
/// are not a proof.
fn sign_proof(shared: &Shared, peer: &Peer, key: &str, proof: &str) -> (u8, Vec<u8>) {
    let Ok(doc) = bundle::json::parse(proof.as_bytes()) else {
        return api_error("PROOF_MALFORMED", "the proof is not valid JSON");
    };
    let message = match bundle::proof::message_to_sign(&doc) {
        Ok(m) => m,
        Err(e) => return api_error(e.code, e.message),
    };
    let digest = bundle::hex::sha256(&message);
    sign_with_proof_key(shared, peer, key, ("proof_signed", "message_sha256", &digest), |_| message)
}

/// Signs with proof key `key` and audits `event` with `(field, value)`.
fn sign_with_proof_key(
    shared: &Shared,
    peer: &Peer,
    key: &str,
    (event, field, value): (&str, &str, &str),
    build: impl FnOnce(&[u8; 32]) -> Vec<u8>,
) -> (u8, Vec<u8>) {
    match shared.keys.sign_built(Purpose::Proof, key, build) {
        Ok((sig, public)) => {
            let recorded = shared
                .audit
                .try_record(event, json!({"key": key, "uid": peer.uid, field: value, "public_key": hex(&public)}));
            if recorded.is_err() {
                return api_error(
                    "KW_AUDIT_WRITE_FAILED",
                    "the audit log could not be written; the signature is withheld",
                );
            }
            release(shared, &Response::Signature { signature: hex(&sig), public_key: hex(&public) })
        }
        Err(e) => api_error(e.code.as_str(), &e.detail),
    }
}

/// Signs the SPECTRUM-04 payload for `bundle_root`; the payload names the
/// key's own validator id.
fn sign_bundle(shared: &Shared, peer: &Peer, key: &str, bundle_root: &str) -> (u8, Vec<u8>) {
    if !bundle::hex::is_lower_hex(bundle_root, 64) {
        return api_error("API_BAD_REQUEST", "bundle_root is 64 lowercase hex digits");
    }
    let built = |pk: &[u8; 32]| {
        bundle::verify::signature_message(&bundle::verify::signed_payload(bundle_root, &bundle::hex::sha256(pk)))
    };
    sign_with_proof_key(shared, peer, key, ("bundle_signed", "bundle_root", bundle_root), built)
}

fn key_list(shared: &Shared) -> (u8, Vec<u8>) {
    let mut names = Vec::new();
    let mut keys = Vec::new();
    for purpose in INTENT_KINDS.into_iter().chain([Purpose::Proof]) {
        match shared.keys.list(purpose) {
            Ok(list) => {
                for name in list {
                    let public = shared.keys.public_key(purpose, &name).map(|k| hex(&k)).unwrap_or_default();
                    let signs = match purpose {
                        Purpose::Solana => "x402_payment, transfer (transactions keywardd builds)",
                        Purpose::Raw => "sign (opaque messages)",
                        Purpose::Proof => "proofs and bundles",
                        Purpose::Legacy => "nothing (created before key kinds; re-create as solana or raw-ed25519)",
                    };
                    keys.push(ipc::api::KeyInfo {
                        name: name.clone(),
                        kind: purpose.kind().into(),
                        public_key: public,
                        signs: signs.into(),
                    });
                    if purpose != Purpose::Proof {
                        names.push(name);
                    }
                }
            }
            Err(e) => return api_error(e.code.as_str(), &e.detail),
        }
    }
    let proof_keys = keys.iter().filter(|k| k.kind == "proof-ed25519").map(|k| k.name.clone()).collect();
    respond(&Response::Keys { names, proof_keys, keys })
}

fn daemon_status(shared: &Shared) -> (u8, Vec<u8>) {
    let head = shared.audit.head();
    let (anchor, anchors_committed) = shared.anchorer.last();
    let now = now();
    let (states, spent) = shared.ledger.with_state(|b| {
        let mut states = std::collections::BTreeMap::<&str, u64>::new();
        for e in b.requests.values() {
            *states.entry(state_name(e.lifecycle.state())).or_default() += 1;
        }
        let spent: serde_json::Map<String, Value> = shared
            .policy
            .global
            .assets
            .keys()
            .map(|a| {
                let (all, agent) = b.spent(now, a);
                (a.clone(), json!({"all": all.to_string(), "agent": agent.to_string()}))
            })
            .collect();
        (json!(states), spent)
    });
    let l = shared.keys.lifetimes();
    let mean = if l.wiped == 0 { 0 } else { l.total_us / u128::from(l.wiped) };
    respond(&Response::Daemon {
        status: json!({
            "policy_id": shared.policy.id, "policy_profile": format!("{:?}", shared.policy.profile).to_lowercase(),
            "audit": {"records": head.records, "head": head.head,
                      "journal_key": hex(&shared.anchorer.journal_key()),
                      "healthy": !shared.audit.failed() && !shared.ledger.failed()},
            "anchor": {"counter": anchor.counter, "audit_records": anchor.audit.records,
                       "audit_head": anchor.audit.head, "ledger_records": anchor.ledger.records,
                       "ts_ms": anchor.ts_ms, "committed_this_run": anchors_committed},
            "requests": states, "spent_today": spent,
            "keys": {"unseal_window_ms": shared.keys.window().as_millis() as u64, "unseals": l.unseals,
                     "wiped": l.wiped, "plaintext_lifetime_mean_us": mean as u64,
                     "plaintext_lifetime_max_us": l.max_us as u64},
        }),
    })
}
