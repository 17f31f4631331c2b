//! `keyward x402 fetch` and `keyward x402 proxy`: the agent's x402 client
//! (normative: docs/x402.md, "The client").
//!
//! The client does the network work the signer must not do (HTTP, TLS,
//! JSON-RPC) and nothing the signer must decide. It reads a 402 challenge,
//! checks the Solana RPC endpoint really serves the challenge's network
//! (`getGenesisHash` against the CAIP-2 reference), fetches a recent
//! blockhash, and sends `keywardd` a payment *intent*: payee, mint, amount,
//! fee payer, blockhash. `keywardd` decides it, builds the transaction
//! itself and signs its own slot. The client then checks the returned
//! transaction against the challenge (defence in depth: it trusts the
//! signer, but checking costs nothing), sends it in the payment header,
//! and checks the receipt: the receipt's transaction id must be the fee
//! payer's Ed25519 signature over exactly our message. It reports a
//! verified receipt to the signer, which verifies it again.
//!
//! One invocation pays at most once: the idempotency key is fixed for the
//! invocation, a second 402 after paying is never paid again (a 402 loop or
//! a changed price is reported, not retried), and the signer returns the
//! same signature for the same key.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Args, Subcommand};
use ipc::api::{Request, Response};
use policy::intent::origin;
use policy::redact::display_safe;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use solana_codec::Pubkey;
use x402::{Challenge, Requirement};

use crate::intents::{Connection, connect};

/// Exit statuses of `keyward x402 fetch` (docs/x402.md, "Exit statuses").
pub(crate) mod exit {
    /// The resource was delivered (2xx), paid or free.
    pub(crate) const DELIVERED: u8 = 0;
    /// Something failed (network, protocol, input, signer unreachable).
    pub(crate) const ERROR: u8 = 1;
    /// A payment was refused (policy, a person, a hostile challenge):
    /// nothing was signed.
    pub(crate) const REFUSED: u8 = 2;
    /// Payment was required and not made or not accepted (dry run, no
    /// approval in time, a 402 after paying).
    pub(crate) const NOT_PAID: u8 = 3;
    /// The server answered with another error status (not 2xx, not 402).
    pub(crate) const HTTP_ERROR: u8 = 4;
}

/// Largest response body `fetch` reads.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;
/// Largest request body the proxy accepts from an agent.
const MAX_PROXY_REQUEST: usize = 8 * 1024 * 1024;
/// Largest JSON-RPC answer read.
const MAX_RPC: u64 = 64 * 1024;

#[derive(Debug, Subcommand)]
pub(crate) enum X402Command {
    /// Fetch a URL like curl; pay a 402 under the signer's policy.
    Fetch(FetchArgs),
    /// A local HTTP proxy that pays 402s for any agent.
    Proxy(ProxyArgs),
}

/// What every payment needs, for `fetch` and `proxy` alike.
#[derive(Debug, Clone, Args)]
pub(crate) struct PayArgs {
    /// The signer's `solana` key to pay with.
    #[arg(long, default_value = "agent-hot")]
    key: String,
    /// Solana JSON-RPC endpoint (its genesis hash must match the network).
    #[arg(long, default_value = "https://api.mainnet-beta.solana.com")]
    rpc: String,
    /// Never pay more than this (atomic units) for one request.
    #[arg(long)]
    max_amount: Option<u64>,
    /// Seconds to wait for a person when the policy asks for approval.
    #[arg(long, default_value_t = 0)]
    wait: u64,
    /// Extra root certificate(s), PEM, trusted for HTTPS besides the
    /// built-in web roots (e.g. a private CA).
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// Seconds for each HTTP exchange.
    #[arg(long, default_value_t = 60)]
    http_timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    url: String,
    /// HTTP method.
    #[arg(short = 'X', long = "request", default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request body (`@FILE` reads a file).
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// Write the body here instead of standard output.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Print what would be paid and why; pay nothing.
    #[arg(long)]
    dry_run: bool,
    /// The idempotency key of this payment (default: fresh per invocation).
    /// Re-running with the same key never pays twice.
    #[arg(long)]
    idempotency_key: Option<String>,
    #[command(flatten)]
    pay: PayArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Where to listen (loopback only).
    #[arg(long, default_value = "127.0.0.1:8402")]
    listen: String,
    /// Forward requests whose target is a path to this origin (base-URL
    /// mode). Absolute-form targets (HTTP_PROXY mode) go where they say.
    #[arg(long)]
    upstream: Option<String>,
    /// Stop after this many requests (0: serve until killed).
    #[arg(long, default_value_t = 0)]
    max_requests: u64,
    #[command(flatten)]
    pay: PayArgs,
}

/// A failure with a stable code and the exit status it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    code: String,
    message: String,
    exit: u8,
}

fn failure(exit: u8, code: &str, message: impl Into<String>) -> Failure {
    Failure { code: code.into(), message: message.into(), exit }
}

fn error(code: &str, message: impl Into<String>) -> Failure {
    failure(exit::ERROR, code, message)
}

/// One HTTP exchange, already read.
#[derive(Debug, Clone)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
}

/// The request being made (and re-made with a payment).
#[derive(Debug, Clone)]
struct Outgoing {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Debug)]
struct Http {
    agent: ureq::Agent,
}

impl Http {
    fn new(pay: &PayArgs) -> Result<Http, Failure> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let mut tls = TlsConfig::builder();
        if let Some(path) = &pay.cacert {
            let pem = read_bounded(path, bounded_read::CA_CERT_FILE)?;
            let mut roots: Vec<Certificate<'static>> = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                    roots.push(c);
                }
            }
            if roots.is_empty() {
                return Err(error("CLI_INPUT", format!("{}: no PEM certificate", path.display())));
            }
            // The private CA in addition to, not instead of, the web roots
            // would need a custom verifier; a private CA alone is what a
            // caller asking for one means (as with curl --cacert).
            tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
        }
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(pay.http_timeout.max(1))))
            .tls_config(tls.build())
            .build();
        Ok(Http { agent: config.into() })
    }

    fn send(&self, req: &Outgoing) -> Result<HttpResponse, Failure> {
        let mut builder = ureq::http::Request::builder().method(req.method.as_str()).uri(req.url.as_str());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder.body(req.body.clone()).map_err(|_| error("CLI_INPUT", "not a valid HTTP request"))?;
        let mut resp = self.agent.run(request).map_err(|e| error("X402_HTTP_FAILED", transport(&e)))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| error("X402_HTTP_FAILED", transport(&e)))?;
        Ok(HttpResponse { status, headers, body })
    }

    fn rpc(&self, url: &str, method: &str, params: Value) -> Result<Value, Failure> {
        let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .unwrap_or_default();
        let req = Outgoing {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        };
        let resp = self.send(&req).map_err(|f| error("X402_RPC_FAILED", f.message))?;
        if resp.status != 200 || resp.body.len() as u64 > MAX_RPC {
            return Err(error("X402_RPC_FAILED", format!("{method}: HTTP {}", resp.status)));
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|_| error("X402_RPC_FAILED", format!("{method}: not JSON-RPC")))?;
        v.get("result").cloned().ok_or_else(|| error("X402_RPC_FAILED", format!("{method}: no result")))
    }
}

/// A transport error in words, without echoing server bytes.
fn transport(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS handshake or certificate verification failed".into(),
        ureq::Error::Io(io) => format!("I/O: {}", io.kind()),
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::BodyExceedsLimit(_) => "the response body is too large".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        _ => "the HTTP exchange failed".into(),
    }
}

/// Reads a file the user named, at most `max` bytes (a
/// [`bounded_read`] limit); beyond it `KW_INPUT_TOO_LARGE`, exit status 1.
fn read_bounded(path: &std::path::Path, max: u64) -> Result<Vec<u8>, Failure> {
    bounded_read::read_file(path, max).map_err(|e| error(e.code(), format!("{}: {e}", path.display())))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What the RPC endpoint said of a network: (recent blockhash, last valid
/// block height), or the code of the refusal (e.g. a genesis mismatch).
type ChainFacts = Result<(String, u64), String>;

/// What a payment attempt came to.
#[derive(Debug)]
struct Paid {
    request_id: String,
    requirement: Requirement,
    network: String,
    transaction_sig: Option<String>,
    receipt_verified: bool,
    decision: String,
    reason_code: String,
}

/// The result of fetching with payment.
#[derive(Debug)]
struct Fetched {
    response: HttpResponse,
    /// `free`, `paid`, `refused`, `not_paid`, `dry_run`.
    outcome: &'static str,
    exit: u8,
    code: Option<String>,
    detail: String,
    payment: Option<Paid>,
    /// Why each challenge entry was passed over.
    skipped: Vec<(usize, String)>,
}

/// The payer: one signer connection's worth of settings.
#[derive(Debug)]
struct Payer<'a> {
    conn: &'a Connection,
    pay: &'a PayArgs,
    http: Http,
    /// One signer session, reused across the calls of a payment (each new
    /// session costs a handshake).
    session: std::cell::RefCell<Option<ipc::client::Client>>,
}

/// The facts about one candidate entry a payment is made from.
#[derive(Debug, Clone)]
struct Plan {
    index: usize,
    caip2: String,
    blockhash: String,
    last_valid_block_height: u64,
}

impl Payer<'_> {
    fn signer_call(&self, request: &Request) -> Result<Response, Failure> {
        let mut session = self.session.borrow_mut();
        if let Some(client) = session.as_mut() {
            match client.call(request) {
                Ok(r) => return Ok(r),
                Err(ipc::client::CallError::Api(e)) => return Err(error(&e.code, e.message)),
                // The session ended (idle timeout, signer restart): one new one.
                Err(_) => *session = None,
            }
        }
        let mut client = connect(self.conn).map_err(|(c, m)| error(&c, m))?;
        let r = client.call(request).map_err(|e| error(e.code(), e.to_string()));
        *session = Some(client);
        r
    }

    /// The genesis check and a recent blockhash for `caip2`.
    fn chain_facts(&self, caip2: &str) -> Result<(String, u64), Failure> {
        let genesis = self.http.rpc(&self.pay.rpc, "getGenesisHash", json!([]))?;
        let genesis = genesis.as_str().unwrap_or_default();
        if !x402::networks::genesis_matches(caip2, genesis) {
            return Err(failure(
                exit::REFUSED,
                "X402_NETWORK_MISMATCH",
                "the RPC endpoint serves a different network than the challenge names",
            ));
        }
        let r = self.http.rpc(&self.pay.rpc, "getLatestBlockhash", json!([{"commitment": "confirmed"}]))?;
        let blockhash = r["value"]["blockhash"].as_str().unwrap_or_default().to_string();
        let height = r["value"]["lastValidBlockHeight"].as_u64().unwrap_or(0);
        if Pubkey::from_base58(&blockhash).is_err() {
            return Err(error("X402_RPC_FAILED", "getLatestBlockhash: not a 32-byte base58 blockhash"));
        }
        Ok((blockhash, height))
    }

    fn intent(&self, c: &Challenge, r: &Requirement, plan: &Plan, url: &str, idempotency_key: &str) -> Value {
        let scheme_id = format!("v{}-solana-exact", c.version.number());
        let max = self.pay.max_amount.unwrap_or(r.amount).max(r.amount);
        let authority = origin(url).unwrap_or_default();
        let mut solana = json!({
            "fee_payer": r.fee_payer, "recent_blockhash": plan.blockhash,
            "last_valid_block_height": plan.last_valid_block_height,
        });
        if let Some(m) = &r.memo {
            solana["memo"] = json!(m);
        }
        json!({
            "actor": "agent", "action": "x402_payment", "key": self.pay.key, "chain_id": plan.caip2,
            "asset_id": r.asset, "amount_atomic": r.amount.to_string(), "max_amount_atomic": max.to_string(),
            "payee": r.pay_to, "rationale": format!("x402 payment for {authority}"),
            "idempotency_key": idempotency_key,
            "request_expiry": now() + self.pay.wait + 120,
            "x402": {"scheme_id": scheme_id, "payment_authority": authority, "version": c.version.number(),
                     "resource": url},
            "solana": solana,
        })
    }

    /// Fetches `req`, paying a 402 once if the policy allows.
    fn fetch(&self, req: &Outgoing, dry_run: bool, idempotency_key: &str) -> Result<Fetched, Failure> {
        let first = self.http.send(req)?;
        if first.status != 402 {
            let exit = if (200..300).contains(&first.status) { exit::DELIVERED } else { exit::HTTP_ERROR };
            return Ok(Fetched {
                response: first,
                outcome: "free",
                exit,
                code: None,
                detail: String::new(),
                payment: None,
                skipped: vec![],
            });
        }
        let challenge = x402::parse_challenge(|n| first.header(n), &first.body)
            .map_err(|e| failure(exit::REFUSED, e.code, e.detail))?;
        let not_paid = |response: HttpResponse, code: &str, detail: String, skipped| Fetched {
            response,
            outcome: "refused",
            exit: exit::REFUSED,
            code: Some(code.into()),
            detail,
            payment: None,
            skipped,
        };
        // The challenge must be for what we asked for.
        if let Some(u) = &challenge.resource_url
            && origin(u) != origin(&req.url)
        {
            return Ok(not_paid(
                first,
                "X402_RESOURCE_MISMATCH",
                "the challenge names a resource on another origin".into(),
                vec![],
            ));
        }
        let (candidates, skipped_codes) = x402::solana_exact_candidates(&challenge);
        let mut skipped: Vec<(usize, String)> = skipped_codes.into_iter().map(|(i, c)| (i, c.to_string())).collect();
        let mut chosen: Option<(usize, &Requirement, Plan, Response)> = None;
        let mut first_denied: Option<(&Requirement, Plan)> = None;
        let mut facts_by_network: Vec<(String, ChainFacts)> = Vec::new();
        for r in candidates {
            let index = challenge.accepts.iter().position(|a| std::ptr::eq(a, r)).unwrap_or(0);
            let Some(caip2) = r.caip2.clone() else {
                skipped.push((index, "X402_NETWORK_UNSUPPORTED".into()));
                continue;
            };
            if r.fee_payer.is_none() {
                skipped.push((index, "X402_FEE_PAYER_MISSING".into()));
                continue;
            }
            if self.pay.max_amount.is_some_and(|m| r.amount > m) {
                skipped.push((index, "X402_OVER_MAX_AMOUNT".into()));
                continue;
            }
            // One genesis check and one blockhash per network, however many
            // options name it.
            let facts = match facts_by_network.iter().find(|(n, _)| *n == caip2) {
                Some((_, f)) => f.clone(),
                None => {
                    let f = match self.chain_facts(&caip2) {
                        Ok(f) => Ok(f),
                        Err(f) if f.exit == exit::REFUSED => Err(f.code),
                        Err(f) => return Err(f),
                    };
                    facts_by_network.push((caip2.clone(), f.clone()));
                    f
                }
            };
            let (blockhash, last_valid_block_height) = match facts {
                Ok(f) => f,
                Err(code) => {
                    skipped.push((index, code));
                    continue;
                }
            };
            let plan = Plan { index, caip2, blockhash, last_valid_block_height };
            let intent = self.intent(&challenge, r, &plan, &req.url, idempotency_key);
            let preview = self.signer_call(&Request::Preview { intent })?;
            match &preview {
                Response::Decision { decision, .. } if decision != "deny" && decision != "expire" => {
                    chosen = Some((index, r, plan, preview));
                    break;
                }
                Response::Decision { reason_code, .. } => {
                    skipped.push((index, reason_code.clone()));
                    if first_denied.is_none() {
                        first_denied = Some((r, plan));
                    }
                }
                _ => return Err(error("IPC_UNEXPECTED", "the signer answered a preview with something else")),
            }
        }
        let Some((_, requirement, plan, preview)) = chosen else {
            let code = skipped.first().map(|(_, c)| c.clone()).unwrap_or_else(|| "X402_NO_PAYABLE_OPTION".into());
            if let (Some((r, plan)), false) = (first_denied, dry_run) {
                // Submit the first option the policy denies, so that the
                // refusal is decided, recorded and explainable by request
                // id (a denial reserves nothing and signs nothing).
                let intent = self.intent(&challenge, r, &plan, &req.url, idempotency_key);
                if let Response::Decision { request_id: Some(id), decision, reason_code, .. } =
                    self.signer_call(&Request::Submit { intent })?
                {
                    let mut f = not_paid(first, &code, "no payment option the policy could allow".into(), skipped);
                    f.payment = Some(Paid {
                        request_id: id,
                        requirement: r.clone(),
                        network: plan.caip2.clone(),
                        transaction_sig: None,
                        receipt_verified: false,
                        decision,
                        reason_code,
                    });
                    return Ok(f);
                }
            }
            return Ok(not_paid(first, &code, "no payment option the policy could allow".into(), skipped));
        };
        if dry_run {
            let (decision, reason_code) = match &preview {
                Response::Decision { decision, reason_code, .. } => (decision.clone(), reason_code.clone()),
                _ => Default::default(),
            };
            return Ok(Fetched {
                response: first,
                outcome: "dry_run",
                exit: exit::NOT_PAID,
                code: None,
                detail: "dry run: nothing was signed".into(),
                payment: Some(Paid {
                    request_id: String::new(),
                    requirement: requirement.clone(),
                    network: plan.caip2.clone(),
                    transaction_sig: None,
                    receipt_verified: false,
                    decision,
                    reason_code,
                }),
                skipped,
            });
        }
        self.pay_with(req, first, &challenge, requirement, &plan, idempotency_key, skipped)
    }

    #[allow(clippy::too_many_arguments)]
    fn pay_with(
        &self,
        req: &Outgoing,
        first: HttpResponse,
        challenge: &Challenge,
        requirement: &Requirement,
        plan: &Plan,
        idempotency_key: &str,
        skipped: Vec<(usize, String)>,
    ) -> Result<Fetched, Failure> {
        let intent = self.intent(challenge, requirement, plan, &req.url, idempotency_key);
        let mut answer = self.signer_call(&Request::Submit { intent })?;
        let Response::Decision { request_id: Some(id), state, .. } = &answer else {
            let (code, detail) = match &answer {
                Response::Decision { reason_code, detail, .. } => (reason_code.clone(), detail.clone()),
                _ => ("IPC_UNEXPECTED".into(), String::new()),
            };
            return Ok(Fetched {
                response: first,
                outcome: "refused",
                exit: exit::REFUSED,
                code: Some(code),
                detail,
                payment: None,
                skipped,
            });
        };
        let id = id.clone();
        if crate::exit::undecided(state) && self.pay.wait > 0 {
            eprintln!("keyward: waiting up to {} s for a person to approve request {id}", self.pay.wait);
            let deadline = Instant::now() + Duration::from_secs(self.pay.wait);
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(250));
                answer = self.signer_call(&Request::Status { request_id: id.clone() })?;
                // Approved or signing is not an answer yet: keep polling.
                if !matches!(&answer, Response::Decision { state, .. } if crate::exit::undecided(state)) {
                    break;
                }
            }
        }
        let Response::Decision { state, decision, reason_code, detail, transaction, public_key, .. } = answer else {
            return Err(error("IPC_UNEXPECTED", "the signer answered with something else"));
        };
        let mut paid = Paid {
            request_id: id.clone(),
            requirement: requirement.clone(),
            network: plan.caip2.clone(),
            transaction_sig: None,
            receipt_verified: false,
            decision,
            reason_code: reason_code.clone(),
        };
        let (Some(tx), Some(public)) = (transaction, public_key) else {
            let waiting = crate::exit::undecided(&state);
            return Ok(Fetched {
                response: first,
                outcome: if waiting { "not_paid" } else { "refused" },
                exit: if waiting || state == "Expired" { exit::NOT_PAID } else { exit::REFUSED },
                code: Some(if waiting { "X402_APPROVAL_PENDING".into() } else { reason_code }),
                detail: if waiting { format!("request {id} still waits for a person") } else { detail },
                payment: Some(paid),
                skipped,
            });
        };
        let message = check_signed(&tx, &public, requirement, plan)?;
        let (name, value) = x402::payment_header(challenge, requirement, &tx);
        let mut retry = req.clone();
        retry.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        retry.headers.push((name.to_string(), value));
        let second = self.http.send(&retry)?;
        let receipt = x402::parse_receipt(challenge.version, |n| second.header(n)).ok().flatten();
        if let Some(r) = receipt.as_ref().filter(|r| r.success) {
            paid.transaction_sig = Some(r.transaction.clone());
            paid.receipt_verified = receipt_verifies(&message, requirement, &r.transaction);
            if paid.receipt_verified {
                let report =
                    Request::Settle { request_id: id.clone(), settled: true, receipt: Some(r.transaction.clone()) };
                if let Err(f) = self.signer_call(&report) {
                    eprintln!("keyward: {}: the settlement could not be reported: {}", f.code, f.message);
                }
            } else {
                eprintln!(
                    "keyward: X402_RECEIPT_INVALID: the receipt is not the fee payer's signature over our transaction"
                );
            }
        }
        if second.status == 402 {
            // Never pay twice for one request: a changed price or a loop is
            // reported, and the signed transaction stays with its reservation.
            let changed = x402::parse_challenge(|n| second.header(n), &second.body)
                .ok()
                .and_then(|c| c.accepts.get(plan.index).cloned())
                .is_some_and(|r2| {
                    (r2.amount, &r2.pay_to, &r2.asset, &r2.network)
                        != (requirement.amount, &requirement.pay_to, &requirement.asset, &requirement.network)
                });
            let code = if changed { "X402_CHALLENGE_CHANGED" } else { "X402_PAYMENT_NOT_ACCEPTED" };
            return Ok(Fetched {
                response: second,
                outcome: "not_paid",
                exit: exit::NOT_PAID,
                code: Some(code.into()),
                detail: "the server answered 402 again after payment; keyward does not pay twice".into(),
                payment: Some(paid),
                skipped,
            });
        }
        let exit = if (200..300).contains(&second.status) { exit::DELIVERED } else { exit::HTTP_ERROR };
        Ok(Fetched {
            response: second,
            outcome: "paid",
            exit,
            code: None,
            detail: String::new(),
            payment: Some(paid),
            skipped,
        })
    }
}

/// Checks the signer's transaction against the challenge entry: the
/// signer builds it, but the client checks the bytes it is about to send.
fn check_signed(tx: &str, public_hex: &str, r: &Requirement, plan: &Plan) -> Result<Vec<u8>, Failure> {
    let bad = |what: &str| error("X402_SIGNER_MISMATCH", format!("the signed transaction differs: {what}"));
    let wire = base64::engine::general_purpose::STANDARD.decode(tx).map_err(|_| bad("not base64"))?;
    let (sigs, message) = solana_codec::decode_transaction(&wire).map_err(|_| bad("not a transaction"))?;
    let payee = Pubkey::from_base58(&r.pay_to).map_err(|_| bad("payee"))?;
    let t = solana_codec::parse_exact(&message, &payee).map_err(|e| bad(e.rule))?;
    let public = policy::unhex(public_hex).ok_or_else(|| bad("public key"))?;
    let fee_payer = r.fee_payer.as_deref().and_then(|f| Pubkey::from_base58(f).ok()).ok_or_else(|| bad("fee payer"))?;
    let blockhash = solana_codec::base58::decode(&plan.blockhash).map_err(|_| bad("blockhash"))?;
    let checks = [
        ("amount", t.amount == r.amount),
        ("mint", t.mint.to_base58() == r.asset),
        ("fee payer", t.fee_payer == fee_payer),
        ("authority", t.authority.0.as_slice() == public.as_slice()),
        ("blockhash", t.recent_blockhash.as_slice() == blockhash.as_slice()),
        ("memo", r.memo.as_ref().is_none_or(|m| m.as_bytes() == t.memo.as_slice())),
        ("fee payer slot", sigs.first() == Some(&[0u8; 64])),
    ];
    if let Some((what, _)) = checks.iter().find(|(_, ok)| !ok) {
        return Err(bad(what));
    }
    let ours: [u8; 64] = *sigs.get(1).ok_or_else(|| bad("signature"))?;
    let pk: [u8; 32] = public.try_into().map_err(|_| bad("public key"))?;
    sigverify::verify(&pk, &message, &ours).map_err(|_| bad("our signature does not verify"))?;
    Ok(message)
}

/// Whether the receipt's transaction id is the fee payer's signature over
/// exactly `message`: then the settled transaction is ours, byte for byte.
fn receipt_verifies(message: &[u8], r: &Requirement, transaction: &str) -> bool {
    let Some(fee_payer) = r.fee_payer.as_deref().and_then(|f| Pubkey::from_base58(f).ok()) else { return false };
    let Ok(sig) = solana_codec::base58::decode(transaction) else { return false };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else { return false };
    sigverify::verify(&fee_payer.0, message, &sig).is_ok()
}

fn fresh_idempotency_key(req: &Outgoing, key: &str) -> String {
    let mut nonce = [0u8; 16];
    let _ = getrandom::fill(&mut nonce);
    let mut h = Sha256::new();
    h.update(b"keyward/x402-fetch/v1\0");
    for part in [req.method.as_bytes(), req.url.as_bytes(), key.as_bytes(), &nonce] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    format!("x402-{}", policy::hex(&h.finalize()[..16]))
}

fn parse_header(h: &str) -> Result<(String, String), Failure> {
    let (k, v) = h.split_once(':').ok_or_else(|| error("CLI_INPUT", "a header is `Name: value`"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn summary(f: &Fetched) -> Value {
    let payment = f.payment.as_ref().map(|p| {
        json!({
            "request_id": p.request_id, "decision": p.decision, "reason_code": p.reason_code,
            "network": p.network, "amount_atomic": p.requirement.amount.to_string(),
            "asset": p.requirement.asset, "pay_to": p.requirement.pay_to, "fee_payer": p.requirement.fee_payer,
            "transaction": p.transaction_sig, "receipt_verified": p.receipt_verified,
        })
    });
    let skipped: Vec<Value> = f.skipped.iter().map(|(i, c)| json!({"index": i, "code": c})).collect();
    json!({"outcome": f.outcome, "status": f.response.status, "code": f.code, "detail": f.detail,
           "payment": payment, "skipped": skipped})
}

pub(crate) fn run(conn: &Connection, cmd: &X402Command, json_out: bool) -> ExitCode {
    let r = match cmd {
        X402Command::Fetch(a) => fetch(conn, a, json_out),
        X402Command::Proxy(a) => proxy(conn, a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if json_out {
                println!("{}", json!({"outcome": "error", "code": f.code, "detail": f.message}));
            }
            eprintln!("keyward: {}: {}", f.code, f.message);
            ExitCode::from(f.exit)
        }
    }
}

fn fetch(conn: &Connection, a: &FetchArgs, json_out: bool) -> Result<u8, Failure> {
    if origin(&a.url).is_none() {
        return Err(error("CLI_INPUT", "the URL must be http:// or https://"));
    }
    let body = match &a.data {
        Some(d) if d.starts_with('@') => read_bounded(std::path::Path::new(&d[1..]), bounded_read::REQUEST_BODY_FILE)?,
        Some(d) => d.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let headers = a.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
    let req = Outgoing { method: a.method.to_ascii_uppercase(), url: a.url.clone(), headers, body };
    let payer = Payer { conn, pay: &a.pay, http: Http::new(&a.pay)?, session: Default::default() };
    let idempotency_key = a.idempotency_key.clone().unwrap_or_else(|| fresh_idempotency_key(&req, &a.pay.key));
    let f = payer.fetch(&req, a.dry_run, &idempotency_key)?;
    let s = summary(&f);
    if json_out {
        let mut s = s;
        match String::from_utf8(f.response.body.clone()) {
            Ok(text) => s["body"] = json!(text),
            Err(_) => s["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&f.response.body)),
        }
        println!("{s}");
    } else {
        if f.outcome != "free" {
            eprintln!("keyward: x402: {}", human(&f));
        }
        let deliver = f.outcome != "dry_run";
        if deliver {
            match &a.output {
                Some(p) => std::fs::write(p, &f.response.body)
                    .map_err(|e| error("CLI_OUTPUT", format!("{}: {}", p.display(), e.kind())))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&f.response.body)
                        .and_then(|()| out.flush())
                        .map_err(|_| error("CLI_OUTPUT", "stdout"))?;
                }
            }
        }
    }
    Ok(f.exit)
}

/// One line for a person (stderr).
fn human(f: &Fetched) -> String {
    let mut s = f.outcome.to_string();
    if let Some(p) = &f.payment {
        s += &format!(
            ": {} atomic units of {} to {} on {} (fee payer {}); decision {} ({})",
            p.requirement.amount,
            display_safe(&p.requirement.asset, 64),
            display_safe(&p.requirement.pay_to, 64),
            p.network,
            display_safe(p.requirement.fee_payer.as_deref().unwrap_or("-"), 64),
            p.decision,
            p.reason_code
        );
        if let Some(t) = &p.transaction_sig {
            s += &format!("; transaction {} (receipt verified: {})", display_safe(t, 100), p.receipt_verified);
        }
    }
    if let Some(c) = &f.code {
        s += &format!("; {c}: {}", f.detail);
    }
    for (i, c) in &f.skipped {
        s += &format!("; option {i} skipped: {c}");
    }
    s
}

// ---------------------------------------------------------------------------
// The proxy.

/// Hop-by-hop headers (RFC 9110 §7.6.1) and ones the proxy sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

fn proxy(conn: &Connection, a: &ProxyArgs) -> Result<u8, Failure> {
    let addr: std::net::SocketAddr =
        a.listen.parse().map_err(|_| error("CLI_INPUT", "--listen must be an IP address and port"))?;
    if !addr.ip().is_loopback() {
        return Err(error("CLI_INPUT", "the proxy listens on loopback only (it spends on the caller's behalf)"));
    }
    if let Some(u) = &a.upstream
        && origin(u).is_none()
    {
        return Err(error("CLI_INPUT", "--upstream must be an http(s) origin"));
    }
    let listener = TcpListener::bind(addr).map_err(|e| error("CLI_LISTEN", format!("{}: {}", a.listen, e.kind())))?;
    let local = listener.local_addr().map_err(|e| error("CLI_LISTEN", e.kind().to_string()))?;
    println!("{}", json!({"listening": local.to_string()}));
    let _ = std::io::stdout().flush();
    let payer = Payer { conn, pay: &a.pay, http: Http::new(&a.pay)?, session: Default::default() };
    let mut served = 0u64;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // One request at a time: payments are serialised, which keeps the
        // proxy's spend order the order agents asked in.
        if let Err(f) = serve_one(&payer, a.upstream.as_deref(), stream) {
            eprintln!("keyward: proxy: {}: {}", f.code, f.message);
        }
        served += 1;
        if a.max_requests > 0 && served >= a.max_requests {
            break;
        }
    }
    Ok(exit::DELIVERED)
}

/// Reads one request (head and Content-Length body) from an agent; `url`
/// is the request target as sent.
fn read_request(stream: &mut TcpStream) -> Result<Outgoing, Failure> {
    let bad = |m: &str| error("PROXY_BAD_REQUEST", m.to_string());
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|_| bad("socket"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).map_err(|_| bad("read failed"))?;
        if n == 0 {
            return Err(bad("connection closed before a request"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = parsed.method.unwrap_or("GET").to_string();
                let target = parsed.path.unwrap_or("/").to_string();
                let hs: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                if hs.iter().any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding")) {
                    return Err(bad("chunked request bodies are not supported"));
                }
                let len: usize = hs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse().map_err(|_| bad("bad Content-Length")))
                    .transpose()?
                    .unwrap_or(0);
                if len > MAX_PROXY_REQUEST {
                    return Err(bad("request body too large"));
                }
                let mut body = buf[head_len..].to_vec();
                while body.len() < len {
                    let n = stream.read(&mut chunk).map_err(|_| bad("read failed"))?;
                    if n == 0 {
                        return Err(bad("truncated body"));
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(len);
                return Ok(Outgoing { method, url: target, headers: hs, body });
            }
            Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => continue,
            _ => return Err(bad("not an HTTP/1.1 request head")),
        }
    }
}

fn write_response(stream: &mut TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        if !HOP_BY_HOP.contains(&k.to_ascii_lowercase().as_str()) && !v.contains(['\r', '\n']) {
            head += &format!("{k}: {v}\r\n");
        }
    }
    head += &format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
    let _ = stream.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        402 => "Payment Required",
        404 => "Not Found",
        405 => "Method Not Allowed",
        502 => "Bad Gateway",
        _ => "",
    }
}

fn serve_one(payer: &Payer<'_>, upstream: Option<&str>, mut stream: TcpStream) -> Result<(), Failure> {
    let Outgoing { method, url: target, headers, body } = match read_request(&mut stream) {
        Ok(r) => r,
        Err(f) => {
            write_response(&mut stream, 400, &[("X-Keyward-Code".into(), f.code.clone())], b"bad request\n");
            return Err(f);
        }
    };
    if method.eq_ignore_ascii_case("CONNECT") {
        let h = [("X-Keyward-Code".to_string(), "PROXY_CONNECT_UNSUPPORTED".to_string())];
        write_response(
            &mut stream,
            405,
            &h,
            b"keyward pays only what it can read: use http:// targets or base-URL mode\n",
        );
        return Ok(());
    }
    let url = if origin(&target).is_some() {
        target
    } else if let Some(u) = upstream {
        format!("{}{}", u.trim_end_matches('/'), if target.starts_with('/') { target } else { format!("/{target}") })
    } else {
        write_response(&mut stream, 400, &[], b"no --upstream: send absolute-form request targets\n");
        return Ok(());
    };
    let forward: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&k.as_str()) && k != "host" && k != "proxy-authorization"
        })
        .collect();
    let req = Outgoing { method, url, headers: forward, body };
    let key = fresh_idempotency_key(&req, &payer.pay.key);
    match payer.fetch(&req, false, &key) {
        Ok(f) => {
            let mut hs = f.response.headers.clone();
            hs.push(("X-Keyward-Outcome".into(), f.outcome.into()));
            if let Some(c) = &f.code {
                hs.push(("X-Keyward-Code".into(), c.clone()));
            }
            write_response(&mut stream, f.response.status, &hs, &f.response.body);
            Ok(())
        }
        Err(f) => {
            let hs = [("X-Keyward-Code".to_string(), f.code.clone())];
            write_response(&mut stream, 502, &hs, format!("{}: {}\n", f.code, f.message).as_bytes());
            Err(f)
        }
    }
}
