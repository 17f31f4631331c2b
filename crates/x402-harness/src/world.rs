//! A whole x402 payment world for tests, benchmarks and the red-team
//! runner: this harness (HTTPS with its own CA, facilitator, RPC, Solana
//! VM), a real `keywardd` whose policy trusts this harness's origin and fee
//! payer, a funded `solana` key `hot`, and `keyward x402 fetch` to drive it.

use std::path::{Path, PathBuf};
use std::process::Command;

use daemon_harness::{Daemon, Options, TEST_FEE_PAYER, TEST_POLICY};
use ipc::api::{Request, Response};
use serde_json::{Value, json};

use crate::{Harness, RouteSpec};

/// A payee that is none of the signer's keys (its token account exists).
pub const PAYEE: &str = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";

/// The harness, the signer and the client.
#[derive(Debug)]
pub struct World {
    pub h: Harness,
    pub d: Daemon,
    /// The harness CA (PEM), for `--cacert`.
    pub ca: PathBuf,
    keyward: PathBuf,
    /// Key `hot`'s address (base58).
    pub ours: String,
}

impl World {
    /// Starts everything. `edit_policy` sees the harness test policy (compat
    /// profile) before this harness's fee payer and origin are written into
    /// it, so it can also replace them.
    pub fn start(keywardd: &Path, keyward: &Path, edit_policy: impl FnOnce(String) -> String) -> Result<World, String> {
        let h = Harness::start(true);
        let policy = edit_policy(TEST_POLICY.replace("profile = \"strict\"", "profile = \"compat\""))
            .replace(TEST_FEE_PAYER, &h.facilitator_pubkey())
            .replace("https://facilitator.example", &h.resource_base());
        let d = Daemon::try_start(keywardd, &Options { policy, ..Options::default() })
            .map_err(|e| format!("cannot start keywardd: {e}"))?;
        let public = match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
            Ok(Response::Key { public_key, .. }) => public_key,
            other => return Err(format!("cannot create the key: {other:?}")),
        };
        let raw: [u8; 32] = hex32(&public).ok_or("not a public key")?;
        let ours = bs58::encode(raw).into_string();
        h.fund(&ours, 10_000_000);
        h.create_ata(PAYEE);
        let ca = d.dir.path().join("ca.pem");
        std::fs::write(&ca, h.ca_pem().unwrap_or_default()).map_err(|e| e.to_string())?;
        Ok(World { h, d, ca, keyward: keyward.to_path_buf(), ours })
    }

    /// `keyward --json x402 fetch` of `path` with key `hot`: (exit status,
    /// the JSON summary).
    pub fn fetch(&self, path: &str, extra: &[&str]) -> (i32, Value) {
        let out = Command::new(&self.keyward)
            .arg("--socket")
            .arg(&self.d.socket)
            .arg("--pin")
            .arg(&self.d.pin_file)
            .args(["--json", "x402", "fetch"])
            .arg(format!("{}{path}", self.h.resource_base()))
            .args(["--key", "hot", "--rpc", &self.h.rpc_url(), "--cacert"])
            .arg(&self.ca)
            .args(extra)
            .output();
        match out {
            Ok(o) => (o.status.code().unwrap_or(-1), serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)),
            Err(e) => (-1, json!({"spawn": e.to_string()})),
        }
    }

    /// Adds route `path` paying `amount` to [`PAYEE`], after `edit`.
    pub fn route(&self, path: &str, version: u8, amount: u64, edit: impl FnOnce(&mut RouteSpec)) {
        let mut spec = RouteSpec::new(&self.h, version, amount, PAYEE);
        edit(&mut spec);
        self.h.route(path, spec);
    }

    /// Signatures the signer has made (audited `signed` events).
    pub fn signed(&self) -> usize {
        self.d.events("signed").len()
    }

    /// Today's reserved or spent USDC (atomic units, all lanes).
    pub fn spent(&self) -> String {
        self.d.spent_today("usdc")
    }
}

/// The code a refused fetch reports: its own, or the first skipped option's.
pub fn code(v: &Value) -> String {
    v["code"].as_str().or(v["skipped"][0]["code"].as_str()).unwrap_or_default().to_string()
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
