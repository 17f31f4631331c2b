//! Secret memory for keyward: the only crate in the workspace with `unsafe`.
//!
//! Key bytes in keyward live only in containers from this crate. Each is a
//! slot in a page that is
//!
//! * **locked** in RAM (never written to swap), and the process fails closed
//!   when it cannot lock: there is no unlocked fallback;
//! * **excluded from core dumps** (`MADV_DONTDUMP`) and **wiped in forked
//!   children** (`MADV_WIPEONFORK`, or `MADV_DONTFORK` for secret pages);
//! * where the kernel offers `memfd_secret(2)`, **removed from the kernel's
//!   direct map**, so that not even root can read it through `/proc/PID/mem`;
//! * framed by **guard pages**, so a linear overrun faults instead of reading
//!   a neighbour;
//! * **zeroed with volatile writes** when its owner drops it, before the page
//!   is reused or unlocked and unmapped.
//!
//! Containers have no `Clone`, no `Copy` and a redacting `Debug`. Copies are
//! explicit and fallible ([`MLockedBytes::try_clone`]), and secrets enter from
//! the OS CSPRNG or a reader straight into locked memory.
//!
//! The crate also holds the process hardening of the signer ([`hardening`]) and
//! typed constant-time comparison of public authenticators ([`ct`]).
//!
//! Platform: Linux. macOS and other Unixes would need their own backend and
//! hardening; Windows is out of scope (see docs/architecture.md).

#[cfg(not(target_os = "linux"))]
compile_error!("secmem supports Linux only; see docs/architecture.md (platform scope)");

mod bytes;
pub mod ct;
mod error;
pub mod hardening;
mod hex;
pub mod inspect;
mod pool;
mod secret;
mod seed;
mod sys;

use std::fmt;

pub use bytes::{MLockedBytes, MLockedSizedBytes, STACK_SCRUB_BYTES, copy_mem, scrub_stack, scrubbed, zero_mem};
pub use error::SecMemError;
pub use pool::{LockedRegion, Pool, PoolStats, configure_global, global, locked_bytes_in_use};
pub use secret::{SecretBytes, SecretString, unbuffered_stdin};
pub use seed::MLockedSeed;

/// How a pool obtains locked pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `memfd_secret(2)`: pages leave the kernel's direct map; implicitly locked.
    MemfdSecret,
    /// Anonymous pages with `mlock(2)`, `MADV_DONTDUMP` and `MADV_WIPEONFORK`.
    Mlock,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::MemfdSecret => "memfd_secret",
            Backend::Mlock => "mlock",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The system page size.
pub fn page_size() -> usize {
    sys::page_size()
}
