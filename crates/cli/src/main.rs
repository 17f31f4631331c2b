//! `keyward`: the client and operator tool.
//!
//! It talks to `keywardd` and never holds key bytes: it does not link the
//! vault, the secret-memory containers or the signing-key types, so no code
//! path in this binary can reach a key. Commands that must touch key material
//! on the operator's machine (`keyward kes …`) are carried out by a separate,
//! self-hardening helper binary next to this one (`keyward-kes`), which this
//! process replaces itself with. Vault and migration commands are carried
//! out by `keywardd` itself, the only binary that unseals, and so is
//! `keyward init`. Intent commands (`ping`, `preview`, `submit`, `sign`,
//! `approvals`, `key`, `status`, `settle`) talk to the running `keywardd`
//! over its socket ([`intents`]); `audit` reads the audit log ([`audit`]);
//! `bundle` verifies and restores signed bundles itself and asks the signer
//! for signatures ([`bundle_cmd`]).
//! Every command prints text, or one JSON document with `--json`; exit
//! statuses are in [`exit`] (0 only when what was asked for happened).
#![forbid(unsafe_code)]

mod audit;
mod bundle_cmd;
mod exit;
mod helper;
mod human;
mod intents;
mod x402_cmd;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "keyward", version, about = "keyward client and operator tool", after_help = exit::HELP)]
struct Args {
    #[command(flatten)]
    connection: intents::Connection,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Cardano KES operator commands (vk, sign, verify, keygen); run
    /// `keyward kes --help`. Carried out by the `keyward-kes` helper.
    #[command(disable_help_flag = true)]
    Kes {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Vault operator commands (init, status, list, put, verify, delete,
    /// rotate-dek, rotate-kek, enrol-recovery, recover, backup); run
    /// `keyward vault --help`. Carried out by `keywardd`, the only binary
    /// that unseals.
    #[command(disable_help_flag = true)]
    Vault {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Move legacy plaintext secrets into the vault: `--dry-run` or
    /// `--apply`, with `--from PATH` and `--env NAME`. Carried out by `keywardd`.
    #[command(disable_help_flag = true)]
    Migrate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Create the vault (sealed under the TPM), the signer's identity key and
    /// its pin file, the ledger and the audit log from a keywardd
    /// configuration: `keyward init --config PATH`. Carried out by `keywardd`.
    #[command(disable_help_flag = true)]
    Init {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Signed proofs and SPECTRUM bundles: sign-proof, verify-proof, verify,
    /// verify-chain, restore, restore-chain, make.
    #[command(subcommand)]
    Bundle(bundle_cmd::BundleCommand),
    /// Verify the audit log's hash chain, or explain one request.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// x402 payments: `fetch` a URL like curl and pay its 402, or run a
    /// local paying `proxy` for agents in any language.
    #[command(subcommand)]
    X402(x402_cmd::X402Command),
    #[command(flatten)]
    Intent(intents::IntentCommand),
}

fn with_subcommand(sub: &str, args: Vec<OsString>) -> Vec<OsString> {
    std::iter::once(OsString::from(sub)).chain(args).collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Kes { args } => helper::exec(helper::KES, &args),
        Command::Vault { args } => helper::exec(helper::SIGNER, &with_subcommand("vault", args)),
        Command::Migrate { args } => helper::exec(helper::SIGNER, &with_subcommand("migrate", args)),
        Command::Init { args: rest } => {
            let mut a = rest;
            if args.json {
                a.push("--json".into());
            }
            helper::exec(helper::SIGNER, &with_subcommand("init", a))
        }
        Command::Audit(cmd) => audit::run(&cmd, args.json),
        Command::Bundle(cmd) => bundle_cmd::run(&args.connection, &cmd, args.json),
        Command::X402(cmd) => x402_cmd::run(&args.connection, &cmd, args.json),
        Command::Intent(cmd) => intents::run(&args.connection, &cmd, args.json),
    }
}

/// Prints `keyward: CODE: message` and returns exit status 1 ([`exit::ERROR`]).
pub(crate) fn fail(code: &str, message: &str) -> ExitCode {
    eprintln!("keyward: {code}: {message}");
    ExitCode::from(exit::ERROR)
}
