//! `keywardd sign-offline`: signs a proof or a SPECTRUM-04 bundle payload
//! with an Ed25519 key file, for operators whose validator key lives in a
//! file (the toolkit's format: the 32-byte seed as 64 hex digits) rather
//! than in the vault.
//!
//! The key file is read straight into locked memory and decoded from hex
//! into an `MLockedSeed` by a branch-free decoder: no hex string, no heap
//! copy of the seed, nothing left behind when the process exits (seed 000
//! §4.6.1.3, made a guarantee). `keyward bundle … --key-file` runs this,
//! because the client cannot link key-holding code. The result is one JSON
//! line `{"public_key", "signature"}` on stdout.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use crypto::ed25519::Ed25519SigningKey;
use secmem::{MLockedBytes, MLockedSeed};

/// What to sign.
#[derive(Debug)]
pub enum Target<'a> {
    /// A `PROOF.json` file: its canonical JSON.
    Proof(&'a Path),
    /// The SPECTRUM-04 payload for this bundle root.
    BundleRoot(&'a str),
}

/// Largest key file read (a hex seed and some whitespace).
const MAX_KEY_FILE: usize = bounded_read::SEED_FILE as usize;
// The refusal below names the limit in a static message.
const _: () = assert!(MAX_KEY_FILE == 4096);

fn fail(code: &str, message: &str) -> ExitCode {
    eprintln!("keywardd: {code}: {message}");
    ExitCode::from(1)
}

/// Reads the key file (`-`: stdin) into locked memory.
fn read_key_file(path: &Path) -> Result<MLockedBytes, (&'static str, &'static str)> {
    let unreadable = ("KW_KEY_FILE_UNREADABLE", "the key file cannot be read");
    let mut buf = MLockedBytes::new_zeroed(MAX_KEY_FILE + 1).map_err(|_| ("KW_LOCKED_MEMORY", "no locked memory"))?;
    let mut reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(|_| unreadable)?)
    };
    let mut n = 0;
    loop {
        match reader.read(&mut buf.as_mut_slice()[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if n > MAX_KEY_FILE {
                    return Err(("KW_INPUT_TOO_LARGE", "the key file is larger than the 4096-byte limit"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(unreadable),
        }
    }
    let mut out = MLockedBytes::new_zeroed(n).map_err(|_| ("KW_LOCKED_MEMORY", "no locked memory"))?;
    out.as_mut_slice().copy_from_slice(&buf.as_slice()[..n]);
    Ok(out)
}

/// The value of one hex digit, or 0xff; no branch on the digit.
fn nibble(c: u8) -> u8 {
    let digit = c.wrapping_sub(b'0');
    let lower = (c | 0x20).wrapping_sub(b'a');
    let is_digit = 0u8.wrapping_sub(u8::from(digit < 10));
    let is_letter = 0u8.wrapping_sub(u8::from(lower < 6));
    (digit & is_digit) | (lower.wrapping_add(10) & is_letter) | !(is_digit | is_letter)
}

/// Decodes the seed from the (whitespace-trimmed) hex in `text`.
pub fn decode_seed(text: &[u8]) -> Option<MLockedSeed<32>> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    let hex = &text[start..end];
    if hex.len() != 64 {
        return None;
    }
    let mut seed = MLockedSeed::<32>::new().ok()?;
    let mut bad = 0u8;
    for (i, pair) in hex.chunks(2).enumerate() {
        let (hi, lo) = (nibble(pair[0]), nibble(pair[1]));
        bad |= (hi | lo) & 0xf0;
        seed.as_mut_bytes()[i] = (hi << 4) | (lo & 0x0f);
    }
    (bad == 0).then_some(seed)
}

pub fn run(key_file: &Path, target: Target<'_>) -> ExitCode {
    let message_for = |pk: &[u8; 32]| -> Result<Vec<u8>, (String, String)> {
        match &target {
            Target::Proof(path) => {
                let bytes = bounded_read::read_file(path, bounded_read::DOCUMENT_FILE).map_err(|e| match e {
                    bounded_read::ReadError::TooLarge { .. } => (e.code().to_string(), format!("the proof is {e}")),
                    _ => ("PROOF_UNREADABLE".into(), "the proof cannot be read".into()),
                })?;
                let doc = bundle::json::parse(&bytes)
                    .map_err(|_| ("PROOF_MALFORMED".to_string(), "the proof is not valid JSON".to_string()))?;
                bundle::proof::message_to_sign(&doc).map_err(|e| (e.code.to_string(), e.message.to_string()))
            }
            Target::BundleRoot(root) => {
                if !bundle::hex::is_lower_hex(root, 64) {
                    return Err(("API_BAD_REQUEST".into(), "bundle_root is 64 lowercase hex digits".into()));
                }
                let payload = bundle::verify::signed_payload(root, &bundle::hex::sha256(pk));
                Ok(bundle::verify::signature_message(&payload))
            }
        }
    };
    let text = match read_key_file(key_file) {
        Ok(t) => t,
        Err((code, message)) => return fail(code, message),
    };
    let Some(seed) = decode_seed(text.as_slice()) else {
        return fail("KW_KEY_FILE_MALFORMED", "the key file is not a 64-digit hex Ed25519 seed");
    };
    drop(text);
    let Ok(key) = Ed25519SigningKey::gen_key_m(&seed) else {
        return fail("KW_LOCKED_MEMORY", "no locked memory for the signing key");
    };
    drop(seed);
    let public = key.derive_verification_key_m().0;
    let message = match message_for(&public) {
        Ok(m) => m,
        Err((code, message)) => return fail(&code, &message),
    };
    let signature = key.sign_bytes_m(&message).0;
    drop(key);
    println!(
        "{{\"public_key\":\"{}\",\"signature\":\"{}\"}}",
        bundle::hex::encode(&public),
        bundle::hex::encode(&signature)
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_decode_from_either_case_with_whitespace() {
        let s = decode_seed(b"  000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n").unwrap();
        assert_eq!(s.as_bytes()[..], (0u8..32).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn anything_but_64_hex_digits_is_refused() {
        for bad in [
            &b""[..],
            b"00",
            &[b'0'; 63],
            &[b'0'; 65],
            b"g000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(decode_seed(bad).is_none());
        }
        let mut with_space = [b'0'; 64];
        with_space[10] = b' ';
        assert!(decode_seed(&with_space).is_none());
    }

    #[test]
    fn key_files_past_their_limit_are_refused_with_the_stable_code() {
        assert_eq!(read_key_file(Path::new("/dev/zero")).unwrap_err().0, "KW_INPUT_TOO_LARGE");
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("seed.hex");
        let seed = "00".repeat(32);
        std::fs::write(&at, format!("{seed}{}", " ".repeat(MAX_KEY_FILE - 64))).unwrap();
        assert!(decode_seed(read_key_file(&at).unwrap().as_slice()).is_some(), "exactly the limit is read");
        std::fs::write(&at, format!("{seed}{}", " ".repeat(MAX_KEY_FILE - 63))).unwrap();
        assert_eq!(read_key_file(&at).unwrap_err().0, "KW_INPUT_TOO_LARGE");
    }
}
