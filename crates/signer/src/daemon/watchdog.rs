//! Long-lived background threads fail closed.
//!
//! The daemon's guarantees depend on threads nobody talks to: the
//! `key-reaper` alone keeps the unseal window (no signing key outlives it by
//! more than one reaper interval). If such a thread dies, by a panic or by
//! returning while the daemon is serving, nothing would notice: keys would
//! stay unsealed and `status` would keep reporting the old figures. So every
//! such thread is started through [`spawn`], which catches its end and then,
//! in this order:
//!
//! 1. runs the caller's `on_death` (for the reaper, [`fail_closed`]: signing
//!    stops, every cached key is wiped, and a `thread_died` audit record
//!    `{thread, detail}` is written);
//! 2. sets `stopping`, so the daemon shuts down gracefully (every session
//!    closed, the socket removed, the `stopped` record written) and exits
//!    with status [`EXIT_THREAD_DIED`] (70, `EX_SOFTWARE`), not 0, so that a
//!    supervisor (`Restart=on-failure`) starts a fresh, whole daemon.
//!
//! Restarting is preferred to respawning the thread in place: whatever
//! killed it (a sandbox refusal, a poisoned lock, a bug) may kill the next
//! one too, and a fresh process re-checks everything start-up checks.
//! Step 2 runs even if step 1 panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::json;

use super::server::Shared;

/// The exit status of a daemon that stopped because a background thread died.
pub const EXIT_THREAD_DIED: u8 = 70;

/// How a background thread ended, while the daemon was not stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    pub thread: String,
    pub detail: String,
}

/// The deaths seen (the first decides the exit status).
#[derive(Debug, Default)]
pub struct Watchdog {
    deaths: Mutex<Vec<Death>>,
}

impl Watchdog {
    pub fn note(&self, d: &Death) {
        self.deaths.lock().unwrap_or_else(|p| p.into_inner()).push(d.clone());
    }

    pub fn deaths(&self) -> Vec<Death> {
        self.deaths.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// 0 after a normal stop, [`EXIT_THREAD_DIED`] after a thread died.
    pub fn exit_code(&self) -> std::process::ExitCode {
        if self.deaths().is_empty() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(EXIT_THREAD_DIED)
        }
    }
}

/// The words of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Starts thread `name` running `body`. If `body` panics, returns an
/// error, or returns while `stopping` is unset, `on_death` runs with why,
/// and then `stopping` is set.
pub fn spawn<B, D>(name: &str, stopping: Arc<AtomicBool>, on_death: D, body: B) -> std::io::Result<JoinHandle<()>>
where
    B: FnOnce() -> Result<(), String> + Send + 'static,
    D: FnOnce(&Death) + Send + 'static,
{
    let thread = name.to_string();
    std::thread::Builder::new().name(thread.clone()).spawn(move || {
        let detail = match catch_unwind(AssertUnwindSafe(body)) {
            Err(payload) => Some(format!("panicked: {}", panic_text(&*payload))),
            Ok(Err(why)) => Some(why),
            Ok(Ok(())) if !stopping.load(Ordering::SeqCst) => Some("returned while the daemon was serving".into()),
            Ok(Ok(())) => None,
        };
        if let Some(detail) = detail {
            let death = Death { thread, detail };
            let _ = catch_unwind(AssertUnwindSafe(|| on_death(&death)));
            stopping.store(true, Ordering::SeqCst);
        }
    })
}

/// What the daemon does when one of its background threads dies: no key
/// is unsealed or used again, the cached ones are wiped, the death is
/// audited and told to stderr; [`spawn`] then sets `stopping`.
pub fn fail_closed(shared: &Shared, d: &Death) {
    shared.keys.stop_signing();
    shared.watchdog.note(d);
    eprintln!("keywardd: KW_THREAD_DIED: thread {} {}; signing stopped, shutting down", d.thread, d.detail);
    shared.audit.record("thread_died", json!({"thread": d.thread, "detail": d.detail}));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn run(stop_first: bool, body: impl FnOnce() -> Result<(), String> + Send + 'static) -> (Option<Death>, bool) {
        let stopping = Arc::new(AtomicBool::new(stop_first));
        let (tx, rx) = mpsc::channel();
        let h = spawn("test-thread", Arc::clone(&stopping), move |d| tx.send(d.clone()).unwrap(), body).unwrap();
        h.join().unwrap();
        (rx.try_recv().ok(), stopping.load(Ordering::SeqCst))
    }

    #[test]
    fn a_panic_is_a_death_and_stops_the_daemon() {
        let (death, stopping) = run(false, || panic!("assertion failed: EINTR"));
        let d = death.expect("the death was reported");
        assert_eq!(d.thread, "test-thread");
        assert!(d.detail.contains("panicked") && d.detail.contains("EINTR"), "{}", d.detail);
        assert!(stopping);
        let (death, _) = run(false, || std::panic::panic_any(format!("formatted {}", 1)));
        assert!(death.unwrap().detail.contains("formatted 1"));
    }

    #[test]
    fn returning_while_serving_or_an_error_is_a_death() {
        let (death, stopping) = run(false, || Ok(()));
        assert_eq!(death.unwrap().detail, "returned while the daemon was serving");
        assert!(stopping);
        let (death, stopping) = run(false, || Err("cannot wait: errno 1".into()));
        assert_eq!(death.unwrap().detail, "cannot wait: errno 1");
        assert!(stopping);
    }

    #[test]
    fn returning_after_stopping_is_not_a_death() {
        let (death, _) = run(true, || Ok(()));
        assert!(death.is_none());
    }

    #[test]
    fn stopping_is_set_even_if_the_death_handler_panics() {
        let stopping = Arc::new(AtomicBool::new(false));
        let h = spawn("t", Arc::clone(&stopping), |_| panic!("handler"), || panic!("body")).unwrap();
        h.join().unwrap();
        assert!(stopping.load(Ordering::SeqCst));
    }

    #[test]
    fn the_exit_status_tells_a_supervisor_to_restart() {
        let w = Watchdog::default();
        assert_eq!(w.exit_code(), std::process::ExitCode::SUCCESS);
        w.note(&Death { thread: "key-reaper".into(), detail: "panicked: x".into() });
        assert_eq!(w.exit_code(), std::process::ExitCode::from(EXIT_THREAD_DIED));
        assert_eq!(w.deaths().len(), 1);
    }
}
