//! Test-side client: a tiny HTTP(S) client and an x402 "exact" transaction
//! built with the Solana crates (not keyward's codec).
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use solana_address::Address;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::{VersionedMessage, v0};
use solana_signature::Signature;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;

pub const MEMO: Address = solana_address::address!("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
pub const TOKEN: Address = solana_address::address!("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    /// base64 JSON header, decoded.
    pub fn b64_header(&self, name: &str) -> Option<Value> {
        let raw = STANDARD.decode(self.header(name)?).expect("base64");
        Some(serde_json::from_slice(&raw).expect("JSON in header"))
    }
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(n) = resp.parse(raw).expect("parse response") else {
        panic!("incomplete response");
    };
    HttpResponse {
        status: resp.code.expect("status"),
        headers: resp
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        body: raw[n..].to_vec(),
    }
}

fn request_bytes(host: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request to `base` ("http://127.0.0.1:P"), plain TCP.
pub fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let host = base.strip_prefix("http://").expect("http base");
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&request_bytes(host, method, path, headers, body)).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

/// One request to `base` ("https://localhost:P"), trusting only `ca_pem`.
pub fn https(
    base: &str,
    ca_pem: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use rustls::pki_types::pem::PemObject as _;
    let hostport = base.strip_prefix("https://").expect("https base");
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM")).expect("add CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client conn");
    let tcp = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&request_bytes(hostport, method, path, headers, body)).expect("TLS write");
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => panic!("TLS read: {e}"),
    }
    parse_response(&raw)
}

/// JSON-RPC call against the harness RPC endpoint.
pub fn rpc(rpc_url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let r = http(rpc_url, "POST", "/", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 200);
    r.json()
}

pub fn latest_blockhash(rpc_url: &str) -> Hash {
    let v = rpc(rpc_url, "getLatestBlockhash", json!([{"commitment": "finalized"}]));
    v["result"]["value"]["blockhash"].as_str().unwrap().parse().unwrap()
}

pub fn ata(owner: &Address, mint: &Address) -> Address {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(owner, mint, &TOKEN)
}

/// What the test client puts into the transaction.
#[derive(Debug, Clone)]
pub struct TxParams {
    pub fee_payer: Address,
    pub mint: Address,
    pub pay_to: Address,
    pub amount: u64,
    pub decimals: u8,
    pub memo: Vec<u8>,
    pub blockhash: Hash,
    /// Replace the source ATA (e.g. with the fee payer, hostile).
    pub source_override: Option<Address>,
}

/// The reference 4-instruction v0 transaction [CU limit 20000, CU price 1,
/// TransferChecked, Memo], partially signed by `client` (index 1).
pub fn build_tx(client: &Keypair, p: &TxParams) -> VersionedTransaction {
    let source = p.source_override.unwrap_or_else(|| ata(&client.pubkey(), &p.mint));
    let ixs: Vec<Instruction> = vec![
        solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(20_000),
        solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_price(1),
        spl_token_interface::instruction::transfer_checked(
            &TOKEN,
            &source,
            &p.mint,
            &ata(&p.pay_to, &p.mint),
            &client.pubkey(),
            &[],
            p.amount,
            p.decimals,
        )
        .unwrap(),
        Instruction::new_with_bytes(MEMO, &p.memo, vec![]),
    ];
    let msg = v0::Message::try_compile(&p.fee_payer, &ixs, &[], p.blockhash).unwrap();
    let message = VersionedMessage::V0(msg);
    let bytes = message.serialize();
    // Partial signing: every required slot zero except the client's own.
    let n = usize::from(message.header().num_required_signatures);
    let mut signatures = vec![Signature::default(); n];
    let me = message.static_account_keys().iter().position(|k| *k == client.pubkey()).expect("client key in message");
    signatures[me] = client.sign_message(&bytes);
    VersionedTransaction { signatures, message }
}

pub fn tx_base64(tx: &VersionedTransaction) -> String {
    STANDARD.encode(wincode::serialize(tx).unwrap())
}

/// v2 `PAYMENT-SIGNATURE` header value.
pub fn v2_header(required: &Value, accepted: &Value, tx: &VersionedTransaction) -> String {
    let payload = json!({
        "x402Version": 2,
        "resource": required["resource"],
        "accepted": accepted,
        "payload": {"transaction": tx_base64(tx)},
    });
    STANDARD.encode(payload.to_string())
}

/// v1 `X-PAYMENT` header value.
pub fn v1_header(accepted: &Value, tx: &VersionedTransaction) -> String {
    let payload = json!({
        "x402Version": 1,
        "scheme": accepted["scheme"],
        "network": accepted["network"],
        "payload": {"transaction": tx_base64(tx)},
    });
    STANDARD.encode(payload.to_string())
}
