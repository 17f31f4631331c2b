//! The TPM2 root of the key hierarchy: a key-encryption key (KEK) that exists
//! only inside the TPM and, once unsealed, in a `secmem` container.
//!
//! * The KEK is a TPM sealed data object (keyed-hash). Its 32 bytes are drawn
//!   from the OS CSPRNG straight into locked memory and handed to
//!   `TPM2_Create` through an encrypting session; the TPM refuses to generate
//!   sealed *data* itself (`sensitiveDataOrigin` is invalid for data objects).
//!   Outside the TPM the plaintext exists only in `secmem` and, for the length
//!   of one call, in tss-esapi's zeroizing buffers. The public and private
//!   parts (the private part encrypted by the TPM under the owner-hierarchy
//!   primary key) are stored as ordinary files.
//! * Unsealing runs through an HMAC or policy session that is *salted* with
//!   the primary key and *encrypts* response parameters, so the KEK never
//!   crosses the TPM transport (a socket for swtpm) in clear. Every handle is
//!   flushed after use.
//! * Strict mode binds unsealing to a PCR policy (default PCR 7, SHA-256):
//!   after the measured state changes, unsealing fails closed.
//! * Every failure is `DENY_TPM_UNAVAILABLE` with a diagnostic that names
//!   what to do and carries no secret.

use std::str::FromStr;

use secmem::MLockedSizedBytes;
use tss_esapi::Context;
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest, KeyedHashScheme, PcrSelectionList, PcrSlot, Private, Public, PublicBuilder, PublicKeyedHashParameters,
    RsaExponent, SensitiveData, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;

/// PCR handles, for [`TpmKekProvider::extend_pcr`].
pub use tss_esapi::handles::PcrHandle;
use tss_esapi::traits::{Marshall, UnMarshall};

use crate::VaultError;

/// Why the TPM path failed. Each names an operator action (docs/runbooks/).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmFailure {
    /// No TPM answered on the configured TCTI.
    Unreachable,
    /// The PCR values differ from those the KEK was sealed to.
    PcrMismatch,
    /// The TPM is in dictionary-attack lockout.
    Lockout,
    /// The sealed KEK does not load under this TPM's primary key (the TPM was
    /// cleared or replaced).
    KeyNotLoadable,
    /// The TPM reported another error (response code, hex).
    Tpm(String),
    /// A stored sealed KEK is malformed or missing.
    MalformedSealedKek,
    /// The TPM is out of object or session memory, or asks to retry.
    Busy,
    /// The TPM epoch counter is below the manifest's: another TPM, or a
    /// cleared one whose counter was defined afresh.
    CounterBehind,
}

impl TpmFailure {
    pub fn diagnostic(&self) -> String {
        match self {
            TpmFailure::Unreachable => {
                "no TPM answered on the configured TCTI; see docs/runbooks/tpm-reset.md (unreachable TPM)".into()
            }
            TpmFailure::PcrMismatch => {
                "the measured boot state (PCRs) changed since the KEK was sealed; see docs/runbooks/pcr-change.md"
                    .into()
            }
            TpmFailure::Lockout => "the TPM is in dictionary-attack lockout; see docs/runbooks/tpm-lockout.md".into(),
            TpmFailure::KeyNotLoadable => {
                "the sealed KEK does not belong to this TPM (cleared or replaced); see docs/runbooks/tpm-reset.md"
                    .into()
            }
            TpmFailure::Tpm(rc) => format!("the TPM refused the operation (response code {rc})"),
            TpmFailure::MalformedSealedKek => "the stored sealed KEK is malformed or missing".into(),
            TpmFailure::Busy => "the TPM is busy or out of object/session memory; retry, and make sure keywardd \
                                 uses the kernel resource manager (device:/dev/tpmrm0)"
                .into(),
            TpmFailure::CounterBehind => {
                "the TPM epoch counter is behind the vault manifest (another or a cleared TPM); \
                 see docs/runbooks/tpm-reset.md"
                    .into()
            }
        }
    }
}

/// Which PCRs the KEK is bound to, in strict mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrPolicy {
    pub pcrs: Vec<PcrSlot>,
}

impl Default for PcrPolicy {
    /// PCR 7 (Secure Boot state), SHA-256 bank.
    fn default() -> Self {
        PcrPolicy { pcrs: vec![PcrSlot::Slot7] }
    }
}

/// How to reach the TPM and what to bind to.
#[derive(Debug, Clone)]
pub struct TpmConfig {
    /// `device:/dev/tpmrm0` in production; `swtpm:host=127.0.0.1,port=N` for development.
    pub tcti: String,
    /// `Some` in strict mode; `None` (compatibility mode, logged by the caller)
    /// seals without a PCR binding.
    pub pcr_policy: Option<PcrPolicy>,
}

impl Default for TpmConfig {
    fn default() -> Self {
        TpmConfig { tcti: "device:/dev/tpmrm0".into(), pcr_policy: Some(PcrPolicy::default()) }
    }
}

/// A KEK sealed by the TPM: safe to store as a file (the private part is
/// encrypted under the TPM's owner-hierarchy primary key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKek {
    pub public: Vec<u8>,
    pub private: Vec<u8>,
}

/// The unsealed KEK, in locked memory.
pub struct Kek(pub(crate) MLockedSizedBytes<32>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    pub fn as_locked(&self) -> &MLockedSizedBytes<32> {
        &self.0
    }
}

fn deny(failure: TpmFailure) -> VaultError {
    VaultError::TpmUnavailable(failure)
}

/// Maps a TSS error to the operator-facing failure, by response code.
fn classify(e: tss_esapi::Error) -> VaultError {
    use tss_esapi::constants::response_code::Tss2ResponseCodeKind as K;
    let failure = match e {
        tss_esapi::Error::Tss2Error(rc) => match rc.kind() {
            Some(K::Lockout) => TpmFailure::Lockout,
            Some(K::PolicyFail) => TpmFailure::PcrMismatch,
            Some(K::Integrity | K::Sensitive | K::KeySize | K::Binding) => TpmFailure::KeyNotLoadable,
            Some(
                K::ObjectMemory
                | K::SessionMemory
                | K::Memory
                | K::SessionHandles
                | K::ObjectHandles
                | K::Retry
                | K::Yielded
                | K::Testing
                | K::NvRate
                | K::NvUnavailable,
            ) => TpmFailure::Busy,
            _ => TpmFailure::Tpm(format!("{rc:?}")),
        },
        other => TpmFailure::Tpm(other.to_string()),
    };
    deny(failure)
}

/// A connection to the TPM with the owner-hierarchy primary key loaded.
pub struct TpmKekProvider {
    ctx: Context,
    primary: KeyHandle,
    config: TpmConfig,
}

impl std::fmt::Debug for TpmKekProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmKekProvider").field("tcti", &self.config.tcti).finish_non_exhaustive()
    }
}

impl TpmKekProvider {
    /// Connects and creates the primary storage key (deterministic from the
    /// owner seed, so the same key on every start until the TPM is cleared).
    pub fn connect(config: TpmConfig) -> Result<Self, VaultError> {
        let tcti = TctiNameConf::from_str(&config.tcti).map_err(|_| deny(TpmFailure::Unreachable))?;
        let mut ctx = Context::new(tcti).map_err(|_| deny(TpmFailure::Unreachable))?;
        let template = tss_esapi::utils::create_restricted_decryption_rsa_public(
            SymmetricDefinitionObject::AES_128_CFB,
            RsaKeyBits::Rsa2048,
            RsaExponent::default(),
        )
        .map_err(classify)?;
        let primary = ctx
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.create_primary(Hierarchy::Owner, template, None, None, None, None)
            })
            .map_err(classify)?
            .key_handle;
        Ok(TpmKekProvider { ctx, primary, config })
    }

    /// A session salted with the primary key, encrypting parameters both ways.
    fn salted_session(&mut self, kind: SessionType) -> Result<AuthSession, VaultError> {
        let session = self
            .ctx
            .start_auth_session(
                Some(self.primary),
                None,
                None,
                kind,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(classify)?
            .ok_or_else(|| deny(TpmFailure::Tpm("no session".into())))?;
        let (attrs, mask) = SessionAttributesBuilder::new().with_decrypt(true).with_encrypt(true).build();
        self.ctx.tr_sess_set_attributes(session, attrs, mask).map_err(classify)?;
        Ok(session)
    }

    fn flush_session(&mut self, session: AuthSession) {
        let _ = self.ctx.flush_context(SessionHandle::from(session).into());
    }

    fn pcr_selection(policy: &PcrPolicy) -> Result<PcrSelectionList, VaultError> {
        PcrSelectionList::builder().with_selection(HashingAlgorithm::Sha256, &policy.pcrs).build().map_err(classify)
    }

    /// The policy digest for "these PCRs hold their current values".
    fn pcr_policy_digest(&mut self, policy: &PcrPolicy) -> Result<Digest, VaultError> {
        let trial = self.salted_session(SessionType::Trial)?;
        let result = (|| {
            let ps = PolicySession::try_from(trial).map_err(classify)?;
            self.ctx.policy_pcr(ps, Digest::default(), Self::pcr_selection(policy)?).map_err(classify)?;
            self.ctx.policy_get_digest(ps).map_err(classify)
        })();
        self.flush_session(trial);
        result
    }

    /// Generates a new KEK and has the TPM seal it (to the PCR policy in strict mode).
    pub fn provision_kek(&mut self) -> Result<SealedKek, VaultError> {
        let mut attrs = ObjectAttributesBuilder::new().with_fixed_tpm(true).with_fixed_parent(true);
        let mut public = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
            .with_keyed_hash_unique_identifier(Digest::default());
        match self.config.pcr_policy.clone() {
            Some(policy) => {
                let digest = self.pcr_policy_digest(&policy)?;
                public = public.with_auth_policy(digest);
            }
            None => attrs = attrs.with_user_with_auth(true),
        }
        let public = public.with_object_attributes(attrs.build().map_err(classify)?).build().map_err(classify)?;
        let kek = MLockedSizedBytes::<32>::new_random()?;
        // Moved (not copied) into tss-esapi's zeroizing buffer, wiped on drop.
        let sensitive = SensitiveData::try_from(kek.as_slice().to_vec()).map_err(classify)?;
        drop(kek);
        let session = self.salted_session(SessionType::Hmac)?;
        let primary = self.primary;
        let created = self
            .ctx
            .execute_with_session(Some(session), |c| c.create(primary, public, None, Some(sensitive), None, None));
        self.flush_session(session);
        let created = created.map_err(classify)?;
        Ok(SealedKek {
            public: created.out_public.marshall().map_err(classify)?,
            private: created.out_private.value().to_vec(),
        })
    }

    /// Loads and unseals a KEK into locked memory.
    pub fn unseal_kek(&mut self, sealed: &SealedKek) -> Result<Kek, VaultError> {
        let public = Public::unmarshall(&sealed.public).map_err(|_| deny(TpmFailure::MalformedSealedKek))?;
        let private = Private::try_from(sealed.private.clone()).map_err(|_| deny(TpmFailure::MalformedSealedKek))?;
        let hmac = self.salted_session(SessionType::Hmac)?;
        let primary = self.primary;
        let loaded = self.ctx.execute_with_session(Some(hmac), |c| c.load(primary, private, public));
        self.flush_session(hmac);
        let loaded = loaded.map_err(classify)?;
        let result = self.unseal_loaded(loaded);
        let _ = self.ctx.flush_context(ObjectHandle::from(loaded));
        result
    }

    fn unseal_loaded(&mut self, loaded: KeyHandle) -> Result<Kek, VaultError> {
        let session = match self.config.pcr_policy.clone() {
            Some(policy) => {
                let s = self.salted_session(SessionType::Policy)?;
                let ps = PolicySession::try_from(s).map_err(classify)?;
                if let Err(e) = Self::pcr_selection(&policy)
                    .and_then(|sel| self.ctx.policy_pcr(ps, Digest::default(), sel).map_err(classify))
                {
                    self.flush_session(s);
                    return Err(e);
                }
                s
            }
            None => self.salted_session(SessionType::Hmac)?,
        };
        let unsealed = self.ctx.execute_with_session(Some(session), |c| c.unseal(loaded.into()));
        self.flush_session(session);
        // tss-esapi keeps the bytes in a zeroizing buffer; copy them into
        // locked memory, and the buffer is wiped when it drops here.
        let unsealed = unsealed.map_err(classify)?;
        if unsealed.len() != 32 {
            return Err(deny(TpmFailure::MalformedSealedKek));
        }
        let mut kek = MLockedSizedBytes::<32>::new()?;
        kek.as_mut_slice().copy_from_slice(unsealed.value());
        Ok(Kek(kek))
    }

    /// Extends a SHA-256 PCR with `digest` (tests and runbooks use it to
    /// show a changed measured state).
    pub fn extend_pcr(&mut self, slot: PcrHandle, digest: [u8; 32]) -> Result<(), VaultError> {
        let mut values = tss_esapi::structures::DigestValues::new();
        values.set(HashingAlgorithm::Sha256, Digest::try_from(digest.to_vec()).map_err(classify)?);
        self.ctx.execute_with_session(Some(AuthSession::Password), |c| c.pcr_extend(slot, values)).map_err(classify)
    }
}

/// keyward's anti-rollback counter: an NV index in the owner range.
pub const EPOCH_COUNTER_INDEX: u32 = 0x0150_4b57;

/// The signer's journal anchor counter (docs/audit-log.md, "Anchors").
pub const ANCHOR_COUNTER_INDEX: u32 = 0x0150_4b41;

impl TpmKekProvider {
    /// Defines the monotonic NV counter at `index` if it does not exist, and
    /// initialises it (a counter cannot be read before its first increment).
    /// Returns its value.
    pub fn epoch_counter_ensure(&mut self, index: u32) -> Result<u64, VaultError> {
        use tss_esapi::attributes::NvIndexAttributesBuilder;
        use tss_esapi::constants::NvIndexType;
        use tss_esapi::handles::NvIndexTpmHandle;
        use tss_esapi::interface_types::resource_handles::Provision;
        use tss_esapi::structures::NvPublicBuilder;
        if let Ok(v) = self.epoch_counter_read(index) {
            return Ok(v);
        }
        let attributes = NvIndexAttributesBuilder::new()
            .with_nv_index_type(NvIndexType::Counter)
            .with_owner_write(true)
            .with_owner_read(true)
            .build()
            .map_err(classify)?;
        let public = NvPublicBuilder::new()
            .with_nv_index(NvIndexTpmHandle::new(index).map_err(classify)?)
            .with_index_name_algorithm(HashingAlgorithm::Sha256)
            .with_index_attributes(attributes)
            .with_data_area_size(8)
            .build()
            .map_err(classify)?;
        let defined = self
            .ctx
            .execute_with_session(Some(AuthSession::Password), |c| c.nv_define_space(Provision::Owner, None, public));
        match defined {
            Ok(_) => {}
            // Defined by an earlier, interrupted call: fine.
            Err(tss_esapi::Error::Tss2Error(rc))
                if rc.kind() == Some(tss_esapi::constants::response_code::Tss2ResponseCodeKind::NvDefined) => {}
            Err(e) => return Err(classify(e)),
        }
        self.epoch_counter_increment(index)
    }

    /// Whether an NV index is defined: the TPM's list of defined handles
    /// from `index` on starts with it (TPM2_GetCapability, no session, and
    /// no error for an index that is not there).
    pub fn nv_index_defined(&mut self, index: u32) -> Result<bool, VaultError> {
        use tss_esapi::constants::CapabilityType;
        use tss_esapi::structures::CapabilityData;
        let (data, _) = self
            .ctx
            .execute_without_session(|c| c.get_capability(CapabilityType::Handles, index, 1))
            .map_err(classify)?;
        Ok(match data {
            CapabilityData::Handles(list) => list.first().is_some_and(|h| u32::from(*h) == index),
            _ => false,
        })
    }

    fn with_nv<T>(
        &mut self,
        index: u32,
        f: impl FnOnce(&mut Context, tss_esapi::handles::NvIndexHandle) -> tss_esapi::Result<T>,
    ) -> Result<T, VaultError> {
        use tss_esapi::handles::{NvIndexTpmHandle, TpmHandle};
        let tpm_handle = TpmHandle::NvIndex(NvIndexTpmHandle::new(index).map_err(classify)?);
        let mut object = self.ctx.tr_from_tpm_public(tpm_handle).map_err(classify)?;
        let r = f(&mut self.ctx, object.into());
        let _ = self.ctx.tr_close(&mut object);
        r.map_err(classify)
    }

    /// The counter's value (big-endian u64 in NV).
    pub fn epoch_counter_read(&mut self, index: u32) -> Result<u64, VaultError> {
        use tss_esapi::interface_types::resource_handles::NvAuth;
        let data = self.with_nv(index, |c, nv| {
            c.execute_with_session(Some(AuthSession::Password), |c| c.nv_read(NvAuth::Owner, nv, 8, 0))
        })?;
        let bytes: [u8; 8] = data.value().try_into().map_err(|_| deny(TpmFailure::Tpm("NV counter size".into())))?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Advances the counter by one in the TPM and returns the new value. The
    /// TPM never lets it go down.
    pub fn epoch_counter_increment(&mut self, index: u32) -> Result<u64, VaultError> {
        use tss_esapi::interface_types::resource_handles::NvAuth;
        self.with_nv(index, |c, nv| {
            c.execute_with_session(Some(AuthSession::Password), |c| c.nv_increment(NvAuth::Owner, nv))
        })?;
        self.epoch_counter_read(index)
    }

    /// Deletes the counter (owner authorisation). A counter defined again
    /// later starts at or above the highest value any counter ever held.
    pub fn epoch_counter_undefine(&mut self, index: u32) -> Result<(), VaultError> {
        use tss_esapi::handles::{NvIndexTpmHandle, TpmHandle};
        use tss_esapi::interface_types::resource_handles::Provision;
        let tpm_handle = TpmHandle::NvIndex(NvIndexTpmHandle::new(index).map_err(classify)?);
        let object = self.ctx.tr_from_tpm_public(tpm_handle).map_err(classify)?;
        self.ctx
            .execute_with_session(Some(AuthSession::Password), |c| c.nv_undefine_space(Provision::Owner, object.into()))
            .map_err(classify)
    }
}

impl Drop for TpmKekProvider {
    fn drop(&mut self) {
        let _ = self.ctx.flush_context(ObjectHandle::from(self.primary));
    }
}
