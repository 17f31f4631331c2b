//! A paid request on loopback (402 → intent → signature → payment header →
//! facilitator on a Solana VM → 200) against the same request unpaid, both
//! through one long-running `keyward x402 proxy` (so process start-up is in
//! neither figure), same run, same servers.
//!
//! `cargo bench -p cli --bench x402_paid`; under `cargo test --benches` it
//! makes a few requests only, so the code cannot rot.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon_harness::{Daemon, Options, TEST_FEE_PAYER, TEST_POLICY};
use ipc::api::{Request, Response};
use x402_harness::{Harness, RouteSpec};

const KEYWARD: &str = env!("CARGO_BIN_EXE_keyward");
const PAYEE: &str = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";

fn get(addr: &str, path: &str) -> (Duration, bool) {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    (start.elapsed(), out.starts_with("HTTP/1.1 200"))
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 200 } else { 3 };
    let h = Harness::start(false);
    let policy = TEST_POLICY
        .replace("profile = \"strict\"", "profile = \"compat\"")
        .replace(TEST_FEE_PAYER, &h.facilitator_pubkey())
        .replace("https://facilitator.example", &h.resource_base())
        .replace("daily_cap = 100000000", "daily_cap = 18000000000000000000")
        .replace("daily_limit = 50000000", "daily_limit = 18000000000000000000");
    let keywardd = Path::new(KEYWARD).with_file_name("keywardd");
    let d = Daemon::start(&keywardd, &Options { policy, ..Options::default() });
    let public = match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { public_key, .. }) => public_key,
        other => panic!("{other:?}"),
    };
    let raw: [u8; 32] = policy::unhex(&public).unwrap().try_into().unwrap();
    h.fund(&solana_codec::Pubkey::new(raw).to_base58(), 1_000_000_000_000);
    h.create_ata(PAYEE);
    h.route("/paid", RouteSpec::new(&h, 2, 1_000, PAYEE));
    h.route("/free", RouteSpec::new(&h, 2, 0, PAYEE));

    let mut proxy = Command::new(KEYWARD)
        .arg("--socket")
        .arg(&d.socket)
        .arg("--pin")
        .arg(&d.pin_file)
        .args(["x402", "proxy", "--listen", "127.0.0.1:0", "--upstream", &h.resource_base()])
        .args(["--key", "hot", "--rpc", &h.rpc_url()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(proxy.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = serde_json::from_str::<serde_json::Value>(&line).unwrap()["listening"].as_str().unwrap().to_string();

    let (mut free, mut paid) = (Vec::new(), Vec::new());
    for _ in 0..n {
        // Interleaved, so that drift affects both alike.
        let (t, ok) = get(&addr, "/free");
        assert!(ok, "the free request is served");
        free.push(t);
        let (t, ok) = get(&addr, "/paid");
        assert!(ok, "the paid request is served");
        paid.push(t);
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert_eq!(h.settlements().len(), n, "every paid request landed once");
    let (f, p) = (median_ms(free), median_ms(paid));
    println!(
        "x402 through the proxy, {n} requests each, median: unpaid {f:.2} ms, paid {p:.2} ms, ratio {:.1}x",
        p / f
    );
}
