//! Size-limited reads of user-supplied files and standard input.
//!
//! Every path or stream a keyward command reads on a user's say-so goes
//! through here with a named limit: at most `limit + 1` bytes are ever read
//! (one spare byte tells "exactly the limit" from "longer"), so `/dev/zero`,
//! a FIFO that never ends or a 1 GiB file costs at most the limit in memory
//! and is refused with [`ReadError::TooLarge`]. The size the file system
//! reports is never trusted: character devices and FIFOs report 0, and a
//! file can grow between `stat` and `read`.
//!
//! Errors carry stable codes ([`ReadError::code`]) and never a byte of what
//! was read. Secrets do not come through here: they are read straight into
//! locked memory by `secmem` (`SecretBytes::read_to_end`), whose limits are
//! the constants below where a file holds one.
//!
//! The crate is key-free and has no dependencies, so the client (`keyward`)
//! links it without crossing the trust boundary.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A pinned signer key (`keyward --pin`, `pin_file`): one
/// `keyward-signer-v1 <64 hex>` line, perhaps with comments.
pub const PIN_FILE: u64 = 4 * KIB;
/// The signer's configuration (`keywardd run|init --config`).
pub const CONFIG_FILE: u64 = MIB;
/// The policy file the configuration names (`daemon.policy_file`).
pub const POLICY_FILE: u64 = MIB;
/// An intent document (`keyward preview|submit|sign FILE`, or `-` for
/// stdin). It travels in one request record, whose payload is at most
/// 64 KiB (`ipc::record::MAX_PAYLOAD`, inside `ipc::frame::MAX_FRAME`)
/// with the request's own JSON around it; 48 KiB leaves room for that.
pub const INTENT_FILE: u64 = 48 * KIB;
/// A cardano-cli text envelope: KES signing and verification keys
/// (`keyward kes … --skey-file|--vkey-file`) and the legacy key files
/// `keywardd migrate --from` reads (a Sum6 signing key is about 1.3 KiB).
pub const KEY_ENVELOPE_FILE: u64 = 64 * KIB;
/// An Ed25519 seed file (`keywardd sign-offline --key-file`, `keyward
/// bundle … --key-file`): 64 hex digits and whitespace. A secret: read into
/// locked memory by the signer, with this bound.
pub const SEED_FILE: u64 = 4 * KIB;
/// A vault recovery key file (`keyward vault recover --recovery-key`). A
/// secret: read into locked memory by the signer, with this bound.
pub const RECOVERY_KEY_FILE: u64 = 4 * KIB;
/// Extra root certificates, PEM (`keyward x402 … --cacert`).
pub const CA_CERT_FILE: u64 = MIB;
/// An HTTP request body from a file (`keyward x402 fetch --data @FILE`).
pub const REQUEST_BODY_FILE: u64 = 8 * MIB;
/// A JSON document of the proof/bundle toolkit: a proof, a signature
/// bundle, an output list, a task spec (`keyward bundle …`,
/// `keywardd sign-offline --proof`).
pub const DOCUMENT_FILE: u64 = 16 * MIB;
/// One line of the audit log (`keyward audit verify|explain` stream the log
/// line by line).
pub const AUDIT_LINE: u64 = MIB;
/// The migration checkpoint journal (`VAULT/migration.journal`): one short
/// line per legacy secret verified or removed.
pub const MIGRATION_JOURNAL: u64 = 16 * MIB;

/// Why an input was not read. Public words only: never a byte of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The input holds more than `limit` bytes (`KW_INPUT_TOO_LARGE`).
    TooLarge { limit: u64 },
    /// Opening or reading failed (`KW_INPUT_UNREADABLE`).
    Unreadable { kind: io::ErrorKind },
    /// Text was expected and the bytes are not UTF-8 (`KW_INPUT_NOT_UTF8`).
    NotUtf8,
}

impl ReadError {
    /// The stable code: `KW_INPUT_TOO_LARGE`, `KW_INPUT_UNREADABLE` or
    /// `KW_INPUT_NOT_UTF8`.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::TooLarge { .. } => "KW_INPUT_TOO_LARGE",
            ReadError::Unreadable { .. } => "KW_INPUT_UNREADABLE",
            ReadError::NotUtf8 => "KW_INPUT_NOT_UTF8",
        }
    }
}

/// The reason in words, without the code (callers print `CODE: what: reason`).
impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TooLarge { limit } => write!(f, "larger than the {limit}-byte limit"),
            ReadError::Unreadable { kind } => write!(f, "cannot be read ({kind})"),
            ReadError::NotUtf8 => f.write_str("not UTF-8 text"),
        }
    }
}

impl std::error::Error for ReadError {}

fn unreadable(e: &io::Error) -> ReadError {
    ReadError::Unreadable { kind: e.kind() }
}

/// Reads `reader` to its end, at most `limit` bytes; more is
/// [`ReadError::TooLarge`], after reading at most `limit + 1` bytes.
pub fn read_from(reader: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    let cap = limit.saturating_add(1);
    let mut out = Vec::with_capacity(cap.min(64 * KIB) as usize);
    reader.take(cap).read_to_end(&mut out).map_err(|e| unreadable(&e))?;
    if out.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(out)
}

/// Opens `path` and reads it whole, at most `limit` bytes. Works the same
/// for regular files, devices and FIFOs: the reported size is not used.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| unreadable(&e))?;
    read_from(file, limit)
}

/// Reads standard input to its end, at most `limit` bytes.
pub fn read_stdin(limit: u64) -> Result<Vec<u8>, ReadError> {
    read_from(io::stdin().lock(), limit)
}

/// [`read_file`], or [`read_stdin`] when `path` is `-`.
pub fn read_file_or_stdin(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    if path == Path::new("-") { read_stdin(limit) } else { read_file(path, limit) }
}

/// [`read_file`] for a text file: UTF-8 or [`ReadError::NotUtf8`].
pub fn read_file_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_file(path, limit)?).map_err(|_| ReadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bounded-read-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("input");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// An endless reader that counts what it hands out.
    struct Endless<'a>(&'a mut u64);

    impl Read for Endless<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(b'x');
            *self.0 += buf.len() as u64;
            Ok(buf.len())
        }
    }

    #[test]
    fn exactly_the_limit_is_read_and_one_more_byte_is_refused() {
        let at = temp_file("at", &[b'a'; 100]);
        assert_eq!(read_file(&at, 100).unwrap(), vec![b'a'; 100]);
        let over = temp_file("over", &[b'a'; 101]);
        assert_eq!(read_file(&over, 100), Err(ReadError::TooLarge { limit: 100 }));
        assert_eq!(read_file(&over, 101).unwrap().len(), 101);
        let empty = temp_file("empty", b"");
        assert_eq!(read_file(&empty, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(read_file(&at, 0), Err(ReadError::TooLarge { limit: 0 }));
    }

    #[test]
    fn an_endless_stream_costs_at_most_one_byte_past_the_limit() {
        let mut handed_out = 0;
        assert_eq!(read_from(Endless(&mut handed_out), 4096), Err(ReadError::TooLarge { limit: 4096 }));
        // `take` asks for no more than limit + 1 bytes in total.
        assert!(handed_out <= 4097, "read {handed_out} bytes");
    }

    #[test]
    fn dev_zero_is_refused_quickly() {
        let t = Instant::now();
        for limit in [PIN_FILE, CONFIG_FILE, INTENT_FILE] {
            assert_eq!(read_file(Path::new("/dev/zero"), limit), Err(ReadError::TooLarge { limit }));
        }
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    }

    #[test]
    fn a_sparse_file_larger_than_the_limit_is_refused_without_reading_it_all() {
        let path = temp_file("sparse", b"");
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 30).unwrap();
        let t = Instant::now();
        assert_eq!(read_file(&path, MIB), Err(ReadError::TooLarge { limit: MIB }));
        assert!(t.elapsed() < Duration::from_secs(5));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn unreadable_inputs_have_their_own_code() {
        let e = read_file(Path::new("/nonexistent/bounded-read"), 10).unwrap_err();
        assert_eq!(e, ReadError::Unreadable { kind: io::ErrorKind::NotFound });
        assert_eq!(e.code(), "KW_INPUT_UNREADABLE");
        // A directory opens but does not read.
        let e = read_file(Path::new("/"), 10).unwrap_err();
        assert_eq!(e.code(), "KW_INPUT_UNREADABLE");
        let bad = temp_file("utf8", &[0xff, 0xfe]);
        assert_eq!(read_file_to_string(&bad, 10), Err(ReadError::NotUtf8));
        assert_eq!(ReadError::NotUtf8.code(), "KW_INPUT_NOT_UTF8");
        let good = temp_file("text", "policy_id = \"p\"\n".as_bytes());
        assert_eq!(read_file_to_string(&good, 100).unwrap(), "policy_id = \"p\"\n");
    }

    #[test]
    fn errors_name_the_limit_and_never_the_contents() {
        let path = temp_file("secret", b"hunter2 hunter2 hunter2");
        let e = read_file(&path, 8).unwrap_err();
        assert_eq!(e.code(), "KW_INPUT_TOO_LARGE");
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains('8'), "{shown}");
        }
        assert_eq!(e.to_string(), "larger than the 8-byte limit");
    }

    #[test]
    fn a_dash_is_stdin_only_for_read_file_or_stdin() {
        // `read_file` never treats "-" specially: it is a file name.
        let e = read_file(Path::new("-"), 10).unwrap_err();
        assert_eq!(e, ReadError::Unreadable { kind: io::ErrorKind::NotFound });
    }

    #[test]
    fn the_limits_are_the_documented_ones() {
        // README, "Input limits": a change here is a change there.
        assert_eq!((PIN_FILE, SEED_FILE, RECOVERY_KEY_FILE), (4096, 4096, 4096));
        assert_eq!((CONFIG_FILE, POLICY_FILE, CA_CERT_FILE, AUDIT_LINE), (MIB, MIB, MIB, MIB));
        assert_eq!((INTENT_FILE, KEY_ENVELOPE_FILE), (48 * KIB, 64 * KIB));
        assert_eq!((REQUEST_BODY_FILE, DOCUMENT_FILE, MIGRATION_JOURNAL), (8 * MIB, 16 * MIB, 16 * MIB));
    }
}
