//! `keyward bundle …`: signed proofs and SPECTRUM bundles
//! (docs/bundle-format.md).
//!
//! Verification and restore run here, in the client, from the `bundle`
//! crate (public keys only). Signatures come from `keywardd`: from a proof
//! key in its vault over the socket (`--key NAME`), or from a key file by
//! running `keywardd sign-offline` beside this binary (`--key-file PATH`),
//! since this binary cannot link key-holding code. Every command prints
//! text, or with `--json` one document `{ok, code, details}`; exit status 0
//! is accepted, 1 rejected.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bundle::json::{self, Ascii, Value};
use bundle::restore::{self, Progress};
use bundle::verify::{self, Options, Rejection};
use clap::{Args, Subcommand};
use ipc::api::{Request, Response};

use crate::intents::Connection;

#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Sign a proof's canonical JSON; prints (or writes) the signature bundle.
    SignProof {
        proof: PathBuf,
        #[command(flatten)]
        key: KeySource,
        /// Write the signature bundle here (created, never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a proof's signature bundle.
    VerifyProof {
        proof: PathBuf,
        #[arg(long)]
        signature: PathBuf,
        /// Require this public key (64 hex digits).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Verify one bundle (SPECTRUM-05).
    Verify {
        run_dir: PathBuf,
        #[command(flatten)]
        project: Project,
    },
    /// Verify a chain of bundles, in the order given.
    VerifyChain {
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        #[command(flatten)]
        project: Project,
        /// Require this chain root.
        #[arg(long)]
        chain_root: Option<String>,
    },
    /// Restore a verified bundle's outputs (SPECTRUM-06).
    Restore {
        run_dir: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Restore a verified chain into RESTORE_ROOT/<run_id>/.
    RestoreChain {
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// Build and sign a bundle from a project directory and a list of outputs.
    Make {
        /// The run directory to create (must not exist).
        run_dir: PathBuf,
        #[command(flatten)]
        project: Project,
        /// An output, relative to the project root (repeatable).
        #[arg(long = "output")]
        outputs: Vec<String>,
        /// A file listing outputs, one per line.
        #[arg(long)]
        outputs_from: Option<PathBuf>,
        /// The run's PROOF.json (must record a verified restoration).
        #[arg(long)]
        proof: PathBuf,
        /// The run's TASK_SPEC.json (default: a minimal one is written).
        #[arg(long)]
        task_spec: Option<PathBuf>,
        #[command(flatten)]
        key: KeySource,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Project {
    /// The directory the outputs' paths are relative to.
    #[arg(long, default_value = ".")]
    project_root: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct Target {
    #[command(flatten)]
    project: Project,
    /// Where to restore (absolute, existing directory).
    #[arg(long)]
    restore_root: Option<PathBuf>,
    /// Check everything, write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct KeySource {
    /// A proof key (kind proof-ed25519) in the running signer's vault.
    #[arg(long)]
    key: Option<String>,
    /// An Ed25519 key file (64 hex digits, `-` for stdin), read by keywardd.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

/// Reads a proof, signature bundle, output list or task spec, at most
/// [`bounded_read::DOCUMENT_FILE`] bytes (`KW_INPUT_TOO_LARGE` beyond).
fn read_doc(path: &Path) -> Result<Vec<u8>, (String, String)> {
    bounded_read::read_file(path, bounded_read::DOCUMENT_FILE)
        .map_err(|e| (e.code().to_string(), format!("{}: {e}", path.display())))
}

fn parse_doc(path: &Path) -> Result<(Vec<u8>, Value), (String, String)> {
    let bytes = read_doc(path)?;
    let v =
        json::parse(&bytes).map_err(|_| ("CLI_INPUT".to_string(), format!("{}: not valid JSON", path.display())))?;
    Ok((bytes, v))
}

/// A signature from the signer: (signature, public key).
fn obtain_signature(
    conn: &Connection,
    key: &KeySource,
    request: Request,
    offline: &[&std::ffi::OsStr],
) -> Result<([u8; 64], [u8; 32]), (String, String)> {
    let (sig, pk) = if let Some(path) = &key.key_file {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|me| me.parent().map(|d| d.join(crate::helper::SIGNER)))
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                ("KW_HELPER_MISSING".to_string(), "keywardd is not installed next to keyward".to_string())
            })?;
        let out = Command::new(exe)
            .arg("sign-offline")
            .arg("--key-file")
            .arg(path)
            .args(offline)
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| ("KW_HELPER_MISSING".to_string(), format!("cannot run keywardd: {}", e.kind())))?;
        if !out.status.success() {
            return Err(("KW_SIGNING_FAILED".into(), "keywardd sign-offline refused (see above)".into()));
        }
        let v =
            json::parse(&out.stdout).map_err(|_| ("KW_SIGNING_FAILED".to_string(), "unexpected answer".to_string()))?;
        let field = |k| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        (field("signature"), field("public_key"))
    } else {
        let mut client = crate::intents::connect(conn)?;
        let r = client.call(&request).map_err(|e| (e.code().to_string(), e.to_string()))?;
        let _ = client.close();
        match r {
            Response::Signature { signature, public_key } => (signature, public_key),
            _ => return Err(("KW_SIGNING_FAILED".into(), "unexpected answer from the signer".into())),
        }
    };
    match (bundle::hex::decode::<64>(&sig), bundle::hex::decode::<32>(&pk)) {
        (Some(s), Some(p)) => Ok((s, p)),
        _ => Err(("KW_SIGNING_FAILED".into(), "malformed signature from the signer".into())),
    }
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn print_json(v: &Value) {
    println!("{}", String::from_utf8_lossy(&v.canonical(Ascii::Literal)));
}

fn ok_doc(details: Vec<(String, Value)>) -> Value {
    json::object([("ok", Value::Bool(true)), ("code", json::string("OK")), ("details", Value::Object(details))])
}

fn details_text(details: &[(String, Value)]) -> String {
    details
        .iter()
        .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(&v.canonical(Ascii::Literal))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints an outcome document and maps it to the exit status.
fn report(doc: &Value, json_out: bool, headline: &str) -> ExitCode {
    let ok = doc.get("ok") == Some(&Value::Bool(true));
    let code = doc.get("code").and_then(Value::as_str).unwrap_or("");
    let details = doc.get("details").and_then(Value::as_object).unwrap_or(&[]);
    if json_out {
        print_json(doc);
    } else if ok {
        println!("{headline}: OK {}", details_text(details));
    } else {
        eprintln!("keyward: {code}: {headline} refused {}", details_text(details));
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn rejection_doc(r: &Rejection) -> Value {
    r.to_json()
}

/// A progress bar on stderr, when stderr is a terminal; at most ten
/// redraws a second.
fn progress_bar() -> Option<impl Fn(Progress) + Sync> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let last = std::sync::Mutex::new(Instant::now() - Duration::from_secs(1));
    Some(move |p: Progress| {
        let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
        if p.files_done < p.files_total && l.elapsed() < Duration::from_millis(100) {
            return;
        }
        *l = Instant::now();
        let frac = if p.bytes_total == 0 { 1.0 } else { p.bytes_done as f64 / p.bytes_total as f64 };
        let filled = (frac * 30.0) as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:3.0}% {}/{} files {:.1}/{:.1} MiB",
            "#".repeat(filled),
            " ".repeat(30 - filled.min(30)),
            frac * 100.0,
            p.files_done,
            p.files_total,
            p.bytes_done as f64 / 1048576.0,
            p.bytes_total as f64 / 1048576.0
        );
        if p.files_done == p.files_total {
            let _ = writeln!(err);
        }
    })
}

/// Runs a restore for `target`, with a progress bar unless printing JSON.
fn run_restore(
    target: &Target,
    json_out: bool,
    headline: &str,
    restore: impl FnOnce(&restore::Request<'_>) -> restore::Outcome,
) -> ExitCode {
    let bar = if json_out { None } else { progress_bar() };
    let req = restore::Request {
        project_root: &target.project.project_root,
        restore_root: target.restore_root.as_deref(),
        dry_run: target.dry_run,
        progress: bar.as_ref().map(|b| b as &(dyn Fn(Progress) + Sync)),
    };
    report(&restore(&req).to_json(), json_out, headline)
}

pub(crate) fn run(conn: &Connection, cmd: &BundleCommand, json_out: bool) -> ExitCode {
    match run_inner(conn, cmd, json_out) {
        Ok(code) => code,
        Err((code, message)) => {
            if json_out {
                print_json(&json::object([
                    ("ok", Value::Bool(false)),
                    ("code", json::string(code.as_str())),
                    ("details", json::object([("message", json::string(message.as_str()))])),
                ]));
                ExitCode::from(1)
            } else {
                crate::fail(&code, &message)
            }
        }
    }
}

fn run_inner(conn: &Connection, cmd: &BundleCommand, json_out: bool) -> Result<ExitCode, (String, String)> {
    match cmd {
        BundleCommand::SignProof { proof, key, out } => {
            let (text, doc) = parse_doc(proof)?;
            bundle::proof::message_to_sign(&doc).map_err(|e| (e.code.to_string(), e.message.to_string()))?;
            let text = String::from_utf8(text).map_err(|_| ("CLI_INPUT".to_string(), "not UTF-8".to_string()))?;
            let (sig, pk) = obtain_signature(
                conn,
                key,
                Request::SignProof { key: key.key.clone().unwrap_or_default(), proof: text },
                &["--proof".as_ref(), proof.as_os_str()],
            )?;
            let sig_bundle = bundle::proof::signature_bundle(&sig, &pk, &bundle::proof::isoformat_utc(now()));
            // Check what came back before handing it out.
            bundle::proof::verify(&doc, &sig_bundle, Some(&pk))
                .map_err(|e| (e.code.to_string(), e.message.to_string()))?;
            let bytes = sig_bundle.canonical(Ascii::Literal);
            match out {
                Some(path) => {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(path)
                        .map_err(|e| ("CLI_OUTPUT".to_string(), format!("{}: {}", path.display(), e.kind())))?;
                    f.write_all(&bytes)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| ("CLI_OUTPUT".to_string(), format!("{}: {}", path.display(), e.kind())))?;
                    Ok(report(&ok_doc(vec![("signature_bundle".into(), sig_bundle)]), json_out, "sign-proof"))
                }
                None => {
                    println!("{}", String::from_utf8_lossy(&bytes));
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        BundleCommand::VerifyProof { proof, signature, public_key } => {
            let (_, doc) = parse_doc(proof)?;
            let (_, sig) = parse_doc(signature)?;
            let expected =
                match public_key {
                    Some(h) => Some(bundle::hex::decode::<32>(h).ok_or_else(|| {
                        ("CLI_INPUT".to_string(), "--public-key is 64 lowercase hex digits".to_string())
                    })?),
                    None => None,
                };
            let doc = match bundle::proof::verify(&doc, &sig, expected.as_ref()) {
                Ok(pk) => ok_doc(vec![("public_key".into(), json::string(bundle::hex::encode(&pk)))]),
                Err(e) => json::object([
                    ("ok", Value::Bool(false)),
                    ("code", json::string(e.code)),
                    ("details", json::object([("artifact", json::string("signature bundle"))])),
                ]),
            };
            Ok(report(&doc, json_out, "verify-proof"))
        }
        BundleCommand::Verify { run_dir, project } => {
            let doc = match verify::verify_bundle(&project.project_root, run_dir, Options::default()) {
                Ok(v) => ok_doc(vec![("bundle_root".into(), json::string(v.bundle_root))]),
                Err(r) => rejection_doc(&r),
            };
            Ok(report(&doc, json_out, "verify"))
        }
        BundleCommand::VerifyChain { run_dirs, project, chain_root } => {
            let doc = match verify::verify_chain(
                &project.project_root,
                run_dirs,
                chain_root.as_deref(),
                Options::default(),
            ) {
                Ok(c) => ok_doc(vec![
                    ("chain_root".into(), json::string(c.chain_root)),
                    (
                        "bundle_roots".into(),
                        Value::Array(c.bundles.iter().map(|b| json::string(b.bundle_root.as_str())).collect()),
                    ),
                    (
                        "run_ids".into(),
                        Value::Array(c.bundles.iter().map(|b| json::string(b.run_id.as_str())).collect()),
                    ),
                ]),
                Err(r) => rejection_doc(&r),
            };
            Ok(report(&doc, json_out, "verify-chain"))
        }
        BundleCommand::Restore { run_dir, target } => {
            Ok(run_restore(target, json_out, "restore", |req| restore::restore_bundle(req, run_dir)))
        }
        BundleCommand::RestoreChain { run_dirs, target } => {
            Ok(run_restore(target, json_out, "restore-chain", |req| restore::restore_chain(req, run_dirs)))
        }
        BundleCommand::Make { run_dir, project, outputs, outputs_from, proof, task_spec, key } => {
            let mut all = outputs.clone();
            if let Some(list) = outputs_from {
                let text = String::from_utf8(read_doc(list)?)
                    .map_err(|_| ("CLI_INPUT".to_string(), "the output list is not UTF-8".to_string()))?;
                all.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
            }
            let draft = bundle::make::draft(bundle::make::Inputs {
                project_root: &project.project_root,
                run_dir,
                outputs: &all,
                task_spec: task_spec.as_deref().map(read_doc).transpose()?,
                proof: read_doc(proof)?,
                now: now(),
            })
            .map_err(|e| {
                (
                    e.code.to_string(),
                    format!("{}{}", e.message, e.subject.map(|s| format!(": {s}")).unwrap_or_default()),
                )
            })?;
            let root = draft.bundle_root().to_string();
            let (sig, pk) = obtain_signature(
                conn,
                key,
                Request::SignBundle { key: key.key.clone().unwrap_or_default(), bundle_root: root.clone() },
                &["--bundle-root".as_ref(), root.as_ref()],
            )?;
            let v = draft.finish(&sig, &pk).map_err(|e| (e.code.to_string(), e.message.to_string()))?;
            let doc = ok_doc(vec![
                ("bundle_root".into(), json::string(v.bundle_root)),
                ("validator_id".into(), json::string(v.validator_id)),
                ("outputs".into(), json::int(v.hashes.len() as u64)),
            ]);
            Ok(report(&doc, json_out, "make"))
        }
    }
}
