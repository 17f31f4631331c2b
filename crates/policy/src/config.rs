//! The policy file (TOML; normative: docs/policy.md, "Policy file").
//!
//! Parsing is strict: unknown keys are errors, a negative limit is an error
//! (limits are unsigned), and so are inconsistent limits (a per-transaction
//! limit above the daily one, a user limit above the global cap). Settings
//! that are legal but unsafe produce warnings; under the strict profile a
//! warning is an error, so a strict signer never runs with them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::intent::{KNOWN_SCHEMES, normalize_authority};

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KW_POLICY_INVALID: {}", self.0)
    }
}

impl std::error::Error for PolicyError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Warnings are errors.
    Strict,
    /// Warnings are reported and the policy is used.
    Compat,
}

/// Per-asset global caps, in the asset's atomic units.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetCaps {
    pub per_tx_cap: u64,
    pub daily_cap: u64,
}

/// Per-asset user limits, in the asset's atomic units.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetLimits {
    pub per_tx_limit: u64,
    pub daily_limit: u64,
}

/// Global defaults: hard limits nobody's approval can lift.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Approved requests per minute, all lanes.
    pub max_requests_per_minute: u32,
    pub allowed_chains: BTreeSet<String>,
    /// The allowed assets and their caps; an asset not listed is refused.
    pub assets: BTreeMap<String, AssetCaps>,
    pub allowed_schemes: BTreeSet<String>,
    /// Programs an x402 payment may name; empty means it may name none.
    #[serde(default)]
    pub allowed_programs: BTreeSet<String>,
    /// Facilitator endpoints or merchant origins trusted for x402.
    #[serde(default)]
    pub trusted_authorities: BTreeSet<String>,
    /// Payees no request may pay.
    #[serde(default)]
    pub denied_payees: BTreeSet<String>,
}

/// The user profile: the autonomous envelope. Outside it, a person decides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Auto-approved agent requests per minute.
    pub max_requests_per_minute: u32,
    /// Per-asset limits; an asset without one is never auto-approved.
    #[serde(default)]
    pub assets: BTreeMap<String, AssetLimits>,
    /// When non-empty, the only payees an agent may pay without a prompt.
    #[serde(default)]
    pub approved_payees: BTreeSet<String>,
    /// Prompt before the first payment to a payee.
    pub confirm_new_destination: bool,
    /// Prompt when a known payee is paid through a different authority.
    pub confirm_authority_change: bool,
    /// How long a prompted request waits for a person, in seconds.
    pub approval_ttl_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy_id: String,
    profile: Profile,
    global: Global,
    user: User,
    /// The Solana network and asset registry (docs/x402.md).
    #[serde(default)]
    networks: BTreeMap<String, crate::solana::WireNetwork>,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Recorded with every decision.
    pub id: String,
    pub profile: Profile,
    pub global: Global,
    pub user: User,
    /// Networks, assets (mint, token program, decimals) and compute caps.
    pub registry: crate::solana::Registry,
    /// Unsafe but legal settings (empty under the strict profile).
    pub warnings: Vec<String>,
}

impl Policy {
    /// Parses and validates a policy file's text.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let f: File = toml::from_str(text).map_err(|e| {
            // toml's message names the key and line; it never echoes more
            // than the offending line of a file the operator wrote.
            PolicyError(
                e.message().to_string() + &e.span().map(|s| format!(" (at byte {})", s.start)).unwrap_or_default(),
            )
        })?;
        let File { policy_id, profile, mut global, user, networks } = f;
        let err = |m: String| Err(PolicyError(m));
        if policy_id.is_empty() || policy_id.len() > 64 || !policy_id.bytes().all(|b| b.is_ascii_graphic()) {
            return err("policy_id must be 1 to 64 visible ASCII characters".into());
        }
        for (asset, caps) in &global.assets {
            if caps.per_tx_cap > caps.daily_cap {
                return err(format!("global.assets.{asset}: per_tx_cap exceeds daily_cap"));
            }
        }
        for (asset, limits) in &user.assets {
            let Some(caps) = global.assets.get(asset) else {
                return err(format!("user.assets.{asset}: asset is not in global.assets"));
            };
            if limits.per_tx_limit > limits.daily_limit {
                return err(format!("user.assets.{asset}: per_tx_limit exceeds daily_limit"));
            }
            if limits.per_tx_limit > caps.per_tx_cap || limits.daily_limit > caps.daily_cap {
                return err(format!("user.assets.{asset}: a user limit exceeds the global cap"));
            }
        }
        if user.max_requests_per_minute > global.max_requests_per_minute {
            return err("user.max_requests_per_minute exceeds global.max_requests_per_minute".into());
        }
        if user.approval_ttl_s == 0 || user.approval_ttl_s > 86_400 {
            return err("user.approval_ttl_s must be 1 to 86400 seconds".into());
        }
        let mut authorities = BTreeSet::new();
        for a in &global.trusted_authorities {
            let n =
                normalize_authority(a).map_err(|e| PolicyError(format!("global.trusted_authorities: {}", e.why)))?;
            authorities.insert(n);
        }
        global.trusted_authorities = authorities;

        let mut warnings = Vec::new();
        for s in &global.allowed_schemes {
            if !KNOWN_SCHEMES.contains(&s.as_str()) {
                warnings.push(format!("global.allowed_schemes: {s} is not a scheme keyward knows"));
            }
        }
        if !user.confirm_new_destination {
            warnings
                .push("user.confirm_new_destination = false: first payments to a new payee are not confirmed".into());
        }
        if !user.confirm_authority_change {
            warnings.push("user.confirm_authority_change = false: a changed payment authority is not confirmed".into());
        }
        for (asset, caps) in &global.assets {
            if caps.daily_cap == u64::MAX {
                warnings.push(format!("global.assets.{asset}: daily_cap is unlimited"));
            }
        }
        let registry =
            crate::solana::Registry::from_wire(networks, &global.assets, &mut warnings).map_err(PolicyError)?;
        if profile == Profile::Strict && !warnings.is_empty() {
            return err(format!("unsafe settings are refused under the strict profile: {}", warnings.join("; ")));
        }
        Ok(Policy { id: policy_id, profile, global, user, registry, warnings })
    }

    /// Reads and parses the policy file, at most
    /// [`bounded_read::POLICY_FILE`] bytes: a larger file is refused with
    /// `KW_INPUT_TOO_LARGE` before it is parsed.
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = bounded_read::read_file_to_string(path, bounded_read::POLICY_FILE)
            .map_err(|e| PolicyError(format!("{}: {}: {e}", e.code(), path.display())))?;
        Policy::from_toml(&text)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
policy_id = "test-1"
profile = "strict"

[global]
max_requests_per_minute = 600
allowed_chains = ["solana:mainnet"]
allowed_schemes = ["v1-solana-exact", "v2-solana-exact"]
trusted_authorities = ["https://facilitator.example/settle"]
denied_payees = ["Blocked111"]

[global.assets.usdc]
per_tx_cap = 1000000
daily_cap = 5000000

[user]
max_requests_per_minute = 60
approved_payees = []
confirm_new_destination = true
confirm_authority_change = true
approval_ttl_s = 300

[user.assets.usdc]
per_tx_limit = 300000
daily_limit = 1000000
"#;

    pub(crate) fn example() -> Policy {
        Policy::from_toml(EXAMPLE).unwrap()
    }

    #[test]
    fn the_example_parses() {
        let p = example();
        assert_eq!(p.id, "test-1");
        assert!(p.warnings.is_empty());
    }

    fn with(from: &str, to: &str) -> Result<Policy, PolicyError> {
        assert!(EXAMPLE.contains(from), "{from}");
        Policy::from_toml(&EXAMPLE.replacen(from, to, 1))
    }

    #[test]
    fn a_policy_file_is_read_up_to_its_limit_and_no_further() {
        let dir = std::env::temp_dir().join(format!("policy-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Exactly the limit (padded with a comment) is read and parsed.
        let at = dir.join("at.toml");
        let pad = bounded_read::POLICY_FILE as usize - EXAMPLE.len() - 2;
        std::fs::write(&at, format!("{EXAMPLE}#{}\n", "x".repeat(pad))).unwrap();
        assert_eq!(Policy::load(&at).unwrap().id, "test-1");
        // A 2 MiB (sparse) file and an endless device are refused with the
        // stable code, before anything is parsed or allocated beyond the limit.
        let big = dir.join("big.toml");
        std::fs::write(&big, EXAMPLE).unwrap();
        std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(2 << 20).unwrap();
        for path in [big.as_path(), std::path::Path::new("/dev/zero")] {
            let e = Policy::load(path).unwrap_err();
            assert!(e.0.starts_with("KW_INPUT_TOO_LARGE: "), "{e}");
            assert!(e.0.contains("1048576-byte limit") && !e.0.contains("test-1"), "{e}");
        }
        let e = Policy::load(&dir.join("missing.toml")).unwrap_err();
        assert!(e.0.starts_with("KW_INPUT_UNREADABLE: "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn strict_validation_refuses_what_it_must() {
        let cases = [
            ("approval_ttl_s = 300", "approval_ttl_s = 300\nsurprise = 1", "unknown field"),
            ("per_tx_limit = 300000", "per_tx_limit = -5", "invalid value"),
            ("per_tx_limit = 300000", "per_tx_limit = 3000000", "per_tx_limit exceeds daily_limit"),
            ("daily_limit = 1000000", "daily_limit = 9000000", "exceeds the global cap"),
            ("per_tx_cap = 1000000", "per_tx_cap = 9000000", "per_tx_cap exceeds daily_cap"),
            ("[user.assets.usdc]", "[user.assets.dai]", "not in global.assets"),
            ("max_requests_per_minute = 60\n", "max_requests_per_minute = 6000\n", "exceeds global"),
            ("approval_ttl_s = 300", "approval_ttl_s = 0", "approval_ttl_s"),
            ("\"https://facilitator.example/settle\"", "\"http://plain\"", "trusted_authorities"),
        ];
        for (from, to, expect) in cases {
            let e = with(from, to).unwrap_err();
            assert!(e.0.contains(expect), "{to}: {e}");
        }
    }

    #[test]
    fn unsafe_settings_warn_and_block_the_strict_profile() {
        let e = with("confirm_new_destination = true", "confirm_new_destination = false").unwrap_err();
        assert!(e.0.contains("strict profile"), "{e}");
        let compat = EXAMPLE
            .replace("profile = \"strict\"", "profile = \"compat\"")
            .replace("confirm_new_destination = true", "confirm_new_destination = false")
            .replace("\"v2-solana-exact\"]", "\"v2-solana-exact\", \"v9-evm-anything\"]");
        let p = Policy::from_toml(&compat).unwrap();
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    }
}
