//! The runner re-executed as another uid (`keyward-redteam --peer-child`,
//! through `daemon_harness::AsUser`): the hostile local peers of RT-028 and
//! RT-029. Modes, from `KW_PEER_MODE`:
//!
//! * `hold:N`: open sessions (handshake and `ping`) until N are open or one
//!   is refused; print `OPENED n` and `REFUSED code|none`; hold them until
//!   stdin closes;
//! * `flood:N`: N connections, each read until the signer's first answer;
//!   print `FLOOD count code` per code.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use ipc::api::{Request, Response};
use ipc::client::Client;

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
    let Some((what, n)) = mode.split_once(':') else { return 2 };
    let Ok(n) = n.parse::<u64>() else { return 2 };
    match what {
        "hold" => {
            let mut held = Vec::new();
            let mut refused = "none".to_string();
            while (held.len() as u64) < n {
                match Client::connect(Path::new(&socket), pin, ipc::Suite::XChaCha20Poly1305, Duration::from_secs(20)) {
                    Ok(mut c) => {
                        if !matches!(c.call(&Request::Ping), Ok(Response::Pong { .. })) {
                            refused = "PING_FAILED".into();
                            break;
                        }
                        held.push(c);
                    }
                    Err(e) => {
                        refused = e.code().to_string();
                        break;
                    }
                }
            }
            println!("OPENED {}", held.len());
            println!("REFUSED {refused}");
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
            0
        }
        "flood" => {
            let mut codes = std::collections::BTreeMap::<String, u64>::new();
            for _ in 0..n {
                let Ok(mut s) = UnixStream::connect(&socket) else { return 1 };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let code = daemon_harness::answer(&mut s).err().unwrap_or_else(|| "A_FRAME".into());
                *codes.entry(code).or_default() += 1;
            }
            for (code, count) in codes {
                println!("FLOOD {count} {code}");
            }
            0
        }
        _ => 2,
    }
}
