//! The trust boundary is the crate graph. These tests read it from `cargo
//! metadata` and fail when an edit would let the client link key-holding code
//! or let `unsafe` into a crate other than `secmem`.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Crates whose code can hold or reach key bytes, or that define a signing
/// key type (ed25519-dalek's `SigningKey`). `keyward` must link none; it
/// verifies signatures with `sigverify`, which has public keys only.
const KEY_HOLDING: [&str; 5] = ["secmem", "crypto", "vault", "signer", "ed25519-dalek"];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().find_map(|l| l.strip_prefix("host: ")).unwrap().to_string()
}

/// The resolved graph for this platform (one call, shared by the tests).
fn metadata() -> &'static Value {
    static META: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    META.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &host_triple()])
            .current_dir(workspace_root())
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

fn package_name<'a>(meta: &'a Value, id: &str) -> &'a str {
    meta["packages"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap()["name"].as_str().unwrap()
}

/// Names of the packages linked into `root`'s binaries: normal and build
/// dependencies, transitively (dev-dependencies are not linked).
fn linked_closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let root_id = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == root).unwrap()["id"].clone();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root_id]);
    while let Some(id) = queue.pop_front() {
        let node = nodes.iter().find(|n| n["id"] == id).unwrap();
        for dep in node["deps"].as_array().unwrap() {
            let linked = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"] != "dev");
            if linked && seen.insert(package_name(meta, dep["pkg"].as_str().unwrap()).to_string()) {
                queue.push_back(dep["pkg"].clone());
            }
        }
    }
    seen
}

#[test]
fn the_client_cannot_link_key_holding_crates() {
    let meta = metadata();
    let closure = linked_closure(meta, "cli");
    for forbidden in KEY_HOLDING {
        assert!(!closure.contains(forbidden), "cli links {forbidden} (closure: {closure:?})");
    }
    // Positive control: the closure walk does see what the signer links.
    let signer = linked_closure(meta, "signer");
    for needed in ["secmem", "crypto", "vault", "ipc", "policy"] {
        assert!(signer.contains(needed), "signer closure misses {needed}");
    }
}

#[test]
fn every_crate_but_secmem_forbids_unsafe_code() {
    let meta = metadata();
    let root = workspace_root();
    let mut checked = 0;
    for p in meta["packages"].as_array().unwrap() {
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
        if !manifest.starts_with(&root) {
            continue; // a registry dependency
        }
        for target in p["targets"].as_array().unwrap() {
            let kinds: Vec<&str> = target["kind"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            if !kinds.iter().any(|k| ["lib", "bin"].contains(k)) {
                continue;
            }
            let src = std::fs::read_to_string(target["src_path"].as_str().unwrap()).unwrap();
            let forbids = src.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]");
            if p["name"] == "secmem" {
                assert!(!forbids, "secmem is the one crate that needs unsafe");
            } else {
                assert!(forbids, "{} target {} lacks #![forbid(unsafe_code)]", p["name"], target["name"]);
            }
            checked += 1;
        }
    }
    // 7 libraries and 3 binaries today.
    assert!(checked >= 10, "found only {checked} crate roots");
}

#[test]
fn every_unsafe_block_in_secmem_has_a_safety_comment() {
    let dir = workspace_root().join("crates/secmem/src");
    let mut blocks = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap();
            if !(code.contains("unsafe {") || code.contains("unsafe impl")) {
                continue;
            }
            blocks += 1;
            // The SAFETY comment stands on one of the lines just above.
            let above = &lines[i.saturating_sub(6)..i];
            assert!(
                above.iter().any(|l| l.trim_start().starts_with("// SAFETY:")),
                "{}:{} unsafe without a // SAFETY: comment",
                path.display(),
                i + 1
            );
        }
    }
    assert!(blocks > 10, "found only {blocks} unsafe blocks");
}
