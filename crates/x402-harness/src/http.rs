//! A minimal HTTP/1.1 server: std `TcpListener`, one thread per connection,
//! `httparse` for the request head, `Content-Length` bodies only, one request
//! per connection (`Connection: close`). Optional TLS with rustls (ring).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path without the query string.
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// Case-insensitive header lookup (first match).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status).with_header("Content-Type", "application/json").with_body(value.to_string().into_bytes())
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn with_body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()));
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        402 => "Payment Required",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

pub(crate) type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// A running server; stopped (and its accept thread joined) on drop.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Starts serving `listener` (already bound) with `handler`.
    pub(crate) fn start(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Handler,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let accept_thread =
            std::thread::Builder::new().name(format!("x402-harness-accept-{}", addr.port())).spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let handler = Arc::clone(&handler);
                    let tls = tls.clone();
                    let _ = std::thread::Builder::new()
                        .name("x402-harness-conn".into())
                        .spawn(move || serve_connection(stream, tls, &handler));
                }
            })?;
        Ok(Server { addr, stop, accept_thread: Some(accept_thread) })
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(15)));
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            let mut s = stream;
            handle_stream(&mut s, handler);
        }
        Some(cfg) => {
            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            let mut s = rustls::StreamOwned::new(conn, stream);
            handle_stream(&mut s, handler);
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

fn handle_stream<S: Read + Write>(s: &mut S, handler: &Handler) {
    let response = match read_request(s) {
        Ok(Some(req)) => handler(req),
        Ok(None) => return,
        Err(status) => Response::new(status),
    };
    let _ = response.write_to(s);
}

/// Reads one request. `Ok(None)`: the peer closed before sending anything.
fn read_request<S: Read>(s: &mut S) -> Result<Option<Request>, u16> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(_) if buf.is_empty() => return Ok(None),
            Err(_) => return Err(400),
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(400);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or("").to_owned();
                let target = req.path.unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/").to_owned();
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding")) {
                    return Err(400);
                }
                let content_length = match headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
                    Some((_, v)) => v.trim().parse::<usize>().map_err(|_| 400u16)?,
                    None => 0,
                };
                if content_length > MAX_BODY {
                    return Err(413);
                }
                let mut body = buf[head_len..].to_vec();
                while body.len() < content_length {
                    let n = s.read(&mut chunk).map_err(|_| 400u16)?;
                    if n == 0 {
                        return Err(400);
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(content_length);
                return Ok(Some(Request { method, path, headers, body }));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err(413);
                }
            }
            Err(_) => return Err(400),
        }
    }
}

/// A fresh CA and a "localhost"/127.0.0.1 leaf certificate it issued.
/// Returns (server config, CA PEM).
pub(crate) fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "keyward x402-harness test CA");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("leaf params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    leaf_params.distinguished_name = dn;
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf cert");

    let chain = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server cert");
    (Arc::new(config), ca_pem)
}
