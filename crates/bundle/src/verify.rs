//! SPECTRUM-05 bundle and chain verification (normative:
//! docs/bundle-format.md, which follows SPECTRUM-04 v1.1.0 and SPECTRUM-05
//! v1.0.0).
//!
//! The ten phases run in the specified order and stop at the first failure
//! with exactly one code. Three rules hold throughout:
//!
//! * **Constant time.** Every comparison of a hash, root, identity or key is
//!   [`ct_eq`] (`subtle`): whether and where two 64-character strings differ
//!   leaks nothing but their lengths.
//! * **Sanitized errors.** A [`Rejection`] carries a stable code, a fixed
//!   message and details built only from artifact names, field names, the
//!   declared output path and (for `HASH_MISMATCH`, as the spec requires)
//!   the two hashes: never parser text, key lengths or file contents.
//! * **Nothing outside the project root is read.** Outputs are opened with
//!   `openat2(RESOLVE_BENEATH)` from the project root's descriptor; the
//!   toolkit would have followed `/etc/shadow` or `../../x` and reported its
//!   hash.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::AtFlags;
use subtle::ConstantTimeEq;

use crate::fsx;
use crate::hex;
use crate::json::{self, Ascii, Value};

/// The artifacts of a bundle, in the order of SPECTRUM-05 §4.1.
pub const ARTIFACTS: [&str; 7] = [
    "TASK_SPEC.json",
    "STATUS.json",
    "OUTPUT_HASHES.json",
    "PROOF.json",
    "VALIDATOR_IDENTITY.json",
    "SIGNED_PAYLOAD.json",
    "SIGNATURE.json",
];

/// The domain-separation prefix of the signed message (SPECTRUM-04 §7.4).
pub const MESSAGE_PREFIX: &[u8] = b"CAT-DPT-SPECTRUM-04-v1:BUNDLE:";

/// Largest artifact read (the toolkit's artifacts are a few KiB).
pub const MAX_ARTIFACT_BYTES: u64 = 16 << 20;

/// Constant-time equality of two strings (their lengths are public).
pub fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A refusal: one stable code, a fixed message, sanitized details.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: &'static str,
    pub details: Vec<(String, Value)>,
}

impl Rejection {
    pub fn new(code: &'static str, message: &'static str) -> Rejection {
        Rejection { code, message, details: Vec::new() }
    }

    pub fn with(mut self, key: &str, value: Value) -> Rejection {
        self.details.retain(|(k, _)| k != key);
        self.details.push((key.to_string(), value));
        self
    }

    fn artifact(code: &'static str, message: &'static str, artifact: &str) -> Rejection {
        Rejection::new(code, message).with("artifact", json::string(artifact))
    }

    /// `{ok: false, code, details}`.
    pub fn to_json(&self) -> Value {
        json::object([
            ("ok", Value::Bool(false)),
            ("code", json::string(self.code)),
            ("details", Value::Object(self.details.clone())),
        ])
    }
}

/// A declared path as it may appear in details: at most 256 characters
/// (the JSON writer escapes control characters).
pub fn shown_path(p: &str) -> Value {
    json::string(p.chars().take(256).collect::<String>())
}

/// An accepted bundle and what later steps (chain root, restore) need of it,
/// taken from the very bytes that were verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub run_id: String,
    pub bundle_root: String,
    pub validator_id: String,
    /// `OUTPUT_HASHES.json.hashes` in document order.
    pub hashes: Vec<(String, Value)>,
    /// Bytes hashed in phase 9.
    pub output_bytes: u64,
}

/// An accepted chain.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    pub chain_root: String,
    pub bundles: Vec<Verified>,
}

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Require `PROOF.json` and check it (phase 7). The restore runner turns
    /// this off and checks the proof itself with its own codes.
    pub check_proof: bool,
    /// Worker threads hashing outputs (1 = the caller's thread).
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { check_proof: true, threads: std::thread::available_parallelism().map_or(1, |n| n.get()) }
    }
}

/// The run id of a run directory: its final path component, as Python's
/// `Path.name` gives it.
pub fn run_id(run_dir: &Path) -> String {
    match run_dir.components().next_back() {
        Some(Component::Normal(s)) => s.to_string_lossy().into_owned(),
        Some(Component::ParentDir) => "..".into(),
        _ => String::new(),
    }
}

/// The bundle root (SPECTRUM-04 §5).
pub fn bundle_root(hashes: &Value, status: &Value, task_spec_bytes: &[u8]) -> String {
    let preimage = json::object([
        ("output_hashes", hashes.clone()),
        ("status", status.clone()),
        ("task_spec_hash", json::string(hex::sha256(task_spec_bytes))),
    ]);
    hex::sha256(&preimage.canonical(Ascii::Literal))
}

/// The chain root (SPECTRUM-04 §6).
pub fn chain_root(bundle_roots: &[String], run_ids: &[String]) -> String {
    let list = |v: &[String]| Value::Array(v.iter().map(|s| json::string(s.as_str())).collect());
    let preimage = json::object([("bundle_roots", list(bundle_roots)), ("run_ids", list(run_ids))]);
    hex::sha256(&preimage.canonical(Ascii::Literal))
}

/// The signed payload of a bundle root under a validator (SPECTRUM-04 §7.2).
pub fn signed_payload(bundle_root: &str, validator_id: &str) -> Value {
    json::object([
        ("bundle_root", json::string(bundle_root)),
        ("decision", json::string("ACCEPT")),
        ("validator_id", json::string(validator_id)),
    ])
}

/// The message Ed25519 signs: prefix ‖ canonical payload.
pub fn signature_message(payload: &Value) -> Vec<u8> {
    let mut m = MESSAGE_PREFIX.to_vec();
    m.extend_from_slice(&payload.canonical(Ascii::Literal));
    m
}

/// The validator identity of a public key.
pub fn identity(public_key: &[u8; 32]) -> Value {
    json::object([
        ("algorithm", json::string("ed25519")),
        ("public_key", json::string(hex::encode(public_key))),
        ("validator_id", json::string(hex::sha256(public_key))),
    ])
}

/// Extra files that would give a bundle a second identity, signature,
/// payload or key (SPECTRUM-04 §11.1, SPECTRUM-05 §3): the file's name,
/// lower-cased with everything but letters and digits removed, contains one
/// of these words. Checked in this order.
const LOOKALIKES: [(&str, &str); 4] = [
    ("validatoridentity", "IDENTITY_MULTIPLE"),
    ("signedpayload", "ARTIFACT_EXTRA"),
    ("signature", "SIGNATURE_MULTIPLE"),
    ("publickey", "KEY_MULTIPLE"),
];

struct Artifacts {
    parsed: Vec<Value>,
    task_spec_bytes: Vec<u8>,
}

fn presence(dir: &OwnedFd, check_proof: bool) -> Result<(), Rejection> {
    for name in ARTIFACTS {
        if name == "PROOF.json" && !check_proof {
            continue;
        }
        if rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_err() {
            return Err(Rejection::artifact("ARTIFACT_MISSING", "a required artifact is missing", name));
        }
    }
    let entries = rustix::fs::Dir::read_from(dir)
        .map_err(|_| Rejection::new("ARTIFACT_MISSING", "the run directory cannot be listed"))?;
    let mut extras = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|_| Rejection::new("ARTIFACT_MISSING", "the run directory cannot be listed"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if ARTIFACTS.contains(&name.as_str()) {
            continue;
        }
        let folded: String = name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
        if let Some((_, code)) = LOOKALIKES.iter().find(|(w, _)| folded.contains(w)) {
            extras.push((name, *code));
        }
    }
    // Directory order is arbitrary: report the smallest name, so the answer
    // is the same on every filesystem.
    extras.sort();
    if let Some((name, code)) = extras.into_iter().next() {
        return Err(Rejection::new(code, "a second identity, signature, payload or key artifact is present")
            .with("artifact", shown_path(&name)));
    }
    Ok(())
}

fn parse_all(dir: &OwnedFd, check_proof: bool) -> Result<Artifacts, Rejection> {
    let mut parsed = Vec::new();
    let mut task_spec_bytes = Vec::new();
    for name in ARTIFACTS {
        if name == "PROOF.json" && !check_proof {
            parsed.push(Value::Null);
            continue;
        }
        let malformed = || Rejection::artifact("ARTIFACT_MALFORMED", "an artifact is not a valid JSON object", name);
        let f = fsx::open_beneath(dir, name, fsx::STRICT).map_err(|_| malformed())?;
        let bytes = fsx::read_capped(f, MAX_ARTIFACT_BYTES).map_err(|_| malformed())?;
        let v = json::parse(&bytes).map_err(|_| malformed())?;
        if v.as_object().is_none() {
            return Err(malformed());
        }
        if name == "TASK_SPEC.json" {
            task_spec_bytes = bytes;
        }
        parsed.push(v);
    }
    Ok(Artifacts { parsed, task_spec_bytes })
}

/// Exactly these fields, or FIELD_EXTRA / FIELD_MISSING as the toolkit
/// decides it: more fields than required is "extra", otherwise "missing".
fn exact_fields(v: &Value, required: &[&str], artifact: &str) -> Result<(), Rejection> {
    let members = v.as_object().expect("objects only");
    let same = members.len() == required.len() && required.iter().all(|r| members.iter().any(|(k, _)| k == r));
    if same {
        return Ok(());
    }
    if members.len() > required.len() {
        Err(Rejection::artifact("FIELD_EXTRA", "an artifact has a field it must not have", artifact))
    } else {
        Err(Rejection::artifact("FIELD_MISSING", "an artifact lacks a required field", artifact))
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Verifies one bundle: SPECTRUM-05 §4, phases 1–10.
pub fn verify_bundle(project_root: &Path, run_dir: &Path, opts: Options) -> Result<Verified, Rejection> {
    let root = fsx::open_dir(project_root)
        .map_err(|_| Rejection::new("OUTPUT_MISSING", "the project root cannot be opened"))?;
    verify_bundle_in(&root, run_dir, opts)
}

pub(crate) fn verify_bundle_in(project: &OwnedFd, run_dir: &Path, opts: Options) -> Result<Verified, Rejection> {
    // Phase 1: presence. A run directory that cannot be opened has none.
    let dir = fsx::open_dir(run_dir)
        .map_err(|_| Rejection::artifact("ARTIFACT_MISSING", "a required artifact is missing", ARTIFACTS[0]))?;
    presence(&dir, opts.check_proof)?;
    // Phase 2: parse.
    let Artifacts { parsed, task_spec_bytes } = parse_all(&dir, opts.check_proof)?;
    let [_, status, output_hashes, proof, identity, payload, signature] = &parsed[..] else {
        unreachable!("seven artifacts")
    };

    // Phase 3: identity.
    exact_fields(identity, &["algorithm", "public_key", "validator_id"], "VALIDATOR_IDENTITY.json")?;
    if identity.get("algorithm") != Some(&json::string("ed25519")) {
        return Err(Rejection::new("ALGORITHM_UNSUPPORTED", "the algorithm is not ed25519"));
    }
    let pk_hex = str_field(identity, "public_key");
    let public_key: [u8; 32] = hex::decode(pk_hex)
        .ok_or_else(|| Rejection::new("KEY_INVALID", "public_key is not 64 lowercase hex digits"))?;
    let validator_id = str_field(identity, "validator_id");
    if !matches!(identity.get("validator_id"), Some(Value::Str(_))) || !ct_eq(&hex::sha256(&public_key), validator_id) {
        return Err(Rejection::new("IDENTITY_INVALID", "validator_id is not sha256(public_key)"));
    }

    // Phase 4: bundle root.
    let hashes = output_hashes.get("hashes").filter(|h| h.as_object().is_some()).ok_or_else(|| {
        Rejection::artifact("FIELD_MISSING", "OUTPUT_HASHES.json has no hashes object", "OUTPUT_HASHES.json")
    })?;
    let root = bundle_root(hashes, status, &task_spec_bytes);

    // Phase 5: signed payload.
    exact_fields(payload, &["bundle_root", "decision", "validator_id"], "SIGNED_PAYLOAD.json")?;
    if !matches!(payload.get("bundle_root"), Some(Value::Str(_))) || !ct_eq(str_field(payload, "bundle_root"), &root) {
        return Err(Rejection::new("BUNDLE_ROOT_MISMATCH", "the signed bundle_root is not the computed one"));
    }
    if payload.get("decision") != Some(&json::string("ACCEPT")) {
        return Err(Rejection::new("DECISION_INVALID", "the signed decision is not ACCEPT"));
    }
    if !matches!(payload.get("validator_id"), Some(Value::Str(_)))
        || !ct_eq(str_field(payload, "validator_id"), validator_id)
    {
        return Err(Rejection::artifact(
            "IDENTITY_MISMATCH",
            "validator_id differs across artifacts",
            "SIGNED_PAYLOAD.json",
        ));
    }

    // Phase 6: signature.
    let sig_members = signature.as_object().expect("object");
    if ["payload_type", "signature", "validator_id"].iter().any(|f| !sig_members.iter().any(|(k, _)| k == f)) {
        return Err(Rejection::new("SIGNATURE_INCOMPLETE", "SIGNATURE.json lacks a required field"));
    }
    // `signed_at` is the one informational field SPECTRUM-04 §8.2 allows.
    if sig_members.iter().any(|(k, v)| match k.as_str() {
        "payload_type" | "signature" | "validator_id" => false,
        "signed_at" => v.as_str().is_none(),
        _ => true,
    }) {
        return Err(Rejection::new("SIGNATURE_MALFORMED", "SIGNATURE.json has a field it must not have"));
    }
    if signature.get("payload_type") != Some(&json::string("BUNDLE")) {
        return Err(Rejection::new("SIGNATURE_MALFORMED", "payload_type is not BUNDLE"));
    }
    let sig: [u8; 64] = hex::decode(str_field(signature, "signature"))
        .ok_or_else(|| Rejection::new("SIGNATURE_MALFORMED", "signature is not 128 lowercase hex digits"))?;
    if !matches!(signature.get("validator_id"), Some(Value::Str(_)))
        || !ct_eq(str_field(signature, "validator_id"), validator_id)
    {
        return Err(Rejection::artifact(
            "IDENTITY_MISMATCH",
            "validator_id differs across artifacts",
            "SIGNATURE.json",
        ));
    }
    if sigverify::verify(&public_key, &signature_message(payload), &sig).is_err() {
        return Err(Rejection::new("SIGNATURE_INVALID", "the Ed25519 signature does not verify"));
    }

    // Phase 7: proof.
    if opts.check_proof {
        check_proof_hash(proof)?;
        let verified = match proof.get("restoration_result") {
            Some(rr @ Value::Object(_)) => rr.get("verified"),
            _ => {
                return Err(Rejection::artifact("FIELD_MISSING", "PROOF.json has no restoration_result", "PROOF.json"));
            }
        };
        if verified != Some(&Value::Bool(true)) {
            return Err(Rejection::new("RESTORATION_FAILED", "the proof does not record a verified restoration"));
        }
    }

    // Phase 8: forbidden artifacts (present in any form, dangling symlink included).
    for (name, shown) in [("logs", "logs/"), ("tmp", "tmp/"), ("transcript.json", "transcript.json")] {
        if rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            return Err(Rejection::artifact("FORBIDDEN_ARTIFACT", "a forbidden artifact is present", shown));
        }
    }

    // Phase 9: outputs.
    let entries: Vec<(String, Value)> = hashes.as_object().expect("object").to_vec();
    let output_bytes = check_outputs(project, &entries, opts.threads)?;

    // Phase 10: the run itself must have succeeded.
    if status.get("status") != Some(&json::string("success")) || status.get("cmp01") != Some(&json::string("pass")) {
        return Err(Rejection::new("DECISION_INVALID", "the run's status is not success with cmp01 pass"));
    }
    Ok(Verified {
        run_id: run_id(run_dir),
        bundle_root: root,
        validator_id: validator_id.to_string(),
        hashes: entries,
        output_bytes,
    })
}

/// The toolkit's `proof_hash` (when present as 64 hex digits): SHA-256 of
/// the proof without it, serialized with `ensure_ascii=True`.
fn check_proof_hash(proof: &Value) -> Result<(), Rejection> {
    let Some(Value::Str(declared)) = proof.get("proof_hash") else { return Ok(()) };
    if !(declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Ok(());
    }
    let rest: Vec<(String, Value)> =
        proof.as_object().expect("object").iter().filter(|(k, _)| k != "proof_hash").cloned().collect();
    let computed = hex::sha256(&Value::Object(rest).canonical(Ascii::Escape));
    if !ct_eq(&computed, declared) {
        return Err(Rejection::artifact("ARTIFACT_MALFORMED", "PROOF.json proof_hash does not match", "PROOF.json"));
    }
    Ok(())
}

/// The hash and size of one output, or `None` when it is not a readable
/// regular file beneath the project root.
fn hash_output(project: &OwnedFd, rel: &str) -> Option<(String, u64)> {
    let posix = rel.replace('\\', "/");
    let mut f: File = fsx::open_beneath(project, &posix, fsx::BENEATH).ok()?;
    fsx::regular_size(&f)?;
    fsx::sha256_prefixed(&mut f).ok()
}

fn check_outputs(project: &OwnedFd, entries: &[(String, Value)], threads: usize) -> Result<u64, Rejection> {
    type Slot = std::sync::Mutex<Option<Option<(String, u64)>>>;
    let results: Vec<Slot> = entries.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((rel, _)) = entries.get(i) else { break };
            *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(hash_output(project, rel));
        }
    };
    let threads = threads.clamp(1, 16).min(entries.len().max(1));
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let mut total = 0u64;
    for ((rel, expected), slot) in entries.iter().zip(results) {
        let shown = rel.replace('\\', "/");
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()).expect("every entry hashed") {
            None => {
                return Err(Rejection::new(
                    "OUTPUT_MISSING",
                    "a declared output does not exist beneath the project root",
                )
                .with("path", shown_path(&shown)));
            }
            Some((actual, bytes)) => {
                let matches = expected.as_str().is_some_and(|e| ct_eq(&actual, e));
                if !matches {
                    let expected_shown = match expected {
                        Value::Str(s) => shown_path(s),
                        _ => Value::Null,
                    };
                    return Err(Rejection::new("HASH_MISMATCH", "an output's hash differs from the declared one")
                        .with("path", shown_path(&shown))
                        .with("expected", expected_shown)
                        .with("actual", json::string(actual)));
                }
                total += bytes;
            }
        }
    }
    Ok(total)
}

/// Verifies a chain: SPECTRUM-05 §6.
pub fn verify_chain(
    project_root: &Path,
    run_dirs: &[PathBuf],
    expected_chain_root: Option<&str>,
    opts: Options,
) -> Result<VerifiedChain, Rejection> {
    if run_dirs.is_empty() {
        return Err(Rejection::new("CHAIN_EMPTY", "a chain needs at least one run"));
    }
    let ids: Vec<String> = run_dirs.iter().map(|d| run_id(d)).collect();
    if let Some(dup) = duplicate(&ids) {
        return Err(
            Rejection::new("CHAIN_DUPLICATE_RUN", "a run appears twice in the chain").with("run_id", shown_path(dup))
        );
    }
    let project = fsx::open_dir(project_root)
        .map_err(|_| Rejection::new("OUTPUT_MISSING", "the project root cannot be opened"))?;
    let mut bundles = Vec::new();
    for (dir, id) in run_dirs.iter().zip(&ids) {
        bundles.push(verify_bundle_in(&project, dir, opts).map_err(|r| r.with("run_id", shown_path(id)))?);
    }
    let roots: Vec<String> = bundles.iter().map(|b| b.bundle_root.clone()).collect();
    let chain_root = chain_root(&roots, &ids);
    if let Some(expected) = expected_chain_root
        && !ct_eq(expected, &chain_root)
    {
        return Err(Rejection::new("CHAIN_ROOT_MISMATCH", "the chain root is not the expected one"));
    }
    Ok(VerifiedChain { chain_root, bundles })
}

/// The smallest run id that appears more than once, if any.
pub(crate) fn duplicate(ids: &[String]) -> Option<&str> {
    let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}
