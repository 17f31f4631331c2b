//! `keyward ping|preview|submit|approve|deny|status`: the intent API over the
//! signer's socket. The client pins the signer's key from a file (written by
//! `keywardd` at start-up; copy it like a `known_hosts` entry), and prints
//! each answer as one JSON line. Errors are `keyward: CODE: message` on
//! stderr with exit status 1.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use ipc::Suite;
use ipc::api::Request;
use ipc::client::{Client, read_pin};

/// Where the signer is and which key it must prove it holds.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The signer's socket.
    #[arg(long, global = true, default_value = "/run/keyward/keywardd.sock")]
    pub socket: PathBuf,
    /// The pinned signer key (`keyward-signer-v1 <hex>`).
    #[arg(long, global = true, default_value = "/var/lib/keyward/signer.pub")]
    pub pin: PathBuf,
    /// Record cipher. `aes-gcm` is a compatibility setting the signer must also allow.
    #[arg(long, global = true, value_enum, default_value = "xchacha20-poly1305")]
    pub suite: SuiteArg,
    /// Seconds to wait for the signer.
    #[arg(long, global = true, default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SuiteArg {
    #[value(name = "xchacha20-poly1305")]
    XChaCha20Poly1305,
    #[value(name = "aes-gcm")]
    AesGcm,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IntentCommand {
    /// Who the signer thinks you are (uid, role, session).
    Ping,
    /// Ask what the signer would decide for an intent (JSON file, or - for stdin).
    Preview { intent: PathBuf },
    /// Submit an intent (JSON file, or - for stdin).
    Submit { intent: PathBuf },
    /// Approve a pending request (approver or admin).
    Approve { request_id: String },
    /// Deny a pending request (approver or admin).
    Deny {
        request_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// A request's state.
    Status { request_id: String },
}

/// Largest intent document accepted from a file or stdin.
const MAX_INTENT: u64 = 48 * 1024;

fn read_intent(path: &Path) -> Result<serde_json::Value, (String, String)> {
    let mut text = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().lock().take(MAX_INTENT + 1).read_to_end(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INTENT + 1).read_to_end(&mut text))
    };
    read.map_err(|e| ("CLI_INPUT".to_string(), format!("{}: {e}", path.display())))?;
    if text.len() as u64 > MAX_INTENT {
        return Err(("CLI_INPUT".into(), format!("intent larger than {MAX_INTENT} bytes")));
    }
    serde_json::from_slice(&text).map_err(|_| ("CLI_INPUT".into(), "the intent is not valid JSON".into()))
}

fn run_inner(conn: &Connection, cmd: &IntentCommand) -> Result<String, (String, String)> {
    let pinned = read_pin(&conn.pin).map_err(|e| (e.code().to_string(), format!("pin file {}", conn.pin.display())))?;
    let suite = match conn.suite {
        SuiteArg::XChaCha20Poly1305 => Suite::XChaCha20Poly1305,
        SuiteArg::AesGcm => {
            eprintln!("keyward: IPC_COMPLIANCE_AES_GCM: using the AES-256-GCM compatibility suite");
            Suite::Aes256Gcm
        }
    };
    let mut client = Client::connect(&conn.socket, pinned, suite, Duration::from_secs(conn.timeout))
        .map_err(|e| (e.code().to_string(), e.to_string()))?;
    let request = match cmd {
        IntentCommand::Ping => Request::Ping,
        IntentCommand::Preview { intent } => Request::Preview { intent: read_intent(intent)? },
        IntentCommand::Submit { intent } => Request::Submit { intent: read_intent(intent)? },
        IntentCommand::Approve { request_id } => Request::Approve { request_id: request_id.clone() },
        IntentCommand::Deny { request_id, reason } => {
            Request::Deny { request_id: request_id.clone(), reason: reason.clone() }
        }
        IntentCommand::Status { request_id } => Request::Status { request_id: request_id.clone() },
    };
    let response = client.call(&request).map_err(|e| (e.code().to_string(), e.to_string()))?;
    let _ = client.close();
    serde_json::to_string(&response).map_err(|_| ("CLI_OUTPUT".into(), "cannot print the answer".into()))
}

pub(crate) fn run(conn: &Connection, cmd: &IntentCommand) -> ExitCode {
    match run_inner(conn, cmd) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            let message = message.strip_prefix(&format!("{code}: ")).unwrap_or(&message).to_string();
            eprintln!("keyward: {code}: {message}");
            ExitCode::from(1)
        }
    }
}
