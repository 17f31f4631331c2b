//! Handing a command over to a helper binary installed next to `keyward`.
//!
//! The helper is looked up only beside this executable (not on `PATH`), so
//! the pair that was installed together is the pair that runs. This process
//! is replaced (`exec`): stdin, stdout, stderr and the exit status are the
//! helper's own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The KES operator helper.
pub(crate) const KES: &str = "keyward-kes";
/// The signer, for vault and migration commands.
pub(crate) const SIGNER: &str = "keywardd";

/// Exit status when the helper cannot be started.
const EXIT_HELPER_MISSING: u8 = 2;

fn beside_this_executable(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let candidate = me.parent()?.join(name);
    candidate.is_file().then_some(candidate)
}

pub(crate) fn exec(name: &str, args: &[OsString]) -> ExitCode {
    let Some(path) = beside_this_executable(name) else {
        eprintln!("keyward: KW_HELPER_MISSING: {name} is not installed next to keyward");
        return ExitCode::from(EXIT_HELPER_MISSING);
    };
    let err = Command::new(&path).args(args).exec();
    eprintln!("keyward: KW_HELPER_MISSING: cannot run {}: {}", path.display(), err.kind());
    ExitCode::from(EXIT_HELPER_MISSING)
}
