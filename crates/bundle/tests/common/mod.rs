//! Shared test fixtures: a project with outputs, and bundles signed with a
//! real Ed25519 key (crypto's locked signing key, as keywardd signs).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use bundle::json::{self, Ascii, Value};
use bundle::make;
use bundle::verify;
use crypto::ed25519::Ed25519SigningKey;
use secmem::MLockedSeed;

pub const PROOF: &str = r#"{"restoration_result":{"condition":"RESTORED_IDENTICAL","verified":true},"run_id":"r"}"#;

pub struct Key(Ed25519SigningKey);

impl Key {
    pub fn new(byte: u8) -> Key {
        let mut seed = MLockedSeed::<32>::new().unwrap();
        seed.as_mut_bytes().fill(byte);
        Key(Ed25519SigningKey::gen_key_m(&seed).unwrap())
    }
    pub fn public(&self) -> [u8; 32] {
        self.0.derive_verification_key_m().0
    }
    pub fn sign(&self, m: &[u8]) -> [u8; 64] {
        self.0.sign_bytes_m(m).0
    }
    /// Signs the SPECTRUM-04 payload for `root` as keywardd does.
    pub fn sign_root(&self, root: &str) -> [u8; 64] {
        let payload = verify::signed_payload(root, &bundle::hex::sha256(&self.public()));
        self.sign(&verify::signature_message(&payload))
    }
}

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A project with `files` outputs under `out/`.
    pub fn new(files: &[(&str, &[u8])]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("runs")).unwrap();
        for (rel, bytes) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        Project { dir }
    }
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn run(&self, id: &str) -> PathBuf {
        self.dir.path().join("runs").join(id)
    }
    /// Makes and signs bundle `id` over `outputs`.
    pub fn bundle(&self, id: &str, outputs: &[&str], key: &Key) -> PathBuf {
        let run = self.run(id);
        let draft = make::draft(make::Inputs {
            project_root: self.root(),
            run_dir: &run,
            outputs: &outputs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            task_spec: None,
            proof: PROOF.as_bytes().to_vec(),
            now: std::time::Duration::from_secs(1_790_000_000),
        })
        .unwrap();
        let sig = key.sign_root(draft.bundle_root());
        draft.finish(&sig, &key.public()).unwrap();
        run
    }
}

pub fn read(run: &Path, name: &str) -> Value {
    json::parse(&std::fs::read(run.join(name)).unwrap()).unwrap()
}

pub fn write(run: &Path, name: &str, v: &Value) {
    std::fs::write(run.join(name), v.canonical(Ascii::Literal)).unwrap();
}

/// Sets (or with `None` removes) a top-level member of an artifact.
pub fn set(run: &Path, name: &str, key: &str, value: Option<Value>) {
    let Value::Object(mut m) = read(run, name) else { panic!("object") };
    m.retain(|(k, _)| k != key);
    if let Some(v) = value {
        m.push((key.to_string(), v));
    }
    write(run, name, &Value::Object(m));
}

/// Recomputes the bundle root from the artifacts as they are now and signs
/// it again, so a test can reach the phases after the signature.
pub fn resign(run: &Path, key: &Key) {
    let task = std::fs::read(run.join("TASK_SPEC.json")).unwrap();
    let status = read(run, "STATUS.json");
    let hashes = read(run, "OUTPUT_HASHES.json").get("hashes").unwrap().clone();
    let root = verify::bundle_root(&hashes, &status, &task);
    let vid = bundle::hex::sha256(&key.public());
    write(run, "VALIDATOR_IDENTITY.json", &verify::identity(&key.public()));
    write(run, "SIGNED_PAYLOAD.json", &verify::signed_payload(&root, &vid));
    let sig = json::object([
        ("payload_type", json::string("BUNDLE")),
        ("signature", json::string(bundle::hex::encode(&key.sign_root(&root)))),
        ("validator_id", json::string(vid)),
    ]);
    write(run, "SIGNATURE.json", &sig);
}

pub fn code(project: &Project, run: &Path) -> &'static str {
    match verify::verify_bundle(project.root(), run, verify::Options::default()) {
        Ok(_) => "OK",
        Err(r) => r.code,
    }
}
