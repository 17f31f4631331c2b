//! Building a bundle from a project directory and a list of outputs.
//!
//! A bundle is assembled in a sibling directory created exclusively
//! (`.<run_id>.partial-<random>`), every artifact written with `O_EXCL` and
//! fsynced, and only when the signature is in and the whole bundle verifies
//! is the directory renamed into place with `RENAME_NOREPLACE`. A crash
//! leaves either no bundle or a complete one; an existing run directory is
//! never touched.
//!
//! The signature itself is not made here (this crate cannot hold a key):
//! [`Draft::bundle_root`] is what the signer is asked to sign, and
//! [`Draft::finish`] takes the signature and public key it returned.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, RenameFlags};

use crate::fsx;
use crate::hex;
use crate::json::{self, Ascii, Value};
use crate::proof::isoformat_utc;
use crate::restore::write_new_file;
use crate::verify::{self, Options, Verified};

/// A failure to build a bundle: stable code, fixed message, the path or
/// artifact concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct MakeError {
    pub code: &'static str,
    pub message: &'static str,
    pub subject: Option<String>,
}

fn err(code: &'static str, message: &'static str, subject: Option<&str>) -> MakeError {
    MakeError { code, message, subject: subject.map(|s| s.chars().take(256).collect()) }
}

/// What goes into a bundle.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub project_root: &'a Path,
    pub run_dir: &'a Path,
    /// Output paths relative to the project root.
    pub outputs: &'a [String],
    /// `TASK_SPEC.json` as given (hashed raw), or `None` for a generated one.
    pub task_spec: Option<Vec<u8>>,
    /// `PROOF.json` as given; it must record a verified restoration.
    pub proof: Vec<u8>,
    /// Now, since the Unix epoch (for `completed_at`, `generated_at`).
    pub now: std::time::Duration,
}

/// A bundle waiting for its signature.
#[derive(Debug)]
pub struct Draft {
    project_root: PathBuf,
    run_dir: PathBuf,
    parent: OwnedFd,
    partial: String,
    final_name: String,
    bundle_root: String,
    finished: bool,
}

impl Draft {
    /// The bundle root the validator signs (inside the SPECTRUM-04 payload).
    pub fn bundle_root(&self) -> &str {
        &self.bundle_root
    }

    /// Adds the identity, payload and signature, checks the signature, moves
    /// the bundle into place and verifies it in full.
    pub fn finish(mut self, signature: &[u8; 64], public_key: &[u8; 32]) -> Result<Verified, MakeError> {
        let identity = verify::identity(public_key);
        let validator_id = hex::sha256(public_key);
        let payload = verify::signed_payload(&self.bundle_root, &validator_id);
        if sigverify::verify(public_key, &verify::signature_message(&payload), signature).is_err() {
            return Err(err("SIGNATURE_INVALID", "the signer's signature does not verify", None));
        }
        let sig_doc = json::object([
            ("payload_type", json::string("BUNDLE")),
            ("signature", json::string(hex::encode(signature))),
            ("validator_id", json::string(validator_id.as_str())),
        ]);
        let dir = self.partial_dir()?;
        for (name, doc) in
            [("VALIDATOR_IDENTITY.json", identity), ("SIGNED_PAYLOAD.json", payload), ("SIGNATURE.json", sig_doc)]
        {
            write_new_file(&dir, name, &doc.canonical(Ascii::Literal))
                .map_err(|_| err("MAKE_WRITE_FAILED", "an artifact could not be written", Some(name)))?;
        }
        rustix::fs::fsync(&dir).map_err(|_| err("MAKE_WRITE_FAILED", "the bundle could not be synced", None))?;
        rustix::fs::renameat_with(
            &self.parent,
            self.partial.as_str(),
            &self.parent,
            self.final_name.as_str(),
            RenameFlags::NOREPLACE,
        )
        .map_err(|_| err("MAKE_RUN_DIR_EXISTS", "the run directory appeared while the bundle was built", None))?;
        self.finished = true;
        let _ = rustix::fs::fsync(&self.parent);
        verify::verify_bundle(&self.project_root, &self.run_dir, Options::default()).map_err(|r| MakeError {
            code: r.code,
            message: "the bundle built does not verify",
            subject: None,
        })
    }

    fn partial_dir(&self) -> Result<OwnedFd, MakeError> {
        rustix::fs::openat2(
            &self.parent,
            self.partial.as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            Mode::empty(),
            fsx::STRICT,
        )
        .map_err(|_| err("MAKE_WRITE_FAILED", "the partial bundle directory is gone", None))
    }
}

impl Drop for Draft {
    /// An unfinished draft leaves nothing behind.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(dir) = self.partial_dir() {
            for name in verify::ARTIFACTS {
                let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
            }
        }
        let _ = rustix::fs::unlinkat(&self.parent, self.partial.as_str(), AtFlags::REMOVEDIR);
    }
}

/// Hashes the outputs and writes the unsigned artifacts.
pub fn draft(inputs: Inputs<'_>) -> Result<Draft, MakeError> {
    let run_id = verify::run_id(inputs.run_dir);
    if run_id.is_empty() || run_id == ".." {
        return Err(err("MAKE_RUN_DIR_INVALID", "the run directory needs a final name", None));
    }
    let parent_path = inputs.run_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let parent = fsx::open_dir(parent_path)
        .map_err(|_| err("MAKE_RUN_DIR_INVALID", "the run directory's parent cannot be opened", None))?;
    if rustix::fs::statat(&parent, run_id.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
        return Err(err("MAKE_RUN_DIR_EXISTS", "the run directory exists already", Some(&run_id)));
    }
    let project = fsx::open_dir(inputs.project_root)
        .map_err(|_| err("MAKE_OUTPUT_MISSING", "the project root cannot be opened", None))?;
    if inputs.outputs.is_empty() {
        return Err(err("MAKE_NO_OUTPUTS", "a bundle needs at least one output", None));
    }
    let mut hashes: Vec<(String, Value)> = Vec::new();
    for rel in inputs.outputs {
        if let Some(code) = crate::restore::path_code_public(rel) {
            return Err(err(code, "an output path is not a plain relative path", Some(rel)));
        }
        if hashes.iter().any(|(k, _)| k == rel) {
            return Err(err("MAKE_OUTPUT_DUPLICATE", "an output is listed twice", Some(rel)));
        }
        let mut f = fsx::open_beneath(&project, rel, fsx::STRICT).map_err(|_| {
            err("MAKE_OUTPUT_MISSING", "an output is not a regular file beneath the project root", Some(rel))
        })?;
        fsx::regular_size(&f).ok_or_else(|| {
            err("MAKE_OUTPUT_MISSING", "an output is not a regular file beneath the project root", Some(rel))
        })?;
        let (h, _) = fsx::sha256_prefixed(&mut f)
            .map_err(|_| err("MAKE_OUTPUT_MISSING", "an output cannot be read", Some(rel)))?;
        hashes.push((rel.clone(), json::string(h)));
    }
    let proof = json::parse(&inputs.proof)
        .ok()
        .filter(|p| p.get("restoration_result").and_then(|r| r.get("verified")) == Some(&Value::Bool(true)))
        .ok_or_else(|| {
            err("MAKE_PROOF_INVALID", "PROOF.json must be a JSON object recording a verified restoration", None)
        })?;
    drop(proof);
    let now = json::string(isoformat_utc(inputs.now));
    let mut sorted_outputs: Vec<&String> = inputs.outputs.iter().collect();
    sorted_outputs.sort();
    let task_spec = match inputs.task_spec {
        Some(bytes) => {
            json::parse(&bytes)
                .ok()
                .filter(|v| v.as_object().is_some())
                .ok_or_else(|| err("MAKE_TASK_SPEC_INVALID", "TASK_SPEC.json must be a JSON object", None))?;
            bytes
        }
        None => json::object([
            ("constraints", Value::Object(Vec::new())),
            ("created_at", now.clone()),
            ("expected_outputs", Value::Array(sorted_outputs.iter().map(|o| json::string(o.as_str())).collect())),
            ("inputs", Value::Array(Vec::new())),
            ("task_id", json::string(run_id.as_str())),
        ])
        .canonical(Ascii::Literal),
    };
    let status = json::object([
        ("cmp01", json::string("pass")),
        ("completed_at", now.clone()),
        ("error", Value::Null),
        ("status", json::string("success")),
    ]);
    let output_hashes = json::object([
        ("generated_at", now),
        ("hashes", Value::Object(hashes.clone())),
        ("validator_build_id", json::string(concat!("keyward:", env!("CARGO_PKG_VERSION")))),
        ("validator_semver", json::string("1.0.0")),
    ]);
    let bundle_root = verify::bundle_root(&Value::Object(hashes), &status, &task_spec);

    let partial = format!(".{run_id}.partial-{}", hex::encode(&random16()));
    rustix::fs::mkdirat(&parent, partial.as_str(), Mode::from_raw_mode(0o755))
        .map_err(|_| err("MAKE_WRITE_FAILED", "the partial bundle directory cannot be created", None))?;
    let draft = Draft {
        project_root: inputs.project_root.to_path_buf(),
        run_dir: inputs.run_dir.to_path_buf(),
        parent,
        partial,
        final_name: run_id,
        bundle_root,
        finished: false,
    };
    let dir = draft.partial_dir()?;
    for (name, bytes) in [
        ("TASK_SPEC.json", task_spec),
        ("STATUS.json", status.canonical(Ascii::Literal)),
        ("OUTPUT_HASHES.json", output_hashes.canonical(Ascii::Literal)),
        ("PROOF.json", inputs.proof),
    ] {
        write_new_file(&dir, name, &bytes)
            .map_err(|_| err("MAKE_WRITE_FAILED", "an artifact could not be written", Some(name)))?;
    }
    Ok(draft)
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the kernel's random source");
    b
}
