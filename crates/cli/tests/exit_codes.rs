//! Exit statuses of the intent commands (issue 14, item 8), with the real
//! `keyward` binary against a real `keywardd` (its own swtpm, vault, socket,
//! ledger and audit log): 0 only when what was asked for happened, so that
//! `keyward sign intent.json && broadcast` never broadcasts a denial.
//!
//! `keywardd` is found beside `keyward` (`cargo build -p signer --bins`;
//! `cargo test --workspace` builds both).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_harness::{DEFAULT_GRANTS, Daemon, Options, sign_intent, x402_intent};
use ipc::api::{Request, Response};
use serde_json::{Value, json};

const KEYWARD: &str = env!("CARGO_BIN_EXE_keyward");

const SIGNED: i32 = 0;
/// The same 0, for commands that record or read.
const OK: i32 = 0;
const ERROR: i32 = 1;
const DENIED: i32 = 2;
const EXPIRED: i32 = 3;
const PENDING: i32 = 4;
const SIGNING_FAILED: i32 = 5;

fn keywardd() -> PathBuf {
    Path::new(KEYWARD).with_file_name("keywardd")
}

/// A daemon (compat policy: small payments are auto-approved, payments over
/// the global cap of 1 000 000 are denied) with a `solana` key `hot` and a
/// `raw-ed25519` key `notary`, both granted to uid 0.
fn daemon() -> Daemon {
    let grants = DEFAULT_GRANTS.to_string() + "[[grant]]\nkey = \"notary\"\nuid = 0\nactions = [\"sign\"]\n";
    let d = Daemon::start(&keywardd(), &Options { grants, ..Options::default() });
    for (name, kind) in [("hot", "solana"), ("notary", "raw-ed25519")] {
        match d.call(&Request::KeyCreate { name: name.into(), kind: kind.into() }) {
            Ok(Response::Key { .. }) => {}
            other => panic!("key create {name}: {other:?}"),
        }
    }
    d
}

/// `keyward --socket … --pin … --json ARGS`, with `intent` (if any) written
/// to a file and its path appended.
fn keyward_cmd(d: &Daemon, args: &[&str], intent: Option<&Value>) -> Command {
    let mut c = Command::new(KEYWARD);
    c.arg("--socket").arg(&d.socket).arg("--pin").arg(&d.pin_file).arg("--json").args(args);
    if let Some(i) = intent {
        let file = d.dir.path().join(format!("intent-{}.json", i["idempotency_key"].as_str().unwrap()));
        std::fs::write(&file, i.to_string()).unwrap();
        c.arg(file);
    }
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn keyward(d: &Daemon, args: &[&str], intent: Option<&Value>) -> Output {
    keyward_cmd(d, args, intent).output().unwrap()
}

fn status(o: &Output) -> i32 {
    o.status.code().expect("keyward exited, not killed")
}

/// The JSON answer on stdout.
fn answer(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!("stdout {:?}, stderr {:?}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout {}\nstderr {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A payment a person must approve (the caller's context asks for one).
fn prompted(key: &str) -> Value {
    let mut i = x402_intent(key, 1_000);
    i["context_requires_approval"] = json!(true);
    i
}

/// (id, intent hash) of the `n`-th request waiting for a person, once listed.
fn pending_id(d: &Daemon, n: usize) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Response::Pending { requests }) = d.call(&Request::Approvals)
            && requests.len() >= n
        {
            let p = &requests[n - 1];
            return (p.request_id.clone(), p.intent_hash.clone());
        }
        assert!(Instant::now() < deadline, "request {n} never waited for a person");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sign_exits_0_only_with_a_signature_and_a_denial_is_never_broadcast() {
    let d = daemon();
    // Signed: 0, and the answer carries the signature.
    let ok = keyward(&d, &["sign"], Some(&x402_intent("ok-sign", 1_000)));
    assert_eq!(status(&ok), SIGNED, "{}", show(&ok));
    let v = answer(&ok);
    assert_eq!(v["state"], "Submitted");
    assert!(v["signature"].is_string(), "{v}");
    let ok = keyward(&d, &["submit"], Some(&x402_intent("ok-submit", 1_000)));
    assert_eq!(status(&ok), SIGNED, "{}", show(&ok));

    // Denied by the policy (over the global cap): 2, nothing signed.
    let denied = keyward(&d, &["sign"], Some(&x402_intent("too-much", 2_000_000)));
    assert_eq!(status(&denied), DENIED, "{}", show(&denied));
    let v = answer(&denied);
    assert_eq!((v["state"].as_str(), v["signature"].as_str()), (Some("Denied"), None), "{v}");
    let denied = keyward(&d, &["submit"], Some(&x402_intent("too-much-2", 2_000_000)));
    assert_eq!(status(&denied), DENIED, "{}", show(&denied));
    // Refused at admission (no grant for this key): a denial too.
    let mut ungranted = x402_intent("ungranted", 1_000);
    ungranted["key"] = json!("nobody-granted-this");
    let refused = keyward(&d, &["sign"], Some(&ungranted));
    assert_eq!(status(&refused), DENIED, "{}", show(&refused));
    assert_eq!(answer(&refused)["reason_code"], "DENY_KEY_NOT_GRANTED");

    // `keyward sign … && broadcast`: the broadcast runs after a signature only.
    let broadcast = |intent: &Value| {
        let file = d.dir.path().join(format!("sh-{}.json", intent["idempotency_key"].as_str().unwrap()));
        std::fs::write(&file, intent.to_string()).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg("\"$@\" >/dev/null && echo BROADCAST")
            .arg("sh")
            .arg(KEYWARD)
            .arg("--socket")
            .arg(&d.socket)
            .arg("--pin")
            .arg(&d.pin_file)
            .arg("sign")
            .arg(&file)
            .output()
            .unwrap();
        (status(&out), String::from_utf8_lossy(&out.stdout).contains("BROADCAST"))
    };
    assert_eq!(broadcast(&x402_intent("sh-denied", 2_000_000)), (DENIED, false));
    assert_eq!(broadcast(&prompted("sh-prompted")), (PENDING, false));
    assert_eq!(broadcast(&x402_intent("sh-signed", 1_000)), (SIGNED, true));

    // `preview` reports what would happen, with the same statuses.
    for (intent, want) in [
        (x402_intent("p-ok", 1_000), SIGNED),
        (x402_intent("p-deny", 2_000_000), DENIED),
        (prompted("p-prompt"), PENDING),
    ] {
        let out = keyward(&d, &["preview"], Some(&intent));
        assert_eq!(status(&out), want, "{}", show(&out));
    }

    // Errors are 1: an intent that is not JSON, a signer that is not there.
    let bad = d.dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = keyward_cmd(&d, &["sign"], None).arg(&bad).output().unwrap();
    assert_eq!(status(&out), ERROR, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KW_JSON_INVALID"), "{}", show(&out));
    // An intent naming a key twice is refused before it is sent (strict
    // JSON, as keywardd parses it).
    let twice = d.dir.path().join("twice.json");
    let text = serde_json::to_string(&x402_intent("twice", 1_000)).unwrap();
    std::fs::write(
        &twice,
        text.replacen("\"amount_atomic\":\"1000\"", "\"amount_atomic\":\"1000\",\"amount_atomic\":\"9\"", 1),
    )
    .unwrap();
    let out = keyward_cmd(&d, &["sign"], None).arg(&twice).output().unwrap();
    assert_eq!(status(&out), ERROR, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KW_JSON_DUPLICATE_KEY"), "{}", show(&out));
    let out = Command::new(KEYWARD)
        .arg("--socket")
        .arg(d.dir.path().join("no.sock"))
        .arg("--pin")
        .arg(&d.pin_file)
        .arg("ping")
        .output()
        .unwrap();
    assert_eq!(status(&out), ERROR, "{}", show(&out));
}

#[test]
fn undecided_and_expired_requests_have_their_own_statuses() {
    let d = daemon();
    // Waits for a person, not waited for: 4 ("not decided yet"), for
    // `submit` and `sign` alike, and `status ID` says the same.
    let out = keyward(&d, &["submit"], Some(&prompted("prompt-submit")));
    assert_eq!(status(&out), PENDING, "{}", show(&out));
    let id = answer(&out)["request_id"].as_str().unwrap().to_string();
    let out = keyward(&d, &["sign"], Some(&prompted("prompt-sign")));
    assert_eq!(status(&out), PENDING, "{}", show(&out));
    assert_eq!(answer(&out)["state"], "AwaitUserApproval");
    let out = keyward(&d, &["status", &id], None);
    assert_eq!(status(&out), PENDING, "{}", show(&out));

    // The wait runs out: 4, and stderr says so.
    let t = Instant::now();
    let out = keyward(&d, &["sign", "--wait", "1"], Some(&prompted("prompt-wait")));
    assert_eq!(status(&out), PENDING, "{}", show(&out));
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("still not decided"), "{}", show(&out));

    // Already expired when submitted: 3.
    let mut stale = x402_intent("stale", 1_000);
    stale["request_expiry"] = json!(ipc::client::unix_now() - 60);
    let out = keyward(&d, &["sign"], Some(&stale));
    assert_eq!(status(&out), EXPIRED, "{}", show(&out));
    assert_eq!(answer(&out)["reason_code"], "EXPIRE_TTL_REACHED");

    // Expires while `sign --wait` waits for a person: 3, before the wait ends.
    let mut short = prompted("expires-waiting");
    short["request_expiry"] = json!(ipc::client::unix_now() + 2);
    let t = Instant::now();
    let out = keyward(&d, &["sign", "--wait", "30"], Some(&short));
    assert_eq!(status(&out), EXPIRED, "{}", show(&out));
    assert_eq!(answer(&out)["state"], "Expired");
    assert!(t.elapsed() < Duration::from_secs(20), "the wait ended at the expiry, not at --wait");

    // Signing fails in the signer (a KES period on a raw key: KES keys are
    // signed by the operator tool): 5.
    let mut kes = sign_intent("notary", "kes-1", b"block header");
    kes["kes_period"] = json!(3);
    let out = keyward(&d, &["sign"], Some(&kes));
    assert_eq!(status(&out), SIGNING_FAILED, "{}", show(&out));
    let v = answer(&out);
    assert_eq!((v["state"].as_str(), v["reason_code"].as_str()), (Some("Failed"), Some("FAIL_SIGNING")), "{v}");
    let out = keyward(&d, &["status", v["request_id"].as_str().unwrap()], None);
    assert_eq!(status(&out), SIGNING_FAILED, "{}", show(&out));
}

#[test]
fn a_persons_answer_ends_the_wait_with_its_status() {
    let d = daemon();
    // Rejected by a person while `sign --wait` waits: 2; the rejection
    // itself succeeded (0); rejecting it again is a refusal (2).
    let waiting = keyward_cmd(&d, &["sign", "--wait", "60"], Some(&prompted("to-reject"))).spawn().unwrap();
    let (id, _) = pending_id(&d, 1);
    let deny = keyward(&d, &["approvals", "deny", &id], None);
    assert_eq!(status(&deny), OK, "{}", show(&deny));
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(status(&out), DENIED, "{}", show(&out));
    assert_eq!(answer(&out)["reason_code"], "DENY_USER_REJECTED");
    let again = keyward(&d, &["approvals", "deny", &id], None);
    assert_eq!(status(&again), DENIED, "{}", show(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("DENY_INVALID_TRANSITION"));
    let out = keyward(&d, &["status", &id], None);
    assert_eq!(status(&out), DENIED, "{}", show(&out));

    // Approved while it waits: `approve` exits 0 (signed), and so does the
    // waiting `sign`, with the signature.
    let waiting = keyward_cmd(&d, &["sign", "--wait", "60"], Some(&prompted("to-approve"))).spawn().unwrap();
    let (id, hash) = pending_id(&d, 1);
    let approve = keyward(&d, &["approvals", "approve", &id, "--intent-hash", &hash], None);
    assert_eq!(status(&approve), SIGNED, "{}", show(&approve));
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(status(&out), SIGNED, "{}", show(&out));
    assert!(answer(&out)["signature"].is_string());
    let out = keyward(&d, &["status", &id], None);
    assert_eq!(status(&out), SIGNED, "{}", show(&out));
    // Recording what became of it succeeds whatever it was: 0.
    let out = keyward(&d, &["settle", &id, "--failed"], None);
    assert_eq!(status(&out), OK, "{}", show(&out));
    assert_eq!(answer(&out)["state"], "Failed");
    // An unknown request is an error, not a refusal.
    let out = keyward(&d, &["status", "no-such-request"], None);
    assert_eq!(status(&out), ERROR, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("API_REQUEST_NOT_FOUND"));
}
