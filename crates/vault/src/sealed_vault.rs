//! The vault: TPM-sealed KEK, wrapped DEKs, sealed secrets and the
//! anti-rollback manifest, in one directory, behind [`SecretProvider`].
//!
//! Layout (all files 0600 in a 0700 directory owned by the service user):
//!
//! ```text
//! DIR/lock                          advisory lock: one process at a time
//! DIR/manifest                      MACed list of secrets and live keys
//! DIR/kek-<id>.sealed               the KEK, sealed by the TPM
//! DIR/dek-<dek id>.<kek id>.wrapped a DEK wrapped under a KEK
//! DIR/dek-<dek>.<recipient>.recovery a DEK wrapped to the recovery key
//! DIR/secrets/<name>                sealed secrets (envelope v1)
//! DIR/secrets/.staged.<name>        a prepared, not yet committed write
//! DIR/migration.journal             the migration engine's checkpoints (signer)
//! ```
//!
//! Every operation unseals the KEK through the TPM, unwraps the DEK it needs,
//! and drops both before returning: plaintext keys live in `secmem` for the
//! length of one call. Every write is a transaction whose commit point is
//! the TPM epoch counter increment (see [`crate::manifest`] and the spec).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::VaultError;
use crate::envelope::{self, Algorithm, CipherPolicy, DataKey, Header, SecretKind, hex, validate_name};
use crate::hierarchy::{unwrap_dek, wrap_dek};
use crate::manifest::{Entry, KeyId, MacKey, Manifest, Meta, Op, Pending};
use crate::recovery::{RecoveryKey, unwrap_with_recovery, wrap_to_recipient};
use crate::store::BlobStore;
use crate::tpm::{ANCHOR_COUNTER_INDEX, EPOCH_COUNTER_INDEX, Kek, SealedKek, TpmConfig, TpmFailure, TpmKekProvider};

const MANIFEST: &str = "manifest";
const SECRETS: &str = "secrets";
const LOCK: &str = "lock";

/// Where the vault lives and how it reaches its TPM.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub dir: PathBuf,
    pub tpm: TpmConfig,
    /// Which blob algorithms reads accept. New blobs are always ChaCha20-Poly1305.
    pub cipher: CipherPolicy,
    /// The TPM NV index of the epoch counter.
    pub counter_index: u32,
    /// The TPM NV index of the journal anchor counter (the signer's spend
    /// ledger and audit log: docs/audit-log.md, "Anchors"). The vault only
    /// defines, reads and increments it; what it counts is the signer's.
    pub anchor_counter_index: u32,
}

impl VaultConfig {
    pub fn new(dir: impl Into<PathBuf>, tpm: TpmConfig) -> Self {
        VaultConfig {
            dir: dir.into(),
            tpm,
            cipher: CipherPolicy::Strict,
            counter_index: EPOCH_COUNTER_INDEX,
            anchor_counter_index: ANCHOR_COUNTER_INDEX,
        }
    }
}

/// The points of a transaction, in order. A crash between any two leaves
/// the vault consistent: before [`Checkpoint::Prepared`] nothing is visible,
/// from [`Checkpoint::Committed`] on the transaction rolls forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// New blobs written and fsynced under `.staged.` names.
    Staged,
    /// The manifest records the prepared transaction.
    Prepared,
    /// The TPM counter was incremented: the transaction has happened.
    Committed,
    /// Staged blobs renamed into place, deleted blobs removed.
    Applied,
    /// The manifest records the new state.
    Done,
}

/// A secret read from the vault, in locked memory.
#[derive(Debug)]
pub struct Secret {
    pub kind: SecretKind,
    pub epoch: u64,
    pub bytes: secmem::MLockedBytes,
    /// Set when the blob used AES-256-GCM under the compatibility policy:
    /// the caller logs it and records an audit event.
    pub compliance_warning: Option<&'static str>,
}

/// The minimal surface every secret store offers.
pub trait SecretProvider {
    fn get(&mut self, name: &str) -> Result<Secret, VaultError>;
    fn put(&mut self, name: &str, kind: SecretKind, secret: &[u8]) -> Result<(), VaultError>;
    fn delete(&mut self, name: &str) -> Result<(), VaultError>;
    fn list(&mut self) -> Result<Vec<String>, VaultError>;
}

/// What `status` reports. Public values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultStatus {
    pub manifest_counter: u64,
    pub tpm_counter: u64,
    pub kek_id: KeyId,
    pub current_dek: KeyId,
    pub retiring_dek: Option<KeyId>,
    pub recovery_enrolled: bool,
    pub secrets: Vec<(String, SecretKind, u64)>,
}

/// What one call of [`Vault::rotate_dek`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    pub resealed: usize,
    pub finished: bool,
}

/// What [`Vault::recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    pub restored: usize,
    /// Blobs that did not authenticate under any recovered DEK; left in
    /// place, outside the manifest.
    pub skipped: Vec<String>,
}

/// An unlocked view of the vault for one operation.
struct Session {
    kek: Kek,
    mac: MacKey,
    manifest: Manifest,
}

/// Called at each [`Checkpoint`] (progress reporting; crash tests).
pub type CheckpointHook = Box<dyn FnMut(Checkpoint) + Send>;

pub struct Vault {
    config: VaultConfig,
    root: BlobStore,
    secrets: BlobStore,
    tpm: TpmKekProvider,
    _lock: File,
    hook: Option<CheckpointHook>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("dir", &self.config.dir).finish_non_exhaustive()
    }
}

/// A key id as the hex used in file names and reports.
pub fn hex_id(id: &KeyId) -> String {
    hex(id)
}

fn kek_file(id: &KeyId) -> String {
    format!("kek-{}.sealed", hex(id))
}

fn dek_file(dek: &KeyId, kek: &KeyId) -> String {
    format!("dek-{}.{}.wrapped", hex(dek), hex(kek))
}

fn recovery_file(dek: &KeyId, recipient: &[u8; 32]) -> String {
    format!("dek-{}.{}.recovery", hex(dek), hex(&crate::recovery::recipient_id(recipient)))
}

fn random_id() -> Result<KeyId, VaultError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|_| VaultError::Random)?;
    Ok(id)
}

fn encode_sealed_kek(k: &SealedKek) -> Vec<u8> {
    let mut out = b"KWKK".to_vec();
    for part in [&k.public, &k.private] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn decode_sealed_kek(b: &[u8]) -> Result<SealedKek, VaultError> {
    let bad = || VaultError::TpmUnavailable(TpmFailure::MalformedSealedKek);
    let rest = b.strip_prefix(b"KWKK").ok_or_else(bad)?;
    let mut parts = Vec::new();
    let mut at = 0;
    for _ in 0..2 {
        let len = u32::from_be_bytes(rest.get(at..at + 4).ok_or_else(bad)?.try_into().expect("4")) as usize;
        parts.push(rest.get(at + 4..at + 4 + len).ok_or_else(bad)?.to_vec());
        at += 4 + len;
    }
    if at != rest.len() {
        return Err(bad());
    }
    let private = parts.pop().expect("2");
    Ok(SealedKek { public: parts.pop().expect("2"), private })
}

fn lock(dir: &Path) -> Result<File, VaultError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join(LOCK))
        .map_err(|e| VaultError::Io { kind: e.kind() })?;
    f.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => VaultError::Busy,
        std::fs::TryLockError::Error(e) => VaultError::Io { kind: e.kind() },
    })?;
    Ok(f)
}

impl Vault {
    fn attach(config: VaultConfig, create: bool) -> Result<Vault, VaultError> {
        if !create && !config.dir.is_dir() {
            return Err(VaultError::NotInitialised);
        }
        let root = BlobStore::open(&config.dir)?;
        let lock = lock(&config.dir)?;
        let secrets = BlobStore::open(&config.dir.join(SECRETS))?;
        let tpm = TpmKekProvider::connect(config.tpm.clone())?;
        Ok(Vault { config, root, secrets, tpm, _lock: lock, hook: None })
    }

    /// Creates a vault: a KEK sealed by the TPM, a first DEK, an empty
    /// manifest at the TPM counter's current value.
    pub fn init(config: VaultConfig) -> Result<Vault, VaultError> {
        let mut v = Self::attach(config, true)?;
        match v.root.read(MANIFEST) {
            Err(VaultError::NotFound) => {}
            Ok(_) => return Err(VaultError::AlreadyInitialised),
            Err(e) => return Err(e),
        }
        // Key files without a manifest: a damaged vault, not an empty
        // directory. A new vault here would garbage-collect them.
        if v.has_key_files()? {
            return Err(VaultError::ManifestMissing);
        }
        let counter = v.tpm.epoch_counter_ensure(v.config.counter_index)?;
        let (kek_id, kek) = v.provision_kek()?;
        let dek = v.create_dek(kek_id, &kek, None)?;
        let manifest = Manifest {
            counter,
            meta: Meta { kek_id, current_dek: dek.id(), retiring_dek: None, recovery: None },
            entries: Default::default(),
            pending: None,
        };
        v.root.write(MANIFEST, &manifest.encode(&MacKey::derive(&kek)?))?;
        Ok(v)
    }

    /// Opens an existing vault and settles any transaction a crash left behind.
    pub fn open(config: VaultConfig) -> Result<Vault, VaultError> {
        let mut v = Self::attach(config, false)?;
        v.session()?;
        Ok(v)
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Installs a hook called at every transaction checkpoint.
    pub fn set_checkpoint_hook(&mut self, hook: CheckpointHook) {
        self.hook = Some(hook);
    }

    fn checkpoint(&mut self, at: Checkpoint) {
        if let Some(h) = self.hook.as_mut() {
            h(at);
        }
    }

    fn provision_kek(&mut self) -> Result<(KeyId, Kek), VaultError> {
        let sealed = self.tpm.provision_kek()?;
        let id = random_id()?;
        self.root.write(&kek_file(&id), &encode_sealed_kek(&sealed))?;
        // Prove it unseals before anything depends on it.
        let kek = self.tpm.unseal_kek(&sealed)?;
        Ok((id, kek))
    }

    /// A fresh DEK, written wrapped under `kek` and, when a recovery key is
    /// enrolled, wrapped to it too. Unreferenced until a manifest names it.
    fn create_dek(&mut self, kek_id: KeyId, kek: &Kek, recovery: Option<[u8; 32]>) -> Result<DataKey, VaultError> {
        let dek = DataKey::generate()?;
        self.root.write(&dek_file(&dek.id(), &kek_id), &wrap_dek(kek, kek_id, &dek, "dek")?)?;
        if let Some(pk) = recovery {
            self.root.write(&recovery_file(&dek.id(), &pk), &wrap_to_recipient(&pk, &dek)?)?;
        }
        Ok(dek)
    }

    fn unseal(&mut self, kek_id: &KeyId) -> Result<Kek, VaultError> {
        let sealed = match self.root.read(&kek_file(kek_id)) {
            // The manifest names a KEK that is not here: the manifest was
            // altered, or the KEK file removed.
            Err(VaultError::NotFound) => return Err(VaultError::ManifestTampered),
            other => decode_sealed_kek(&other?)?,
        };
        self.tpm.unseal_kek(&sealed)
    }

    fn write_manifest(&mut self, m: &Manifest, mac: &MacKey) -> Result<(), VaultError> {
        self.root.write(MANIFEST, &m.encode(mac))
    }

    /// Unseals the KEK, verifies the manifest against the TPM counter, and
    /// settles a transaction left pending by a crash.
    fn has_key_files(&self) -> Result<bool, VaultError> {
        Ok(self.root.list()?.iter().any(|n| n.starts_with("kek-") || n.starts_with("dek-"))
            || !self.secrets.list()?.is_empty())
    }

    fn session(&mut self) -> Result<Session, VaultError> {
        let bytes = match self.root.read(MANIFEST) {
            Err(VaultError::NotFound) if self.has_key_files()? => return Err(VaultError::ManifestMissing),
            Err(VaultError::NotFound) => return Err(VaultError::NotInitialised),
            other => other?,
        };
        let kek_id = Manifest::peek_kek_id(&bytes)?;
        let kek = self.unseal(&kek_id)?;
        let mac = MacKey::derive(&kek)?;
        let mut manifest = Manifest::decode(&bytes, &mac)?;
        let tpm = self.tpm.epoch_counter_read(self.config.counter_index)?;
        if tpm < manifest.counter {
            // Counters never go down: this is another TPM, or the NV space
            // was redefined after a clear.
            return Err(VaultError::TpmUnavailable(TpmFailure::CounterBehind));
        }
        let mut session = Session { kek, mac, manifest: manifest.clone() };
        match manifest.pending.take() {
            None if tpm == manifest.counter => {}
            // Prepared, never committed: forget it.
            Some(p) if tpm == manifest.counter => {
                for op in &p.ops {
                    if let Op::Put { name, .. } = op {
                        self.secrets.discard_staged(name)?;
                    }
                }
                self.write_manifest(&manifest, &session.mac)?;
                session.manifest = manifest;
            }
            // Committed (the counter moved), not finished: roll forward.
            Some(p) if tpm == p.epoch && p.epoch == manifest.counter + 1 => {
                self.apply_ops(&p.ops)?;
                let next_kek = p.meta.kek_id;
                manifest.apply(p);
                if next_kek != kek_id {
                    session.kek = self.unseal(&next_kek)?;
                    session.mac = MacKey::derive(&session.kek)?;
                }
                self.write_manifest(&manifest, &session.mac)?;
                session.manifest = manifest;
            }
            // The counter is ahead of this manifest: it is an older copy.
            _ => return Err(VaultError::Rollback),
        }
        self.collect_garbage(&session.manifest)?;
        Ok(session)
    }

    /// Moves staged blobs into place and removes deleted ones (idempotent).
    fn apply_ops(&mut self, ops: &[Op]) -> Result<(), VaultError> {
        for op in ops {
            match op {
                Op::Put { name, entry } => match self.secrets.read_staged(name) {
                    Ok(staged) => {
                        if Sha256::digest(&staged)[..] != entry.digest {
                            return Err(VaultError::ManifestTampered);
                        }
                        self.secrets.promote_staged(name)?;
                    }
                    // Already promoted by an earlier, interrupted attempt?
                    Err(VaultError::NotFound) => {
                        let current = self.secrets.read(name).map_err(|_| VaultError::ManifestTampered)?;
                        if Sha256::digest(&current)[..] != entry.digest {
                            return Err(VaultError::ManifestTampered);
                        }
                    }
                    Err(e) => return Err(e),
                },
                Op::Delete { name } => match self.secrets.delete(name) {
                    Ok(()) | Err(VaultError::NotFound) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Removes files no committed state refers to: KEKs and DEKs left by a
    /// rotation or an interrupted init, staged blobs of forgotten
    /// transactions. This is where a rotated-out key is finally revoked.
    fn collect_garbage(&mut self, m: &Manifest) -> Result<(), VaultError> {
        debug_assert!(m.pending.is_none());
        let mut keep = vec![MANIFEST.to_string(), LOCK.to_string(), SECRETS.to_string(), kek_file(&m.meta.kek_id)];
        for d in m.meta.live_deks() {
            keep.push(dek_file(&d, &m.meta.kek_id));
            if let Some(pk) = &m.meta.recovery {
                keep.push(recovery_file(&d, pk));
            }
        }
        let doomed: Vec<String> = self
            .root
            .list()?
            .into_iter()
            .filter(|n| (n.starts_with("kek-") || n.starts_with("dek-")) && !keep.contains(n))
            .collect();
        // Never delete the recovery copy of a DEK that a blob on disk still
        // needs: blobs outside the manifest (an interrupted `recover`, blobs
        // that failed to authenticate) stay recoverable. Reading the blob
        // headers costs a pass over `secrets/`, so it is done only when a
        // recovery copy is about to go, not on every operation.
        let mut needed: Vec<String> = Vec::new();
        if doomed.iter().any(|n| n.ends_with(".recovery")) {
            for name in self.secrets.list()? {
                if let Ok((h, _)) = self.secrets.read(&name).and_then(|b| envelope::parse_header(&b)) {
                    needed.push(format!("dek-{}.", hex(&h.dek_id)));
                }
            }
        }
        for name in doomed {
            let still_needed = name.ends_with(".recovery") && needed.iter().any(|p| name.starts_with(p.as_str()));
            if !still_needed {
                self.root.delete(&name)?;
            }
        }
        for name in self.secrets.list_staged()? {
            self.secrets.discard_staged(&name)?;
        }
        Ok(())
    }

    fn dek(&mut self, s: &Session, id: &KeyId) -> Result<DataKey, VaultError> {
        let meta = &s.manifest.meta;
        if !meta.live_deks().any(|d| d == *id) {
            return Err(VaultError::WrongDek);
        }
        let wrapped = self.root.read(&dek_file(id, &meta.kek_id)).map_err(|e| match e {
            VaultError::NotFound => VaultError::ManifestTampered,
            e => e,
        })?;
        unwrap_dek(&s.kek, meta.kek_id, &wrapped)
    }

    /// Runs a transaction: stage, prepare, commit (TPM increment), apply, done.
    fn commit(
        &mut self,
        s: &mut Session,
        meta: Meta,
        ops: Vec<Op>,
        staged: Vec<(String, Vec<u8>)>,
        next_mac: Option<MacKey>,
    ) -> Result<(), VaultError> {
        let epoch = s.manifest.counter + 1;
        for (name, blob) in &staged {
            self.secrets.write_staged(name, blob)?;
        }
        self.checkpoint(Checkpoint::Staged);
        let pending = Pending { epoch, meta, ops };
        s.manifest.pending = Some(pending.clone());
        let prepared = s.manifest.encode(&s.mac);
        self.root.write(MANIFEST, &prepared)?;
        self.checkpoint(Checkpoint::Prepared);
        let now = self.tpm.epoch_counter_increment(self.config.counter_index)?;
        if now != epoch {
            // Something else moved our counter; the vault can no longer
            // prove which state is current.
            return Err(VaultError::Rollback);
        }
        self.checkpoint(Checkpoint::Committed);
        self.apply_ops(&pending.ops)?;
        self.checkpoint(Checkpoint::Applied);
        s.manifest.apply(pending);
        if let Some(mac) = next_mac {
            s.mac = mac;
        }
        self.write_manifest(&s.manifest.clone(), &s.mac)?;
        self.checkpoint(Checkpoint::Done);
        Ok(())
    }

    /// Reads, checks against the manifest and opens one blob.
    fn open_entry(&mut self, s: &Session, name: &str) -> Result<envelope::Opened, VaultError> {
        let entry = s.manifest.entries.get(name).ok_or(VaultError::NotFound)?.clone();
        let blob = self.secrets.read(name).map_err(|e| match e {
            VaultError::NotFound => VaultError::ManifestTampered,
            e => e,
        })?;
        if Sha256::digest(&blob)[..] != entry.digest {
            // Not the blob the manifest names. An authentic blob of this
            // name from an earlier epoch is a rollback; anything else is
            // tampering.
            let older = envelope::parse_header(&blob).ok().and_then(|(h, _)| {
                let dek = self.dek(s, &h.dek_id).ok()?;
                let opened = envelope::open(&dek, &blob, self.config.cipher).ok()?;
                Some(opened.header.name == name && opened.header.epoch < entry.epoch)
            });
            return Err(if older == Some(true) { VaultError::Rollback } else { VaultError::Tampered });
        }
        let (header, _) = envelope::parse_header(&blob)?;
        let dek = self.dek(s, &header.dek_id)?;
        let opened = envelope::open(&dek, &blob, self.config.cipher)?;
        let h = &opened.header;
        // (`kek_id` in a blob header records the KEK at sealing time; a KEK
        // rotation re-wraps DEKs, not blobs.)
        if h.name != name || h.epoch != entry.epoch || h.kind != entry.kind {
            return Err(VaultError::Tampered);
        }
        Ok(opened)
    }

    fn seal_for(&mut self, s: &Session, dek: &DataKey, name: &str, kind: SecretKind, secret: &[u8]) -> SealResult {
        let epoch = s.manifest.counter + 1;
        let header = Header {
            algorithm: Algorithm::ChaCha20Poly1305,
            kind,
            kek_id: s.manifest.meta.kek_id,
            dek_id: dek.id(),
            epoch,
            name: name.to_string(),
        };
        let blob = envelope::seal(dek, &header, secret)?;
        let entry = Entry { epoch, dek_id: dek.id(), kind, digest: Sha256::digest(&blob).into() };
        Ok((Op::Put { name: name.to_string(), entry }, (name.to_string(), blob)))
    }

    /// The journal anchor counter's value, or `None` when it was never
    /// defined on this TPM (a signer that never anchored its journals).
    /// Needs no KEK: a counter is public state.
    pub fn anchor_counter(&mut self) -> Result<Option<u64>, VaultError> {
        if !self.tpm.nv_index_defined(self.config.anchor_counter_index)? {
            return Ok(None);
        }
        self.tpm.epoch_counter_read(self.config.anchor_counter_index).map(Some)
    }

    /// Defines (once) and returns the journal anchor counter.
    pub fn anchor_counter_ensure(&mut self) -> Result<u64, VaultError> {
        self.tpm.epoch_counter_ensure(self.config.anchor_counter_index)
    }

    /// Advances the journal anchor counter by one: the commit point of an
    /// anchor. Returns the new value.
    pub fn anchor_counter_increment(&mut self) -> Result<u64, VaultError> {
        self.tpm.epoch_counter_increment(self.config.anchor_counter_index)
    }

    /// Public facts about the vault.
    pub fn status(&mut self) -> Result<VaultStatus, VaultError> {
        let s = self.session()?;
        let m = &s.manifest;
        Ok(VaultStatus {
            manifest_counter: m.counter,
            tpm_counter: self.tpm.epoch_counter_read(self.config.counter_index)?,
            kek_id: m.meta.kek_id,
            current_dek: m.meta.current_dek,
            retiring_dek: m.meta.retiring_dek,
            recovery_enrolled: m.meta.recovery.is_some(),
            secrets: m.entries.iter().map(|(n, e)| (n.clone(), e.kind, e.epoch)).collect(),
        })
    }

    /// Rotates the DEK: a new DEK becomes current, then every blob is
    /// re-sealed under it, `batch` blobs per transaction, and finally the old
    /// DEK is revoked (its wrapped copies deleted). Crash-safe: each batch is
    /// a transaction. Resumable: calling it again after an interruption
    /// continues with the blobs still under the old DEK.
    pub fn rotate_dek(&mut self, batch: usize) -> Result<RotationReport, VaultError> {
        let batch = batch.max(1);
        let mut s = self.session()?;
        if s.manifest.meta.retiring_dek.is_none() {
            let new = self.create_dek(s.manifest.meta.kek_id, &s.kek, s.manifest.meta.recovery)?;
            let mut meta = s.manifest.meta.clone();
            meta.retiring_dek = Some(meta.current_dek);
            meta.current_dek = new.id();
            self.commit(&mut s, meta, vec![], vec![], None)?;
        }
        let mut resealed = 0;
        loop {
            let retiring = s.manifest.meta.retiring_dek.expect("set above or by an earlier run");
            let todo: Vec<String> = s
                .manifest
                .entries
                .iter()
                .filter(|(_, e)| e.dek_id == retiring)
                .take(batch)
                .map(|(n, _)| n.clone())
                .collect();
            if todo.is_empty() {
                let mut meta = s.manifest.meta.clone();
                meta.retiring_dek = None;
                self.commit(&mut s, meta, vec![], vec![], None)?;
                self.collect_garbage(&s.manifest)?;
                return Ok(RotationReport { resealed, finished: true });
            }
            let current = self.dek(&s, &s.manifest.meta.current_dek.clone())?;
            let (mut ops, mut staged) = (Vec::new(), Vec::new());
            for name in &todo {
                let opened = self.open_entry(&s, name)?;
                let (op, blob) = self.seal_for(&s, &current, name, opened.header.kind, opened.plaintext.as_slice())?;
                ops.push(op);
                staged.push(blob);
            }
            drop(current);
            let meta = s.manifest.meta.clone();
            self.commit(&mut s, meta, ops, staged, None)?;
            resealed += todo.len();
        }
    }

    /// Re-wraps every live DEK under a new KEK sealed by the TPM, then
    /// revokes the old KEK (its sealed file and wrapped DEKs are deleted).
    pub fn rotate_kek(&mut self) -> Result<KeyId, VaultError> {
        let mut s = self.session()?;
        let (new_id, new_kek) = self.provision_kek()?;
        let meta = s.manifest.meta.clone();
        for id in meta.live_deks() {
            let dek = self.dek(&s, &id)?;
            self.root.write(&dek_file(&id, &new_id), &wrap_dek(&new_kek, new_id, &dek, "dek")?)?;
        }
        let next_mac = MacKey::derive(&new_kek)?;
        let mut next = meta;
        next.kek_id = new_id;
        self.commit(&mut s, next, vec![], vec![], Some(next_mac))?;
        s.kek = new_kek;
        self.collect_garbage(&s.manifest)?;
        Ok(new_id)
    }

    /// Enrols a new offline recovery key: every live DEK is also wrapped to
    /// its public half. Returns the private half, for the operator to store
    /// offline; the vault keeps no copy. A previous recovery key is revoked.
    pub fn enrol_recovery(&mut self) -> Result<RecoveryKey, VaultError> {
        let mut s = self.session()?;
        let key = RecoveryKey::generate()?;
        let pk = key.public();
        let mut meta = s.manifest.meta.clone();
        for id in meta.live_deks() {
            let dek = self.dek(&s, &id)?;
            self.root.write(&recovery_file(&id, &pk), &wrap_to_recipient(&pk, &dek)?)?;
        }
        meta.recovery = Some(pk);
        self.commit(&mut s, meta, vec![], vec![], None)?;
        Ok(key)
    }

    /// Rebuilds a vault whose TPM is gone (cleared, replaced, or a new
    /// machine with the vault directory restored from backup) from the
    /// offline recovery key: provisions a KEK on this TPM, re-seals every
    /// secret that authenticates under a recovered DEK into a fresh DEK, and
    /// re-bases the manifest on this TPM's counter. The old manifest cannot
    /// be verified (its KEK is gone), so the restored set is whatever the
    /// backup held; the operator accepts that by running this.
    pub fn recover(config: VaultConfig, key: &RecoveryKey) -> Result<(Vault, RecoveryReport), VaultError> {
        Self::recover_with_checkpoints(config, key, None)
    }

    /// [`Vault::recover`], calling `hook` at each checkpoint of its transaction.
    pub fn recover_with_checkpoints(
        config: VaultConfig,
        key: &RecoveryKey,
        hook: Option<CheckpointHook>,
    ) -> Result<(Vault, RecoveryReport), VaultError> {
        let mut v = Self::attach(config, false)?;
        v.hook = hook;
        let pk = key.public();
        let mut deks: Vec<DataKey> = Vec::new();
        for name in v.root.list()? {
            if name.starts_with("dek-") && name.ends_with(".recovery") {
                match unwrap_with_recovery(key, &v.root.read(&name)?) {
                    Ok(dek) => deks.push(dek),
                    // Wrapped to another (older) recovery key.
                    Err(VaultError::RecoveryKeyMismatch) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if deks.is_empty() {
            return Err(VaultError::RecoveryKeyMismatch);
        }
        let counter = v.tpm.epoch_counter_ensure(v.config.counter_index)?;
        let (kek_id, kek) = v.provision_kek()?;
        let dek = v.create_dek(kek_id, &kek, Some(pk))?;
        let meta = Meta { kek_id, current_dek: dek.id(), retiring_dek: None, recovery: Some(pk) };
        let mut s = Session {
            mac: MacKey::derive(&kek)?,
            kek,
            manifest: Manifest { counter, meta: meta.clone(), entries: Default::default(), pending: None },
        };
        let (mut ops, mut staged, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for name in v.secrets.list()? {
            let blob = v.secrets.read(&name)?;
            let opened = envelope::parse_header(&blob).ok().and_then(|(h, _)| {
                let old = deks.iter().find(|d| d.id() == h.dek_id)?;
                envelope::open(old, &blob, v.config.cipher).ok().filter(|o| o.header.name == name)
            });
            let Some(opened) = opened else {
                // Does not authenticate: left in place, outside the manifest,
                // for the operator (docs/runbooks/corrupted-blob.md).
                skipped.push(name);
                continue;
            };
            let (op, b) = v.seal_for(&s, &dek, &name, opened.header.kind, opened.plaintext.as_slice())?;
            ops.push(op);
            staged.push(b);
        }
        let restored = ops.len();
        // The first manifest written is the prepared transaction; until it
        // commits, the old blobs and their recovery copies stay (see
        // `collect_garbage`), so an interrupted recovery can be run again.
        v.commit(&mut s, meta, ops, staged, None)?;
        v.collect_garbage(&s.manifest)?;
        Ok((v, RecoveryReport { restored, skipped }))
    }

    /// Copies the vault's files (ciphertext only) into `out`, a new 0700
    /// directory, under the lock, so the copy is one consistent state.
    pub fn backup(&mut self, out: &Path) -> Result<usize, VaultError> {
        let s = self.session()?;
        if out.exists() {
            return Err(VaultError::PolicyDenied { why: "backup target already exists" });
        }
        let dst = BlobStore::open(out)?;
        let dst_secrets = BlobStore::open(&out.join(SECRETS))?;
        let mut n = 0;
        for name in self.root.list()? {
            if name != LOCK && name != SECRETS {
                dst.write(&name, &self.root.read(&name)?)?;
                n += 1;
            }
        }
        for name in s.manifest.entries.keys() {
            dst_secrets.write(name, &self.secrets.read(name)?)?;
            n += 1;
        }
        Ok(n)
    }
}

type SealResult = Result<(Op, (String, Vec<u8>)), VaultError>;

impl SecretProvider for Vault {
    fn get(&mut self, name: &str) -> Result<Secret, VaultError> {
        validate_name(name)?;
        let s = self.session()?;
        let opened = self.open_entry(&s, name)?;
        Ok(Secret {
            kind: opened.header.kind,
            epoch: opened.header.epoch,
            bytes: opened.plaintext,
            compliance_warning: opened.compliance_warning,
        })
    }

    fn put(&mut self, name: &str, kind: SecretKind, secret: &[u8]) -> Result<(), VaultError> {
        validate_name(name)?;
        if kind == SecretKind::WrappedDek {
            return Err(VaultError::PolicyDenied { why: "wrapped DEKs are not stored as secrets" });
        }
        let mut s = self.session()?;
        let dek = self.dek(&s, &s.manifest.meta.current_dek.clone())?;
        let (op, staged) = self.seal_for(&s, &dek, name, kind, secret)?;
        drop(dek);
        let meta = s.manifest.meta.clone();
        self.commit(&mut s, meta, vec![op], vec![staged], None)
    }

    fn delete(&mut self, name: &str) -> Result<(), VaultError> {
        validate_name(name)?;
        let mut s = self.session()?;
        if !s.manifest.entries.contains_key(name) {
            return Err(VaultError::NotFound);
        }
        let meta = s.manifest.meta.clone();
        self.commit(&mut s, meta, vec![Op::Delete { name: name.to_string() }], vec![], None)
    }

    fn list(&mut self) -> Result<Vec<String>, VaultError> {
        Ok(self.session()?.manifest.entries.keys().cloned().collect())
    }
}
