//! `keyward ping|preview|submit|sign|approvals|key|status|settle`: the intent
//! API over the signer's socket. The client pins the signer's key from a file
//! (written by `keywardd` at start-up; copy it like a `known_hosts` entry),
//! and prints each answer as text or one JSON line. Errors are
//! `keyward: CODE: message` on stderr. The exit status says what the answer
//! was ([`crate::exit`]): 0 only when what was asked for happened, so
//! `keyward sign intent.json && broadcast` never broadcasts a denial.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use ipc::Suite;
use ipc::api::{Request, Response};
use ipc::client::{CallError, Client};

use crate::exit::{self, Asked};

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
    /// Ask what the signer would decide for an intent (JSON file, or - for
    /// stdin). Exit 0 would be allowed, 2 would be denied, 3 would expire,
    /// 4 a person would be asked, 1 error.
    Preview { intent: PathBuf },
    /// Submit an intent (JSON file, or - for stdin); prints the decision.
    /// Exit 0 allowed (signed, or decided allow), 2 denied, 3 expired,
    /// 4 waits for a person, 5 signing failed, 1 error.
    #[command(after_help = exit::HELP)]
    Submit { intent: PathBuf },
    /// Submit an intent and, if a person must approve it, wait (up to
    /// `--wait` seconds) for the outcome; prints the signature once signed.
    /// Exit 0 only when signed: 2 denied or rejected, 3 expired, 4 still
    /// waiting for a person (no --wait, or it ran out), 5 signing failed,
    /// 1 error. `keyward sign intent.json && broadcast` is safe.
    #[command(after_help = exit::HELP)]
    Sign {
        intent: PathBuf,
        /// Seconds to wait for a person to approve (0: do not wait).
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Requests waiting for a person (approver or admin): list, show, approve, deny.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Signing keys in the signer's vault (admin).
    #[command(subcommand)]
    Key(KeyCommand),
    /// A request's state, or with no id the signer's own status. With an
    /// id the exit status is the request's, as for `submit`.
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
    /// Exit 0 once signed, 5 if signing failed, 2 or 3 if the signer
    /// refuses the approval (`DENY_*`, `EXPIRE_*`), 1 error.
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

/// A failed command: its code, its message and its exit status.
#[derive(Debug)]
struct Failure {
    code: String,
    message: String,
    exit: u8,
}

impl From<(String, String)> for Failure {
    fn from((code, message): (String, String)) -> Self {
        Failure { code, message, exit: exit::ERROR }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        // Only a refusal the signer answered maps by its code's class; a
        // transport or protocol failure is an error whatever its code.
        let exit = match &e {
            CallError::Api(api) => exit::for_refusal(&api.code),
            CallError::Ipc(_) => exit::ERROR,
        };
        Failure { code: e.code().to_string(), message: e.to_string(), exit }
    }
}

// An intent must fit one request record with the request's own JSON around it.
const _: () = assert!(bounded_read::INTENT_FILE + 1024 <= ipc::record::MAX_PAYLOAD as u64);

/// Reads an intent document (a file, or `-` for stdin), at most
/// [`bounded_read::INTENT_FILE`] bytes.
fn read_intent(path: &Path) -> Result<serde_json::Value, (String, String)> {
    let text = bounded_read::read_file_or_stdin(path, bounded_read::INTENT_FILE)
        .map_err(|e| (e.code().to_string(), format!("intent {}: {e}", path.display())))?;
    // Strictly, as keywardd parses it: a duplicate key is refused here, not
    // silently resolved before the request is sent.
    policy::strict_json::parse(&text).map_err(|e| (e.code().to_string(), format!("intent {}: {e}", path.display())))
}

/// Reads the pinned signer key, at most [`bounded_read::PIN_FILE`] bytes.
fn read_pin(path: &Path) -> Result<[u8; 32], (String, String)> {
    let text = bounded_read::read_file_to_string(path, bounded_read::PIN_FILE)
        .map_err(|e| (e.code().to_string(), format!("pin file {}: {e}", path.display())))?;
    ipc::handshake::pin_from_text(&text).map_err(|e| (e.code().to_string(), format!("pin file {}", path.display())))
}

/// Connects to the signer and completes the handshake. The pin file is
/// read (and refused if it is too large) before anything is connected.
pub(crate) fn connect(conn: &Connection) -> Result<Client, (String, String)> {
    let pinned = read_pin(&conn.pin)?;
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

/// What the command asks for, which decides its exit status.
fn asked(cmd: &IntentCommand) -> Asked {
    match cmd {
        IntentCommand::Sign { .. } | IntentCommand::Approvals(ApprovalsCommand::Approve { .. }) => Asked::Signature,
        IntentCommand::Submit { .. } | IntentCommand::Status { request_id: Some(_) } => Asked::Allowed,
        IntentCommand::Preview { .. } => Asked::Preview,
        _ => Asked::Answer,
    }
}

/// Whether the answer is a request that may still change ([`exit::undecided`]).
fn undecided(response: &Response) -> bool {
    matches!(response, Response::Decision { state, .. } if exit::undecided(state))
}

fn run_inner(conn: &Connection, cmd: &IntentCommand) -> Result<Response, Failure> {
    let mut client = connect(conn)?;
    let call = |client: &mut Client, request: &Request| client.call(request).map_err(Failure::from);
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
    if let (IntentCommand::Sign { wait, .. }, Response::Decision { request_id: Some(id), .. }) = (cmd, &response)
        && undecided(&response)
        && *wait > 0
    {
        let id = id.clone();
        eprintln!("keyward: waiting up to {wait} s for a person to approve request {id}");
        let deadline = std::time::Instant::now() + Duration::from_secs(*wait);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
            response = call(&mut client, &Request::Status { request_id: id.clone() })?;
            if !undecided(&response) {
                break;
            }
        }
        if undecided(&response) {
            eprintln!("keyward: request {id} is still not decided after {wait} s");
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
            ExitCode::from(exit::for_response(asked(cmd), &response))
        }
        Err(Failure { code, message, exit }) => {
            let message = message.strip_prefix(&format!("{code}: ")).unwrap_or(&message).to_string();
            eprintln!("keyward: {code}: {message}");
            ExitCode::from(exit)
        }
    }
}
