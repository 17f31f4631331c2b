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
    /// On the first anchored start: the counter value the journal key was
    /// sealed with; the first anchor names the next one.
    pub adopting_from: Option<u64>,
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
        // Never anchored: a journal key is created and sealed first, with
        // the counter's value (so nothing is ever signed by a key that a
        // crash could lose), then this start adopts the journals.
        let base = vault.anchor_counter_ensure().map_err(|e| vault_failure(&e))?;
        let mut entry = secmem::MLockedBytes::new_zeroed(KEY_ENTRY_LEN)
            .map_err(|e| StartError::new("KW_SECMEM_FAILED", format!("journal key: {e}")))?;
        entry.as_mut_slice()[..32].copy_from_slice(
            MLockedSeed::<32>::new_random()
                .map_err(|e| StartError::new("KW_SECMEM_FAILED", format!("journal key: {e}")))?
                .as_bytes(),
        );
        entry.as_mut_slice()[32..].copy_from_slice(&base.to_be_bytes());
        vault.put(JOURNAL_KEY_NAME, SecretKind::Opaque, entry.as_slice()).map_err(|e| vault_failure(&e))?;
        let (key, _) = key_entry(entry.as_slice())?;
        return Ok(Plan { key, anchor: None, roll_forward: false, anchor_path, adopting_from: Some(base) });
    };
    let (key, base) = key_entry(stored.bytes.as_slice())?;
    if stored.kind != SecretKind::Opaque {
        return Err(StartError::new("KW_JOURNAL_KEY_INVALID", format!("{JOURNAL_KEY_NAME} is not a journal key")));
    }
    drop(stored);
    let counter = vault.anchor_counter().map_err(|e| vault_failure(&e))?.ok_or_else(|| {
        StartError::new(
            "KW_ANCHOR_COUNTER_MISSING",
            "the TPM has no journal anchor counter, but the journals were anchored: another TPM, or the counter \
             was deleted (docs/runbooks/journal-integrity.md)",
        )
    })?;
    if counter == base && !anchor_path.exists() {
        // The key was sealed but no anchor was ever committed with it (a
        // first start interrupted): no signature was ever released, so the
        // journals are adopted again, under this key.
        return Ok(Plan { key, anchor: None, roll_forward: false, anchor_path, adopting_from: Some(base) });
    }
    let bytes = match bounded_read::read_file(&anchor_path, policy::journal::MAX_ANCHOR_BYTES) {
        Ok(b) => b,
        Err(bounded_read::ReadError::Unreadable { kind: std::io::ErrorKind::NotFound }) => {
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
    Ok(Plan { key, anchor: Some(anchor), roll_forward, anchor_path, adopting_from: None })
}

/// The vault entry of the journal key: its seed (32 bytes) and the anchor
/// counter's value when it was sealed (8 bytes, big-endian).
const KEY_ENTRY_LEN: usize = 40;

fn key_entry(bytes: &[u8]) -> Result<(Arc<JournalKey>, u64), StartError> {
    if bytes.len() != KEY_ENTRY_LEN {
        return Err(StartError::new("KW_JOURNAL_KEY_INVALID", format!("{JOURNAL_KEY_NAME} is not a journal key")));
    }
    let mut seed =
        MLockedSeed::<32>::new().map_err(|e| StartError::new("KW_SECMEM_FAILED", format!("journal key: {e}")))?;
    seed.as_mut_bytes().copy_from_slice(&bytes[..32]);
    let key = Arc::new(JournalKey::from_seed(&seed)?);
    let base = u64::from_be_bytes(bytes[32..].try_into().expect("8 bytes"));
    Ok((key, base))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl Plan {
    /// Commits what the plan needs once both journals are open: rolls a
    /// prepared anchor forward, or, on the first anchored start, writes and
    /// commits the first anchor over the adopted journals (the key was
    /// sealed by [`plan`]). Returns the anchor in force.
    pub fn establish(mut self, vault: &mut Vault, audit: Position, ledger: Position) -> Result<Anchor, StartError> {
        if let Some(base) = self.adopting_from {
            // Written, then committed: a crash between the two leaves the
            // anchor one ahead of the counter, rolled forward at the next
            // start; a crash before the write leaves no anchor at the base
            // value, adopted again.
            let anchor = self.sign(base + 1, audit, ledger);
            write_anchor(&self.anchor_path, &anchor)?;
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
    /// An anchor written for `last.counter + 1` whose commit failed or
    /// whose outcome is unknown. It is the only anchor that may ever name
    /// that counter value: it is committed again (same bytes), never
    /// replaced by a new one, or two authentic anchors for one counter
    /// value would let an older one be put back.
    pending: Option<Anchor>,
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
            state: Mutex::new(AnchorState { last, pending: None, leader: false, broken: None, commits: 0 }),
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

    /// Commits `anchor` (for the counter's next value): when an earlier
    /// attempt already moved the counter, it is committed; otherwise the file
    /// is (re)written with the same bytes and the counter incremented.
    /// A fresh anchor (`retry` false) follows a successful commit, so the
    /// counter is known to be one below it and is not read first.
    fn commit_pending(
        &self,
        sources: &impl Sources,
        anchor: &Anchor,
        retry: bool,
    ) -> Result<(), (&'static str, String)> {
        if retry {
            let now = sources.with_vault(|v| v.anchor_counter()).map_err(|e| (e.code(), e.to_string()))?;
            match now {
                Some(t) if t == anchor.counter => return Ok(()),
                Some(t) if t + 1 == anchor.counter => {}
                other => {
                    return Err((
                        "KW_ANCHOR_COUNTER_MOVED",
                        format!(
                            "the anchor counter is at {other:?}, expected {}: something else moves it",
                            anchor.counter - 1
                        ),
                    ));
                }
            }
        }
        write_anchor(&self.path, anchor)
            .and_then(|()| sources.with_vault(|v| commit(v, anchor.counter)))
            .map_err(|e| (e.code, e.message))
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
            let pending = s.pending.clone();
            let counter = s.last.counter + 1;
            drop(s);
            let retry = pending.is_some();
            let anchor = match pending {
                Some(p) => p,
                None => {
                    let (a, l) = sources.durable();
                    sign_anchor(&self.key, counter, a, l)
                }
            };
            s = self.lock();
            s.pending = Some(anchor.clone());
            drop(s);
            let result = self.commit_pending(sources, &anchor, retry);
            s = self.lock();
            s.leader = false;
            self.done.notify_all();
            match result {
                Ok(()) => {
                    s.last = anchor;
                    s.pending = None;
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
