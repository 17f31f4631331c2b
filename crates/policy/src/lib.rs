//! Intents, the decision table and reason codes: a pure, deterministic
//! function from (intent, policy, context) to a decision with exactly one
//! reason code. No I/O, no keys.
//!
//! The engine arrives with the policy issue.
#![forbid(unsafe_code)]
