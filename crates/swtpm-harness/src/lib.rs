//! A private software TPM per caller: `swtpm` on a free pair of loopback
//! ports with a temporary state directory, stopped by PID on drop.
//!
//! Tests, benchmarks and the red-team runner use it; there is no `/dev/tpm*`
//! on CI machines, and sharing one TPM between tests would let one test's
//! PCR extensions or lockout leak into another. Production code never links
//! this crate.
#![forbid(unsafe_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One running (or stopped, between [`Swtpm::kill`] and [`Swtpm::launch`]) swtpm.
#[derive(Debug)]
pub struct Swtpm {
    state: PathBuf,
    port: u16,
    pid: Option<String>,
    _dir: tempfile::TempDir,
}

/// A port P with P and P+1 free: libtss2's swtpm TCTI always uses P+1 as
/// the control channel.
fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let p = first.local_addr().expect("local address").port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// Why a TPM could not be started.
#[derive(Debug)]
pub enum StartError {
    /// `swtpm` is not installed (`scripts/install-deps.sh` installs it).
    NotInstalled,
    /// It was started ten times and never listened.
    NeverListened,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::NotInstalled => f.write_str("swtpm is not installed (run scripts/install-deps.sh)"),
            StartError::NeverListened => f.write_str("swtpm did not start listening"),
        }
    }
}

impl std::error::Error for StartError {}

impl Swtpm {
    /// Starts a fresh TPM with empty state. Panics if it cannot (for tests).
    pub fn start() -> Swtpm {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a fresh TPM with empty state.
    pub fn try_start() -> Result<Swtpm, StartError> {
        let dir = tempfile::tempdir().map_err(|_| StartError::NeverListened)?;
        let state = dir.path().join("state");
        std::fs::create_dir(&state).map_err(|_| StartError::NeverListened)?;
        let mut s = Swtpm { state, port: 0, pid: None, _dir: dir };
        s.try_launch()?;
        Ok(s)
    }

    /// Starts swtpm on the existing state (again, after [`Swtpm::kill`]: a TPM restart).
    pub fn launch(&mut self) {
        self.try_launch().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_launch(&mut self) -> Result<(), StartError> {
        let pidfile = self.state.parent().expect("state has a parent").join("swtpm.pid");
        for _ in 0..10 {
            let port = free_port_pair();
            let ctrl = port + 1;
            let status = Command::new("swtpm")
                .args(["socket", "--tpm2", "--tpmstate"])
                .arg(format!("dir={}", self.state.display()))
                .args(["--server", &format!("type=tcp,port={port},bindaddr=127.0.0.1")])
                .args(["--ctrl", &format!("type=tcp,port={ctrl},bindaddr=127.0.0.1")])
                .args(["--flags", "not-need-init,startup-clear", "--daemon", "--pid"])
                .arg(format!("file={}", pidfile.display()))
                .status()
                .map_err(|_| StartError::NotInstalled)?;
            if status.success() && wait_for(port) {
                self.port = port;
                self.pid = std::fs::read_to_string(&pidfile).ok().map(|s| s.trim().to_string());
                return Ok(());
            }
        }
        Err(StartError::NeverListened)
    }

    /// The TCTI string for this TPM.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The TPM's state directory (wipe it while stopped to simulate a TPM clear).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The swtpm process id, while it runs.
    pub fn pid(&self) -> Option<&str> {
        self.pid.as_deref()
    }

    /// Flushes transient objects and sessions a killed client left loaded.
    /// swtpm has no resource manager; on a real host the kernel's
    /// `/dev/tpmrm0` does this when a process dies.
    pub fn flush_leftovers(&self) {
        for what in ["-t", "-l", "-s"] {
            let _ = Command::new("tpm2_flushcontext")
                .arg(what)
                .env("TPM2TOOLS_TCTI", self.tcti())
                .env("TSS2_LOG", "all+NONE")
                .output();
        }
    }

    /// Kills swtpm with SIGKILL and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").args(["-9", &pid]).status();
            let proc_dir = Path::new("/proc").join(&pid);
            let deadline = Instant::now() + Duration::from_secs(5);
            while proc_dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
