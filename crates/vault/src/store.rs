//! Durable, atomic storage of sealed blobs in one directory.
//!
//! This layer stores bytes (sealed envelopes, wrapped DEKs, sealed KEKs); it
//! never sees plaintext. What it guarantees:
//!
//! * **Nothing half-written.** A write goes to a fresh temporary file in the
//!   same directory (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600), is fsynced,
//!   renamed over the target and the directory is fsynced. A crash leaves the
//!   old blob or the new one, plus at most a `.tmp.` file that the next open
//!   removes.
//! * **Nobody else's files.** The directory must be a real directory (not a
//!   symlink) owned by this user with no group or other permissions (0700);
//!   each blob must be a regular file owned by this user with mode 0600.
//!   Blobs are opened with `O_NOFOLLOW`, so a planted symlink is refused, not
//!   followed.
//! * **Hostile names refused.** Names follow the envelope's rule
//!   (`[A-Za-z0-9._-]`, no leading dot), so no path can leave the directory.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::VaultError;
use crate::envelope::validate_name;

/// Largest blob the store reads (a 4 MiB secret plus its header).
pub const MAX_BLOB: u64 = 4 * 1024 * 1024 + 4096;
const TEMP_PREFIX: &str = ".tmp.";
/// Prefix of a staged blob: written and fsynced, waiting for the vault's
/// commit point (see docs/envelope-format.md, "Transactions").
const STAGED_PREFIX: &str = ".staged.";

/// A directory of blobs.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    uid: u32,
}

fn io(e: std::io::Error) -> VaultError {
    VaultError::Io { kind: e.kind() }
}

impl BlobStore {
    /// Opens (creating with mode 0700 if missing) the store directory, checks
    /// its owner and mode, and removes temporary files left by a crash.
    pub fn open(dir: &Path) -> Result<Self, VaultError> {
        match DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let meta = fs::symlink_metadata(dir).map_err(io)?;
        let uid = secmem::hardening::effective_uid();
        if !meta.file_type().is_dir() {
            return Err(VaultError::InsecurePath);
        }
        if meta.uid() != uid || meta.mode() & 0o077 != 0 {
            return Err(VaultError::InsecurePermissions);
        }
        let store = BlobStore { dir: dir.to_path_buf(), uid };
        store.remove_stale_temps()?;
        Ok(store)
    }

    fn path(&self, name: &str) -> Result<PathBuf, VaultError> {
        validate_name(name)?;
        Ok(self.dir.join(name))
    }

    fn sync_dir(&self) -> Result<(), VaultError> {
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Atomically creates or replaces `name` with `bytes`.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), VaultError> {
        let target = self.path(name)?;
        self.write_to(name, &target, bytes)
    }

    /// Durably writes `bytes` as the staged copy of `name`, invisible to
    /// [`BlobStore::read`] and [`BlobStore::list`] until promoted.
    pub fn write_staged(&self, name: &str, bytes: &[u8]) -> Result<(), VaultError> {
        validate_name(name)?;
        self.write_to(name, &self.dir.join(format!("{STAGED_PREFIX}{name}")), bytes)
    }

    /// Reads the staged copy of `name`.
    pub fn read_staged(&self, name: &str) -> Result<Vec<u8>, VaultError> {
        validate_name(name)?;
        self.read_path(&self.dir.join(format!("{STAGED_PREFIX}{name}")))
    }

    /// Atomically replaces `name` with its staged copy.
    pub fn promote_staged(&self, name: &str) -> Result<(), VaultError> {
        let target = self.path(name)?;
        fs::rename(self.dir.join(format!("{STAGED_PREFIX}{name}")), target).map_err(|e| match e.kind() {
            ErrorKind::NotFound => VaultError::NotFound,
            _ => io(e),
        })?;
        self.sync_dir()
    }

    /// Removes the staged copy of `name`, if any.
    pub fn discard_staged(&self, name: &str) -> Result<(), VaultError> {
        validate_name(name)?;
        match fs::remove_file(self.dir.join(format!("{STAGED_PREFIX}{name}"))) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// The names that have a staged copy.
    pub fn list_staged(&self) -> Result<Vec<String>, VaultError> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix(STAGED_PREFIX).map(str::to_string))
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_to(&self, name: &str, target: &Path, bytes: &[u8]) -> Result<(), VaultError> {
        let mut rand = [0u8; 8];
        getrandom::fill(&mut rand).map_err(|_| VaultError::Random)?;
        let suffix: String = rand.iter().map(|b| format!("{b:02x}")).collect();
        let temp = self.dir.join(format!("{TEMP_PREFIX}{name}.{suffix}"));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&temp, target)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(io(e));
        }
        self.sync_dir()
    }

    /// Reads `name`, refusing symlinks, foreign owners and loose modes.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, VaultError> {
        let path = self.path(name)?;
        self.read_path(&path)
    }

    fn read_path(&self, path: &Path) -> Result<Vec<u8>, VaultError> {
        let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(VaultError::NotFound),
            // O_NOFOLLOW on a symlink fails with ELOOP.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(VaultError::InsecurePath),
            Err(e) => return Err(io(e)),
        };
        let meta = f.metadata().map_err(io)?;
        if !meta.file_type().is_file() {
            return Err(VaultError::InsecurePath);
        }
        if meta.uid() != self.uid || meta.permissions().mode() & 0o077 != 0 {
            return Err(VaultError::InsecurePermissions);
        }
        if meta.len() > MAX_BLOB {
            return Err(VaultError::TooLarge { max: MAX_BLOB as usize });
        }
        let mut out = Vec::with_capacity(meta.len() as usize);
        Read::by_ref(&mut f).take(MAX_BLOB + 1).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    }

    /// Removes `name` durably.
    pub fn delete(&self, name: &str) -> Result<(), VaultError> {
        match fs::remove_file(self.path(name)?) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(VaultError::NotFound),
            Err(e) => Err(io(e)),
        }
    }

    /// The names of the stored blobs, sorted (temporary files excluded).
    pub fn list(&self) -> Result<Vec<String>, VaultError> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    fn remove_stale_temps(&self) -> Result<(), VaultError> {
        let mut removed = false;
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX)) {
                fs::remove_file(entry.path()).map_err(io)?;
                removed = true;
            }
        }
        if removed { self.sync_dir() } else { Ok(()) }
    }
}
