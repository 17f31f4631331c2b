//! Attacks on the decision pipeline: RT-001 (context approval bypass),
//! RT-002 (user limit bypass), RT-003 (global cap bypass), RT-007 (invalid
//! lifecycle transition) and RT-018 (secrets in the audit log). RT-008,
//! RT-009 and RT-010 run through the real x402 path (`x402.rs`).
//!
//! Each starts a real `keywardd` with its own TPM, vault, ledger and audit
//! log under a strict policy, creates a signing key in the vault, and
//! attacks over the real socket as an agent would. A scenario passes only if
//! the attack was made, refused with the expected code, nothing was signed
//! that should not have been, and the refusal is in the audit log.

use daemon_harness::{Daemon, Options, TEST_POLICY, x402_intent};
use ipc::api::{Request, Response};
use ipc::client::CallError;
use serde_json::{Value, json};

use super::beside_me;
use crate::ledger::{Probe, Scenario};

fn start() -> Result<Daemon, String> {
    let keywardd = beside_me("keywardd").ok_or("keywardd is not built beside the runner")?;
    let policy = TEST_POLICY.replace("confirm_new_destination = false", "confirm_new_destination = true");
    let d = Daemon::try_start(&keywardd, &Options { policy, ..Options::default() })
        .map_err(|e| format!("cannot start keywardd: {e}"))?;
    match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { .. }) => Ok(d),
        other => Err(format!("cannot create the signing key: {other:?}")),
    }
}

/// A decision's (request id, state, code, layer, signed?).
fn submit(d: &Daemon, intent: Value) -> (String, String, String, String, bool) {
    match d.call(&Request::Submit { intent }) {
        Ok(Response::Decision { request_id, state, reason_code, layer, signature, .. }) => {
            (request_id.unwrap_or_default(), state, reason_code, layer, signature.is_some())
        }
        Ok(other) => (String::new(), format!("{other:?}"), String::new(), String::new(), false),
        Err(CallError::Api(e)) => (String::new(), "refused".into(), e.code, String::new(), false),
        Err(CallError::Ipc(e)) => (String::new(), "transport".into(), e.to_string(), String::new(), false),
    }
}

/// A payment to a payee the ledger already knows (so that the high-risk
/// "new destination" prompt does not mask what the scenario tests).
fn known_payee(d: &Daemon, probe: &mut Probe) {
    let (id, state, ..) = submit(d, x402_intent("warm-up", 10));
    let hash = match d.call(&Request::Show { request_id: id.clone() }) {
        Ok(Response::Pending { requests }) if state == "AwaitUserApproval" => requests[0].intent_hash.clone(),
        _ => String::new(),
    };
    let approved = d.call(&Request::Approve { request_id: id, intent_hash: hash });
    probe.check(
        "set-up: a first payment to the payee was approved by a person",
        matches!(&approved, Ok(Response::Decision { state, .. }) if state == "Submitted"),
        format!("{approved:?}"),
    );
}

fn signed(d: &Daemon) -> usize {
    d.events("signed").len()
}

type Attack = fn(&Daemon, &mut Probe) -> String;

#[derive(Debug)]
pub(super) struct PolicyAttack {
    id: &'static str,
    attack: Attack,
    /// Every check `attack` records when it makes its whole attack.
    checks: &'static [&'static str],
}

impl Scenario for PolicyAttack {
    fn id(&self) -> &'static str {
        self.id
    }

    fn checks(&self) -> &'static [&'static str] {
        self.checks
    }

    fn run(&self, probe: &mut Probe) -> String {
        match start() {
            Ok(d) => (self.attack)(&d, probe),
            Err(e) => e,
        }
    }
}

pub(super) fn all() -> Vec<PolicyAttack> {
    vec![
        PolicyAttack { id: "RT-001", attack: context_bypass, checks: CONTEXT_BYPASS_CHECKS },
        PolicyAttack { id: "RT-002", attack: user_limit_bypass, checks: USER_LIMIT_BYPASS_CHECKS },
        PolicyAttack { id: "RT-003", attack: global_cap_bypass, checks: GLOBAL_CAP_BYPASS_CHECKS },
        PolicyAttack { id: "RT-007", attack: invalid_transition, checks: INVALID_TRANSITION_CHECKS },
        PolicyAttack { id: "RT-018", attack: secret_in_audit, checks: SECRET_IN_AUDIT_CHECKS },
    ]
}

/// The checks RT-001 makes ([`Scenario::checks`]).
const CONTEXT_BYPASS_CHECKS: &[&str] = &[
    "set-up: a first payment to the payee was approved by a person",
    "a 1-unit request marked approval-required waits for a person",
    "nothing was signed",
    "the audit log names the context layer",
    "control: the same request without the flag is auto-signed",
];

fn context_bypass(d: &Daemon, probe: &mut Probe) -> String {
    known_payee(d, probe);
    let before = signed(d);
    let mut i = x402_intent("rt001", 1);
    i["context_requires_approval"] = json!(true);
    let (id, state, code, layer, sig) = submit(d, i);
    probe.check(
        "a 1-unit request marked approval-required waits for a person",
        state == "AwaitUserApproval" && code == "PROMPT_CONTEXT_REQUIRED" && layer == "context" && !sig,
        format!("{state} {code} {layer}"),
    );
    probe.check("nothing was signed", signed(d) == before, format!("{} signed", signed(d) - before));
    let logged = d.events("intent_decided").iter().any(|e| e["request_id"] == id.as_str() && e["layer"] == "context");
    probe.check("the audit log names the context layer", logged, id.clone());
    let (_, state, ..) = submit(d, x402_intent("rt001-control", 1));
    probe.check("control: the same request without the flag is auto-signed", state == "Submitted", state);
    format!("approval-required request held in AwaitUserApproval ({code}, layer {layer})")
}

/// The checks RT-002 makes ([`Scenario::checks`]).
const USER_LIMIT_BYPASS_CHECKS: &[&str] = &[
    "set-up: a first payment to the payee was approved by a person",
    "an agent request one unit over the per-transaction user limit is prompted, not signed",
    "the policy trace names the failed user limit",
    "nothing was signed",
];

fn user_limit_bypass(d: &Daemon, probe: &mut Probe) -> String {
    known_payee(d, probe);
    let before = signed(d);
    let (id, state, code, _, sig) = submit(d, x402_intent("rt002", 100_001));
    probe.check(
        "an agent request one unit over the per-transaction user limit is prompted, not signed",
        state == "AwaitUserApproval" && code == "PROMPT_USER_LIMIT_EXCEEDED" && !sig,
        format!("{state} {code}"),
    );
    let trace =
        d.events("intent_decided").into_iter().find(|e| e["request_id"] == id.as_str()).map(|e| e["trace"].clone());
    let traced =
        trace.as_ref().and_then(Value::as_array).is_some_and(|t| t.iter().any(|c| c == "user.per_tx_limit=fail"));
    probe.check("the policy trace names the failed user limit", traced, format!("{trace:?}"));
    probe.check("nothing was signed", signed(d) == before, "");
    format!("over-limit request prompted ({code}); trace recorded")
}

/// The checks RT-003 makes ([`Scenario::checks`]).
const GLOBAL_CAP_BYPASS_CHECKS: &[&str] = &[
    "a request over the global per-transaction cap is denied, even when it asks for a person",
    "and no approval can lift it",
    "nothing was signed",
];

fn global_cap_bypass(d: &Daemon, probe: &mut Probe) -> String {
    let before = signed(d);
    let mut over = x402_intent("rt003", 1_000_001);
    over["context_requires_approval"] = json!(true);
    let (id, state, code, layer, sig) = submit(d, over);
    probe.check(
        "a request over the global per-transaction cap is denied, even when it asks for a person",
        state == "Denied" && code == "DENY_GLOBAL_LIMIT" && layer == "global_defaults" && !sig,
        format!("{state} {code} {layer}"),
    );
    let approve = d.call(&Request::Approve { request_id: id, intent_hash: "00".into() });
    probe.check(
        "and no approval can lift it",
        matches!(&approve, Err(CallError::Api(e)) if e.code == "DENY_INVALID_TRANSITION"),
        format!("{approve:?}"),
    );
    probe.check("nothing was signed", signed(d) == before, "");
    format!("over-cap request denied ({code}, layer {layer})")
}

/// The checks RT-007 makes ([`Scenario::checks`]).
const INVALID_TRANSITION_CHECKS: &[&str] = &[
    "set-up: a request awaits approval",
    "settling a request that was never signed",
    "approve with a forged hash",
    "Denied -> Approved -> Signing is refused",
    "each refused transition is an audit event",
    "nothing was signed",
];

fn invalid_transition(d: &Daemon, probe: &mut Probe) -> String {
    let before = signed(d);
    let (pending, state, ..) = submit(d, x402_intent("rt007", 200_000));
    probe.check("set-up: a request awaits approval", state == "AwaitUserApproval", state);
    // The agent tries to push its own request on: approve, settle, deny.
    let attempts: Vec<(&str, Request, &str)> = vec![
        (
            "settling a request that was never signed",
            Request::Settle { request_id: pending.clone(), settled: true, receipt: None },
            "DENY_INVALID_TRANSITION",
        ),
        (
            "approve with a forged hash",
            Request::Approve { request_id: pending.clone(), intent_hash: "00".into() },
            "API_APPROVAL_HASH_MISMATCH",
        ),
    ];
    for (what, r, expect) in attempts {
        let got = d.call(&r);
        probe.check(what, matches!(&got, Err(CallError::Api(e)) if e.code == expect), format!("{got:?}"));
    }
    let (denied, ..) = submit(d, x402_intent("rt007-denied", 5_000_000));
    let got = d.call(&Request::Approve { request_id: denied, intent_hash: "00".into() });
    probe.check(
        "Denied -> Approved -> Signing is refused",
        matches!(&got, Err(CallError::Api(e)) if e.code == "DENY_INVALID_TRANSITION"),
        format!("{got:?}"),
    );
    let refused = d.events("transition_refused").len();
    probe.check("each refused transition is an audit event", refused >= 2, format!("{refused} events"));
    probe.check("nothing was signed", signed(d) == before, "");
    format!("{refused} forced transitions refused with DENY_INVALID_TRANSITION and audited")
}

/// The checks RT-018 makes ([`Scenario::checks`]).
const SECRET_IN_AUDIT_CHECKS: &[&str] = &[
    "no injected secret appears in the audit log or the ledger",
    "the redaction filter replaced them",
    "the scan covered real records",
];

fn secret_in_audit(d: &Daemon, probe: &mut Probe) -> String {
    // Fresh for this run: a keypair file's byte array and a 24-word phrase
    // from the BIP-39 list, beside a seed in hex, base58 and base64.
    let mut random = [0u8; 64];
    let _ = getrandom::fill(&mut random);
    let keypair = format!("[{}]", random.iter().map(u8::to_string).collect::<Vec<_>>().join(","));
    let words: Vec<&str> = policy::redact::BIP39_ENGLISH.lines().collect();
    let phrase: Vec<&str> =
        random.chunks(2).take(24).map(|c| words[usize::from(u16::from_le_bytes([c[0], c[1]])) % words.len()]).collect();
    let secrets = [
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60".to_string(),
        "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T".to_string(),
        "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=".to_string(),
        keypair,
        phrase.join(" "),
    ];
    for (n, s) in secrets.iter().enumerate() {
        let mut i = x402_intent(&format!("rt018-{n}"), 200_000);
        i["rationale"] = json!(format!("the key is {s}"));
        let (id, ..) = submit(d, i);
        let _ = d.call(&Request::Deny { request_id: id, reason: Some(format!("contains {s}")) });
    }
    let audit = std::fs::read_to_string(&d.audit_log).unwrap_or_default();
    let ledger = std::fs::read_to_string(d.state_dir.join("ledger.jsonl")).unwrap_or_default();
    let leaked: Vec<&String> =
        secrets.iter().filter(|s| audit.contains(s.as_str()) || ledger.contains(s.as_str())).collect();
    probe.check("no injected secret appears in the audit log or the ledger", leaked.is_empty(), format!("{leaked:?}"));
    let redactions = audit.matches("[REDACTED]").count();
    probe.check("the redaction filter replaced them", redactions >= 6, format!("{redactions} redactions"));
    probe.check(
        "the scan covered real records",
        audit.lines().count() > 10,
        format!("{} records", audit.lines().count()),
    );
    format!("{} injected secrets, 0 leaked, {redactions} redactions", secrets.len())
}
