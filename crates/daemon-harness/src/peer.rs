//! A hostile local peer, run as another uid through [`crate::AsUser`] (the
//! test or runner binary re-executed): what the availability tests and the
//! red-team scenarios RT-028/RT-029 use. Modes:
//!
//! * `hold:N`: opens sessions (handshake and `ping` each) until N are open
//!   or one is refused, prints `OPENED n` and `REFUSED code` (or `REFUSED
//!   none`), then holds them until stdin closes;
//! * `flood:N`: N connections, each read until the signer's first answer;
//!   prints `FLOOD count code` per code;
//! * `flood_for:MS`: as `flood`, for MS milliseconds.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ipc::api::{Request, Response};
use ipc::client::Client;

/// Runs `mode` against the daemon at `socket` pinned to `pin`; returns the
/// process's exit status (2 for a mode it does not know).
pub fn run(mode: &str, socket: &Path, pin: [u8; 32]) -> u8 {
    let Some((what, n)) = mode.split_once(':') else { return 2 };
    let Ok(n) = n.parse::<u64>() else { return 2 };
    match what {
        "hold" => {
            let mut held = Vec::new();
            let mut refused = "none".to_string();
            while (held.len() as u64) < n {
                match Client::connect(socket, pin, ipc::Suite::XChaCha20Poly1305, Duration::from_secs(20)) {
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
        "flood" | "flood_for" => {
            let mut codes = std::collections::BTreeMap::<String, u64>::new();
            let start = Instant::now();
            let mut i = 0;
            while if what == "flood" { i < n } else { start.elapsed() < Duration::from_millis(n) } {
                let Ok(mut s) = UnixStream::connect(socket) else { return 1 };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let code = crate::answer(&mut s).err().unwrap_or_else(|| "A_FRAME".into());
                *codes.entry(code).or_default() += 1;
                i += 1;
            }
            for (code, count) in codes {
                println!("FLOOD {count} {code}");
            }
            0
        }
        _ => 2,
    }
}
