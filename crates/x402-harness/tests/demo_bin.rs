//! The `keyward-x402-demo` binary starts, prints its JSON line and serves.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn demo_binary_serves_three_routes() {
    let payer = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward-x402-demo"))
        .args(["--payer", payer, "--fund", "3000000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read JSON line");
    let info: Value = serde_json::from_str(&line).expect("JSON line");
    let base = info["resource_base"].as_str().unwrap().to_owned();
    assert_eq!(info["mint"], "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
    assert_eq!(info["genesis_hash"], "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG");

    let r = common::http(&base, "GET", "/weather", &[], b"");
    assert_eq!(r.status, 402);
    let req = r.b64_header("PAYMENT-REQUIRED").unwrap();
    assert_eq!(req["accepts"][0]["amount"], "10000");
    assert_eq!(req["accepts"][0]["payTo"], info["payee"]);
    assert_eq!(req["accepts"][0]["extra"]["feePayer"], info["fee_payer"]);
    let r = common::http(&base, "GET", "/premium", &[], b"");
    assert_eq!(r.b64_header("PAYMENT-REQUIRED").unwrap()["accepts"][0]["amount"], "2000000");
    let r = common::http(&base, "GET", "/v1/quote", &[], b"");
    assert_eq!(r.json()["accepts"][0]["maxAmountRequired"], "5000");

    let ata = common::ata(&payer.parse().unwrap(), &info["mint"].as_str().unwrap().parse().unwrap());
    let v =
        common::rpc(info["rpc_url"].as_str().unwrap(), "getTokenAccountBalance", serde_json::json!([ata.to_string()]));
    assert_eq!(v["result"]["value"]["amount"], "3000000");
    assert_eq!(v["result"]["value"]["uiAmountString"], "3");

    child.kill().expect("kill demo");
    let _ = child.wait();
}
