//! The SPECTRUM-06 restore runner, with the TOCTOU defences of seed 000
//! §4.6.3 made guarantees rather than narrowed windows.
//!
//! The toolkit checks a path and later uses it; between the two an attacker
//! with write access to the restore root can swap a directory for a symlink
//! or create the target. Here no path is ever checked and then used by
//! name:
//!
//! * The restore root is opened once; every later step works from that
//!   descriptor. Each directory on the way to a target is created with
//!   `mkdirat` and opened with `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS)`, so a symlink planted at any moment is refused by
//!   the kernel (`ELOOP`), never followed.
//! * Staged files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` inside a
//!   staging directory this run created with `mkdirat` (which fails if the
//!   name exists), and their bytes are hashed again after writing: what is
//!   placed is what was verified, whatever the source did meanwhile.
//! * Placement is `renameat2(RENAME_NOREPLACE)`: a target that someone else
//!   creates at the last instant makes the rename fail (`EEXIST`); it is
//!   never overwritten.
//! * Durability: one `syncfs` after staging and one after placement cover
//!   every file and directory written (the same guarantee as an `fsync` of
//!   each, at a fraction of the cost for 10 000 files); result artifacts are
//!   written to an exclusive temporary, `fsync`ed and renamed with
//!   `RENAME_NOREPLACE`, then the directory is `fsync`ed.
//! * Rollback removes only what this run created, and checks the inode of
//!   each file before unlinking it: a file someone put in place of ours is
//!   left alone (and the rollback reports `RESTORE_ROLLBACK_FAILED`).
//!
//! Phases, codes and their order are those of SPECTRUM-06 §8 (see
//! docs/bundle-format.md for the few places where the spec and the toolkit
//! disagree and which one keyward follows).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags, RenameFlags, Timestamps};
use rustix::io::Errno;

use crate::fsx;
use crate::hex;
use crate::json::{self, Ascii, Value};
use crate::verify::{self, Options, Rejection, Verified, ct_eq, shown_path};

/// A restore phase (SPECTRUM-06 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Preflight,
    Plan,
    Execute,
    Verify,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Preflight => "PREFLIGHT",
            Phase::Plan => "PLAN",
            Phase::Execute => "EXECUTE",
            Phase::Verify => "VERIFY",
        }
    }
}

/// The result of a restore: the toolkit's `{ok, code, details}` with
/// `details.phase` and, when a rollback failed, `details.cause_code`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub code: &'static str,
    pub phase: Phase,
    pub cause_code: Option<&'static str>,
    pub details: Vec<(String, Value)>,
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        let mut details = self.details.clone();
        details.push(("phase".into(), json::string(self.phase.name())));
        if let Some(c) = self.cause_code {
            details.push(("cause_code".into(), json::string(c)));
        }
        json::object([
            ("ok", Value::Bool(self.ok)),
            ("code", json::string(self.code)),
            ("details", Value::Object(details)),
        ])
    }

    fn fail(code: &'static str, phase: Phase) -> Outcome {
        Outcome { ok: false, code, phase, cause_code: None, details: Vec::new() }
    }

    fn with(mut self, key: &str, value: Value) -> Outcome {
        self.details.push((key.to_string(), value));
        self
    }

    /// The rollback after `cause` did not reach its success state.
    fn rollback_failed(cause: &Outcome) -> Outcome {
        Outcome {
            ok: false,
            code: "RESTORE_ROLLBACK_FAILED",
            phase: cause.phase,
            cause_code: Some(cause.cause_code.unwrap_or(cause.code)),
            details: Vec::new(),
        }
    }
}

/// Progress of the copy, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What to restore where.
pub struct Request<'a> {
    /// Where the outputs named in `OUTPUT_HASHES.json` live.
    pub project_root: &'a Path,
    /// Where to restore them (must be absolute and exist).
    pub restore_root: Option<&'a Path>,
    pub dry_run: bool,
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("project_root", &self.project_root)
            .field("restore_root", &self.restore_root)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// One file to restore.
#[derive(Debug, Clone)]
struct Entry {
    rel: String,
    expected: String,
    size: u64,
}

/// A bundle that passed PREFLIGHT and PLAN.
#[derive(Debug)]
struct Planned {
    verified: Verified,
    entries: Vec<Entry>,
}

impl Planned {
    fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// What this run created, so that rollback removes exactly that.
#[derive(Debug, Default)]
struct Created {
    /// Directories under the result root, in creation order.
    dirs: Vec<String>,
    /// Placed files: relative path and inode identity.
    files: Vec<(String, (u64, u64))>,
    /// Result artifacts written.
    artifacts: Vec<(String, (u64, u64))>,
    /// The staging directory's name, and what is inside it.
    staging: Option<Staging>,
}

#[derive(Debug, Default)]
struct Staging {
    name: String,
    dirs: Vec<String>,
    /// Staged files not yet moved out.
    files: Vec<String>,
}

type Fail = Outcome;

fn random_hex() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the kernel's random source");
    hex::encode(&b)
}

fn identity_of(f: impl AsFd) -> Result<(u64, u64), Errno> {
    let st = rustix::fs::fstat(f)?;
    Ok((st.st_dev, st.st_ino))
}

fn split_parent(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Opens `rel` (a directory) beneath `base` without following symlinks; `""`
/// is `base` itself.
fn open_subdir(base: &OwnedFd, rel: &str) -> Result<OwnedFd, Errno> {
    let path = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(base, path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), fsx::STRICT)
}

/// Creates (if missing) and opens each directory of `rel` beneath `base`,
/// recording the ones this call created.
fn ensure_dirs(base: &OwnedFd, rel: &str, created: &mut Vec<String>) -> Result<OwnedFd, Errno> {
    let mut cur = open_subdir(base, "")?;
    let mut so_far = String::new();
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(comp);
        match rustix::fs::mkdirat(&cur, comp, Mode::from_raw_mode(0o755)) {
            Ok(()) => created.push(so_far.clone()),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        cur = open_subdir(&cur, comp)?;
    }
    Ok(cur)
}

// ---------------------------------------------------------------- PREFLIGHT

fn eligibility(project: &OwnedFd, run_dir: &Path, verified: Option<Verified>) -> Result<Verified, Fail> {
    let verified = match verified {
        Some(v) => v,
        None => verify::verify_bundle_in(project, run_dir, Options { check_proof: false, ..Options::default() })
            .map_err(|r| strict_failed(&r))?,
    };
    // PROOF.json, read without following symlinks.
    let dir = fsx::open_dir(run_dir).map_err(|_| Outcome::fail("RESTORE_PROOF_MISSING", Phase::Preflight))?;
    let proof = match fsx::open_beneath(&dir, "PROOF.json", fsx::STRICT) {
        Err(Errno::NOENT) => return Err(Outcome::fail("RESTORE_PROOF_MISSING", Phase::Preflight)),
        Err(_) => return Err(Outcome::fail("RESTORE_PROOF_MALFORMED", Phase::Preflight)),
        Ok(f) => fsx::read_capped(f, verify::MAX_ARTIFACT_BYTES)
            .ok()
            .and_then(|b| json::parse(&b).ok())
            .filter(|v| v.as_object().is_some())
            .ok_or_else(|| Outcome::fail("RESTORE_PROOF_MALFORMED", Phase::Preflight))?,
    };
    match proof.get("restoration_result") {
        Some(rr @ Value::Object(_)) => {
            if rr.get("verified") != Some(&Value::Bool(true)) {
                return Err(Outcome::fail("RESTORE_PROOF_NOT_VERIFIED", Phase::Preflight));
            }
        }
        _ => return Err(Outcome::fail("RESTORE_PROOF_RESTORATION_RESULT_MISSING", Phase::Preflight)),
    }
    // OUTPUT_HASHES.json: the verified copy (re-reading it would open a
    // window between verification and use).
    if verified.hashes.iter().any(|(_, v)| v.as_str().is_none()) {
        return Err(Outcome::fail("RESTORE_OUTPUT_HASHES_HASHES_MISSING", Phase::Preflight));
    }
    if verified.hashes.is_empty() {
        return Err(Outcome::fail("RESTORE_OUTPUT_HASHES_HASHES_EMPTY", Phase::Preflight));
    }
    Ok(verified)
}

fn strict_failed(r: &Rejection) -> Fail {
    Outcome::fail("RESTORE_VERIFY_STRICT_FAILED", Phase::Preflight)
        .with("verifier_code", json::string(r.code))
        .with("verifier_details", Value::Object(r.details.clone()))
}

fn validate_root(root: Option<&Path>) -> Result<OwnedFd, Fail> {
    let f = |c| Outcome::fail(c, Phase::Preflight);
    let root = root.ok_or_else(|| f("RESTORE_TARGET_MISSING"))?;
    if !root.is_absolute() {
        return Err(f("RESTORE_TARGET_NOT_ABSOLUTE"));
    }
    let st = rustix::fs::stat(root).map_err(|_| f("RESTORE_TARGET_NOT_EXIST"))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(f("RESTORE_TARGET_NOT_DIRECTORY"));
    }
    // access(2) also answers EROFS for a read-only mount.
    rustix::fs::access(root, Access::WRITE_OK | Access::EXEC_OK).map_err(|_| f("RESTORE_TARGET_NOT_WRITABLE"))?;
    fsx::open_dir(root).map_err(|_| f("RESTORE_TARGET_NOT_EXIST"))
}

/// SPECTRUM-06 §4.3 normalisation, then §8.4.5's order: traversal, NUL.
/// A key that normalisation would change is refused, not rewritten.
fn path_code(raw: &str) -> Option<&'static str> {
    let mut p = raw.replace('\\', "/");
    while p.contains("//") {
        p = p.replace("//", "/");
    }
    let p = p.trim_start_matches('/');
    let traversal = p.is_empty()
        || p.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c.len() > 255)
        || p != raw
        || raw.len() > 4095;
    if traversal {
        return Some("RESTORE_PATH_TRAVERSAL_DETECTED");
    }
    if raw.contains('\0') {
        return Some("RESTORE_PATH_NULL_BYTE_DETECTED");
    }
    None
}

/// Path safety for every entry in ascending byte order. `result_root` is
/// `None` when the result root does not exist yet (chain mode), so no
/// symlink can be on the way.
fn path_safety(result_root: Option<&OwnedFd>, verified: &Verified) -> Result<(), Fail> {
    let mut rels: Vec<&str> = verified.hashes.iter().map(|(k, _)| k.as_str()).collect();
    rels.sort();
    for rel in rels {
        if let Some(code) = path_code(rel) {
            return Err(Outcome::fail(code, Phase::Preflight).with("path", shown_path(rel)));
        }
        let Some(root) = result_root else { continue };
        let mut so_far = String::new();
        for comp in rel.split('/') {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(comp);
            match fsx::lstat_type(root, &so_far) {
                Ok(FileType::Symlink) => {
                    return Err(Outcome::fail("RESTORE_SYMLINK_ESCAPE_DETECTED", Phase::Preflight)
                        .with("path", shown_path(rel)));
                }
                Ok(FileType::Directory) => {}
                _ => break,
            }
        }
    }
    Ok(())
}

// --------------------------------------------------------------------- PLAN

fn plan(project: &OwnedFd, verified: Verified) -> Result<Planned, Fail> {
    let mut pairs: Vec<(String, String)> =
        verified.hashes.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
    pairs.sort();
    let mut entries = Vec::with_capacity(pairs.len());
    for (rel, expected) in &pairs {
        if !(expected.starts_with("sha256:") && expected.len() == 71) {
            return Err(
                Outcome::fail("RESTORE_OUTPUT_HASHES_HASHES_MISSING", Phase::Plan).with("path", shown_path(rel))
            );
        }
    }
    for (rel, expected) in pairs {
        let size = match fsx::open_beneath(project, &rel, fsx::STRICT) {
            Ok(f) => fsx::regular_size(&f).ok_or_else(|| {
                Outcome::fail("RESTORE_SOURCE_NOT_REGULAR_FILE", Phase::Plan).with("path", shown_path(&rel))
            })?,
            // A symlink anywhere on the way: the source is not a regular
            // file beneath the project root.
            Err(Errno::LOOP) => {
                return Err(
                    Outcome::fail("RESTORE_SOURCE_NOT_REGULAR_FILE", Phase::Plan).with("path", shown_path(&rel))
                );
            }
            Err(_) => return Err(Outcome::fail("RESTORE_SOURCE_MISSING", Phase::Plan).with("path", shown_path(&rel))),
        };
        entries.push(Entry { rel, expected, size });
    }
    Ok(Planned { verified, entries })
}

// ------------------------------------------------------------------ EXECUTE

struct Counter<'a> {
    done_files: u64,
    done_bytes: u64,
    total_files: u64,
    total_bytes: u64,
    report: Option<&'a (dyn Fn(Progress) + Sync)>,
}

impl<'a> Counter<'a> {
    fn new<'p>(plans: impl IntoIterator<Item = &'p Planned>, report: Option<&'a (dyn Fn(Progress) + Sync)>) -> Self {
        let (mut total_files, mut total_bytes) = (0, 0);
        for p in plans {
            total_files += p.entries.len() as u64;
            total_bytes += p.bytes();
        }
        Counter { done_files: 0, done_bytes: 0, total_files, total_bytes, report }
    }

    fn step(&mut self, bytes: u64) {
        self.done_files += 1;
        self.done_bytes += bytes;
        if let Some(r) = self.report {
            r(Progress {
                files_done: self.done_files,
                files_total: self.total_files,
                bytes_done: self.done_bytes,
                bytes_total: self.total_bytes,
            });
        }
    }
}

/// Copies `src` into the new file `dst` (kernel-side when possible) and
/// gives it the source's permission bits (set-id bits dropped) and times.
fn copy_into(src: &mut File, dst: &mut File) -> std::io::Result<()> {
    let st = rustix::fs::fstat(&*src)?;
    let mut in_kernel = true;
    loop {
        if in_kernel {
            match rustix::fs::copy_file_range(&*src, None, &*dst, None, 1 << 30) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => in_kernel = false,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        } else {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                dst.write_all(&buf[..n])?;
            }
            break;
        }
    }
    rustix::fs::fchmod(&*dst, Mode::from_raw_mode(st.st_mode & 0o777))?;
    let times = Timestamps {
        last_access: rustix::fs::Timespec { tv_sec: st.st_atime, tv_nsec: st.st_atime_nsec as _ },
        last_modification: rustix::fs::Timespec { tv_sec: st.st_mtime, tv_nsec: st.st_mtime_nsec as _ },
    };
    rustix::fs::futimens(&*dst, &times)?;
    Ok(())
}

/// Restores one planned bundle into `result` (an open directory). On
/// failure everything this call created is rolled back before returning.
fn execute(
    project: &OwnedFd,
    result: &OwnedFd,
    planned: &Planned,
    chain_root: Option<&str>,
    counter: &mut Counter<'_>,
    created: &mut Created,
) -> Result<Vec<(String, String, u64)>, Fail> {
    match execute_inner(project, result, planned, chain_root, counter, created) {
        Ok(v) => Ok(v),
        Err(f) => Err(rolled_back(result, created, f)),
    }
}

fn rolled_back(result: &OwnedFd, created: &mut Created, f: Fail) -> Fail {
    if rollback(result, created) { f } else { Outcome::rollback_failed(&f) }
}

fn execute_inner(
    project: &OwnedFd,
    result: &OwnedFd,
    planned: &Planned,
    chain_root: Option<&str>,
    counter: &mut Counter<'_>,
    created: &mut Created,
) -> Result<Vec<(String, String, u64)>, Fail> {
    let exec = |c| Outcome::fail(c, Phase::Execute);
    // Reject-if-exists before any write (the rename below is what makes it
    // a guarantee).
    for e in &planned.entries {
        if fsx::lstat_type(result, &e.rel).is_ok() {
            return Err(exec("RESTORE_TARGET_PATH_EXISTS").with("path", shown_path(&e.rel)));
        }
    }
    let name = format!(".spectrum06_staging_{}", random_hex());
    match rustix::fs::mkdirat(result, name.as_str(), Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            return Err(exec("RESTORE_INTERNAL_ERROR").with("reason", json::string("staging_collision")));
        }
        Err(_) => return Err(exec("RESTORE_INTERNAL_ERROR").with("reason", json::string("staging_create_failed"))),
    }
    created.staging = Some(Staging { name: name.clone(), ..Staging::default() });
    let staging = open_subdir(result, &name)
        .map_err(|_| exec("RESTORE_INTERNAL_ERROR").with("reason", json::string("staging_open_failed")))?;

    // Stage and re-hash every file.
    let internal = |reason: &str, rel: &str| {
        exec("RESTORE_INTERNAL_ERROR").with("reason", json::string(reason)).with("path", shown_path(rel))
    };
    let mut staged_ids = Vec::with_capacity(planned.entries.len());
    let mut parents: HashMap<String, OwnedFd> = HashMap::new();
    for e in &planned.entries {
        let (parent, file) = split_parent(&e.rel);
        if !parents.contains_key(parent) {
            let st = created.staging.as_mut().expect("set above");
            let fd =
                ensure_dirs(&staging, parent, &mut st.dirs).map_err(|_| internal("staging_write_failed", &e.rel))?;
            parents.insert(parent.to_string(), fd);
        }
        let mut src =
            fsx::open_beneath(project, &e.rel, fsx::STRICT).map_err(|_| internal("source_vanished", &e.rel))?;
        let dst = rustix::fs::openat2(
            &parents[parent],
            file,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
            fsx::STRICT,
        )
        .map_err(|_| internal("staging_write_failed", &e.rel))?;
        created.staging.as_mut().expect("set above").files.push(e.rel.clone());
        let mut dst = File::from(dst);
        copy_into(&mut src, &mut dst).map_err(|_| internal("staging_write_failed", &e.rel))?;
        dst.seek(SeekFrom::Start(0)).map_err(|_| internal("staging_write_failed", &e.rel))?;
        let (staged_hash, bytes) =
            fsx::sha256_prefixed(&mut dst).map_err(|_| internal("staging_read_failed", &e.rel))?;
        if !ct_eq(&staged_hash, &e.expected) {
            return Err(exec("RESTORE_STAGING_HASH_MISMATCH").with("path", shown_path(&e.rel)));
        }
        staged_ids.push(identity_of(&dst).map_err(|_| internal("staging_read_failed", &e.rel))?);
        counter.step(bytes);
    }
    rustix::fs::syncfs(&staging).map_err(|_| internal("sync_failed", ""))?;

    // Place: one no-replace rename per file.
    let finalize = || exec("RESTORE_FINALIZE_FAILED");
    let mut targets: HashMap<String, OwnedFd> = HashMap::new();
    for (e, id) in planned.entries.iter().zip(staged_ids) {
        let (parent, file) = split_parent(&e.rel);
        if !targets.contains_key(parent) {
            let fd = ensure_dirs(result, parent, &mut created.dirs)
                .map_err(|_| finalize().with("path", shown_path(&e.rel)))?;
            targets.insert(parent.to_string(), fd);
        }
        match rustix::fs::renameat_with(&parents[parent], file, &targets[parent], file, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Err(exec("RESTORE_TARGET_PATH_EXISTS").with("path", shown_path(&e.rel))),
            Err(_) => return Err(finalize().with("path", shown_path(&e.rel))),
        }
        let st = created.staging.as_mut().expect("set above");
        st.files.retain(|f| f != &e.rel);
        created.files.push((e.rel.clone(), id));
    }
    drop(parents);
    rustix::fs::syncfs(result).map_err(|_| finalize())?;
    if !remove_staging(result, created) {
        return Err(finalize());
    }

    // VERIFY: what is at each target now is ours and hashes right.
    let mut manifest = Vec::with_capacity(planned.entries.len());
    for (e, (_, id)) in planned.entries.iter().zip(&created.files) {
        let verify_fail = |c| Outcome::fail(c, Phase::Verify).with("path", shown_path(&e.rel));
        let mut f = fsx::open_beneath(result, &e.rel, fsx::STRICT)
            .map_err(|_| verify_fail("RESTORE_OUTPUT_MISSING_AFTER_RESTORE"))?;
        if identity_of(&f).ok() != Some(*id) {
            return Err(verify_fail("RESTORE_OUTPUT_MISSING_AFTER_RESTORE"));
        }
        let (actual, bytes) =
            fsx::sha256_prefixed(&mut f).map_err(|_| verify_fail("RESTORE_OUTPUT_MISSING_AFTER_RESTORE"))?;
        if !ct_eq(&actual, &e.expected) {
            return Err(verify_fail("RESTORE_HASH_MISMATCH_AFTER_RESTORE"));
        }
        manifest.push((e.rel.clone(), e.expected.clone(), bytes));
    }
    write_result_artifacts(result, &manifest, &planned.verified.bundle_root, chain_root, created)?;
    Ok(manifest)
}

fn write_result_artifacts(
    result: &OwnedFd,
    manifest: &[(String, String, u64)],
    bundle_root: &str,
    chain_root: Option<&str>,
    created: &mut Created,
) -> Result<(), Fail> {
    let entries: Vec<Value> = manifest
        .iter()
        .map(|(rel, sha, bytes)| {
            json::object([
                ("bytes", json::int(*bytes)),
                ("relative_path", json::string(rel.as_str())),
                ("sha256", json::string(sha.as_str())),
            ])
        })
        .collect();
    let total: u64 = manifest.iter().map(|m| m.2).sum();
    let manifest_doc = json::object([("entries", Value::Array(entries))]);
    let report = json::object([
        ("bundle_roots", Value::Array(vec![json::string(bundle_root)])),
        ("chain_root", chain_root.map_or(Value::Null, json::string)),
        ("ok", Value::Bool(true)),
        ("restored_bytes", json::int(total)),
        ("restored_files_count", json::int(manifest.len() as u64)),
    ]);
    for (name, doc) in [("RESTORE_MANIFEST.json", manifest_doc), ("RESTORE_REPORT.json", report)] {
        let id = write_new_file(result, name, &doc.canonical(Ascii::Literal))
            .map_err(|_| Outcome::fail("RESTORE_RESULT_ARTIFACT_WRITE_FAILED", Phase::Verify))?;
        created.artifacts.push((name.to_string(), id));
    }
    rustix::fs::fsync(result).map_err(|_| Outcome::fail("RESTORE_RESULT_ARTIFACT_WRITE_FAILED", Phase::Verify))?;
    Ok(())
}

/// Writes `bytes` as `dir/name`, all or nothing: an exclusive temporary,
/// fsync, then a rename that refuses to replace anything.
pub(crate) fn write_new_file(dir: &OwnedFd, name: &str, bytes: &[u8]) -> Result<(u64, u64), Errno> {
    let tmp = format!(".spectrum06_tmp_{}", random_hex());
    let fd = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut f = File::from(fd);
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    let placed = written
        .map_err(|e| e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error))
        .and_then(|()| rustix::fs::renameat_with(dir, tmp.as_str(), dir, name, RenameFlags::NOREPLACE));
    if let Err(e) = placed {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        return Err(e);
    }
    identity_of(&f)
}

// ----------------------------------------------------------------- ROLLBACK

/// Removes `rel` beneath `base` if it is still the inode this run made.
/// `true` when it is gone (or was never there); `false` when something
/// else now stands there or removal failed. A path that flickers (someone
/// swapping a directory on the way) is retried a bounded number of times.
fn remove_if_ours(base: &OwnedFd, rel: &str, id: (u64, u64)) -> bool {
    let (parent, file) = split_parent(rel);
    for _ in 0..100 {
        let Ok(dir) = open_subdir(base, parent) else {
            // The parent is missing or not a plain directory right now.
            if fsx::lstat_type(base, parent).is_err() {
                return true;
            }
            std::thread::yield_now();
            continue;
        };
        return match rustix::fs::statat(&dir, file, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => true,
            Err(_) => false,
            Ok(st) if (st.st_dev, st.st_ino) == id => rustix::fs::unlinkat(&dir, file, AtFlags::empty()).is_ok(),
            Ok(_) => false,
        };
    }
    false
}

fn remove_staging(result: &OwnedFd, created: &mut Created) -> bool {
    let Some(st) = created.staging.take() else { return true };
    let Ok(dir) = open_subdir(result, &st.name) else {
        return fsx::lstat_type(result, &st.name).is_err();
    };
    let mut ok = true;
    for f in &st.files {
        let (parent, file) = split_parent(f);
        match open_subdir(&dir, parent) {
            Ok(p) => ok &= matches!(rustix::fs::unlinkat(&p, file, AtFlags::empty()), Ok(()) | Err(Errno::NOENT)),
            Err(_) => ok = false,
        }
    }
    for d in st.dirs.iter().rev() {
        let (parent, name) = split_parent(d);
        match open_subdir(&dir, parent) {
            Ok(p) => ok &= matches!(rustix::fs::unlinkat(&p, name, AtFlags::REMOVEDIR), Ok(()) | Err(Errno::NOENT)),
            Err(_) => ok = false,
        }
    }
    drop(dir);
    ok &= matches!(rustix::fs::unlinkat(result, st.name.as_str(), AtFlags::REMOVEDIR), Ok(()) | Err(Errno::NOENT));
    if !ok {
        created.staging = Some(Staging { name: st.name, ..Staging::default() });
    }
    ok
}

/// Undoes this run's writes in `result`. `true` when SPECTRUM-06 §8.5.1's
/// rollback success state holds.
fn rollback(result: &OwnedFd, created: &mut Created) -> bool {
    let mut ok = remove_staging(result, created);
    for (name, id) in created.artifacts.drain(..) {
        ok &= remove_if_ours(result, &name, id);
    }
    for (rel, id) in created.files.drain(..) {
        ok &= remove_if_ours(result, &rel, id);
    }
    // Directories we made, deepest first; one that someone else has put a
    // file in stays (rmdir never removes content).
    for d in created.dirs.drain(..).rev() {
        let (parent, name) = split_parent(&d);
        if let Ok(p) = open_subdir(result, parent) {
            let _ = rustix::fs::unlinkat(&p, name, AtFlags::REMOVEDIR);
        }
    }
    let _ = rustix::fs::fsync(result);
    ok
}

// ------------------------------------------------------------- entry points

fn open_project(req: &Request<'_>) -> Result<OwnedFd, Fail> {
    fsx::open_dir(req.project_root)
        .map_err(|_| strict_failed(&Rejection::new("OUTPUT_MISSING", "the project root cannot be opened")))
}

/// Restores one bundle into the restore root (SPECTRUM-06 §5).
pub fn restore_bundle(req: &Request<'_>, run_dir: &Path) -> Outcome {
    match restore_bundle_inner(req, run_dir) {
        Ok(o) | Err(o) => o,
    }
}

fn restore_bundle_inner(req: &Request<'_>, run_dir: &Path) -> Result<Outcome, Fail> {
    let project = open_project(req)?;
    let verified = eligibility(&project, run_dir, None)?;
    let root = validate_root(req.restore_root)?;
    path_safety(Some(&root), &verified)?;
    let planned = plan(&project, verified)?;
    let root_shown = json::string(req.restore_root.map(|p| p.display().to_string()).unwrap_or_default());
    if req.dry_run {
        return Ok(dry_run_outcome(&planned, root_shown));
    }
    let mut counter = Counter::new([&planned], req.progress);
    let mut created = Created::default();
    let manifest = execute(&project, &root, &planned, None, &mut counter, &mut created)?;
    Ok(Outcome { ok: true, code: "OK", phase: Phase::Verify, cause_code: None, details: Vec::new() }
        .with("restored_files_count", json::int(manifest.len() as u64))
        .with("bundle_root", json::string(planned.verified.bundle_root.as_str()))
        .with("restore_root", root_shown))
}

fn dry_run_outcome(planned: &Planned, root_shown: Value) -> Outcome {
    Outcome { ok: true, code: "OK", phase: Phase::Plan, cause_code: None, details: Vec::new() }
        .with("dry_run", Value::Bool(true))
        .with("would_restore_files_count", json::int(planned.entries.len() as u64))
        .with("would_restore_bytes", json::int(planned.bytes()))
        .with("would_restore_paths", Value::Array(planned.entries.iter().map(|e| shown_path(&e.rel)).collect()))
        .with("bundle_root", json::string(planned.verified.bundle_root.as_str()))
        .with("restore_root", root_shown)
}

/// Restores a chain into `restore_root/<run_id>/` (SPECTRUM-06 §6), all or
/// nothing.
pub fn restore_chain(req: &Request<'_>, run_dirs: &[std::path::PathBuf]) -> Outcome {
    match restore_chain_inner(req, run_dirs) {
        Ok(o) | Err(o) => o,
    }
}

fn restore_chain_inner(req: &Request<'_>, run_dirs: &[std::path::PathBuf]) -> Result<Outcome, Fail> {
    let pre = |c| Outcome::fail(c, Phase::Preflight);
    if run_dirs.is_empty() {
        return Err(pre("RESTORE_VERIFY_STRICT_FAILED").with("verifier_code", json::string("CHAIN_EMPTY")));
    }
    let ids: Vec<String> = run_dirs.iter().map(|d| verify::run_id(d)).collect();
    if verify::duplicate(&ids).is_some() {
        return Err(pre("RESTORE_CHAIN_RUN_ID_DUPLICATE")
            .with("run_ids", Value::Array(ids.iter().map(|i| shown_path(i)).collect())));
    }
    let chain =
        verify::verify_chain(req.project_root, run_dirs, None, Options { check_proof: false, ..Options::default() })
            .map_err(|r| strict_failed(&r))?;
    let project = open_project(req)?;
    let mut bundles = Vec::new();
    for (dir, v) in run_dirs.iter().zip(chain.bundles) {
        let id = v.run_id.clone();
        bundles.push(eligibility(&project, dir, Some(v)).map_err(|f| f.with("run_id", shown_path(&id)))?);
    }
    let root = validate_root(req.restore_root)?;
    for id in &ids {
        if path_code(id).is_some() || id.contains('/') {
            return Err(pre("RESTORE_PATH_TRAVERSAL_DETECTED").with("run_id", shown_path(id)));
        }
        if fsx::lstat_type(&root, id).is_ok() {
            return Err(pre("RESTORE_CHAIN_TARGET_DIR_EXISTS").with("run_id", shown_path(id)));
        }
    }
    for v in &bundles {
        path_safety(None, v).map_err(|f| f.with("run_id", shown_path(&v.run_id)))?;
    }
    let mut planned = Vec::new();
    for v in bundles {
        let id = v.run_id.clone();
        planned.push(plan(&project, v).map_err(|f| f.with("run_id", shown_path(&id)))?);
    }
    let root_path = req.restore_root.expect("validated above");
    if req.dry_run {
        let results = planned
            .iter()
            .map(|p| {
                let shown = json::string(root_path.join(&p.verified.run_id).display().to_string());
                json::object([
                    ("run_id", json::string(p.verified.run_id.as_str())),
                    ("details", Value::Object(dry_run_outcome(p, shown).details)),
                ])
            })
            .collect();
        return Ok(Outcome { ok: true, code: "OK", phase: Phase::Plan, cause_code: None, details: Vec::new() }
            .with("dry_run", Value::Bool(true))
            .with("chain_root", json::string(chain.chain_root.as_str()))
            .with("run_ids", Value::Array(ids.iter().map(|i| json::string(i.as_str())).collect()))
            .with("bundle_results", Value::Array(results)));
    }

    // EXECUTE: the chain manifest first, created exclusively.
    let manifest_name = format!(".spectrum06_chain_{}.json", random_hex());
    let manifest_doc =
        json::object([("run_ids", Value::Array(ids.iter().map(|i| json::string(i.as_str())).collect()))]);
    let manifest_id = match write_chain_manifest(&root, &manifest_name, &manifest_doc.canonical(Ascii::Literal)) {
        Ok(id) => id,
        Err(Errno::EXIST) => {
            return Err(Outcome::fail("RESTORE_INTERNAL_ERROR", Phase::Execute)
                .with("reason", json::string("chain_manifest_collision")));
        }
        Err(_) => return Err(Outcome::fail("RESTORE_INTERNAL_ERROR", Phase::Execute)),
    };
    let mut counter = Counter::new(&planned, req.progress);
    // Each restored run: its directory and what was created inside it.
    let mut done: Vec<(String, (u64, u64), Created)> = Vec::new();
    let mut failure = None;
    for p in &planned {
        let id = &p.verified.run_id;
        match rustix::fs::mkdirat(&root, id.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                failure = Some(
                    Outcome::fail("RESTORE_CHAIN_TARGET_DIR_EXISTS", Phase::Execute).with("run_id", shown_path(id)),
                );
                break;
            }
            Err(_) => {
                failure = Some(Outcome::fail("RESTORE_INTERNAL_ERROR", Phase::Execute).with("run_id", shown_path(id)));
                break;
            }
        }
        let dir = match open_subdir(&root, id) {
            Ok(d) => d,
            Err(_) => {
                failure = Some(Outcome::fail("RESTORE_FINALIZE_FAILED", Phase::Execute).with("run_id", shown_path(id)));
                break;
            }
        };
        let dir_id = identity_of(&dir).unwrap_or_default();
        let mut created = Created::default();
        let r = execute(&project, &dir, p, Some(&chain.chain_root), &mut counter, &mut created);
        done.push((id.clone(), dir_id, created));
        if let Err(f) = r {
            failure = Some(f.with("run_id", shown_path(id)));
            break;
        }
    }
    if let Some(f) = failure {
        // Undo every run directory this attempt created, then the manifest.
        let mut ok = f.code != "RESTORE_ROLLBACK_FAILED";
        for (id, dir_id, mut created) in done.into_iter().rev() {
            if let Ok(dir) = open_subdir(&root, &id) {
                ok &= rollback(&dir, &mut created);
            }
            ok &= remove_dir_if_ours(&root, &id, dir_id);
        }
        ok &= remove_if_ours(&root, &manifest_name, manifest_id);
        let _ = rustix::fs::fsync(&root);
        return Err(if ok { f } else { Outcome::rollback_failed(&f) });
    }
    if !remove_if_ours(&root, &manifest_name, manifest_id) || rustix::fs::fsync(&root).is_err() {
        return Err(Outcome::fail("RESTORE_INTERNAL_ERROR", Phase::Verify));
    }
    Ok(Outcome { ok: true, code: "OK", phase: Phase::Verify, cause_code: None, details: Vec::new() }
        .with("restore_root", json::string(root_path.display().to_string()))
        .with("chain_root", json::string(chain.chain_root.as_str()))
        .with("run_ids", Value::Array(ids.iter().map(|i| json::string(i.as_str())).collect())))
}

/// The chain manifest: created with `O_EXCL` (a name that exists is never
/// reused or overwritten), written and fsynced.
fn write_chain_manifest(root: &OwnedFd, name: &str, bytes: &[u8]) -> Result<(u64, u64), Errno> {
    let fd = rustix::fs::openat(
        root,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut f = File::from(fd);
    let done = f.write_all(bytes).and_then(|()| f.sync_all());
    if done.is_err() {
        let _ = rustix::fs::unlinkat(root, name, AtFlags::empty());
        return Err(Errno::IO);
    }
    rustix::fs::fsync(root)?;
    identity_of(&f)
}

/// Removes the (now empty) run directory `name` if it is the one we made.
fn remove_dir_if_ours(root: &OwnedFd, name: &str, id: (u64, u64)) -> bool {
    match rustix::fs::statat(root, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => true,
        Ok(st) if (st.st_dev, st.st_ino) == id => rustix::fs::unlinkat(root, name, AtFlags::REMOVEDIR).is_ok(),
        _ => false,
    }
}

/// The restore runner's verdict on one output path (`None`: acceptable),
/// for tools that build bundles and want them restorable.
pub fn path_code_public(raw: &str) -> Option<&'static str> {
    path_code(raw)
}
