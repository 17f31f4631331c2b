//! A real `keywardd` for tests, benchmarks and the red-team runner: its own
//! software TPM, a vault initialised with production settings (strict PCR
//! policy, ChaCha20-Poly1305, the NV epoch counter), a configuration file, and
//! the daemon binary itself as a child process serving a real Unix socket.
//!
//! The caller passes the path of the `keywardd` binary (from
//! `CARGO_BIN_EXE_keywardd` or beside the runner) and the `[[peer]]` rules.
//! The scratch directory is 0755 so that an unprivileged test user can reach
//! the socket directory when the configuration gives it the socket's group.
#![forbid(unsafe_code)]

pub mod peer;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ipc::api::{Request, Response};
use ipc::client::{Client, unix_now};
use ipc::frame::{MAX_FRAME, read_frame, write_frame};
use ipc::handshake::ClientHandshake;
use ipc::record::{SystemClock, msg};
use ipc::{Channel, IpcError, Suite, alert};
use swtpm_harness::Swtpm;
use vault::tpm::{PcrPolicy, TpmConfig};
use vault::{Vault, VaultConfig};

/// What the configuration says beyond the fixed paths.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lines added to `[daemon]` (e.g. `max_connections = 4`).
    pub daemon: String,
    /// Lines added to `[ipc]`.
    pub ipc: String,
    /// The `[[peer]]` tables.
    pub peers: String,
    /// The `[[grant]]` tables (default: key `hot` to uid 0 and uid 65534,
    /// the unprivileged test user, for every action).
    pub grants: String,
    /// Lines of `[signing]`.
    pub signing: String,
    /// The policy file's text.
    pub policy: String,
    /// `max_sessions_per_uid` in `[daemon]`, or `None` for the production
    /// default (16). The harness's own callers all run as root and stand
    /// in for many callers in load tests (64 concurrent clients), so the
    /// default lifts the quota to 4096; tests of the quota say `None`.
    /// (Do not also set it in `daemon`.)
    pub max_sessions_per_uid: Option<usize>,
}

/// The per-uid session quota [`Options::default`] gives the daemon.
pub const LOAD_TEST_SESSIONS_PER_UID: usize = 4096;

/// The policy the tests run under unless they say otherwise (strict).
pub const TEST_POLICY: &str = r#"policy_id = "harness-1"
profile = "strict"

[global]
max_requests_per_minute = 100000
allowed_chains = ["solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]
allowed_schemes = ["v1-solana-exact", "v2-solana-exact"]
trusted_authorities = ["https://facilitator.example"]

[global.assets.usdc]
per_tx_cap = 1000000
daily_cap = 100000000

[user]
max_requests_per_minute = 100000
confirm_new_destination = false
confirm_authority_change = true
approval_ttl_s = 300

[user.assets.usdc]
per_tx_limit = 100000
daily_limit = 50000000

[networks."solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]
aliases = ["solana-devnet"]
max_compute_unit_limit = 20000
max_compute_unit_price = 1000
fee_payers = ["EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd"]

[networks."solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".assets.usdc]
mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
token_program = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
decimals = 6
"#;

/// The devnet CAIP-2 id [`TEST_POLICY`] registers.
pub const TEST_NETWORK: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// The fee payer [`TEST_POLICY`] trusts and [`x402_intent`] names.
pub const TEST_FEE_PAYER: &str = "EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd";
/// The payee [`x402_intent`] pays (an owner address; its token account is derived).
pub const TEST_PAYEE: &str = "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4";
/// A fixed recent blockhash for intents that are never landed.
pub const TEST_BLOCKHASH: &str = "5Tx8F3jgSHx21CbtjwmdaKPLM5tWmreWAnPrbqHomSJF";
/// The grant every default daemon has.
pub const DEFAULT_GRANTS: &str = "[[grant]]\nkey = \"hot\"\nuid = 0\nactions = [\"x402_payment\", \"transfer\", \"sign\"]\n\
[[grant]]\nkey = \"hot\"\nuid = 65534\nactions = [\"x402_payment\", \"transfer\", \"sign\"]\n";

impl Default for Options {
    fn default() -> Self {
        Options {
            daemon: String::new(),
            ipc: String::new(),
            peers: "[[peer]]\nuid = 0\nrole = \"admin\"\n".into(),
            grants: DEFAULT_GRANTS.into(),
            signing: String::new(),
            policy: TEST_POLICY.replace("profile = \"strict\"", "profile = \"compat\""),
            max_sessions_per_uid: Some(LOAD_TEST_SESSIONS_PER_UID),
        }
    }
}

/// A running daemon; killed on drop.
#[derive(Debug)]
pub struct Daemon {
    pub tpm: Swtpm,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub pin_file: PathBuf,
    pub audit_log: PathBuf,
    pub policy_file: PathBuf,
    pub state_dir: PathBuf,
    pub config: PathBuf,
    pub vault_dir: PathBuf,
    pub stderr: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
}

/// Why a daemon could not be started.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl Daemon {
    /// Starts a daemon, panicking if it cannot (for tests).
    pub fn start(binary: &Path, options: &Options) -> Daemon {
        Self::try_start(binary, options).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start(binary: &Path, options: &Options) -> Result<Daemon, StartError> {
        let err = |what: &str, e: &dyn std::fmt::Display| StartError(format!("{what}: {e}"));
        let tpm = Swtpm::try_start().map_err(|e| err("swtpm", &e))?;
        let dir = tempfile::Builder::new().prefix("kwd-").tempdir().map_err(|e| err("tempdir", &e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(|e| err("chmod", &e))?;
        let vault_dir = dir.path().join("vault");
        Vault::init(VaultConfig::new(
            &vault_dir,
            TpmConfig { tcti: tpm.tcti(), pcr_policy: Some(PcrPolicy::default()) },
        ))
        .map_err(|e| err("vault init", &e))?;
        let socket = dir.path().join("run/keywardd.sock");
        let pin_file = dir.path().join("signer.pub");
        let audit_log = dir.path().join("audit/audit.jsonl");
        let policy_file = dir.path().join("policy.toml");
        let state_dir = dir.path().join("state");
        std::fs::write(&policy_file, &options.policy).map_err(|e| err("policy", &e))?;
        let config = dir.path().join("keywardd.toml");
        let quota = options.max_sessions_per_uid.map(|n| format!("max_sessions_per_uid = {n}\n")).unwrap_or_default();
        let text = format!(
            "[daemon]\nsocket = {:?}\npin_file = {:?}\naudit_log = {:?}\npolicy_file = {:?}\nstate_dir = {:?}\n{}{}\n\
             [vault]\ndir = {:?}\ntcti = {:?}\n[ipc]\n{}\n[signing]\n{}\n{}\n{}",
            socket,
            pin_file,
            audit_log,
            policy_file,
            state_dir,
            quota,
            options.daemon,
            vault_dir,
            tpm.tcti(),
            options.ipc,
            options.signing,
            options.peers,
            options.grants
        );
        std::fs::File::create(&config).and_then(|mut f| f.write_all(text.as_bytes())).map_err(|e| err("config", &e))?;
        let stderr = dir.path().join("keywardd.stderr");
        let mut d = Daemon {
            tpm,
            socket,
            pin_file,
            audit_log,
            policy_file,
            state_dir,
            config,
            vault_dir,
            stderr,
            binary: binary.to_path_buf(),
            child: None,
            dir,
        };
        d.launch()?;
        Ok(d)
    }

    /// (Re)starts the daemon process on the same configuration and vault.
    pub fn launch(&mut self) -> Result<(), StartError> {
        let _ = std::fs::remove_file(&self.pin_file);
        // Ready means sandboxed and anchored: the `listening` record is
        // written after the sandbox, and the socket answers only after the
        // start-up anchor (the socket accepts into its backlog as soon as it
        // is bound, before either).
        let listening_before = self.events("listening").len();
        let log = std::fs::File::create(&self.stderr).map_err(|e| StartError(format!("stderr file: {e}")))?;
        let child = Command::new(&self.binary)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("TSS2_LOG", "all+NONE")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| StartError(format!("spawn keywardd: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.pin_file.exists()
                && UnixStream::connect(&self.socket).is_ok()
                && self.events("listening").len() > listening_before
            {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(StartError(format!("keywardd exited with {status}: {}", self.stderr_text())));
            }
            if Instant::now() > deadline {
                return Err(StartError(format!("keywardd never listened: {}", self.stderr_text())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The pinned signer key, as a client reads it.
    pub fn pin(&self) -> [u8; 32] {
        ipc::client::read_pin(&self.pin_file).expect("pin file")
    }

    /// A connected, handshaken client.
    pub fn client(&self) -> Result<Client, ipc::IpcError> {
        Client::connect(&self.socket, self.pin(), Suite::XChaCha20Poly1305, Duration::from_secs(20))
    }

    /// Whether a fresh client gets a `pong` (the daemon is serving).
    /// One request on a fresh session, closed afterwards.
    pub fn call(&self, request: &Request) -> Result<Response, ipc::client::CallError> {
        let mut c = self.client().map_err(ipc::client::CallError::Ipc)?;
        let out = c.call(request);
        let _ = c.close();
        out
    }

    /// Today's reserved or spent total in `asset` (atomic units, all
    /// lanes) as `status` reports it, or what went wrong, in words.
    pub fn spent_today(&self, asset: &str) -> String {
        match self.call(&Request::DaemonStatus) {
            Ok(Response::Daemon { status }) => status["spent_today"][asset]["all"]
                .as_str()
                .map_or_else(|| format!("no {asset} in {status}"), str::to_owned),
            other => format!("{other:?}"),
        }
    }

    pub fn ping_ok(&self) -> bool {
        self.client().is_ok_and(|mut c| matches!(c.call(&Request::Ping), Ok(Response::Pong { .. })))
    }

    /// A handshaken session driven by hand, so that an attack can touch
    /// every byte of what it sends.
    pub fn raw_session(&self) -> Result<(UnixStream, Channel), IpcError> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let (hs, hello) = ClientHandshake::start(self.pin(), "", Suite::XChaCha20Poly1305, unix_now())?;
        write_frame(&mut s, &hello)?;
        let server_hello = read_frame(&mut s, MAX_FRAME)?.ok_or(IpcError::Truncated)?;
        let (channel, fin) = hs.finish(&server_hello, unix_now())?;
        write_frame(&mut s, &fin)?;
        Ok((s, channel))
    }

    /// Every audit event so far (the `rec` of each chained record).
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|mut l| l.get_mut("rec").map(serde_json::Value::take))
            .collect()
    }

    /// The anchor file keywardd keeps beside the audit log.
    pub fn anchor_file(&self) -> PathBuf {
        self.audit_log.parent().expect("the audit log has a directory").join("anchor.json")
    }

    /// Verifies the audit log as `keyward audit verify` does (public
    /// material only: the anchor and the journal key it names), checking
    /// every signature.
    pub fn verify_audit(&self) -> Result<policy::journal::Verified, String> {
        let anchor = std::fs::read(self.anchor_file()).map_err(|e| format!("anchor: {e}"))?;
        let anchor = policy::journal::Anchor::parse(&anchor)?;
        let text = std::fs::read_to_string(&self.audit_log).map_err(|e| e.to_string())?;
        policy::journal::verify(
            &text,
            policy::journal::Rules {
                stream: policy::journal::Stream::Audit,
                key: Some(&anchor.journal_key),
                anchor: Some((anchor.audit.records, &anchor.audit.head)),
                check_anchored_signatures: true,
                adopting: false,
            },
            |_, _| {},
        )
        .map_err(|e| e.to_string())
    }

    /// Events named `event`.
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.audit().into_iter().filter(|e| e["event"] == event).collect()
    }

    /// Waits (up to `within`) until `pred` holds for some event named `event`.
    pub fn wait_for(&self, event: &str, within: Duration, pred: impl Fn(&serde_json::Value) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.events(event).iter().any(&pred) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends `signal` and waits (up to `within`) for the exit.
    pub fn signal_and_wait(&mut self, signal: i32, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                self.child = None;
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// A line of `/proc/<pid>/status` (e.g. `Seccomp`), trimmed.
    pub fn proc_status(&self, field: &str) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The signer's next frame on `s`: `Ok(record)`, or `Err` with the code of
/// its alert, of the read error, or `EOF`.
pub fn answer(s: &mut UnixStream) -> Result<Vec<u8>, String> {
    match read_frame(s, MAX_FRAME) {
        Ok(Some(f)) => alert::decode(&f).map_or(Ok(f), |e| Err(e.code().to_string())),
        Ok(None) => Err("EOF".into()),
        Err(e) => Err(e.code().to_string()),
    }
}

/// One sealed `submit` request record (intent `{"n": n}`) on `channel`.
pub fn sealed_submit(channel: &mut Channel, n: usize) -> Vec<u8> {
    let body = serde_json::to_vec(&Request::Submit { intent: x402_intent(&format!("sealed-{n}"), 1000) })
        .expect("serialisable");
    let mut records = channel.seal(msg::REQUEST, &body, &SystemClock::default()).expect("an open channel seals");
    assert_eq!(records.len(), 1, "a fresh channel does not re-key");
    records.remove(0)
}

/// A valid agent-lane x402 intent under [`TEST_POLICY`]: key `hot` (a
/// `solana` key), asset `usdc` on devnet, a trusted fee payer, expiring in
/// 2096 (fixed, so the same key and amount always give the same intent
/// hash). The signer builds the transaction from it.
pub fn x402_intent(idempotency_key: &str, amount: u64) -> serde_json::Value {
    serde_json::json!({
        "actor": "agent", "action": "x402_payment", "key": "hot", "chain_id": TEST_NETWORK,
        "asset_id": "usdc", "amount_atomic": amount.to_string(), "max_amount_atomic": amount.to_string(),
        "payee": TEST_PAYEE, "rationale": "pay for one API call", "idempotency_key": idempotency_key,
        "request_expiry": 4_000_000_000u64, "correlation_id": "test",
        "x402": {"scheme_id": "v2-solana-exact", "payment_authority": "https://facilitator.example", "version": 2},
        "solana": {"fee_payer": TEST_FEE_PAYER, "recent_blockhash": TEST_BLOCKHASH, "last_valid_block_height": 1000}
    })
}

/// An opaque `sign` intent for key `key` (a `raw-ed25519` key) over `message`.
pub fn sign_intent(key: &str, idempotency_key: &str, message: &[u8]) -> serde_json::Value {
    let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "actor": "agent", "action": "sign", "key": key, "chain_id": TEST_NETWORK,
        "amount_atomic": "0", "max_amount_atomic": "0", "rationale": "sign a message",
        "idempotency_key": idempotency_key, "request_expiry": 4_000_000_000u64, "message_hex": hex
    })
}

/// Recomputes every hash link of a journal after an edit, keeping each
/// record's signature as it was: what someone who can write the file but
/// has no journal key can do (docs/audit-log.md). Lines that are not
/// records are dropped.
pub fn rechain(stream: policy::journal::Stream, text: &str) -> String {
    let mut prev = policy::journal::GENESIS.to_string();
    let mut out = String::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let Some(at) = line.find("\"rec\":") else { continue };
        let rec = &line[at + 6..line.len() - 1];
        let seq = v["seq"].as_u64().unwrap_or(0);
        let hash = policy::journal::link_hash(stream, seq, &prev, rec.as_bytes());
        let sig = v["sig"].as_str().map(|s| format!(",\"sig\":\"{s}\"")).unwrap_or_default();
        out.push_str(&format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"hash\":\"{hash}\"{sig},\"rec\":{rec}}}\n"));
        prev = hash;
    }
    out
}

/// Sets the file-size limit (`RLIMIT_FSIZE`, soft; `limit` bytes or
/// `unlimited`) of the running process `pid` with util-linux `prlimit`: a
/// write past it fails with `EFBIG`, a real write failure at a chosen
/// offset. Whether it was set.
pub fn set_file_size_limit(pid: u32, limit: &str) -> bool {
    Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={limit}:unlimited"))
        .status()
        .is_ok_and(|s| s.success())
}

/// `SIGTERM`, for [`Daemon::signal_and_wait`].
pub const SIGTERM: i32 = libc::SIGTERM;

/// A copy of the running executable (a test or bench binary) started as
/// another user, so that a test can reach the daemon as an unprivileged
/// peer of its choosing (`SO_PEERCRED` reports the child's uid and gid).
/// The copy lives in its own 0755 directory, so the user can execute it
/// wherever the build directory is. Its stdin and stdout are pipes: the
/// child reports on stdout and runs until its stdin closes, by convention.
/// Killed on drop.
#[derive(Debug)]
pub struct AsUser {
    child: Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl AsUser {
    /// Starts this executable with `args` and `envs` as `uid`:`gid` (no
    /// supplementary groups).
    pub fn spawn(uid: u32, gid: u32, args: &[&str], envs: &[(&str, &str)]) -> std::io::Result<AsUser> {
        use std::os::unix::process::CommandExt;
        // Copying an executable while another thread forks leaves the copy's
        // write descriptor open in that fork until it execs, and exec of the
        // copy then fails with ETXTBSY: one copy and spawn at a time.
        static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = SPAWN.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::Builder::new().prefix("kwd-as-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let copy = dir.path().join("self");
        let exe = std::env::current_exe()?;
        // A hard link when the file system allows (no bytes copied).
        if std::fs::hard_link(&exe, &copy).is_err() {
            std::fs::copy(&exe, &copy)?;
        }
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
        let stderr = dir.path().join("stderr");
        let mut cmd = Command::new(&copy);
        cmd.args(args)
            .envs(envs.iter().copied())
            .current_dir("/")
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?);
        let mut child = cmd.spawn()?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?);
        Ok(AsUser { child, stdout, stderr, _dir: dir })
    }

    /// The child's next stdout line that starts with `prefix` (earlier lines
    /// are skipped), without the prefix; `None` once stdout ends.
    pub fn next(&mut self, prefix: &str) -> Option<String> {
        use std::io::BufRead;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(i) = line.find(prefix) {
                return Some(line[i + prefix.len()..].trim_end().to_string());
            }
        }
    }

    /// Closes the child's stdin (its signal to finish) and waits.
    pub fn finish(mut self) -> std::io::Result<ExitStatus> {
        drop(self.child.stdin.take());
        self.child.wait()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
