//! `Wait-MgCommunicationCallKeepAlive`: waits until kept calls end or fail, step by step, so a
//! host can write each call as soon as it is seen. A [`Waiter`] is advanced with
//! [`Waiter::next`], which returns as soon as it has something to report (calls that ended or
//! failed, calls named but not kept, calls stopped meanwhile) or the wait is over (every call
//! done, `any` satisfied, or the timeout reached). It sleeps on the keeper's events in between.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::{events, list, not_kept, CallAnswer, KeeperState, KEEPER};

/// What to wait for.
#[derive(Debug, Default, Clone)]
pub struct WaitRequest {
    /// The calls to wait for; `None`: every call kept when the wait starts.
    pub call_ids: Option<Vec<String>>,
    /// Done as soon as one of them has ended or failed.
    pub any: bool,
    /// How long to wait at most, in 100 ns ticks (as the host's TimeSpan gave it); `None`: no limit.
    pub timeout_ticks: Option<u64>,
}

/// The timeout was reached: the calls still kept, and the message to show.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitTimedOut {
    pub call_ids: Vec<String>,
    pub message: String,
}

/// One step of a wait: what to report now, and whether the wait is over.
#[derive(Debug, Default)]
pub struct WaitStep {
    /// The states of calls that ended or failed, then not-kept errors for named calls.
    pub calls: Vec<CallAnswer>,
    /// Notes for the user (shown with -Verbose): calls no longer kept, so no longer waited for.
    pub notes: Vec<String>,
    pub timed_out: Option<WaitTimedOut>,
    pub done: bool,
}

impl WaitStep {
    fn has_news(&self) -> bool {
        !self.calls.is_empty() || !self.notes.is_empty() || self.timed_out.is_some()
    }
}

/// A wait under way. Send it between steps; drop it to give up.
#[derive(Debug)]
pub struct Waiter {
    request: WaitRequest,
    started: Instant,
    deadline: Option<Instant>,
    /// Calls still waited for, in call id order (the keeper lists them so).
    pending: BTreeSet<String>,
    after_seq: u64,
    last_check: Instant,
    first_step_done: bool,
}

/// How often the pending calls are listed even without events (a safety net: stops and
/// disconnects raise events, but old events are dropped when thousands pile up).
fn check_every(pending: usize) -> Duration {
    Duration::from_millis(1000.max(pending as u64 / 10))
}

impl Waiter {
    pub fn new(request: WaitRequest) -> Waiter {
        let started = Instant::now();
        let deadline = request
            .timeout_ticks
            .and_then(|ticks| started.checked_add(Duration::from_nanos(ticks.saturating_mul(100))));
        Waiter { request, started, deadline, pending: BTreeSet::new(), after_seq: 0, last_check: started, first_step_done: false }
    }

    /// The next step: returns at once with what is already known, else when a call ends, fails
    /// or is stopped, or at the deadline.
    pub async fn next(&mut self) -> WaitStep {
        let mut step = WaitStep::default();
        if !self.first_step_done {
            self.first_step_done = true;
            self.first(&mut step);
            if step.done || step.has_news() {
                return step;
            }
        }
        loop {
            let notified = KEEPER.event_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                step.timed_out = Some(self.timed_out());
                step.done = true;
                return step;
            }
            let (new_events, last_seq) = events(self.after_seq, Duration::ZERO);
            let gap = new_events.first().is_some_and(|e| e.seq > self.after_seq.saturating_add(1));
            self.after_seq = last_seq;
            let periodic = self.last_check.elapsed() >= check_every(self.pending.len());
            let ids: Vec<String> = if gap || periodic {
                self.last_check = Instant::now();
                self.pending.iter().cloned().collect()
            } else {
                let mut seen = HashSet::new();
                new_events.into_iter().map(|e| e.call_id).filter(|id| self.pending.contains(id) && seen.insert(id.clone())).collect()
            };
            if !ids.is_empty() {
                self.check(ids, &mut step);
            }
            if step.done || self.pending.is_empty() {
                step.done = true;
                return step;
            }
            if step.has_news() {
                return step;
            }
            let next_check = self.last_check + check_every(self.pending.len());
            let wake = self.deadline.map_or(next_check, |d| d.min(next_check));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Lists the calls: those already over are reported at once, named ones not kept are errors.
    fn first(&mut self, step: &mut WaitStep) {
        // Events after this are new: taken before the list, so nothing is missed.
        self.after_seq = events(u64::MAX, Duration::ZERO).1;
        let named = self.request.call_ids.take().map(|ids| {
            let mut unique = HashSet::new();
            ids.into_iter().filter(|id| unique.insert(id.clone())).collect::<Vec<_>>()
        });
        let listed = match &named {
            Some(ids) if ids.is_empty() => Vec::new(),
            Some(ids) => list(Some(ids.clone()), None),
            None => list(None, None),
        };
        let found: HashSet<String> = listed.iter().map(|s| s.call_id.clone()).collect();
        for state in listed {
            if is_over(state.state) {
                step.done |= self.request.any;
                step.calls.push(CallAnswer::State(state));
            } else {
                self.pending.insert(state.call_id);
            }
        }
        for id in named.iter().flatten().filter(|id| !found.contains(*id)) {
            step.calls.push(not_kept(id));
        }
        step.done |= self.pending.is_empty();
    }

    /// Lists `ids` (pending calls): reports those that ended or failed, forgets those no longer kept.
    fn check(&mut self, ids: Vec<String>, step: &mut WaitStep) {
        let listed = list(Some(ids.clone()), None);
        let seen: HashSet<&str> = listed.iter().map(|s| s.call_id.as_str()).collect();
        for id in ids.iter().filter(|id| !seen.contains(id.as_str())) {
            if self.pending.remove(id) {
                step.notes.push(format!("Call '{id}' is no longer kept; not waiting for it."));
            }
        }
        for state in listed {
            if is_over(state.state) && self.pending.remove(&state.call_id) {
                step.done |= self.request.any;
                step.calls.push(CallAnswer::State(state));
            }
        }
    }

    fn timed_out(&self) -> WaitTimedOut {
        let call_ids: Vec<String> = self.pending.iter().cloned().collect();
        let mut shown = call_ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if call_ids.len() > 5 {
            shown.push_str(&format!(", ... ({} calls)", call_ids.len()));
        }
        let after = timespan_text(self.request.timeout_ticks.unwrap_or_default());
        WaitTimedOut { message: format!("Timed out after {after} waiting for kept calls to end or fail; still kept: {shown}."), call_ids }
    }

    /// How long this wait has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

fn is_over(state: KeeperState) -> bool {
    matches!(state, KeeperState::Ended | KeeperState::Failed)
}

/// A duration in 100 ns ticks as .NET's `TimeSpan.ToString()` writes it: `[d.]hh:mm:ss[.fffffff]`.
pub fn timespan_text(ticks: u64) -> String {
    const TICKS_PER_SECOND: u64 = 10_000_000;
    let seconds = ticks / TICKS_PER_SECOND;
    let fraction = ticks % TICKS_PER_SECOND;
    let (days, hours, minutes, secs) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    let mut text = if days > 0 { format!("{days}.") } else { String::new() };
    text.push_str(&format!("{hours:02}:{minutes:02}:{secs:02}"));
    if fraction > 0 {
        text.push_str(&format!(".{fraction:07}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::timespan_text;

    #[test]
    fn timespans_read_as_dotnet_writes_them() {
        assert_eq!(timespan_text(5_000_000), "00:00:00.5000000");
        assert_eq!(timespan_text(0), "00:00:00");
        assert_eq!(timespan_text(30 * 10_000_000), "00:00:30");
        assert_eq!(timespan_text((86_400 + 3600 + 61) * 10_000_000 + 1), "1.01:01:01.0000001");
        assert_eq!(timespan_text(i64::MAX as u64), "10675199.02:48:05.4775807");
    }
}
