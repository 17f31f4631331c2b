//! Attacks through what a caller writes (issue 14, items 7 and 11): RT-033
//! (secrets smuggled into the journals through free text and identifiers)
//! and RT-034 (ambiguous requests: duplicate JSON keys, unknown fields),
//! against a real `keywardd` over its socket, as a compromised agent.

use daemon_harness::{Daemon, Options, x402_intent};
use ipc::api::{Request, Response};

use super::FnAttack;
use super::beside_me;
use crate::ledger::Probe;

pub(super) fn all() -> Vec<FnAttack> {
    vec![
        FnAttack {
            id: "RT-033",
            checks: &["free_text_redacted", "secret_identifier_refused"],
            attack: secrets_in_fields,
        },
        FnAttack {
            id: "RT-034",
            checks: &["duplicate_key_refused", "unknown_field_refused", "nothing_decided"],
            attack: ambiguous_requests,
        },
    ]
}

fn daemon() -> Result<Daemon, String> {
    let keywardd = beside_me("keywardd").ok_or("keywardd is not built beside the runner")?;
    let d = Daemon::try_start(&keywardd, &Options::default()).map_err(|e| format!("cannot start: {e}"))?;
    match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { .. }) => Ok(d),
        other => Err(format!("cannot create key: {other:?}")),
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("randomness");
    b
}

fn secrets_in_fields(probe: &mut Probe) -> String {
    let d = match daemon() {
        Ok(d) => d,
        Err(e) => return e,
    };
    // Fresh material: a keypair as solana-keygen writes it, hex split by
    // colons, and a hex seed as an idempotency key.
    let keypair = random_bytes(64);
    let array = format!("[{}]", keypair.iter().map(u8::to_string).collect::<Vec<_>>().join(","));
    let seed = random_bytes(32);
    let colon_hex = seed.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let mut intent = x402_intent("rt033-1", 1000);
    intent["rationale"] = format!("pay; key backup {array} and {colon_hex}").into();
    let answered = d.call(&Request::Submit { intent });
    let files = [d.audit_log.clone(), d.state_dir.join("ledger.jsonl")]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<String>();
    let needles = [keypair[..8].iter().map(u8::to_string).collect::<Vec<_>>().join(","), colon_hex[..23].to_string()];
    let leaked: Vec<&String> = needles.iter().filter(|n| files.contains(n.as_str())).collect();
    let decided = matches!(answered, Ok(Response::Decision { .. }));
    probe.check(
        "free_text_redacted",
        decided && leaked.is_empty() && files.contains("[REDACTED]"),
        format!("decided: {decided}; fragments found in the journals: {}", leaked.len()),
    );
    let hex_seed: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let refused = match d.call(&Request::Submit { intent: x402_intent(&hex_seed, 1000) }) {
        Ok(Response::Decision { reason_code, signature: None, .. }) => reason_code == "DENY_INVALID_X402_INTENT",
        Err(ipc::client::CallError::Api(e)) => e.code == "DENY_INVALID_X402_INTENT",
        _ => false,
    };
    let files = std::fs::read_to_string(&d.audit_log).unwrap_or_default()
        + &std::fs::read_to_string(d.state_dir.join("ledger.jsonl")).unwrap_or_default();
    probe.check(
        "secret_identifier_refused",
        refused && !files.contains(&hex_seed),
        format!("a 64-hex idempotency key refused: {refused}; recorded: {}", files.contains(&hex_seed)),
    );
    "a keypair array and split hex in the rationale were redacted; a secret-looking idempotency key was refused".into()
}

fn ambiguous_requests(probe: &mut Probe) -> String {
    let d = match daemon() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let Ok(mut c) = d.client() else { return "no session".into() };
    let code = |r: Result<Response, ipc::client::CallError>| match r {
        Err(ipc::client::CallError::Api(e)) => e.code,
        other => format!("not a refusal: {other:?}"),
    };
    let intent = serde_json::to_string(&x402_intent("rt034-1", 1000)).unwrap_or_default();
    let twice = intent.replacen(r#""amount_atomic":"1000""#, r#""amount_atomic":"1000","amount_atomic":"900000""#, 1);
    let got = code(c.call_raw(format!(r#"{{"op":"submit","intent":{twice}}}"#).as_bytes()));
    probe.check("duplicate_key_refused", twice != intent && got == "KW_JSON_DUPLICATE_KEY", got);
    let got = code(c.call_raw(br#"{"op":"ping","extra":1}"#));
    probe.check("unknown_field_refused", got == "API_BAD_REQUEST", got);
    let decided = d.events("intent_decided").len();
    probe.check("nothing_decided", decided == 0, format!("{decided} decisions recorded"));
    "an intent naming its amount twice and a ping with an unknown field were refused with stable codes".into()
}
