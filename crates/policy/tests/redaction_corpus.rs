//! The redaction filter against a corpus of secrets in the encodings people
//! and programs paste them in (vectors/redaction-corpus.json), and of prose
//! that must pass verbatim.
//!
//! Each case is `{"name", "input", "must_not_contain": [...], "must_contain"?:
//! [...]}` (every listed fragment of the secret is gone, the prose around it
//! stays) or `{"name", "input", "unchanged": true}`. The secrets are random
//! values generated for this file (fresh entropy, valid BIP-39 phrases), never
//! used anywhere.

use policy::redact::{REDACTED, contains_secret_like, redact};
use serde_json::Value;

fn corpus() -> Vec<Value> {
    let text = include_str!("vectors/redaction-corpus.json");
    serde_json::from_str::<Value>(text).expect("the corpus is JSON").as_array().expect("an array").clone()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().expect("strings")).collect()).unwrap_or_default()
}

#[test]
fn the_corpus_covers_every_encoding() {
    let cases = corpus();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().expect("a name")).collect();
    for encoding in [
        "solana keypair",
        "0x byte array",
        "hex split by spaces",
        "hex split by colons",
        "hex split by dashes",
        "mnemonic, 12 words",
        "mnemonic, 15 words",
        "mnemonic, 18 words",
        "mnemonic, 21 words",
        "mnemonic, 24 words",
        "base64 split by spaces",
        "base58 keypair, groups",
    ] {
        assert!(names.iter().any(|n| n.starts_with(encoding)), "no case for {encoding}");
    }
    let unchanged = cases.iter().filter(|c| c["unchanged"] == true).count();
    assert!(unchanged >= 5 && unchanged < cases.len(), "{unchanged} prose cases");
}

#[test]
fn every_secret_is_redacted_and_the_prose_around_it_stays() {
    for case in corpus() {
        let name = case["name"].as_str().expect("a name");
        let input = case["input"].as_str().expect("an input");
        let out = redact(input);
        if case["unchanged"] == true {
            assert_eq!(out, input, "{name}: prose must pass verbatim");
            assert!(!contains_secret_like(input), "{name}");
            continue;
        }
        let gone = strings(&case["must_not_contain"]);
        assert!(!gone.is_empty(), "{name}: a secret case names what must go");
        for fragment in gone {
            // The fragment is really in the input, so its absence means something.
            assert!(input.contains(fragment), "{name}: {fragment:?} is not in the input");
            assert!(!out.contains(fragment), "{name}: {fragment:?} survived in {out:?}");
        }
        for kept in strings(&case["must_contain"]) {
            assert!(out.contains(kept), "{name}: the prose {kept:?} was lost: {out:?}");
        }
        assert!(out.contains(REDACTED), "{name}: {out:?}");
        assert!(contains_secret_like(input), "{name}");
        // Idempotent: a redacted text has nothing left to redact.
        assert_eq!(redact(&out), out, "{name}");
    }
}
