//! The runner re-executed as another uid (`keyward-redteam --peer-child`,
//! through `daemon_harness::AsUser`): the hostile local peers of RT-028 and
//! RT-029, in the modes of `daemon_harness::peer`, read from `KW_PEER_MODE`.

use std::path::Path;

pub const MODE: &str = "KW_PEER_MODE";
pub const SOCKET: &str = "KW_PEER_SOCKET";
pub const PIN: &str = "KW_PEER_PIN";
/// The argument that selects this mode.
pub const ARG: &str = "--peer-child";

/// Runs the child; returns its exit status.
pub fn child() -> u8 {
    let (Ok(mode), Ok(socket), Ok(pin)) = (std::env::var(MODE), std::env::var(SOCKET), std::env::var(PIN)) else {
        return 2;
    };
    let Ok(pin) = ipc::client::read_pin(Path::new(&pin)) else { return 2 };
    daemon_harness::peer::run(&mode, Path::new(&socket), pin)
}
