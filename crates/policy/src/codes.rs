//! Reason codes and policy layers (normative: docs/policy.md).
//!
//! The deny/expire codes are seed 002's failure-code taxonomy; the allow and
//! prompt codes are its decision table's. The list is append-only: a code is
//! never renamed or removed, because audit logs outlive releases.

use serde::{Deserialize, Serialize};

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Inside the autonomous envelope: sign without asking.
    AutoApprove,
    /// The human asked for it (user lane): sign.
    ApproveUserPath,
    /// Valid, but a person must approve first (`AwaitUserApproval`).
    Prompt,
    /// A hard constraint is violated.
    Deny,
    /// The request's time ran out.
    Expire,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::AutoApprove => "auto_approve",
            Outcome::ApproveUserPath => "approve_user_path",
            Outcome::Prompt => "prompt",
            Outcome::Deny => "deny",
            Outcome::Expire => "expire",
        }
    }

    /// Whether the request may proceed to signing without a person.
    pub fn is_allow(self) -> bool {
        matches!(self, Outcome::AutoApprove | Outcome::ApproveUserPath)
    }
}

/// The layer whose rule decided (precedence: context > user profile >
/// global defaults; the lifecycle decides transitions and expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Context,
    UserProfile,
    GlobalDefaults,
    Lifecycle,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Context => "context",
            Layer::UserProfile => "user_profile",
            Layer::GlobalDefaults => "global_defaults",
            Layer::Lifecycle => "lifecycle",
        }
    }
}

macro_rules! codes {
    ($($(#[$m:meta])* $v:ident = $s:literal,)*) => {
        /// One reason code. Every decision carries exactly one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ReasonCode { $($(#[$m])* $v,)* }

        impl ReasonCode {
            /// Every code, in the order they were added.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$v,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ReasonCode::$v => $s,)* }
            }

            pub fn parse(s: &str) -> Option<ReasonCode> {
                match s { $($s => Some(ReasonCode::$v),)* _ => None }
            }
        }
    };
}

codes! {
    // The decision table's allow and prompt codes.
    AllowAutoPolicyOk = "ALLOW_AUTO_POLICY_OK",
    AllowUserInitiated = "ALLOW_USER_INITIATED",
    PromptContextRequired = "PROMPT_CONTEXT_REQUIRED",
    PromptUserLimitExceeded = "PROMPT_USER_LIMIT_EXCEEDED",
    // The seed's failure-code taxonomy.
    DenyGlobalLimit = "DENY_GLOBAL_LIMIT",
    DenyUserPolicy = "DENY_USER_POLICY",
    DenyContextApprovalRequired = "DENY_CONTEXT_APPROVAL_REQUIRED",
    DenyUntrustedFacilitatorOrPayee = "DENY_UNTRUSTED_FACILITATOR_OR_PAYEE",
    DenyUnapprovedScheme = "DENY_UNAPPROVED_SCHEME",
    DenyReplay = "DENY_REPLAY",
    DenyAeadIntegrity = "DENY_AEAD_INTEGRITY",
    DenyInvalidTransition = "DENY_INVALID_TRANSITION",
    DenyInvalidX402Intent = "DENY_INVALID_X402_INTENT",
    DenyTpmUnavailable = "DENY_TPM_UNAVAILABLE",
    DenyHandshakeIntegrity = "DENY_HANDSHAKE_INTEGRITY",
    DenyStrictModeFallback = "DENY_STRICT_MODE_FALLBACK",
    ExpireTtlReached = "EXPIRE_TTL_REACHED",
    // Appended by keyward (docs/policy.md says why each exists).
    /// A new destination or a changed payment authority for a known payee.
    PromptHighRiskConfirmation = "PROMPT_HIGH_RISK_CONFIRMATION",
    /// A person refused the request.
    DenyUserRejected = "DENY_USER_REJECTED",
    /// Signing failed after approval (key missing, TPM, wrong key kind).
    FailSigning = "FAIL_SIGNING",
    /// The key's kind may not sign this action (an opaque `sign` with a
    /// value-bearing key, a payment with a raw or legacy key).
    DenyKeyKindMismatch = "DENY_KEY_KIND_MISMATCH",
    /// No `[[grant]]` gives this peer this key for this action.
    DenyKeyNotGranted = "DENY_KEY_NOT_GRANTED",
    /// The bytes a caller sent (or found at signing time) are not the
    /// transaction the intent decides.
    DenyTransactionMismatch = "DENY_TRANSACTION_MISMATCH",
    /// The fee payer is a key this signer holds, or not a trusted one.
    DenyFeePayerNotAllowed = "DENY_FEE_PAYER_NOT_ALLOWED",
    /// The network, asset or mint is not in the policy's registry.
    DenyAssetNotRegistered = "DENY_ASSET_NOT_REGISTERED",
    /// The compute-unit limit or price exceeds the network's caps.
    DenyComputeBudgetExceeded = "DENY_COMPUTE_BUDGET_EXCEEDED",
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ReasonCode::parse(&s).ok_or_else(|| serde::de::Error::custom("unknown reason code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's taxonomy, verbatim: removing or renaming one fails here.
    #[test]
    fn the_seed_taxonomy_is_present_verbatim() {
        for s in [
            "DENY_GLOBAL_LIMIT",
            "DENY_USER_POLICY",
            "DENY_CONTEXT_APPROVAL_REQUIRED",
            "DENY_UNTRUSTED_FACILITATOR_OR_PAYEE",
            "DENY_UNAPPROVED_SCHEME",
            "DENY_REPLAY",
            "DENY_AEAD_INTEGRITY",
            "DENY_INVALID_TRANSITION",
            "DENY_INVALID_X402_INTENT",
            "DENY_TPM_UNAVAILABLE",
            "DENY_HANDSHAKE_INTEGRITY",
            "DENY_STRICT_MODE_FALLBACK",
            "EXPIRE_TTL_REACHED",
            "ALLOW_AUTO_POLICY_OK",
            "PROMPT_CONTEXT_REQUIRED",
            "PROMPT_USER_LIMIT_EXCEEDED",
            "ALLOW_USER_INITIATED",
        ] {
            assert_eq!(ReasonCode::parse(s).map(ReasonCode::as_str), Some(s));
        }
        let mut seen = std::collections::HashSet::new();
        assert!(ReasonCode::ALL.iter().all(|c| seen.insert(c.as_str())), "codes are unique");
    }
}
