//! Refused connections are counted, not written one record each.
//!
//! Every refused connection used to append and fsync its own audit record
//! (`peer_rejected`, `connection_refused`, `handshake_failed`), so a peer
//! looping on `connect` could write about 1 650 records a second and fill
//! the disk. Now, per interval (10 s) and per (event, uid, code):
//!
//! * the first refusal gets its own record at once, with every field it
//!   always had (the fact is never late and never lost);
//! * the others are counted, and the count is written as one
//!   `<event>_summary` record `{uid, gid?, code, count, first_ts_ms,
//!   last_ts_ms, interval_ms}` when the interval ends, by whichever thread
//!   next notices (the next refusal, or the accept loop within 200 ms), and
//!   at shutdown. `count` is the refusals without a record of their own, so
//!   records plus counts are every refusal.
//!
//! At most [`MAX_TRACKED`] (event, uid, code) buckets are kept per interval.
//! Refusals beyond them share one bucket per (event, code) whose summary
//! has `uid: null` and `other_uids: true` (its first refusal is recorded at
//! once, like any bucket's), so memory stays bounded however many uids an
//! attacker controls.
//!
//! A flood from one uid therefore costs at most two records per interval
//! (about 100 bytes a second) instead of one per connection.
//!
//! The state is pure: callers pass the time and write the records
//! ([`super::server`] does both), so it is unit-tested here with a clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

/// How long one counting interval lasts.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Distinct (event, uid, code) buckets tracked per interval.
pub const MAX_TRACKED: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    event: &'static str,
    /// `None`: the credentials could not be read.
    uid: Option<u32>,
    code: &'static str,
}

#[derive(Debug)]
struct Bucket {
    gid: Option<u32>,
    /// Refusals after the first (which had its own record).
    count: u64,
    first_ms: u64,
    last_ms: u64,
}

#[derive(Debug)]
struct Window {
    start_ms: u64,
    buckets: HashMap<Key, Bucket>,
    /// Beyond [`MAX_TRACKED`]: one bucket per (event, code).
    others: HashMap<(&'static str, &'static str), Bucket>,
}

/// One refusal, as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    /// The event its own record has: `peer_rejected`, `connection_refused`
    /// or `handshake_failed`.
    pub event: &'static str,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The stable code the peer was sent.
    pub code: &'static str,
}

/// A summary record to write: (event, fields).
pub type Summary = (String, Value);

#[derive(Debug)]
pub struct Refusals {
    window: Mutex<Window>,
    interval_ms: u64,
    cap: usize,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals::new(INTERVAL, MAX_TRACKED)
    }
}

impl Refusals {
    pub fn new(interval: Duration, cap: usize) -> Refusals {
        Refusals {
            window: Mutex::new(Window { start_ms: 0, buckets: HashMap::new(), others: HashMap::new() }),
            interval_ms: interval.as_millis().max(1) as u64,
            cap,
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes `r` at `now_ms`: the summaries of an interval that has ended
    /// (to be written first), and whether `r` gets its own record.
    pub fn note(&self, now_ms: u64, r: Refusal) -> (Vec<Summary>, bool) {
        let mut w = self.window();
        let due = self.roll(&mut w, now_ms);
        let key = Key { event: r.event, uid: r.uid, code: r.code };
        let fresh = || Bucket { gid: r.gid, count: 0, first_ms: 0, last_ms: 0 };
        let tracked = w.buckets.contains_key(&key) || w.buckets.len() < self.cap;
        let (bucket, new) = if tracked {
            let new = !w.buckets.contains_key(&key);
            (w.buckets.entry(key).or_insert_with(fresh), new)
        } else {
            let k = (r.event, r.code);
            let new = !w.others.contains_key(&k);
            (w.others.entry(k).or_insert_with(fresh), new)
        };
        if !new {
            if bucket.count == 0 {
                bucket.first_ms = now_ms;
            }
            bucket.count += 1;
            bucket.last_ms = now_ms;
        }
        (due, new)
    }

    /// The summaries of an interval that has ended by `now_ms` (none if it
    /// has not).
    pub fn due(&self, now_ms: u64) -> Vec<Summary> {
        let mut w = self.window();
        self.roll(&mut w, now_ms)
    }

    /// Every pending summary (at shutdown).
    pub fn drain(&self) -> Vec<Summary> {
        let mut w = self.window();
        self.close(&mut w)
    }

    /// Ends the interval if `now_ms` is past it (or before it: the clock
    /// went back), starting the next at `now_ms`.
    fn roll(&self, w: &mut Window, now_ms: u64) -> Vec<Summary> {
        if now_ms >= w.start_ms && now_ms - w.start_ms < self.interval_ms {
            return Vec::new();
        }
        let out = self.close(w);
        w.start_ms = now_ms;
        out
    }

    fn close(&self, w: &mut Window) -> Vec<Summary> {
        let interval_ms = self.interval_ms;
        let mut out: Vec<(Key, Bucket, bool)> = w.buckets.drain().map(|(k, b)| (k, b, false)).collect();
        out.extend(w.others.drain().map(|((event, code), b)| (Key { event, uid: None, code }, b, true)));
        out.retain(|(_, b, _)| b.count > 0);
        out.sort_by_key(|(k, b, _)| (b.first_ms, k.event, k.uid, k.code));
        out.into_iter()
            .map(|(k, b, others)| {
                let mut f = json!({"uid": k.uid, "code": k.code, "count": b.count, "first_ts_ms": b.first_ms,
                                   "last_ts_ms": b.last_ms, "interval_ms": interval_ms});
                if others {
                    f["other_uids"] = true.into();
                } else if let Some(g) = b.gid {
                    f["gid"] = g.into();
                }
                (format!("{}_summary", k.event), f)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(uid: u32) -> Refusal {
        Refusal { event: "peer_rejected", uid: Some(uid), gid: Some(7), code: "DENY_PEER_NOT_ALLOWED" }
    }

    #[test]
    fn a_flood_is_one_record_and_one_summary_per_interval() {
        let r = Refusals::new(Duration::from_secs(10), 1024);
        let start = 1_000_000;
        let (due, own) = r.note(start, refusal(5));
        assert!(due.is_empty() && own, "the first refusal is recorded at once");
        for i in 1..2000 {
            let (due, own) = r.note(start + i, refusal(5));
            assert!(due.is_empty() && !own);
        }
        assert!(r.due(start + 9_999).is_empty(), "the interval has not ended");
        let due = r.due(start + 10_000);
        assert_eq!(due.len(), 1);
        let (event, f) = &due[0];
        assert_eq!(event, "peer_rejected_summary");
        assert_eq!(f["count"], 1999);
        assert_eq!((f["uid"].as_u64(), f["gid"].as_u64()), (Some(5), Some(7)));
        assert_eq!((f["first_ts_ms"].as_u64(), f["last_ts_ms"].as_u64()), (Some(start + 1), Some(start + 1999)));
        assert_eq!(f["code"], "DENY_PEER_NOT_ALLOWED");
        // The next interval starts afresh: its first refusal is recorded.
        assert!(r.note(start + 10_001, refusal(5)).1);
        assert!(r.drain().is_empty(), "nothing counted yet in this interval");
    }

    #[test]
    fn each_event_uid_and_code_has_its_own_first_record() {
        let r = Refusals::new(Duration::from_secs(10), 1024);
        assert!(r.note(1, refusal(5)).1);
        assert!(r.note(2, refusal(6)).1, "another uid");
        assert!(r.note(3, Refusal { code: "IPC_BUSY", event: "connection_refused", ..refusal(5) }).1);
        assert!(r.note(4, Refusal { code: "IPC_PEER_QUOTA", event: "connection_refused", ..refusal(5) }).1);
        assert!(r.note(5, Refusal { uid: None, gid: None, ..refusal(5) }).1, "unknown credentials");
        assert!(!r.note(6, Refusal { uid: None, gid: None, ..refusal(5) }).1);
        assert!(!r.note(7, refusal(6)).1);
        // A refusal in a later interval flushes the earlier one first.
        let (due, own) = r.note(20_000, refusal(9));
        assert!(own);
        let events: Vec<(&str, Option<u64>)> = due.iter().map(|(e, f)| (e.as_str(), f["uid"].as_u64())).collect();
        assert_eq!(events, [("peer_rejected_summary", None), ("peer_rejected_summary", Some(6))]);
    }

    #[test]
    fn memory_is_bounded_by_an_other_uids_bucket() {
        let r = Refusals::new(Duration::from_secs(10), 4);
        let mut recorded = 0;
        for uid in 0..100u32 {
            for t in 0..3 {
                recorded += usize::from(r.note(u64::from(uid * 3 + t), refusal(uid)).1);
            }
        }
        {
            let w = r.window();
            assert_eq!((w.buckets.len(), w.others.len()), (4, 1));
        }
        // Four tracked uids and the first refusal of the others' bucket.
        assert_eq!(recorded, 5);
        let due = r.drain();
        let total: u64 = due.iter().map(|(_, f)| f["count"].as_u64().unwrap()).sum();
        assert_eq!(total as usize + recorded, 300, "records plus counts are every refusal");
        let others: Vec<_> = due.iter().filter(|(_, f)| f["other_uids"] == true).collect();
        assert_eq!(others.len(), 1);
        assert!(others[0].1["uid"].is_null() && others[0].1.get("gid").is_none());
    }

    #[test]
    fn a_clock_that_goes_back_ends_the_interval() {
        let r = Refusals::new(Duration::from_secs(10), 8);
        assert!(r.note(50_000, refusal(1)).1);
        assert!(!r.note(50_001, refusal(1)).1);
        let due = r.due(40_000);
        assert_eq!(due.len(), 1);
        assert!(r.note(40_001, refusal(1)).1);
    }
}
