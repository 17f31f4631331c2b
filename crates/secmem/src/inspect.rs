//! Reading this process's own memory map, for self-checks and tests.
//!
//! The guarantees of this crate are properties the kernel reports, not
//! properties of our code: whether a page is locked (`Locked:` in smaps),
//! excluded from dumps (`dd` in `VmFlags`), or unreadable even through
//! `/proc/self/mem` (memfd_secret). These helpers read those reports so that
//! the self-check and the tests assert what the kernel says, not what we hope.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;

/// One mapping as `/proc/self/smaps` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingInfo {
    pub start: usize,
    pub end: usize,
    pub perms: String,
    pub path: String,
    pub size_kb: u64,
    pub rss_kb: u64,
    pub locked_kb: u64,
    pub vm_flags: Vec<String>,
}

impl MappingInfo {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.vm_flags.iter().any(|f| f == flag)
    }

    pub fn is_readable(&self) -> bool {
        self.perms.starts_with('r')
    }
}

fn parse_range(s: &str) -> Option<(usize, usize)> {
    let (a, b) = s.split_once('-')?;
    Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?))
}

/// Every mapping of this process, from `/proc/self/smaps`.
pub fn own_mappings() -> io::Result<Vec<MappingInfo>> {
    let text = fs::read_to_string("/proc/self/smaps")?;
    let mut out: Vec<MappingInfo> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = parse_range(first) {
            let perms = fields.next().unwrap_or("").to_string();
            let path = fields.nth(3).map(str::to_string).unwrap_or_default();
            let rest: Vec<&str> = fields.collect();
            let path = if rest.is_empty() { path } else { format!("{path} {}", rest.join(" ")) };
            out.push(MappingInfo {
                start,
                end,
                perms,
                path,
                size_kb: 0,
                rss_kb: 0,
                locked_kb: 0,
                vm_flags: Vec::new(),
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let value = || fields.clone().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match first {
            "Size:" => m.size_kb = value(),
            "Rss:" => m.rss_kb = value(),
            "Locked:" => m.locked_kb = value(),
            "VmFlags:" => m.vm_flags = fields.map(str::to_string).collect(),
            _ => {}
        }
    }
    Ok(out)
}

/// The mapping that contains `addr`, if any.
pub fn mapping_containing(addr: *const u8) -> io::Result<Option<MappingInfo>> {
    let addr = addr as usize;
    Ok(own_mappings()?.into_iter().find(|m| m.start <= addr && addr < m.end))
}

/// Reads `len` bytes at `addr` through `/proc/self/mem`, the path a memory
/// scraper with ptrace rights uses. Secret-backend pages make this fail.
pub fn read_via_proc_mem(addr: *const u8, len: usize) -> io::Result<Vec<u8>> {
    let mem = File::open("/proc/self/mem")?;
    let mut buf = vec![0u8; len];
    mem.read_exact_at(&mut buf, addr as u64)?;
    Ok(buf)
}

/// Calls `visit(address, bytes)` for the readable memory of this process, in
/// chunks of at most 1 MiB that overlap by `overlap` bytes, so that a needle
/// of up to `overlap + 1` bytes is never split. Regions the kernel refuses to
/// read (guard pages, secret pages, vsyscall) are skipped: a scraper cannot
/// read them either.
pub fn scan_own_memory(overlap: usize, mut visit: impl FnMut(usize, &[u8])) -> io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let mem = File::open("/proc/self/mem")?;
    let mut buf = vec![0u8; CHUNK + overlap];
    for m in own_mappings()? {
        if !m.is_readable() || m.path == "[vsyscall]" || m.path.starts_with("[vvar") {
            continue;
        }
        let mut at = m.start;
        while at < m.end {
            let want = (m.end - at).min(CHUNK + overlap);
            match mem.read_at(&mut buf[..want], at as u64) {
                Ok(n) if n > 0 => visit(at, &buf[..n]),
                _ => {}
            }
            at += CHUNK;
        }
    }
    // The buffer held copies of whatever was read; leave none behind.
    crate::zero_mem(&mut buf);
    Ok(())
}
