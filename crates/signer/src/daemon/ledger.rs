//! The spend ledger: every request's lifecycle, daily totals, velocity,
//! payee history and idempotency records, durable in one append-only journal
//! (`<state_dir>/ledger.jsonl`, group-committed and fsynced).
//!
//! The journal *is* the ledger: at start-up the book is rebuilt by replaying
//! it, so totals and idempotency survive restarts and crashes. Decisions and
//! reservations happen inside the journal's lock ([`Journal::append`]), so
//! two concurrent requests that each fit under a cap but together exceed it
//! cannot both be approved: the second sees the first's reservation.
//!
//! Crash rules (what a restart does with a request caught mid-flight):
//!
//! * `Approved` or `Signing` without a `signed` record: the signature never
//!   left the daemon (the `signed` record is durable before any answer), so
//!   the request becomes `Failed` and its reservation is released.
//! * `AwaitUserApproval` stays pending until its deadline.
//! * An idempotency key, once recorded, always maps to its first request: the
//!   same key never yields a second signature, before or after a restart.

use std::collections::{BTreeSet, HashMap, VecDeque};

use policy::codes::{Layer, Outcome, ReasonCode};
use policy::intent::{Actor, CanonicalIntent};
use policy::{Decision, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lifecycle::{Input, InvalidTransition, Lifecycle, State};

/// One request in the book.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub intent: CanonicalIntent,
    /// The intent hash computed when the request arrived (the stored intent
    /// carries the redacted rationale, so the hash is kept, not recomputed).
    pub hash: String,
    pub lifecycle: Lifecycle,
    pub outcome: Outcome,
    pub code: ReasonCode,
    pub layer: Layer,
    pub detail: String,
    /// Until when a person may approve (Unix seconds).
    pub deadline: u64,
    /// The amount counts against today's totals.
    pub reserved: bool,
    pub day: u64,
    pub ts: u64,
    pub signature: Option<String>,
    pub public_key: Option<String>,
    /// The audit log's `signed` record for this request is known durable
    /// (not journaled: known from the audit log at start-up and from the
    /// append's result while running). A signature is released only then.
    pub audited: bool,
}

impl Entry {
    /// The fields of the audit log's `signed` record for this request, with
    /// `mark` (`recovered`, `late`) set when it is written after the fact.
    pub fn signed_record(&self, mark: Option<&str>) -> Value {
        signed_record(
            &self.id,
            &self.hash,
            &self.intent.key,
            self.public_key.as_deref().unwrap_or_default(),
            self.signature.as_deref().unwrap_or_default(),
            mark,
        )
    }
}

/// The fields of an audit `signed` record (one shape wherever it is written).
pub fn signed_record(id: &str, hash: &str, key: &str, public_key: &str, signature: &str, mark: Option<&str>) -> Value {
    let mut v = serde_json::json!({"request_id": id, "intent_hash": hash, "key": key, "public_key": public_key,
                                   "signature": signature});
    if let Some(m) = mark {
        v[m] = true.into();
    }
    v
}

/// The ledger's in-memory state.
#[derive(Debug, Default)]
pub struct Book {
    pub requests: HashMap<String, Entry>,
    by_idempotency: HashMap<String, String>,
    /// (UTC day, asset) → (all lanes, agent lane).
    totals: HashMap<(u64, String), (u128, u128)>,
    /// Approval times in the last minute: (Unix seconds, agent lane).
    recent: VecDeque<(u64, bool)>,
    /// Payee → payment authorities it was paid through ("" for none).
    payees: HashMap<String, BTreeSet<String>>,
    /// Requests replayed from disk at start-up, and those failed by recovery.
    pub replayed: u64,
    pub recovered_failed: Vec<String>,
}

/// One journal record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    Decided {
        id: String,
        ts: u64,
        hash: String,
        intent: Value,
        outcome: Outcome,
        code: ReasonCode,
        layer: Layer,
        detail: String,
        deadline: u64,
    },
    Approved {
        id: String,
        ts: u64,
        by: u32,
    },
    Rejected {
        id: String,
        ts: u64,
        by: u32,
    },
    Expired {
        id: String,
        ts: u64,
    },
    Signed {
        id: String,
        signature: String,
        public_key: String,
    },
    Failed {
        id: String,
        code: ReasonCode,
        detail: String,
    },
    Settled {
        id: String,
        ok: bool,
        /// The settlement receipt (a transaction signature) when the caller
        /// sent one; recorded only after it verified (docs/x402.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
}

impl Record {
    pub fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

fn day(ts: u64) -> u64 {
    ts / 86_400
}

impl Book {
    /// Replays a journal's record bodies (verified: signed and anchored).
    /// A body that does not parse is a corrupted ledger: the daemon refuses
    /// to start rather than forget spend.
    pub fn replay(records: &[&str]) -> Result<Book, String> {
        let mut book = Book::default();
        for (n, line) in records.iter().enumerate() {
            let r: Record = serde_json::from_str(line).map_err(|_| format!("ledger line {} is not a record", n + 1))?;
            book.apply(r).map_err(|e| format!("ledger line {}: {e}", n + 1))?;
        }
        book.replayed = book.requests.len() as u64;
        // Approved but never signed: nothing left the daemon; fail and release.
        let stuck: Vec<String> = book
            .requests
            .values()
            .filter(|e| matches!(e.lifecycle.state(), State::Approved | State::Signing))
            .map(|e| e.id.clone())
            .collect();
        book.recovered_failed = stuck;
        Ok(book)
    }

    /// Applies `r` and returns its journal line: how every new record enters
    /// the book, inside [`super::journal::Journal::append`]'s closure, so
    /// that the book and the file never disagree on order. The caller has
    /// checked the transition; a record the book refuses is still journaled
    /// (replay refuses it the same way and stops the daemon).
    pub fn record(&mut self, r: Record) -> Vec<u8> {
        let line = r.line();
        let _ = self.apply(r);
        line
    }

    /// Applies a record to the book (at replay, and as it is written).
    pub fn apply(&mut self, r: Record) -> Result<(), String> {
        match r {
            Record::Decided { id, ts, hash, intent, outcome, code, layer, detail, deadline } => {
                let intent = CanonicalIntent::from_recorded_json(&intent).map_err(|e| e.to_string())?;
                let mut lifecycle = Lifecycle::default();
                let _ = lifecycle.step(Input::Evaluate);
                let input = match outcome {
                    Outcome::AutoApprove | Outcome::ApproveUserPath => Input::AutoApprove,
                    Outcome::Prompt => Input::RequireApproval,
                    Outcome::Deny => Input::Deny,
                    Outcome::Expire => Input::Expire,
                };
                lifecycle.step(input).map_err(|e| e.to_string())?;
                self.by_idempotency.insert(intent.idempotency_key.clone(), id.clone());
                let entry = Entry {
                    id: id.clone(),
                    hash,
                    lifecycle,
                    outcome,
                    code,
                    layer,
                    detail,
                    deadline,
                    reserved: false,
                    day: day(ts),
                    ts,
                    signature: None,
                    public_key: None,
                    audited: false,
                    intent,
                };
                self.requests.insert(id.clone(), entry);
                if outcome.is_allow() {
                    self.reserve(&id, ts);
                }
            }
            Record::Approved { id, ts, .. } => {
                self.entry(&id)?.lifecycle.step(Input::UserApprove).map_err(|e| e.to_string())?;
                self.reserve(&id, ts);
            }
            Record::Rejected { id, .. } => {
                let e = self.entry(&id)?;
                e.lifecycle.step(Input::UserDeny).map_err(|e| e.to_string())?;
                e.code = ReasonCode::DenyUserRejected;
                e.layer = Layer::Context;
            }
            Record::Expired { id, .. } => {
                let e = self.entry(&id)?;
                e.lifecycle.step(Input::Expire).map_err(|e| e.to_string())?;
                e.code = ReasonCode::ExpireTtlReached;
                e.layer = Layer::Lifecycle;
                self.release(&id);
            }
            Record::Signed { id, signature, public_key } => {
                let e = self.entry(&id)?;
                if e.lifecycle.state() == State::Approved {
                    e.lifecycle.step(Input::BeginSigning).map_err(|e| e.to_string())?;
                }
                e.lifecycle.step(Input::Signed).map_err(|e| e.to_string())?;
                e.signature = Some(signature);
                e.public_key = Some(public_key);
            }
            Record::Failed { id, code, detail } => {
                let e = self.entry(&id)?;
                if e.lifecycle.state() == State::Approved {
                    e.lifecycle.step(Input::BeginSigning).map_err(|e| e.to_string())?;
                }
                e.lifecycle.step(Input::Fail).map_err(|e| e.to_string())?;
                e.code = code;
                e.detail = detail;
                if e.signature.is_none() {
                    self.release(&id);
                }
            }
            Record::Settled { id, ok, .. } => {
                self.entry(&id)?
                    .lifecycle
                    .step(if ok { Input::Settle } else { Input::Fail })
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, id: &str) -> Result<&mut Entry, String> {
        self.requests.get_mut(id).ok_or_else(|| "record for an unknown request".to_string())
    }

    fn reserve(&mut self, id: &str, ts: u64) {
        let Some(e) = self.requests.get_mut(id) else { return };
        if e.reserved {
            return;
        }
        e.reserved = true;
        let agent = e.intent.actor == Actor::Agent;
        let amount = u128::from(e.intent.amount_atomic);
        let t = self.totals.entry((e.day, e.intent.asset_id.clone())).or_default();
        t.0 += amount;
        if agent {
            t.1 += amount;
        }
        self.recent.push_back((ts, agent));
        if !e.intent.payee.is_empty() {
            let authority = e.intent.settlement_authority().unwrap_or("").to_string();
            self.payees.entry(e.intent.payee.clone()).or_default().insert(authority);
        }
    }

    fn release(&mut self, id: &str) {
        let Some(e) = self.requests.get_mut(id) else { return };
        if !e.reserved {
            return;
        }
        e.reserved = false;
        let amount = u128::from(e.intent.amount_atomic);
        let agent = e.intent.actor == Actor::Agent;
        if let Some(t) = self.totals.get_mut(&(e.day, e.intent.asset_id.clone())) {
            t.0 = t.0.saturating_sub(amount);
            if agent {
                t.1 = t.1.saturating_sub(amount);
            }
        }
    }

    /// What the policy sees for `intent` at `now`.
    pub fn usage(&mut self, intent: &CanonicalIntent, now: u64) -> Usage {
        while self.recent.front().is_some_and(|(t, _)| now.saturating_sub(*t) >= 60) {
            self.recent.pop_front();
        }
        let (all, agent) = self.totals.get(&(day(now), intent.asset_id.clone())).copied().unwrap_or_default();
        let authorities = self.payees.get(&intent.payee);
        Usage {
            now,
            spent_today: all,
            agent_spent_today: agent,
            approvals_last_minute: self.recent.len() as u32,
            agent_approvals_last_minute: self.recent.iter().filter(|(_, a)| *a).count() as u32,
            payee_known: authorities.is_some(),
            payee_authorities: authorities.map(|s| s.iter().cloned().collect()).unwrap_or_default(),
        }
    }

    /// The request an idempotency key already names.
    pub fn by_idempotency(&self, key: &str) -> Option<&Entry> {
        self.by_idempotency.get(key).and_then(|id| self.requests.get(id))
    }

    /// Records for every pending request whose approval window has closed.
    pub fn expire_due(&mut self, now: u64) -> Vec<u8> {
        let due: Vec<String> = self
            .requests
            .values()
            .filter(|e| e.lifecycle.state() == State::AwaitUserApproval && now >= e.deadline)
            .map(|e| e.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            out.extend(self.record(Record::Expired { id, ts: now }));
        }
        out
    }

    /// Today's totals for `asset` (all lanes, agent lane): for status.
    pub fn spent(&self, now: u64, asset: &str) -> (u128, u128) {
        self.totals.get(&(day(now), asset.to_string())).copied().unwrap_or_default()
    }
}

/// A decision turned into the first record of a new request.
pub fn decided(id: &str, now: u64, intent: &CanonicalIntent, hash: &str, d: &Decision, ttl: u64) -> Record {
    let deadline = intent.request_expiry.min(now.saturating_add(ttl));
    Record::Decided {
        id: id.to_string(),
        ts: now,
        hash: hash.to_string(),
        intent: intent.to_wire(&policy::redact::redact(&intent.rationale)),
        outcome: d.outcome,
        code: d.code,
        layer: d.layer,
        detail: d.detail.clone(),
        deadline,
    }
}

/// Checks that `input` is valid for `entry` without applying it.
pub fn check(entry: &Entry, input: Input) -> Result<(), InvalidTransition> {
    Lifecycle::at(entry.lifecycle.state()).step(input).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn intent(key: &str, amount: u64) -> CanonicalIntent {
        CanonicalIntent::from_json(&json!({
            "actor": "agent", "action": "transfer", "key": "k", "chain_id": "c", "asset_id": "usdc",
            "amount_atomic": amount, "max_amount_atomic": amount, "payee": "P", "rationale": "r",
            "idempotency_key": key, "request_expiry": 10_000, "message_hex": "00",
            "solana": {"fee_payer": "F", "recent_blockhash": "B", "last_valid_block_height": 1}
        }))
        .unwrap()
    }

    fn allow() -> Decision {
        Decision {
            outcome: Outcome::AutoApprove,
            code: ReasonCode::AllowAutoPolicyOk,
            layer: Layer::UserProfile,
            detail: String::new(),
            trace: vec![],
        }
    }

    #[test]
    fn replay_rebuilds_totals_idempotency_and_recovers_unsigned_approvals() {
        let mut text = String::new();
        let mut book = Book::default();
        for (id, key, amount) in [("a", "k1", 10), ("b", "k2", 20), ("c", "k3", 40)] {
            let i = intent(key, amount);
            let r = decided(id, 100, &i, &i.hash(), &allow(), 300);
            text.push_str(std::str::from_utf8(&r.line()).unwrap());
            book.apply(r).unwrap();
        }
        for r in [
            Record::Signed { id: "a".into(), signature: "s".into(), public_key: "p".into() },
            Record::Failed { id: "b".into(), code: ReasonCode::FailSigning, detail: "x".into() },
        ] {
            text.push_str(std::str::from_utf8(&r.line()).unwrap());
            book.apply(r).unwrap();
        }
        assert_eq!(book.spent(100, "usdc"), (50, 50), "b was released");
        let bodies: Vec<&str> = text.lines().collect();
        let replayed = Book::replay(&bodies).unwrap();
        assert_eq!(replayed.spent(100, "usdc"), (50, 50));
        assert_eq!(replayed.by_idempotency("k1").unwrap().signature.as_deref(), Some("s"));
        assert_eq!(replayed.recovered_failed, vec!["c".to_string()]);
        assert!(Book::replay(&["{\"t\":\"nonsense\"}"]).is_err());
    }
}
