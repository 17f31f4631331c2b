//! The implemented attacks, one module per scenario.
//!
//! A scenario here runs a real attack against a real component (a process, a
//! socket, a file, a TPM) and records what it tried and how it was refused.
//! Scenarios whose component does not exist yet are absent, and the ledger
//! reports them as `FAIL: not implemented`.

use std::path::PathBuf;

use crate::ledger::Scenario;

mod availability;
mod daemon;
mod input;
mod integrity;
mod policy;
mod vault;
mod x402;

/// A scenario that is one function and the checks it declares (most of
/// them; `policy.rs` also hands its function a daemon).
#[derive(Debug)]
pub(super) struct FnAttack {
    pub id: &'static str,
    /// Every check `attack` records when it makes its whole attack.
    pub checks: &'static [&'static str],
    pub attack: fn(&mut crate::ledger::Probe) -> String,
}

impl Scenario for FnAttack {
    fn id(&self) -> &'static str {
        self.id
    }

    fn checks(&self) -> &'static [&'static str] {
        self.checks
    }

    fn run(&self, probe: &mut crate::ledger::Probe) -> String {
        (self.attack)(probe)
    }
}

/// A binary built beside this runner (`keywardd`, `keyward`).
fn beside_me(name: &str) -> Option<PathBuf> {
    let p = std::env::current_exe().ok()?.parent()?.join(name);
    p.is_file().then_some(p)
}

/// Every implemented scenario.
pub fn implemented() -> Vec<Box<dyn Scenario>> {
    let mut all: Vec<Box<dyn Scenario>> = vec![
        Box::new(daemon::UnauthorisedCaller),
        Box::new(daemon::RecordTamper),
        Box::new(daemon::RecordReplay),
        Box::new(vault::BlobTamper),
        Box::new(vault::RollbackReplay),
        Box::new(vault::TpmUnavailable),
        Box::new(daemon::MemoryScraper),
        Box::new(daemon::CoreDump),
        Box::new(vault::MigrationInterrupted),
        Box::new(vault::PlaintextFallback),
    ];
    all.extend(policy::all().into_iter().map(|p| Box::new(p) as Box<dyn Scenario>));
    all.extend(x402::all().into_iter().map(|p| Box::new(p) as Box<dyn Scenario>));
    all.extend(integrity::all().into_iter().map(|p| Box::new(p) as Box<dyn Scenario>));
    all.extend(input::all().into_iter().map(|p| Box::new(p) as Box<dyn Scenario>));
    all.extend(availability::all().into_iter().map(|p| Box::new(p) as Box<dyn Scenario>));
    all
}
