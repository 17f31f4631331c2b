//! A blocking client over the signer's Unix socket: connect, pin, call.
//!
//! This is the only I/O the crate does besides framing, and it is the
//! caller's half only: the client holds an ephemeral X25519 secret for the
//! length of the handshake and its session keys (`zeroize`d on drop), never a
//! signing key.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::api::{ApiError, Request, Response};
use crate::frame::{MAX_FRAME, read_frame, write_frame};
use crate::handshake::{ClientHandshake, pin_from_text};
use crate::record::{Channel, Suite, SystemClock, msg};
use crate::{IpcError, alert};

/// Seconds since the Unix epoch (the handshake's `created_at`).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Reads a pin file (`keyward-signer-v1 <hex>`), at most
/// `bounded_read::PIN_FILE` bytes (`/dev/zero` is refused, not read
/// forever).
pub fn read_pin(path: &Path) -> Result<[u8; 32], IpcError> {
    let text = bounded_read::read_file_to_string(path, bounded_read::PIN_FILE).map_err(|e| match e {
        bounded_read::ReadError::Unreadable { kind } => IpcError::from(std::io::Error::from(kind)),
        bounded_read::ReadError::TooLarge { .. } => IpcError::Malformed { what: "pin file (over 4 KiB)" },
        bounded_read::ReadError::NotUtf8 => IpcError::from(std::io::Error::from(std::io::ErrorKind::InvalidData)),
    })?;
    pin_from_text(&text)
}

/// What a call can fail with.
#[derive(Debug)]
pub enum CallError {
    /// The transport or the protocol failed; the session is over.
    Ipc(IpcError),
    /// The signer refused this request; the session is still open.
    Api(ApiError),
}

impl CallError {
    pub fn code(&self) -> &str {
        match self {
            CallError::Ipc(e) => e.code(),
            CallError::Api(e) => &e.code,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Ipc(e) => e.fmt(f),
            CallError::Api(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CallError {}

impl From<IpcError> for CallError {
    fn from(e: IpcError) -> Self {
        CallError::Ipc(e)
    }
}

/// An open session with the signer.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    channel: Channel,
    clock: SystemClock,
}

/// Reads one frame; an alert becomes its error.
fn read_message(stream: &mut UnixStream) -> Result<Vec<u8>, IpcError> {
    let frame = read_frame(stream, MAX_FRAME)?.ok_or(IpcError::Truncated)?;
    match alert::decode(&frame) {
        Some(e) => Err(e),
        None => Ok(frame),
    }
}

/// Writes one frame. If the signer has already hung up (it refuses a peer
/// before reading a byte, and ends a failed session at once), the write
/// fails with a broken pipe while its alert waits in our receive buffer:
/// report the alert, which says why.
fn send(stream: &mut UnixStream, frame: &[u8]) -> Result<(), IpcError> {
    write_frame(stream, frame).map_err(|e| match read_message(stream) {
        Err(alert @ IpcError::Alert { .. }) => alert,
        _ => e,
    })
}

impl Client {
    /// Connects to `socket` and runs the handshake against the `pinned` key.
    pub fn connect(socket: &Path, pinned: [u8; 32], suite: Suite, timeout: Duration) -> Result<Client, IpcError> {
        let stream = UnixStream::connect(socket)?;
        Self::handshake(stream, pinned, suite, timeout)
    }

    /// The handshake over an already connected stream.
    pub fn handshake(
        mut stream: UnixStream,
        pinned: [u8; 32],
        suite: Suite,
        timeout: Duration,
    ) -> Result<Client, IpcError> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let (hs, hello) = ClientHandshake::start(pinned, "", suite, unix_now())?;
        send(&mut stream, &hello)?;
        let server_hello = read_message(&mut stream)?;
        let (channel, finished) = hs.finish(&server_hello, unix_now())?;
        send(&mut stream, &finished)?;
        Ok(Client { stream, channel, clock: SystemClock::default() })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Sends one request and waits for its answer.
    pub fn call(&mut self, request: &Request) -> Result<Response, CallError> {
        let body = serde_json::to_vec(request).map_err(|_| IpcError::Malformed { what: "request" })?;
        self.call_raw(&body)
    }

    /// Sends one request body (JSON bytes) and waits for its answer.
    pub fn call_raw(&mut self, body: &[u8]) -> Result<Response, CallError> {
        for record in self.channel.seal(msg::REQUEST, body, &self.clock)? {
            send(&mut self.stream, &record)?;
        }
        loop {
            let frame = read_message(&mut self.stream)?;
            let Some(opened) = self.channel.open(&frame, &self.clock)? else { continue };
            return match opened.msg_type {
                msg::RESPONSE => serde_json::from_slice(&opened.payload)
                    .map_err(|_| CallError::Ipc(IpcError::Malformed { what: "response" })),
                msg::ERROR => Err(CallError::Api(
                    serde_json::from_slice(&opened.payload)
                        .map_err(|_| CallError::Ipc(IpcError::Malformed { what: "error record" }))?,
                )),
                msg::CLOSE => Err(CallError::Ipc(IpcError::Alert { code: "IPC_SHUTTING_DOWN" })),
                _ => Err(CallError::Ipc(IpcError::Malformed { what: "record type from the signer" })),
            };
        }
    }

    /// Ends the session politely.
    pub fn close(mut self) -> Result<(), IpcError> {
        for record in self.channel.seal(msg::CLOSE, &[], &self.clock)? {
            send(&mut self.stream, &record)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod pin_tests {
    use super::*;

    #[test]
    fn an_endless_pin_file_is_refused_not_read_forever() {
        let e = read_pin(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.code(), "IPC_MALFORMED");
    }
}
