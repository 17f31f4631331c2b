//! The audit log and the spend ledger against someone who can write their
//! files while the daemon is stopped (issue 14, items 1, 2 and 10), on a
//! real keywardd with its own TPM: every attack the issue reports is
//! carried out on the real files and must refuse the start (or the public
//! verifier) with its stable code; the daemon must never answer a signature
//! whose audit record is not durable, with the write failure produced by the
//! kernel (a file-size limit set on the running daemon, and a real full
//! tmpfs), and must heal by itself once the disk takes writes again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_harness::{Daemon, Options, SIGTERM, rechain, x402_intent};
use ipc::api::{Request, Response};
use serde_json::Value;

const KEYWARDD: &str = env!("CARGO_BIN_EXE_keywardd");

fn keyward() -> PathBuf {
    Path::new(KEYWARDD).with_file_name("keyward")
}

/// The agent lane may spend 0.3 USDC a day, 0.1 at a time.
fn capped() -> Options {
    let o = Options::default();
    Options { policy: o.policy.replace("daily_limit = 50000000", "daily_limit = 300000"), ..o }
}

/// A daemon with the `hot` payment key.
fn daemon() -> Daemon {
    let d = Daemon::start(Path::new(KEYWARDD), &capped());
    match d.call(&Request::KeyCreate { name: "hot".into(), kind: "solana".into() }) {
        Ok(Response::Key { .. }) => {}
        other => panic!("key create: {other:?}"),
    }
    d
}

/// The answer to a payment (an API error is an answer too).
fn pay(client: &mut ipc::client::Client, key: &str) -> Result<Response, ipc::client::CallError> {
    client.call(&Request::Submit { intent: x402_intent(key, 100_000) })
}

fn signature(r: &Result<Response, ipc::client::CallError>) -> Option<String> {
    match r {
        Ok(Response::Decision { signature, .. }) => signature.clone(),
        _ => None,
    }
}

fn stop(d: &mut Daemon) {
    d.signal_and_wait(SIGTERM, Duration::from_secs(20)).expect("keywardd stops on SIGTERM");
}

/// The three files an attacker edits: ledger, audit log, anchor.
struct Files {
    ledger: PathBuf,
    audit: PathBuf,
    anchor: PathBuf,
}

impl Files {
    fn of(d: &Daemon) -> Files {
        Files { ledger: d.state_dir.join("ledger.jsonl"), audit: d.audit_log.clone(), anchor: d.anchor_file() }
    }

    fn save(&self) -> [Vec<u8>; 3] {
        [&self.ledger, &self.audit, &self.anchor].map(|p| std::fs::read(p).unwrap())
    }

    fn restore(&self, saved: &[Vec<u8>; 3]) {
        for (p, b) in [&self.ledger, &self.audit, &self.anchor].into_iter().zip(saved) {
            std::fs::write(p, b).unwrap();
        }
    }
}

fn refused_with(d: &mut Daemon, code: &str, attack: &str) {
    let e = d.launch().expect_err(attack);
    assert!(e.0.contains(code), "{attack}: expected {code}, got {}", e.0);
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(|l| format!("{l}\n")).collect()
}

/// The reported attack: with the daemon stopped, emptying, deleting, editing
/// or cutting `ledger.jsonl` reset the day's spend. Each now refuses the
/// start; the intact files start and the cap still holds.
#[test]
fn an_emptied_deleted_edited_or_cut_ledger_refuses_the_start() {
    let mut d = daemon();
    let mut c = d.client().unwrap();
    for k in ["cap-1", "cap-2", "cap-3"] {
        assert!(signature(&pay(&mut c, k)).is_some(), "{k} is inside the cap");
    }
    assert!(signature(&pay(&mut c, "cap-4")).is_none(), "the fourth payment exceeds the daily cap");
    drop(c);
    stop(&mut d);
    let files = Files::of(&d);
    let saved = files.save();
    let ledger = String::from_utf8(saved[0].clone()).unwrap();

    std::fs::write(&files.ledger, b"").unwrap();
    refused_with(&mut d, "KW_LEDGER_TRUNCATED", "an emptied ledger");
    files.restore(&saved);

    std::fs::remove_file(&files.ledger).unwrap();
    refused_with(&mut d, "KW_LEDGER_TRUNCATED", "a deleted ledger");
    files.restore(&saved);

    let edited: String = lines_of(&ledger)
        .into_iter()
        .map(|l| if l.contains("\"t\":\"decided\"") { l.replace("\"100000\"", "\"1\"") } else { l })
        .collect();
    assert_ne!(edited, ledger, "the edit changed amounts");
    std::fs::write(&files.ledger, edited).unwrap();
    refused_with(&mut d, "KW_LEDGER_TAMPERED", "edited amount_atomic values");
    files.restore(&saved);

    let lines = lines_of(&ledger);
    std::fs::write(&files.ledger, lines[..lines.len() - 3].concat()).unwrap();
    refused_with(&mut d, "KW_LEDGER_TRUNCATED", "a ledger cut by three records");
    files.restore(&saved);

    // Re-signing is impossible without the journal key; a ledger whose
    // records were rehashed (signatures kept) still fails.
    let rehashed = rechain(policy::journal::Stream::Ledger, &edited_all(&ledger));
    std::fs::write(&files.ledger, rehashed).unwrap();
    refused_with(&mut d, "KW_LEDGER_TAMPERED", "a rehashed ledger");
    files.restore(&saved);

    d.launch().expect("the intact journals start");
    assert_eq!(d.spent_today("usdc"), "300000", "the day's spend survived the restart");
    let mut c = d.client().unwrap();
    assert!(signature(&pay(&mut c, "cap-5")).is_none(), "the cap still holds");
}

fn edited_all(text: &str) -> String {
    text.replace("\"100000\"", "\"1\"")
}

/// A whole older copy of the journals (ledger, audit log and its anchor,
/// all authentic) is refused: the TPM counter has moved past its anchor.
#[test]
fn an_older_copy_of_the_journals_is_refused_as_a_rollback() {
    let mut d = daemon();
    let mut c = d.client().unwrap();
    let r = pay(&mut c, "old-1");
    assert!(signature(&r).is_some(), "{r:?}");
    drop(c);
    stop(&mut d);
    let files = Files::of(&d);
    let old = files.save();
    d.launch().unwrap();
    let mut c = d.client().unwrap();
    for k in ["old-2", "old-3"] {
        assert!(signature(&pay(&mut c, k)).is_some());
    }
    drop(c);
    stop(&mut d);
    files.restore(&old);
    refused_with(&mut d, "KW_ANCHOR_ROLLED_BACK", "an older, authentic copy of the journals");
}

fn verify(d: &Daemon, key: Option<&str>) -> (bool, Value) {
    let mut cmd = Command::new(keyward());
    cmd.args(["--json", "audit", "verify", "--log"]).arg(&d.audit_log);
    if let Some(k) = key {
        cmd.args(["--journal-key", k]);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    (out.status.success(), serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or(Value::Null))
}

/// The reported audit attacks: cutting whole records (the `stopped` record
/// too), deleting or emptying the file, deleting the anchor, and rewriting
/// the chain with recomputed hashes (a uid changed in every record). Each
/// fails `keyward audit verify` (public material only) and the start.
#[test]
fn cut_deleted_emptied_and_rewritten_audit_logs_are_refused() {
    let mut d = daemon();
    let journal_key = match d.client().unwrap().call(&Request::DaemonStatus).unwrap() {
        Response::Daemon { status } => status["audit"]["journal_key"].as_str().unwrap().to_string(),
        other => panic!("{other:?}"),
    };
    let mut c = d.client().unwrap();
    assert!(signature(&pay(&mut c, "audit-1")).is_some());
    drop(c);
    stop(&mut d);
    let (ok, report) = verify(&d, Some(&journal_key));
    assert!(ok && report["journal_key_pinned"] == true, "{report}");
    let files = Files::of(&d);
    let saved = files.save();
    let audit = String::from_utf8(saved[1].clone()).unwrap();
    let lines = lines_of(&audit);
    assert!(lines.last().unwrap().contains("\"event\":\"stopped\""));

    // Cut the `stopped` record, then five records.
    for cut in [1, 5] {
        std::fs::write(&files.audit, lines[..lines.len() - cut].concat()).unwrap();
        let (ok, report) = verify(&d, Some(&journal_key));
        assert!(!ok && report["code"] == "KW_AUDIT_TRUNCATED", "cut {cut}: {report}");
        refused_with(&mut d, "KW_AUDIT_TRUNCATED", "an audit log cut at its tail");
        files.restore(&saved);
    }

    std::fs::write(&files.audit, b"").unwrap();
    let (ok, report) = verify(&d, Some(&journal_key));
    assert!(!ok && report["code"] == "KW_AUDIT_TRUNCATED", "an empty log is not intact: {report}");
    refused_with(&mut d, "KW_AUDIT_TRUNCATED", "an emptied audit log");
    files.restore(&saved);

    std::fs::remove_file(&files.audit).unwrap();
    assert!(!verify(&d, Some(&journal_key)).0, "a deleted log does not verify");
    refused_with(&mut d, "KW_AUDIT_TRUNCATED", "a deleted audit log");
    files.restore(&saved);

    let rewritten = rechain(policy::journal::Stream::Audit, &audit.replace("\"uid\":0", "\"uid\":1000"));
    assert!(rewritten.matches("\"uid\":1000").count() >= 3, "uids were changed in several records");
    std::fs::write(&files.audit, &rewritten).unwrap();
    let (ok, report) = verify(&d, Some(&journal_key));
    assert!(!ok && report["code"] == "KW_AUDIT_CHAIN_BROKEN", "{report}");
    refused_with(&mut d, "KW_AUDIT_CHAIN_BROKEN", "an audit chain rewritten with recomputed hashes");
    files.restore(&saved);

    std::fs::remove_file(&files.anchor).unwrap();
    let out = Command::new(keyward()).args(["audit", "verify", "--log"]).arg(&d.audit_log).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("KW_ANCHOR_MISSING"));
    refused_with(&mut d, "KW_ANCHOR_MISSING", "a deleted anchor");
    files.restore(&saved);

    // A pinned key other than the journal's is refused.
    let other = "11".repeat(32);
    let (ok, _) = verify(&d, Some(&other));
    assert!(!ok, "a log verified under an unpinned key is refused when a key is pinned");

    d.launch().expect("the intact journals start");
    d.verify_audit().expect("and verify");
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

fn last_line_lens(p: &Path, n: usize) -> Vec<u64> {
    let text = std::fs::read_to_string(p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len() - n..].iter().map(|l| l.len() as u64 + 1).collect()
}

fn prlimit_fsize(pid: u32, limit: &str) {
    assert!(daemon_harness::set_file_size_limit(pid, limit), "prlimit --fsize on keywardd");
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Issue 14 item 10: a signature was once answered while its audit
/// `signed` record was torn. The write failure is now made at a chosen
/// point by the kernel: a file-size limit on the running daemon that lets
/// the payment's `intent_decided` record through and stops its `signed`
/// record. The client gets no signature; the log has no torn line; once the
/// limit is lifted the daemon heals by itself and the same request returns
/// its signature, now recorded.
#[test]
fn no_signature_is_answered_before_its_audit_record_is_durable() {
    let mut d = daemon();
    let mut c = d.client().unwrap();
    assert!(signature(&pay(&mut c, "fs-1")).is_some());
    assert!(signature(&pay(&mut c, "fs-2")).is_some());
    // One payment on a warm session writes exactly these two records.
    let lens = last_line_lens(&d.audit_log, 2);
    let tail: Vec<Value> = d.audit().into_iter().rev().take(2).collect();
    assert_eq!((tail[1]["event"].as_str(), tail[0]["event"].as_str()), (Some("intent_decided"), Some("signed")));
    let (decided, signed) = (lens[0], lens[1]);
    let audit_len = file_len(&d.audit_log);
    let limit = audit_len + decided + signed / 2;
    let ledger_len = file_len(&d.state_dir.join("ledger.jsonl"));
    let ledger_growth = ledger_len / 3;
    assert!(ledger_len + ledger_growth < limit, "the limit stops the audit log only ({ledger_len} vs {limit})");
    let pid = d.pid().unwrap();
    prlimit_fsize(pid, &limit.to_string());
    let r = pay(&mut c, "fs-3");
    assert!(signature(&r).is_none(), "no signature while its audit record cannot be written: {r:?}");
    let text = std::fs::read(&d.audit_log).unwrap();
    assert_eq!(text.last(), Some(&b'\n'), "no torn record is left behind");
    assert!(d.verify_audit().is_ok(), "the log verifies during the failure");
    // Still refusing while the disk refuses.
    assert!(signature(&pay(&mut c, "fs-4")).is_none());
    prlimit_fsize(pid, "unlimited");
    let healed = wait_until(Duration::from_secs(10), || signature(&pay(&mut c, "fs-3")).is_some());
    assert!(healed, "once writes succeed the daemon heals without a restart and releases fs-3");
    assert!(d.events("signed").iter().any(|e| e["request_id"].is_string()), "signed records present");
    d.verify_audit().expect("the log verifies after healing");
    drop(c);
    stop(&mut d);
    d.launch().expect("the healed journals start");
}

/// The same on a real full filesystem: the audit directory is a 1 MiB
/// tmpfs; a filler takes the rest of it; payments are refused, never
/// answered with a signature; removing the filler heals the daemon.
#[test]
fn a_full_filesystem_fails_closed_and_heals_when_space_returns() {
    let mut d = daemon();
    stop(&mut d);
    let audit_dir = d.audit_log.parent().unwrap().to_path_buf();
    let keep = d.dir.path().join("audit-saved");
    std::fs::create_dir_all(&keep).unwrap();
    for e in std::fs::read_dir(&audit_dir).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), keep.join(e.file_name())).unwrap();
    }
    let mounted =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m,mode=0750", "tmpfs"]).arg(&audit_dir).status();
    assert!(mounted.is_ok_and(|s| s.success()), "mount a tmpfs (tests run as root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(audit_dir.clone());
    for e in std::fs::read_dir(&keep).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), audit_dir.join(e.file_name())).unwrap();
    }
    d.launch().unwrap();
    let mut c = d.client().unwrap();
    assert!(signature(&pay(&mut c, "full-1")).is_some());
    // Fill the filesystem.
    let filler = audit_dir.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    // tmpfs counts whole pages: an append that fits the slack of the log's
    // last page still succeeds, and its signature may be answered. Pay until
    // the disk refuses; every signature answered must have its durable
    // `signed` record, and nothing is answered after the first refusal.
    let mut answered = Vec::new();
    let mut first_refusal = None;
    for n in 0..20 {
        let r = pay(&mut c, &format!("full-2-{n}"));
        match signature(&r) {
            Some(sig) => answered.push(sig),
            None => {
                first_refusal = Some(format!("{r:?}"));
                break;
            }
        }
    }
    let first_refusal = first_refusal.expect("the full disk refused a payment");
    assert!(first_refusal.contains("WRITE_FAILED"), "refused because the log cannot be written: {first_refusal}");
    let log = std::fs::read_to_string(&d.audit_log).unwrap();
    for sig in &answered {
        assert!(log.contains(sig.as_str()), "an answered signature has its durable audit record");
    }
    for k in ["full-3", "full-4"] {
        let r = pay(&mut c, k);
        assert!(signature(&r).is_none(), "a full disk answers no signature: {r:?}");
    }
    std::fs::remove_file(&filler).unwrap();
    let mut attempt = 0;
    let healed = wait_until(Duration::from_secs(30), || {
        attempt += 1;
        signature(&pay(&mut c, &format!("full-5-{attempt}"))).is_some()
    });
    assert!(healed, "the daemon heals once space is free, without a restart");
    d.verify_audit().expect("the log verifies after the full disk");
    drop(c);
    stop(&mut d);
    d.launch().expect("and starts again");
    stop(&mut d);
}

/// Journals written before anchoring (the audit chain without signatures,
/// the ledger as bare records) are adopted once: the spend and the
/// history survive, the first anchor covers them, and the public verifier
/// accepts them as an anchored prefix. This is also the runbook's
/// deliberate re-anchoring (docs/runbooks/journal-integrity.md, step 4):
/// deleting the journal key with the vault's authority.
#[test]
fn journals_from_before_anchoring_are_adopted_once() {
    let mut d = daemon();
    let mut c = d.client().unwrap();
    for k in ["legacy-1", "legacy-2"] {
        assert!(signature(&pay(&mut c, k)).is_some());
    }
    drop(c);
    stop(&mut d);
    let files = Files::of(&d);
    // Rewrite both journals in the earlier format.
    let audit = std::fs::read_to_string(&files.audit).unwrap();
    let unsigned: String = audit
        .lines()
        .map(|l| {
            let at = l.find(",\"sig\":\"").unwrap();
            let end = l[at + 8..].find('"').unwrap() + at + 8 + 1;
            format!("{}{}\n", &l[..at], &l[end..])
        })
        .collect();
    std::fs::write(&files.audit, &unsigned).unwrap();
    let ledger = std::fs::read_to_string(&files.ledger).unwrap();
    let bare: String = ledger
        .lines()
        .map(|l| {
            let at = l.find("\"rec\":").unwrap() + 6;
            format!("{}\n", &l[at..l.len() - 1])
        })
        .collect();
    std::fs::write(&files.ledger, &bare).unwrap();
    std::fs::remove_file(&files.anchor).unwrap();
    // With the journal key still in the vault, unsigned records are refused.
    refused_with(&mut d, "KW_ANCHOR_MISSING", "journals in the earlier format under an anchored vault");
    // The operator re-anchors deliberately: the journal key is deleted with
    // the vault's authority.
    let out = Command::new(KEYWARDD)
        .args(["vault", "delete", "keywardd.journal", "--vault"])
        .arg(&d.vault_dir)
        .args(["--tcti", &d.tpm.tcti()])
        .env("TSS2_LOG", "all+NONE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    d.launch().expect("the earlier journals are adopted");
    // The first start anchored two empty journals; this start adopts.
    let adopted = d.events("journals_anchored");
    assert_eq!(adopted.len(), 2, "{adopted:?}");
    assert_eq!(adopted[0]["adopted_audit_records"].as_u64(), Some(0));
    assert_eq!(adopted[1]["adopted_audit_records"].as_u64(), Some(unsigned.lines().count() as u64));
    assert_eq!(adopted[1]["adopted_ledger_records"].as_u64(), Some(bare.lines().count() as u64));
    assert_ne!(adopted[0]["journal_key"], adopted[1]["journal_key"], "a new journal key");
    assert_eq!(d.spent_today("usdc"), "200000", "the spend survived the adoption");
    let v = d.verify_audit().expect("the adopted prefix verifies under the first anchor");
    assert_eq!(v.unsigned, unsigned.lines().count() as u64);
    let mut c = d.client().unwrap();
    assert!(signature(&pay(&mut c, "legacy-1")).is_some(), "the idempotency history survived: same answer");
    assert_eq!(d.spent_today("usdc"), "200000", "a replay spends nothing");
    drop(c);
    stop(&mut d);
    d.launch().expect("and the adopted journals start again, anchored");
    assert_eq!(d.events("journals_anchored").len(), 2, "adoption happens once");
}

/// Review finding: an anchor whose commit failed must be the only anchor
/// ever signed for that counter value. Otherwise the failed one (a 0644
/// file anyone can copy) and a later one would both be authentic for the
/// same value, and the older could be put back with journals cut to it.
/// The write is made to fail for real (the anchor's directory is a regular
/// file), then the directory is fixed: the next anchor commits the very
/// same bytes, and only then does a new anchor cover the newer records.
#[test]
fn a_failed_anchor_is_committed_again_never_replaced() {
    use policy::journal::{Anchor, Position};
    use signer::daemon::anchor::{Anchorer, Sources, plan};
    use std::sync::Mutex;

    struct Fixed<'a> {
        positions: Mutex<(Position, Position)>,
        vault: Mutex<&'a mut vault::Vault>,
    }
    impl Sources for Fixed<'_> {
        fn durable(&self) -> (Position, Position) {
            self.positions.lock().unwrap().clone()
        }
        fn with_vault<R>(&self, f: impl FnOnce(&mut vault::Vault) -> R) -> R {
            f(&mut self.vault.lock().unwrap())
        }
    }
    let tpm = swtpm_harness::Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let tcfg = vault::tpm::TpmConfig { tcti: tpm.tcti(), pcr_policy: Some(vault::tpm::PcrPolicy::default()) };
    let mut v = vault::Vault::init(vault::VaultConfig::new(dir.path().join("vault"), tcfg)).unwrap();
    let audit_dir = dir.path().join("audit");
    std::fs::create_dir_all(&audit_dir).unwrap();
    let p = plan(&mut v, &audit_dir.join("audit.jsonl")).unwrap();
    let key = p.key.clone();
    let first = p.establish(&mut v, Position::empty(), Position::empty()).unwrap();
    // The anchor's directory is a regular file: the next write fails.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let anchorer = Anchorer::new(key, blocked.join("anchor.json"), first.clone());
    let pos = |n: u64| Position { records: n, head: format!("{n:064x}") };
    let sources = Fixed { positions: Mutex::new((pos(3), pos(2))), vault: Mutex::new(&mut v) };
    assert!(anchorer.cover_now(&sources).is_err(), "the anchor could not be written");
    assert_eq!(sources.with_vault(|v| v.anchor_counter().unwrap()), Some(first.counter), "nothing committed");
    // More records arrive; the directory is fixed.
    *sources.positions.lock().unwrap() = (pos(9), pos(5));
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir(&blocked).unwrap();
    anchorer.cover_now(&sources).unwrap();
    let (last, commits) = anchorer.last();
    assert_eq!(commits, 2, "the pending anchor, then a new one for the newer records");
    assert_eq!((last.counter, last.audit.records, last.ledger.records), (first.counter + 2, 9, 5));
    // The first commit at first.counter + 1 was of the pending anchor's
    // positions (3, 2): the file now holds the newer one, and no other
    // anchor with counter first.counter + 1 and positions (9, 5) exists.
    let on_disk = Anchor::parse(&std::fs::read(blocked.join("anchor.json")).unwrap()).unwrap();
    assert_eq!(on_disk, last);
    assert_eq!(sources.with_vault(|v| v.anchor_counter().unwrap()), Some(first.counter + 2));
}
