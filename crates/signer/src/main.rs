//! `keywardd`: the signer daemon, the only process that ever unseals a key or
//! signs.
//!
//! Hardening comes before anything else, argument parsing included: the
//! environment is scrubbed of secret-bearing variables while the process still
//! has one thread, core dumps and ptrace are shut off, and only then does any
//! code that could allocate a secret run. The daemon proper (socket, IPC,
//! policy, vault) arrives with later issues; today the binary offers the
//! strict-profile self-check that the daemon will run at every start.
#![forbid(unsafe_code)]

mod selfcheck;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "keywardd", version, about = "keyward signer daemon")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply process hardening, print one JSON line per control, and exit
    /// non-zero if a mandatory control of the strict profile is off.
    SelfCheck,
}

fn main() -> ExitCode {
    let hardening = secmem::hardening::harden_process();
    let args = Args::parse();
    match args.command {
        Command::SelfCheck => selfcheck::run(&hardening),
    }
}
