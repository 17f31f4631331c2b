//! Attacks on "what is signed is what was decided" (docs/x402.md): RT-008,
//! RT-009 and RT-010 through the real x402 path, and the appended RT-019
//! (message substitution), RT-020 (opaque signing with a value-bearing key),
//! RT-021 (a key not granted to the peer), RT-022 (fee-payer drain), RT-023
//! (a never-expiring transaction) and RT-024 (a second payment for one
//! request).
//!
//! The x402-path scenarios run a hostile resource server and facilitator
//! (x402-harness) over HTTPS with its own CA, a JSON-RPC endpoint and a real
//! Solana VM, a real `keywardd`, and the real `keyward x402 fetch` beside
//! this runner. The custody scenarios attack `keywardd` over its socket as
//! a compromised agent would. A scenario passes only when its attack was
//! made and refused as docs/x402.md says, and nothing that should not have
//! been signed was.

use daemon_harness::{DEFAULT_GRANTS, Daemon, Options, TEST_POLICY, sign_intent, x402_intent};
use ipc::api::{Request, Response};
use serde_json::{Value, json};
use x402_harness::Hostile;
use x402_harness::world::{World, code};

use super::FnAttack;
use super::beside_me;
use crate::ledger::Probe;

fn compat(policy: &str) -> String {
    policy.replace("profile = \"strict\"", "profile = \"compat\"")
}

/// A daemon with keys `hot` (solana), `notary` (raw-ed25519) and `treasury`
/// (solana, granted to nobody).
fn custody_daemon(policy: String) -> Result<Daemon, String> {
    let keywardd = beside_me("keywardd").ok_or("keywardd is not built beside the runner")?;
    let grants = DEFAULT_GRANTS.to_string() + "[[grant]]\nkey = \"notary\"\nuid = 0\nactions = [\"sign\"]\n";
    let d = Daemon::try_start(&keywardd, &Options { policy, grants, ..Options::default() })
        .map_err(|e| format!("cannot start keywardd: {e}"))?;
    for (name, kind) in [("hot", "solana"), ("notary", "raw-ed25519"), ("treasury", "solana")] {
        match d.call(&Request::KeyCreate { name: name.into(), kind: kind.into() }) {
            Ok(Response::Key { .. }) => {}
            other => return Err(format!("cannot create key {name}: {other:?}")),
        }
    }
    Ok(d)
}

/// (state, reason code, signed?, transaction).
fn submit(d: &Daemon, intent: Value) -> (String, String, bool, Option<String>) {
    match d.call(&Request::Submit { intent }) {
        Ok(Response::Decision { state, reason_code, signature, transaction, .. }) => {
            (state, reason_code, signature.is_some(), transaction)
        }
        other => (format!("{other:?}"), String::new(), false, None),
    }
}

fn signed(d: &Daemon) -> usize {
    d.events("signed").len()
}

fn message_of(tx: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let wire = base64::engine::general_purpose::STANDARD.decode(tx).ok()?;
    solana_codec::decode_transaction(&wire).ok().map(|(_, m)| m)
}

pub(super) fn all() -> Vec<FnAttack> {
    vec![
        FnAttack { id: "RT-008", attack: untrusted_facilitator, checks: UNTRUSTED_FACILITATOR_CHECKS },
        FnAttack { id: "RT-009", attack: unapproved_scheme, checks: UNAPPROVED_SCHEME_CHECKS },
        FnAttack { id: "RT-010", attack: mutation_after_approval, checks: MUTATION_AFTER_APPROVAL_CHECKS },
        FnAttack { id: "RT-019", attack: message_substitution, checks: MESSAGE_SUBSTITUTION_CHECKS },
        FnAttack { id: "RT-020", attack: opaque_signing, checks: OPAQUE_SIGNING_CHECKS },
        FnAttack { id: "RT-021", attack: ungranted_key, checks: UNGRANTED_KEY_CHECKS },
        FnAttack { id: "RT-022", attack: fee_payer_drain, checks: FEE_PAYER_DRAIN_CHECKS },
        FnAttack { id: "RT-023", attack: never_expiring, checks: NEVER_EXPIRING_CHECKS },
        FnAttack { id: "RT-024", attack: second_payment, checks: SECOND_PAYMENT_CHECKS },
    ]
}

// ---------------------------------------------------------------------------
// Custody attacks over the socket.

/// The checks RT-019 makes ([`Scenario::checks`]).
const MESSAGE_SUBSTITUTION_CHECKS: &[&str] = &[
    "bytes that differ from the decided payment are refused before any signature",
    "the refusal is audited",
    "nothing was reserved",
    "nothing was signed",
    "control: the same intent without foreign bytes is signed",
];

fn message_substitution(probe: &mut Probe) -> String {
    let d = match custody_daemon(compat(TEST_POLICY)) {
        Ok(d) => d,
        Err(e) => return e,
    };
    // The intent pays 10 units to the test payee; the bytes are a different
    // transaction (a transfer of everything to someone else, as far as the
    // signer can tell: anything that is not the transaction it builds).
    let mut i = x402_intent("rt019", 10);
    i["message_hex"] = json!(format!("80{}", "ab".repeat(400)));
    let (state, code, sig, _) = submit(&d, i);
    probe.check(
        "bytes that differ from the decided payment are refused before any signature",
        state == "Denied" && code == "DENY_TRANSACTION_MISMATCH" && !sig,
        format!("{state} {code}"),
    );
    let audited = d.events("intent_refused").iter().any(|e| e["reason_code"] == "DENY_TRANSACTION_MISMATCH");
    probe.check("the refusal is audited", audited, "");
    probe.check("nothing was reserved", d.spent_today("usdc") == "0", d.spent_today("usdc"));
    probe.check("nothing was signed", signed(&d) == 0, format!("{}", signed(&d)));
    let (state, ..) = submit(&d, x402_intent("rt019-control", 10));
    probe.check("control: the same intent without foreign bytes is signed", state == "Submitted", state);
    "substituted message refused (DENY_TRANSACTION_MISMATCH), nothing reserved".into()
}

/// The checks RT-020 makes ([`Scenario::checks`]).
const OPAQUE_SIGNING_CHECKS: &[&str] = &[
    "a solana key asked to sign opaque bytes (amount 0, no payee) refuses",
    "nothing was signed",
    "control: a raw-ed25519 key signs an opaque message",
];

fn opaque_signing(probe: &mut Probe) -> String {
    let d = match custody_daemon(compat(TEST_POLICY)) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let drain = [0x5au8; 200];
    let (state, code, sig, _) = submit(&d, sign_intent("hot", "rt020", &drain));
    probe.check(
        "a solana key asked to sign opaque bytes (amount 0, no payee) refuses",
        state == "Denied" && code == "DENY_KEY_KIND_MISMATCH" && !sig,
        format!("{state} {code}"),
    );
    probe.check("nothing was signed", signed(&d) == 0, "");
    let (state, code, ..) = submit(&d, sign_intent("notary", "rt020-control", b"hello"));
    probe.check(
        "control: a raw-ed25519 key signs an opaque message",
        state == "Submitted" && code == "ALLOW_AUTO_POLICY_OK",
        format!("{state} {code}"),
    );
    "opaque signing with a value-bearing key refused (DENY_KEY_KIND_MISMATCH)".into()
}

/// The checks RT-021 makes ([`Scenario::checks`]).
const UNGRANTED_KEY_CHECKS: &[&str] = &[
    "the admin peer, with no grant for `treasury`, cannot spend with it",
    "the refusal is audited",
    "nothing was reserved or signed",
    "control: the granted key pays",
];

fn ungranted_key(probe: &mut Probe) -> String {
    let d = match custody_daemon(compat(TEST_POLICY)) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut i = x402_intent("rt021", 10);
    i["key"] = json!("treasury");
    let (state, code, sig, _) = submit(&d, i);
    probe.check(
        "the admin peer, with no grant for `treasury`, cannot spend with it",
        state == "Denied" && code == "DENY_KEY_NOT_GRANTED" && !sig,
        format!("{state} {code}"),
    );
    let audited = d.events("intent_refused").iter().any(|e| e["reason_code"] == "DENY_KEY_NOT_GRANTED");
    probe.check("the refusal is audited", audited, "");
    probe.check(
        "nothing was reserved or signed",
        d.spent_today("usdc") == "0" && signed(&d) == 0,
        d.spent_today("usdc"),
    );
    let (state, ..) = submit(&d, x402_intent("rt021-control", 10));
    probe.check("control: the granted key pays", state == "Submitted", state);
    "key use without a grant refused (DENY_KEY_NOT_GRANTED)".into()
}

/// The checks RT-023 makes ([`Scenario::checks`]).
const NEVER_EXPIRING_CHECKS: &[&str] = &[
    "a durable-nonce message offered for signing is refused",
    "what the signer signs has exactly four instructions, no lookups and no System program",
];

fn never_expiring(probe: &mut Probe) -> String {
    let d = match custody_daemon(compat(TEST_POLICY)) {
        Ok(d) => d,
        Err(e) => return e,
    };
    // The agent cannot send a transaction for signing: the closest it gets
    // is a durable-nonce transaction as claimed bytes, refused as a mismatch.
    let mut nonce = x402_intent("rt023-a", 10);
    nonce["message_hex"] = json!(format!("800101{}", "00".repeat(200)));
    let (state, code, ..) = submit(&d, nonce);
    probe.check(
        "a durable-nonce message offered for signing is refused",
        state == "Denied" && code == "DENY_TRANSACTION_MISMATCH",
        format!("{state} {code}"),
    );
    let (state, _, _, tx) = submit(&d, x402_intent("rt023-b", 10));
    let m = tx.as_deref().and_then(message_of).and_then(|m| solana_codec::MessageV0::decode(&m).ok());
    let shape = m.as_ref().is_some_and(|m| {
        m.instructions.len() == 4 && m.lookups.is_empty() && !m.keys.contains(&solana_codec::programs::SYSTEM)
    });
    probe.check(
        "what the signer signs has exactly four instructions, no lookups and no System program",
        state == "Submitted" && shape,
        format!("{state}: {:?}", m.map(|m| m.instructions.len())),
    );
    "no durable nonce can be signed: the signer builds every transaction itself".into()
}

// ---------------------------------------------------------------------------
// Hostile servers, through `keyward x402 fetch`.

fn world(edit_policy: impl FnOnce(String) -> String) -> Result<World, String> {
    let keywardd = beside_me("keywardd").ok_or("keywardd is not built beside the runner")?;
    let keyward = beside_me("keyward").ok_or("keyward is not built beside the runner")?;
    World::start(&keywardd, &keyward, edit_policy)
}

/// The checks RT-008 makes ([`Scenario::checks`]).
const UNTRUSTED_FACILITATOR_CHECKS: &[&str] = &[
    "a payment through an untrusted origin is refused by the signer's policy",
    "a challenge naming an untrusted facilitator fee payer is refused",
    "nothing was signed",
    "nothing landed",
];

fn untrusted_facilitator(probe: &mut Probe) -> String {
    // The merchant origin is not trusted by this policy, and a second server
    // names a facilitator (fee payer) the policy does not list.
    let w = match world(|p| p.replace("https://facilitator.example", "https://elsewhere.example")) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let w2 = match world(|p| p) {
        Ok(w) => w,
        Err(e) => return e,
    };
    w2.route("/pay", 2, 10_000, |s| s.fee_payer = Some("3uetDDizgTtadDHZzyy9BqxrjQcozMEkxzbKhfZF4tG3".into()));
    w.route("/pay", 2, 10_000, |_| {});
    let (status, v) = w.fetch("/pay", &[]);
    probe.check(
        "a payment through an untrusted origin is refused by the signer's policy",
        status == 2 && code(&v) == "DENY_UNTRUSTED_FACILITATOR_OR_PAYEE",
        v.to_string(),
    );
    let (status, v) = w2.fetch("/pay", &[]);
    probe.check(
        "a challenge naming an untrusted facilitator fee payer is refused",
        status == 2 && code(&v) == "DENY_FEE_PAYER_NOT_ALLOWED",
        v.to_string(),
    );
    probe.check("nothing was signed", w.signed() == 0 && w2.signed() == 0, "");
    probe.check("nothing landed", w.h.settlements().is_empty() && w2.h.settlements().is_empty(), "");
    "untrusted origin and untrusted fee payer refused through the x402 path".into()
}

/// The checks RT-009 makes ([`Scenario::checks`]).
const UNAPPROVED_SCHEME_CHECKS: &[&str] = &[
    "an x402 v1 (v1-solana-exact) challenge outside the allowlist is denied by the signer",
    "a scheme other than exact is never offered to the signer",
    "nothing was signed",
];

fn unapproved_scheme(probe: &mut Probe) -> String {
    let w = match world(|p| {
        p.replace(
            "allowed_schemes = [\"v1-solana-exact\", \"v2-solana-exact\"]",
            "allowed_schemes = [\"v2-solana-exact\"]",
        )
    }) {
        Ok(w) => w,
        Err(e) => return e,
    };
    w.route("/v1", 1, 10_000, |_| {});
    w.route("/upto", 2, 10_000, |s| s.scheme = "upto".into());
    let (status, v) = w.fetch("/v1", &[]);
    probe.check(
        "an x402 v1 (v1-solana-exact) challenge outside the allowlist is denied by the signer",
        status == 2 && code(&v) == "DENY_UNAPPROVED_SCHEME",
        v.to_string(),
    );
    let (status, v) = w.fetch("/upto", &[]);
    probe.check(
        "a scheme other than exact is never offered to the signer",
        status == 2 && code(&v) == "X402_SCHEME_UNSUPPORTED",
        v.to_string(),
    );
    probe.check("nothing was signed", w.signed() == 0, "");
    "non-allowlisted schemes refused through the x402 path".into()
}

/// The checks RT-010 makes ([`Scenario::checks`]).
const MUTATION_AFTER_APPROVAL_CHECKS: &[&str] = &[
    "the first fetch waits for a person (nothing paid)",
    "a person approved exactly that payment",
    "the raised amount under the approved request is refused (DENY_REPLAY)",
    "under a new idempotency key it is a new request that needs its own approval",
    "nothing more was signed",
];

fn mutation_after_approval(probe: &mut Probe) -> String {
    let w = match world(|p| p) {
        Ok(w) => w,
        Err(e) => return e,
    };
    // Over the user's per-transaction limit (100 000): a person must approve.
    w.route("/report", 2, 200_000, |_| {});
    let (status, v) = w.fetch("/report", &["--idempotency-key", "rt010"]);
    let id = v["payment"]["request_id"].as_str().unwrap_or_default().to_string();
    probe.check(
        "the first fetch waits for a person (nothing paid)",
        status == 3 && code(&v) == "X402_APPROVAL_PENDING" && !id.is_empty(),
        v.to_string(),
    );
    let hash = match w.d.call(&Request::Show { request_id: id.clone() }) {
        Ok(Response::Pending { requests }) if !requests.is_empty() => requests[0].intent_hash.clone(),
        other => return format!("cannot show the request: {other:?}"),
    };
    let approved = w.d.call(&Request::Approve { request_id: id, intent_hash: hash });
    probe.check(
        "a person approved exactly that payment",
        matches!(&approved, Ok(Response::Decision { state, .. }) if state == "Submitted"),
        format!("{approved:?}"),
    );
    let before = w.signed();
    // The server now asks more for the same request; the agent retries
    // under the approved idempotency key.
    w.route("/report", 2, 900_000, |_| {});
    let (status, v) = w.fetch("/report", &["--idempotency-key", "rt010"]);
    probe.check(
        "the raised amount under the approved request is refused (DENY_REPLAY)",
        status == 2 && code(&v) == "DENY_REPLAY",
        v.to_string(),
    );
    let (status, v) = w.fetch("/report", &["--idempotency-key", "rt010-new"]);
    probe.check(
        "under a new idempotency key it is a new request that needs its own approval",
        status == 3 && code(&v) == "X402_APPROVAL_PENDING",
        v.to_string(),
    );
    probe.check("nothing more was signed", w.signed() == before, format!("{}", w.signed()));
    "amount mutation after approval refused (DENY_REPLAY) or re-prompted, through the x402 path".into()
}

/// The checks RT-022 makes ([`Scenario::checks`]).
const FEE_PAYER_DRAIN_CHECKS: &[&str] = &[
    "a challenge naming our own key as fee payer is refused",
    "nothing was signed",
    "control: an honest payment lands",
    "the fee payer appears in no instruction of what landed",
];

fn fee_payer_drain(probe: &mut Probe) -> String {
    let w = match world(|p| p) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let ours = w.ours.clone();
    w.route("/drain", 2, 10_000, |s| s.fee_payer = Some(ours));
    let (status, v) = w.fetch("/drain", &[]);
    probe.check(
        "a challenge naming our own key as fee payer is refused",
        status == 2 && code(&v) == "DENY_FEE_PAYER_NOT_ALLOWED",
        v.to_string(),
    );
    probe.check("nothing was signed", w.signed() == 0, "");
    // Control: an honest payment; the landed transaction's fee payer is in
    // no instruction's accounts.
    w.route("/honest", 2, 10_000, |_| {});
    let (status, v) = w.fetch("/honest", &[]);
    let landed = w.h.settlements();
    let isolated = landed.first().and_then(|s| solana_codec::MessageV0::decode(&s.message).ok()).is_some_and(|m| {
        m.keys.first().map(|k| k.to_base58()) == Some(w.h.facilitator_pubkey())
            && m.instructions.iter().all(|ix| !ix.accounts.contains(&0))
    });
    probe.check("control: an honest payment lands", status == 0 && landed.len() == 1, v.to_string());
    probe.check("the fee payer appears in no instruction of what landed", isolated, "");
    "fee payer equal to our key refused; the fee payer is only ever account 0".into()
}

/// The checks RT-024 makes ([`Scenario::checks`]).
const SECOND_PAYMENT_CHECKS: &[&str] = &[
    "/bait: the second 402 is not paid",
    "/bait: exactly one signature",
    "/bait: one challenge and one paid retry, no third request",
    "/loop: the second 402 is not paid",
    "/loop: exactly one signature",
    "/loop: one challenge and one paid retry, no third request",
    "nothing hostile landed",
    "re-running one logical payment signs once",
];

fn second_payment(probe: &mut Probe) -> String {
    let w = match world(|p| p) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let mut summary = Vec::new();
    for (path, hostile, expect) in [
        ("/bait", Hostile::AmountChangesOnRetry(90_000), "X402_CHALLENGE_CHANGED"),
        ("/loop", Hostile::AlwaysPaymentRequired, "X402_PAYMENT_NOT_ACCEPTED"),
    ] {
        let before = w.signed();
        w.route(path, 2, 10_000, |s| s.hostile = hostile);
        let (status, v) = w.fetch(path, &[]);
        probe.check(&format!("{path}: the second 402 is not paid"), status == 3 && code(&v) == expect, v.to_string());
        probe.check(&format!("{path}: exactly one signature"), w.signed() == before + 1, "");
        probe.check(&format!("{path}: one challenge and one paid retry, no third request"), w.h.hits(path) == 2, "");
        summary.push(expect);
    }
    probe.check("nothing hostile landed", w.h.settlements().is_empty(), "");
    // The same idempotency key twice: one signature.
    w.route("/once", 2, 10_000, |_| {});
    let before = w.signed();
    let (a, _) = w.fetch("/once", &["--idempotency-key", "rt024"]);
    let (b, _) = w.fetch("/once", &["--idempotency-key", "rt024"]);
    probe.check(
        "re-running one logical payment signs once",
        a == 0 && b != 1 && w.signed() == before + 1,
        format!("{a} {b} {}", w.signed() - before),
    );
    format!("paid at most once per request ({})", summary.join(", "))
}
