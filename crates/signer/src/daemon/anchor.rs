//! The journal key and the anchors: what makes the audit log and the spend
//! ledger tamper-evident against someone who can write their files
//! (normative: docs/audit-log.md, "Signatures and anchors"; decision 0011).
//!
//! * The **journal key** is an Ed25519 key sealed in the vault
//!   ([`JOURNAL_KEY_NAME`]); only `keywardd` unseals it. It signs every
//!   record of both journals and every anchor. Its public half is published
//!   in each anchor and reported by `keyward status`, so `keyward audit
//!   verify` needs nothing secret.
//! * An **anchor** is the signed statement "when the anchor counter read
//!   `c`, the audit log held N records ending in hash H and the ledger M
//!   ending in G", written atomically to `anchor.json` beside the audit log.
//!   Its commit point is the increment of a TPM NV counter (the vault's
//!   `anchor_counter`) to `c`, which nobody can undo. At start-up the anchor
//!   file must name the counter's value (or one above it: written, then
//!   crashed before the increment, rolled forward now), and both journals
//!   must extend it. A deleted, emptied, cut or rewritten journal, or an old
//!   copy restored with its old anchor, refuses the start with a stable code.
//!
//! **Cadence.** No signature leaves the daemon before an anchor covers the
//! records that justify it ([`Anchorer::cover_now`], group-committed: one
//! counter increment covers every signature waiting at that moment), so the
//! records of a released signature can never be cut, and neither can the
//! spend they count. Other records (decisions, refusals, approvals) are
//! anchored within [`ANCHOR_EVERY`] by the anchor thread, and at a graceful
//! stop after the `stopped` record. Cutting an unanchored tail can only drop
//! records of things that released nothing: a decision whose signature never
//! left, a refusal, a pending prompt (the caller asks again).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crypto::ed25519::Ed25519SigningKey;
use policy::journal::{Anchor, Position};
use secmem::MLockedSeed;
use vault::envelope::SecretKind;
use vault::{SecretProvider, Vault, VaultError};

/// The vault name of the journal key.
pub const JOURNAL_KEY_NAME: &str = "keywardd.journal";

/// The anchor file's name, in the audit log's directory.
pub const ANCHOR_FILE: &str = "anchor.json";

/// How long records other than signatures may stay unanchored.
pub const ANCHOR_EVERY: Duration = Duration::from_secs(5);

/// The Ed25519 key that signs journal records and anchors.
pub struct JournalKey {
    key: Ed25519SigningKey,
    public: [u8; 32],
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalKey").field("public", &policy::hex(&self.public)).finish_non_exhaustive()
    }
}

impl JournalKey {
    fn from_seed(seed: &MLockedSeed<32>) -> Result<JournalKey, StartError> {
        let key = Ed25519SigningKey::gen_key_m(seed)
            .map_err(|e| StartError::new("KW_SECMEM_FAILED", format!("journal key: {e}")))?;
        let public = key.derive_verification_key_m().0;
        Ok(JournalKey { key, public })
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign_bytes_m(message).0
    }

    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

/// A start refused, with its stable code.
#[derive(Debug)]
pub struct StartError {
    pub code: &'static str,
    pub message: String,
}

impl StartError {
    pub fn new(code: &'static str, message: impl Into<String>) -> StartError {
        StartError { code, message: message.into() }
    }
}

fn vault_failure(e: &VaultError) -> StartError {
    StartError::new(e.code(), e.to_string())
}

/// How the journals are to be opened, decided from the vault and the anchor
/// file before either journal is read.
#[derive(Debug)]
pub struct Plan {
    pub key: Arc<JournalKey>,
    /// The anchor both journals must extend; `None` on the first anchored
    /// start (the journals are adopted as they are).
    pub anchor: Option<Anchor>,
    /// The anchor file is one ahead of the counter: written, not yet
    /// committed. Both journals extend it, so it is committed now.
    pub roll_forward: bool,
    pub anchor_path: PathBuf,
    /// The seed of a journal key created for this start; sealed in the vault
    /// by [`Plan::establish`] only after the first anchor is written.
    fresh_seed: Option<MLockedSeed<32>>,
}

/// The path of the anchor file for an audit log at `audit_log`.
pub fn anchor_path(audit_log: &Path) -> PathBuf {
    audit_log.parent().unwrap_or(Path::new(".")).join(ANCHOR_FILE)
}

/// Reads the journal key and the anchor, and decides how the journals are
/// checked.
pub fn plan(vault: &mut Vault, audit_log: &Path) -> Result<Plan, StartError> {
    let anchor_path = anchor_path(audit_log);
    let stored = match vault.get(JOURNAL_KEY_NAME) {
        Ok(s) => Some(s),
        Err(VaultError::NotFound) => None,
        Err(e) => return Err(vault_failure(&e)),
    };
    let Some(stored) = stored else {
        // Never anchored: this start adopts the journals as they are.
        let seed = MLockedSeed::<32>::new_random()
            .map_err(|e| StartError::new("KW_SECMEM_FAILED", format!("journal key: {e}")))?;
        let key = Arc::new(JournalKey::from_seed(&seed)?);
        return Ok(Plan { key, anchor: None, roll_forward: false, anchor_path, fresh_seed: Some(seed) });
    };
    if stored.kind != SecretKind::Ed25519Seed || stored.bytes.as_slice().len() != 32 {
        return Err(StartError::new("KW_JOURNAL_KEY_INVALID", format!("{JOURNAL_KEY_NAME} is not an Ed25519 seed")));
    }
    let mut seed =
        MLockedSeed::<32>::new().map_err(|e| StartError::new("KW_SECMEM_FAILED", format!("journal key: {e}")))?;
    seed.as_mut_bytes().copy_from_slice(stored.bytes.as_slice());
    drop(stored);
    let key = Arc::new(JournalKey::from_seed(&seed)?);
    drop(seed);
    let counter = vault.anchor_counter().map_err(|e| vault_failure(&e))?.ok_or_else(|| {
        StartError::new(
            "KW_ANCHOR_COUNTER_MISSING",
            "the TPM has no journal anchor counter, but the journals were anchored: another TPM, or the counter \
             was deleted (docs/runbooks/journal-integrity.md)",
        )
    })?;
    let bytes = match bounded_read(&anchor_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StartError::new(
                "KW_ANCHOR_MISSING",
                format!(
                    "{} is missing, but the journals were anchored (docs/runbooks/journal-integrity.md)",
                    anchor_path.display()
                ),
            ));
        }
        Err(e) => return Err(StartError::new("KW_ANCHOR_INVALID", format!("{}: {e}", anchor_path.display()))),
    };
    let anchor = Anchor::parse(&bytes)
        .map_err(|why| StartError::new("KW_ANCHOR_INVALID", format!("{}: {why}", anchor_path.display())))?;
    if anchor.journal_key != key.public() {
        return Err(StartError::new("KW_ANCHOR_INVALID", "the anchor is signed by another journal key"));
    }
    let roll_forward = if anchor.counter == counter {
        false
    } else if anchor.counter == counter + 1 {
        true
    } else if anchor.counter < counter {
        return Err(StartError::new(
            "KW_ANCHOR_ROLLED_BACK",
            format!(
                "the anchor file is from counter {} but the TPM is at {counter}: an older copy of the journals \
                 (docs/runbooks/journal-integrity.md)",
                anchor.counter
            ),
        ));
    } else {
        return Err(StartError::new("KW_ANCHOR_INVALID", "the anchor is ahead of the TPM counter"));
    };
    Ok(Plan { key, anchor: Some(anchor), roll_forward, anchor_path, fresh_seed: None })
}

fn bounded_read(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?.take(policy::journal::MAX_ANCHOR_BYTES + 1).read_to_end(&mut out)?;
    Ok(out)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl Plan {
    /// Commits what the plan needs once both journals are open: rolls a
    /// prepared anchor forward, or, on the first anchored start, writes the
    /// first anchor over the adopted journals, seals the journal key in the
    /// vault and commits. Returns the anchor in force.
    pub fn establish(mut self, vault: &mut Vault, audit: Position, ledger: Position) -> Result<Anchor, StartError> {
        if let Some(seed) = self.fresh_seed.take() {
            let counter = vault.anchor_counter_ensure().map_err(|e| vault_failure(&e))?;
            let anchor = self.sign(counter + 1, audit, ledger);
            write_anchor(&self.anchor_path, &anchor)?;
            // A crash before the put leaves no key: the next start adopts
            // again. After it, the anchor is one ahead: rolled forward.
            vault.put(JOURNAL_KEY_NAME, SecretKind::Ed25519Seed, seed.as_bytes()).map_err(|e| vault_failure(&e))?;
            commit(vault, anchor.counter)?;
            return Ok(anchor);
        }
        let anchor = self.anchor.take().expect("an established plan has an anchor");
        if self.roll_forward {
            commit(vault, anchor.counter)?;
        }
        Ok(anchor)
    }

    fn sign(&self, counter: u64, audit: Position, ledger: Position) -> Anchor {
        sign_anchor(&self.key, counter, audit, ledger)
    }
}

fn sign_anchor(key: &JournalKey, counter: u64, audit: Position, ledger: Position) -> Anchor {
    let ts_ms = now_ms();
    let journal_key = key.public();
    let signature = key.sign(&Anchor::message(counter, &audit, &ledger, ts_ms, &journal_key));
    Anchor { counter, audit, ledger, ts_ms, journal_key, signature }
}

fn write_anchor(path: &Path, anchor: &Anchor) -> Result<(), StartError> {
    super::fsutil::write_atomic(path, anchor.to_json().as_bytes(), 0o644)
        .map_err(|e| StartError::new("KW_ANCHOR_WRITE_FAILED", format!("{}: {}", path.display(), e.kind())))
}

/// Increments the counter to `to`; a counter that lands elsewhere means
/// something else moves it, and the journals can no longer be anchored.
fn commit(vault: &mut Vault, to: u64) -> Result<(), StartError> {
    match vault.anchor_counter_increment() {
        Ok(v) if v == to => Ok(()),
        Ok(v) => Err(StartError::new(
            "KW_ANCHOR_COUNTER_MOVED",
            format!("the anchor counter moved to {v}, expected {to}: something else increments it"),
        )),
        // The increment may have reached the TPM with its answer lost.
        Err(e) => match vault.anchor_counter() {
            Ok(Some(v)) if v == to => Ok(()),
            _ => Err(vault_failure(&e)),
        },
    }
}

/// An anchor could not be committed: what needed it is refused.
#[derive(Debug, Clone)]
pub struct AnchorFailed(pub String);

struct AnchorState {
    last: Anchor,
    leader: bool,
    /// A counter that moved under us: every later anchor fails.
    broken: Option<String>,
    commits: u64,
}

/// Commits anchors while the daemon runs (group commit).
pub struct Anchorer {
    key: Arc<JournalKey>,
    path: PathBuf,
    state: Mutex<AnchorState>,
    done: Condvar,
}

impl std::fmt::Debug for Anchorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchorer").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Where the anchor's inputs come from: the two journals' durable tips and
/// the vault that holds the counter.
pub trait Sources {
    fn durable(&self) -> (Position, Position);
    fn with_vault<R>(&self, f: impl FnOnce(&mut Vault) -> R) -> R;
}

impl Anchorer {
    pub fn new(key: Arc<JournalKey>, path: PathBuf, last: Anchor) -> Anchorer {
        Anchorer {
            key,
            path,
            state: Mutex::new(AnchorState { last, leader: false, broken: None, commits: 0 }),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AnchorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The journal key's public half.
    pub fn journal_key(&self) -> [u8; 32] {
        self.key.public()
    }

    /// The anchor in force and how many were committed by this run.
    pub fn last(&self) -> (Anchor, u64) {
        let s = self.lock();
        (s.last.clone(), s.commits)
    }

    /// Returns once an anchor covers every record durable at the call.
    pub fn cover_now(&self, sources: &impl Sources) -> Result<(), AnchorFailed> {
        let (audit, ledger) = sources.durable();
        self.cover(sources, audit.records, ledger.records)
    }

    fn cover(&self, sources: &impl Sources, audit: u64, ledger: u64) -> Result<(), AnchorFailed> {
        let mut s = self.lock();
        loop {
            if let Some(why) = &s.broken {
                return Err(AnchorFailed(why.clone()));
            }
            if s.last.audit.records >= audit && s.last.ledger.records >= ledger {
                return Ok(());
            }
            if s.leader {
                s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.leader = true;
            let counter = s.last.counter + 1;
            drop(s);
            let (a, l) = sources.durable();
            let anchor = sign_anchor(&self.key, counter, a, l);
            let result = write_anchor(&self.path, &anchor)
                .and_then(|()| sources.with_vault(|v| commit(v, counter)))
                .map_err(|e| (e.code, e.message));
            s = self.lock();
            s.leader = false;
            self.done.notify_all();
            match result {
                Ok(()) => {
                    s.last = anchor;
                    s.commits += 1;
                }
                Err((code, message)) => {
                    eprintln!("keywardd: {code}: {message}");
                    if code == "KW_ANCHOR_COUNTER_MOVED" {
                        s.broken = Some(format!("{code}: {message}"));
                    }
                    return Err(AnchorFailed(format!("{code}: {message}")));
                }
            }
        }
    }
}
