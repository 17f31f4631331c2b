//! Signing keys: sealed in the vault, unsealed into locked memory for one
//! operation or for a bounded window, wiped after.
//!
//! A key has a purpose, and the purpose is its vault namespace: intent key
//! `N` is the entry `key.N`, proof key `N` (for signed proofs and SPECTRUM
//! bundles) is `proofkey.N`, both of kind `ed25519-seed`. A request names a
//! key and the operation fixes the namespace, so a payment key can never be
//! made to sign a proof, nor a proof key a payment. With
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
use std::time::{Duration, Instant};

use crypto::ed25519::Ed25519SigningKey;
use policy::ReasonCode;
use secmem::MLockedSeed;
use vault::envelope::SecretKind;
use vault::{SecretProvider, Vault, VaultError};

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Intents decided by the policy (`key.N`, kind `ed25519`).
    Intent,
    /// Proofs and SPECTRUM-04 bundle payloads (`proofkey.N`, kind `proof-ed25519`).
    Proof,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Intent => "key.",
            Purpose::Proof => "proofkey.",
        }
    }

    /// The kind a caller names when creating such a key.
    pub fn kind(self) -> &'static str {
        match self {
            Purpose::Intent => "ed25519",
            Purpose::Proof => "proof-ed25519",
        }
    }

    pub fn from_kind(kind: &str) -> Option<Purpose> {
        [Purpose::Intent, Purpose::Proof].into_iter().find(|p| p.kind() == kind)
    }

    /// The vault entry of key `name` with this purpose.
    pub fn vault_name(self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }
}

/// The vault name of intent key `name`.
pub fn vault_name(name: &str) -> String {
    Purpose::Intent.vault_name(name)
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
    cache: Mutex<HashMap<String, Cached>>,
    window: Duration,
    lifetimes: Mutex<Lifetimes>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("window", &self.window).finish_non_exhaustive()
    }
}

impl Keys {
    pub fn new(vault: Vault, window: Duration) -> Keys {
        Keys { vault: Mutex::new(vault), cache: Mutex::new(HashMap::new()), window, lifetimes: Mutex::default() }
    }

    fn vault(&self) -> std::sync::MutexGuard<'_, Vault> {
        self.vault.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Signs `message` with intent key `name`: (signature, public key).
    pub fn sign(&self, name: &str, message: &[u8]) -> Result<([u8; 64], [u8; 32]), SignError> {
        self.sign_built(Purpose::Intent, name, |_| message.to_vec())
    }

    /// Signs the message `build` makes from the key's public key (a
    /// SPECTRUM-04 payload names its signer's validator id).
    pub fn sign_built(
        &self,
        purpose: Purpose,
        name: &str,
        build: impl FnOnce(&[u8; 32]) -> Vec<u8>,
    ) -> Result<([u8; 64], [u8; 32]), SignError> {
        let entry = purpose.vault_name(name);
        let name = entry.as_str();
        if self.window.is_zero() {
            let c = self.unseal(name)?;
            let sig = c.key.sign_bytes_m(&build(&c.public)).0;
            let (public, since) = (c.public, c.since);
            drop(c);
            self.wiped(since);
            return Ok((sig, public));
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
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
        Ok((c.key.sign_bytes_m(&build(&c.public)).0, c.public))
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

    /// How often the reaper must run to keep the bound.
    pub fn reap_interval(&self) -> Duration {
        (self.window / 10).clamp(Duration::from_millis(5), Duration::from_millis(100))
    }

    /// Creates Ed25519 key `name` for `purpose` from fresh randomness; its
    /// public key.
    pub fn create(&self, purpose: Purpose, name: &str) -> Result<[u8; 32], SignError> {
        let mut vault = self.vault();
        let entry = purpose.vault_name(name);
        if vault.list().map_err(|e| vault_error(&e))?.contains(&entry) {
            return Err(SignError { code: ReasonCode::FailSigning, detail: "a key with this name exists".into() });
        }
        let seed = MLockedSeed::<32>::new_random().map_err(|_| SignError {
            code: ReasonCode::FailSigning,
            detail: "no randomness or locked memory".into(),
        })?;
        vault.put(&entry, SecretKind::Ed25519Seed, seed.as_bytes()).map_err(|e| vault_error(&e))?;
        let key = Ed25519SigningKey::gen_key_m(&seed)
            .map_err(|_| SignError { code: ReasonCode::FailSigning, detail: "key derivation failed".into() })?;
        Ok(key.derive_verification_key_m().0)
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
