//! The request lifecycle as a finite-state machine (`rust-fsm`), the ten
//! states of seed 002:
//!
//! ```text
//! Received -> PolicyEvaluated -> AwaitUserApproval -> Approved -> Signing -> Submitted -> Settled
//!                  |                    |                 |           |          |
//!                  '--> Denied <--------'                 |           '--> Failed <-'
//!            (any non-terminal but Signing/Submitted) --> Expired
//! ```
//!
//! (The generated diagram is docs/diagrams/request-lifecycle.mmd.) The
//! guards the seed requires are structural: `Signing` is reachable only
//! from `Approved`, and `Approved` only through `AutoApprove` (taken only
//! for an allow decision) or `UserApprove` (taken only for an approval bound
//! to the intent hash). Any other input is refused with
//! `DENY_INVALID_TRANSITION` and the state does not change; the caller
//! records an audit event (RT-007). The machine holds states only: no key,
//! no intent, nothing secret.

use rust_fsm::*;

state_machine! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub request(Received)

    Received => {
        Evaluate => PolicyEvaluated,
        Expire => Expired,
    },
    PolicyEvaluated => {
        AutoApprove => Approved,
        RequireApproval => AwaitUserApproval,
        Deny => Denied,
        Expire => Expired,
    },
    AwaitUserApproval => {
        UserApprove => Approved,
        UserDeny => Denied,
        Expire => Expired,
    },
    Approved => {
        BeginSigning => Signing,
        Expire => Expired,
    },
    Signing => {
        Signed => Submitted,
        Fail => Failed,
    },
    Submitted => {
        Settle => Settled,
        Fail => Failed,
    },
}

pub use request::{Input, State};

/// Every state, in lifecycle order.
pub const STATES: [State; 10] = [
    State::Received,
    State::PolicyEvaluated,
    State::AwaitUserApproval,
    State::Approved,
    State::Signing,
    State::Submitted,
    State::Settled,
    State::Denied,
    State::Expired,
    State::Failed,
];

/// Every input.
pub const INPUTS: [Input; 11] = [
    Input::Evaluate,
    Input::AutoApprove,
    Input::RequireApproval,
    Input::Deny,
    Input::Expire,
    Input::UserApprove,
    Input::UserDeny,
    Input::BeginSigning,
    Input::Signed,
    Input::Fail,
    Input::Settle,
];

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Received => "Received",
        State::PolicyEvaluated => "PolicyEvaluated",
        State::AwaitUserApproval => "AwaitUserApproval",
        State::Approved => "Approved",
        State::Signing => "Signing",
        State::Submitted => "Submitted",
        State::Settled => "Settled",
        State::Denied => "Denied",
        State::Expired => "Expired",
        State::Failed => "Failed",
    }
}

pub fn input_name(i: Input) -> &'static str {
    match i {
        Input::Evaluate => "Evaluate",
        Input::AutoApprove => "AutoApprove",
        Input::RequireApproval => "RequireApproval",
        Input::Deny => "Deny",
        Input::Expire => "Expire",
        Input::UserApprove => "UserApprove",
        Input::UserDeny => "UserDeny",
        Input::BeginSigning => "BeginSigning",
        Input::Signed => "Signed",
        Input::Fail => "Fail",
        Input::Settle => "Settle",
    }
}

/// A refused transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: State,
    pub input: Input,
}

impl std::fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DENY_INVALID_TRANSITION: {} does not accept {}", state_name(self.from), input_name(self.input))
    }
}

/// One request's lifecycle.
#[derive(Debug)]
pub struct Lifecycle(request::StateMachine);

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle(request::StateMachine::new())
    }
}

impl Lifecycle {
    /// A machine already in `state` (rebuilt from the ledger at start-up),
    /// reached by replaying the unique path to it.
    pub fn at(state: State) -> Lifecycle {
        let path: &[Input] = match state {
            State::Received => &[],
            State::PolicyEvaluated => &[Input::Evaluate],
            State::AwaitUserApproval => &[Input::Evaluate, Input::RequireApproval],
            State::Approved => &[Input::Evaluate, Input::AutoApprove],
            State::Signing => &[Input::Evaluate, Input::AutoApprove, Input::BeginSigning],
            State::Submitted => &[Input::Evaluate, Input::AutoApprove, Input::BeginSigning, Input::Signed],
            State::Settled => &[Input::Evaluate, Input::AutoApprove, Input::BeginSigning, Input::Signed, Input::Settle],
            State::Denied => &[Input::Evaluate, Input::Deny],
            State::Expired => &[Input::Expire],
            State::Failed => &[Input::Evaluate, Input::AutoApprove, Input::BeginSigning, Input::Fail],
        };
        let mut l = Lifecycle::default();
        for i in path {
            let _ = l.0.consume(i);
        }
        l
    }

    pub fn state(&self) -> State {
        *self.0.state()
    }

    /// Applies `input`, or refuses it and leaves the state as it was.
    pub fn step(&mut self, input: Input) -> Result<State, InvalidTransition> {
        let from = self.state();
        self.0.consume(&input).map_err(|_| InvalidTransition { from, input })?;
        Ok(self.state())
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self.state(), State::Settled | State::Denied | State::Expired | State::Failed)
    }
}

/// The machine's transition table, read from the machine itself.
pub fn transitions() -> Vec<(State, Input, State)> {
    let mut out = Vec::new();
    for s in STATES {
        for i in INPUTS {
            let mut l = Lifecycle::at(s);
            debug_assert_eq!(l.state(), s);
            if let Ok(to) = l.step(i)
                && !out.contains(&(s, i, to))
            {
                out.push((s, i, to));
            }
        }
    }
    out
}

/// The Mermaid `stateDiagram-v2` of the machine.
pub fn mermaid() -> String {
    let mut s = String::from(
        "%% Generated by `keywardd diagrams` from crates/signer/src/daemon/lifecycle.rs. Do not edit.\n\
         stateDiagram-v2\n    [*] --> Received\n",
    );
    for (from, input, to) in transitions() {
        s.push_str(&format!("    {} --> {}: {}\n", state_name(from), state_name(to), input_name(input)));
    }
    for t in [State::Settled, State::Denied, State::Expired, State::Failed] {
        s.push_str(&format!("    {} --> [*]\n", state_name(t)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No `Signing` without `Approved`: the only edge into Signing leaves
    /// Approved, and the only edges into Approved are the two approvals.
    #[test]
    fn signing_is_reachable_only_through_approved() {
        let t = transitions();
        let into =
            |target: State| t.iter().filter(|(_, _, to)| *to == target).map(|(f, i, _)| (*f, *i)).collect::<Vec<_>>();
        assert_eq!(into(State::Signing), vec![(State::Approved, Input::BeginSigning)]);
        assert_eq!(
            into(State::Approved),
            vec![(State::PolicyEvaluated, Input::AutoApprove), (State::AwaitUserApproval, Input::UserApprove)]
        );
    }

    /// RT-007 at the machine: forcing `Signing` (or any other state) from a
    /// state that does not allow it is refused and changes nothing.
    #[test]
    fn every_invalid_transition_is_refused_and_changes_nothing() {
        let valid = transitions();
        let mut refused = 0;
        for s in STATES {
            for i in INPUTS {
                let mut l = Lifecycle::at(s);
                match l.step(i) {
                    Ok(to) => assert!(valid.contains(&(s, i, to))),
                    Err(e) => {
                        assert_eq!((e.from, e.input, l.state()), (s, i, s));
                        assert!(e.to_string().starts_with("DENY_INVALID_TRANSITION"));
                        refused += 1;
                    }
                }
            }
        }
        assert!(refused > 80, "{refused}");
        for s in [State::Received, State::PolicyEvaluated, State::AwaitUserApproval, State::Denied, State::Expired] {
            assert!(Lifecycle::at(s).step(Input::BeginSigning).is_err(), "{s:?} -> Signing");
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for s in [State::Settled, State::Denied, State::Expired, State::Failed] {
            let l = Lifecycle::at(s);
            assert!(l.is_terminal());
            for i in INPUTS {
                assert!(Lifecycle::at(s).step(i).is_err());
            }
        }
    }
}
