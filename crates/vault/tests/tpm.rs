//! The TPM KEK provider against a real software TPM. Each test starts its own
//! `swtpm` on free loopback ports with a temporary state directory and stops
//! it by PID.

use swtpm_harness::Swtpm;
use tss_esapi::handles::PcrHandle;
use vault::VaultError;
use vault::tpm::{PcrPolicy, TpmConfig, TpmFailure, TpmKekProvider};

fn config(tpm: &Swtpm, strict: bool) -> TpmConfig {
    TpmConfig { tcti: tpm.tcti(), pcr_policy: strict.then(PcrPolicy::default) }
}

fn failure<T: std::fmt::Debug>(r: Result<T, VaultError>) -> TpmFailure {
    match r {
        Err(VaultError::TpmUnavailable(f)) => f,
        other => panic!("expected DENY_TPM_UNAVAILABLE, got {other:?}"),
    }
}

#[test]
fn kek_survives_provider_and_tpm_restarts() {
    let mut tpm = Swtpm::start();
    for strict in [false, true] {
        let sealed = TpmKekProvider::connect(config(&tpm, strict)).unwrap().provision_kek().unwrap();
        // A new connection (as after a daemon restart) unseals the same KEK.
        let first = TpmKekProvider::connect(config(&tpm, strict)).unwrap().unseal_kek(&sealed).unwrap();
        let again = TpmKekProvider::connect(config(&tpm, strict)).unwrap().unseal_kek(&sealed).unwrap();
        assert_eq!(first.as_locked().as_slice(), again.as_locked().as_slice());
        assert_ne!(first.as_locked().as_slice(), &[0u8; 32]);
        assert!(!format!("{first:?}").contains(&format!("{:?}", &first.as_locked().as_slice()[..4])));
        // The TPM process restarts on its state: still the same KEK.
        tpm.kill();
        tpm.launch();
        let after = TpmKekProvider::connect(config(&tpm, strict)).unwrap().unseal_kek(&sealed).unwrap();
        assert_eq!(first.as_locked().as_slice(), after.as_locked().as_slice());
    }
    // Two provisions give two different KEKs.
    let mut p = TpmKekProvider::connect(config(&tpm, true)).unwrap();
    let (a, b) = (p.provision_kek().unwrap(), p.provision_kek().unwrap());
    assert_ne!(p.unseal_kek(&a).unwrap().as_locked().as_slice(), p.unseal_kek(&b).unwrap().as_locked().as_slice());
}

#[test]
fn pcr_change_refuses_a_strict_kek_but_not_a_compat_one() {
    let tpm = Swtpm::start();
    let mut p = TpmKekProvider::connect(config(&tpm, true)).unwrap();
    let strict = p.provision_kek().unwrap();
    let compat = TpmKekProvider::connect(config(&tpm, false)).unwrap().provision_kek().unwrap();
    p.unseal_kek(&strict).unwrap();
    p.extend_pcr(PcrHandle::Pcr7, [0xab; 32]).unwrap();
    let err = p.unseal_kek(&strict).unwrap_err();
    assert_eq!(err.code(), "DENY_TPM_UNAVAILABLE");
    assert_eq!(failure::<()>(Err(err.clone())), TpmFailure::PcrMismatch, "{err}");
    assert!(err.to_string().contains("runbooks"), "actionable diagnostic: {err}");
    TpmKekProvider::connect(config(&tpm, false)).unwrap().unseal_kek(&compat).unwrap();
}

#[test]
fn tpm_gone_or_replaced_fails_closed() {
    let mut tpm = Swtpm::start();
    let mut p = TpmKekProvider::connect(config(&tpm, true)).unwrap();
    let sealed = p.provision_kek().unwrap();
    tpm.kill();
    // The live connection fails closed...
    let err = p.unseal_kek(&sealed).unwrap_err();
    assert_eq!(err.code(), "DENY_TPM_UNAVAILABLE");
    // ...and so does a new one.
    assert_eq!(failure(TpmKekProvider::connect(config(&tpm, true))), TpmFailure::Unreachable);
    // Another TPM (another owner seed, as after a TPM clear) cannot load it.
    let other = Swtpm::start();
    let err = TpmKekProvider::connect(config(&other, true)).unwrap().unseal_kek(&sealed).unwrap_err();
    assert_eq!(err.code(), "DENY_TPM_UNAVAILABLE");
    assert_eq!(failure::<()>(Err(err)), TpmFailure::KeyNotLoadable);
    // A damaged sealed blob is refused, not unsealed.
    let mut p = TpmKekProvider::connect(config(&other, true)).unwrap();
    let mut damaged = p.provision_kek().unwrap();
    let last = damaged.private.len() - 1;
    damaged.private[last] ^= 1;
    assert_eq!(p.unseal_kek(&damaged).unwrap_err().code(), "DENY_TPM_UNAVAILABLE");
    damaged.public.truncate(3);
    assert_eq!(failure(p.unseal_kek(&damaged)), TpmFailure::MalformedSealedKek);
}

/// TPM → KEK → wrapped DEK → secret, across a full restart, and broken at
/// each link by tampering or a changed PCR.
#[test]
fn the_whole_hierarchy_opens_after_restart_and_fails_closed_at_each_link() {
    use vault::envelope::{self, Algorithm, CipherPolicy, DataKey, Header, SecretKind};
    use vault::hierarchy::{unwrap_dek, wrap_dek};

    let tpm = Swtpm::start();
    let kek_id = [0x4b; 16];
    let (sealed_kek, wrapped_dek, blob) = {
        let mut p = TpmKekProvider::connect(config(&tpm, true)).unwrap();
        let sealed = p.provision_kek().unwrap();
        let kek = p.unseal_kek(&sealed).unwrap();
        let dek = DataKey::generate().unwrap();
        let header = Header {
            algorithm: Algorithm::ChaCha20Poly1305,
            kind: SecretKind::Ed25519Seed,
            kek_id,
            dek_id: dek.id(),
            epoch: 1,
            name: "agent-wallet".into(),
        };
        let blob = envelope::seal(&dek, &header, &[0x11; 32]).unwrap();
        (sealed, wrap_dek(&kek, kek_id, &dek, "dek-1").unwrap(), blob)
    };
    // Everything above is dropped: only the three public blobs remain.
    let mut p = TpmKekProvider::connect(config(&tpm, true)).unwrap();
    let kek = p.unseal_kek(&sealed_kek).unwrap();
    let dek = unwrap_dek(&kek, kek_id, &wrapped_dek).unwrap();
    let opened = envelope::open(&dek, &blob, CipherPolicy::Strict).unwrap();
    assert_eq!(opened.plaintext.as_slice(), &[0x11; 32]);

    // A tampered wrapped DEK, or one opened with another KEK, is refused.
    let mut bad = wrapped_dek.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(unwrap_dek(&kek, kek_id, &bad).unwrap_err().code(), "VAULT_TAMPERED");
    let other_sealed = p.provision_kek().unwrap();
    let other_kek = p.unseal_kek(&other_sealed).unwrap();
    assert_eq!(unwrap_dek(&other_kek, kek_id, &wrapped_dek).unwrap_err().code(), "VAULT_TAMPERED");
    // A secret blob is not a wrapped DEK.
    assert!(unwrap_dek(&kek, kek_id, &blob).is_err());

    // After the measured state changes the chain cannot start: no KEK, no DEK.
    p.extend_pcr(PcrHandle::Pcr7, [0xcd; 32]).unwrap();
    assert_eq!(failure(p.unseal_kek(&sealed_kek)), TpmFailure::PcrMismatch);
}

/// The anti-rollback counter lives in TPM NV: it only goes up, survives
/// reconnection and TPM restarts, and even deleting and redefining it cannot
/// bring it below its highest value.
#[test]
fn the_epoch_counter_is_monotonic_in_hardware() {
    use vault::tpm::EPOCH_COUNTER_INDEX as IDX;
    let mut tpm = Swtpm::start();
    let mut p = TpmKekProvider::connect(config(&tpm, true)).unwrap();
    let first = p.epoch_counter_ensure(IDX).unwrap();
    assert_eq!(p.epoch_counter_ensure(IDX).unwrap(), first, "ensure is idempotent");
    let a = p.epoch_counter_increment(IDX).unwrap();
    let b = p.epoch_counter_increment(IDX).unwrap();
    assert_eq!((a, b), (first + 1, first + 2));
    drop(p);
    tpm.kill();
    tpm.launch();
    let mut p = TpmKekProvider::connect(config(&tpm, true)).unwrap();
    assert_eq!(p.epoch_counter_read(IDX).unwrap(), b, "survives a TPM restart");
    // An owner who deletes and redefines the counter cannot roll it back.
    p.epoch_counter_undefine(IDX).unwrap();
    assert_eq!(p.epoch_counter_read(IDX).unwrap_err().code(), "DENY_TPM_UNAVAILABLE");
    let again = p.epoch_counter_ensure(IDX).unwrap();
    assert!(again > b, "redefined counter starts above its old high-water mark ({again} > {b})");
}
