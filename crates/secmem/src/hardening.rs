//! Process hardening for the signer, and the strict-profile self-check.
//!
//! [`harden_process`] applies the controls that keep a live signer's memory to
//! itself: no core dumps (`RLIMIT_CORE` 0/0), not dumpable (`PR_SET_DUMPABLE`
//! 0, which also refuses ptrace attach and `/proc/PID/mem` to every other
//! process of the same user), no privilege gain through exec
//! (`PR_SET_NO_NEW_PRIVS`), and an environment scrubbed of secret-bearing
//! variables: their values are overwritten in place, so they vanish from
//! `/proc/PID/environ` too, not only from `getenv`.
//!
//! [`self_check`] then asks the kernel whether each control really is in force
//! (it does not trust what `harden_process` believes it did) and returns one
//! [`Control`] per check. In the strict profile a mandatory control that is off
//! means the signer must refuse to start.

use std::ffi::{CStr, CString};
use std::fmt::Write as _;

use crate::inspect;
use crate::{Backend, Pool};

/// Substrings (upper case) that mark an environment variable as secret-bearing.
pub const SECRET_ENV_MARKERS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "TOKEN",
    "PRIVATE",
    "PRIVKEY",
    "SEED",
    "MNEMONIC",
    "API_KEY",
    "APIKEY",
    "CREDENTIAL",
    "KEYPAIR",
    "SKEY",
    "SIGNING_KEY",
];

/// Whether an environment variable of this name is treated as a secret:
/// its name contains one of [`SECRET_ENV_MARKERS`] or ends in `_KEY`.
pub fn is_secret_env_name(name: &[u8]) -> bool {
    let upper = name.to_ascii_uppercase();
    let upper = String::from_utf8_lossy(&upper);
    upper.ends_with("_KEY") || SECRET_ENV_MARKERS.iter().any(|m| upper.contains(m))
}

/// This process's effective user id (owner checks on key files compare against it).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// What [`harden_process`] did. Errors are errno values; the self-check is the
/// authority on what is in force.
#[derive(Debug, Default)]
pub struct HardeningOutcome {
    pub core_limit_errno: Option<i32>,
    pub dumpable_errno: Option<i32>,
    pub no_new_privs_errno: Option<i32>,
    /// Names (never values) of the environment variables that were scrubbed.
    pub scrubbed_env: Vec<String>,
}

/// Applies every hardening control to this process.
///
/// Call it first thing in `main`, while the process has one thread: the
/// environment scrub edits the C environment directly, which is only sound
/// when no other thread reads it, and `no_new_privs` is a per-thread attribute
/// that only threads created afterwards inherit.
pub fn harden_process() -> HardeningOutcome {
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit reads a valid rlimit struct we own.
    let core = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    // SAFETY: prctl with integer arguments only.
    let dumpable = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // SAFETY: prctl with integer arguments only.
    let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    let err = |rc: libc::c_int| (rc != 0).then(crate::sys::errno);
    HardeningOutcome {
        core_limit_errno: err(core),
        dumpable_errno: err(dumpable),
        no_new_privs_errno: err(nnp),
        scrubbed_env: scrub_secret_environment(),
    }
}

unsafe extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// Overwrites the value of every secret-bearing environment variable in place
/// with zeros, then unsets it. Returns the names that were scrubbed.
///
/// Must run while the process is single-threaded (see [`harden_process`]).
pub fn scrub_secret_environment() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: `environ` is the C library's NULL-terminated array of pointers to
    // NUL-terminated "NAME=VALUE" strings. The caller guarantees no other
    // thread reads or changes the environment while we walk it. We write only
    // inside each string's own bytes (its value part), never past its NUL.
    unsafe {
        let mut entry_ptr = environ;
        while !entry_ptr.is_null() && !(*entry_ptr).is_null() {
            let entry = *entry_ptr;
            let bytes = CStr::from_ptr(entry).to_bytes();
            if let Some(eq) = bytes.iter().position(|&b| b == b'=')
                && is_secret_env_name(&bytes[..eq])
            {
                names.push(String::from_utf8_lossy(&bytes[..eq]).into_owned());
                let value_len = bytes.len() - eq - 1;
                let value = std::slice::from_raw_parts_mut(entry.add(eq + 1).cast::<u8>(), value_len);
                crate::zero_mem(value);
            }
            entry_ptr = entry_ptr.add(1);
        }
    }
    for name in &names {
        if let Ok(c) = CString::new(name.as_bytes()) {
            // SAFETY: single-threaded per the contract above; `c` is a valid C string.
            unsafe { libc::unsetenv(c.as_ptr()) };
        }
    }
    names
}

/// One hardening control as the self-check found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub name: &'static str,
    pub on: bool,
    pub mandatory: bool,
    pub detail: String,
}

impl Control {
    /// One structured line (a JSON object) for logs and operators.
    pub fn to_line(&self, profile: &str) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"event\":\"selfcheck\",\"profile\":\"{profile}\",\"control\":\"{}\",\"state\":\"{}\",\"mandatory\":{},\"detail\":\"",
            self.name,
            if self.on { "on" } else { "off" },
            self.mandatory
        );
        for ch in self.detail.chars() {
            match ch {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(s, "\\u{:04x}", c as u32);
                }
                c => s.push(c),
            }
        }
        s.push_str("\"}");
        s
    }
}

/// The result of [`self_check`].
#[derive(Debug, Clone)]
pub struct SelfCheck {
    pub profile: &'static str,
    pub controls: Vec<Control>,
}

impl SelfCheck {
    /// Mandatory controls that are off. Empty means the process may start.
    pub fn failures(&self) -> Vec<&Control> {
        self.controls.iter().filter(|c| c.mandatory && !c.on).collect()
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    pub fn lines(&self) -> Vec<String> {
        self.controls.iter().map(|c| c.to_line(self.profile)).collect()
    }
}

/// Checks, from what the kernel reports, every control of the strict profile.
/// `pool` is the pool secrets will come from; one probe allocation is made
/// from it and inspected.
pub fn self_check(pool: &'static Pool) -> SelfCheck {
    let mut controls = vec![check_core_limit(), check_not_dumpable(), check_no_new_privs(), check_environment()];
    controls.extend(check_secret_pages(pool));
    controls.push(check_yama());
    SelfCheck { profile: "strict", controls }
}

fn check_core_limit() -> Control {
    let mut lim = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) };
    Control {
        name: "core_dumps_disabled",
        on: rc == 0 && lim.rlim_cur == 0 && lim.rlim_max == 0,
        mandatory: true,
        detail: format!("RLIMIT_CORE soft={} hard={}", lim.rlim_cur, lim.rlim_max),
    }
}

fn check_not_dumpable() -> Control {
    // SAFETY: prctl with integer arguments only.
    let v = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    Control {
        name: "not_dumpable",
        on: v == 0,
        mandatory: true,
        detail: format!("PR_GET_DUMPABLE={v} (0 also denies ptrace attach and /proc/PID/mem to peers)"),
    }
}

fn check_no_new_privs() -> Control {
    // SAFETY: prctl with integer arguments only.
    let v = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    Control { name: "no_new_privs", on: v == 1, mandatory: true, detail: format!("PR_GET_NO_NEW_PRIVS={v}") }
}

/// Secret-named variables with a non-empty value, in the live environment or
/// in the process's initial environment block (`/proc/self/environ`).
fn check_environment() -> Control {
    let mut offenders: Vec<String> = std::env::vars_os()
        .filter(|(k, v)| is_secret_env_name(k.as_encoded_bytes()) && !v.is_empty())
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    let block = initial_environment_block();
    if let Ok(block) = &block {
        for entry in block.split(|&b| b == 0) {
            if let Some(eq) = entry.iter().position(|&b| b == b'=')
                && is_secret_env_name(&entry[..eq])
                && eq + 1 < entry.len()
            {
                offenders.push(format!("{} (initial block)", String::from_utf8_lossy(&entry[..eq])));
            }
        }
    }
    let detail = match (&block, offenders.is_empty()) {
        (Err(e), _) => format!("cannot read the initial environment block: {}", e.kind()),
        (Ok(_), true) => "no secret-bearing variable has a value".to_string(),
        (Ok(_), false) => format!("secret-bearing variables present: {}", offenders.join(",")),
    };
    Control { name: "env_scrubbed", on: block.is_ok() && offenders.is_empty(), mandatory: true, detail }
}

/// The process's initial environment block: what `/proc/PID/environ` shows.
///
/// A non-dumpable process of an unprivileged user may not open its own
/// `/proc/self/environ` (the kernel makes it root's), so the block is read in
/// place, at the `env_start..env_end` addresses `/proc/self/stat` reports.
fn initial_environment_block() -> std::io::Result<Vec<u8>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name, which may contain spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // env_start and env_end are fields 50 and 51; `fields[0]` is field 3.
    let parse = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<usize>().ok());
    let (Some(start), Some(end)) = (parse(50), parse(51)) else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "no env_start/env_end"));
    };
    if start == 0 || end <= start || end - start > (1 << 24) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "implausible environment range"));
    }
    // SAFETY: the kernel reports this range as the environment strings it placed
    // at the top of our initial stack; that stack mapping stays mapped and
    // readable for the life of the process. We only read it.
    let block = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
    Ok(block.to_vec())
}

/// Allocates a probe secret and asks the kernel about its page.
fn check_secret_pages(pool: &'static Pool) -> Vec<Control> {
    let mut memlock = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut memlock) };
    let backend = pool.backend();
    let probe = match pool.alloc(32) {
        Ok(p) => p,
        Err(e) => {
            let off = |name, detail: String| Control { name, on: false, mandatory: true, detail };
            return vec![
                off("locked_memory", format!("backend={backend} probe allocation failed: {e}")),
                off("dump_exclusion", "no probe page to inspect".to_string()),
            ];
        }
    };
    let info = inspect::mapping_containing(probe.as_ptr()).ok().flatten();
    let (locked, dd, flags) = match &info {
        Some(m) => {
            (m.has_flag("lo") && m.locked_kb >= m.size_kb && m.size_kb > 0, m.has_flag("dd"), m.vm_flags.join(" "))
        }
        None => (false, false, "mapping not found".to_string()),
    };
    let secretmem = info.as_ref().is_some_and(|m| m.path.starts_with("/secretmem"));
    let refusal = if backend == Backend::MemfdSecret { proc_mem_refusal(&probe) } else { MemRefusal::Readable };
    let hidden = secretmem && refusal != MemRefusal::Readable;
    let mut out = vec![
        Control {
            name: "locked_memory",
            on: locked,
            mandatory: true,
            detail: format!(
                "backend={backend} rlimit_memlock={} locked_bytes={} vmflags=[{flags}]",
                memlock.rlim_cur,
                pool.stats().locked_bytes
            ),
        },
        Control { name: "dump_exclusion", on: dd, mandatory: true, detail: format!("VmFlags dd={dd}") },
    ];
    out.push(Control {
        name: "direct_map_removal",
        on: hidden,
        mandatory: false,
        detail: if backend == Backend::MemfdSecret {
            format!("mapping={} /proc/self/mem: {}", info.as_ref().map_or("?", |m| m.path.as_str()), refusal.describe())
        } else {
            "mlock backend: pages stay in the kernel direct map (memfd_secret unavailable)".to_string()
        },
    });
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemRefusal {
    /// The page was read: nothing hides it.
    Readable,
    /// The mem file opened but reading the page failed: the memfd_secret guarantee.
    ReadRefused,
    /// The mem file itself is closed to this process (non-dumpable and
    /// unprivileged); the page is then judged by its mapping alone.
    OpenRefused,
}

impl MemRefusal {
    fn describe(self) -> &'static str {
        match self {
            MemRefusal::Readable => "page readable",
            MemRefusal::ReadRefused => "read of the page refused",
            MemRefusal::OpenRefused => "mem file closed to this non-dumpable process",
        }
    }
}

fn proc_mem_refusal(region: &crate::LockedRegion) -> MemRefusal {
    use std::os::unix::fs::FileExt;
    let Ok(mem) = std::fs::File::open("/proc/self/mem") else { return MemRefusal::OpenRefused };
    let mut byte = [0u8; 1];
    match mem.read_exact_at(&mut byte, region.as_ptr() as u64) {
        Ok(()) => MemRefusal::Readable,
        Err(_) => MemRefusal::ReadRefused,
    }
}

fn check_yama() -> Control {
    let v = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok();
    let scope = v.as_deref().and_then(|s| s.trim().parse::<u32>().ok());
    Control {
        name: "yama_ptrace_scope",
        on: scope.is_some_and(|s| s >= 1),
        mandatory: false,
        detail: match scope {
            Some(s) => format!("ptrace_scope={s}"),
            None => "Yama LSM not present; not_dumpable still refuses ptrace by peers".to_string(),
        },
    }
}
