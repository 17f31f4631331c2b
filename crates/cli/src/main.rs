//! `keyward`: the client and operator tool.
//!
//! It talks to `keywardd` and never holds key bytes: it does not link the
//! vault, the secret-memory containers or the signing-key types, so no code
//! path in this binary can reach a key. Commands that must touch key material
//! on the operator's machine (`keyward kes …`) are carried out by a separate,
//! self-hardening helper binary next to this one (`keyward-kes`), which this
//! process replaces itself with. Intent commands arrive with the signer issue.
#![forbid(unsafe_code)]

mod helper;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "keyward", version, about = "keyward client and operator tool")]
struct Args {
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
}

fn main() -> ExitCode {
    match Args::parse().command {
        Command::Kes { args } => helper::exec(helper::KES, &args),
    }
}
