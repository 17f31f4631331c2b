//! An append-only file with group commit: what the audit log and the spend
//! ledger are written through.
//!
//! Every append is durable (written and `fdatasync`ed) before
//! [`Journal::append`] returns, so the daemon never answers before the
//! record that justifies the answer is on disk. Concurrent appends share one
//! `fdatasync`: the first waiting thread becomes the leader, writes every
//! queued line and syncs once, and all threads whose lines that covered
//! return together. Ordering is the order in which `append`'s closure ran,
//! which is also the order in the file, so a hash chain can be built inside
//! the closure.
//!
//! A crash can tear only the last line (a write that had not completed);
//! [`Journal::open`] cuts a torn tail off and reports it, so the file always
//! holds whole lines.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Condvar, Mutex};

struct Queue<S> {
    state: S,
    pending: Vec<u8>,
    /// Lines queued so far, and lines known durable.
    queued: u64,
    durable: u64,
    leader: bool,
    failed: bool,
}

pub struct Journal<S> {
    queue: Mutex<Queue<S>>,
    done: Condvar,
    file: Mutex<File>,
}

impl<S> std::fmt::Debug for Journal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

/// A journal's file could not be written; the daemon stops answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalFailed;

/// What [`Journal::open`] found.
#[derive(Debug)]
pub struct Opened<S> {
    pub journal: Journal<S>,
    /// The whole lines already in the file.
    pub existing: String,
    /// Bytes of a torn last line that were cut off.
    pub torn_bytes: u64,
}

impl<S> Journal<S> {
    /// Opens (creating, 0600) `path` for appending; `init` builds the
    /// in-memory state from the existing lines.
    pub fn open(path: &Path, init: impl FnOnce(&str) -> S) -> std::io::Result<Opened<S>> {
        if let Some(dir) = path.parent() {
            super::fsutil::ensure_dir(dir, 0o750)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let whole = policy::audit::whole_lines_len(&bytes);
        let torn_bytes = (bytes.len() - whole) as u64;
        if torn_bytes > 0 {
            file.set_len(whole as u64)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        bytes.truncate(whole);
        let existing = String::from_utf8(bytes)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "journal is not UTF-8"))?;
        let state = init(&existing);
        let journal = Journal {
            queue: Mutex::new(Queue {
                state,
                pending: Vec::new(),
                queued: 0,
                durable: 0,
                leader: false,
                failed: false,
            }),
            done: Condvar::new(),
            file: Mutex::new(file),
        };
        Ok(Opened { journal, existing, torn_bytes })
    }

    /// Runs `line` on the state under the journal's lock (it returns the
    /// bytes to append, newline included) and returns once they are durable.
    pub fn append<R>(&self, line: impl FnOnce(&mut S) -> (Vec<u8>, R)) -> Result<R, JournalFailed> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.failed {
            return Err(JournalFailed);
        }
        let (bytes, out) = line(&mut q.state);
        if bytes.is_empty() {
            return Ok(out);
        }
        q.pending.extend_from_slice(&bytes);
        q.queued += 1;
        let mine = q.queued;
        loop {
            if q.failed {
                return Err(JournalFailed);
            }
            if q.durable >= mine {
                return Ok(out);
            }
            if q.leader {
                q = self.done.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            q.leader = true;
            let batch = std::mem::take(&mut q.pending);
            let upto = q.queued;
            drop(q);
            let ok = {
                let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
                f.write_all(&batch).and_then(|()| f.sync_data()).is_ok()
            };
            q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.leader = false;
            if ok {
                q.durable = upto;
            } else {
                // A journal that cannot be written must stop the answers it
                // would justify: fail closed from here on.
                q.failed = true;
            }
            self.done.notify_all();
        }
    }

    /// Reads the state under the lock.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.queue.lock().unwrap_or_else(|p| p.into_inner()).state)
    }
}
