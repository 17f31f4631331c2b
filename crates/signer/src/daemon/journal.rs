//! An append-only, signed, hash-chained file with group commit: what the
//! audit log and the spend ledger are written through (format:
//! `policy::journal`, docs/audit-log.md).
//!
//! Every append is durable (written and `fdatasync`ed) before
//! [`Journal::append`] returns, so the daemon never answers before the
//! record that justifies the answer is on disk. Concurrent appends share one
//! `fdatasync`: the first waiting thread becomes the leader, writes every
//! queued line and syncs once, and all threads whose lines that covered
//! return together. Each record is chained and signed with the journal key
//! inside the lock, in the order the closures ran, which is also the order
//! in the file.
//!
//! A crash can tear only the last line (a write that had not completed);
//! [`Journal::open`] cuts a torn tail off and reports it, so the file always
//! holds whole lines.
//!
//! **A failed write** (a full disk, a file-size limit, an I/O error) fails
//! closed: the appenders waiting on it get [`JournalFailed`] and refuse
//! whatever the record would have justified, and so does every append after
//! it. The lines are not dropped: the file is cut back to its last durable
//! length (no torn record stays behind) and they are written again, in
//! order, at the next append or [`Journal::retry`] once the disk takes them
//! (at most one attempt per [`RETRY_EVERY`]), so the daemon recovers by
//! itself when space is free again. A line that was refused may therefore
//! still land later: "not known durable" never means "did not happen".

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use policy::journal::{JournalError, Position, Rules, Stream};

use super::anchor::JournalKey;

/// How often a failed journal tries its write again.
pub const RETRY_EVERY: Duration = Duration::from_millis(200);

struct Queue<S> {
    state: S,
    /// The chain's tip, queued lines included.
    tip: Position,
    /// The last durable record, and the file length that ends it.
    durable: Position,
    durable_len: u64,
    /// Sealed lines not yet durable, and the tip they end at.
    pending: Vec<u8>,
    leader: bool,
    failed: bool,
    last_attempt: Option<Instant>,
}

pub struct Journal<S> {
    stream: Stream,
    key: Arc<JournalKey>,
    queue: Mutex<Queue<S>>,
    done: Condvar,
    file: Mutex<File>,
}

impl<S> std::fmt::Debug for Journal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("stream", &self.stream).finish_non_exhaustive()
    }
}

/// A journal's file could not be written; what the record would have
/// justified is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalFailed;

/// Why a journal could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Io(std::io::Error),
    /// The records do not verify, or fall short of the anchor.
    Invalid(JournalError),
}

impl OpenError {
    pub fn code(&self, stream: Stream) -> &'static str {
        match self {
            OpenError::Io(_) => match stream {
                Stream::Audit => "KW_AUDIT_OPEN_FAILED",
                Stream::Ledger => "KW_LEDGER_OPEN_FAILED",
            },
            OpenError::Invalid(e) => e.code(),
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// What [`Journal::open`] found.
#[derive(Debug)]
pub struct Opened<S> {
    pub journal: Journal<S>,
    /// Bytes of a torn last line that were cut off.
    pub torn_bytes: u64,
    /// Records written before the journals were anchored (no signature).
    pub unsigned: u64,
}

/// How the existing records are checked at open.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// The journals are anchored: they must extend `anchor`, and every
    /// record past it must carry a valid signature.
    Anchored { anchor: &'a Position },
    /// First anchored start: the chain is checked, records in the format
    /// before anchoring (unsigned) are taken as a prefix, signed ones must
    /// verify under the journal key, and the first anchor covers them all.
    Adopting,
}

/// Creates `dir` (0750) when it does not exist; an existing directory is
/// left exactly as it is.
fn create_dir_if_missing(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir)
}

use std::os::unix::fs::DirBuilderExt;

impl<S> Journal<S> {
    /// Opens (creating, 0600) `path` for appending, verifies its records
    /// under `trust`, and builds the in-memory state from their bodies
    /// (`init` gets each record's `rec` JSON, in order).
    pub fn open(
        path: &Path,
        stream: Stream,
        key: Arc<JournalKey>,
        trust: Trust<'_>,
        init: impl FnOnce(&[&str]) -> S,
    ) -> Result<Opened<S>, OpenError> {
        if let Some(dir) = path.parent() {
            create_dir_if_missing(dir).map_err(OpenError::Io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(OpenError::Io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(OpenError::Io)?;
        let whole = policy::journal::whole_lines_len(&bytes);
        let torn_bytes = (bytes.len() - whole) as u64;
        bytes.truncate(whole);
        let text = String::from_utf8(bytes).map_err(|_| {
            OpenError::Invalid(JournalError::Broken { stream, line: 1, why: "the journal is not UTF-8" })
        })?;
        let public = key.public();
        let rules = match trust {
            Trust::Anchored { anchor } => Rules {
                stream,
                key: Some(&public),
                anchor: Some((anchor.records, &anchor.head)),
                check_anchored_signatures: false,
                adopting: false,
            },
            Trust::Adopting => {
                Rules { stream, key: Some(&public), anchor: None, check_anchored_signatures: false, adopting: true }
            }
        };
        let mut bodies = Vec::new();
        let verified = policy::journal::verify(&text, rules, |_, rec| bodies.push(rec)).map_err(OpenError::Invalid)?;
        if torn_bytes > 0 {
            file.set_len(whole as u64).and_then(|()| file.sync_all()).map_err(OpenError::Io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(OpenError::Io)?;
        let state = init(&bodies);
        let tip = Position { records: verified.records, head: verified.head };
        let journal = Journal {
            stream,
            key,
            queue: Mutex::new(Queue {
                state,
                durable: tip.clone(),
                tip,
                durable_len: whole as u64,
                pending: Vec::new(),
                leader: false,
                failed: false,
                last_attempt: None,
            }),
            done: Condvar::new(),
            file: Mutex::new(file),
        };
        Ok(Opened { journal, torn_bytes, unsigned: verified.unsigned })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<S>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `line` on the state under the journal's lock (it returns the
    /// bodies of the records to append, each compact JSON followed by a
    /// newline) and returns once they are durable.
    pub fn append<R>(&self, line: impl FnOnce(&mut S) -> (Vec<u8>, R)) -> Result<R, JournalFailed> {
        let mut q = self.lock();
        if q.failed {
            q = self.recover(q)?;
        }
        let (bodies, out) = line(&mut q.state);
        if bodies.is_empty() {
            return Ok(out);
        }
        for body in bodies.split(|&b| b == b'\n').filter(|b| !b.is_empty()) {
            let body = std::str::from_utf8(body).unwrap_or("{}");
            let seq = q.tip.records + 1;
            let (sealed, hash) = policy::journal::seal(self.stream, seq, &q.tip.head, body, |m| self.key.sign(m));
            q.pending.extend_from_slice(sealed.as_bytes());
            q.tip = Position { records: seq, head: hash };
        }
        let mine = q.tip.records;
        self.until_durable(q, mine).map(|()| out)
    }

    /// Waits (as the leader if need be) until record `mine` is durable.
    fn until_durable<'a>(&'a self, mut q: std::sync::MutexGuard<'a, Queue<S>>, mine: u64) -> Result<(), JournalFailed> {
        loop {
            if q.failed {
                return Err(JournalFailed);
            }
            if q.durable.records >= mine {
                return Ok(());
            }
            if q.leader {
                q = self.done.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            q = self.flush(q);
        }
    }

    /// Returns once every record queued before the call is durable: what
    /// the in-memory state shows may still be in another thread's write.
    pub fn wait_durable(&self) -> Result<(), JournalFailed> {
        let mut q = self.lock();
        if q.failed {
            q = self.recover(q)?;
        }
        let mine = q.tip.records;
        self.until_durable(q, mine)
    }

    /// Writes every pending line as the leader and syncs once.
    fn flush<'a>(&'a self, mut q: std::sync::MutexGuard<'a, Queue<S>>) -> std::sync::MutexGuard<'a, Queue<S>> {
        q.leader = true;
        q.last_attempt = Some(Instant::now());
        let batch = std::mem::take(&mut q.pending);
        let upto = q.tip.clone();
        let start = q.durable_len;
        let was_failed = q.failed;
        drop(q);
        let written = {
            let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
            // After a failure the file may still end in a torn line: cut it
            // back to the last durable record before writing again.
            let cut = if was_failed { f.set_len(start).and_then(|()| f.seek(SeekFrom::End(0))) } else { Ok(0) };
            let r = cut.and_then(|_| f.write_all(&batch)).and_then(|()| f.sync_data());
            if r.is_err() {
                // Leave no torn record behind: shrinking needs no space.
                let _ = f.set_len(start).and_then(|()| f.sync_data());
            }
            r
        };
        let mut q = self.lock();
        q.leader = false;
        match written {
            Ok(()) => {
                q.durable = upto;
                q.durable_len = start + batch.len() as u64;
                q.failed = false;
            }
            Err(e) => {
                // Fail closed, keep the lines for the next attempt.
                let mut again = batch;
                again.extend_from_slice(&q.pending);
                q.pending = again;
                if !q.failed {
                    eprintln!(
                        "keywardd: KW_{}_WRITE_FAILED: {}; refusing until it can be written",
                        self.stream.name().to_uppercase(),
                        e.kind()
                    );
                }
                q.failed = true;
            }
        }
        self.done.notify_all();
        q
    }

    /// Tries the failed write again (rate-limited); `Err` while it still fails.
    fn recover<'a>(
        &'a self,
        mut q: std::sync::MutexGuard<'a, Queue<S>>,
    ) -> Result<std::sync::MutexGuard<'a, Queue<S>>, JournalFailed> {
        while q.leader {
            q = self.done.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        if !q.failed {
            return Ok(q);
        }
        if q.last_attempt.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
            return Err(JournalFailed);
        }
        let q = self.flush(q);
        if q.failed { Err(JournalFailed) } else { Ok(q) }
    }

    /// Tries a failed journal's write again; `true` when it is healthy.
    pub fn retry(&self) -> bool {
        let q = self.lock();
        if !q.failed {
            return true;
        }
        self.recover(q).is_ok()
    }

    /// Whether the journal is refusing appends after a failed write.
    pub fn failed(&self) -> bool {
        self.lock().failed
    }

    /// The last durable record: what an anchor may cover.
    pub fn durable(&self) -> Position {
        self.lock().durable.clone()
    }

    /// Reads the state under the lock.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock().state)
    }
}

/// Rewrites a ledger in the format before anchoring (one bare record per
/// line) as signed, chained records, atomically. Done once, when the
/// journals are first anchored. Returns the number of records converted
/// (0 when the file is already chained, empty or absent).
pub fn convert_legacy_ledger(path: &Path, key: &JournalKey) -> std::io::Result<u64> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let whole = policy::journal::whole_lines_len(&bytes);
    let text = std::str::from_utf8(&bytes[..whole])
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "ledger is not UTF-8"))?;
    let legacy = text.lines().next().is_some_and(|l| l.starts_with("{\"t\":"));
    if !legacy {
        return Ok(0);
    }
    let mut out = String::new();
    let mut prev = policy::journal::GENESIS.to_string();
    let mut n = 0u64;
    for line in text.lines() {
        n += 1;
        let (sealed, hash) = policy::journal::seal(Stream::Ledger, n, &prev, line, |m| key.sign(m));
        out.push_str(&sealed);
        prev = hash;
    }
    super::fsutil::write_atomic(path, out.as_bytes(), 0o600)?;
    Ok(n)
}
