#![forbid(unsafe_code)]
//! x402 test harness: real components for keyward's x402 tests.
//!
//! - a local **x402 resource server** (v1 and v2 wire formats, plain HTTP or
//!   HTTPS with a fresh test CA),
//! - an in-process **facilitator** whose verification rules are written from the
//!   x402 spec independently of keyward's transaction builder
//!   ([`facilitator`](crate) rules: see `src/facilitator.rs`),
//! - a local **Solana JSON-RPC endpoint**,
//!
//! all backed by a real Solana VM (`litesvm`) running the real SPL Token program.
//! Test support only: production code never links this crate.

mod facilitator;
mod http;
mod rpc;
pub mod world;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use litesvm::LiteSVM;
use serde_json::{Map, Value, json};
use sha2::Digest as _;
use solana_account::Account;
use solana_address::Address;
use solana_keypair::Keypair;
use solana_program_option::COption;
use solana_program_pack::Pack as _;
use solana_signer::Signer as _;
use spl_token_interface::state::{Account as TokenAccount, AccountState, Mint};

use crate::http::{Request, Response, Server};

/// Devnet USDC mint address (6 decimals, SPL Token program).
pub const DEVNET_USDC_MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
/// Devnet's genesis hash (what `getGenesisHash` answers by default).
pub const DEVNET_GENESIS_HASH: &str = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG";
/// v1 network name for devnet.
pub const V1_DEVNET: &str = "solana-devnet";
/// v2 (CAIP-2) network id for devnet.
pub const V2_DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// Decimals of the harness mint.
pub const MINT_DECIMALS: u8 = 6;
/// Lamports the facilitator fee payer starts with (100 SOL).
pub const FEE_PAYER_START_LAMPORTS: u64 = 100_000_000_000;

/// How a route misbehaves (to test client defences).
#[derive(Debug, Clone, PartialEq)]
pub enum Hostile {
    /// Behaves honestly.
    None,
    /// A request carrying a payment header gets a fresh 402 with this amount
    /// instead of being served (nothing is settled).
    AmountChangesOnRetry(u64),
    /// Answers 402 even after a valid payment (a 402 loop); never settles.
    AlwaysPaymentRequired,
    /// The challenge is a v2 `PAYMENT-REQUIRED` header plus a JSON body that is
    /// a v1 challenge (network `solana-devnet`) with a different amount
    /// (`amount + 1`). Payments are processed against the v2 requirement.
    InconsistentV2,
    /// These `accepts` entries are prepended (e.g. scheme "upto").
    ExtraAccepts(Vec<Value>),
}

/// A paid route.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// 1 or 2.
    pub version: u8,
    /// "exact".
    pub scheme: String,
    /// v1 "solana-devnet" / v2 "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".
    pub network: String,
    /// Atomic units; 0 makes a free route (served without payment).
    pub amount: u64,
    /// Payee wallet (owner), base58.
    pub pay_to: String,
    /// Mint, base58 (defaults to the harness mint).
    pub asset: String,
    /// `None` = the facilitator's key; `Some(x)` = advertise `x` (hostile).
    pub fee_payer: Option<String>,
    /// `extra.memo`.
    pub memo: Option<String>,
    /// More `extra` keys, e.g. `{"features":{...}}`.
    pub extra: Map<String, Value>,
    pub max_timeout_seconds: u64,
    /// The 200 body.
    pub body: String,
    pub hostile: Hostile,
}

impl RouteSpec {
    /// An honest "exact" route on devnet paying `amount` of the harness mint to `pay_to`.
    pub fn new(harness: &Harness, version: u8, amount: u64, pay_to: &str) -> RouteSpec {
        RouteSpec {
            version,
            scheme: "exact".to_owned(),
            network: if version == 1 { V1_DEVNET } else { V2_DEVNET }.to_owned(),
            amount,
            pay_to: pay_to.to_owned(),
            asset: harness.mint(),
            fee_payer: None,
            memo: None,
            extra: Map::new(),
            max_timeout_seconds: 60,
            body: r#"{"paid":true}"#.to_owned(),
            hostile: Hostile::None,
        }
    }
}

/// A transaction the facilitator landed.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub path: String,
    /// Base58; the fee payer's signature = the transaction signature.
    pub signature: String,
    /// The client (transfer authority), base58.
    pub payer: String,
    pub amount: u64,
    /// The exact message bytes that were signed.
    pub message: Vec<u8>,
    /// Lamports the fee payer paid for this transaction.
    pub fee: u64,
}

struct State {
    svm: LiteSVM,
    routes: HashMap<String, RouteSpec>,
    settlements: Vec<Settlement>,
    hits: HashMap<String, usize>,
    last_headers: HashMap<String, Vec<(String, String)>>,
    settled_messages: HashSet<[u8; 32]>,
    genesis_hash: String,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    fee_payer: Keypair,
    mint: Address,
    resource_base: String,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler thread must not wedge the whole harness.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The x402 resource server + facilitator + Solana RPC, on a litesvm VM.
/// Servers stop when this is dropped.
pub struct Harness {
    // Dropped first: stops the servers.
    resource_server: Server,
    rpc_server: Server,
    inner: Arc<Inner>,
    ca_pem: Option<String>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("resource_base", &self.inner.resource_base)
            .field("resource_port", &self.resource_server.port())
            .field("rpc_port", &self.rpc_server.port())
            .field("fee_payer", &self.inner.fee_payer.pubkey().to_string())
            .field("mint", &self.inner.mint.to_string())
            .field("tls", &self.ca_pem.is_some())
            .finish()
    }
}

fn parse_address(s: &str) -> Address {
    s.parse().unwrap_or_else(|_| panic!("not a base58 32-byte address: {s:?}"))
}

fn token_ata(owner: &Address, mint: &Address) -> Address {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner,
        mint,
        &facilitator::TOKEN_PROGRAM,
    )
}

impl Harness {
    /// Starts the VM (mint at the devnet USDC address, a funded facilitator fee
    /// payer) and two servers on 127.0.0.1: the resource server (+ facilitator)
    /// and the RPC endpoint. `tls`: the resource server speaks HTTPS with a
    /// certificate for "localhost"/127.0.0.1 issued by a fresh CA ([`Harness::ca_pem`]).
    pub fn start(tls: bool) -> Harness {
        let mut svm = LiteSVM::new();
        let fee_payer = Keypair::new();
        svm.set_account(
            fee_payer.pubkey(),
            Account {
                lamports: FEE_PAYER_START_LAMPORTS,
                data: Vec::new(),
                owner: solana_sdk_ids::system_program::ID,
                executable: false,
                rent_epoch: 0,
            },
        )
        .expect("fund fee payer");
        let mint = parse_address(DEVNET_USDC_MINT);
        let mint_authority = Keypair::new().pubkey();
        let mut data = vec![0u8; Mint::LEN];
        Mint::pack(
            Mint {
                mint_authority: COption::Some(mint_authority),
                supply: 0,
                decimals: MINT_DECIMALS,
                is_initialized: true,
                freeze_authority: COption::None,
            },
            &mut data,
        )
        .expect("pack mint");
        let lamports = svm.minimum_balance_for_rent_exemption(Mint::LEN);
        svm.set_account(
            mint,
            Account { lamports, data, owner: facilitator::TOKEN_PROGRAM, executable: false, rent_epoch: 0 },
        )
        .expect("create mint");

        let resource_listener = TcpListener::bind("127.0.0.1:0").expect("bind resource server");
        let rpc_listener = TcpListener::bind("127.0.0.1:0").expect("bind rpc server");
        let resource_port = resource_listener.local_addr().expect("addr").port();
        let (tls_config, ca_pem) = if tls {
            let (cfg, pem) = http::tls_config();
            (Some(cfg), Some(pem))
        } else {
            (None, None)
        };
        let resource_base = if tls {
            format!("https://localhost:{resource_port}")
        } else {
            format!("http://127.0.0.1:{resource_port}")
        };
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                svm,
                routes: HashMap::new(),
                settlements: Vec::new(),
                hits: HashMap::new(),
                last_headers: HashMap::new(),
                settled_messages: HashSet::new(),
                genesis_hash: DEVNET_GENESIS_HASH.to_owned(),
            }),
            fee_payer,
            mint,
            resource_base,
        });
        let i1 = Arc::clone(&inner);
        let resource_server =
            Server::start(resource_listener, tls_config, Arc::new(move |req| handle_resource(&i1, req)))
                .expect("start resource server");
        let i2 = Arc::clone(&inner);
        let rpc_server =
            Server::start(rpc_listener, None, Arc::new(move |req| rpc::handle(&i2, req))).expect("start rpc server");
        Harness { resource_server, rpc_server, inner, ca_pem }
    }

    /// "http://127.0.0.1:P" or "https://localhost:P".
    pub fn resource_base(&self) -> String {
        self.inner.resource_base.clone()
    }

    /// "http://127.0.0.1:R".
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_server.port())
    }

    /// PEM of the CA that issued the resource server's certificate (TLS mode).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// What `getGenesisHash` answers.
    pub fn genesis_hash(&self) -> String {
        self.inner.lock().genesis_hash.clone()
    }

    pub fn set_genesis_hash(&self, base58: &str) {
        self.inner.lock().genesis_hash = base58.to_owned();
    }

    /// The facilitator's fee-payer key, base58.
    pub fn facilitator_pubkey(&self) -> String {
        self.inner.fee_payer.pubkey().to_string()
    }

    /// The mint, base58 (devnet USDC's address).
    pub fn mint(&self) -> String {
        self.inner.mint.to_string()
    }

    /// `owner`'s associated token account (SPL Token) for the mint, base58.
    pub fn ata(&self, owner: &str) -> String {
        token_ata(&parse_address(owner), &self.inner.mint).to_string()
    }

    /// Creates `owner`'s ATA if needed and adds `amount` to it (and to the supply).
    pub fn fund(&self, owner: &str, amount: u64) {
        let owner = parse_address(owner);
        let mut st = self.inner.lock();
        set_token_balance(&mut st.svm, &self.inner.mint, &owner, Some(amount));
    }

    /// Creates an empty ATA for `owner` (no-op if it exists).
    pub fn create_ata(&self, owner: &str) {
        let owner = parse_address(owner);
        let mut st = self.inner.lock();
        set_token_balance(&mut st.svm, &self.inner.mint, &owner, None);
    }

    /// Token balance of `owner`'s ATA; 0 if none.
    pub fn token_balance(&self, owner: &str) -> u64 {
        let ata = token_ata(&parse_address(owner), &self.inner.mint);
        let st = self.inner.lock();
        read_token_amount(&st.svm, &ata).unwrap_or(0)
    }

    /// Lamports of any account; 0 if none.
    pub fn lamports(&self, address: &str) -> u64 {
        let a = parse_address(address);
        self.inner.lock().svm.get_balance(&a).unwrap_or(0)
    }

    /// Adds or replaces a paid route.
    pub fn route(&self, path: &str, spec: RouteSpec) {
        self.inner.lock().routes.insert(path.to_owned(), spec);
    }

    /// Every transaction the facilitator landed, in order.
    pub fn settlements(&self) -> Vec<Settlement> {
        self.inner.lock().settlements.clone()
    }

    /// Requests seen on `path` (any method, any outcome, including 404s).
    pub fn hits(&self, path: &str) -> usize {
        self.inner.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// Headers of the last request seen on `path`, in wire order.
    pub fn last_request_headers(&self, path: &str) -> Vec<(String, String)> {
        self.inner.lock().last_headers.get(path).cloned().unwrap_or_default()
    }

    /// The VM's current blockhash, base58 (what `getLatestBlockhash` answers).
    pub fn latest_blockhash(&self) -> String {
        self.inner.lock().svm.latest_blockhash().to_string()
    }

    /// Moves the VM to a new blockhash; transactions on the old one no longer land.
    pub fn advance_blockhash(&self) {
        self.inner.lock().svm.expire_blockhash();
    }

    /// The requirement JSON (one `accepts` entry) a route advertises, as the
    /// facilitator will compare it.
    pub fn requirement(&self, path: &str) -> Option<Value> {
        let spec = self.inner.lock().routes.get(path).cloned()?;
        Some(requirement_json(&self.inner, path, &spec))
    }
}

fn read_token_amount(svm: &LiteSVM, ata: &Address) -> Option<u64> {
    let acc = svm.get_account(ata)?;
    TokenAccount::unpack(&acc.data).ok().map(|a| a.amount)
}

/// Creates the ATA if needed; adds `add` to its balance and the mint supply.
fn set_token_balance(svm: &mut LiteSVM, mint: &Address, owner: &Address, add: Option<u64>) {
    let ata = token_ata(owner, mint);
    let existing = read_token_amount(svm, &ata);
    let Some(amount) = add else {
        if existing.is_some() {
            return;
        }
        return set_token_balance(svm, mint, owner, Some(0));
    };
    let new_amount = existing.unwrap_or(0).checked_add(amount).expect("balance overflow");
    let mut data = vec![0u8; TokenAccount::LEN];
    TokenAccount::pack(
        TokenAccount {
            mint: *mint,
            owner: *owner,
            amount: new_amount,
            delegate: COption::None,
            state: AccountState::Initialized,
            is_native: COption::None,
            delegated_amount: 0,
            close_authority: COption::None,
        },
        &mut data,
    )
    .expect("pack token account");
    let lamports = svm.minimum_balance_for_rent_exemption(TokenAccount::LEN);
    svm.set_account(
        ata,
        Account { lamports, data, owner: facilitator::TOKEN_PROGRAM, executable: false, rent_epoch: 0 },
    )
    .expect("set token account");
    // Keep the mint supply consistent.
    let mut mint_acc = svm.get_account(mint).expect("mint exists");
    let mut m = Mint::unpack(&mint_acc.data).expect("mint");
    m.supply = m.supply.checked_add(amount).expect("supply overflow");
    Mint::pack(m, &mut mint_acc.data).expect("pack mint");
    svm.set_account(*mint, mint_acc).expect("set mint");
}

// ---------------------------------------------------------------- resource server

fn resource_url(inner: &Inner, path: &str) -> String {
    format!("{}{}", inner.resource_base, path)
}

/// One `accepts` entry for `spec`.
fn requirement_json(inner: &Inner, path: &str, spec: &RouteSpec) -> Value {
    let mut extra = Map::new();
    extra.insert(
        "feePayer".to_owned(),
        Value::String(spec.fee_payer.clone().unwrap_or_else(|| inner.fee_payer.pubkey().to_string())),
    );
    if let Some(memo) = &spec.memo {
        extra.insert("memo".to_owned(), Value::String(memo.clone()));
    }
    for (k, v) in &spec.extra {
        extra.insert(k.clone(), v.clone());
    }
    if spec.version == 1 {
        json!({
            "scheme": spec.scheme,
            "network": spec.network,
            "maxAmountRequired": spec.amount.to_string(),
            "asset": spec.asset,
            "payTo": spec.pay_to,
            "resource": resource_url(inner, path),
            "description": format!("x402-harness route {path}"),
            "mimeType": "application/json",
            "maxTimeoutSeconds": spec.max_timeout_seconds,
            "extra": extra,
        })
    } else {
        json!({
            "scheme": spec.scheme,
            "network": spec.network,
            "amount": spec.amount.to_string(),
            "asset": spec.asset,
            "payTo": spec.pay_to,
            "maxTimeoutSeconds": spec.max_timeout_seconds,
            "extra": extra,
        })
    }
}

fn accepts(inner: &Inner, path: &str, spec: &RouteSpec) -> Vec<Value> {
    let mut out = Vec::new();
    if let Hostile::ExtraAccepts(extra) = &spec.hostile {
        out.extend(extra.iter().cloned());
    }
    out.push(requirement_json(inner, path, spec));
    out
}

fn payment_header_name(version: u8) -> &'static str {
    if version == 1 { "X-PAYMENT" } else { "PAYMENT-SIGNATURE" }
}

fn receipt_header_name(version: u8) -> &'static str {
    if version == 1 { "X-PAYMENT-RESPONSE" } else { "PAYMENT-RESPONSE" }
}

fn v1_challenge_body(inner: &Inner, path: &str, spec: &RouteSpec, error: &str) -> Value {
    json!({
        "x402Version": 1,
        "error": error,
        "accepts": accepts(inner, path, spec),
    })
}

/// A 402 challenge for `spec` (v1: JSON body; v2: `PAYMENT-REQUIRED` header).
fn challenge(inner: &Inner, path: &str, spec: &RouteSpec, error: &str) -> Response {
    if spec.version == 1 {
        return Response::json(402, &v1_challenge_body(inner, path, spec, error));
    }
    let required = json!({
        "x402Version": 2,
        "error": error,
        "resource": {
            "url": resource_url(inner, path),
            "description": format!("x402-harness route {path}"),
            "mimeType": "application/json",
        },
        "accepts": accepts(inner, path, spec),
    });
    let header = STANDARD.encode(required.to_string());
    let body = if spec.hostile == Hostile::InconsistentV2 {
        let mut v1 = spec.clone();
        v1.version = 1;
        v1.network = V1_DEVNET.to_owned();
        v1.amount = spec.amount.saturating_add(1);
        v1.hostile = Hostile::None;
        v1_challenge_body(inner, path, &v1, "X-PAYMENT header is required")
    } else {
        json!({})
    };
    Response::json(402, &body).with_header("PAYMENT-REQUIRED", &header)
}

fn receipt(spec: &RouteSpec, value: &Value) -> (String, String) {
    (receipt_header_name(spec.version).to_owned(), STANDARD.encode(value.to_string()))
}

fn handle_resource(inner: &Inner, req: Request) -> Response {
    let path = req.path.clone();
    let mut st = inner.lock();
    *st.hits.entry(path.clone()).or_insert(0) += 1;
    st.last_headers.insert(path.clone(), req.headers.clone());
    let Some(spec) = st.routes.get(&path).cloned() else {
        return Response::json(404, &json!({"error": "not found"}));
    };
    // Amount 0: a free route (the unpaid baseline of the benchmarks).
    if spec.amount == 0 {
        return Response::new(200).with_header("Content-Type", "application/json").with_body(spec.body.into_bytes());
    }
    let payment = req
        .header(payment_header_name(spec.version))
        .or_else(|| req.header(payment_header_name(if spec.version == 1 { 2 } else { 1 })))
        .map(str::to_owned);
    let Some(payment) = payment else {
        let error = format!("{} header is required", payment_header_name(spec.version));
        return challenge(inner, &path, &spec, &error);
    };
    match &spec.hostile {
        Hostile::AmountChangesOnRetry(n) => {
            let mut changed = spec.clone();
            changed.amount = *n;
            return challenge(inner, &path, &changed, "price changed");
        }
        Hostile::AlwaysPaymentRequired => {
            let error = format!("{} header is required", payment_header_name(spec.version));
            return challenge(inner, &path, &spec, &error);
        }
        _ => {}
    }
    let requirement = requirement_json(inner, &path, &spec);
    match settle(inner, &mut st, &path, &spec, &requirement, &payment) {
        Ok(s) => {
            let (k, v) = receipt(
                &spec,
                &json!({
                    "success": true,
                    "transaction": s.signature,
                    "network": spec.network,
                    "payer": s.payer,
                }),
            );
            let content_type = if spec.body.trim_start().starts_with(['{', '[']) {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            Response::new(200)
                .with_header("Content-Type", content_type)
                .with_header(&k, &v)
                .with_body(spec.body.clone().into_bytes())
        }
        Err((reason, detail)) => {
            let mut r = json!({
                "success": false,
                "errorReason": reason,
                "transaction": "",
                "network": spec.network,
            });
            if let Some(d) = detail {
                r["errorMessage"] = Value::String(d);
            }
            let (k, v) = receipt(&spec, &r);
            challenge(inner, &path, &spec, &reason).with_header(&k, &v)
        }
    }
}

/// Verify, then land the transaction. Errors: (reason, detail).
fn settle(
    inner: &Inner,
    st: &mut State,
    path: &str,
    spec: &RouteSpec,
    requirement: &Value,
    header: &str,
) -> Result<Settlement, (String, Option<String>)> {
    let facilitator_key = inner.fee_payer.pubkey();
    let verified = facilitator::verify(spec, requirement, &facilitator_key, header).map_err(|r| (r, None))?;
    let hash: [u8; 32] = sha2::Sha256::digest(&verified.message).into();
    if st.settled_messages.contains(&hash) {
        return Err(("duplicate_settlement".to_owned(), None));
    }
    let mut tx = verified.tx;
    tx.signatures[0] = inner.fee_payer.sign_message(&verified.message);
    let signature = tx.signatures[0].to_string();
    match st.svm.send_transaction(tx) {
        Ok(meta) => {
            st.settled_messages.insert(hash);
            let s = Settlement {
                path: path.to_owned(),
                signature,
                payer: verified.payer.to_string(),
                amount: verified.amount,
                message: verified.message,
                fee: meta.fee,
            };
            st.settlements.push(s.clone());
            Ok(s)
        }
        Err(failed) => Err((
            "invalid_exact_svm_payload_transaction_execution_failed".to_owned(),
            Some(format!("{:?}; logs: {:?}", failed.err, failed.meta.logs)),
        )),
    }
}
