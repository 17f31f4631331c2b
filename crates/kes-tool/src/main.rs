//! `keyward-kes`: Cardano KES operator commands, for interop and test vectors.
//!
//! It is its own small process, reached as `keyward kes …`: the client
//! (`keyward`) cannot link key-holding code, and this tool, which must hold a
//! KES key for a moment, hardens itself like the signer does (no core dumps,
//! not dumpable, secret-bearing environment scrubbed) before anything else.
//!
//! Seeds come as hex on stdin, never in argv; signing keys come from
//! cardano-cli text envelope files. Both are read straight into locked memory.
//!
//! Exit status: 0 success (for `verify`: valid), 1 invalid signature,
//! 2 bad input or usage, 3 the machine refused locked memory.
#![forbid(unsafe_code)]

mod commands;

use std::process::ExitCode;

fn main() -> ExitCode {
    secmem::hardening::harden_process();
    commands::run()
}
