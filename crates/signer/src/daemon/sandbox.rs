//! The sandbox `keywardd` enters once start-up is over (the vault has been
//! opened, the identity unsealed, the socket bound and the audit log opened):
//!
//! * **Landlock**: file-system access only beneath the socket directory and
//!   the vault directory; no TCP bind or connect; no signals to, or abstract
//!   sockets of, processes outside the sandbox. Applied best-effort for the
//!   running kernel's ABI, but a kernel that enforces none of it is a refusal
//!   to start (`KW_SANDBOX_FAILED`).
//! * **seccomp**: two filters. The first kills the process on the system
//!   calls an attacker who gained code execution would want first (exec,
//!   ptrace, cross-process memory access, new namespaces, module or key-ring
//!   operations). The second allows only what serving the socket needs and
//!   fails everything else with `EPERM`.
//!
//! Both are inherited by every thread spawned afterwards, which is why the
//! daemon applies them before it spawns its first connection thread.
//!
//! Signing unseals keys through the TPM after start-up, so the sandbox
//! admits exactly what that needs and nothing more:
//!
//! * the TPM itself: the device named by a `device:` TCTI (read-write), or a
//!   TCP connect to the one port named by a `swtpm:`/`mssim:` TCTI (the
//!   development TPM; every other port stays denied);
//! * read and execute (never write) on the system library directories and
//!   read on `/etc/ld.so.cache`, because libtss2's TCTI loader `dlopen`s its
//!   transport library for every TPM context;
//! * the `socket` and `connect` system calls (Landlock decides where to).

use std::collections::BTreeMap;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, NetPort, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    path_beneath_rules,
};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// What was enforced, for the start-up audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    pub landlock: &'static str,
    pub seccomp: &'static str,
}

#[derive(Debug)]
pub struct SandboxError(pub String);

impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KW_SANDBOX_FAILED: {}", self.0)
    }
}

/// Applies Landlock and then seccomp to the calling thread and every thread
/// it creates afterwards.
pub fn enter(writable_dirs: &[PathBuf], tcti: &str) -> Result<SandboxStatus, SandboxError> {
    let landlock = landlock(writable_dirs, &TpmReach::of(tcti))?;
    seccomp()?;
    Ok(SandboxStatus { landlock, seccomp: "filter" })
}

/// How the daemon reaches its TPM, from the TCTI string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmReach {
    pub device: Option<PathBuf>,
    pub tcp_port: Option<u16>,
}

impl TpmReach {
    pub fn of(tcti: &str) -> TpmReach {
        let (kind, conf) = tcti.split_once(':').unwrap_or((tcti, ""));
        match kind {
            "device" => TpmReach {
                device: Some(PathBuf::from(if conf.is_empty() { "/dev/tpmrm0" } else { conf })),
                tcp_port: None,
            },
            "swtpm" | "mssim" => {
                let port = conf.split(',').find_map(|kv| kv.strip_prefix("port=")).and_then(|p| p.parse().ok());
                TpmReach { device: None, tcp_port: Some(port.unwrap_or(2321)) }
            }
            _ => TpmReach { device: None, tcp_port: None },
        }
    }
}

/// Library directories libtss2's loader reads (and maps executable).
const LIBRARY_DIRS: &[&str] = &["/usr/lib", "/lib", "/lib64", "/usr/lib64", "/usr/local/lib"];
const LIBRARY_FILES: &[&str] = &["/etc/ld.so.cache"];

fn landlock(dirs: &[PathBuf], tpm: &TpmReach) -> Result<&'static str, SandboxError> {
    let abi = ABI::V6;
    let err = |e: landlock::RulesetError| SandboxError(format!("landlock: {e}"));
    let existing = |ps: &[&str]| ps.iter().map(PathBuf::from).filter(|p| p.exists()).collect::<Vec<_>>();
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .handle_access(AccessNet::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(dirs, AccessFs::from_all(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(existing(LIBRARY_DIRS), AccessFs::from_read(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(existing(LIBRARY_FILES), AccessFs::ReadFile))
        .map_err(err)?;
    if let Some(dev) = &tpm.device {
        ruleset =
            ruleset.add_rules(path_beneath_rules([dev], AccessFs::ReadFile | AccessFs::WriteFile)).map_err(err)?;
    }
    if let Some(port) = tpm.tcp_port {
        ruleset = ruleset.add_rule(NetPort::new(port, AccessNet::ConnectTcp)).map_err(err)?;
    }
    let status = ruleset.restrict_self().map_err(err)?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok("fully_enforced"),
        RulesetStatus::PartiallyEnforced => Ok("partially_enforced"),
        RulesetStatus::NotEnforced => Err(SandboxError("the kernel enforces no Landlock rule".into())),
    }
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// System calls that end the process at once.
const FATAL: &[libc::c_long] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
];

/// Everything the serving loop, its threads and the allocator use.
const ALLOWED: &[libc::c_long] = &[
    // I/O on the socket, the audit log and the vault directory.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_accept4,
    // The TPM transport (Landlock limits where a connection may go).
    libc::SYS_socket,
    libc::SYS_connect,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_ioctl,
    libc::SYS_openat,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_ftruncate,
    libc::SYS_renameat2,
    libc::SYS_getdents64,
    libc::SYS_flock,
    // The anchor file's mode, set exactly on its temporary file (fsutil).
    libc::SYS_fchmod,
    // Memory: the allocator and secmem's locked pages.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    // secmem's pool grows with new secret-memory pages (signing keys).
    libc::SYS_memfd_secret,
    libc::SYS_munlock,
    // Threads, time, randomness, signals, exit.
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_tgkill,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getrandom,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    // A stop (SIGSTOP/SIGCONT, a tracer attaching) or a signal handler
    // interrupting a timed wait (`nanosleep`, `clock_nanosleep`, `poll`,
    // `futex` with a timeout) makes the kernel resume it through
    // `restart_syscall`. Refused, the sleep returns EPERM, which std's
    // `thread::sleep` treats as impossible and panics on: that killed the
    // key reaper (docs/decisions/0008).
    libc::SYS_restart_syscall,
    libc::SYS_sigaltstack,
    libc::SYS_prctl,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

fn program(
    calls: &[libc::c_long],
    on_match: SeccompAction,
    otherwise: SeccompAction,
) -> Result<BpfProgram, SandboxError> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = calls.iter().map(|&n| (n, vec![])).collect();
    let filter =
        SeccompFilter::new(rules, otherwise, on_match, ARCH).map_err(|e| SandboxError(format!("seccomp: {e}")))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| SandboxError(format!("seccomp: {e}")))
}

fn seccomp() -> Result<(), SandboxError> {
    let fatal = program(FATAL, SeccompAction::KillProcess, SeccompAction::Allow)?;
    let allow = program(ALLOWED, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32))?;
    for p in [&fatal, &allow] {
        seccompiler::apply_filter_all_threads(p).map_err(|e| SandboxError(format!("seccomp: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calls the kernel makes a thread issue on its own after a signal
    /// or a stop: refusing any of them breaks threads that did nothing
    /// wrong (a `kill -STOP`/`-CONT` killed the key reaper).
    #[test]
    fn signal_and_stop_paths_are_allowed_and_never_fatal() {
        for call in [libc::SYS_restart_syscall, libc::SYS_rt_sigreturn, libc::SYS_rt_sigprocmask, libc::SYS_sigaltstack]
        {
            assert!(ALLOWED.contains(&call), "system call {call} is not allowed");
            assert!(!FATAL.contains(&call), "system call {call} is fatal");
        }
        // Every timed wait the daemon uses is allowed (each one resumes
        // through restart_syscall after a stop).
        for call in [libc::SYS_nanosleep, libc::SYS_clock_nanosleep, libc::SYS_futex, libc::SYS_poll, libc::SYS_ppoll] {
            assert!(ALLOWED.contains(&call), "system call {call} is not allowed");
        }
    }

    #[test]
    fn both_filters_compile() {
        program(FATAL, SeccompAction::KillProcess, SeccompAction::Allow).unwrap();
        program(ALLOWED, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32)).unwrap();
    }
}
