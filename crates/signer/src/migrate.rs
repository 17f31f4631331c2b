//! The migration engine: legacy plaintext secrets into the vault, without
//! ever losing one.
//!
//! For each legacy secret: read → seal → verify by decrypting and comparing
//! → only then remove the legacy copy (overwrite with zeros, fsync, unlink,
//! fsync the directory: best effort, since file systems and SSDs may keep
//! old blocks). The vault itself is the record of what was sealed; the
//! checkpoint journal (`DIR/migration.journal`, append-only, fsynced per
//! line, public identifiers only) records which legacy copies were verified
//! and removed, so a run killed at any point resumes correctly:
//!
//! * killed before the seal commits: the legacy copy is intact, the next run
//!   seals it;
//! * killed after the seal, before removal: the next run finds the same
//!   bytes in the vault and goes on to verify and remove;
//! * killed during removal: the journal says `verified`, so the next run
//!   finishes the removal without reading the (possibly zeroed) file.
//!
//! A name already in the vault with *different* bytes is a conflict: the
//! legacy copy is kept and reported. Environment variables cannot be removed
//! from the environment of whoever started us; the report says to unset them.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use vault::{SecretProvider, Vault, VaultError};

use crate::legacy::{self, Candidate, CapturedEnv, Source, Unusable};

pub const JOURNAL: &str = "migration.journal";

/// A point in one secret's migration (for progress and crash tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Read,
    Sealed,
    Verified,
    Overwritten,
    Removed,
}

/// The outcome for one legacy secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Would be migrated (dry run).
    WouldMigrate,
    Migrated,
    /// Sealed earlier (an interrupted run); verified and removed now.
    Resumed,
    /// The vault holds different bytes under this name: legacy copy kept.
    Conflict,
    /// An environment variable: sealed and verified; unset it yourself.
    SealedUnsetVariable,
}

#[derive(Debug, Default)]
pub struct Report {
    pub items: Vec<(Candidate, Outcome)>,
    pub unusable: Vec<Unusable>,
    pub keyring: &'static str,
}

impl Report {
    pub fn nothing_to_do(&self) -> bool {
        self.items.iter().all(|(_, o)| *o == Outcome::SealedUnsetVariable)
    }
}

/// What to migrate and how.
#[derive(Debug)]
pub struct Plan {
    pub paths: Vec<PathBuf>,
    pub env: CapturedEnv,
    pub apply: bool,
}

/// Errors that stop a migration. The legacy copies not yet migrated are untouched.
#[derive(Debug)]
pub enum MigrateError {
    Vault(VaultError),
    /// The legacy copy could not be removed (it is sealed and verified).
    Remove {
        source: String,
        kind: std::io::ErrorKind,
    },
    /// The read-back did not match what was sealed; the legacy copy is kept.
    VerifyMismatch {
        name: String,
    },
    Journal(std::io::ErrorKind),
    /// The journal is larger than [`bounded_read::MIGRATION_JOURNAL`] or
    /// not text: refused before it is parsed.
    JournalInput(bounded_read::ReadError),
}

impl MigrateError {
    pub fn code(&self) -> &'static str {
        match self {
            MigrateError::Vault(e) => e.code(),
            MigrateError::Remove { .. } => "MIGRATE_REMOVE_FAILED",
            MigrateError::VerifyMismatch { .. } => "MIGRATE_VERIFY_MISMATCH",
            MigrateError::Journal(_) => "MIGRATE_JOURNAL_IO",
            MigrateError::JournalInput(e) => e.code(),
        }
    }
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrateError::Vault(e) => write!(f, "{e}"),
            MigrateError::Remove { source, kind } => {
                write!(f, "MIGRATE_REMOVE_FAILED: sealed and verified, but cannot remove {source} ({kind})")
            }
            MigrateError::VerifyMismatch { name } => {
                write!(f, "MIGRATE_VERIFY_MISMATCH: {name} read back differently; legacy copy kept")
            }
            MigrateError::Journal(k) => write!(f, "MIGRATE_JOURNAL_IO: cannot write the journal ({k})"),
            MigrateError::JournalInput(e) => write!(f, "{}: the migration journal is {e}", e.code()),
        }
    }
}

impl From<VaultError> for MigrateError {
    fn from(e: VaultError) -> Self {
        MigrateError::Vault(e)
    }
}

/// The append-only checkpoint journal.
struct Journal {
    path: PathBuf,
    verified: Vec<String>,
}

impl Journal {
    fn open(dir: &Path) -> Result<Journal, MigrateError> {
        let path = dir.join(JOURNAL);
        let text = match bounded_read::read_file_to_string(&path, bounded_read::MIGRATION_JOURNAL) {
            Ok(t) => t,
            Err(bounded_read::ReadError::Unreadable { kind: std::io::ErrorKind::NotFound }) => String::new(),
            Err(bounded_read::ReadError::Unreadable { kind }) => return Err(MigrateError::Journal(kind)),
            Err(e) => return Err(MigrateError::JournalInput(e)),
        };
        let mut verified = Vec::new();
        // A torn last line (crash mid-append) is ignored: it never reached
        // its newline, so its step is redone.
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            if let Some(id) = line.trim_end().strip_prefix("verified\t") {
                verified.push(id.to_string());
            }
            if let Some(id) = line.trim_end().strip_prefix("removed\t") {
                verified.retain(|v| v != id);
            }
        }
        Ok(Journal { path, verified })
    }

    fn append(&mut self, step: &str, id: &str) -> Result<(), MigrateError> {
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| MigrateError::Journal(e.kind()))?;
        f.write_all(format!("{step}\t{id}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| MigrateError::Journal(e.kind()))?;
        match step {
            "verified" => self.verified.push(id.to_string()),
            "removed" => self.verified.retain(|v| v != id),
            _ => {}
        }
        Ok(())
    }
}

/// Overwrites a legacy file with zeros, fsyncs, unlinks it and fsyncs its
/// directory. Best effort against forensic recovery (see module docs).
fn destroy(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path) {
        Ok(mut f) => {
            let len = f.metadata()?.len() as usize;
            f.write_all(&vec![0u8; len])?;
            f.sync_all()?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    std::fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })?.sync_all()?;
    }
    Ok(())
}

/// Progress on stderr: a bar on a terminal, a line per secret otherwise.
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
}

impl Progress {
    fn tick(&mut self, what: &str) {
        self.done += 1;
        if self.tty {
            let width = 30;
            let filled = width * self.done / self.total.max(1);
            eprint!("\r[{}{}] {}/{} {what:<40}", "#".repeat(filled), ".".repeat(width - filled), self.done, self.total);
            if self.done == self.total {
                eprintln!();
            }
        } else {
            eprintln!("migrate: {}/{} {what}", self.done, self.total);
        }
    }
}

/// Runs a migration (or, without `apply`, reports what it would do).
/// `hook` is called at every step (crash tests; it may never return).
pub fn run(vault: &mut Vault, plan: &Plan, mut hook: impl FnMut(Step)) -> Result<Report, MigrateError> {
    let dir = vault.dir().to_path_buf();
    let mut journal = Journal::open(&dir)?;
    if plan.apply {
        // Removals a crash interrupted: sealed and verified already; the
        // file may be half-overwritten, so it is not read again.
        for id in journal.verified.clone() {
            if let Some(path) = id.strip_prefix("file:") {
                destroy(Path::new(path)).map_err(|e| MigrateError::Remove { source: id.clone(), kind: e.kind() })?;
                journal.append("removed", &id)?;
            }
        }
    }
    let (candidates, unusable) = legacy::discover(&plan.paths, &plan.env);
    let unusable = unusable.into_iter().filter(|u| !journal.verified.contains(&u.source.id())).collect();
    let mut report = Report { items: Vec::new(), unusable, keyring: legacy::keyring_status() };
    let mut progress =
        Progress { total: candidates.len(), done: 0, tty: plan.apply && std::io::stderr().is_terminal() };
    let in_vault = vault.list()?;
    for c in candidates {
        let id = c.source.id();
        if !plan.apply {
            let outcome = if journal.verified.contains(&id) {
                match c.source {
                    Source::Env(_) => Outcome::SealedUnsetVariable,
                    Source::File(_) => Outcome::WouldMigrate,
                }
            } else if in_vault.contains(&c.name) {
                match same_in_vault(vault, &c, &plan.env)? {
                    true => Outcome::WouldMigrate,
                    false => Outcome::Conflict,
                }
            } else {
                Outcome::WouldMigrate
            };
            report.items.push((c, outcome));
            continue;
        }
        let outcome = migrate_one(vault, &c, &plan.env, &mut journal, &mut hook)?;
        progress.tick(&c.name);
        report.items.push((c, outcome));
    }
    Ok(report)
}

/// Whether the vault holds exactly this legacy secret's bytes under its name.
fn same_in_vault(vault: &mut Vault, c: &Candidate, env: &CapturedEnv) -> Result<bool, MigrateError> {
    let Ok((_, _, legacy)) = legacy::read(&c.source, env) else { return Ok(false) };
    match vault.get(&c.name) {
        Ok(s) => Ok(secmem::ct::ct_eq_bytes(s.bytes.as_slice(), legacy.as_slice())),
        Err(VaultError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn migrate_one(
    vault: &mut Vault,
    c: &Candidate,
    env: &CapturedEnv,
    journal: &mut Journal,
    hook: &mut impl FnMut(Step),
) -> Result<Outcome, MigrateError> {
    let id = c.source.id();
    let mut resumed = false;
    if !journal.verified.contains(&id) {
        // Read → seal (unless an interrupted run already did) → verify.
        let (kind, _, secret) =
            legacy::read(&c.source, env).map_err(|_| MigrateError::VerifyMismatch { name: c.name.clone() })?;
        hook(Step::Read);
        match vault.get(&c.name) {
            Ok(existing) if secmem::ct::ct_eq_bytes(existing.bytes.as_slice(), secret.as_slice()) => resumed = true,
            Ok(_) => return Ok(Outcome::Conflict),
            Err(VaultError::NotFound) => {
                vault.put(&c.name, kind, secret.as_slice())?;
                hook(Step::Sealed);
            }
            Err(e) => return Err(e.into()),
        }
        let back = vault.get(&c.name)?;
        if !secmem::ct::ct_eq_bytes(back.bytes.as_slice(), secret.as_slice()) {
            return Err(MigrateError::VerifyMismatch { name: c.name.clone() });
        }
        journal.append("verified", &id)?;
        hook(Step::Verified);
    } else {
        resumed = true;
    }
    match &c.source {
        Source::File(path) => {
            destroy(path).map_err(|e| MigrateError::Remove { source: id.clone(), kind: e.kind() })?;
            hook(Step::Overwritten);
            journal.append("removed", &id)?;
            hook(Step::Removed);
            Ok(if resumed { Outcome::Resumed } else { Outcome::Migrated })
        }
        Source::Env(_) => Ok(Outcome::SealedUnsetVariable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_read_up_to_its_limit_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Journal::open(dir.path()).unwrap().verified.is_empty(), "no journal yet: nothing verified");
        std::fs::write(dir.path().join(JOURNAL), "verified\tfile:/a\nverified\tfile:/b\nremoved\tfile:/a\n").unwrap();
        assert_eq!(Journal::open(dir.path()).unwrap().verified, ["file:/b"]);
        let f = std::fs::OpenOptions::new().write(true).open(dir.path().join(JOURNAL)).unwrap();
        f.set_len(bounded_read::MIGRATION_JOURNAL + 1).unwrap();
        let e = Journal::open(dir.path()).err().expect("a journal past its limit is refused");
        assert_eq!(e.code(), "KW_INPUT_TOO_LARGE");
        assert!(e.to_string().starts_with("KW_INPUT_TOO_LARGE: the migration journal is larger than"), "{e}");
    }
}
