//! Legacy secrets: where keys lived before keyward, and how to read them.
//!
//! Supported sources, each read straight into locked memory:
//!
//! * cardano-cli signing-key text envelopes (`*.skey`): Ed25519 seeds, Sum6
//!   KES keys, other types kept as their CBOR payload;
//! * Solana keypair files (a JSON array of 64 numbers): the seed half, after
//!   checking that the public half matches it;
//! * plaintext key files (`*.key`, `*.seed`): 32 raw bytes or 64 hex digits;
//! * named environment variables (captured before the process scrubs its
//!   environment; see `main.rs`);
//! * OS keyrings: reported, not read (see [`keyring_status`]).
//!
//! Nothing here writes anything; [`crate::migrate`] decides what to do.

use std::path::{Path, PathBuf};

use secmem::MLockedBytes;
use vault::envelope::SecretKind;

/// Where a legacy secret lives. Public (paths and variable names only).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    File(PathBuf),
    Env(String),
}

impl Source {
    /// A stable, public identifier for journals and reports.
    pub fn id(&self) -> String {
        match self {
            Source::File(p) => format!("file:{}", p.display()),
            Source::Env(n) => format!("env:{n}"),
        }
    }
}

/// A legacy secret found by discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub source: Source,
    /// The vault name it will have.
    pub name: String,
    pub kind: SecretKind,
    /// What was recognised (for reports), e.g. `cardano PaymentSigningKeyShelley_ed25519`.
    pub format: String,
}

/// A file that looked like a key but could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub source: Source,
    pub why: String,
}

/// Environment values captured at start, in locked memory.
#[derive(Debug, Default)]
pub struct CapturedEnv {
    pub vars: Vec<(String, MLockedBytes)>,
}

impl CapturedEnv {
    /// Copies the named variables into locked memory. Called before the
    /// environment scrub, which then wipes the originals.
    pub fn capture(names: &[String]) -> Result<Self, secmem::SecMemError> {
        let mut vars = Vec::new();
        for name in names {
            if let Some(v) = std::env::var_os(name) {
                use std::os::unix::ffi::OsStrExt;
                let bytes = v.as_bytes();
                let mut locked = MLockedBytes::new(bytes.len())?;
                locked.as_mut_slice().copy_from_slice(bytes);
                vars.push((name.clone(), locked));
            }
        }
        Ok(CapturedEnv { vars })
    }

    fn get(&self, name: &str) -> Option<&MLockedBytes> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Largest legacy file considered (a Sum6 envelope is about 1.3 KiB).
const MAX_LEGACY_FILE: u64 = bounded_read::KEY_ENVELOPE_FILE;

fn sanitise(stem: &str) -> String {
    stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(100).collect()
}

fn read_locked(path: &Path) -> Result<MLockedBytes, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot open ({})", e.kind()))?;
    // Only regular files reach here (`discover`), and `read_exact` never
    // reads past the size checked: at most the limit is ever read.
    let len = f.metadata().map_err(|e| format!("cannot stat ({})", e.kind()))?.len();
    if len > MAX_LEGACY_FILE {
        return Err(format!("KW_INPUT_TOO_LARGE: larger than the {MAX_LEGACY_FILE}-byte limit of a key file"));
    }
    let mut buf = MLockedBytes::new(len as usize).map_err(|e| e.code().to_string())?;
    f.read_exact(buf.as_mut_slice()).map_err(|e| format!("cannot read ({})", e.kind()))?;
    Ok(buf)
}

/// Reads and converts a legacy source into (kind, secret bytes).
pub fn read(source: &Source, env: &CapturedEnv) -> Result<(SecretKind, String, MLockedBytes), String> {
    match source {
        Source::Env(name) => {
            let v = env.get(name).ok_or("the variable is not set")?;
            if let Some(seed) = hex32(v.as_slice()) {
                return Ok((SecretKind::Ed25519Seed, "environment variable (hex seed)".into(), seed));
            }
            let mut copy = MLockedBytes::new(v.as_slice().len()).map_err(|e| e.code().to_string())?;
            copy.as_mut_slice().copy_from_slice(v.as_slice());
            Ok((SecretKind::Opaque, "environment variable".into(), copy))
        }
        Source::File(path) => {
            let text = read_locked(path)?;
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let t = text.as_slice();
            // Binary key files first: 32 random bytes may well start with
            // `{` or `[`, so content sniffing must not come before them.
            if matches!(ext, "key" | "seed") {
                if t.len() == 32 {
                    let mut seed = MLockedBytes::new(32).map_err(|e| e.code().to_string())?;
                    seed.as_mut_slice().copy_from_slice(t);
                    return Ok((SecretKind::Ed25519Seed, "raw 32-byte key file".into(), seed));
                }
                if let Some(seed) = hex32(t) {
                    return Ok((SecretKind::Ed25519Seed, "hex key file".into(), seed));
                }
                return Err("not a recognised key format (want 32 raw bytes or 64 hex digits)".into());
            }
            let first = t.iter().find(|b| !b.is_ascii_whitespace()).copied();
            if ext == "skey" || first == Some(b'{') {
                let (ty, kind, payload) =
                    crypto::envelope::read_signing_key_envelope(&text).map_err(|e| e.code().to_string())?;
                let kind = match kind {
                    crypto::envelope::LegacyKeyKind::Ed25519Seed => SecretKind::Ed25519Seed,
                    crypto::envelope::LegacyKeyKind::KesSum6 => SecretKind::KesSum6SigningKey,
                    crypto::envelope::LegacyKeyKind::Other => SecretKind::Opaque,
                };
                return Ok((kind, format!("cardano {ty}"), payload));
            }
            if first == Some(b'[') {
                return solana_keypair(t).map(|seed| (SecretKind::Ed25519Seed, "solana keypair".into(), seed));
            }
            Err("not a recognised key format".into())
        }
    }
}

/// 64 hex digits (surrounding whitespace allowed) → 32 bytes, locked.
fn hex32(t: &[u8]) -> Option<MLockedBytes> {
    let start = t.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = t.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    let h = &t[start..end];
    if h.len() != 64 || !h.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    crypto::hex::decode_locked(h).ok()
}

/// A Solana keypair file: `[b0, …, b63]`, seed then public key. The public
/// half must be the seed's own, or the file is refused.
fn solana_keypair(t: &[u8]) -> Result<MLockedBytes, String> {
    let bad = || "not a Solana keypair (64 numbers 0..=255)".to_string();
    let mut out = MLockedBytes::new(64).map_err(|e| e.code().to_string())?;
    let mut n = 0usize;
    let mut i = t.iter().position(|b| *b == b'[').ok_or_else(bad)? + 1;
    loop {
        while i < t.len() && (t[i].is_ascii_whitespace() || t[i] == b',') {
            i += 1;
        }
        if i >= t.len() {
            return Err(bad());
        }
        if t[i] == b']' {
            break;
        }
        let mut v: u32 = 0;
        let start = i;
        while i < t.len() && t[i].is_ascii_digit() && i - start < 4 {
            v = v * 10 + u32::from(t[i] - b'0');
            i += 1;
        }
        if i == start || v > 255 || n >= 64 {
            return Err(bad());
        }
        out.as_mut_slice()[n] = v as u8;
        n += 1;
    }
    if n != 64 || !t[i + 1..].iter().all(u8::is_ascii_whitespace) {
        return Err(bad());
    }
    let mut seed = secmem::MLockedSeed::<32>::new().map_err(|e| e.code().to_string())?;
    seed.as_mut_bytes().copy_from_slice(&out.as_slice()[..32]);
    let key = crypto::ed25519::Ed25519SigningKey::gen_key_m(&seed).map_err(|e| e.code().to_string())?;
    if key.derive_verification_key_m().0[..] != out.as_slice()[32..] {
        return Err("Solana keypair whose public half does not match its seed".into());
    }
    let mut s = MLockedBytes::new(32).map_err(|e| e.code().to_string())?;
    s.as_mut_slice().copy_from_slice(&out.as_slice()[..32]);
    Ok(s)
}

/// Finds legacy secrets under `paths` (files, or directories scanned one
/// level deep) and in the captured environment variables.
pub fn discover(paths: &[PathBuf], env: &CapturedEnv) -> (Vec<Candidate>, Vec<Unusable>) {
    let mut files = Vec::new();
    for p in paths {
        // Absolute paths: the journal must name the same file from any cwd.
        let p = &std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        let path = e.path();
                        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                        let is_file = e.file_type().is_ok_and(|t| t.is_file());
                        if is_file && matches!(ext, "skey" | "json" | "key" | "seed") {
                            files.push(path);
                        }
                    }
                }
            }
            Ok(m) if m.is_file() => files.push(p.clone()),
            _ => {}
        }
    }
    files.sort();
    files.dedup();
    let mut sources: Vec<Source> = files.into_iter().map(Source::File).collect();
    sources.extend(env.vars.iter().map(|(n, _)| Source::Env(n.clone())));

    let (mut found, mut unusable) = (Vec::new(), Vec::new());
    for source in sources {
        match read(&source, env) {
            Ok((kind, format, _secret)) => {
                let name = match &source {
                    Source::File(p) => {
                        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("key");
                        let prefix = if format.starts_with("cardano") {
                            "cardano"
                        } else if format.starts_with("solana") {
                            "solana"
                        } else {
                            "file"
                        };
                        format!("{prefix}.{}", sanitise(stem))
                    }
                    Source::Env(n) => format!("env.{}", sanitise(n)),
                };
                found.push(Candidate { source, name, kind, format });
            }
            // A JSON file that is not a key is not worth a report line.
            Err(_) if matches!(&source, Source::File(p) if p.extension().is_some_and(|e| e == "json")) => {}
            Err(why) => unusable.push(Unusable { source, why }),
        }
    }
    (found, unusable)
}

/// OS keyrings (Secret Service over D-Bus) are not read by this version;
/// the report says whether one is present so the operator can export its
/// entries to files first.
pub fn keyring_status() -> &'static str {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        "present (Secret Service); export its keyward entries to files and migrate those"
    } else {
        "not present (no session bus)"
    }
}
