//! Records (normative: docs/ipc-protocol.md, "Records" and "Rekeying").
//!
//! Every message after the handshake is one AEAD record. Its header (version,
//! session id, sender, message type, counter) is the associated data, so none
//! of it can be changed without the tag failing. Counters start at 1 in each
//! direction and must arrive exactly in order: the transport is a stream, so
//! anything else is a replay or a reordering (`DENY_REPLAY`). A tag failure
//! (`DENY_AEAD_INTEGRITY`) ends the session. The nonce is derived from the
//! session id, counter and sender under a per-direction nonce key, so two
//! records can never share one.
//!
//! Each direction re-keys on its own schedule (every 1 000 records or 5
//! minutes, whichever comes first): the sender sends a `KeyUpdate` record
//! under the old key and then both ends ratchet that direction's keys with
//! HKDF; the old keys are overwritten before the new ones are used.

use std::time::Duration;

use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::IpcError;
use crate::handshake::VERSION;
use crate::session::{self, SessionState};

pub const HEADER_LEN: usize = 28;
pub const TAG_LEN: usize = 16;
/// Largest application payload in one record.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Message types.
pub mod msg {
    pub const REQUEST: u8 = 0x10;
    pub const RESPONSE: u8 = 0x11;
    pub const ERROR: u8 = 0x12;
    /// The sender's keys for this direction ratchet after this record.
    pub const KEY_UPDATE: u8 = 0x7e;
    /// The sender closes the session.
    pub const CLOSE: u8 = 0x7f;
}

/// The record AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// X25519, HKDF-SHA256, XChaCha20-Poly1305 (the strict profile).
    XChaCha20Poly1305,
    /// The same with AES-256-GCM: only under an explicit compatibility setting.
    Aes256Gcm,
}

impl Suite {
    pub fn id(self) -> u8 {
        match self {
            Suite::XChaCha20Poly1305 => 1,
            Suite::Aes256Gcm => 2,
        }
    }

    pub fn from_id(id: u8) -> Result<Self, IpcError> {
        match id {
            1 => Ok(Suite::XChaCha20Poly1305),
            2 => Ok(Suite::Aes256Gcm),
            other => Err(IpcError::UnsupportedSuite { id: other }),
        }
    }

    fn nonce_len(self) -> usize {
        match self {
            Suite::XChaCha20Poly1305 => 24,
            Suite::Aes256Gcm => 12,
        }
    }
}

/// Which end sent a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Client = 1,
    Signer = 2,
}

impl Direction {
    fn peer(self) -> Self {
        match self {
            Direction::Client => Direction::Signer,
            Direction::Signer => Direction::Client,
        }
    }
}

/// One direction's keys.
pub(crate) struct TrafficKeys {
    pub(crate) key: Zeroizing<[u8; 32]>,
    pub(crate) nonce_key: Zeroizing<[u8; 32]>,
}

impl TrafficKeys {
    /// The next generation: `HKDF-Expand(PRK = key, "kw1 key update")` and
    /// likewise for the nonce key. The old bytes are overwritten in place.
    fn ratchet(&mut self) {
        let next = |prk: &[u8; 32], label: &[u8]| {
            let hk = Hkdf::<Sha256>::from_prk(prk).expect("32-byte PRK");
            let mut out = Zeroizing::new([0u8; 32]);
            hk.expand(label, out.as_mut()).expect("valid length");
            out
        };
        let key = next(&self.key, b"kw1 key update");
        let nonce_key = next(&self.nonce_key, b"kw1 nonce update");
        self.key.copy_from_slice(key.as_ref());
        self.nonce_key.copy_from_slice(nonce_key.as_ref());
    }
}

/// When a sender re-keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyPolicy {
    pub max_records: u64,
    pub max_age: Duration,
}

impl Default for RekeyPolicy {
    fn default() -> Self {
        RekeyPolicy { max_records: 1000, max_age: Duration::from_secs(300) }
    }
}

/// A monotonic clock (injectable for tests).
pub trait Clock {
    fn now(&self) -> Duration;
}

/// `std::time::Instant` since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock(std::time::Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(std::time::Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

struct Half {
    keys: TrafficKeys,
    /// The counter of the next record (send) or the next expected (receive).
    next: u64,
    /// Records under the current keys, and when they were installed.
    since_update: u64,
    installed: Duration,
    generation: u64,
}

/// An established session: seals outgoing records, opens incoming ones.
pub struct Channel {
    session_id: [u8; 16],
    suite: Suite,
    me: Direction,
    send: Half,
    recv: Half,
    state: SessionState,
    policy: RekeyPolicy,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("session_id", &crate::handshake::hex(&self.session_id))
            .field("suite", &self.suite)
            .field("me", &self.me)
            .field("sent", &(self.send.next - 1))
            .field("received", &(self.recv.next - 1))
            .finish_non_exhaustive()
    }
}

/// An opened record.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub msg_type: u8,
    pub payload: Zeroizing<Vec<u8>>,
}

fn header(session_id: &[u8; 16], sender: Direction, msg_type: u8, counter: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(&VERSION.to_be_bytes());
    h[2..18].copy_from_slice(session_id);
    h[18] = sender as u8;
    h[19] = msg_type;
    h[20..28].copy_from_slice(&counter.to_be_bytes());
    h
}

/// `HKDF-Expand(PRK = nonce key, "kw1 record nonce" ‖ session id ‖ counter ‖ sender, L)`.
pub(crate) fn record_nonce(
    nonce_key: &[u8; 32],
    session_id: &[u8; 16],
    counter: u64,
    sender: Direction,
    len: usize,
) -> [u8; 24] {
    let hk = Hkdf::<Sha256>::from_prk(nonce_key).expect("32-byte PRK");
    let mut info = Vec::with_capacity(16 + 16 + 8 + 1);
    info.extend_from_slice(b"kw1 record nonce");
    info.extend_from_slice(session_id);
    info.extend_from_slice(&counter.to_be_bytes());
    info.push(sender as u8);
    let mut out = [0u8; 24];
    hk.expand(&info, &mut out[..len]).expect("valid length");
    out
}

fn aead_seal(suite: Suite, key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    fn go<C: KeyInit + AeadInOut>(key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let c = C::new_from_slice(key).expect("32-byte key");
        let tag = c.encrypt_inout_detached(nonce.try_into().expect("nonce size"), aad, buf.into()).expect("size");
        tag.as_slice().try_into().expect("16")
    }
    match suite {
        Suite::XChaCha20Poly1305 => go::<XChaCha20Poly1305>(key, &nonce[..24], aad, buf),
        Suite::Aes256Gcm => go::<Aes256Gcm>(key, &nonce[..12], aad, buf),
    }
}

fn aead_open(suite: Suite, key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
    fn go<C: KeyInit + AeadInOut>(key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        let c = C::new_from_slice(key).expect("32-byte key");
        c.decrypt_inout_detached(nonce.try_into().expect("nonce size"), aad, buf.into(), tag.try_into().expect("16"))
            .is_ok()
    }
    match suite {
        Suite::XChaCha20Poly1305 => go::<XChaCha20Poly1305>(key, &nonce[..24], aad, buf, tag),
        Suite::Aes256Gcm => go::<Aes256Gcm>(key, &nonce[..12], aad, buf, tag),
    }
}

impl Channel {
    pub(crate) fn new(session_id: [u8; 16], suite: Suite, me: Direction, send: TrafficKeys, recv: TrafficKeys) -> Self {
        let half = |keys| Half { keys, next: 1, since_update: 0, installed: Duration::ZERO, generation: 0 };
        Channel {
            session_id,
            suite,
            me,
            send: half(send),
            recv: half(recv),
            state: SessionState::established(),
            policy: RekeyPolicy::default(),
        }
    }

    pub fn set_rekey_policy(&mut self, policy: RekeyPolicy) {
        self.policy = policy;
    }

    pub fn session_id(&self) -> [u8; 16] {
        self.session_id
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Key generations so far (sent, received): how many `KeyUpdate`s.
    pub fn generations(&self) -> (u64, u64) {
        (self.send.generation, self.recv.generation)
    }

    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    fn seal_one(&mut self, msg_type: u8, payload: &[u8]) -> Vec<u8> {
        let counter = self.send.next;
        self.send.next += 1;
        self.send.since_update += 1;
        let h = header(&self.session_id, self.me, msg_type, counter);
        let nonce = record_nonce(&self.send.keys.nonce_key, &self.session_id, counter, self.me, self.suite.nonce_len());
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TAG_LEN);
        out.extend_from_slice(&h);
        out.extend_from_slice(payload);
        let tag = aead_seal(self.suite, &self.send.keys.key, &nonce, &h, &mut out[HEADER_LEN..]);
        out.extend_from_slice(&tag);
        out
    }

    /// Seals one message. Returns the records to send, in order: a
    /// `KeyUpdate` first when this direction is due to re-key.
    pub fn seal(&mut self, msg_type: u8, payload: &[u8], clock: &dyn Clock) -> Result<Vec<Vec<u8>>, IpcError> {
        self.state.step(session::Input::Send)?;
        if payload.len() > MAX_PAYLOAD {
            return Err(IpcError::FrameTooLarge { max: MAX_PAYLOAD });
        }
        if msg_type == msg::KEY_UPDATE {
            return Err(IpcError::InvalidTransition);
        }
        let mut records = Vec::with_capacity(2);
        let now = clock.now();
        if self.send.since_update >= self.policy.max_records
            || now.saturating_sub(self.send.installed) >= self.policy.max_age
        {
            records.push(self.seal_one(msg::KEY_UPDATE, &[]));
            self.send.keys.ratchet();
            self.send.since_update = 0;
            self.send.installed = now;
            self.send.generation += 1;
        }
        records.push(self.seal_one(msg_type, payload));
        if msg_type == msg::CLOSE {
            self.state.step(session::Input::Close)?;
        }
        Ok(records)
    }

    /// Opens one record. A `KeyUpdate` is handled here and reported as
    /// `Ok(None)`; any failure closes the session.
    pub fn open(&mut self, record: &[u8], clock: &dyn Clock) -> Result<Option<Opened>, IpcError> {
        self.state.step(session::Input::Receive)?;
        let result = self.open_inner(record, clock);
        match &result {
            Err(_) => {
                let _ = self.state.step(session::Input::Fail);
            }
            Ok(Some(o)) if o.msg_type == msg::CLOSE => {
                let _ = self.state.step(session::Input::Close);
            }
            _ => {}
        }
        result
    }

    fn open_inner(&mut self, record: &[u8], clock: &dyn Clock) -> Result<Option<Opened>, IpcError> {
        if record.len() < HEADER_LEN + TAG_LEN {
            return Err(IpcError::Truncated);
        }
        if record.len() > HEADER_LEN + MAX_PAYLOAD + TAG_LEN {
            return Err(IpcError::FrameTooLarge { max: HEADER_LEN + MAX_PAYLOAD + TAG_LEN });
        }
        let (h, rest) = record.split_at(HEADER_LEN);
        let version = u16::from_be_bytes([h[0], h[1]]);
        if version != VERSION {
            return Err(IpcError::UnsupportedVersion { version });
        }
        let peer = self.me.peer();
        // A wrong session id or sender cannot be a record of this session
        // from the peer: treat it like any other forgery.
        if h[2..18] != self.session_id || h[18] != peer as u8 {
            return Err(IpcError::AeadIntegrity);
        }
        let counter = u64::from_be_bytes(h[20..28].try_into().expect("8"));
        if counter != self.recv.next {
            return Err(IpcError::Replay);
        }
        let msg_type = h[19];
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = record_nonce(&self.recv.keys.nonce_key, &self.session_id, counter, peer, self.suite.nonce_len());
        let mut payload = Zeroizing::new(ct.to_vec());
        if !aead_open(self.suite, &self.recv.keys.key, &nonce, h, &mut payload, tag) {
            return Err(IpcError::AeadIntegrity);
        }
        self.recv.next += 1;
        if msg_type == msg::KEY_UPDATE {
            if !payload.is_empty() {
                return Err(IpcError::Malformed { what: "KeyUpdate with a payload" });
            }
            self.recv.keys.ratchet();
            self.recv.generation += 1;
            self.recv.installed = clock.now();
            return Ok(None);
        }
        Ok(Some(Opened { msg_type, payload }))
    }
}
