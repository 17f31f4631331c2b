//! `keywardd.toml`: the daemon's configuration (normative example:
//! deploy/keywardd.toml). Parsing is strict: an unknown key, a missing
//! required key, a zero limit or an ambiguous peer mapping is an error
//! (`KW_CONFIG_INVALID`) and the daemon does not start. A typo in a security
//! setting must never fall back to a default silently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipc::api::Role;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub daemon: DaemonSection,
    pub vault: VaultSection,
    #[serde(default)]
    pub ipc: IpcSection,
    #[serde(default)]
    pub signing: SigningSection,
    /// Who may connect, and as what. Anyone else is dropped.
    #[serde(rename = "peer")]
    pub peers: Vec<PeerRule>,
    /// Which peers may sign with which keys, and for what. A role lets a
    /// peer talk; only a grant lets it spend (docs/x402.md, "Key grants").
    #[serde(rename = "grant", default)]
    pub grants: Vec<Grant>,
}

/// One `[[grant]]`: key `key` may be used by the peer with `uid` (or any
/// peer whose primary group is `gid`) for `actions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub key: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Intent actions: `x402_payment`, `transfer`, `sign`.
    pub actions: BTreeSet<String>,
}

/// The actions a grant may name.
pub const GRANTABLE_ACTIONS: &[&str] = &["x402_payment", "transfer", "sign"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// The Unix socket (mode 0660). Its directory, if keywardd has to
    /// create it, is created 0750 (group `socket_group`); an existing one
    /// must be a real directory owned by keywardd's user and writable by
    /// nobody else, and is used as it is (`KW_SOCKET_DIR_UNSAFE` otherwise;
    /// docs/ipc-protocol.md, "Socket directory").
    pub socket: PathBuf,
    /// Group that owns the socket (and a socket directory keywardd
    /// creates), so that callers in it can reach it.
    pub socket_group: Option<u32>,
    /// Where the signer's public key is written for clients to pin.
    pub pin_file: PathBuf,
    /// The audit log (NDJSON, hash-chained, append-only, 0600).
    pub audit_log: PathBuf,
    /// The policy file (docs/policy.md).
    pub policy_file: PathBuf,
    /// The spend ledger's directory (0750; `ledger.jsonl`, 0600).
    pub state_dir: PathBuf,
    /// Live sessions, all peers together (1-4096). Beyond this every
    /// connection is refused with `IPC_BUSY`.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Live sessions one uid may hold at once, whatever its role (at least
    /// 1). The next is refused with `IPC_PEER_QUOTA`.
    #[serde(default = "defaults::max_sessions_per_uid")]
    pub max_sessions_per_uid: usize,
    /// Sessions of `max_connections` that only approvers and admins may
    /// use: once `max_connections - reserved_for_operators` sessions are
    /// live, agents are refused with `IPC_BUSY`. Less than
    /// `max_connections`; default 16, or `max_connections / 8` if smaller
    /// ([`DaemonSection::reserved_for_operators`]).
    pub reserved_for_operators: Option<usize>,
    /// A client must complete the handshake within this time.
    #[serde(default = "defaults::handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// A session with no complete frame for this long is closed. It also
    /// bounds how long one frame may take to arrive (slow-loris clients).
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    pub dir: PathBuf,
    pub tcti: String,
    /// Compatibility: KEK sealed without a PCR policy (logged).
    #[serde(default)]
    pub compat_no_pcr: bool,
    /// Compatibility: also read AES-256-GCM blobs (logged).
    #[serde(default)]
    pub compat_aes_gcm: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpcSection {
    /// Also accept the AES-256-GCM suite (a compliance warning per session).
    #[serde(default)]
    pub compat_aes_gcm: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSection {
    /// How long an unsealed signing key may stay in locked memory, in
    /// milliseconds: 0 unseals for every signature; at most 5000.
    #[serde(default = "defaults::unseal_window_ms")]
    pub unseal_window_ms: u64,
}

impl Default for SigningSection {
    fn default() -> Self {
        SigningSection { unseal_window_ms: defaults::unseal_window_ms() }
    }
}

/// One `[[peer]]`: exactly one of `uid` or `gid`, and a role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRule {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub role: Role,
}

mod defaults {
    pub(super) fn max_connections() -> usize {
        128
    }
    pub(super) fn max_sessions_per_uid() -> usize {
        16
    }
    pub(super) fn reserved_for_operators() -> usize {
        16
    }
    pub(super) fn handshake_timeout_ms() -> u64 {
        5_000
    }
    pub(super) fn idle_timeout_ms() -> u64 {
        60_000
    }
    pub(super) fn unseal_window_ms() -> u64 {
        2_000
    }
}

impl DaemonSection {
    /// The sessions kept for approvers and admins: as configured, or 16,
    /// or `max_connections / 8` if that is smaller (so that a small
    /// `max_connections` still leaves agents a share).
    pub fn reserved_for_operators(&self) -> usize {
        self.reserved_for_operators.unwrap_or((self.max_connections / 8).min(defaults::reserved_for_operators()))
    }
}

/// Why a configuration was refused. The message names the key, never a value
/// read from a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KW_CONFIG_INVALID: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and parses the configuration, at most
    /// [`bounded_read::CONFIG_FILE`] bytes: a larger file is refused with
    /// `KW_INPUT_TOO_LARGE` before it is parsed.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = bounded_read::read_file_to_string(path, bounded_read::CONFIG_FILE)
            .map_err(|e| ConfigError(format!("{}: {}: {e}", e.code(), path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError(e.message().to_string()))?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.daemon;
        for (name, p) in [
            ("daemon.socket", &d.socket),
            ("daemon.pin_file", &d.pin_file),
            ("daemon.audit_log", &d.audit_log),
            ("daemon.policy_file", &d.policy_file),
            ("daemon.state_dir", &d.state_dir),
            ("vault.dir", &self.vault.dir),
        ] {
            if !p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(ConfigError(format!("{name} must be an absolute path without `..`")));
            }
        }
        // sun_path is 108 bytes including the terminating NUL.
        if d.socket.as_os_str().len() > 107 {
            return Err(ConfigError("daemon.socket is longer than a Unix socket path may be (107 bytes)".into()));
        }
        if d.max_connections == 0 || d.max_connections > 4096 {
            return Err(ConfigError("daemon.max_connections must be between 1 and 4096".into()));
        }
        if d.max_sessions_per_uid == 0 {
            return Err(ConfigError("daemon.max_sessions_per_uid must be at least 1".into()));
        }
        if d.reserved_for_operators.is_some_and(|r| r >= d.max_connections) {
            return Err(ConfigError(
                "daemon.reserved_for_operators must be less than daemon.max_connections (agents need a share)".into(),
            ));
        }
        if d.handshake_timeout_ms == 0 || d.idle_timeout_ms == 0 {
            return Err(ConfigError("daemon timeouts must be greater than zero".into()));
        }
        if self.signing.unseal_window_ms > 5_000 {
            return Err(ConfigError(
                "signing.unseal_window_ms must be at most 5000 (keys stay unsealed at most 5 s)".into(),
            ));
        }
        if self.peers.is_empty() {
            return Err(ConfigError("no [[peer]]: nobody could connect".into()));
        }
        let mut uids = BTreeSet::new();
        let mut gids = BTreeSet::new();
        for p in &self.peers {
            match (p.uid, p.gid) {
                (Some(u), None) if !uids.insert(u) => {
                    return Err(ConfigError(format!("uid {u} appears in two [[peer]] rules")));
                }
                (None, Some(g)) if !gids.insert(g) => {
                    return Err(ConfigError(format!("gid {g} appears in two [[peer]] rules")));
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => return Err(ConfigError("each [[peer]] names exactly one of uid or gid".into())),
            }
        }
        for g in &self.grants {
            if g.uid.is_some() == g.gid.is_some() {
                return Err(ConfigError(format!("[[grant]] for key {:?}: name exactly one of uid or gid", g.key)));
            }
            if g.key.is_empty() || g.key.len() > 64 {
                return Err(ConfigError("[[grant]] key must be a key name (1-64 characters)".into()));
            }
            if g.actions.is_empty() {
                return Err(ConfigError(format!("[[grant]] for key {:?}: no actions", g.key)));
            }
            if let Some(a) = g.actions.iter().find(|a| !GRANTABLE_ACTIONS.contains(&a.as_str())) {
                return Err(ConfigError(format!(
                    "[[grant]] for key {:?}: unknown action {a:?} (x402_payment, transfer, sign)",
                    g.key
                )));
            }
        }
        Ok(())
    }

    /// Whether the peer (`uid`, primary `gid`) may use key `key` for
    /// `action`. Nothing is granted by default, whatever the peer's role.
    pub fn granted(&self, uid: u32, gid: u32, key: &str, action: &str) -> bool {
        self.grants.iter().any(|g| {
            g.key == key && (g.uid == Some(uid) || g.gid == Some(gid)) && g.actions.iter().any(|a| a == action)
        })
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.daemon.handshake_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.daemon.idle_timeout_ms)
    }

    /// The role of a peer with these credentials: a `uid` rule wins over a
    /// `gid` rule; no rule means no access.
    pub fn role_of(&self, uid: u32, gid: u32) -> Option<Role> {
        let by_uid = self.peers.iter().find(|p| p.uid == Some(uid));
        let by_gid = || self.peers.iter().find(|p| p.gid == Some(gid));
        by_uid.or_else(by_gid).map(|p| p.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [daemon]
        socket = "/run/keyward/keywardd.sock"
        pin_file = "/var/lib/keyward/signer.pub"
        audit_log = "/var/lib/keyward/audit/audit.jsonl"
        policy_file = "/etc/keyward/policy.toml"
        state_dir = "/var/lib/keyward/state"
        [vault]
        dir = "/var/lib/keyward/vault"
        tcti = "device:/dev/tpmrm0"
        [[peer]]
        uid = 1001
        role = "agent"
        [[peer]]
        gid = 1002
        role = "approver"
    "#;

    #[test]
    fn a_config_file_is_read_up_to_its_limit_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("at.toml");
        let pad = bounded_read::CONFIG_FILE as usize - GOOD.len() - 2;
        std::fs::write(&at, format!("{GOOD}#{}\n", "x".repeat(pad))).unwrap();
        assert_eq!(Config::load(&at).unwrap().daemon.max_connections, 128);
        let big = dir.path().join("big.toml");
        std::fs::write(&big, GOOD).unwrap();
        std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(2 << 20).unwrap();
        for path in [big.as_path(), Path::new("/dev/zero")] {
            let e = Config::load(path).unwrap_err();
            assert!(e.0.starts_with("KW_INPUT_TOO_LARGE: "), "{e}");
        }
        assert!(Config::load(&dir.path().join("none")).unwrap_err().0.starts_with("KW_INPUT_UNREADABLE: "));
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.daemon.max_connections, 128);
        assert_eq!(c.signing.unseal_window_ms, 2_000);
        let long = GOOD.replace(
            "[[peer]]\n        uid = 1001",
            "[signing]\n        unseal_window_ms = 5001\n        [[peer]]\n        uid = 1001",
        );
        assert!(Config::parse(&long).unwrap_err().0.contains("at most 5000"));
        assert_eq!(c.role_of(1001, 5), Some(Role::Agent));
        assert_eq!(c.role_of(7, 1002), Some(Role::Approver));
        assert_eq!(c.role_of(7, 7), None);
    }

    #[test]
    fn session_quotas_default_and_are_checked() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!((c.daemon.max_sessions_per_uid, c.daemon.reserved_for_operators()), (16, 16));
        let with = |lines: &str| Config::parse(&GOOD.replacen("[daemon]", &format!("[daemon]\n{lines}"), 1));
        let small = with("max_connections = 40").unwrap();
        assert_eq!(small.daemon.reserved_for_operators(), 5, "max_connections / 8 when smaller than 16");
        assert_eq!(with("max_connections = 4").unwrap().daemon.reserved_for_operators(), 0);
        let set = with("max_connections = 40\nreserved_for_operators = 39\nmax_sessions_per_uid = 1").unwrap();
        assert_eq!((set.daemon.max_sessions_per_uid, set.daemon.reserved_for_operators()), (1, 39));
        for bad in [
            "max_sessions_per_uid = 0",
            "max_connections = 40\nreserved_for_operators = 40",
            "reserved_for_operators = 128",
            "reserved_for_operators = -1",
            "max_sessions_per_uid = \"16\"",
            "max_session_per_uid = 16",
        ] {
            let e = with(bad).unwrap_err();
            assert!(e.to_string().starts_with("KW_CONFIG_INVALID"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_errors_in_every_section() {
        for (anchor, extra) in
            [("[daemon]", "sockt = \"/x\""), ("[vault]", "pcr = false"), ("role = \"agent\"", "uids = [1]")]
        {
            let text = GOOD.replacen(anchor, &format!("{anchor}\n{extra}"), 1);
            let e = Config::parse(&text).unwrap_err();
            assert!(e.to_string().starts_with("KW_CONFIG_INVALID"), "{e}");
        }
        assert!(Config::parse(&format!("{GOOD}\n[extra]\nx = 1")).is_err());
    }

    #[test]
    fn unsafe_or_ambiguous_values_are_errors() {
        for (from, to) in [
            ("uid = 1001", "uid = 1001\ngid = 3"),
            ("gid = 1002", "uid = 1001"),
            ("\"/run/keyward/keywardd.sock\"", "\"run/keywardd.sock\""),
            ("\"/var/lib/keyward/vault\"", "\"/var/lib/../vault\""),
            ("role = \"agent\"", "role = \"root\""),
            ("[daemon]", "[daemon]\nmax_connections = 0"),
            ("[daemon]", "[daemon]\nidle_timeout_ms = 0"),
        ] {
            let text = GOOD.replacen(from, to, 1);
            assert!(Config::parse(&text).is_err(), "accepted: {from} -> {to}");
        }
        let no_peers = GOOD.split("[[peer]]").next().unwrap();
        assert!(Config::parse(no_peers).is_err());
    }

    /// The shipped examples are what the code accepts.
    #[test]
    fn the_deploy_examples_parse() {
        let c = Config::parse(include_str!("../../../../deploy/keywardd.toml")).unwrap();
        assert!(c.granted(1001, 0, "agent-hot", "x402_payment"));
        assert!(!c.granted(1001, 0, "agent-hot", "sign"));
        let p = policy::Policy::from_toml(include_str!("../../../../deploy/policy.toml")).unwrap();
        assert!(p.warnings.is_empty());
        assert!(p.registry.network("solana").is_some());
    }

    #[test]
    fn grants_bind_peers_to_keys_and_actions() {
        let text = format!(
            "{GOOD}\n[[grant]]\nkey = \"hot\"\nuid = 1001\nactions = [\"x402_payment\"]\n\
             [[grant]]\nkey = \"notary\"\ngid = 1002\nactions = [\"sign\"]\n"
        );
        let c = Config::parse(&text).unwrap();
        assert!(c.granted(1001, 5, "hot", "x402_payment"));
        assert!(!c.granted(1001, 5, "hot", "sign"), "another action");
        assert!(!c.granted(1001, 5, "treasury", "x402_payment"), "another key");
        assert!(!c.granted(0, 0, "hot", "x402_payment"), "root is not granted by its role");
        assert!(c.granted(7, 1002, "notary", "sign"));
        for bad in [
            "[[grant]]\nkey = \"k\"\nactions = [\"sign\"]",
            "[[grant]]\nkey = \"k\"\nuid = 1\ngid = 2\nactions = [\"sign\"]",
            "[[grant]]\nkey = \"k\"\nuid = 1\nactions = []",
            "[[grant]]\nkey = \"k\"\nuid = 1\nactions = [\"approve\"]",
            "[[grant]]\nkey = \"k\"\nuid = 1\nactions = [\"sign\"]\nrole = \"admin\"",
        ] {
            assert!(Config::parse(&format!("{GOOD}\n{bad}\n")).is_err(), "accepted: {bad}");
        }
    }
}
