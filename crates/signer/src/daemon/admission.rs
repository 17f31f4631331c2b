//! Who gets one of the daemon's sessions: a fair share of the socket.
//!
//! Three limits, checked on the accept thread once the peer's uid and role
//! are known and before the connection gets a thread:
//!
//! 1. `max_connections` live sessions in all (`IPC_BUSY`);
//! 2. `max_sessions_per_uid` live sessions per uid, every role alike
//!    (`IPC_PEER_QUOTA`), so one caller cannot hold the socket alone;
//! 3. the last `reserved_for_operators` of `max_connections` admit only
//!    approvers and admins (`IPC_BUSY` for an agent), so that however many
//!    agent uids fill their quotas, a person can still approve, deny or
//!    stop a pending request before it expires.
//!
//! With the defaults (128, 16, 16) seven agent uids at their quota fill the
//! agents' share (112) and the remaining 16 sessions are the operators'.
//!
//! The table of live sessions and the per-uid counts live under one lock,
//! so the check and the admission are one step.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;

use ipc::api::Role;

use super::config::DaemonSection;

/// The three numbers admission works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub per_uid: usize,
    pub reserved: usize,
}

impl Limits {
    pub fn of(d: &DaemonSection) -> Limits {
        Limits {
            max_connections: d.max_connections,
            per_uid: d.max_sessions_per_uid,
            reserved: d.reserved_for_operators(),
        }
    }

    /// Live sessions beyond which only approvers and admins are admitted.
    pub fn agents_share(&self) -> usize {
        self.max_connections.saturating_sub(self.reserved)
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// All sessions are taken, or all the agents' share is (`IPC_BUSY`).
    Busy,
    /// This uid holds its quota (`IPC_PEER_QUOTA`).
    Quota,
}

impl Refused {
    /// The stable alert code.
    pub fn code(self) -> &'static str {
        match self {
            Refused::Busy => "IPC_BUSY",
            Refused::Quota => "IPC_PEER_QUOTA",
        }
    }
}

/// Whether a peer with `role` that holds `of_uid` sessions may open one
/// more while `live` are open.
pub fn decide(limits: &Limits, live: usize, of_uid: usize, role: Role) -> Result<(), Refused> {
    if live >= limits.max_connections {
        return Err(Refused::Busy);
    }
    if of_uid >= limits.per_uid {
        return Err(Refused::Quota);
    }
    let operator = matches!(role, Role::Approver | Role::Admin);
    if !operator && live >= limits.agents_share() {
        return Err(Refused::Busy);
    }
    Ok(())
}

/// The live sessions: a clone of each stream (to wake it at shutdown) and
/// its peer's uid, with the count per uid.
#[derive(Debug, Default)]
pub struct Live {
    sessions: HashMap<u64, (UnixStream, u32)>,
    per_uid: HashMap<u32, usize>,
}

impl Live {
    /// Admits session `id` of `uid` under `limits`, or says why not.
    pub fn admit(
        &mut self,
        limits: &Limits,
        id: u64,
        uid: u32,
        role: Role,
        stream: impl FnOnce() -> std::io::Result<UnixStream>,
    ) -> Result<(), Refused> {
        let of_uid = self.per_uid.get(&uid).copied().unwrap_or(0);
        decide(limits, self.sessions.len(), of_uid, role)?;
        let stream = stream().map_err(|_| Refused::Busy)?;
        self.sessions.insert(id, (stream, uid));
        *self.per_uid.entry(uid).or_insert(0) += 1;
        Ok(())
    }

    /// Ends session `id`; its stream, if it was live.
    pub fn remove(&mut self, id: u64) -> Option<UnixStream> {
        let (stream, uid) = self.sessions.remove(&id)?;
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
        }
        Some(stream)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions `uid` holds.
    #[cfg(test)]
    fn of_uid(&self, uid: u32) -> usize {
        self.per_uid.get(&uid).copied().unwrap_or(0)
    }

    pub fn streams(&self) -> impl Iterator<Item = &UnixStream> {
        self.sessions.values().map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Limits = Limits { max_connections: 128, per_uid: 16, reserved: 16 };

    fn pair() -> std::io::Result<UnixStream> {
        UnixStream::pair().map(|(a, _)| a)
    }

    #[test]
    fn quotas_then_the_agents_share_then_the_total() {
        let mut live = Live::default();
        let mut id = 0;
        let mut open = |live: &mut Live, uid: u32, role: Role| {
            id += 1;
            live.admit(&DEFAULTS, id, uid, role, pair)
        };
        // One agent uid: 16 sessions, then its quota.
        for _ in 0..16 {
            open(&mut live, 1000, Role::Agent).unwrap();
        }
        assert_eq!(open(&mut live, 1000, Role::Agent), Err(Refused::Quota));
        // Six more agent uids fill the agents' share (7 × 16 = 112).
        for uid in 1001..1007 {
            for _ in 0..16 {
                open(&mut live, uid, Role::Agent).unwrap();
            }
        }
        assert_eq!(live.len(), 112);
        assert_eq!(open(&mut live, 1007, Role::Agent), Err(Refused::Busy), "an eighth agent uid");
        // The reserve: operators only, each within its own quota.
        for _ in 0..16 {
            open(&mut live, 0, Role::Admin).unwrap();
        }
        assert_eq!(open(&mut live, 0, Role::Admin), Err(Refused::Busy), "the total is reached");
        assert_eq!(live.len(), 128);
        assert_eq!(open(&mut live, 991, Role::Approver), Err(Refused::Busy));
        // A session ends: an approver may take it, an agent still may not.
        assert!(live.remove(1).is_some());
        assert_eq!(live.of_uid(1000), 15);
        assert_eq!(open(&mut live, 1007, Role::Agent), Err(Refused::Busy));
        open(&mut live, 991, Role::Approver).unwrap();
        assert!(live.remove(1).is_none(), "removed once");
    }

    #[test]
    fn operators_have_a_quota_too_and_counts_return_to_zero() {
        let limits = Limits { max_connections: 10, per_uid: 2, reserved: 4 };
        let mut live = Live::default();
        live.admit(&limits, 1, 0, Role::Admin, pair).unwrap();
        live.admit(&limits, 2, 0, Role::Admin, pair).unwrap();
        assert_eq!(live.admit(&limits, 3, 0, Role::Admin, pair), Err(Refused::Quota));
        assert_eq!(Refused::Quota.code(), "IPC_PEER_QUOTA");
        assert_eq!(Refused::Busy.code(), "IPC_BUSY");
        live.remove(1);
        live.remove(2);
        assert!(live.is_empty());
        assert_eq!(live.of_uid(0), 0);
        assert!(live.per_uid.is_empty(), "no entry kept for a uid without sessions");
        let broken = || Err(std::io::Error::other("no descriptor"));
        assert_eq!(live.admit(&limits, 4, 7, Role::Agent, broken), Err(Refused::Busy));
        assert!(live.is_empty());
    }

    #[test]
    fn no_reserve_when_none_is_configured() {
        let limits = Limits { max_connections: 4, per_uid: 16, reserved: 0 };
        assert_eq!(decide(&limits, 3, 3, Role::Agent), Ok(()));
        assert_eq!(decide(&limits, 4, 0, Role::Admin), Err(Refused::Busy));
        assert_eq!(limits.agents_share(), 4);
    }
}
