//! `keyward kes …` hands the command, stdin and exit status to the helper
//! installed beside it.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

/// Spawns `cmd`, retrying while the kernel reports `ETXTBSY`: the two tests
/// write executables concurrently, and a fork in one can briefly hold the
/// other's still-open write descriptor until its exec.
fn spawn(cmd: &mut Command) -> Child {
    for _ in 0..100 {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("executable stayed busy for two seconds")
}

#[test]
fn kes_commands_are_handed_to_the_helper_beside_keyward() {
    let dir = tempfile::tempdir().unwrap();
    let keyward = dir.path().join("keyward");
    std::fs::copy(env!("CARGO_BIN_EXE_keyward"), &keyward).unwrap();
    // A stand-in helper that reports what it received and exits 7.
    let helper = dir.path().join("keyward-kes");
    std::fs::write(&helper, "#!/bin/sh\necho \"args:$*\"\necho \"stdin:$(cat)\"\nexit 7\n").unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut child = spawn(
        Command::new(&keyward)
            .args(["kes", "sign", "--scheme", "sum6", "--period", "3", "--message-hex", "00"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    child.stdin.take().unwrap().write_all(b"seed-on-stdin\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("args:sign --scheme sum6 --period 3 --message-hex 00"), "{stdout}");
    assert!(stdout.contains("stdin:seed-on-stdin"), "{stdout}");
    assert_eq!(out.status.code(), Some(7), "the helper's exit status is keyward's");

    // Without the helper: a clear error, not a crash.
    std::fs::remove_file(&helper).unwrap();
    let out = spawn(
        Command::new(&keyward).args(["kes", "vk", "--scheme", "sum6"]).stdout(Stdio::piped()).stderr(Stdio::piped()),
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KW_HELPER_MISSING"));
}

#[test]
fn vault_and_migrate_commands_are_handed_to_keywardd() {
    let dir = tempfile::tempdir().unwrap();
    let keyward = dir.path().join("keyward");
    std::fs::copy(env!("CARGO_BIN_EXE_keyward"), &keyward).unwrap();
    let signer = dir.path().join("keywardd");
    std::fs::write(&signer, "#!/bin/sh\necho \"args:$*\"\nexit 5\n").unwrap();
    std::fs::set_permissions(&signer, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (args, want) in [
        (&["vault", "status", "--vault", "/v"][..], "args:vault status --vault /v"),
        (&["migrate", "--dry-run", "--from", "/k"][..], "args:migrate --dry-run --from /k"),
    ] {
        let out =
            spawn(Command::new(&keyward).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()))
                .wait_with_output()
                .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(want), "{out:?}");
        assert_eq!(out.status.code(), Some(5));
    }
}
