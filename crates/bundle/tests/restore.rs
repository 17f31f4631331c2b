//! The restore runner under attack: planted and racing symlinks, a target
//! created at the last moment, a source changed mid-copy, hard links,
//! hostile paths, read-only and full filesystems. After every attempt:
//! nothing outside the root was written, no pre-existing file was
//! overwritten or deleted, and a failed restore left the root as it was.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bundle::json::{self, Ascii};
use bundle::restore::{self, Outcome, Progress, Request};
use common::{Key, Project, resign, set};

/// A change to a run directory (with the key to re-sign it).
type Mutation = Box<dyn Fn(&Path, &Key)>;

/// Every entry beneath `dir` (symlinks not followed) with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            if m.file_type().is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&p).unwrap().display()));
            } else if m.is_dir() {
                out.insert(rel, "dir".into());
                walk(base, &p, out);
            } else {
                out.insert(rel, bundle::hex::sha256(&std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn run(p: &Project, run: &Path, root: &Path, progress: Option<&(dyn Fn(Progress) + Sync)>) -> Outcome {
    restore::restore_bundle(
        &Request { project_root: p.root(), restore_root: Some(root), dry_run: false, progress },
        run,
    )
}

fn fixture() -> (Project, Key, PathBuf, tempfile::TempDir) {
    let p = Project::new(&[("out/a.txt", b"alpha\n"), ("out/sub/b.bin", &[7u8; 70_000]), ("out/c.txt", b"c")]);
    std::fs::set_permissions(p.root().join("out/a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let k = Key::new(1);
    let r = p.bundle("run-1", &["out/a.txt", "out/sub/b.bin", "out/c.txt"], &k);
    (p, k, r, tempfile::tempdir().unwrap())
}

#[test]
fn restores_with_exact_result_artifacts_then_refuses_to_overwrite() {
    let (p, _, r, root) = fixture();
    let o = run(&p, &r, root.path(), None);
    assert!(o.ok, "{:?}", o);
    for rel in ["out/a.txt", "out/sub/b.bin", "out/c.txt"] {
        assert_eq!(std::fs::read(root.path().join(rel)).unwrap(), std::fs::read(p.root().join(rel)).unwrap());
    }
    assert_eq!(std::fs::metadata(root.path().join("out/a.txt")).unwrap().permissions().mode() & 0o777, 0o640);
    let sha = |rel: &str| format!("sha256:{}", bundle::hex::sha256(&std::fs::read(p.root().join(rel)).unwrap()));
    let manifest = format!(
        r#"{{"entries":[{{"bytes":6,"relative_path":"out/a.txt","sha256":"{}"}},{{"bytes":1,"relative_path":"out/c.txt","sha256":"{}"}},{{"bytes":70000,"relative_path":"out/sub/b.bin","sha256":"{}"}}]}}"#,
        sha("out/a.txt"),
        sha("out/c.txt"),
        sha("out/sub/b.bin")
    );
    assert_eq!(std::fs::read_to_string(root.path().join("RESTORE_MANIFEST.json")).unwrap(), manifest);
    let root_hex = o.details.iter().find(|(k, _)| k == "bundle_root").unwrap().1.as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(root.path().join("RESTORE_REPORT.json")).unwrap(),
        format!(
            r#"{{"bundle_roots":["{root_hex}"],"chain_root":null,"ok":true,"restored_bytes":70007,"restored_files_count":3}}"#
        )
    );
    // No staging or temporary file is left behind.
    assert!(snapshot(root.path()).keys().all(|k| !k.to_string_lossy().contains(".spectrum06")));
    // Again: every target exists, nothing is touched.
    let before = snapshot(root.path());
    let again = run(&p, &r, root.path(), None);
    assert_eq!((again.ok, again.code, again.phase.name()), (false, "RESTORE_TARGET_PATH_EXISTS", "EXECUTE"));
    assert_eq!(snapshot(root.path()), before);
}

#[test]
fn dry_run_and_preflight_failures_write_nothing() {
    let (p, _, r, root) = fixture();
    let o = restore::restore_bundle(
        &Request { project_root: p.root(), restore_root: Some(root.path()), dry_run: true, progress: None },
        &r,
    );
    assert!(o.ok && o.phase.name() == "PLAN");
    assert!(snapshot(root.path()).is_empty());
    let file = root.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    for (target, want) in [
        (None, "RESTORE_TARGET_MISSING"),
        (Some(PathBuf::from("relative/dir")), "RESTORE_TARGET_NOT_ABSOLUTE"),
        (Some(root.path().join("missing")), "RESTORE_TARGET_NOT_EXIST"),
        (Some(file.clone()), "RESTORE_TARGET_NOT_DIRECTORY"),
    ] {
        let o = restore::restore_bundle(
            &Request { project_root: p.root(), restore_root: target.as_deref(), dry_run: false, progress: None },
            &r,
        );
        assert_eq!((o.code, o.phase.name()), (want, "PREFLIGHT"));
    }
    // Eligibility comes first: an unverifiable bundle never reaches the root checks.
    std::fs::write(p.root().join("out/c.txt"), b"C").unwrap();
    let o = restore::restore_bundle(
        &Request { project_root: p.root(), restore_root: None, dry_run: false, progress: None },
        &r,
    );
    assert_eq!(o.code, "RESTORE_VERIFY_STRICT_FAILED");
    assert_eq!(o.to_json().get("details").unwrap().get("verifier_code").unwrap().as_str(), Some("HASH_MISMATCH"));
    assert_eq!(snapshot(root.path()).len(), 1);
}

#[test]
fn proof_and_hash_eligibility_codes() {
    let cases: Vec<(&str, Mutation)> = vec![
        ("RESTORE_PROOF_MISSING", Box::new(|r, _| std::fs::remove_file(r.join("PROOF.json")).unwrap())),
        ("RESTORE_PROOF_MALFORMED", Box::new(|r, _| std::fs::write(r.join("PROOF.json"), b"{").unwrap())),
        (
            "RESTORE_PROOF_RESTORATION_RESULT_MISSING",
            Box::new(|r, _| set(r, "PROOF.json", "restoration_result", Some(json::int(1)))),
        ),
        (
            "RESTORE_PROOF_NOT_VERIFIED",
            Box::new(|r, _| {
                set(r, "PROOF.json", "restoration_result", Some(json::object([("verified", json::Value::Bool(false))])))
            }),
        ),
        (
            "RESTORE_OUTPUT_HASHES_HASHES_EMPTY",
            Box::new(|r, k| {
                set(r, "OUTPUT_HASHES.json", "hashes", Some(json::Value::Object(vec![])));
                resign(r, k)
            }),
        ),
    ];
    for (want, mutate) in cases {
        let (p, k, r, root) = fixture();
        mutate(&r, &k);
        assert_eq!(run(&p, &r, root.path(), None).code, want);
        assert!(snapshot(root.path()).is_empty());
    }
}

#[test]
fn hostile_paths_are_refused_before_any_write() {
    let long = "x".repeat(300);
    for (path, want) in [
        ("../escape.txt", "RESTORE_PATH_TRAVERSAL_DETECTED"),
        ("out/../../escape.txt", "RESTORE_PATH_TRAVERSAL_DETECTED"),
        ("/etc/cron.d/x", "RESTORE_PATH_TRAVERSAL_DETECTED"),
        ("out//a.txt", "RESTORE_PATH_TRAVERSAL_DETECTED"),
        ("out\\a.txt", "RESTORE_PATH_TRAVERSAL_DETECTED"),
        ("./out/a.txt", "RESTORE_PATH_TRAVERSAL_DETECTED"),
        (long.as_str(), "RESTORE_PATH_TRAVERSAL_DETECTED"),
        ("out/a\0.txt", "RESTORE_PATH_NULL_BYTE_DETECTED"),
    ] {
        let (p, k, r, root) = fixture();
        set(
            &r,
            "OUTPUT_HASHES.json",
            "hashes",
            Some(json::object([(path, json::string(format!("sha256:{}", "0".repeat(64))))])),
        );
        resign(&r, &k);
        // The verifier refuses most of these already (they do not exist
        // beneath the project root); the restore code must still be the
        // path code, so check the runner's own verdict too.
        let o = run(&p, &r, root.path(), None);
        assert!(!o.ok);
        assert!(o.code == want || o.code == "RESTORE_VERIFY_STRICT_FAILED", "{path:?}: {}", o.code);
        assert_eq!(restore::path_code_public(path), Some(want), "{path:?}");
        assert!(snapshot(root.path()).is_empty());
    }
}

#[test]
fn a_planted_symlink_is_refused_and_nothing_outside_is_written() {
    let (p, _, r, root) = fixture();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
    let before = snapshot(root.path());
    let o = run(&p, &r, root.path(), None);
    assert_eq!((o.code, o.phase.name()), ("RESTORE_SYMLINK_ESCAPE_DETECTED", "PREFLIGHT"));
    assert!(snapshot(outside.path()).is_empty());
    assert_eq!(snapshot(root.path()), before);
}

#[test]
fn a_directory_swapped_for_a_symlink_in_a_loop_never_redirects_a_write() {
    let (p, _, r, root) = fixture();
    let outside = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let swaps = AtomicU64::new(0);
    let (mut ok, mut refused) = (0, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let (out, bak) = (root.path().join("out"), root.path().join("out.bak"));
            while !stop.load(Ordering::Relaxed) {
                // Move the real directory aside, put a symlink to outside in
                // its place, then put the directory back.
                if std::fs::rename(&out, &bak).is_ok() {
                    let _ = std::os::unix::fs::symlink(outside.path(), &out);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&out);
                    let _ = std::fs::rename(&bak, &out);
                } else {
                    let _ = std::fs::create_dir(&out);
                }
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Stop the swapper even when an assertion below fails.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        for _ in 0..150 {
            let o = run(&p, &r, root.path(), None);
            assert!(snapshot(outside.path()).is_empty(), "a write escaped the root: {o:?}");
            if o.ok {
                ok += 1;
            } else {
                // Under an attacker who keeps moving our directory away, an
                // honest RESTORE_ROLLBACK_FAILED is a possible answer; a
                // write outside the root (checked above) is not.
                refused += 1;
            }
            // Clear what a successful restore wrote, for the next round.
            for name in ["RESTORE_MANIFEST.json", "RESTORE_REPORT.json"] {
                let _ = std::fs::remove_file(root.path().join(name));
            }
            for d in ["out", "out.bak"] {
                let dir = root.path().join(d);
                if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    });
    assert!(swaps.load(Ordering::Relaxed) >= 1000, "the race ran {} swaps", swaps.load(Ordering::Relaxed));
    assert!(snapshot(outside.path()).is_empty());
    println!("race: {ok} restores completed, {refused} refused, {} swaps", swaps.load(Ordering::Relaxed));
}

#[test]
fn a_target_created_just_before_placement_is_never_overwritten() {
    let (p, _, r, root) = fixture();
    // The progress hook runs after a file is staged and before anything is
    // placed: create the last target there, as a racing writer would.
    let planted = root.path().join("out/sub/b.bin");
    let hook = |pr: Progress| {
        if pr.files_done == pr.files_total {
            std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
            std::fs::write(&planted, b"theirs").unwrap();
        }
    };
    let o = run(&p, &r, root.path(), Some(&hook));
    assert_eq!((o.code, o.phase.name()), ("RESTORE_TARGET_PATH_EXISTS", "EXECUTE"));
    assert_eq!(std::fs::read(&planted).unwrap(), b"theirs");
    // Rollback removed what this run placed and kept the planted file and
    // the directories it needs.
    let left: Vec<_> = snapshot(root.path()).into_keys().collect();
    assert_eq!(left, vec![PathBuf::from("out"), PathBuf::from("out/sub"), PathBuf::from("out/sub/b.bin")]);
}

#[test]
fn a_source_changed_during_the_copy_is_caught_by_the_staged_hash() {
    let (p, _, r, root) = fixture();
    let victim = p.root().join("out/sub/b.bin");
    let hook = |pr: Progress| {
        if pr.files_done == 1 {
            std::fs::write(&victim, b"swapped in after verification").unwrap();
        }
    };
    let o = run(&p, &r, root.path(), Some(&hook));
    assert_eq!((o.code, o.phase.name()), ("RESTORE_STAGING_HASH_MISMATCH", "EXECUTE"));
    assert!(snapshot(root.path()).is_empty(), "{:?}", snapshot(root.path()));
}

#[test]
fn a_hard_linked_source_is_copied_not_linked() {
    let outside = tempfile::tempdir().unwrap();
    let real = outside.path().join("real.txt");
    std::fs::write(&real, b"shared bytes").unwrap();
    let p = Project::new(&[]);
    std::fs::create_dir_all(p.root().join("out")).unwrap();
    std::fs::hard_link(&real, p.root().join("out/linked.txt")).unwrap();
    let k = Key::new(4);
    let r = p.bundle("run-h", &["out/linked.txt"], &k);
    let root = tempfile::tempdir().unwrap();
    assert!(run(&p, &r, root.path(), None).ok);
    let restored = root.path().join("out/linked.txt");
    let meta = std::fs::metadata(&restored).unwrap();
    assert_eq!(meta.nlink(), 1);
    assert_ne!(meta.ino(), std::fs::metadata(&real).unwrap().ino());
    std::fs::write(&real, b"changed later").unwrap();
    assert_eq!(std::fs::read(&restored).unwrap(), b"shared bytes");
}

#[test]
fn symlinked_sources_are_not_regular_files() {
    let (p, k, r, root) = fixture();
    std::fs::remove_file(p.root().join("out/c.txt")).unwrap();
    std::os::unix::fs::symlink("a.txt", p.root().join("out/c.txt")).unwrap();
    // The verifier follows in-tree symlinks (as the toolkit does), so make
    // the hash that of the link's target and re-sign.
    let h = format!("sha256:{}", bundle::hex::sha256(b"alpha\n"));
    let Some(json::Value::Object(mut m)) = common::read(&r, "OUTPUT_HASHES.json").get("hashes").cloned() else {
        panic!()
    };
    for (k, v) in &mut m {
        if k == "out/c.txt" {
            *v = json::string(h.as_str());
        }
    }
    set(&r, "OUTPUT_HASHES.json", "hashes", Some(json::Value::Object(m)));
    resign(&r, &k);
    let o = run(&p, &r, root.path(), None);
    assert_eq!((o.code, o.phase.name()), ("RESTORE_SOURCE_NOT_REGULAR_FILE", "PLAN"));
}

/// Runs `f` with a tmpfs of `size` mounted at a fresh directory (tests run
/// as root). Returns `false`, saying why, where mounting is not permitted.
fn with_tmpfs(opts: &str, f: impl FnOnce(&Path)) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", opts, "tmpfs"]).arg(dir.path()).status();
    if !st.is_ok_and(|s| s.success()) {
        println!(
            "SKIP: cannot mount a tmpfs here (needs CAP_SYS_ADMIN); the full/read-only filesystem cases did not run"
        );
        return false;
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(dir.path())));
    let _ = std::process::Command::new("umount").arg(dir.path()).status();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
    true
}

#[test]
fn a_read_only_root_is_refused_and_a_full_one_is_rolled_back() {
    let (p, _, r, _) = fixture();
    let ro = with_tmpfs("ro,size=1m", |root| {
        assert_eq!(run(&p, &r, root, None).code, "RESTORE_TARGET_NOT_WRITABLE");
    });
    let full = with_tmpfs("size=40k", |root| {
        std::fs::write(root.join("keep.txt"), b"pre-existing").unwrap();
        let before = snapshot(root);
        let o = run(&p, &r, root, None);
        assert!(!o.ok);
        assert_eq!((o.code, o.phase.name()), ("RESTORE_INTERNAL_ERROR", "EXECUTE"), "{o:?}");
        assert_eq!(snapshot(root), before);
    });
    assert_eq!(ro, full);
}

#[test]
fn chains_restore_per_run_and_roll_back_as_a_whole() {
    let p = Project::new(&[("out/1.txt", b"one"), ("out/2.txt", b"two")]);
    let k = Key::new(8);
    let runs = vec![p.bundle("run-001", &["out/1.txt"], &k), p.bundle("run-002", &["out/2.txt"], &k)];
    let root = tempfile::tempdir().unwrap();
    let req = Request { project_root: p.root(), restore_root: Some(root.path()), dry_run: false, progress: None };
    let o = restore::restore_chain(&req, &runs);
    assert!(o.ok, "{o:?}");
    let chain_root = bundle::verify::verify_chain(p.root(), &runs, None, Default::default()).unwrap().chain_root;
    let report = json::parse(&std::fs::read(root.path().join("run-002/RESTORE_REPORT.json")).unwrap()).unwrap();
    assert_eq!(report.get("chain_root").unwrap().as_str(), Some(chain_root.as_str()));
    assert_eq!(std::fs::read(root.path().join("run-001/out/1.txt")).unwrap(), b"one");
    assert!(snapshot(root.path()).keys().all(|k| !k.to_string_lossy().starts_with(".spectrum06")));
    assert_eq!(restore::restore_chain(&req, &runs).code, "RESTORE_CHAIN_TARGET_DIR_EXISTS");

    // The second run fails mid-copy: the first run's directory and the chain
    // manifest are removed again.
    let fresh = tempfile::tempdir().unwrap();
    let victim = p.root().join("out/2.txt");
    let hook = |pr: Progress| {
        if pr.files_done == 1 {
            std::fs::write(&victim, b"TWO").unwrap();
        }
    };
    let req =
        Request { project_root: p.root(), restore_root: Some(fresh.path()), dry_run: false, progress: Some(&hook) };
    let o = restore::restore_chain(&req, &runs);
    assert_eq!(o.code, "RESTORE_STAGING_HASH_MISMATCH", "{o:?}");
    assert!(snapshot(fresh.path()).is_empty(), "{:?}", snapshot(fresh.path()));
    let dup = vec![runs[0].clone(), runs[0].clone()];
    assert_eq!(restore::restore_chain(&req, &dup).code, "RESTORE_CHAIN_RUN_ID_DUPLICATE");
    assert_eq!(restore::restore_chain(&req, &[]).code, "RESTORE_VERIFY_STRICT_FAILED");
    let _ = json::Value::Null.canonical(Ascii::Literal);
}
