//! "What is signed is what was decided", through a real `keywardd`: key
//! kinds, key grants, signer-built Solana transactions, message
//! substitution, verified receipts, and what an approver is shown
//! (docs/x402.md). Each test is an attack a compromised agent would try.

use std::path::Path;

use crypto::ed25519::{Ed25519Signature, Ed25519SigningKey, Ed25519VerificationKey};
use daemon_harness::{
    DEFAULT_GRANTS, Daemon, Options, SIGTERM, TEST_FEE_PAYER, TEST_PAYEE, TEST_POLICY, sign_intent, x402_intent,
};
use ipc::api::{Request, Response};
use ipc::client::CallError;
use secmem::MLockedSeed;
use serde_json::{Value, json};
use vault::tpm::{PcrPolicy, TpmConfig};
use vault::{SecretProvider, Vault, VaultConfig};

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");

fn start(options: &Options) -> Daemon {
    let d = Daemon::start(Path::new(KEYWARDD), options);
    for (name, kind) in [("hot", "solana"), ("notary", "raw-ed25519"), ("treasury", "solana")] {
        match d.call(&Request::KeyCreate { name: name.into(), kind: kind.into() }) {
            Ok(Response::Key { .. }) => {}
            other => panic!("key create {name}: {other:?}"),
        }
    }
    d
}

/// The harness policy under the compatibility profile (it auto-approves
/// first payments, which the strict profile refuses to run with).
fn compat() -> String {
    TEST_POLICY.replace("profile = \"strict\"", "profile = \"compat\"")
}

fn grants() -> String {
    DEFAULT_GRANTS.to_string()
        + "[[grant]]\nkey = \"notary\"\nuid = 0\nactions = [\"sign\", \"x402_payment\"]\n\
           [[grant]]\nkey = \"old\"\nuid = 0\nactions = [\"x402_payment\", \"sign\"]\n"
}

/// (state, reason_code, signature, transaction) of a submission.
fn submit(d: &Daemon, intent: Value) -> (String, String, Option<String>, Option<String>) {
    match d.call(&Request::Submit { intent }) {
        Ok(Response::Decision { state, reason_code, signature, transaction, .. }) => {
            (state, reason_code, signature, transaction)
        }
        other => panic!("submit: {other:?}"),
    }
}

fn refused(d: &Daemon, code: &str) -> usize {
    d.events("intent_refused").iter().filter(|e| e["reason_code"] == code).count()
}

/// RT-020: a key signs only what its kind allows. A `solana`
/// key never signs opaque bytes; a `raw-ed25519` key never pays; a key
/// from before kinds existed signs nothing; and the refusal comes before
/// any unseal, reserves nothing, and is audited.
#[test]
fn a_key_signs_only_what_its_kind_allows() {
    let mut d = start(&Options { grants: grants(), ..Options::default() });
    // Opaque signing with a value-bearing key: the attack of the issue
    // (amount 0, no payee, a "transfer everything" message).
    let drain = vec![0xAAu8; 200];
    let (state, code, sig, _) = submit(&d, sign_intent("hot", "opaque-1", &drain));
    assert_eq!((state.as_str(), code.as_str(), sig), ("Denied", "DENY_KEY_KIND_MISMATCH", None));
    // A raw key cannot be made to pay.
    let mut pay = x402_intent("raw-pays", 10);
    pay["key"] = json!("notary");
    let (state, code, ..) = submit(&d, pay);
    assert_eq!((state.as_str(), code.as_str()), ("Denied", "DENY_KEY_KIND_MISMATCH"), "granted, but the kind refuses");
    assert_eq!(refused(&d, "DENY_KEY_KIND_MISMATCH"), 2);
    // The raw key signs the caller's message, and that is all it does.
    let (state, code, sig, tx) = submit(&d, sign_intent("notary", "sign-1", b"hello"));
    assert_eq!((state.as_str(), code.as_str(), tx), ("Submitted", "ALLOW_AUTO_POLICY_OK", None));
    let pk = match d.call(&Request::KeyList) {
        Ok(Response::Keys { keys, .. }) => keys.into_iter().find(|k| k.name == "notary").unwrap().public_key,
        other => panic!("{other:?}"),
    };
    let vk = Ed25519VerificationKey::from_raw(&policy::unhex(&pk).unwrap()).unwrap();
    let sig = Ed25519Signature::from_raw(&policy::unhex(&sig.unwrap()).unwrap()).unwrap();
    crypto::ed25519::verify(&vk, b"hello", &sig).unwrap();
    assert_eq!(d.spent_today("usdc"), "0", "nothing was reserved by the refusals");
    assert_eq!(d.events("signed").len(), 1);
    assert_eq!(
        d.call(&Request::KeyCreate { name: "x".into(), kind: "ed25519".into() }).err().map(code_of),
        Some("KW_KEY_KIND_UNSUPPORTED".into()),
        "the kind must be named, never assumed"
    );

    // A legacy key (`key.old`, written before kinds) signs nothing.
    assert!(d.signal_and_wait(SIGTERM, std::time::Duration::from_secs(20)).is_some());
    let mut v = Vault::open(VaultConfig::new(
        &d.vault_dir,
        TpmConfig { tcti: d.tpm.tcti(), pcr_policy: Some(PcrPolicy::default()) },
    ))
    .unwrap();
    v.put("key.old", vault::envelope::SecretKind::Ed25519Seed, &[9u8; 32]).unwrap();
    drop(v);
    d.launch().unwrap();
    let listed = match d.call(&Request::KeyList) {
        Ok(Response::Keys { keys, .. }) => keys,
        other => panic!("{other:?}"),
    };
    let old = listed.iter().find(|k| k.name == "old").expect("the legacy key is listed");
    assert_eq!(old.kind, "legacy");
    assert!(old.signs.starts_with("nothing"), "{}", old.signs);
    for intent in [sign_intent("old", "old-1", b"x"), {
        let mut i = x402_intent("old-2", 10);
        i["key"] = json!("old");
        i
    }] {
        let (state, code, ..) = submit(&d, intent);
        assert_eq!((state.as_str(), code.as_str()), ("Denied", "DENY_KEY_KIND_MISMATCH"));
    }
}

fn code_of(e: CallError) -> String {
    match e {
        CallError::Api(e) => e.code,
        other => panic!("{other:?}"),
    }
}

/// RT-021: a peer may use only the keys granted to it, for the granted
/// actions; the admin role does not imply the right to spend.
#[test]
fn keys_are_granted_to_peers_and_roles_do_not_spend() {
    let d = start(&Options::default());
    let mut i = x402_intent("treasury-1", 10);
    i["key"] = json!("treasury");
    let (state, code, sig, _) = submit(&d, i.clone());
    assert_eq!((state.as_str(), code.as_str(), sig), ("Denied", "DENY_KEY_NOT_GRANTED", None));
    // A preview tells nothing more, and a key that does not exist looks the same.
    i["key"] = json!("no-such-key");
    let (state, code, ..) = submit(&d, i);
    assert_eq!((state.as_str(), code.as_str()), ("Denied", "DENY_KEY_NOT_GRANTED"));
    assert_eq!(refused(&d, "DENY_KEY_NOT_GRANTED"), 2);
    assert_eq!(d.spent_today("usdc"), "0");
    assert!(d.events("signed").is_empty());
    // The granted key for a granted action works.
    let (state, ..) = submit(&d, x402_intent("hot-1", 10));
    assert_eq!(state, "Submitted");
}

/// RT-019: message substitution. The intent says one payment, the bytes
/// say another: refused before anything is unsealed or reserved.
#[test]
fn bytes_that_differ_from_the_decided_payment_are_refused() {
    let d = start(&Options::default());
    let mut i = x402_intent("subst-1", 10);
    i["message_hex"] = json!("80".to_string() + &"00".repeat(300));
    let (state, code, sig, _) = submit(&d, i);
    assert_eq!((state.as_str(), code.as_str(), sig), ("Denied", "DENY_TRANSACTION_MISMATCH", None));
    assert_eq!(d.spent_today("usdc"), "0");
    assert_eq!(refused(&d, "DENY_TRANSACTION_MISMATCH"), 1);
    // The signer's own bytes, sent back, are the same payment and sign.
    let (_, _, _, tx) = submit(&d, x402_intent("subst-2", 10));
    let message = message_of(&tx.unwrap());
    let mut same = x402_intent("subst-3", 10);
    same["message_hex"] = json!(policy::hex(&message));
    // (subst-3 has another idempotency key, hence another memo: other bytes.)
    let (state, code, ..) = submit(&d, same);
    assert_eq!((state.as_str(), code.as_str()), ("Denied", "DENY_TRANSACTION_MISMATCH"));
    let mut same = x402_intent("subst-2", 10);
    same["message_hex"] = json!(policy::hex(&message));
    let (state, ..) = submit(&d, same);
    assert_eq!(state, "Submitted", "exactly the decided bytes are accepted");
}

fn message_of(tx: &str) -> Vec<u8> {
    use base64::Engine as _;
    let wire = base64::engine::general_purpose::STANDARD.decode(tx).unwrap();
    solana_codec::decode_transaction(&wire).unwrap().1
}

/// RT-022 (fee-payer drain) and RT-023 (never-expiring transaction): the
/// signer refuses a fee payer it holds, and what it signs has no place for
/// a durable nonce: exactly four instructions, no System program.
#[test]
fn fee_payer_drain_and_durable_nonces_are_impossible() {
    let d = start(&Options::default());
    let hot = match d.call(&Request::KeyList) {
        Ok(Response::Keys { keys, .. }) => keys.into_iter().find(|k| k.name == "treasury").unwrap().public_key,
        other => panic!("{other:?}"),
    };
    let treasury = solana_codec::Pubkey::new(policy::unhex(&hot).unwrap().try_into().unwrap()).to_base58();
    let policy = compat().replace(
        &format!("fee_payers = [\"{TEST_FEE_PAYER}\"]"),
        &format!("fee_payers = [\"{TEST_FEE_PAYER}\", \"{treasury}\"]"),
    );
    drop(d);
    let d = start(&Options { policy, ..Options::default() });
    // Even a fee payer the policy lists is refused when it is one of our keys
    // (a facilitator "fee payer" that is our treasury would drain it).
    let treasury = match d.call(&Request::KeyList) {
        Ok(Response::Keys { keys, .. }) => keys.into_iter().find(|k| k.name == "treasury").unwrap().public_key,
        other => panic!("{other:?}"),
    };
    let mut i = x402_intent("drain-1", 10);
    i["solana"]["fee_payer"] =
        json!(solana_codec::Pubkey::new(policy::unhex(&treasury).unwrap().try_into().unwrap()).to_base58());
    let (state, code, ..) = submit(&d, i);
    assert_eq!((state.as_str(), code.as_str()), ("Denied", "DENY_FEE_PAYER_NOT_ALLOWED"));
    let (_, _, _, tx) = submit(&d, x402_intent("nonce-1", 10));
    let m = solana_codec::MessageV0::decode(&message_of(&tx.unwrap())).unwrap();
    assert_eq!(m.instructions.len(), 4);
    assert!(m.lookups.is_empty());
    assert!(!m.keys.contains(&solana_codec::programs::SYSTEM), "no System program: no AdvanceNonceAccount");
    assert_eq!(m.keys[0].to_base58(), TEST_FEE_PAYER, "the fee payer is only the fee payer");
    assert!(m.instructions.iter().all(|ix| !ix.accounts.contains(&0)), "the fee payer is in no instruction");
    assert_eq!(d.spent_today("usdc"), "10");
    // A plain `transfer` (no x402 block) goes through the same builder.
    let mut t = x402_intent("transfer-1", 7);
    t["action"] = json!("transfer");
    t.as_object_mut().unwrap().remove("x402");
    let (state, _, _, tx) = submit(&d, t);
    assert_eq!(state, "Submitted");
    let payee = solana_codec::Pubkey::from_base58(TEST_PAYEE).unwrap();
    let built = solana_codec::parse_exact(&message_of(&tx.unwrap()), &payee).unwrap();
    assert_eq!(built.amount, 7);
}

/// A receipt is recorded only when it is the fee payer's signature over the
/// transaction this request signed; a report never releases spend.
#[test]
fn receipts_are_verified_by_the_signer() {
    let seed = MLockedSeed::<32>::new_random().unwrap();
    let facilitator = Ed25519SigningKey::gen_key_m(&seed).unwrap();
    let fee_payer = solana_codec::Pubkey::new(facilitator.derive_verification_key_m().0).to_base58();
    let policy = compat().replace(TEST_FEE_PAYER, &fee_payer);
    let d = start(&Options { policy, ..Options::default() });
    let mut i = x402_intent("receipt-1", 25);
    i["solana"]["fee_payer"] = json!(fee_payer);
    let id = match d.call(&Request::Submit { intent: i }) {
        Ok(Response::Decision { request_id: Some(id), transaction: Some(tx), .. }) => (id, tx),
        other => panic!("{other:?}"),
    };
    let (id, tx) = id;
    let message = message_of(&tx);
    let forged = solana_codec::base58::encode(&[1u8; 64]);
    let r = d.call(&Request::Settle { request_id: id.clone(), settled: true, receipt: Some(forged) });
    assert_eq!(r.err().map(code_of), Some("DENY_RECEIPT_INVALID".into()));
    let real = solana_codec::base58::encode(&facilitator.sign_bytes_m(&message).0);
    match d.call(&Request::Settle { request_id: id, settled: true, receipt: Some(real) }) {
        Ok(Response::Decision { state, .. }) => assert_eq!(state, "Settled"),
        other => panic!("{other:?}"),
    }
    assert!(d.events("settled").iter().any(|e| e["receipt_verified"] == true));
    assert_eq!(d.spent_today("usdc"), "25", "settling keeps the spend counted");
}

/// What a person sees before approving: payee, amounts in units and atomic
/// units, mint, network, scheme and version, resource and origin, fee
/// payer, reason, and the digest of the exact bytes; caller text stripped
/// of bidi, zero-width and control characters.
#[test]
fn the_approver_sees_what_will_be_signed() {
    let policy = TEST_POLICY.replace("confirm_new_destination = false", "confirm_new_destination = true");
    let d = start(&Options { policy, ..Options::default() });
    let mut i = x402_intent("show-1", 25_000);
    i["rationale"] = json!("pay \u{202e}rekcatta\u{202c} now\u{200b}");
    i["x402"]["resource"] = json!("https://api.example/weather?q=1");
    let (state, code, ..) = submit(&d, i);
    assert_eq!((state.as_str(), code.as_str()), ("AwaitUserApproval", "PROMPT_HIGH_RISK_CONFIRMATION"));
    let p = match d.call(&Request::Approvals) {
        Ok(Response::Pending { mut requests }) => requests.remove(0),
        other => panic!("{other:?}"),
    };
    assert_eq!(p.payee, TEST_PAYEE);
    assert_eq!((p.amount_atomic.as_str(), p.amount_units.as_deref()), ("25000", Some("0.025")));
    assert_eq!(p.mint.as_deref(), Some("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"));
    assert_eq!(p.chain_id, daemon_harness::TEST_NETWORK);
    assert_eq!((p.scheme_id.as_deref(), p.x402_version), (Some("v2-solana-exact"), Some(2)));
    assert_eq!(p.origin.as_deref(), Some("https://api.example"));
    assert_eq!(p.fee_payer.as_deref(), Some(TEST_FEE_PAYER));
    assert_eq!(p.message_sha256.len(), 64);
    assert!(p.message_len > 300);
    assert_eq!(p.rationale, "pay rekcatta now", "bidi and zero-width characters are gone");
    // The human rendering of `keyward approvals show` carries the same.
    let out = std::process::Command::new(Path::new(KEYWARDD).with_file_name("keyward"))
        .arg("--socket")
        .arg(&d.socket)
        .arg("--pin")
        .arg(&d.pin_file)
        .args(["approvals", "show", &p.request_id])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["0.025 usdc (25000 atomic units)", "fee payer:", "mint:", "signs:", "(x402 v2)", "origin:"] {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
}
