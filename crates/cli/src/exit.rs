//! Exit statuses of the intent commands, in one place (README, "Exit
//! statuses"; `keyward --help`).
//!
//! The rule: status 0 means the thing asked for happened, so that
//! `keyward sign intent.json && broadcast` can only broadcast a signature.
//! Every other outcome the signer answers has its own status:
//!
//! | status | `sign` | `submit`, `status ID` | `preview` |
//! | --- | --- | --- | --- |
//! | 0 | signed (the answer carries the signature) | allowed: signed, or decided allow | would be allowed |
//! | 1 | error: connection, input, protocol, the signer's own failure | same | same |
//! | 2 | denied by the policy, or rejected by a person | same | would be denied |
//! | 3 | expired (before or while waiting for a person) | same | would expire |
//! | 4 | not decided yet: a person must approve, or `--wait` ran out | same | a person would be asked |
//! | 5 | signing failed in the signer (`Failed`, e.g. `FAIL_SIGNING`) | same | — |
//!
//! `approvals approve` reports the outcome of the approval like `sign`
//! (0 signed, 5 signing failed). Commands that only record or read
//! (`ping`, `approvals list|show|deny`, `settle`, `key …`, `status`
//! without an id) exit 0 once the signer has answered. A refusal the signer
//! answers with an error code rather than a decision maps by the code's
//! class: `DENY_*` 2, `EXPIRE_*` 3, `FAIL_*` 5, anything else 1.
//!
//! `keyward x402 fetch` keeps its own table (docs/x402.md, "Exit
//! statuses"): 0 delivered, 1 error, 2 refused, 3 not paid, 4 HTTP error.
//! 0, 1 and 2 mean the same there; 3 and 4 are fetch's own.

use ipc::api::Response;

/// Signed, allowed, or done (for commands that only record or read).
pub(crate) const OK: u8 = 0;
/// Connection, input or protocol error, or the signer failed to answer
/// the request (`keyward: CODE: message` on stderr).
pub(crate) const ERROR: u8 = 1;
/// Denied by the policy or rejected by a person: nothing was signed.
pub(crate) const DENIED: u8 = 2;
/// The request expired: nothing was signed.
pub(crate) const EXPIRED: u8 = 3;
/// Not decided yet: the request waits for a person (or `--wait` ran out).
pub(crate) const PENDING: u8 = 4;
/// Allowed, but signing failed in the signer: nothing usable was signed.
pub(crate) const SIGNING_FAILED: u8 = 5;

/// The table as `--help` shows it under `sign`, `submit` and `keyward`.
pub(crate) const HELP: &str = "\
Exit status:
  0  sign, approvals approve: signed. submit, status ID: allowed (signed, or decided
     allow). preview: would be allowed. Other commands: done.
  1  error: connection, input, protocol, the signer's own failure
  2  denied by the policy or rejected by a person; a refusal by the signer (DENY_*)
  3  expired (EXPIRE_*)
  4  not decided yet: a person must approve, or --wait ran out
  5  signing failed in the signer (FAIL_*)
x402 fetch has its own: 0 delivered, 1 error, 2 refused, 3 not paid, 4 HTTP error.
kes, vault, migrate, init: the helper's own status (2 if it is not installed).";

/// What the command asked for, which decides what counts as success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// A signature (`sign`, `approvals approve`): 0 only with one in hand.
    Signature,
    /// An allowed request (`submit`, `status ID`): signed, or decided allow.
    Allowed,
    /// What the signer would decide (`preview`).
    Preview,
    /// An answer (everything else): 0 once the signer answers.
    Answer,
}

/// Whether a request in `state` may still change without its caller
/// (a person deciding, or signing under way): a `--wait` keeps polling.
pub(crate) fn undecided(state: &str) -> bool {
    matches!(state, "Received" | "PolicyEvaluated" | "AwaitUserApproval" | "Approved" | "Signing")
}

/// The status of a lifecycle state (docs/policy.md; the signer's
/// `lifecycle::state_name`). An unknown state is an error, never 0.
fn for_state(asked: Asked, state: &str, signed: bool) -> u8 {
    match state {
        "Denied" => DENIED,
        "Expired" => EXPIRED,
        "Failed" => SIGNING_FAILED,
        // Signed: a `sign` without the signature in hand is not a success.
        "Submitted" | "Settled" if asked == Asked::Signature && !signed => SIGNING_FAILED,
        "Submitted" | "Settled" => OK,
        // Allowed (by the policy or a person), signing not finished: enough
        // for `submit`, not for `sign`.
        "Approved" | "Signing" if asked == Asked::Allowed => OK,
        s if undecided(s) => PENDING,
        _ => ERROR,
    }
}

/// The exit status for the signer's answer to a command.
pub(crate) fn for_response(asked: Asked, response: &Response) -> u8 {
    match (asked, response) {
        (Asked::Answer, _) => OK,
        (Asked::Preview, Response::Decision { decision, .. }) => match decision.as_str() {
            "auto_approve" | "approve_user_path" => OK,
            "deny" => DENIED,
            "expire" => EXPIRED,
            "prompt" => PENDING,
            _ => ERROR,
        },
        // A refusal at admission (no request recorded) is `Denied` too.
        (_, Response::Decision { state, signature, .. }) => for_state(asked, state, signature.is_some()),
        // A decision was asked for and something else came back.
        _ => ERROR,
    }
}

/// The exit status for a refusal the signer answered with an error code
/// (an API error record); transport and local errors are always [`ERROR`].
pub(crate) fn for_refusal(code: &str) -> u8 {
    if code.starts_with("DENY_") {
        DENIED
    } else if code.starts_with("EXPIRE_") {
        EXPIRED
    } else if code.starts_with("FAIL_") {
        SIGNING_FAILED
    } else {
        ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(request_id: Option<&str>, decision: &str, state: &str, signature: Option<&str>) -> Response {
        Response::Decision {
            request_id: request_id.map(str::to_owned),
            intent_hash: None,
            decision: decision.into(),
            state: state.into(),
            reason_code: String::new(),
            layer: String::new(),
            policy_id: String::new(),
            detail: String::new(),
            signature: signature.map(str::to_owned),
            public_key: None,
            transaction: None,
        }
    }

    #[test]
    fn only_a_signature_in_hand_is_success_for_sign() {
        let id = Some("r1");
        let cases = [
            (decision(id, "auto_approve", "Submitted", Some("aa")), OK),
            (decision(id, "prompt", "Submitted", Some("aa")), OK),
            (decision(id, "auto_approve", "Settled", Some("aa")), OK),
            (decision(id, "auto_approve", "Submitted", None), SIGNING_FAILED),
            (decision(id, "auto_approve", "Failed", None), SIGNING_FAILED),
            (decision(id, "auto_approve", "Signing", None), PENDING),
            (decision(id, "prompt", "AwaitUserApproval", None), PENDING),
            (decision(id, "prompt", "Denied", None), DENIED),
            (decision(id, "deny", "Denied", None), DENIED),
            (decision(None, "deny", "Denied", None), DENIED),
            (decision(id, "expire", "Expired", None), EXPIRED),
            (decision(id, "prompt", "Expired", None), EXPIRED),
            (decision(id, "auto_approve", "SomethingNew", Some("aa")), ERROR),
            (Response::Pending { requests: vec![] }, ERROR),
        ];
        for (r, want) in cases {
            assert_eq!(for_response(Asked::Signature, &r), want, "{r:?}");
        }
    }

    #[test]
    fn submit_succeeds_once_allowed_and_preview_reports_the_decision() {
        let id = Some("r1");
        assert_eq!(for_response(Asked::Allowed, &decision(id, "auto_approve", "Signing", None)), OK);
        assert_eq!(for_response(Asked::Allowed, &decision(id, "prompt", "Approved", None)), OK);
        assert_eq!(for_response(Asked::Signature, &decision(id, "prompt", "Approved", None)), PENDING);
        assert_eq!(for_response(Asked::Allowed, &decision(id, "prompt", "AwaitUserApproval", None)), PENDING);
        assert_eq!(for_response(Asked::Allowed, &decision(id, "auto_approve", "Failed", None)), SIGNING_FAILED);
        for (d, want) in [("auto_approve", OK), ("approve_user_path", OK), ("deny", DENIED), ("expire", EXPIRED)] {
            assert_eq!(for_response(Asked::Preview, &decision(None, d, "PolicyEvaluated", None)), want);
        }
        assert_eq!(for_response(Asked::Preview, &decision(None, "prompt", "PolicyEvaluated", None)), PENDING);
        // Commands that record or read succeed on any answer.
        assert_eq!(for_response(Asked::Answer, &decision(id, "prompt", "Denied", None)), OK);
    }

    #[test]
    fn refusals_map_by_the_class_of_their_code() {
        assert_eq!(for_refusal("DENY_ROLE_NOT_PERMITTED"), DENIED);
        assert_eq!(for_refusal("DENY_INVALID_TRANSITION"), DENIED);
        assert_eq!(for_refusal("EXPIRE_TTL_REACHED"), EXPIRED);
        assert_eq!(for_refusal("FAIL_SIGNING"), SIGNING_FAILED);
        assert_eq!(for_refusal("API_REQUEST_NOT_FOUND"), ERROR);
        assert_eq!(for_refusal("KW_AUDIT_WRITE_FAILED"), ERROR);
    }

    #[test]
    fn the_statuses_are_distinct_and_x402_keeps_its_shared_meanings() {
        let all = [OK, ERROR, DENIED, EXPIRED, PENDING, SIGNING_FAILED];
        assert_eq!(all, [0, 1, 2, 3, 4, 5]);
        use crate::x402_cmd::exit as x402;
        assert_eq!((x402::DELIVERED, x402::ERROR, x402::REFUSED), (OK, ERROR, DENIED));
    }
}
