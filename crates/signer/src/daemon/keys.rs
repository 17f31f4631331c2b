//! Signing keys: sealed in the vault, unsealed into locked memory for one
//! operation or for a bounded window, wiped after.
//!
//! A key has a kind, fixed at creation, and the kind is its vault namespace,
//! so it is sealed with the key (the entry name is bound into the envelope's
//! authenticated header):
//!
//! | kind | vault entry | signs |
//! | --- | --- | --- |
//! | `solana` | `solkey.N` | only Solana transactions keywardd built itself from a decided payment |
//! | `raw-ed25519` | `rawkey.N` | opaque messages, for the `sign` action only |
//! | `proof-ed25519` | `proofkey.N` | proofs and SPECTRUM-04 bundle payloads only |
//! | `ed25519` (legacy) | `key.N` | nothing: keys from before kinds existed |
//!
//! A legacy key could have been used for either payments or opaque
//! messages, and nothing records which, so the safe reading is that it may
//! sign neither: it is listed as `legacy` and refused with
//! `DENY_KEY_KIND_MISMATCH` (docs/x402.md, "Key kinds"). Intent key names
//! are unique across the three intent kinds, so a name means one key.
//!
//! The public keys of intent keys are read once at start-up (and at
//! creation) into a directory, so that a payment can be built and checked
//! against its key, and refused, before anything is unsealed for it. With
//! `unseal_window_ms = 0` every signature unseals the key, signs and drops
//! it at once. With a window `w` (at most 5 000 ms), an unsealed key stays in
//! locked memory for at most `w` after its unseal, then a reaper thread drops
//! it (the `MLockedSeed`-backed key zeroizes on drop). The plaintext lifetime
//! of every unsealed key is measured from unseal to drop and reported by
//! `status` (count, mean, max), so the bound is observable, not assumed.
//!
//! The vault is opened once at start-up and kept (its lock held) for the
//! daemon's life; each unseal goes to the TPM through the vault's salted,
//! encrypting session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crypto::ed25519::Ed25519SigningKey;
use policy::ReasonCode;
use secmem::MLockedSeed;
use vault::envelope::SecretKind;
use vault::{SecretProvider, Vault, VaultError};

/// What a key signs: its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// Solana transactions built by keywardd (`solkey.N`, kind `solana`).
    Solana,
    /// Opaque messages for `sign` (`rawkey.N`, kind `raw-ed25519`).
    Raw,
    /// Proofs and SPECTRUM-04 bundle payloads (`proofkey.N`, kind `proof-ed25519`).
    Proof,
    /// Keys created before kinds existed (`key.N`): sign nothing.
    Legacy,
}

/// The kinds whose keys an intent may name (one namespace of names).
pub const INTENT_KINDS: [Purpose; 3] = [Purpose::Solana, Purpose::Raw, Purpose::Legacy];

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Solana => "solkey.",
            Purpose::Raw => "rawkey.",
            Purpose::Proof => "proofkey.",
            Purpose::Legacy => "key.",
        }
    }

    /// The kind's name (what `key create --kind` takes and `key list` shows).
    pub fn kind(self) -> &'static str {
        match self {
            Purpose::Solana => "solana",
            Purpose::Raw => "raw-ed25519",
            Purpose::Proof => "proof-ed25519",
            Purpose::Legacy => "legacy",
        }
    }

    /// The kinds a key can be created with (never `legacy`).
    pub fn from_kind(kind: &str) -> Option<Purpose> {
        [Purpose::Solana, Purpose::Raw, Purpose::Proof].into_iter().find(|p| p.kind() == kind)
    }

    /// Whether a key of this kind may sign for intent action `action`.
    pub fn may_sign(self, action: policy::intent::Action) -> bool {
        use policy::intent::Action;
        match self {
            Purpose::Solana => matches!(action, Action::X402Payment | Action::Transfer),
            Purpose::Raw => action == Action::Sign,
            Purpose::Proof | Purpose::Legacy => false,
        }
    }

    /// The vault entry of key `name` with this purpose.
    pub fn vault_name(self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }
}

/// Why a signature could not be made. Public words only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError {
    pub code: ReasonCode,
    pub detail: String,
}

fn vault_error(e: &VaultError) -> SignError {
    match e {
        VaultError::TpmUnavailable(_) => {
            SignError { code: ReasonCode::DenyTpmUnavailable, detail: "the TPM refused or is unreachable".into() }
        }
        VaultError::NotFound => SignError { code: ReasonCode::FailSigning, detail: "no such key".into() },
        other => SignError { code: ReasonCode::FailSigning, detail: format!("vault: {}", other.code()) },
    }
}

struct Cached {
    key: Ed25519SigningKey,
    public: [u8; 32],
    since: Instant,
}

/// Plaintext-lifetime figures.
#[derive(Debug, Default, Clone, Copy)]
pub struct Lifetimes {
    pub unseals: u64,
    pub wiped: u64,
    pub total_us: u128,
    pub max_us: u128,
}

pub struct Keys {
    vault: Mutex<Vault>,
    /// Every key's (kind, public key), by vault entry name.
    directory: Mutex<std::collections::BTreeMap<String, (Purpose, [u8; 32])>>,
    cache: Mutex<HashMap<String, Cached>>,
    window: Duration,
    lifetimes: Mutex<Lifetimes>,
    /// Set when the reaper (or another thread the window depends on) has
    /// died: nothing is unsealed or signed again ([`Keys::stop_signing`]).
    stopped: AtomicBool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("window", &self.window).finish_non_exhaustive()
    }
}

impl Keys {
    pub fn new(vault: Vault, window: Duration) -> Keys {
        Keys {
            vault: Mutex::new(vault),
            directory: Mutex::default(),
            cache: Mutex::new(HashMap::new()),
            window,
            lifetimes: Mutex::default(),
            stopped: AtomicBool::new(false),
        }
    }

    fn directory(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, (Purpose, [u8; 32])>> {
        self.directory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads every key's public key into the directory (at start-up): one
    /// unseal per key, before any request is served. An entry that cannot
    /// be read as an Ed25519 key (a migrated secret of another kind under a
    /// key name, a damaged blob) stays out of the directory, so nothing can
    /// sign with it; its name and the reason are returned for the audit log.
    pub fn load_directory(&self) -> Result<(usize, Vec<(String, String)>), SignError> {
        let names = self.vault().list().map_err(|e| vault_error(&e))?;
        let mut found = Vec::new();
        let mut unusable = Vec::new();
        for entry in names {
            let kinds = [Purpose::Solana, Purpose::Raw, Purpose::Proof, Purpose::Legacy];
            let Some(p) = kinds.into_iter().find(|p| entry.starts_with(p.prefix())) else { continue };
            match self.unseal(&entry) {
                Ok(c) => {
                    let (public, since) = (c.public, c.since);
                    drop(c);
                    self.wiped(since);
                    found.push((entry, (p, public)));
                }
                Err(e) if e.code == ReasonCode::DenyTpmUnavailable => return Err(e),
                Err(e) => unusable.push((entry, e.detail)),
            }
        }
        let n = found.len();
        self.directory().extend(found);
        Ok((n, unusable))
    }

    /// The kind and public key of intent key `name`, if it exists.
    pub fn resolve(&self, name: &str) -> Option<(Purpose, [u8; 32])> {
        let d = self.directory();
        INTENT_KINDS.iter().find_map(|p| d.get(&p.vault_name(name)).copied())
    }

    /// The public key of key `name` of kind `purpose`.
    pub fn public_key(&self, purpose: Purpose, name: &str) -> Option<[u8; 32]> {
        self.directory().get(&purpose.vault_name(name)).map(|(_, k)| *k)
    }

    /// The public keys of every key this signer holds.
    pub fn held_public_keys(&self) -> Vec<[u8; 32]> {
        self.directory().values().map(|(_, k)| *k).collect()
    }

    fn vault(&self) -> std::sync::MutexGuard<'_, Vault> {
        self.vault.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the vault (the journal anchor counter lives there).
    pub fn with_vault<R>(&self, f: impl FnOnce(&mut Vault) -> R) -> R {
        f(&mut self.vault())
    }

    fn wiped(&self, since: Instant) {
        let us = since.elapsed().as_micros();
        let mut l = self.lifetimes.lock().unwrap_or_else(|p| p.into_inner());
        l.wiped += 1;
        l.total_us += us;
        l.max_us = l.max_us.max(us);
    }

    fn unseal(&self, entry: &str) -> Result<Cached, SignError> {
        let secret = self.vault().get(entry).map_err(|e| vault_error(&e))?;
        if secret.kind != SecretKind::Ed25519Seed || secret.bytes.len() != 32 {
            return Err(SignError { code: ReasonCode::FailSigning, detail: "the key is not an Ed25519 key".into() });
        }
        let since = Instant::now();
        self.lifetimes.lock().unwrap_or_else(|p| p.into_inner()).unseals += 1;
        let mut seed = MLockedSeed::<32>::new()
            .map_err(|_| SignError { code: ReasonCode::FailSigning, detail: "locked memory exhausted".into() })?;
        seed.as_mut_bytes().copy_from_slice(secret.bytes.as_slice());
        drop(secret);
        let key = Ed25519SigningKey::gen_key_m(&seed)
            .map_err(|_| SignError { code: ReasonCode::FailSigning, detail: "key derivation failed".into() })?;
        drop(seed);
        let public = key.derive_verification_key_m().0;
        Ok(Cached { key, public, since })
    }

    /// Signs `message` with key `name` of kind `purpose`, whose public key
    /// must be `expected` (the one the message was built for): (signature,
    /// public key).
    pub fn sign_for(
        &self,
        purpose: Purpose,
        name: &str,
        expected: &[u8; 32],
        message: &[u8],
    ) -> Result<([u8; 64], [u8; 32]), SignError> {
        self.sign_checked(purpose, name, |public| {
            if public == expected {
                Ok(message.to_vec())
            } else {
                Err(SignError {
                    code: ReasonCode::DenyTransactionMismatch,
                    detail: "the key is not the one the transaction was built for".into(),
                })
            }
        })
    }

    /// Signs the message `build` makes from the key's public key (a
    /// SPECTRUM-04 payload names its signer's validator id).
    pub fn sign_built(
        &self,
        purpose: Purpose,
        name: &str,
        build: impl FnOnce(&[u8; 32]) -> Vec<u8>,
    ) -> Result<([u8; 64], [u8; 32]), SignError> {
        self.sign_checked(purpose, name, |public| Ok(build(public)))
    }

    /// Signs what `build` returns for the key's public key, or nothing if it
    /// refuses.
    fn sign_checked(
        &self,
        purpose: Purpose,
        name: &str,
        build: impl FnOnce(&[u8; 32]) -> Result<Vec<u8>, SignError>,
    ) -> Result<([u8; 64], [u8; 32]), SignError> {
        if purpose == Purpose::Legacy {
            return Err(SignError {
                code: ReasonCode::DenyKeyKindMismatch,
                detail: "legacy keys sign nothing; create a solana or raw-ed25519 key".into(),
            });
        }
        let entry = purpose.vault_name(name);
        let name = entry.as_str();
        if self.stopped.load(Ordering::SeqCst) {
            return Err(Self::stopped_error());
        }
        if self.window.is_zero() {
            let c = self.unseal(name)?;
            let built = build(&c.public);
            let sig = built.map(|m| c.key.sign_bytes_m(&m).0);
            let (public, since) = (c.public, c.since);
            drop(c);
            self.wiped(since);
            return Ok((sig?, public));
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Again under the lock: `stop_signing` wipes the cache under it.
        if self.stopped.load(Ordering::SeqCst) {
            return Err(Self::stopped_error());
        }
        let fresh = cache.get(name).is_some_and(|c| c.since.elapsed() < self.window);
        if !fresh {
            if let Some(old) = cache.remove(name) {
                let since = old.since;
                drop(old);
                self.wiped(since);
            }
            // Unsealing under the cache lock keeps one unseal per key even
            // when many requests arrive together.
            let c = self.unseal(name)?;
            cache.insert(name.to_string(), c);
        }
        let c = cache.get(name).expect("inserted above");
        let message = build(&c.public)?;
        Ok((c.key.sign_bytes_m(&message).0, c.public))
    }

    /// Drops every key whose window has passed (or all, at shutdown).
    pub fn reap(&self, all: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let expired: Vec<String> =
            cache.iter().filter(|(_, c)| all || c.since.elapsed() >= self.window).map(|(n, _)| n.clone()).collect();
        for n in expired {
            if let Some(c) = cache.remove(&n) {
                let since = c.since;
                drop(c);
                self.wiped(since);
            }
        }
    }

    /// Fails closed when the reaper cannot keep the window any more (it
    /// died): every later signature is refused (`FAIL_SIGNING`) and every
    /// cached key is wiped now. There is no way back; the daemon restarts.
    pub fn stop_signing(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.reap(true);
    }

    /// Whether [`Keys::stop_signing`] was called.
    pub fn signing_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn stopped_error() -> SignError {
        SignError {
            code: ReasonCode::FailSigning,
            detail: "signing stopped: a keywardd background thread died and the daemon is restarting".into(),
        }
    }

    /// How often the reaper must run to keep the bound.
    pub fn reap_interval(&self) -> Duration {
        (self.window / 10).clamp(Duration::from_millis(5), Duration::from_millis(100))
    }

    /// Creates Ed25519 key `name` for `purpose` from fresh randomness; its
    /// public key.
    pub fn create(&self, purpose: Purpose, name: &str) -> Result<[u8; 32], SignError> {
        let mut vault = self.vault();
        let entry = purpose.vault_name(name);
        let existing = vault.list().map_err(|e| vault_error(&e))?;
        // Intent keys share one namespace of names: a name means one key.
        let taken = if purpose == Purpose::Proof {
            existing.contains(&entry)
        } else {
            INTENT_KINDS.iter().any(|p| existing.contains(&p.vault_name(name)))
        };
        if taken {
            return Err(SignError { code: ReasonCode::FailSigning, detail: "a key with this name exists".into() });
        }
        let seed = MLockedSeed::<32>::new_random().map_err(|_| SignError {
            code: ReasonCode::FailSigning,
            detail: "no randomness or locked memory".into(),
        })?;
        vault.put(&entry, SecretKind::Ed25519Seed, seed.as_bytes()).map_err(|e| vault_error(&e))?;
        let key = Ed25519SigningKey::gen_key_m(&seed)
            .map_err(|_| SignError { code: ReasonCode::FailSigning, detail: "key derivation failed".into() })?;
        let public = key.derive_verification_key_m().0;
        drop(vault);
        self.directory().insert(entry, (purpose, public));
        Ok(public)
    }

    /// The names of the keys with `purpose`.
    pub fn list(&self, purpose: Purpose) -> Result<Vec<String>, SignError> {
        let names = self.vault().list().map_err(|e| vault_error(&e))?;
        Ok(names.iter().filter_map(|n| n.strip_prefix(purpose.prefix()).map(str::to_owned)).collect())
    }

    pub fn lifetimes(&self) -> Lifetimes {
        *self.lifetimes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn window(&self) -> Duration {
        self.window
    }
}
