//! Proof and bundle signing through a running `keywardd`: proof keys live in
//! their own vault namespace, only an admin may use them, the signer builds
//! what it signs itself, and every signature is audited. Then the client
//! end to end: `keyward bundle make --key` over the socket and
//! `--key-file` through `keywardd sign-offline`, verified and restored.

use daemon_harness::{Daemon, Options};
use ipc::api::{Request, Response};
use ipc::client::CallError;

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");

fn keyward() -> std::path::PathBuf {
    std::path::Path::new(KEYWARDD).with_file_name("keyward")
}

fn api_code(r: Result<Response, CallError>) -> String {
    match r {
        Err(CallError::Api(e)) => e.code,
        other => panic!("expected an API refusal, got {other:?}"),
    }
}

fn signature(r: Result<Response, CallError>) -> ([u8; 64], [u8; 32]) {
    match r {
        Ok(Response::Signature { signature, public_key }) => {
            (bundle::hex::decode(&signature).unwrap(), bundle::hex::decode(&public_key).unwrap())
        }
        other => panic!("expected a signature, got {other:?}"),
    }
}

#[test]
fn proof_keys_sign_proofs_and_payloads_and_nothing_else() {
    let d = Daemon::start(std::path::Path::new(KEYWARDD), &Options::default());
    for (name, kind) in [("pay", "solana"), ("validator", "proof-ed25519")] {
        assert!(matches!(
            d.call(&Request::KeyCreate { name: name.into(), kind: kind.into() }),
            Ok(Response::Key { .. })
        ));
    }
    let proof = r#"{"run_id":"r","restoration_result":{"verified":true},"note":"é"}"#;
    let (sig, pk) = signature(d.call(&Request::SignProof { key: "validator".into(), proof: proof.into() }));
    let doc = bundle::json::parse(proof.as_bytes()).unwrap();
    let msg = bundle::proof::message_to_sign(&doc).unwrap();
    assert!(sigverify::verify(&pk, &msg, &sig).is_ok());

    let root = "ab".repeat(32);
    let (sig, pk) = signature(d.call(&Request::SignBundle { key: "validator".into(), bundle_root: root.clone() }));
    let payload = bundle::verify::signed_payload(&root, &bundle::hex::sha256(&pk));
    assert!(sigverify::verify(&pk, &bundle::verify::signature_message(&payload), &sig).is_ok());

    // A payment key is not a proof key: the proof namespace has no "pay".
    assert_eq!(api_code(d.call(&Request::SignProof { key: "pay".into(), proof: proof.into() })), "FAIL_SIGNING");
    // A proof that already carries a signature, or is not JSON, is refused.
    let signed = r#"{"run_id":"r","signature":{}}"#;
    assert_eq!(
        api_code(d.call(&Request::SignProof { key: "validator".into(), proof: signed.into() })),
        "PROOF_ALREADY_SIGNED"
    );
    assert_eq!(api_code(d.call(&Request::SignProof { key: "validator".into(), proof: "{".into() })), "PROOF_MALFORMED");
    assert_eq!(
        api_code(d.call(&Request::SignBundle { key: "validator".into(), bundle_root: "AB".repeat(32) })),
        "API_BAD_REQUEST"
    );
    match d.call(&Request::KeyList) {
        Ok(Response::Keys { names, proof_keys, .. }) => {
            assert_eq!((names, proof_keys), (vec!["pay".into()], vec!["validator".into()]))
        }
        other => panic!("{other:?}"),
    }
    let proofs = d.events("proof_signed");
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0]["message_sha256"].as_str(), Some(bundle::hex::sha256(&msg).as_str()));
    let bundles = d.events("bundle_signed");
    assert_eq!(bundles.len(), 1);
    assert_eq!(bundles[0]["bundle_root"].as_str(), Some(root.as_str()));
}

#[test]
fn only_an_admin_may_sign_proofs() {
    assert!(ipc::api::Role::Admin.permits(&Request::SignProof { key: "k".into(), proof: "{}".into() }));
    for role in [ipc::api::Role::Agent, ipc::api::Role::Approver] {
        assert!(!role.permits(&Request::SignProof { key: "k".into(), proof: "{}".into() }));
        assert!(!role.permits(&Request::SignBundle { key: "k".into(), bundle_root: String::new() }));
    }
}

#[test]
fn keyward_makes_verifies_and_restores_bundles_with_either_key_source() {
    let d = Daemon::start(std::path::Path::new(KEYWARDD), &Options::default());
    assert!(matches!(
        d.call(&Request::KeyCreate { name: "validator".into(), kind: "proof-ed25519".into() }),
        Ok(Response::Key { .. })
    ));
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("proj");
    std::fs::create_dir_all(project.join("out")).unwrap();
    std::fs::create_dir_all(project.join("runs")).unwrap();
    std::fs::write(project.join("out/result.txt"), b"42\n").unwrap();
    let proof = work.path().join("PROOF.json");
    std::fs::write(&proof, br#"{"restoration_result":{"condition":"RESTORED_IDENTICAL","verified":true}}"#).unwrap();
    let key_file = work.path().join("validator.key");
    std::fs::write(&key_file, format!("{}\n", "5a".repeat(32))).unwrap();
    let conn = |c: &mut std::process::Command| {
        c.arg("--socket").arg(&d.socket).arg("--pin").arg(&d.pin_file).arg("--json");
    };
    for (run, key_args) in [("run-vault", vec!["--key", "validator"]), ("run-file", vec!["--key-file"])] {
        let mut c = std::process::Command::new(keyward());
        conn(&mut c);
        c.args(["bundle", "make"]).arg(project.join("runs").join(run)).arg("--project-root").arg(&project);
        c.args(["--output", "out/result.txt", "--proof"]).arg(&proof).args(&key_args);
        if key_args == ["--key-file"] {
            c.arg(&key_file);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "make {run}: {}", String::from_utf8_lossy(&out.stderr));
        let verify = std::process::Command::new(keyward())
            .args(["--json", "bundle", "verify"])
            .arg(project.join("runs").join(run))
            .arg("--project-root")
            .arg(&project)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&verify.stdout).starts_with(r#"{"code":"OK""#));
    }
    let restore_root = work.path().join("restored");
    std::fs::create_dir(&restore_root).unwrap();
    let out = std::process::Command::new(keyward())
        .args(["--json", "bundle", "restore-chain"])
        .arg(project.join("runs/run-vault"))
        .arg(project.join("runs/run-file"))
        .arg("--project-root")
        .arg(&project)
        .arg("--restore-root")
        .arg(&restore_root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read(restore_root.join("run-file/out/result.txt")).unwrap(), b"42\n");
    // The key file's seed never appears in anything keyward printed.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&"5a".repeat(8)));
}
