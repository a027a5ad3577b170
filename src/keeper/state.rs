//! One kept call's state, kept small: the keeper holds up to hundreds of thousands of them.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::CALL_DEADLINE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeeperState {
    /// Kept alive; the last keep-alive succeeded (or the first is under way).
    Active,
    /// The last keep-alive failed transiently; retrying before the deadline.
    Retrying,
    /// Graph answered 404: the call is over. No more requests.
    Ended,
    /// Graph refused for good (403, 400, an invalid id), or the keep-alive hit an internal error
    /// (a panic, named in `lastError`). No more requests.
    Failed,
    /// Stopped by the user.
    Stopped,
}

impl KeeperState {
    pub fn is_kept(self) -> bool {
        matches!(self, KeeperState::Active | KeeperState::Retrying)
    }
}

pub(super) struct Entry {
    pub state: KeeperState,
    pub interval: Duration,
    /// When the next keep-alive is due; `None` while one is in flight or the call is over.
    pub due: Option<Instant>,
    /// Bumped when a call is registered again, so stale schedule entries are skipped.
    pub generation: u32,
    pub registered: SystemTime,
    pub last_success: Option<SystemTime>,
    pub attempts: u32,
    pub consecutive_failures: u32,
    pub last_error: Option<Box<str>>,
}

/// What `Get-MgCommunicationCallKeepAlive` shows for a call. Times are Unix milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallSnapshot {
    pub call_id: String,
    pub state: KeeperState,
    pub interval_ms: u64,
    pub last_success_unix_ms: Option<u64>,
    pub next_due_unix_ms: Option<u64>,
    /// Last success (or registration) + 45 minutes: when Graph would end the call.
    pub deadline_unix_ms: u64,
    pub attempts: u32,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Entry {
    pub fn new(interval: Duration, now: Instant, wall: SystemTime, generation: u32) -> Self {
        Entry {
            state: KeeperState::Active,
            interval,
            due: Some(now),
            generation,
            registered: wall,
            last_success: None,
            attempts: 0,
            consecutive_failures: 0,
            last_error: None,
        }
    }

    pub fn deadline(&self) -> SystemTime {
        self.last_success.unwrap_or(self.registered) + CALL_DEADLINE
    }

    /// The longest a retry of this call may wait: half an interval, and half the time left
    /// before its deadline, so no wait — back-off or `Retry-After` — lets the call expire.
    pub fn retry_budget(&self, wall: SystemTime) -> Duration {
        let to_deadline = self.deadline().duration_since(wall).unwrap_or_default();
        (self.interval / 2).min((to_deadline / 2).max(Duration::from_millis(100)))
    }

    pub fn succeeded(&mut self, wall: SystemTime) {
        self.state = KeeperState::Active;
        self.last_success = Some(wall);
        self.consecutive_failures = 0;
        self.last_error = None;
    }

    pub fn failed_transiently(&mut self, error: String) {
        self.state = KeeperState::Retrying;
        self.consecutive_failures += 1;
        self.last_error = Some(error.into_boxed_str());
    }

    pub fn finished(&mut self, state: KeeperState, error: String) {
        self.state = state;
        self.due = None;
        self.consecutive_failures += 1;
        self.last_error = Some(error.into_boxed_str());
    }

    pub fn snapshot(&self, id: &str, now: Instant, wall: SystemTime) -> CallSnapshot {
        CallSnapshot {
            call_id: id.to_owned(),
            state: self.state,
            interval_ms: self.interval.as_millis() as u64,
            last_success_unix_ms: self.last_success.map(unix_ms),
            next_due_unix_ms: self.due.map(|due| unix_ms(wall + due.saturating_duration_since(now))),
            deadline_unix_ms: unix_ms(self.deadline()),
            attempts: self.attempts,
            consecutive_failures: self.consecutive_failures,
            last_error: self.last_error.as_deref().map(str::to_owned),
        }
    }
}
