//! The handshake (normative: docs/ipc-protocol.md, "Handshake").
//!
//! One round trip and a confirmation. The client knows the signer's static
//! X25519 identity key in advance (pinned from a file, like `known_hosts`)
//! and sends an ephemeral share; the signer answers with its own ephemeral
//! share and a MAC over the transcript that only the holder of the static
//! key can compute. Both Diffie-Hellman results feed the key schedule:
//! `ee` gives forward secrecy (a later leak of the static key does not open
//! recorded sessions), `es` authenticates the signer. The client is
//! authenticated by the kernel (`SO_PEERCRED`), not by a key: a local caller
//! has no key to steal.

use curve25519_dalek::montgomery::MontgomeryPoint;
use hkdf::Hkdf;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::IpcError;
use crate::record::{Channel, Direction, Suite, TrafficKeys};

pub const MAGIC: [u8; 4] = *b"KWIP";
pub const VERSION: u16 = 1;
const TYPE_CLIENT_HELLO: u8 = 1;
const TYPE_SERVER_HELLO: u8 = 2;
const TYPE_CLIENT_FINISHED: u8 = 3;
/// Largest accepted difference between the peers' `created_at` clocks.
pub const MAX_CLOCK_SKEW_SECS: u64 = 120;
const TRANSCRIPT_LABEL: &[u8] = b"keyward-ipc-v1 handshake";
const SERVER_HELLO_LEN: usize = 128;
const CLIENT_FINISHED_LEN: usize = 56;

/// The signer's static identity key (X25519).
pub struct SignerIdentity {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl std::fmt::Debug for SignerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerIdentity(public={}, <secret redacted>)", hex(&self.public))
    }
}

/// The signer's static X25519 key as the handshake needs it: its public half
/// and a Diffie-Hellman with it. The daemon implements this over locked
/// memory (`signer::daemon::identity`); [`SignerIdentity`] is the plain
/// implementation the tests and known-answer vectors use. The handshake never
/// sees the secret scalar itself.
pub trait StaticKey {
    fn public(&self) -> [u8; 32];
    /// `X25519(secret, peer)`; an all-zero result is refused.
    fn agree(&self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, IpcError>;
}

impl StaticKey for SignerIdentity {
    fn public(&self) -> [u8; 32] {
        self.public
    }

    fn agree(&self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, IpcError> {
        x25519(&self.secret, peer)
    }
}

impl SignerIdentity {
    /// A new random identity.
    pub fn generate() -> Result<Self, IpcError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut()).map_err(|_| IpcError::Random)?;
        Ok(Self::from_secret(secret))
    }

    /// The identity with this secret scalar (taken from the vault).
    pub fn from_secret(secret: Zeroizing<[u8; 32]>) -> Self {
        let public = x25519_public(&secret);
        SignerIdentity { secret, public }
    }

    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The secret scalar, for sealing into the vault.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

/// The 16-byte id of a signer public key: SHA-256(key)[..16].
pub fn key_id(public: &[u8; 32]) -> [u8; 16] {
    Sha256::digest(public)[..16].try_into().expect("16")
}

/// Text form of a pinned signer key: `keyward-signer-v1 <64 hex>`.
pub const PIN_PREFIX: &str = "keyward-signer-v1 ";

pub fn pin_to_text(public: &[u8; 32]) -> String {
    format!("{PIN_PREFIX}{}\n", hex(public))
}

/// Parses a pin file (the first non-empty, non-`#` line).
pub fn pin_from_text(text: &str) -> Result<[u8; 32], IpcError> {
    let bad = IpcError::Malformed { what: "signer pin (keyward-signer-v1 <64 hex>)" };
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).ok_or(bad.clone())?;
    let h = line.strip_prefix(PIN_PREFIX.trim_end()).map(str::trim).ok_or(bad.clone())?;
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad);
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| bad.clone())?;
    }
    Ok(out)
}

/// Lower-case hex, for public values (key ids, session ids) in logs.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The X25519 public key of a secret scalar (RFC 7748, clamped).
pub fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

/// `X25519(secret, public)`, refusing the all-zero output of a low-order share.
pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, IpcError> {
    let shared = Zeroizing::new(MontgomeryPoint(*public).mul_clamped(*secret).to_bytes());
    if bool::from(shared.ct_eq(&[0u8; 32])) {
        return Err(IpcError::HandshakeIntegrity { what: "low-order key share" });
    }
    Ok(shared)
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Everything both sides derive from one handshake.
pub(crate) struct Schedule {
    server_finished: Zeroizing<[u8; 32]>,
    client_finished: Zeroizing<[u8; 32]>,
    pub(crate) c2s: TrafficKeys,
    pub(crate) s2c: TrafficKeys,
}

/// `PRK = HKDF-Extract(salt = TH1, IKM = ee ‖ es)`, then one HKDF-Expand per label.
pub(crate) fn schedule(th1: &[u8; 32], ee: &[u8; 32], es: &[u8; 32]) -> Schedule {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(ee);
    ikm[32..].copy_from_slice(es);
    let hk = Hkdf::<Sha256>::new(Some(th1), ikm.as_ref());
    let expand = |label: &[u8]| {
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(label, out.as_mut()).expect("32 bytes is a valid HKDF length");
        out
    };
    Schedule {
        server_finished: expand(b"kw1 server finished"),
        client_finished: expand(b"kw1 client finished"),
        c2s: TrafficKeys { key: expand(b"kw1 c2s key"), nonce_key: expand(b"kw1 c2s nonce") },
        s2c: TrafficKeys { key: expand(b"kw1 s2c key"), nonce_key: expand(b"kw1 s2c nonce") },
    }
}

fn transcript1(client_hello: &[u8], server_hello_body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(TRANSCRIPT_LABEL);
    h.update(client_hello);
    h.update(server_hello_body);
    h.finalize().into()
}

fn transcript2(th1: &[u8; 32], server_confirm: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(th1).chain_update(server_confirm).finalize().into()
}

fn check_head(m: &[u8], want_type: u8) -> Result<Suite, IpcError> {
    if m.len() < 8 {
        return Err(IpcError::Truncated);
    }
    if m[..4] != MAGIC {
        return Err(IpcError::Malformed { what: "handshake magic" });
    }
    let version = u16::from_be_bytes([m[4], m[5]]);
    if version != VERSION {
        return Err(IpcError::UnsupportedVersion { version });
    }
    if m[6] != want_type {
        return Err(IpcError::Malformed { what: "handshake message type" });
    }
    Suite::from_id(m[7])
}

fn check_clock(theirs: u64, ours: u64) -> Result<(), IpcError> {
    if theirs.abs_diff(ours) > MAX_CLOCK_SKEW_SECS {
        return Err(IpcError::HandshakeIntegrity { what: "creation time outside the allowed clock skew" });
    }
    Ok(())
}

/// The client's half-finished handshake.
pub struct ClientHandshake {
    ephemeral: Zeroizing<[u8; 32]>,
    pinned: [u8; 32],
    suite: Suite,
    hello: Vec<u8>,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake").field("pinned", &hex(&self.pinned)).finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Starts a handshake with the signer whose key is `pinned`. `claims`
    /// (at most 255 bytes, e.g. `role=agent`) are bound into the transcript;
    /// the signer authorises by the kernel-reported peer identity, not by them.
    pub fn start(pinned: [u8; 32], claims: &str, suite: Suite, now_unix: u64) -> Result<(Self, Vec<u8>), IpcError> {
        let mut e = Zeroizing::new([0u8; 32]);
        getrandom::fill(e.as_mut()).map_err(|_| IpcError::Random)?;
        Self::start_with_ephemeral(e, pinned, claims, suite, now_unix)
    }

    /// [`ClientHandshake::start`] with a given ephemeral secret: the same
    /// code path, used for the known-answer vectors in the spec.
    pub fn start_with_ephemeral(
        ephemeral: Zeroizing<[u8; 32]>,
        pinned: [u8; 32],
        claims: &str,
        suite: Suite,
        now_unix: u64,
    ) -> Result<(Self, Vec<u8>), IpcError> {
        if claims.len() > 255 {
            return Err(IpcError::Malformed { what: "claims longer than 255 bytes" });
        }
        let public = MontgomeryPoint::mul_base_clamped(*ephemeral).to_bytes();
        let mut hello = Vec::with_capacity(65 + claims.len());
        hello.extend_from_slice(&MAGIC);
        hello.extend_from_slice(&VERSION.to_be_bytes());
        hello.push(TYPE_CLIENT_HELLO);
        hello.push(suite.id());
        hello.extend_from_slice(&now_unix.to_be_bytes());
        hello.extend_from_slice(&public);
        hello.extend_from_slice(&key_id(&pinned));
        hello.push(claims.len() as u8);
        hello.extend_from_slice(claims.as_bytes());
        Ok((ClientHandshake { ephemeral, pinned, suite, hello: hello.clone() }, hello))
    }

    /// Checks the signer's answer and derives the session. Returns the
    /// channel and the `ClientFinished` message to send.
    pub fn finish(self, server_hello: &[u8], now_unix: u64) -> Result<(Channel, Vec<u8>), IpcError> {
        let suite = check_head(server_hello, TYPE_SERVER_HELLO)?;
        if server_hello.len() != SERVER_HELLO_LEN {
            return Err(IpcError::Malformed { what: "ServerHello length" });
        }
        if suite != self.suite {
            return Err(IpcError::HandshakeIntegrity { what: "signer changed the cipher suite" });
        }
        check_clock(u64::from_be_bytes(server_hello[8..16].try_into().expect("8")), now_unix)?;
        let session_id: [u8; 16] = server_hello[16..32].try_into().expect("16");
        let signer_static: [u8; 32] = server_hello[32..64].try_into().expect("32");
        let signer_ephemeral: [u8; 32] = server_hello[64..96].try_into().expect("32");
        if !bool::from(signer_static.ct_eq(&self.pinned)) {
            return Err(IpcError::HandshakeIntegrity { what: "signer key differs from the pinned key" });
        }
        let ee = x25519(&self.ephemeral, &signer_ephemeral)?;
        let es = x25519(&self.ephemeral, &self.pinned)?;
        let th1 = transcript1(&self.hello, &server_hello[..96]);
        let s = schedule(&th1, &ee, &es);
        let expected = hmac(s.server_finished.as_ref(), &[&th1]);
        if !bool::from(expected.ct_eq(&server_hello[96..128])) {
            return Err(IpcError::HandshakeIntegrity { what: "signer confirmation does not match the transcript" });
        }
        let th2 = transcript2(&th1, &server_hello[96..128]);
        let mut fin = Vec::with_capacity(CLIENT_FINISHED_LEN);
        fin.extend_from_slice(&MAGIC);
        fin.extend_from_slice(&VERSION.to_be_bytes());
        fin.push(TYPE_CLIENT_FINISHED);
        fin.push(suite.id());
        fin.extend_from_slice(&session_id);
        fin.extend_from_slice(&hmac(s.client_finished.as_ref(), &[&th2]));
        let channel = Channel::new(session_id, suite, Direction::Client, s.c2s, s.s2c);
        Ok((channel, fin))
    }
}

/// What the signer learned from a `ClientHello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientClaims {
    pub claims: String,
    pub suite: Suite,
}

/// The signer's half-finished handshake, waiting for `ClientFinished`.
pub struct ServerHandshake {
    session_id: [u8; 16],
    suite: Suite,
    th2: [u8; 32],
    client_finished: Zeroizing<[u8; 32]>,
    c2s: TrafficKeys,
    s2c: TrafficKeys,
    pub claims: ClientClaims,
}

impl std::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandshake").field("session_id", &hex(&self.session_id)).finish_non_exhaustive()
    }
}

/// Which suites the signer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuitePolicy {
    /// XChaCha20-Poly1305 only.
    Strict,
    /// Also AES-256-GCM (the caller logs a compliance warning per session).
    Compatibility,
}

impl ServerHandshake {
    /// Answers a `ClientHello` with fresh randomness.
    pub fn respond(
        identity: &dyn StaticKey,
        client_hello: &[u8],
        now_unix: u64,
        policy: SuitePolicy,
    ) -> Result<(Self, Vec<u8>), IpcError> {
        let mut e = Zeroizing::new([0u8; 32]);
        getrandom::fill(e.as_mut()).map_err(|_| IpcError::Random)?;
        let mut session_id = [0u8; 16];
        getrandom::fill(&mut session_id).map_err(|_| IpcError::Random)?;
        Self::respond_with(identity, client_hello, now_unix, policy, e, session_id)
    }

    /// [`ServerHandshake::respond`] with given randomness (known-answer vectors).
    pub fn respond_with(
        identity: &dyn StaticKey,
        client_hello: &[u8],
        now_unix: u64,
        policy: SuitePolicy,
        ephemeral: Zeroizing<[u8; 32]>,
        session_id: [u8; 16],
    ) -> Result<(Self, Vec<u8>), IpcError> {
        let suite = check_head(client_hello, TYPE_CLIENT_HELLO)?;
        if client_hello.len() < 65 || client_hello.len() != 65 + usize::from(client_hello[64]) {
            return Err(IpcError::Malformed { what: "ClientHello length" });
        }
        if suite == Suite::Aes256Gcm && policy == SuitePolicy::Strict {
            return Err(IpcError::UnsupportedSuite { id: suite.id() });
        }
        check_clock(u64::from_be_bytes(client_hello[8..16].try_into().expect("8")), now_unix)?;
        let client_ephemeral: [u8; 32] = client_hello[16..48].try_into().expect("32");
        if client_hello[48..64] != key_id(&identity.public()) {
            return Err(IpcError::HandshakeIntegrity { what: "client pinned another signer key" });
        }
        let claims = std::str::from_utf8(&client_hello[65..])
            .map_err(|_| IpcError::Malformed { what: "claims (not UTF-8)" })?
            .to_string();
        let ee = x25519(&ephemeral, &client_ephemeral)?;
        let es = identity.agree(&client_ephemeral)?;
        let ephemeral_public = MontgomeryPoint::mul_base_clamped(*ephemeral).to_bytes();
        let mut hello = Vec::with_capacity(SERVER_HELLO_LEN);
        hello.extend_from_slice(&MAGIC);
        hello.extend_from_slice(&VERSION.to_be_bytes());
        hello.push(TYPE_SERVER_HELLO);
        hello.push(suite.id());
        hello.extend_from_slice(&now_unix.to_be_bytes());
        hello.extend_from_slice(&session_id);
        hello.extend_from_slice(&identity.public());
        hello.extend_from_slice(&ephemeral_public);
        let th1 = transcript1(client_hello, &hello);
        let s = schedule(&th1, &ee, &es);
        let confirm = hmac(s.server_finished.as_ref(), &[&th1]);
        hello.extend_from_slice(&confirm);
        let th2 = transcript2(&th1, &confirm);
        let Schedule { client_finished, c2s, s2c, .. } = s;
        Ok((
            ServerHandshake {
                session_id,
                suite,
                th2,
                client_finished,
                c2s,
                s2c,
                claims: ClientClaims { claims, suite },
            },
            hello,
        ))
    }

    /// Checks `ClientFinished` and opens the channel.
    pub fn finish(mut self, client_finished: &[u8]) -> Result<Channel, IpcError> {
        let suite = check_head(client_finished, TYPE_CLIENT_FINISHED)?;
        if client_finished.len() != CLIENT_FINISHED_LEN || suite != self.suite {
            return Err(IpcError::Malformed { what: "ClientFinished" });
        }
        if client_finished[8..24] != self.session_id {
            return Err(IpcError::HandshakeIntegrity { what: "ClientFinished names another session" });
        }
        let expected = hmac(self.client_finished.as_ref(), &[&self.th2]);
        self.th2.zeroize();
        if !bool::from(expected.ct_eq(&client_finished[24..56])) {
            return Err(IpcError::HandshakeIntegrity { what: "client confirmation does not match the transcript" });
        }
        let ServerHandshake { session_id, suite, c2s, s2c, .. } = self;
        Ok(Channel::new(session_id, suite, Direction::Signer, s2c, c2s))
    }

    pub fn session_id(&self) -> [u8; 16] {
        self.session_id
    }
}
