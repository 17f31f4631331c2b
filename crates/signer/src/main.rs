//! `keywardd`: the signer daemon, the only process that ever unseals a key or
//! signs.
//!
//! Hardening comes before anything else, argument parsing included: the
//! environment is scrubbed of secret-bearing variables while the process still
//! has one thread, core dumps and ptrace are shut off, and only then does any
//! code that could allocate a secret run. `keywardd run` is the daemon (socket,
//! IPC, sandbox); the binary also offers the strict-profile self-check, the
//! vault operator commands and the migration engine, all of which must run in
//! the one process allowed to unseal.
#![forbid(unsafe_code)]

mod selfcheck;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use signer::legacy::CapturedEnv;
use signer::operator::{self, MigrateArgs, VaultCommand, VaultOptions};

#[derive(Debug, Parser)]
#[command(name = "keywardd", version, about = "keyward signer daemon")]
struct Args {
    #[command(flatten)]
    vault: VaultOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply process hardening, print one JSON line per control, and exit
    /// non-zero if a mandatory control of the strict profile is off.
    SelfCheck,
    /// Vault operator commands (init, status, put, rotate-dek, recover, …).
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Move legacy plaintext secrets into the vault (--dry-run | --apply).
    Migrate(MigrateArgs),
    /// Run the daemon: serve the IPC socket described by the configuration.
    Run {
        /// The daemon configuration (TOML; see deploy/keywardd.toml).
        #[arg(long, default_value = "/etc/keyward/keywardd.toml")]
        config: std::path::PathBuf,
    },
    /// Create the vault, the signer identity, the ledger and the audit log.
    Init {
        #[arg(long, default_value = "/etc/keyward/keywardd.toml")]
        config: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Sign a proof (`--proof PROOF.json`) or a SPECTRUM-04 bundle payload
    /// (`--bundle-root HEX`) with an Ed25519 key file (64 hex digits; `-`
    /// for stdin). Prints `{"public_key","signature"}`.
    SignOffline {
        #[arg(long)]
        key_file: std::path::PathBuf,
        #[arg(long, conflicts_with = "bundle_root", required_unless_present = "bundle_root")]
        proof: Option<std::path::PathBuf>,
        #[arg(long)]
        bundle_root: Option<String>,
    },
    /// Write the Mermaid diagrams of the state machines (docs/diagrams).
    Diagrams {
        #[arg(long, default_value = "docs/diagrams")]
        out: std::path::PathBuf,
    },
}

/// `migrate --env NAME` reads legacy secrets from environment variables,
/// which hardening wipes. Copy exactly the named ones into locked memory
/// first (a scan of argv; clap has not run yet).
fn capture_named_env() -> CapturedEnv {
    let argv: Vec<String> = std::env::args_os().filter_map(|a| a.into_string().ok()).collect();
    if !argv.iter().any(|a| a == "migrate") {
        return CapturedEnv::default();
    }
    let mut names = Vec::new();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--env" {
            names.extend(it.next().cloned());
        } else if let Some(n) = a.strip_prefix("--env=") {
            names.push(n.to_string());
        }
    }
    CapturedEnv::capture(&names).unwrap_or_else(|e| {
        eprintln!("keywardd: {}: cannot capture legacy environment secrets", e.code());
        std::process::exit(1)
    })
}

fn main() -> ExitCode {
    let env = capture_named_env();
    let hardening = secmem::hardening::harden_process();
    let args = Args::parse();
    match args.command {
        Command::SelfCheck => selfcheck::run(&hardening),
        Command::Vault(cmd) => operator::run_vault(&args.vault, &cmd),
        Command::Migrate(m) => operator::run_migrate(&args.vault, &m, env),
        Command::Run { config } => signer::daemon::run(&config, &hardening),
        Command::Init { config, json } => signer::daemon::init(&config, json),
        Command::SignOffline { key_file, proof, bundle_root } => {
            let target = match (&proof, &bundle_root) {
                (Some(p), _) => signer::offline::Target::Proof(p),
                (None, Some(r)) => signer::offline::Target::BundleRoot(r),
                (None, None) => unreachable!("clap requires one"),
            };
            signer::offline::run(&key_file, target)
        }
        Command::Diagrams { out } => match signer::daemon::diagrams::write(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keywardd: KW_DIAGRAMS_WRITE_FAILED: {}: {}", out.display(), e.kind());
                ExitCode::from(1)
            }
        },
    }
}
