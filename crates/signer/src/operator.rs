//! `keywardd vault …` and `keywardd migrate …`: the operator's view of the
//! vault. They run inside `keywardd`, the only binary that unseals; the
//! client (`keyward vault …`, `keyward migrate …`) execs into them.
//!
//! Output is one JSON object per line on stdout (public values only); errors
//! go to stderr as `keywardd: CODE: message` with exit status 1 (refused or
//! failed) or 2 (usage). Secrets enter on stdin or from files, never argv.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use vault::envelope::SecretKind;
use vault::recovery::RecoveryKey;
use vault::sealed_vault::hex_id;
use vault::tpm::{PcrPolicy, TpmConfig};
use vault::{SecretProvider, Vault, VaultConfig, VaultError};

use crate::legacy::CapturedEnv;
use crate::migrate::{self, Outcome, Plan};

/// Where the vault is and how to reach the TPM.
#[derive(Debug, Args)]
pub struct VaultOptions {
    /// Vault directory (0700, owned by the service user).
    #[arg(long, global = true, default_value = "/var/lib/keyward/vault")]
    pub vault: PathBuf,
    /// TPM TCTI: `device:/dev/tpmrm0`, or `swtpm:host=127.0.0.1,port=N` for development.
    #[arg(long, global = true, default_value = "device:/dev/tpmrm0")]
    pub tcti: String,
    /// Compatibility mode: seal the KEK without a PCR policy (logged).
    #[arg(long, global = true)]
    pub compat_no_pcr: bool,
    /// Also read AES-256-GCM blobs (compatibility cipher policy; logged).
    #[arg(long, global = true)]
    pub compat_aes_gcm: bool,
}

impl VaultOptions {
    pub fn config(&self) -> VaultConfig {
        if self.compat_no_pcr {
            log_event("compat_mode", "\"what\":\"KEK sealed without PCR policy\"");
        }
        let pcr_policy = (!self.compat_no_pcr).then(PcrPolicy::default);
        let mut c = VaultConfig::new(&self.vault, TpmConfig { tcti: self.tcti.clone(), pcr_policy });
        if self.compat_aes_gcm {
            log_event("compat_mode", "\"what\":\"AES-256-GCM blobs accepted\"");
            c.cipher = vault::envelope::CipherPolicy::Compatibility;
        }
        c
    }
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Create a vault: KEK sealed by the TPM, a first DEK, an empty manifest.
    Init,
    /// Counters, key ids, secrets (names, kinds, epochs).
    Status,
    /// Secret names.
    List,
    /// Seal a secret read from stdin (at most 4 MiB) under NAME.
    Put {
        name: String,
        /// ed25519-seed, kes-sum6-signing-key or opaque.
        #[arg(long, default_value = "opaque")]
        kind: String,
    },
    /// Check that NAME opens (prints kind and epoch, never the secret).
    Verify {
        name: String,
    },
    Delete {
        name: String,
    },
    /// Re-seal every secret under a new DEK, then revoke the old one.
    RotateDek {
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Re-wrap the DEKs under a new TPM-sealed KEK, then revoke the old one.
    RotateKek,
    /// Enrol an offline recovery key; writes its private half to FILE (0600).
    EnrolRecovery {
        #[arg(long)]
        out: PathBuf,
    },
    /// Rebuild the vault on this TPM from the recovery key in FILE.
    Recover {
        #[arg(long)]
        recovery_key: PathBuf,
    },
    /// Copy the vault (ciphertext only) into a new directory.
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
}

/// What `migrate` is told.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Report what would be done; change nothing.
    #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
    pub dry_run: bool,
    /// Seal, verify, then remove the legacy copies.
    #[arg(long)]
    pub apply: bool,
    /// A legacy key file or a directory of them (repeatable).
    #[arg(long = "from")]
    pub from: Vec<PathBuf>,
    /// An environment variable holding a legacy secret (repeatable).
    #[arg(long = "env")]
    pub env: Vec<String>,
}

fn log_event(event: &str, fields: &str) {
    eprintln!("{{\"event\":\"{event}\",{fields}}}");
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("keywardd: {e}");
    ExitCode::from(1)
}

fn print(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn parse_kind(k: &str) -> Result<SecretKind, VaultError> {
    match k {
        "ed25519-seed" => Ok(SecretKind::Ed25519Seed),
        "kes-sum6-signing-key" => Ok(SecretKind::KesSum6SigningKey),
        "opaque" => Ok(SecretKind::Opaque),
        _ => Err(VaultError::PolicyDenied { why: "unknown --kind (ed25519-seed, kes-sum6-signing-key, opaque)" }),
    }
}

/// What a secret of `kind` must look like before it is sealed. An
/// `ed25519-seed` is exactly 32 raw bytes: anything else (a 64-byte Solana
/// keypair, the seed in hex, a trailing newline) would be sealed as a seed
/// and fail, or sign with another key, when it is used.
fn check_secret_shape(kind: SecretKind, secret: &[u8]) -> Result<(), VaultError> {
    if kind == SecretKind::Ed25519Seed && secret.len() != 32 {
        return Err(VaultError::PolicyDenied {
            why: "an ed25519-seed is exactly 32 raw bytes (a 64-byte Solana keypair holds the seed in its first 32)",
        });
    }
    Ok(())
}

pub fn run_vault(opts: &VaultOptions, cmd: &VaultCommand) -> ExitCode {
    match vault_command(opts, cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn vault_command(opts: &VaultOptions, cmd: &VaultCommand) -> Result<(), VaultError> {
    let config = opts.config();
    match cmd {
        VaultCommand::Init => {
            let mut v = Vault::init(config)?;
            let s = v.status()?;
            print(format!(
                "{{\"event\":\"vault_initialised\",\"kek_id\":\"{}\",\"dek_id\":\"{}\",\"epoch\":{}}}",
                hex_id(&s.kek_id),
                hex_id(&s.current_dek),
                s.manifest_counter
            ));
        }
        VaultCommand::Status => {
            let s = Vault::open(config)?.status()?;
            let secrets: Vec<String> = s
                .secrets
                .iter()
                .map(|(n, k, e)| format!("{{\"name\":\"{n}\",\"kind\":\"{}\",\"epoch\":{e}}}", k.label()))
                .collect();
            print(format!(
                "{{\"manifest_counter\":{},\"tpm_counter\":{},\"kek_id\":\"{}\",\"current_dek\":\"{}\",\
                 \"retiring_dek\":{},\"recovery_enrolled\":{},\"secrets\":[{}]}}",
                s.manifest_counter,
                s.tpm_counter,
                hex_id(&s.kek_id),
                hex_id(&s.current_dek),
                s.retiring_dek.map_or("null".to_string(), |d| format!("\"{}\"", hex_id(&d))),
                s.recovery_enrolled,
                secrets.join(",")
            ));
        }
        VaultCommand::List => {
            for name in Vault::open(config)?.list()? {
                print(name);
            }
        }
        VaultCommand::Put { name, kind } => {
            let kind = parse_kind(kind)?;
            let mut stdin = secmem::unbuffered_stdin().map_err(|e| VaultError::Io { kind: e.kind() })?;
            let secret = secmem::SecretBytes::read_to_end(&mut stdin, vault::envelope::MAX_SECRET)?;
            if secret.is_empty() {
                return Err(VaultError::PolicyDenied { why: "no secret on stdin" });
            }
            check_secret_shape(kind, secret.expose())?;
            let mut v = Vault::open(config)?;
            v.put(name, kind, secret.expose())?;
            let epoch = v.get(name)?.epoch;
            print(format!("{{\"event\":\"secret_sealed\",\"name\":\"{name}\",\"epoch\":{epoch}}}"));
        }
        VaultCommand::Verify { name } => {
            let s = Vault::open(config)?.get(name)?;
            if let Some(w) = s.compliance_warning {
                log_event("compliance_warning", &format!("\"code\":\"{w}\""));
            }
            print(format!(
                "{{\"name\":\"{name}\",\"kind\":\"{}\",\"epoch\":{},\"opens\":true}}",
                s.kind.label(),
                s.epoch
            ));
        }
        VaultCommand::Delete { name } => {
            Vault::open(config)?.delete(name)?;
            print(format!("{{\"event\":\"secret_deleted\",\"name\":\"{name}\"}}"));
        }
        VaultCommand::RotateDek { batch } => {
            let r = Vault::open(config)?.rotate_dek(*batch)?;
            print(format!("{{\"event\":\"dek_rotated\",\"resealed\":{},\"finished\":{}}}", r.resealed, r.finished));
        }
        VaultCommand::RotateKek => {
            let id = Vault::open(config)?.rotate_kek()?;
            print(format!("{{\"event\":\"kek_rotated\",\"kek_id\":\"{}\"}}", hex_id(&id)));
        }
        VaultCommand::EnrolRecovery { out } => {
            // Refuse to overwrite: an old recovery key may be the only one.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_0600()
                .open(out)
                .map_err(|e| VaultError::Io { kind: e.kind() })?;
            let enrolled = Vault::open(config).and_then(|mut v| v.enrol_recovery()).and_then(|key| {
                let text = key.to_text()?;
                f.write_all(text.as_slice()).and_then(|()| f.sync_all()).map_err(|e| VaultError::Io { kind: e.kind() })
            });
            if let Err(e) = enrolled {
                // Leave no empty file that would block a retry.
                let _ = std::fs::remove_file(out);
                return Err(e);
            }
            print(format!("{{\"event\":\"recovery_enrolled\",\"file\":\"{}\"}}", out.display()));
        }
        VaultCommand::Recover { recovery_key } => {
            let key = read_recovery_key(recovery_key)?;
            let (_, report) = Vault::recover(config, &key)?;
            print(format!(
                "{{\"event\":\"vault_recovered\",\"restored\":{},\"skipped\":[{}]}}",
                report.restored,
                report.skipped.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(",")
            ));
        }
        VaultCommand::Backup { out } => {
            let n = Vault::open(config)?.backup(out)?;
            print(format!("{{\"event\":\"vault_backed_up\",\"files\":{n},\"out\":\"{}\"}}", out.display()));
        }
    }
    Ok(())
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
    }
}

fn read_recovery_key(path: &Path) -> Result<RecoveryKey, VaultError> {
    let mut f =
        std::fs::OpenOptions::new().read(true).mode_0600().open(path).map_err(|e| VaultError::Io { kind: e.kind() })?;
    // A secret: read into locked memory (over the limit: `SECMEM_TOO_LONG`).
    let text = secmem::SecretBytes::read_to_end(&mut f as &mut dyn Read, bounded_read::RECOVERY_KEY_FILE as usize)?;
    RecoveryKey::from_text(text.expose())
}

pub fn run_migrate(opts: &VaultOptions, args: &MigrateArgs, env: CapturedEnv) -> ExitCode {
    let mut v = match Vault::open(opts.config()) {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let plan = Plan { paths: args.from.clone(), env, apply: args.apply };
    match migrate::run(&mut v, &plan, |_| {}) {
        Ok(report) => {
            for (c, outcome) in &report.items {
                let outcome = match outcome {
                    Outcome::WouldMigrate => "would_migrate",
                    Outcome::Migrated => "migrated",
                    Outcome::Resumed => "resumed",
                    Outcome::Conflict => "conflict_kept_legacy",
                    Outcome::SealedUnsetVariable => "sealed_unset_the_variable",
                };
                print(format!(
                    "{{\"source\":{:?},\"name\":\"{}\",\"kind\":\"{}\",\"format\":{:?},\"outcome\":\"{outcome}\"}}",
                    c.source.id(),
                    c.name,
                    c.kind.label(),
                    c.format
                ));
            }
            for u in &report.unusable {
                print(format!("{{\"source\":{:?},\"outcome\":\"unusable\",\"why\":{:?}}}", u.source.id(), u.why));
            }
            print(format!("{{\"keyring\":{:?}}}", report.keyring));
            if report.nothing_to_do() {
                print("{\"event\":\"migration_result\",\"result\":\"nothing_to_do\"}".into());
            } else {
                let mode = if args.apply { "applied" } else { "dry_run" };
                print(format!("{{\"event\":\"migration_result\",\"result\":\"{mode}\"}}"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ed25519_seed_is_exactly_32_bytes() {
        let seed = [0x5au8; 64];
        assert!(check_secret_shape(SecretKind::Ed25519Seed, &seed[..32]).is_ok());
        for len in [1, 31, 33, 64, 65] {
            let e = check_secret_shape(SecretKind::Ed25519Seed, &seed.repeat(2)[..len]).unwrap_err();
            assert_eq!(e.code(), "DENY_USER_POLICY", "{len} bytes");
            let text = e.to_string();
            assert!(text.starts_with("DENY_USER_POLICY: an ed25519-seed is exactly 32 raw bytes"), "{text}");
            assert!(!text.contains("5a") && !text.contains("Z"), "no secret byte in the message: {text}");
        }
        // The other kinds are not held to 32 bytes here.
        for kind in [SecretKind::Opaque, SecretKind::KesSum6SigningKey] {
            assert!(check_secret_shape(kind, &seed[..7]).is_ok());
        }
    }
}
