//! The red-team ledger: every scenario RT-001..RT-018 of seed 002, run against
//! the real components, judged strictly, and written out as CI evidence.
//!
//! * [`catalogue`]: the scenario IDs, severities and texts, and the BUF → RT map.
//! * [`ledger`]: runs scenarios and judges them. A `PASS` requires that every
//!   check the scenario declared ran and held, and no other was recorded (a
//!   scenario that stops early fails); an unimplemented scenario is `FAIL`;
//!   `SKIP` needs a waiver.
//! * [`waivers`]: the waiver file and its rules (Critical is never waivable).
//! * [`artifacts`]: the evidence files.
//! * [`scenarios`]: the attacks themselves; [`peer`]: the runner re-executed
//!   as a hostile local uid.
//!
//! This crate is separate from the `keyward` client because it must link
//! every component, the key-holding ones included, to attack them.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod catalogue;
pub mod ledger;
pub mod peer;
pub mod scenarios;
pub mod waivers;
