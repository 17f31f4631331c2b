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
use ipc::api::{Request, Response};
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
    /// Submit an intent (JSON file, or - for stdin); prints the decision.
    Submit { intent: PathBuf },
    /// Submit an intent and, if a person must approve it, wait (up to
    /// `--wait` seconds) for the outcome; prints the signature once signed.
    Sign {
        intent: PathBuf,
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Requests waiting for a person (approver or admin): list, show, approve, deny.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Signing keys in the signer's vault (admin).
    #[command(subcommand)]
    Key(KeyCommand),
    /// A request's state, or with no id the signer's own status.
    Status { request_id: Option<String> },
    /// Report what became of a signed request (agent): settled or failed.
    Settle {
        request_id: String,
        #[arg(long)]
        failed: bool,
        /// The settlement receipt (base58 transaction signature); the signer
        /// verifies it against the transaction it signed.
        #[arg(long)]
        receipt: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalsCommand {
    List,
    /// Everything an approver must see: payee, amount, asset, chain, scheme,
    /// payment authority, the reason, and the intent hash to approve.
    Show {
        request_id: String,
    },
    /// Approve the request whose intent has exactly this hash (from `show`).
    Approve {
        request_id: String,
        #[arg(long)]
        intent_hash: String,
    },
    Deny {
        request_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key sealed in the vault; prints its public key. The kind
    /// is fixed for the key's life: `solana` (payments keywardd builds),
    /// `raw-ed25519` (opaque `sign` only) or `proof-ed25519` (proofs).
    Create {
        name: String,
        #[arg(long)]
        kind: String,
    },
    List,
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

/// Connects to the signer and completes the handshake.
pub(crate) fn connect(conn: &Connection) -> Result<Client, (String, String)> {
    let pinned = read_pin(&conn.pin).map_err(|e| (e.code().to_string(), format!("pin file {}", conn.pin.display())))?;
    let suite = match conn.suite {
        SuiteArg::XChaCha20Poly1305 => Suite::XChaCha20Poly1305,
        SuiteArg::AesGcm => {
            eprintln!("keyward: IPC_COMPLIANCE_AES_GCM: using the AES-256-GCM compatibility suite");
            Suite::Aes256Gcm
        }
    };
    Client::connect(&conn.socket, pinned, suite, Duration::from_secs(conn.timeout))
        .map_err(|e| (e.code().to_string(), e.to_string()))
}

fn run_inner(conn: &Connection, cmd: &IntentCommand) -> Result<Response, (String, String)> {
    let mut client = connect(conn)?;
    let call = |client: &mut Client, request: &Request| {
        client.call(request).map_err(|e| (e.code().to_string(), e.to_string()))
    };
    let request = match cmd {
        IntentCommand::Ping => Request::Ping,
        IntentCommand::Preview { intent } => Request::Preview { intent: read_intent(intent)? },
        IntentCommand::Submit { intent } | IntentCommand::Sign { intent, .. } => {
            Request::Submit { intent: read_intent(intent)? }
        }
        IntentCommand::Approvals(a) => match a {
            ApprovalsCommand::List => Request::Approvals,
            ApprovalsCommand::Show { request_id } => Request::Show { request_id: request_id.clone() },
            ApprovalsCommand::Approve { request_id, intent_hash } => {
                Request::Approve { request_id: request_id.clone(), intent_hash: intent_hash.clone() }
            }
            ApprovalsCommand::Deny { request_id, reason } => {
                Request::Deny { request_id: request_id.clone(), reason: reason.clone() }
            }
        },
        IntentCommand::Key(KeyCommand::Create { name, kind }) => {
            Request::KeyCreate { name: name.clone(), kind: kind.clone() }
        }
        IntentCommand::Key(KeyCommand::List) => Request::KeyList,
        IntentCommand::Status { request_id: Some(id) } => Request::Status { request_id: id.clone() },
        IntentCommand::Status { request_id: None } => Request::DaemonStatus,
        IntentCommand::Settle { request_id, failed, receipt } => {
            Request::Settle { request_id: request_id.clone(), settled: !failed, receipt: receipt.clone() }
        }
    };
    let mut response = call(&mut client, &request)?;
    if let (IntentCommand::Sign { wait, .. }, Response::Decision { request_id: Some(id), state, .. }) = (cmd, &response)
        && state == "AwaitUserApproval"
        && *wait > 0
    {
        let id = id.clone();
        eprintln!("keyward: waiting up to {wait} s for a person to approve request {id}");
        let deadline = std::time::Instant::now() + Duration::from_secs(*wait);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
            response = call(&mut client, &Request::Status { request_id: id.clone() })?;
            if !matches!(&response, Response::Decision { state, .. } if state == "AwaitUserApproval") {
                break;
            }
        }
    }
    let _ = client.close();
    Ok(response)
}

pub(crate) fn run(conn: &Connection, cmd: &IntentCommand, json: bool) -> ExitCode {
    match run_inner(conn, cmd) {
        Ok(response) => {
            if json {
                match serde_json::to_string(&response) {
                    Ok(line) => println!("{line}"),
                    Err(_) => return crate::fail("CLI_OUTPUT", "cannot print the answer"),
                }
            } else {
                print!("{}", crate::human::response(&response));
            }
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            let message = message.strip_prefix(&format!("{code}: ")).unwrap_or(&message).to_string();
            crate::fail(&code, &message)
        }
    }
}
