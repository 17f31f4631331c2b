//! Argument parsing and the commands.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use crypto::kes::{self, KesAlgorithm, KesSignature, KesVerificationKey};
use crypto::{CryptoError, envelope, hex};
use secmem::{MLockedBytes, MLockedSeed, SecretBytes};

const EXIT_INVALID: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_NO_LOCKED_MEMORY: u8 = 3;
/// Longest accepted stdin seed input (64 hex digits plus whitespace).
const MAX_SEED_INPUT: usize = 256;
/// Longest accepted key envelope file (signing or verification key).
const MAX_ENVELOPE: u64 = bounded_read::KEY_ENVELOPE_FILE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scheme {
    Single,
    CompactSingle,
    Sum0,
    Sum1,
    Sum2,
    Sum3,
    Sum4,
    Sum5,
    Sum6,
    Sum7,
    CompactSum0,
    CompactSum1,
    CompactSum2,
    CompactSum3,
    CompactSum4,
    CompactSum5,
    CompactSum6,
    CompactSum7,
}

/// Calls `$f::<K>($args)` with `K` the KES type of `$scheme`.
macro_rules! dispatch {
    ($scheme:expr, $f:ident($($arg:expr),*)) => {
        match $scheme {
            Scheme::Single | Scheme::Sum0 => $f::<kes::Sum0>($($arg),*),
            Scheme::Sum1 => $f::<kes::Sum1>($($arg),*),
            Scheme::Sum2 => $f::<kes::Sum2>($($arg),*),
            Scheme::Sum3 => $f::<kes::Sum3>($($arg),*),
            Scheme::Sum4 => $f::<kes::Sum4>($($arg),*),
            Scheme::Sum5 => $f::<kes::Sum5>($($arg),*),
            Scheme::Sum6 => $f::<kes::Sum6>($($arg),*),
            Scheme::Sum7 => $f::<kes::Sum7>($($arg),*),
            Scheme::CompactSingle | Scheme::CompactSum0 => $f::<kes::CompactSum0>($($arg),*),
            Scheme::CompactSum1 => $f::<kes::CompactSum1>($($arg),*),
            Scheme::CompactSum2 => $f::<kes::CompactSum2>($($arg),*),
            Scheme::CompactSum3 => $f::<kes::CompactSum3>($($arg),*),
            Scheme::CompactSum4 => $f::<kes::CompactSum4>($($arg),*),
            Scheme::CompactSum5 => $f::<kes::CompactSum5>($($arg),*),
            Scheme::CompactSum6 => $f::<kes::CompactSum6>($($arg),*),
            Scheme::CompactSum7 => $f::<kes::CompactSum7>($($arg),*),
        }
    };
}

#[derive(Debug, Parser)]
#[command(name = "keyward-kes", version, about = "Cardano KES operator commands (seeds as hex on stdin)")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the verification key (hex): of the key generated from the seed on
    /// stdin, or of a Sum6 signing-key envelope.
    Vk {
        #[arg(long, required_unless_present = "skey_file")]
        scheme: Option<Scheme>,
        /// A cardano-cli `KesSigningKey_ed25519_kes_2^6` envelope (instead of stdin).
        #[arg(long, conflicts_with = "scheme")]
        skey_file: Option<PathBuf>,
    },
    /// Sign at a period: generate from the seed on stdin (or load a Sum6
    /// envelope at `--key-period`), evolve to `--period`, sign, print hex.
    Sign {
        #[arg(long, required_unless_present = "skey_file")]
        scheme: Option<Scheme>,
        #[arg(long, conflicts_with = "scheme", requires = "key_period")]
        skey_file: Option<PathBuf>,
        /// The period the envelope's key is at.
        #[arg(long)]
        key_period: Option<u32>,
        #[arg(long)]
        period: u32,
        #[arg(long)]
        message_hex: String,
    },
    /// Verify a signature. Exit 0 valid, 1 invalid, 2 bad input.
    Verify {
        #[arg(long)]
        scheme: Scheme,
        /// Verification key as hex (or use --vkey-file).
        #[arg(long, required_unless_present = "vkey_file")]
        vk: Option<String>,
        /// A cardano-cli `KesVerificationKey_ed25519_kes_2^6` envelope.
        #[arg(long, conflicts_with = "vk")]
        vkey_file: Option<PathBuf>,
        #[arg(long)]
        period: u32,
        #[arg(long)]
        message_hex: String,
        #[arg(long)]
        signature_hex: String,
    },
    /// Generate a Sum6 key from the seed on stdin and write cardano-cli
    /// envelopes. Never overwrites an existing file; the signing key is 0600.
    Keygen {
        #[arg(long)]
        out_skey: PathBuf,
        #[arg(long)]
        out_vkey: PathBuf,
    },
}

/// A failure with its exit status.
struct Failure {
    exit: u8,
    message: String,
}

impl From<CryptoError> for Failure {
    fn from(e: CryptoError) -> Self {
        let exit = match e {
            CryptoError::SecMem(ref s)
                if matches!(s.code(), "SECMEM_LOCK_LIMIT" | "SECMEM_LOCK_DENIED" | "SECMEM_MAP_FAILED") =>
            {
                EXIT_NO_LOCKED_MEMORY
            }
            CryptoError::Verify(_) => EXIT_INVALID,
            _ => EXIT_BAD_INPUT,
        };
        Failure { exit, message: e.to_string() }
    }
}

impl From<secmem::SecMemError> for Failure {
    fn from(e: secmem::SecMemError) -> Self {
        CryptoError::SecMem(e).into()
    }
}

fn bad_input(message: impl Into<String>) -> Failure {
    Failure { exit: EXIT_BAD_INPUT, message: message.into() }
}

pub(crate) fn run() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Vk { scheme: Some(s), .. } => seed_from_stdin().and_then(|seed| dispatch!(s, vk_from_seed(&seed))),
        Command::Vk { skey_file: Some(path), .. } => vk_from_envelope(&path),
        Command::Sign { scheme: Some(s), period, message_hex, .. } => {
            let message = hex::decode(&message_hex).map_err(|_| bad_input("KES_BAD_MESSAGE: --message-hex is not hex"));
            message.and_then(|m| seed_from_stdin().and_then(|seed| dispatch!(s, sign_from_seed(&seed, period, &m))))
        }
        Command::Sign { skey_file: Some(path), key_period: Some(kp), period, message_hex, .. } => {
            let message = hex::decode(&message_hex).map_err(|_| bad_input("KES_BAD_MESSAGE: --message-hex is not hex"));
            message.and_then(|m| sign_from_envelope(&path, kp, period, &m))
        }
        Command::Verify { scheme, vk, vkey_file, period, message_hex, signature_hex } => {
            verify_command(scheme, vk, vkey_file, period, &message_hex, &signature_hex)
        }
        Command::Keygen { out_skey, out_vkey } => keygen(&out_skey, &out_vkey),
        Command::Vk { .. } | Command::Sign { .. } => Err(bad_input("KES_USAGE: give --scheme or --skey-file")),
    };
    match result {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("keyward-kes: {}", f.message);
            ExitCode::from(f.exit)
        }
    }
}

/// 32 bytes of hex on stdin, decoded straight into locked memory.
fn seed_from_stdin() -> Result<MLockedSeed<32>, Failure> {
    let mut stdin = secmem::unbuffered_stdin().map_err(|e| bad_input(format!("KES_NO_STDIN: {}", e.kind())))?;
    let text = SecretBytes::read_to_end(&mut stdin, MAX_SEED_INPUT)?;
    let raw = hex::decode_locked(text.expose())
        .map_err(|_| bad_input("KES_BAD_SEED: stdin must hold the 32-byte seed as 64 hex digits"))?;
    if raw.len() != 32 {
        return Err(bad_input(format!("KES_BAD_SEED: the seed must be 32 bytes, got {}", raw.len())));
    }
    let mut seed = MLockedSeed::new()?;
    seed.as_mut_bytes().copy_from_slice(raw.as_slice());
    Ok(seed)
}

/// Generates the key and evolves it to `period` (an error past the last period).
fn evolve_to<K: KesAlgorithm>(mut key: K, from: u32, to: u32) -> Result<K, Failure> {
    if to < from {
        return Err(bad_input(format!("KES_PERIOD_BEHIND_KEY: the key is at period {from}; cannot go back to {to}")));
    }
    if to >= K::TOTAL_PERIODS {
        return Err(CryptoError::PeriodOutOfRange { period: to, total: K::TOTAL_PERIODS }.into());
    }
    for t in from..to {
        key = kes::update(key, t)?.expect("periods below TOTAL_PERIODS have a successor");
    }
    Ok(key)
}

fn vk_from_seed<K: KesAlgorithm>(seed: &MLockedSeed<32>) -> Result<String, Failure> {
    let key = kes::gen_key::<K>(seed)?;
    Ok(hex::encode(&key.verification_key().0))
}

fn sign_from_seed<K: KesAlgorithm>(seed: &MLockedSeed<32>, period: u32, message: &[u8]) -> Result<String, Failure> {
    if period >= K::TOTAL_PERIODS {
        return Err(CryptoError::PeriodOutOfRange { period, total: K::TOTAL_PERIODS }.into());
    }
    let key = evolve_to(kes::gen_key::<K>(seed)?, 0, period)?;
    Ok(hex::encode(&kes::sign(&key, period, message)?.to_raw()))
}

fn read_envelope_locked(path: &Path) -> Result<MLockedBytes, Failure> {
    let mut file =
        File::open(path).map_err(|e| bad_input(format!("KES_KEY_FILE: {}: {}", path.display(), e.kind())))?;
    // A secret: read straight into locked memory, at most one byte past the
    // limit, whatever the file system says its size is (a FIFO or a device
    // says 0), so `<(decrypt …)` works and `/dev/zero` is refused.
    let text = SecretBytes::read_to_end(&mut file as &mut dyn Read, MAX_ENVELOPE as usize).map_err(|e| match e {
        secmem::SecMemError::TooLong { .. } => {
            let e = bounded_read::ReadError::TooLarge { limit: MAX_ENVELOPE };
            bad_input(format!("{}: {}: {e}", e.code(), path.display()))
        }
        secmem::SecMemError::Io { kind } => bad_input(format!("KES_KEY_FILE: {}: {kind}", path.display())),
        other => other.into(),
    })?;
    if text.is_empty() {
        return Err(bad_input(format!("KES_KEY_FILE: {}: empty", path.display())));
    }
    let mut out = MLockedBytes::new(text.len())?;
    out.as_mut_slice().copy_from_slice(text.expose());
    Ok(out)
}

fn vk_from_envelope(path: &Path) -> Result<String, Failure> {
    let key = envelope::read_sum6_signing_key(&read_envelope_locked(path)?)?;
    Ok(hex::encode(&key.verification_key().0))
}

fn sign_from_envelope(path: &Path, key_period: u32, period: u32, message: &[u8]) -> Result<String, Failure> {
    let key = envelope::read_sum6_signing_key(&read_envelope_locked(path)?)?;
    let key = evolve_to(key, key_period, period)?;
    Ok(hex::encode(&kes::sign(&key, period, message)?.to_raw()))
}

fn verify_command(
    scheme: Scheme,
    vk: Option<String>,
    vkey_file: Option<PathBuf>,
    period: u32,
    message_hex: &str,
    signature_hex: &str,
) -> Result<String, Failure> {
    let vk = match (vk, vkey_file) {
        (Some(h), _) => {
            let b = hex::decode(&h).map_err(|_| bad_input("KES_BAD_VK: --vk is not hex"))?;
            KesVerificationKey(
                b.try_into()
                    .map_err(|b: Vec<u8>| bad_input(format!("KES_BAD_VK: --vk must be 32 bytes, got {}", b.len())))?,
            )
        }
        (None, Some(path)) => {
            let text = bounded_read::read_file(&path, MAX_ENVELOPE).map_err(|e| match e {
                bounded_read::ReadError::Unreadable { kind } => {
                    bad_input(format!("KES_KEY_FILE: {}: {kind}", path.display()))
                }
                _ => bad_input(format!("{}: {}: {e}", e.code(), path.display())),
            })?;
            envelope::read_sum6_verification_key(&text)?
        }
        (None, None) => return Err(bad_input("KES_USAGE: give --vk or --vkey-file")),
    };
    let message = hex::decode(message_hex).map_err(|_| bad_input("KES_BAD_MESSAGE: --message-hex is not hex"))?;
    let sig = hex::decode(signature_hex).map_err(|_| bad_input("KES_BAD_SIGNATURE: --signature-hex is not hex"))?;
    dispatch!(scheme, verify_raw(&vk, period, &message, &sig))
}

fn verify_raw<K: KesAlgorithm>(
    vk: &KesVerificationKey,
    period: u32,
    msg: &[u8],
    sig: &[u8],
) -> Result<String, Failure> {
    let sig = K::Signature::read_raw(sig).map_err(|e| bad_input(e.to_string()))?;
    K::verify(vk, period, msg, &sig)?;
    Ok("valid".to_string())
}

fn keygen(out_skey: &Path, out_vkey: &Path) -> Result<String, Failure> {
    let seed = seed_from_stdin()?;
    let key = kes::gen_key::<kes::Sum6>(&seed)?;
    seed.finalize();
    let sk_env = envelope::write_sum6_signing_key(&key)?;
    let vk_env = envelope::write_sum6_verification_key(&key.verification_key());
    write_new(out_skey, sk_env.as_slice(), 0o600)?;
    if let Err(e) = write_new(out_vkey, &vk_env, 0o644) {
        // Nothing half-done: the signing key file goes too.
        let _ = std::fs::remove_file(out_skey);
        return Err(e);
    }
    Ok(String::new())
}

/// Creates `path` (never replacing an existing file) with `mode`, writes and fsyncs.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let io = |e: std::io::Error| bad_input(format!("KES_OUTPUT: {}: {}", path.display(), e.kind()));
    let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(io)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(io(e));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}
