//! The socket's directory (docs/ipc-protocol.md, "Socket directory").
//!
//! Whoever can write to the directory that holds the socket can replace the
//! socket, and with it the signer a caller talks to. So:
//!
//! * **missing**: keywardd creates it (missing ancestors too, mode 0755 less
//!   the umask) with mode 0750 and, if `socket_group` is set, that group.
//!   It made the directory, so it sets its mode and group, through a
//!   descriptor opened without following links and checked to be the
//!   directory it just made;
//! * **present**: keywardd never changes it (no chmod, no chgrp: the
//!   directory could be `/tmp` or `/run`), and refuses to start with
//!   `KW_SOCKET_DIR_UNSAFE` unless it is a real directory (not a symbolic
//!   link) owned by keywardd's effective uid and writable by neither its
//!   group nor others (the sticky bit does not help: the owner of a
//!   shared sticky directory can still swap the socket).
//!
//! Only the directory itself is checked, not its ancestors.

use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use rustix::fs::{FileType, Gid, Mode, OFlags};
use rustix::io::Errno;

/// What [`prepare`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// keywardd created the directory (0750, `socket_group`).
    Created,
    /// A safe directory was there and is used as it is.
    Existing,
}

/// The refusal code for a directory keywardd will not use.
pub const UNSAFE: &str = "KW_SOCKET_DIR_UNSAFE";
const FAILED: &str = "KW_SOCKET_FAILED";

fn open_dir(dir: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
}

/// Makes `dir` ready to hold the socket, or says why it will not be used:
/// `(code, message)`.
pub fn prepare(dir: &Path, group: Option<u32>) -> Result<Prepared, (&'static str, String)> {
    let failed = |what: &str, e: &dyn std::fmt::Display| (FAILED, format!("{what} {}: {e}", dir.display()));
    match std::fs::symlink_metadata(dir) {
        Ok(_) => return existing(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("cannot inspect socket directory", &e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| failed("cannot create the parents of socket directory", &e))?;
    }
    match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o750)) {
        Ok(()) => {}
        // Made by someone else meanwhile: judged like any existing one.
        Err(Errno::EXIST) => return existing(dir),
        Err(e) => return Err(failed("cannot create socket directory", &e)),
    }
    let fd = open_dir(dir).map_err(|e| unsafe_dir(dir, &format!("replaced while being created ({e})")))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| failed("cannot inspect socket directory", &e))?;
    let euid = rustix::process::geteuid().as_raw();
    if st.st_uid != euid {
        return Err(unsafe_dir(dir, &format!("replaced while being created (now owned by uid {})", st.st_uid)));
    }
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o750)).map_err(|e| failed("cannot chmod socket directory", &e))?;
    if let Some(gid) = group {
        rustix::fs::fchown(&fd, None, Some(Gid::from_raw(gid)))
            .map_err(|e| failed("cannot chgrp socket directory", &e))?;
    }
    Ok(Prepared::Created)
}

fn unsafe_dir(dir: &Path, why: &str) -> (&'static str, String) {
    let euid = rustix::process::geteuid().as_raw();
    (
        UNSAFE,
        format!(
            "socket directory {} {why}: another user could replace the socket. keywardd uses an existing socket \
             directory only if it is a real directory owned by its own uid ({euid}) and writable by no one else, \
             and never changes it; fix or remove it (keywardd then creates it 0750)",
            dir.display()
        ),
    )
}

/// Checks a directory that was already there; changes nothing.
fn existing(dir: &Path) -> Result<Prepared, (&'static str, String)> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| (FAILED, format!("{}: {e}", dir.display())))?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(dir, "is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir(dir, "is not a directory"));
    }
    // Judged through a descriptor, so a swap after the look above is judged too.
    let fd = match open_dir(dir) {
        Ok(fd) => fd,
        Err(Errno::LOOP | Errno::NOTDIR) => return Err(unsafe_dir(dir, "is not a directory")),
        Err(e) => return Err((FAILED, format!("{}: {e}", dir.display()))),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| (FAILED, format!("{}: {e}", dir.display())))?;
    let euid = rustix::process::geteuid().as_raw();
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(unsafe_dir(dir, "is not a directory"));
    }
    if st.st_uid != euid {
        return Err(unsafe_dir(dir, &format!("is owned by uid {}, not by keywardd's uid {euid}", st.st_uid)));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(dir, &format!("is writable by its group or by others (mode {mode:04o})")));
    }
    Ok(Prepared::Existing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_missing_directory_is_created_0750_with_its_parents() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b/run");
        assert_eq!(prepare(&dir, None), Ok(Prepared::Created));
        assert_eq!(mode(&dir), 0o750);
        assert!(t.path().join("a/b").is_dir());
        // Run again: now it exists, is ours and safe, and stays as it is.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(prepare(&dir, None), Ok(Prepared::Existing));
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn writable_symlinked_or_non_directories_are_refused_and_left_alone() {
        let t = tempfile::tempdir().unwrap();
        for m in [0o777 | 0o1000, 0o770, 0o702] {
            let dir = t.path().join(format!("m{m:o}"));
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
            let (code, msg) = prepare(&dir, Some(1)).unwrap_err();
            assert_eq!(code, UNSAFE, "{msg}");
            assert!(msg.contains("writable"), "{msg}");
            assert_eq!(mode(&dir), m, "the mode was changed");
        }
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o750)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (code, msg) = prepare(&link, None).unwrap_err();
        assert_eq!(code, UNSAFE);
        assert!(msg.contains("symbolic link"), "{msg}");
        let file = t.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(prepare(&file, None).unwrap_err().0, UNSAFE);
    }
}
