//! Paths resolved by the kernel beneath a directory we hold open.
//!
//! Every file the verifier reads and every file the restore runner writes is
//! reached from a directory file descriptor with `openat2(2)` and
//! `RESOLVE_BENEATH` (no `..` or absolute escape, checked by the kernel at
//! every step, not by us beforehand) and, where symlinks must not be
//! followed at all, `RESOLVE_NO_SYMLINKS`. Holding the directory open pins
//! it: renaming its path afterwards does not redirect us.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

/// Opens a directory the caller named (its own path may involve symlinks;
/// everything beneath it is then resolved without them).
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}

/// Resolution for reading outputs to verify: beneath the root, symlinks that
/// stay beneath it allowed (the toolkit follows them too), magic links never.
pub(crate) const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);
/// Resolution for anything restore touches: beneath, and no symlink at all.
pub(crate) const STRICT: ResolveFlags =
    ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS).union(ResolveFlags::NO_MAGICLINKS);

/// Opens `rel` beneath `dir` for reading. `O_NONBLOCK` so that a FIFO
/// planted in place of a file cannot stall us; the caller checks the type.
/// Whether a final symlink is followed is `how`'s decision (`STRICT`
/// follows none).
pub(crate) fn open_beneath(dir: impl AsFd, rel: &str, how: ResolveFlags) -> Result<File, Errno> {
    let fd = rustix::fs::openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        how,
    )?;
    Ok(File::from(fd))
}

/// `FileType` of `rel` beneath `dir` without following a final symlink.
pub(crate) fn lstat_type(dir: &OwnedFd, rel: &str) -> Result<FileType, Errno> {
    rustix::fs::statat(dir, rel, AtFlags::SYMLINK_NOFOLLOW).map(|st| FileType::from_raw_mode(st.st_mode))
}

/// Whether `fd` is a regular file, and its size.
pub(crate) fn regular_size(f: &File) -> Option<u64> {
    let st = rustix::fs::fstat(f).ok()?;
    (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile).then_some(st.st_size as u64)
}

/// Reads a whole regular file of at most `cap` bytes.
pub(crate) fn read_capped(mut f: File, cap: u64) -> Result<Vec<u8>, &'static str> {
    let size = regular_size(&f).ok_or("not a regular file")?;
    if size > cap {
        return Err("too large");
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.by_ref().take(cap + 1).read_to_end(&mut buf).map_err(|_| "unreadable")?;
    if buf.len() as u64 > cap {
        return Err("too large");
    }
    Ok(buf)
}

/// `sha256:` + lowercase hex of everything `f` yields, and the byte count.
pub(crate) fn sha256_prefixed(f: &mut File) -> std::io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((format!("sha256:{}", crate::hex::encode(&h.finalize())), total))
}
