//! The bundle formats, byte for byte: Python's canonical JSON, the
//! SPECTRUM-04 roots and message, and every SPECTRUM-05 rejection with its
//! exact code.

mod common;

use bundle::json::{self, Ascii, Value};
use bundle::verify::{self, Options};
use common::{Key, Project, code, read, resign, set, write};

/// A change to a run directory, and one that may touch the project too.
type Mutation = Box<dyn Fn(&std::path::Path)>;
type ProjectMutation = Box<dyn Fn(&Project, &std::path::Path)>;

fn vectors(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name);
    json::parse(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn canonical_json_matches_cpython_byte_for_byte() {
    let v = vectors("python-canonical.json");
    let Some(Value::Array(cases)) = v.get("vectors") else { panic!() };
    assert!(cases.len() > 70);
    for c in cases {
        let input = c.get("input").unwrap().as_str().unwrap();
        let parsed = json::parse(input.as_bytes()).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            String::from_utf8(parsed.canonical(Ascii::Literal)).unwrap(),
            c.get("literal").unwrap().as_str().unwrap(),
            "ensure_ascii=False of {input}"
        );
        assert_eq!(
            String::from_utf8(parsed.canonical(Ascii::Escape)).unwrap(),
            c.get("escape").unwrap().as_str().unwrap(),
            "ensure_ascii=True of {input}"
        );
    }
}

#[test]
fn roots_and_message_match_the_python_formulas() {
    let v = vectors("python-roots.json");
    let s = |k: &str| v.get(k).unwrap().as_str().unwrap().to_string();
    let root = verify::bundle_root(v.get("hashes").unwrap(), v.get("status").unwrap(), s("task_spec_bytes").as_bytes());
    assert_eq!(root, s("bundle_root"));
    let strings = |k: &str| match v.get(k).unwrap() {
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>(),
        _ => panic!(),
    };
    assert_eq!(verify::chain_root(&strings("chain_bundle_roots"), &strings("chain_run_ids")), s("chain_root"));
    let msg = verify::signature_message(&verify::signed_payload(&root, &s("validator_id")));
    assert_eq!(String::from_utf8(msg).unwrap(), s("message"));
}

#[test]
fn ambiguous_json_is_refused_not_guessed() {
    for bad in [
        &br#"{"a":1,"a":2}"#[..],
        b"NaN",
        b"[Infinity]",
        b"1e400",
        br#""\ud800""#,
        br#""\udc00x""#,
        b"\xef\xbb\xbf{}",
        b"{\"a\":1,}",
        b"[01]",
        b"\"\x01\"",
        b"{} {}",
        b"\xff",
    ] {
        assert!(json::parse(bad).is_err(), "{:?} must be refused", String::from_utf8_lossy(bad));
    }
    let deep = "[".repeat(json::MAX_DEPTH + 2) + &"]".repeat(json::MAX_DEPTH + 2);
    assert!(json::parse(deep.as_bytes()).is_err());
}

fn fixture() -> (Project, Key, std::path::PathBuf) {
    let p = Project::new(&[("out/a.txt", b"alpha\n"), ("out/sub/b.bin", &[7u8; 5000])]);
    let k = Key::new(1);
    let run = p.bundle("run-1", &["out/a.txt", "out/sub/b.bin"], &k);
    (p, k, run)
}

#[test]
fn a_bundle_built_by_keyward_verifies() {
    let (p, _, run) = fixture();
    let v = verify::verify_bundle(p.root(), &run, Options::default()).unwrap();
    assert_eq!(v.run_id, "run-1");
    assert_eq!(v.output_bytes, 5006);
}

#[test]
fn each_missing_artifact_is_named_in_the_specified_order() {
    for (i, name) in verify::ARTIFACTS.iter().enumerate() {
        let (p, _, run) = fixture();
        // Remove this one and every later one: the first is reported.
        for later in &verify::ARTIFACTS[i..] {
            std::fs::remove_file(run.join(later)).unwrap();
        }
        let r = verify::verify_bundle(p.root(), &run, Options::default()).unwrap_err();
        assert_eq!((r.code, r.details[0].1.as_str()), ("ARTIFACT_MISSING", Some(*name)));
    }
}

#[test]
fn malformed_artifacts_are_refused_without_parser_text() {
    for name in verify::ARTIFACTS {
        let (p, _, run) = fixture();
        std::fs::write(run.join(name), b"{\"unterminated\": ").unwrap();
        let r = verify::verify_bundle(p.root(), &run, Options::default()).unwrap_err();
        assert_eq!(r.code, "ARTIFACT_MALFORMED");
        let shown = String::from_utf8(r.to_json().canonical(Ascii::Literal)).unwrap();
        assert_eq!(shown, format!(r#"{{"code":"ARTIFACT_MALFORMED","details":{{"artifact":"{name}"}},"ok":false}}"#));
    }
}

#[test]
fn identity_mutations_get_their_codes() {
    let id = "VALIDATOR_IDENTITY.json";
    let cases: Vec<(&str, Mutation)> = vec![
        ("FIELD_MISSING", Box::new(|r| set(r, id, "algorithm", None))),
        ("FIELD_EXTRA", Box::new(|r| set(r, id, "comment", Some(json::string("x"))))),
        ("ALGORITHM_UNSUPPORTED", Box::new(|r| set(r, id, "algorithm", Some(json::string("Ed25519"))))),
        (
            "KEY_INVALID",
            Box::new(|r| {
                let pk = read(r, id).get("public_key").unwrap().as_str().unwrap().to_uppercase();
                set(r, id, "public_key", Some(json::string(pk)))
            }),
        ),
        (
            "IDENTITY_INVALID",
            Box::new(|r| {
                let mut vid = read(r, id).get("validator_id").unwrap().as_str().unwrap().to_string();
                let last = if vid.ends_with('0') { "1" } else { "0" };
                vid.replace_range(63.., last);
                set(r, id, "validator_id", Some(json::string(vid)))
            }),
        ),
        // Another key's identity: the payload and signature name the first.
        ("IDENTITY_MISMATCH", Box::new(|r| write(r, id, &verify::identity(&Key::new(2).public())))),
    ];
    for (want, mutate) in cases {
        let (p, _, run) = fixture();
        mutate(&run);
        assert_eq!(code(&p, &run), want);
    }
}

#[test]
fn payload_and_signature_mutations_get_their_codes() {
    let (pl, sg) = ("SIGNED_PAYLOAD.json", "SIGNATURE.json");
    let flip = |s: &str| {
        let mut s = s.to_string();
        let c = if s.ends_with('0') { "1" } else { "0" };
        let n = s.len();
        s.replace_range(n - 1.., c);
        s
    };
    let cases: Vec<(&str, Mutation)> = vec![
        ("FIELD_EXTRA", Box::new(|r| set(r, pl, "timestamp", Some(json::string("now"))))),
        ("FIELD_MISSING", Box::new(|r| set(r, pl, "decision", None))),
        (
            "BUNDLE_ROOT_MISMATCH",
            Box::new(move |r| {
                let root = read(r, pl).get("bundle_root").unwrap().as_str().unwrap().to_string();
                set(r, pl, "bundle_root", Some(json::string(flip(&root))))
            }),
        ),
        ("DECISION_INVALID", Box::new(|r| set(r, pl, "decision", Some(json::string("REJECT"))))),
        ("SIGNATURE_INCOMPLETE", Box::new(|r| set(r, sg, "payload_type", None))),
        ("SIGNATURE_MALFORMED", Box::new(|r| set(r, sg, "payload_type", Some(json::string("CHAIN"))))),
        ("SIGNATURE_MALFORMED", Box::new(|r| set(r, sg, "extra", Some(json::int(1))))),
        (
            "SIGNATURE_MALFORMED",
            Box::new(|r| {
                let s = read(r, sg).get("signature").unwrap().as_str().unwrap().to_uppercase();
                set(r, sg, "signature", Some(json::string(s)))
            }),
        ),
        (
            "SIGNATURE_INVALID",
            Box::new(move |r| {
                let s = read(r, sg).get("signature").unwrap().as_str().unwrap().to_string();
                set(r, sg, "signature", Some(json::string(flip(&s))))
            }),
        ),
        // A valid signature by another key over the same payload.
        (
            "SIGNATURE_INVALID",
            Box::new(|r| {
                let payload = read(r, pl);
                let other = Key::new(3).sign(&verify::signature_message(&payload));
                set(r, sg, "signature", Some(json::string(bundle::hex::encode(&other))))
            }),
        ),
        // The informational field is allowed.
        ("OK", Box::new(|r| set(r, sg, "signed_at", Some(json::string("2026-11-24T00:00:00Z"))))),
    ];
    for (want, mutate) in cases {
        let (p, _, run) = fixture();
        mutate(&run);
        assert_eq!(code(&p, &run), want);
    }
}

#[test]
fn reordering_and_reencoding_change_only_what_is_hashed_raw() {
    // STATUS.json enters the root canonicalized: order, whitespace and
    // escapes do not matter.
    let (p, _, run) = fixture();
    let status = std::fs::read_to_string(run.join("STATUS.json")).unwrap();
    let v = json::parse(status.as_bytes()).unwrap();
    let Value::Object(mut m) = v else { panic!() };
    m.reverse();
    let mut text = String::from("{\n");
    for (i, (k, val)) in m.iter().enumerate() {
        let val = String::from_utf8(val.canonical(Ascii::Escape)).unwrap().replace("success", "\\u0073uccess");
        text += &format!("  \"{k}\" : {val}{}\n", if i + 1 < m.len() { "," } else { "" });
    }
    text += "}";
    std::fs::write(run.join("STATUS.json"), text).unwrap();
    assert_eq!(code(&p, &run), "OK");
    // TASK_SPEC.json is hashed as stored: one added space changes the root.
    let mut task = std::fs::read(run.join("TASK_SPEC.json")).unwrap();
    task.push(b' ');
    std::fs::write(run.join("TASK_SPEC.json"), task).unwrap();
    assert_eq!(code(&p, &run), "BUNDLE_ROOT_MISMATCH");
}

#[test]
fn second_identities_signatures_and_payloads_are_refused() {
    for (file, want) in [
        ("VALIDATOR_IDENTITY.2.json", "IDENTITY_MULTIPLE"),
        ("validator_identity.json", "IDENTITY_MULTIPLE"),
        ("SIGNATURE (1).json", "SIGNATURE_MULTIPLE"),
        ("signed_payload.bak", "ARTIFACT_EXTRA"),
        ("public_key.hex", "KEY_MULTIPLE"),
    ] {
        let (p, k, run) = fixture();
        write(&run, file, &verify::identity(&k.public()));
        assert_eq!(code(&p, &run), want, "{file}");
    }
}

#[test]
fn proof_forbidden_artifacts_and_outputs_get_their_codes() {
    let pr = "PROOF.json";
    let cases: Vec<(&str, ProjectMutation)> = vec![
        (
            "RESTORATION_FAILED",
            Box::new(|_, r| set(r, pr, "restoration_result", Some(json::object([("verified", Value::Bool(false))])))),
        ),
        (
            "RESTORATION_FAILED",
            Box::new(|_, r| set(r, pr, "restoration_result", Some(json::object([("verified", json::string("true"))])))),
        ),
        ("FIELD_MISSING", Box::new(|_, r| set(r, pr, "restoration_result", None))),
        ("ARTIFACT_MALFORMED", Box::new(|_, r| set(r, pr, "proof_hash", Some(json::string("ab".repeat(32)))))),
        ("FORBIDDEN_ARTIFACT", Box::new(|_, r| std::fs::create_dir(r.join("logs")).unwrap())),
        ("FORBIDDEN_ARTIFACT", Box::new(|_, r| std::os::unix::fs::symlink("/nowhere", r.join("tmp")).unwrap())),
        ("FORBIDDEN_ARTIFACT", Box::new(|_, r| std::fs::write(r.join("transcript.json"), b"{}").unwrap())),
        ("HASH_MISMATCH", Box::new(|p, _| std::fs::write(p.root().join("out/a.txt"), b"alphA\n").unwrap())),
        ("OUTPUT_MISSING", Box::new(|p, _| std::fs::remove_file(p.root().join("out/sub/b.bin")).unwrap())),
    ];
    for (want, mutate) in cases {
        let (p, _, run) = fixture();
        mutate(&p, &run);
        assert_eq!(code(&p, &run), want);
    }
}

#[test]
fn a_correct_proof_hash_is_accepted() {
    let (p, _, run) = fixture();
    let Value::Object(m) = read(&run, "PROOF.json") else { panic!() };
    let h = bundle::hex::sha256(&Value::Object(m).canonical(Ascii::Escape));
    set(&run, "PROOF.json", "proof_hash", Some(json::string(h)));
    assert_eq!(code(&p, &run), "OK");
}

#[test]
fn outputs_outside_the_project_are_never_read() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), b"outside").unwrap();
    for path in [secret.path().to_str().unwrap().to_string(), "../../../../../../etc/hostname".into()] {
        let (p, k, run) = fixture();
        set(&run, "OUTPUT_HASHES.json", "hashes", Some(json::object([(path.as_str(), json::string("sha256:00"))])));
        resign(&run, &k);
        let r = verify::verify_bundle(p.root(), &run, Options::default()).unwrap_err();
        // Not HASH_MISMATCH with the outside file's hash: it was never opened.
        assert_eq!(r.code, "OUTPUT_MISSING", "{path}");
    }
}

#[test]
fn a_failed_run_is_refused_even_when_signed() {
    let (p, k, run) = fixture();
    set(&run, "STATUS.json", "status", Some(json::string("failure")));
    resign(&run, &k);
    assert_eq!(code(&p, &run), "DECISION_INVALID");
}

#[test]
fn chains_verify_in_order_and_refuse_as_specified() {
    let p = Project::new(&[("out/1.txt", b"one"), ("out/2.txt", b"two"), ("out/3.txt", b"three")]);
    let k = Key::new(9);
    let runs: Vec<_> = (1..=3).map(|i| p.bundle(&format!("run-00{i}"), &[&format!("out/{i}.txt")], &k)).collect();
    let c = verify::verify_chain(p.root(), &runs, None, Options::default()).unwrap();
    let roots: Vec<String> = c.bundles.iter().map(|b| b.bundle_root.clone()).collect();
    let ids: Vec<String> = (1..=3).map(|i| format!("run-00{i}")).collect();
    assert_eq!(c.chain_root, verify::chain_root(&roots, &ids));
    assert!(verify::verify_chain(p.root(), &runs, Some(&c.chain_root), Options::default()).is_ok());
    let err = |r: Result<verify::VerifiedChain, verify::Rejection>| r.unwrap_err();
    assert_eq!(err(verify::verify_chain(p.root(), &[], None, Options::default())).code, "CHAIN_EMPTY");
    let dup = vec![runs[0].clone(), runs[1].clone(), runs[0].clone()];
    assert_eq!(err(verify::verify_chain(p.root(), &dup, None, Options::default())).code, "CHAIN_DUPLICATE_RUN");
    assert_eq!(
        err(verify::verify_chain(p.root(), &runs, Some(&"0".repeat(64)), Options::default())).code,
        "CHAIN_ROOT_MISMATCH"
    );
    // Reordering changes the root.
    let swapped = vec![runs[1].clone(), runs[0].clone(), runs[2].clone()];
    assert_ne!(verify::verify_chain(p.root(), &swapped, None, Options::default()).unwrap().chain_root, c.chain_root);
    // A tampered middle run rejects the whole chain, naming the run.
    std::fs::write(p.root().join("out/2.txt"), b"TWO").unwrap();
    let r = err(verify::verify_chain(p.root(), &runs, None, Options::default()));
    assert_eq!(r.code, "HASH_MISMATCH");
    assert!(r.details.iter().any(|(k, v)| k == "run_id" && v.as_str() == Some("run-002")));
}

#[test]
fn proof_signatures_round_trip_and_refuse_tampering() {
    use bundle::proof;
    let k = Key::new(5);
    let doc = json::parse(r#"{"z":1,"a":{"é":[1.5,true]},"run_id":"r"}"#.as_bytes()).unwrap();
    let sig = k.sign(&proof::message_to_sign(&doc).unwrap());
    let b = proof::signature_bundle(&sig, &k.public(), "2026-11-24T00:00:00+00:00");
    assert_eq!(proof::verify(&doc, &b, Some(&k.public())).unwrap(), k.public());
    // Embedding the bundle as the proof's `signature` still verifies (the
    // toolkit drops that field), but signing such a proof is refused.
    let Value::Object(mut m) = doc.clone() else { panic!() };
    m.push(("signature".into(), b.clone()));
    let signed = Value::Object(m);
    assert!(proof::verify(&signed, &b, None).is_ok());
    assert_eq!(proof::message_to_sign(&signed).unwrap_err().code, "PROOF_ALREADY_SIGNED");
    let mutate = |k2: &str, v: Value| {
        let Value::Object(mut m) = b.clone() else { panic!() };
        m.retain(|(k, _)| k != k2);
        m.push((k2.into(), v));
        proof::verify(&doc, &Value::Object(m), None).unwrap_err().code
    };
    assert_eq!(mutate("algorithm", json::string("ed25519")), "ALGORITHM_UNSUPPORTED");
    assert_eq!(mutate("key_id", json::string("00000000")), "IDENTITY_MISMATCH");
    assert_eq!(mutate("public_key", json::string(bundle::hex::encode(&Key::new(6).public()))), "IDENTITY_MISMATCH");
    assert_eq!(mutate("extra", json::int(1)), "SIGNATURE_MALFORMED");
    let other = json::parse(br#"{"z":2,"a":{"\u00e9":[1.5,true]},"run_id":"r"}"#).unwrap();
    assert_eq!(proof::verify(&other, &b, None).unwrap_err().code, "SIGNATURE_INVALID");
    assert_eq!(proof::verify(&doc, &b, Some(&Key::new(7).public())).unwrap_err().code, "KEY_MISMATCH");
    // Python's isoformat: microseconds only when non-zero.
    assert_eq!(proof::isoformat_utc(std::time::Duration::from_secs(1_790_000_000)), "2026-09-21T14:13:20+00:00");
    assert_eq!(
        proof::isoformat_utc(std::time::Duration::from_micros(1_790_000_000_000_042)),
        "2026-09-21T14:13:20.000042+00:00"
    );
}
