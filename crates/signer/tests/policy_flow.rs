//! The policy issue end to end: a real `keywardd` (its own swtpm, vault,
//! socket, ledger and audit log) deciding, prompting, approving, signing and
//! recording. Each test names the red-team scenario or requirement it proves.

use std::time::Duration;

use daemon_harness::{Daemon, Options, TEST_POLICY, x402_intent};
use ipc::api::{Request, Response};
use ipc::client::CallError;
use serde_json::{Value, json};

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");

/// The client binary, built beside keywardd (the workspace builds both).
fn keyward() -> std::path::PathBuf {
    std::path::Path::new(KEYWARDD).with_file_name("keyward")
}

fn strict() -> Options {
    Options {
        policy: TEST_POLICY.replace("confirm_new_destination = false", "confirm_new_destination = true"),
        ..Options::default()
    }
}

/// A daemon with key `hot` created.
fn daemon(options: &Options) -> Daemon {
    let d = Daemon::start(std::path::Path::new(KEYWARDD), options);
    match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { .. }) => {}
        other => panic!("key create: {other:?}"),
    }
    d
}

/// (request_id, state, reason_code, layer, signature) of a decision.
fn submit(d: &Daemon, intent: Value) -> (String, String, String, String, Option<String>) {
    match d.call(&Request::Submit { intent }) {
        Ok(Response::Decision { request_id, state, reason_code, layer, signature, .. }) => {
            (request_id.unwrap_or_default(), state, reason_code, layer, signature)
        }
        other => panic!("submit: {other:?}"),
    }
}

fn api_code(r: Result<Response, CallError>) -> String {
    match r {
        Err(CallError::Api(e)) => e.code,
        other => panic!("expected an API refusal, got {other:?}"),
    }
}

fn show_hash(d: &Daemon, id: &str) -> String {
    match d.call(&Request::Show { request_id: id.into() }) {
        Ok(Response::Pending { requests }) => requests[0].intent_hash.clone(),
        other => panic!("show: {other:?}"),
    }
}

/// RT-001: a request whose context asks for a person is never auto-signed,
/// however small; it waits in AwaitUserApproval, and the audit says why.
#[test]
fn context_approval_beats_every_limit_rt001() {
    let d = daemon(&Options::default());
    let mut i = x402_intent("rt001", 1);
    i["context_requires_approval"] = json!(true);
    let (id, state, code, layer, sig) = submit(&d, i);
    assert_eq!(
        (state.as_str(), code.as_str(), layer.as_str()),
        ("AwaitUserApproval", "PROMPT_CONTEXT_REQUIRED", "context")
    );
    assert!(sig.is_none());
    let decided = d.events("intent_decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["request_id"], id.as_str());
    assert!(d.events("signed").is_empty(), "nothing was signed");
    // The same intent without the context flag would have been auto-approved.
    let (_, state, code, _, sig) = submit(&d, x402_intent("rt001-control", 1));
    assert_eq!((state.as_str(), code.as_str()), ("Submitted", "ALLOW_AUTO_POLICY_OK"));
    assert!(sig.is_some());
}

/// RT-002 (a user limit prompts, never auto-approves) and RT-003 (a global
/// cap denies, and no approval can lift it).
#[test]
fn user_limits_prompt_and_global_caps_deny_rt002_rt003() {
    let d = daemon(&Options::default());
    let (id, state, code, layer, sig) = submit(&d, x402_intent("rt002", 100_001));
    assert_eq!(
        (state.as_str(), code.as_str(), layer.as_str()),
        ("AwaitUserApproval", "PROMPT_USER_LIMIT_EXCEEDED", "user_profile")
    );
    assert!(sig.is_none());
    let trace = &d.events("intent_decided")[0]["trace"];
    assert!(trace.as_array().unwrap().iter().any(|t| t == "user.per_tx_limit=fail"), "{trace}");
    let (_, state, code, layer, sig) = submit(&d, x402_intent("rt003", 1_000_001));
    assert_eq!((state.as_str(), code.as_str(), layer.as_str()), ("Denied", "DENY_GLOBAL_LIMIT", "global_defaults"));
    assert!(sig.is_none());
    // The prompted request can be approved and signed; the denied one cannot.
    let hash = show_hash(&d, &id);
    assert!(matches!(d.call(&Request::Approve { request_id: id, intent_hash: hash }),
        Ok(Response::Decision { state, signature: Some(_), .. }) if state == "Submitted"));
    assert_eq!(d.events("signed").len(), 1);
}

/// RT-008 and RT-009: an untrusted payment authority and a scheme outside
/// the allowlist are denied with their codes, for every lane.
#[test]
fn untrusted_authority_and_unapproved_scheme_are_denied_rt008_rt009() {
    let d = daemon(&Options::default());
    let mut rogue = x402_intent("rt008", 10);
    rogue["x402"]["payment_authority"] = json!("https://facilitator.example.attacker.net");
    let (_, state, code, _, _) = submit(&d, rogue);
    assert_eq!((state.as_str(), code.as_str()), ("Denied", "DENY_UNTRUSTED_FACILITATOR_OR_PAYEE"));
    let mut scheme = x402_intent("rt009", 10);
    scheme["x402"]["scheme_id"] = json!("v3-evm-exact");
    scheme["actor"] = json!("user");
    let (_, state, code, _, _) = submit(&d, scheme);
    assert_eq!((state.as_str(), code.as_str()), ("Denied", "DENY_UNAPPROVED_SCHEME"));
    assert!(d.events("signed").is_empty());
    let codes: Vec<String> =
        d.events("intent_decided").iter().map(|e| e["reason_code"].as_str().unwrap().to_string()).collect();
    assert_eq!(codes, ["DENY_UNTRUSTED_FACILITATOR_OR_PAYEE", "DENY_UNAPPROVED_SCHEME"]);
}

/// RT-010: an approval binds to the intent hash the approver saw. A stale
/// hash is refused; a mutated intent (amount up, new payee, new authority,
/// new scheme) under the same idempotency key is refused as a replay, and
/// under a new key it is a new request that needs its own approval.
#[test]
fn approvals_bind_to_the_intent_hash_rt010() {
    let d = daemon(&strict());
    let original = x402_intent("rt010", 50_000);
    let (id, state, code, _, _) = submit(&d, original.clone());
    assert_eq!((state.as_str(), code.as_str()), ("AwaitUserApproval", "PROMPT_HIGH_RISK_CONFIRMATION"));
    let hash = show_hash(&d, &id);
    // An approval for another intent's hash does not approve this one.
    let mut bigger = original.clone();
    bigger["amount_atomic"] = json!("60000");
    bigger["max_amount_atomic"] = json!("60000");
    let other_hash = match d.call(&Request::Preview { intent: bigger.clone() }) {
        Ok(Response::Decision { intent_hash: Some(h), .. }) => h,
        other => panic!("{other:?}"),
    };
    assert_ne!(other_hash, hash);
    assert_eq!(
        api_code(d.call(&Request::Approve { request_id: id.clone(), intent_hash: other_hash })),
        "API_APPROVAL_HASH_MISMATCH"
    );
    // Material changes under the same idempotency key: refused as replays.
    let mutations: [(&str, Value); 4] = [
        ("amount_atomic", json!("60000")),
        ("payee", json!("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")),
        ("x402", json!({"scheme_id": "v2-solana-exact", "payment_authority": "https://facilitator.example/other"})),
        ("x402", json!({"scheme_id": "v1-solana-exact", "payment_authority": "https://facilitator.example"})),
    ];
    for (field, v) in &mutations {
        let mut m = original.clone();
        m[*field] = v.clone();
        if *field == "amount_atomic" {
            m["max_amount_atomic"] = v.clone();
        }
        let (_, state, code, _, sig) = submit(&d, m);
        assert_eq!((state.as_str(), code.as_str(), sig), ("Denied", "DENY_REPLAY", None), "{field}");
    }
    // Under a new key the mutated intent is a new request: prompted again.
    bigger["idempotency_key"] = json!("rt010-b");
    let (id2, state, _, _, _) = submit(&d, bigger);
    assert_eq!(state, "AwaitUserApproval");
    assert_ne!(id2, id);
    // The genuine approval signs exactly the original intent.
    let (sig, pk, tx) = match d.call(&Request::Approve { request_id: id.clone(), intent_hash: hash }) {
        Ok(Response::Decision { signature: Some(s), public_key: Some(p), transaction: Some(t), state, .. })
            if state == "Submitted" =>
        {
            (s, p, t)
        }
        other => panic!("{other:?}"),
    };
    use base64::Engine as _;
    let wire = base64::engine::general_purpose::STANDARD.decode(tx).unwrap();
    let (sigs, message) = solana_codec::decode_transaction(&wire).unwrap();
    assert_eq!(sigs[0], [0u8; 64], "the fee payer's slot is left empty");
    assert_eq!(policy::hex(&sigs[1]), sig, "our slot holds the signature");
    let payee = solana_codec::Pubkey::from_base58(daemon_harness::TEST_PAYEE).unwrap();
    let built = solana_codec::parse_exact(&message, &payee).expect("keyward's exact layout");
    assert_eq!((built.amount, built.payee, built.authority.0.to_vec()), (50_000, payee, policy::unhex(&pk).unwrap()));
    let vk = crypto::ed25519::Ed25519VerificationKey::from_raw(&policy::unhex(&pk).unwrap()).unwrap();
    let sig = crypto::ed25519::Ed25519Signature::from_raw(&policy::unhex(&sig).unwrap()).unwrap();
    crypto::ed25519::verify(&vk, &message, &sig).expect("the signature verifies over the approved transaction");
    assert!(d.events("approval_refused").iter().any(|e| e["code"] == "API_APPROVAL_HASH_MISMATCH"));
    assert_eq!(d.events("signed").len(), 1, "only the approved intent was signed");
}

/// RT-007 through the daemon (the decision table's row 9): approving a
/// denied or already signed request, denying a signed one, settling one
/// that was never signed: each is refused with DENY_INVALID_TRANSITION,
/// audited, and changes nothing. An agent can never approve at all.
#[test]
fn invalid_transitions_fail_closed_and_are_audited_rt007() {
    let d = daemon(&Options::default());
    let (denied, ..) = submit(&d, x402_intent("rt007-a", 5_000_000));
    let (signed, state, ..) = submit(&d, x402_intent("rt007-b", 10));
    assert_eq!(state, "Submitted");
    let (pending, state, ..) = submit(&d, x402_intent("rt007-c", 200_000));
    assert_eq!(state, "AwaitUserApproval");
    let attempts = [
        Request::Approve { request_id: denied.clone(), intent_hash: "00".into() },
        Request::Approve { request_id: signed.clone(), intent_hash: "00".into() },
        Request::Deny { request_id: signed.clone(), reason: None },
        Request::Settle { request_id: pending.clone(), settled: true, receipt: None },
    ];
    for a in &attempts {
        assert_eq!(api_code(d.call(a)), "DENY_INVALID_TRANSITION", "{a:?}");
    }
    assert_eq!(d.events("transition_refused").len(), attempts.len());
    let state_of = |id: &str| match d.call(&Request::Status { request_id: id.into() }) {
        Ok(Response::Decision { state, .. }) => state,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (state_of(&denied), state_of(&signed), state_of(&pending)),
        ("Denied".into(), "Submitted".into(), "AwaitUserApproval".into())
    );
    assert_eq!(d.events("signed").len(), 1);
}

/// A prompted request whose approval window closes expires (row 10).
#[test]
fn a_pending_request_expires_at_its_deadline() {
    let d = daemon(&Options::default());
    let mut i = x402_intent("ttl", 200_000);
    i["request_expiry"] = json!(ipc::client::unix_now() + 2);
    let (id, state, ..) = submit(&d, i);
    assert_eq!(state, "AwaitUserApproval");
    std::thread::sleep(Duration::from_millis(2_300));
    match d.call(&Request::Status { request_id: id.clone() }) {
        Ok(Response::Decision { state, reason_code, .. }) => {
            assert_eq!((state.as_str(), reason_code.as_str()), ("Expired", "EXPIRE_TTL_REACHED"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        api_code(d.call(&Request::Approve { request_id: id, intent_hash: "00".into() })),
        "DENY_INVALID_TRANSITION"
    );
}

/// RT-018: secrets pasted into free text never reach the audit log or the
/// ledger, and no record anywhere holds key material.
#[test]
fn secrets_in_free_text_are_redacted_rt018() {
    let d = daemon(&Options::default());
    let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    let token = "sk_live_51H8xYzAbCdEfGh12QrStUv";
    let mut i = x402_intent("rt018", 200_000);
    i["rationale"] = json!(format!("my wallet seed is {seed} and the api token {token}"));
    let (id, ..) = submit(&d, i);
    let _ = d.call(&Request::Deny { request_id: id.clone(), reason: Some(format!("leaked {seed}")) });
    let audit = std::fs::read_to_string(&d.audit_log).unwrap();
    let ledger = std::fs::read_to_string(d.state_dir.join("ledger.jsonl")).unwrap();
    for text in [&audit, &ledger] {
        assert!(!text.contains(seed) && !text.contains(token), "a secret reached a log");
        assert!(text.contains("[REDACTED]"));
    }
    match d.call(&Request::Show { request_id: id }) {
        Ok(Response::Pending { requests }) => assert!(!requests[0].rationale.contains(seed)),
        other => panic!("{other:?}"),
    }
}

/// Caps hold under concurrency and every request has exactly one decision
/// record: 64 clients × 500 requests against a daily cap that admits 20 000.
#[test]
fn the_daily_cap_holds_under_64_concurrent_clients() {
    let policy = Options::default()
        .policy
        .replace("daily_cap = 100000000", "daily_cap = 20000000")
        .replace("daily_limit = 50000000", "daily_limit = 20000000");
    let d = daemon(&Options { policy, daemon: "max_connections = 128".into(), ..Options::default() });
    let (clients, each, amount) = (64usize, 500usize, 1_000u64);
    let results: Vec<(usize, usize)> = std::thread::scope(|s| {
        let d = &d;
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let mut client = d.client().expect("connect");
                    let (mut signed, mut denied) = (0, 0);
                    for n in 0..each {
                        match client.call(&Request::Submit { intent: x402_intent(&format!("c{c}-{n}"), amount) }) {
                            Ok(Response::Decision { signature: Some(_), .. }) => signed += 1,
                            Ok(Response::Decision { reason_code, .. }) => {
                                assert_eq!(reason_code, "DENY_GLOBAL_LIMIT");
                                denied += 1
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    (signed, denied)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let signed: usize = results.iter().map(|r| r.0).sum();
    let denied: usize = results.iter().map(|r| r.1).sum();
    assert_eq!(signed + denied, clients * each);
    assert_eq!(signed as u64 * amount, 20_000_000, "exactly the cap was approved, never more");
    let decided = d.events("intent_decided");
    assert_eq!(decided.len(), clients * each, "one decision record per request");
    let ids: std::collections::HashSet<&str> = decided.iter().map(|e| e["request_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), clients * each);
    assert_eq!(d.events("signed").len(), signed);
}

/// kill -9 under load, restart: the audit chain verifies, the ledger is
/// consistent, and no idempotency key is ever signed twice.
#[test]
fn kill_9_under_load_then_restart_keeps_chain_ledger_and_idempotency() {
    let mut d = daemon(&Options::default());
    let answered: Vec<(String, String)> = std::thread::scope(|s| {
        let d = &d;
        let workers: Vec<_> = (0..8)
            .map(|c| {
                s.spawn(move || {
                    let mut got = Vec::new();
                    let Ok(mut client) = d.client() else { return got };
                    for n in 0.. {
                        let key = format!("k9-{c}-{n}");
                        match client.call(&Request::Submit { intent: x402_intent(&key, 10) }) {
                            Ok(Response::Decision { signature: Some(sig), .. }) => got.push((key, sig)),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    got
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(800));
        let pid = d.pid().unwrap();
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(answered.len() > 20, "load was running: {}", answered.len());
    let _ = d.signal_and_wait(9, Duration::from_secs(5));
    d.launch().expect("keywardd restarts after kill -9");
    d.verify_audit().expect("the audit log verifies against its anchor after kill -9 and restart");
    // Every answered key, resubmitted, returns the same signature and is not signed again.
    let signed_before = d.events("signed").len();
    for (key, sig) in answered.iter().take(50) {
        match d.call(&Request::Submit { intent: x402_intent(key, 10) }) {
            Ok(Response::Decision { signature: Some(s), .. }) => assert_eq!(&s, sig, "{key}"),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(d.events("signed").len(), signed_before, "no request was signed twice");
    let mut per_hash = std::collections::HashMap::<String, usize>::new();
    for e in d.events("signed") {
        *per_hash.entry(e["intent_hash"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert!(per_hash.values().all(|&n| n == 1), "one signature per intent");
    // The ledger's total matches the signatures it holds.
    match d.call(&Request::DaemonStatus) {
        Ok(Response::Daemon { status }) => {
            let spent: u64 = status["spent_today"]["usdc"]["all"].as_str().unwrap().parse().unwrap();
            assert_eq!(spent, 10 * per_hash.len() as u64, "{status}");
        }
        other => panic!("{other:?}"),
    }
}

/// Audit tampering is detected by `keyward audit verify` at the first
/// touched record, and keywardd refuses to start on a broken chain.
#[test]
fn audit_tampering_is_detected() {
    let mut d = daemon(&Options::default());
    let (id, ..) = submit(&d, x402_intent("tamper", 10));
    let log = d.audit_log.clone();
    let verify = || {
        std::process::Command::new(keyward()).args(["--json", "audit", "verify", "--log"]).arg(&log).output().unwrap()
    };
    assert!(verify().status.success());
    let explain = std::process::Command::new(keyward())
        .args(["audit", "explain", &id, "--log"])
        .arg(&d.audit_log)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(text.contains("auto-approved") && text.contains("signed with key hot"), "{text}");
    let _ = d.signal_and_wait(daemon_harness::SIGTERM, Duration::from_secs(10));
    let original = std::fs::read_to_string(&d.audit_log).unwrap();
    let line = original.lines().position(|l| l.contains("\"intent_decided\"")).unwrap() + 1;
    std::fs::write(&d.audit_log, original.replacen("\"amount_atomic\":\"10\"", "\"amount_atomic\":\"1\"", 1)).unwrap();
    let out = verify();
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["code"].as_str(), report["line"].as_u64()), (Some("KW_AUDIT_CHAIN_BROKEN"), Some(line as u64)));
    let e = d.launch().expect_err("keywardd must not append to a broken chain");
    assert!(e.0.contains("KW_AUDIT_CHAIN_BROKEN"), "{}", e.0);
}
