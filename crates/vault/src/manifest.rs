//! The vault manifest: the authenticated list of what the vault holds, at
//! which epoch, tied to the TPM's monotonic counter (normative spec:
//! docs/envelope-format.md, "Manifest" and "Transactions").
//!
//! Each blob carries its epoch in its AEAD-bound header, but a blob alone
//! cannot know it has been superseded: an older, perfectly valid blob put
//! back in place would open. The manifest records, per name, the epoch and
//! the SHA-256 of the current blob, and as a whole the epoch counter value of
//! the last committed write. It is MACed (HMAC-SHA256) under a key derived
//! from the TPM-sealed KEK, so nobody without the TPM can forge it, and the
//! TPM counter (which only goes up) says which manifest is current: an older
//! manifest is refused as a rollback.
//!
//! A write is a two-phase transaction whose commit point is the TPM counter
//! increment; `pending` carries the prepared transaction so that a crash
//! before the increment rolls back and a crash after it rolls forward.

use std::collections::BTreeMap;

use hmac::{KeyInit, Mac};
use secmem::MLockedSizedBytes;
use sha2::Sha256;

use crate::VaultError;
use crate::envelope::{SecretKind, validate_name};

pub const MANIFEST_MAGIC: [u8; 4] = *b"KWMF";
pub const MANIFEST_VERSION: u16 = 1;
const MAC_SIZE: usize = 32;
/// Far above any real vault; bounds parsing of hostile input.
const MAX_ENTRIES: u32 = 1 << 20;

pub type KeyId = [u8; 16];

/// Which keys are live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The KEK every DEK is wrapped under.
    pub kek_id: KeyId,
    /// The DEK new blobs are sealed with.
    pub current_dek: KeyId,
    /// During a DEK rotation, the DEK blobs are being moved off.
    pub retiring_dek: Option<KeyId>,
    /// The X25519 public key DEKs are also wrapped to, for offline recovery.
    pub recovery: Option<[u8; 32]>,
}

impl Meta {
    /// The DEKs blobs may be sealed under: the current one and, during a
    /// rotation, the retiring one.
    pub fn live_deks(&self) -> impl Iterator<Item = KeyId> {
        std::iter::once(self.current_dek).chain(self.retiring_dek)
    }
}

/// One stored secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub epoch: u64,
    pub dek_id: KeyId,
    pub kind: SecretKind,
    /// SHA-256 of the whole blob file.
    pub digest: [u8; 32],
}

/// One change in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `name` becomes the staged blob described by the entry.
    Put {
        name: String,
        entry: Entry,
    },
    Delete {
        name: String,
    },
}

/// A prepared transaction: its blobs are staged, and it commits when the
/// TPM counter reaches `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub epoch: u64,
    pub meta: Meta,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The TPM epoch counter value of the last committed transaction.
    pub counter: u64,
    pub meta: Meta,
    pub entries: BTreeMap<String, Entry>,
    pub pending: Option<Pending>,
}

impl Manifest {
    /// Applies a committed transaction.
    pub fn apply(&mut self, pending: Pending) {
        self.counter = pending.epoch;
        self.meta = pending.meta;
        for op in pending.ops {
            match op {
                Op::Put { name, entry } => {
                    self.entries.insert(name, entry);
                }
                Op::Delete { name } => {
                    self.entries.remove(&name);
                }
            }
        }
        self.pending = None;
    }

    /// The KEK id, read without the MAC key (to find which KEK to unseal).
    pub fn peek_kek_id(bytes: &[u8]) -> Result<KeyId, VaultError> {
        check_head(bytes)?;
        bytes.get(14..30).map(|b| b.try_into().expect("16")).ok_or(VaultError::ManifestMalformed)
    }

    pub fn encode(&self, mac_key: &MacKey) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.extend_from_slice(&MANIFEST_VERSION.to_be_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
        put_meta(&mut out, &self.meta);
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for (name, entry) in &self.entries {
            put_name(&mut out, name);
            put_entry(&mut out, entry);
        }
        match &self.pending {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                out.extend_from_slice(&p.epoch.to_be_bytes());
                put_meta(&mut out, &p.meta);
                out.extend_from_slice(&(p.ops.len() as u32).to_be_bytes());
                for op in &p.ops {
                    match op {
                        Op::Put { name, entry } => {
                            out.push(1);
                            put_name(&mut out, name);
                            put_entry(&mut out, entry);
                        }
                        Op::Delete { name } => {
                            out.push(2);
                            put_name(&mut out, name);
                        }
                    }
                }
            }
        }
        let tag = mac_key.tag(&out);
        out.extend_from_slice(&tag);
        out
    }

    /// Checks the MAC (in constant time), then parses.
    pub fn decode(bytes: &[u8], mac_key: &MacKey) -> Result<Manifest, VaultError> {
        check_head(bytes)?;
        if bytes.len() < 6 + MAC_SIZE {
            return Err(VaultError::ManifestMalformed);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_SIZE);
        if !secmem::ct::ct_eq_bytes(&mac_key.tag(body), tag) {
            return Err(VaultError::ManifestTampered);
        }
        // Authentic from here on; a parse failure means a bug or a version
        // mismatch, never an attacker's choice.
        let mut r = Reader { b: body, at: 6 };
        let counter = r.u64()?;
        let meta = r.meta()?;
        let n = r.count()?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let name = r.name()?;
            let entry = r.entry()?;
            entries.insert(name, entry);
        }
        let pending = match r.u8()? {
            0 => None,
            1 => {
                let epoch = r.u64()?;
                let meta = r.meta()?;
                let n = r.count()?;
                let mut ops = Vec::new();
                for _ in 0..n {
                    ops.push(match r.u8()? {
                        1 => Op::Put { name: r.name()?, entry: r.entry()? },
                        2 => Op::Delete { name: r.name()? },
                        _ => return Err(VaultError::ManifestMalformed),
                    });
                }
                Some(Pending { epoch, meta, ops })
            }
            _ => return Err(VaultError::ManifestMalformed),
        };
        if r.at != body.len() {
            return Err(VaultError::ManifestMalformed);
        }
        Ok(Manifest { counter, meta, entries, pending })
    }
}

fn check_head(bytes: &[u8]) -> Result<(), VaultError> {
    if bytes.len() < 6 || bytes[..4] != MANIFEST_MAGIC {
        return Err(VaultError::ManifestMalformed);
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != MANIFEST_VERSION {
        return Err(VaultError::UnknownVersion { version });
    }
    Ok(())
}

/// The manifest MAC key: HMAC-SHA256(KEK, label), in locked memory.
pub struct MacKey(MLockedSizedBytes<32>);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

const MAC_LABEL: &[u8] = b"keyward/v1/manifest-mac";

impl MacKey {
    pub fn derive(kek: &crate::tpm::Kek) -> Result<MacKey, VaultError> {
        let mut key = MLockedSizedBytes::<32>::new()?;
        secmem::scrubbed(|| {
            let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(kek.as_locked().as_slice())
                .expect("HMAC takes any key length");
            mac.update(MAC_LABEL);
            key.as_mut_slice().copy_from_slice(&mac.finalize().into_bytes());
        });
        Ok(MacKey(key))
    }

    fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac =
            <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice()).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

fn put_meta(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(&m.kek_id);
    out.extend_from_slice(&m.current_dek);
    match m.retiring_dek {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id);
        }
    }
    match m.recovery {
        None => out.push(0),
        Some(pk) => {
            out.push(1);
            out.extend_from_slice(&pk);
        }
    }
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

fn put_entry(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(&e.epoch.to_be_bytes());
    out.extend_from_slice(&e.dek_id);
    out.push(e.kind as u8);
    out.extend_from_slice(&e.digest);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], VaultError> {
        let s = self.b.get(self.at..self.at + n).ok_or(VaultError::ManifestMalformed)?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, VaultError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, VaultError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn count(&mut self) -> Result<u32, VaultError> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().expect("4"));
        if n > MAX_ENTRIES { Err(VaultError::ManifestMalformed) } else { Ok(n) }
    }
    fn id(&mut self) -> Result<KeyId, VaultError> {
        Ok(self.take(16)?.try_into().expect("16"))
    }
    fn meta(&mut self) -> Result<Meta, VaultError> {
        let kek_id = self.id()?;
        let current_dek = self.id()?;
        let retiring_dek = match self.u8()? {
            0 => None,
            1 => Some(self.id()?),
            _ => return Err(VaultError::ManifestMalformed),
        };
        let recovery = match self.u8()? {
            0 => None,
            1 => Some(self.take(32)?.try_into().expect("32")),
            _ => return Err(VaultError::ManifestMalformed),
        };
        Ok(Meta { kek_id, current_dek, retiring_dek, recovery })
    }
    fn name(&mut self) -> Result<String, VaultError> {
        let n = usize::from(self.u8()?);
        let name = std::str::from_utf8(self.take(n)?).map_err(|_| VaultError::ManifestMalformed)?;
        validate_name(name).map_err(|_| VaultError::ManifestMalformed)?;
        Ok(name.to_string())
    }
    fn entry(&mut self) -> Result<Entry, VaultError> {
        let epoch = self.u64()?;
        let dek_id = self.id()?;
        let kind = SecretKind::from_id(self.u8()?).map_err(|_| VaultError::ManifestMalformed)?;
        let digest = self.take(32)?.try_into().expect("32");
        Ok(Entry { epoch, dek_id, kind, digest })
    }
}
