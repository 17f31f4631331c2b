//! Waivers: the only way a scenario may report `SKIP`.
//!
//! A waiver names a scenario, an owner, an expiry date and a reason (seed 002:
//! "SKIP is allowed only with explicit waiver ID and owner approval"). A waiver
//! for a Critical scenario is rejected, as is one that is expired, names an
//! unknown scenario, lacks an owner or reason, or repeats a scenario already
//! waived. Rejected waivers are reported, never silently dropped.
//!
//! File format (JSON):
//!
//! ```json
//! {"waivers": [{"waiver_id": "W-001", "scenario": "RT-016", "owner": "ops-lead",
//!               "expires": "2026-12-31", "reason": "migration engine lands in issue 4"}]}
//! ```

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use crate::catalogue;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    pub waiver_id: String,
    pub scenario: String,
    pub owner: String,
    /// Last day (UTC, inclusive) on which the waiver applies, `YYYY-MM-DD`.
    pub expires: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    waivers: Vec<Waiver>,
}

/// A waiver that was not applied, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectedWaiver {
    #[serde(flatten)]
    pub waiver: Waiver,
    pub rejected_because: String,
}

/// The waivers of a run, sorted into applied and rejected.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WaiverSet {
    pub active: Vec<Waiver>,
    pub rejected: Vec<RejectedWaiver>,
}

/// Why a waiver file could not be read at all.
#[derive(Debug)]
pub struct WaiverFileError(pub String);

impl std::fmt::Display for WaiverFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RT_WAIVERS_INVALID: {}", self.0)
    }
}

impl std::error::Error for WaiverFileError {}

impl WaiverSet {
    /// Parses a waiver file and sorts its entries as of `today`.
    pub fn parse(json: &str, today: Date) -> Result<WaiverSet, WaiverFileError> {
        let file: WaiverFile = serde_json::from_str(json)
            .map_err(|e| WaiverFileError(format!("not a waiver file (line {}, column {})", e.line(), e.column())))?;
        Ok(Self::sort(file.waivers, today))
    }

    fn sort(waivers: Vec<Waiver>, today: Date) -> WaiverSet {
        let mut set = WaiverSet::default();
        for w in waivers {
            match Self::judge(&w, &set, today) {
                None => set.active.push(w),
                Some(why) => set.rejected.push(RejectedWaiver { waiver: w, rejected_because: why }),
            }
        }
        set
    }

    fn judge(w: &Waiver, so_far: &WaiverSet, today: Date) -> Option<String> {
        let Some(spec) = catalogue::spec(&w.scenario) else {
            return Some(format!("unknown scenario {}", w.scenario));
        };
        if !spec.severity.waivable() {
            return Some("Critical scenarios cannot be waived".to_string());
        }
        if w.waiver_id.trim().is_empty() || w.owner.trim().is_empty() || w.reason.trim().is_empty() {
            return Some("waiver_id, owner and reason are all required".to_string());
        }
        let Ok(expires) = Date::parse(&w.expires, format_description!("[year]-[month]-[day]")) else {
            return Some("expires must be a date YYYY-MM-DD".to_string());
        };
        if expires < today {
            return Some(format!("expired on {}", w.expires));
        }
        if so_far.active.iter().any(|a| a.scenario == w.scenario) {
            return Some(format!("{} already has an active waiver", w.scenario));
        }
        None
    }

    /// The active waiver for `scenario`, if any.
    pub fn for_scenario(&self, scenario: &str) -> Option<&Waiver> {
        self.active.iter().find(|w| w.scenario == scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn w(id: &str, scenario: &str, expires: &str) -> String {
        format!(
            r#"{{"waiver_id":"{id}","scenario":"{scenario}","owner":"sec-owner","expires":"{expires}","reason":"r"}}"#
        )
    }

    #[test]
    fn critical_expired_unknown_and_duplicate_waivers_are_rejected() {
        let json = format!(
            r#"{{"waivers":[{},{},{},{},{}]}}"#,
            w("W1", "RT-016", "2026-12-31"),
            w("W2", "RT-001", "2027-01-01"),
            w("W3", "RT-015", "2026-11-23"),
            w("W4", "RT-099", "2027-01-01"),
            w("W5", "RT-016", "2027-01-01"),
        );
        let set = WaiverSet::parse(&json, date!(2026 - 11 - 24)).unwrap();
        assert_eq!(set.active.len(), 1);
        assert_eq!(set.active[0].waiver_id, "W1");
        let why: Vec<&str> = set.rejected.iter().map(|r| r.rejected_because.as_str()).collect();
        assert_eq!(
            why,
            [
                "Critical scenarios cannot be waived",
                "expired on 2026-11-23",
                "unknown scenario RT-099",
                "RT-016 already has an active waiver"
            ]
        );
    }

    #[test]
    fn a_waiver_is_valid_through_its_expiry_day() {
        let json = format!(r#"{{"waivers":[{}]}}"#, w("W1", "RT-018", "2026-11-24"));
        assert_eq!(WaiverSet::parse(&json, date!(2026 - 11 - 24)).unwrap().active.len(), 1);
        assert_eq!(WaiverSet::parse(&json, date!(2026 - 11 - 25)).unwrap().active.len(), 0);
    }

    #[test]
    fn malformed_files_and_unknown_fields_are_errors() {
        let today = date!(2026 - 11 - 24);
        assert!(WaiverSet::parse("{", today).is_err());
        assert!(WaiverSet::parse(r#"{"waivers":[{"scenario":"RT-016"}]}"#, today).is_err());
        let extra = r#"{"waivers":[],"approve_all":true}"#;
        assert!(WaiverSet::parse(extra, today).unwrap_err().to_string().starts_with("RT_WAIVERS_INVALID"));
    }
}
