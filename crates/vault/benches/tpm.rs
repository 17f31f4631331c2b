//! TPM latency on swtpm, same run, against one TPM round trip (an NV read
//! of the epoch counter: a password session, no cryptography) as baseline:
//! unsealing the KEK (load + salted policy session + PCR policy + unseal +
//! flush), a whole vault read, a whole vault write (transaction: NV
//! increment and three fsynced files), a journal anchor's commit (one NV
//! counter increment) and connecting (primary key creation).
//!
//! swtpm is a software TPM on loopback; a discrete TPM is typically one to
//! two orders of magnitude slower per command, so treat the ratios, not the
//! absolute times, as what carries over.

use criterion::{Criterion, criterion_group, criterion_main};
use swtpm_harness::Swtpm;
use vault::envelope::SecretKind;
use vault::tpm::{EPOCH_COUNTER_INDEX, PcrPolicy, TpmConfig, TpmKekProvider};
use vault::{SecretProvider, Vault, VaultConfig};

fn bench(c: &mut Criterion) {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let tcfg = TpmConfig { tcti: tpm.tcti(), pcr_policy: Some(PcrPolicy::default()) };
    let cfg = VaultConfig::new(dir.path().join("vault"), tcfg.clone());
    let mut v = Vault::init(cfg.clone()).unwrap();
    v.put("bench", SecretKind::Ed25519Seed, &[7u8; 32]).unwrap();
    drop(v);

    let mut g = c.benchmark_group("tpm");
    g.sample_size(20);
    let mut p = TpmKekProvider::connect(tcfg.clone()).unwrap();
    g.bench_function("baseline/nv-read-round-trip", |b| b.iter(|| p.epoch_counter_read(EPOCH_COUNTER_INDEX).unwrap()));
    let sealed = p.provision_kek().unwrap();
    g.bench_function("unseal-kek/pcr-policy", |b| b.iter(|| p.unseal_kek(&sealed).unwrap()));
    drop(p);
    let mut v = Vault::open(cfg).unwrap();
    g.bench_function("vault/get-32B", |b| b.iter(|| v.get("bench").unwrap()));
    g.bench_function("vault/put-32B", |b| b.iter(|| v.put("bench", SecretKind::Ed25519Seed, &[7u8; 32]).unwrap()));
    // The commit point of a journal anchor (docs/audit-log.md): one NV
    // counter increment, no KEK.
    v.anchor_counter_ensure().unwrap();
    g.bench_function("anchor/counter-increment", |b| b.iter(|| v.anchor_counter_increment().unwrap()));
    drop(v);
    g.sample_size(10);
    g.bench_function("connect/create-primary-rsa2048", |b| b.iter(|| TpmKekProvider::connect(tcfg.clone()).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
