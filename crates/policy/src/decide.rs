//! The decision (normative: docs/policy.md, "Decision").
//!
//! [`decide`] is a pure function of the canonical intent, the policy and a
//! [`Usage`] snapshot from the spend ledger (which the daemon takes under the
//! same lock in which it reserves the amount, so that concurrent requests
//! cannot both fit under a cap). It returns exactly one reason code and the
//! layer that decided, plus a trace of the checks it ran, which the audit
//! log keeps so that "why" can be answered later.
//!
//! Order of evaluation:
//!
//! 1. **Lifecycle**: an expired request is `EXPIRE_TTL_REACHED`.
//! 2. **Global defaults, hard constraints**: chain, asset, scheme, program,
//!    payment authority, denied payees, per-transaction and daily caps,
//!    velocity. A violation is a denial that no approval can lift, so these
//!    run first: a person's "yes" never authorises what the global policy
//!    forbids (fail closed).
//! 3. **User lane**: a request a person initiated is `ALLOW_USER_INITIATED`.
//! 4. **Context**: "ask me first" wins over every limit: a request that fits
//!    every limit still waits for a person (`PROMPT_CONTEXT_REQUIRED`). This
//!    is the seed's "absolute precedence" of the context layer.
//! 5. **User profile**: the autonomous envelope (per-asset limits, daily
//!    spend, velocity, approved payees; then high-risk confirmation for a new
//!    destination or a changed payment authority). Outside it: prompt.
//! 6. Otherwise `ALLOW_AUTO_POLICY_OK`.

use serde::Serialize;

use crate::codes::{Layer, Outcome, ReasonCode};
use crate::config::Policy;
use crate::intent::{Actor, CanonicalIntent};

/// What the spend ledger knows, for this intent's asset and payee, at the
/// moment of decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Unix seconds.
    pub now: u64,
    /// Reserved or spent today (UTC) in this asset, all lanes.
    pub spent_today: u128,
    /// Reserved or spent today in this asset by the agent lane.
    pub agent_spent_today: u128,
    /// Requests approved (either lane) in the last 60 seconds.
    pub approvals_last_minute: u32,
    /// Agent-lane requests approved in the last 60 seconds.
    pub agent_approvals_last_minute: u32,
    /// Whether this payee has been paid before.
    pub payee_known: bool,
    /// The payment authorities this payee has been paid through.
    pub payee_authorities: Vec<String>,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub code: ReasonCode,
    pub layer: Layer,
    /// Which rule, in words (no secret, no free text from the caller).
    pub detail: String,
    /// Every check that ran, in order, as `name=pass|fail`.
    pub trace: Vec<String>,
}

struct Run {
    trace: Vec<String>,
}

impl Run {
    /// Records a check; `Some` ends the evaluation with that decision.
    fn check(&mut self, name: &str, ok: bool, on_fail: (Outcome, ReasonCode, Layer)) -> Option<Decision> {
        self.trace.push(format!("{name}={}", if ok { "pass" } else { "fail" }));
        (!ok).then(|| Decision {
            outcome: on_fail.0,
            code: on_fail.1,
            layer: on_fail.2,
            detail: name.to_string(),
            trace: std::mem::take(&mut self.trace),
        })
    }

    fn end(mut self, outcome: Outcome, code: ReasonCode, layer: Layer, detail: &str) -> Decision {
        Decision { outcome, code, layer, detail: detail.to_string(), trace: std::mem::take(&mut self.trace) }
    }
}

macro_rules! check {
    ($run:expr, $name:expr, $ok:expr, $fail:expr) => {
        if let Some(d) = $run.check($name, $ok, $fail) {
            return d;
        }
    };
}

/// Decides `intent` under `policy` given `usage`.
pub fn decide(intent: &CanonicalIntent, policy: &Policy, usage: &Usage) -> Decision {
    use Layer::*;
    use Outcome::*;
    use ReasonCode::*;
    let g = &policy.global;
    let u = &policy.user;
    let mut run = Run { trace: Vec::new() };
    let amount = u128::from(intent.amount_atomic);
    let moves_value = intent.amount_atomic > 0;
    let global_deny = (Deny, DenyGlobalLimit, GlobalDefaults);
    let untrusted = (Deny, DenyUntrustedFacilitatorOrPayee, GlobalDefaults);

    check!(run, "lifecycle.not_expired", usage.now < intent.request_expiry, (Expire, ExpireTtlReached, Lifecycle));

    check!(run, "global.chain_allowed", g.allowed_chains.contains(&intent.chain_id), global_deny);
    let caps = g.assets.get(&intent.asset_id);
    if moves_value || !intent.asset_id.is_empty() {
        check!(run, "global.asset_allowed", caps.is_some(), global_deny);
    }
    if let Some(x) = &intent.x402 {
        check!(
            run,
            "global.scheme_allowed",
            g.allowed_schemes.contains(&x.scheme_id),
            (Deny, DenyUnapprovedScheme, GlobalDefaults)
        );
        let program_ok = x.program_id.as_ref().is_none_or(|p| g.allowed_programs.contains(p));
        check!(run, "global.program_allowed", program_ok, global_deny);
        check!(run, "global.authority_trusted", g.trusted_authorities.contains(&x.payment_authority), untrusted);
    }
    check!(run, "global.payee_not_denied", !g.denied_payees.contains(&intent.payee), untrusted);
    if let Some(caps) = caps {
        check!(run, "global.per_tx_cap", amount <= u128::from(caps.per_tx_cap), global_deny);
        check!(run, "global.daily_cap", usage.spent_today + amount <= u128::from(caps.daily_cap), global_deny);
    }
    check!(run, "global.velocity", usage.approvals_last_minute < g.max_requests_per_minute, global_deny);

    if intent.actor == Actor::User {
        return run.end(ApproveUserPath, AllowUserInitiated, Context, "user-initiated request");
    }

    check!(
        run,
        "context.no_approval_required",
        !intent.context_requires_approval,
        (Prompt, PromptContextRequired, Context)
    );

    let over = (Prompt, PromptUserLimitExceeded, UserProfile);
    if moves_value {
        let limits = u.assets.get(&intent.asset_id);
        check!(run, "user.asset_has_limit", limits.is_some(), over);
        if let Some(l) = limits {
            check!(run, "user.per_tx_limit", amount <= u128::from(l.per_tx_limit), over);
            check!(run, "user.daily_limit", usage.agent_spent_today + amount <= u128::from(l.daily_limit), over);
        }
    }
    check!(run, "user.velocity", usage.agent_approvals_last_minute < u.max_requests_per_minute, over);
    if !intent.payee.is_empty() {
        let approved = u.approved_payees.is_empty() || u.approved_payees.contains(&intent.payee);
        check!(run, "user.payee_approved", approved, over);
        let risky = (Prompt, PromptHighRiskConfirmation, UserProfile);
        check!(run, "user.known_destination", !u.confirm_new_destination || usage.payee_known, risky);
        if let (Some(a), true) = (intent.settlement_authority(), usage.payee_known) {
            let same = usage.payee_authorities.iter().any(|p| p == a);
            check!(run, "user.same_authority", !u.confirm_authority_change || same, risky);
        }
    }
    run.end(AutoApprove, AllowAutoPolicyOk, UserProfile, "inside the autonomous envelope")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::example;
    use serde_json::{Value, json};

    fn intent(edit: impl FnOnce(&mut Value)) -> CanonicalIntent {
        let mut j = json!({
            "actor": "agent", "action": "x402_payment", "key": "agent-hot",
            "chain_id": "solana:mainnet", "asset_id": "usdc", "amount_atomic": "100000",
            "max_amount_atomic": "9000000", "payee": "MerchantPayee111", "rationale": "api call",
            "idempotency_key": "k1", "request_expiry": 2_000, "message_hex": "01",
            "x402": {"scheme_id": "v2-solana-exact", "payment_authority": "https://facilitator.example/settle"},
            "solana": {"fee_payer": "EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd",
                       "recent_blockhash": "5Tx8F3jgSHx21CbtjwmdaKPLM5tWmreWAnPrbqHomSJF",
                       "last_valid_block_height": 1000}
        });
        edit(&mut j);
        CanonicalIntent::from_json(&j).unwrap()
    }

    fn known() -> Usage {
        Usage {
            now: 1_000,
            payee_known: true,
            payee_authorities: vec!["EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd".into()],
            ..Usage::default()
        }
    }

    /// Seed 002's decision table rows 1-8, row for row. Rows 9 and 10 are
    /// the lifecycle's (keywardd's `lifecycle` tests); row 10's expiry at
    /// decision time is checked here too.
    #[test]
    fn the_decision_table_row_by_row() {
        let p = example();
        let transfer = |j: &mut Value| {
            j["action"] = json!("transfer");
            j.as_object_mut().unwrap().remove("x402");
        };
        #[allow(clippy::type_complexity)]
        let rows: Vec<(u8, Box<dyn Fn(&mut Value)>, Usage, Outcome, &str)> = vec![
            (1, Box::new(|_| {}), known(), Outcome::AutoApprove, "ALLOW_AUTO_POLICY_OK"),
            (
                2,
                Box::new(|j| j["context_requires_approval"] = json!(true)),
                known(),
                Outcome::Prompt,
                "PROMPT_CONTEXT_REQUIRED",
            ),
            (
                3,
                Box::new(|j| j["amount_atomic"] = json!("400000")),
                known(),
                Outcome::Prompt,
                "PROMPT_USER_LIMIT_EXCEEDED",
            ),
            (4, Box::new(|_| {}), Usage { spent_today: 4_950_000, ..known() }, Outcome::Deny, "DENY_GLOBAL_LIMIT"),
            (
                5,
                Box::new(|j| j["x402"]["payment_authority"] = json!("https://rogue.example")),
                known(),
                Outcome::Deny,
                "DENY_UNTRUSTED_FACILITATOR_OR_PAYEE",
            ),
            (6, Box::new(|j| j["actor"] = json!("user")), known(), Outcome::ApproveUserPath, "ALLOW_USER_INITIATED"),
            (
                7,
                Box::new(move |j| {
                    transfer(j);
                    j["context_requires_approval"] = json!(true)
                }),
                known(),
                Outcome::Prompt,
                "PROMPT_CONTEXT_REQUIRED",
            ),
            (8, Box::new(transfer), known(), Outcome::AutoApprove, "ALLOW_AUTO_POLICY_OK"),
            (10, Box::new(|_| {}), Usage { now: 2_000, ..known() }, Outcome::Expire, "EXPIRE_TTL_REACHED"),
        ];
        for (row, edit, usage, outcome, code) in rows {
            let mut j = Value::Null;
            let i = intent(|v| {
                edit(v);
                j = v.clone();
            });
            let d = decide(&i, &p, &usage);
            assert_eq!((d.outcome, d.code.as_str()), (outcome, code), "row {row}: {d:?}");
            // The same inputs give the same decision.
            assert_eq!(decide(&i, &p, &usage), d, "row {row} is deterministic");
        }
    }

    /// RT-001: context approval beats limits. Every limit is satisfied, the
    /// request would auto-approve, but the context asks for a person.
    #[test]
    fn context_approval_beats_limits() {
        let p = example();
        let d = decide(&intent(|j| j["amount_atomic"] = json!("1")), &p, &known());
        assert_eq!(d.code, ReasonCode::AllowAutoPolicyOk);
        let d = decide(
            &intent(|j| {
                j["amount_atomic"] = json!("1");
                j["context_requires_approval"] = json!(true)
            }),
            &p,
            &known(),
        );
        assert_eq!((d.outcome, d.code, d.layer), (Outcome::Prompt, ReasonCode::PromptContextRequired, Layer::Context));
    }

    /// RT-002/RT-003: user limits prompt, global caps deny, and a request
    /// over both is denied (the global cap is not an approvable limit).
    #[test]
    fn user_limits_prompt_and_global_caps_deny() {
        let p = example();
        let cases = [
            ("300001", Usage::default(), ReasonCode::PromptUserLimitExceeded, "user.per_tx_limit"),
            (
                "300000",
                Usage { agent_spent_today: 800_000, ..Usage::default() },
                ReasonCode::PromptUserLimitExceeded,
                "user.daily_limit",
            ),
            ("1000001", Usage::default(), ReasonCode::DenyGlobalLimit, "global.per_tx_cap"),
            (
                "1000",
                Usage { spent_today: 4_999_001, ..Usage::default() },
                ReasonCode::DenyGlobalLimit,
                "global.daily_cap",
            ),
            (
                "1000",
                Usage { approvals_last_minute: 600, ..Usage::default() },
                ReasonCode::DenyGlobalLimit,
                "global.velocity",
            ),
            (
                "1000",
                Usage { agent_approvals_last_minute: 60, ..Usage::default() },
                ReasonCode::PromptUserLimitExceeded,
                "user.velocity",
            ),
        ];
        for (amount, usage, code, detail) in cases {
            let usage = Usage { now: 1_000, payee_known: true, payee_authorities: known().payee_authorities, ..usage };
            let d = decide(&intent(|j| j["amount_atomic"] = json!(amount)), &p, &usage);
            assert_eq!((d.code, d.detail.as_str()), (code, detail), "{amount}");
            assert!(d.trace.last().unwrap().ends_with("=fail"));
        }
        // Context asks, and the global cap is exceeded: still a denial.
        let d = decide(
            &intent(|j| {
                j["amount_atomic"] = json!("2000000");
                j["max_amount_atomic"] = json!("2000000");
                j["context_requires_approval"] = json!(true)
            }),
            &p,
            &known(),
        );
        assert_eq!(d.code, ReasonCode::DenyGlobalLimit);
    }

    /// RT-008/RT-009 at the policy layer.
    #[test]
    fn untrusted_authorities_and_unapproved_schemes_are_denied() {
        let p = example();
        let d = decide(&intent(|j| j["x402"]["scheme_id"] = json!("v3-evm-permit")), &p, &known());
        assert_eq!((d.code, d.layer), (ReasonCode::DenyUnapprovedScheme, Layer::GlobalDefaults));
        let d = decide(
            &intent(|j| j["x402"]["payment_authority"] = json!("https://facilitator.example.evil")),
            &p,
            &known(),
        );
        assert_eq!(d.code, ReasonCode::DenyUntrustedFacilitatorOrPayee);
        let d = decide(&intent(|j| j["payee"] = json!("Blocked111")), &p, &known());
        assert_eq!(d.code, ReasonCode::DenyUntrustedFacilitatorOrPayee);
        // A user-initiated request is held to the same trust rules.
        let d = decide(
            &intent(|j| {
                j["actor"] = json!("user");
                j["x402"]["scheme_id"] = json!("v3-evm-permit")
            }),
            &p,
            &known(),
        );
        assert_eq!(d.code, ReasonCode::DenyUnapprovedScheme);
    }

    #[test]
    fn new_destinations_and_changed_authorities_need_confirmation() {
        let p = example();
        let d = decide(&intent(|_| {}), &p, &Usage { now: 1_000, ..Usage::default() });
        assert_eq!((d.code, d.detail.as_str()), (ReasonCode::PromptHighRiskConfirmation, "user.known_destination"));
        let moved = Usage { payee_authorities: vec!["https://old.example".into()], ..known() };
        let d = decide(&intent(|_| {}), &p, &moved);
        assert_eq!((d.code, d.detail.as_str()), (ReasonCode::PromptHighRiskConfirmation, "user.same_authority"));
    }
}
