//! The background keeper: keeps every registered call alive at its interval until the call ends.
//!
//! One scheduler task on the library runtime sleeps until the earliest due time (no CPU use in
//! between), then sends the due keep-alives with bounded concurrency. Policy:
//! - a call's first keep-alive goes out at once, then every interval with ±10 % jitter, so calls do
//!   not fire in lock-step;
//! - transient failures (throttling, 5xx, network, not connected) are retried with back-off, but
//!   always scheduled before the call's 45-minute deadline; a `Retry-After` pauses the whole keeper
//!   (Graph throttles per app);
//! - 404 → `Ended`, 403 and other permanent refusals → `Failed`: no more requests, an event for
//!   scripts (polled: a native callback has no runspace to run in), and the call stays listed
//!   until it is stopped;
//! - a keep-alive whose work panicked (a bug) → `Failed` with the panic's message and an event;
//!   the other calls are kept as before.

mod state;
mod wait;

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::cmp::Reverse;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use once_cell::sync::Lazy;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};

pub use state::{CallSnapshot, KeeperState};
pub use wait::{WaitRequest, WaitStep, WaitTimedOut, Waiter};
use state::Entry;

use crate::clock::after;
use crate::error::CoreError;
use crate::graph::{retry_after, retry_wait, validate_call_id, Class, KeepAliveOptions, KeeperVerdict};
use crate::runtime::runtime;
use crate::session;

/// Graph ends a call that had no successful keep-alive for this long.
pub const CALL_DEADLINE: Duration = Duration::from_secs(45 * 60);
/// Keep-alives in flight at once.
const CONCURRENCY: usize = 64;
/// One attempt may take at most this long, so retries still fit before the deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Graph's retry delay, the base of the keeper's back-off.
const RETRY_DELAY: Duration = Duration::from_secs(3);
/// How long a panicked scheduler waits before it starts again (no busy loop on a repeated bug).
const SCHEDULER_RESTART_PAUSE: Duration = Duration::from_secs(1);
/// Events kept for scripts that poll; older ones are dropped.
const MAX_EVENTS: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeeperEvent {
    pub seq: u64,
    pub call_id: String,
    pub state: KeeperState,
    pub time_unix_ms: u64,
    pub error: Option<String>,
}

type Due = Reverse<(Instant, u32, Arc<str>)>;

struct Keeper {
    calls: Mutex<HashMap<Arc<str>, Entry>>,
    schedule: Mutex<BinaryHeap<Due>>,
    wake: Notify,
    permits: Arc<Semaphore>,
    /// No keep-alive goes out before this (a `Retry-After` for the whole app).
    paused_until: Mutex<Option<Instant>>,
    events: Mutex<VecDeque<KeeperEvent>>,
    event_added: Condvar,
    /// Wakes async waiters (`Waiter`) when an event is added.
    event_notify: Notify,
    next_event: AtomicU64,
    scheduler_started: AtomicBool,
}

static KEEPER: Lazy<Keeper> = Lazy::new(|| Keeper {
    calls: Mutex::new(HashMap::new()),
    schedule: Mutex::new(BinaryHeap::new()),
    wake: Notify::new(),
    permits: Arc::new(Semaphore::new(CONCURRENCY)),
    paused_until: Mutex::new(None),
    events: Mutex::new(VecDeque::new()),
    event_added: Condvar::new(),
    event_notify: Notify::new(),
    next_event: AtomicU64::new(1),
    scheduler_started: AtomicBool::new(false),
});

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The keeper's answer for one call: its state, or why it has none (an id that cannot be a call
/// id, or a call that is not kept). Start, list, stop and wait answer in this one shape.
#[derive(Debug)]
pub enum CallAnswer {
    State(CallSnapshot),
    Refused { call_id: String, error: CoreError },
}

/// The outcome of registering one call.
pub type StartResult = CallAnswer;

/// The error for a named call that the keeper does not keep.
pub fn not_kept(call_id: &str) -> CallAnswer {
    CallAnswer::Refused {
        call_id: call_id.to_owned(),
        error: CoreError::NotFound(format!("Call '{call_id}' is not kept alive by MgKeepAlive (see Start-MgCommunicationCallKeepAlive).")),
    }
}

/// Registers calls (or updates the interval of calls already kept). Their first keep-alive goes
/// out at once. Ids that cannot be a call id are refused one by one; the rest are registered.
pub fn start(call_ids: Vec<String>, interval: Duration) -> Result<Vec<StartResult>, CoreError> {
    if interval < Duration::from_secs(1) {
        return Err(CoreError::invalid("Interval", "The interval must be at least 1 second."));
    }
    let rt = runtime()?;
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut results = Vec::with_capacity(call_ids.len());
    let mut newly_due = Vec::new();
    {
        let mut calls = lock(&KEEPER.calls);
        for id in call_ids {
            if let Err(e) = validate_call_id(&id) {
                results.push(StartResult::Refused { call_id: id, error: e });
                continue;
            }
            let key: Arc<str> = Arc::from(id.as_str());
            match calls.get_mut(&key) {
                Some(entry) if entry.state.is_kept() => {
                    // Already kept: a new interval applies from the next due time on.
                    entry.interval = interval;
                    results.push(StartResult::State(entry.snapshot(&key, now, wall)));
                }
                _ => {
                    let entry = Entry::new(interval, now, wall, calls.get(&key).map_or(0, |e| e.generation + 1));
                    newly_due.push(Reverse((now, entry.generation, key.clone())));
                    results.push(StartResult::State(entry.snapshot(&key, now, wall)));
                    calls.insert(key, entry);
                }
            }
        }
    }
    if !newly_due.is_empty() {
        lock(&KEEPER.schedule).extend(newly_due);
        ensure_scheduler(rt);
        KEEPER.wake.notify_one();
    }
    Ok(results)
}

/// Stops keeping the given calls (all when `None`) and forgets them; returns them as `Stopped`.
pub fn stop(call_ids: Option<Vec<String>>) -> Vec<CallSnapshot> {
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut calls = lock(&KEEPER.calls);
    let removed: Vec<(Arc<str>, Entry)> = match call_ids {
        None => calls.drain().collect(),
        Some(ids) => ids.iter().filter_map(|id| calls.remove_entry(id.as_str())).collect(),
    };
    if calls.is_empty() {
        lock(&KEEPER.schedule).clear();
    }
    drop(calls);
    removed
        .into_iter()
        .map(|(id, mut entry)| {
            entry.state = KeeperState::Stopped;
            entry.due = None;
            push_event(&id, KeeperState::Stopped, None);
            entry.snapshot(&id, now, wall)
        })
        .collect()
}

/// Stops the named calls: their `Stopped` states, then a not-kept error for each id that was not
/// kept (once per id), as `Stop-MgCommunicationCallKeepAlive` reports them.
pub fn stop_named(call_ids: Vec<String>) -> Vec<CallAnswer> {
    let stopped = stop(Some(call_ids.clone()));
    let mut seen: HashSet<&str> = stopped.iter().map(|s| s.call_id.as_str()).collect();
    let missing: Vec<CallAnswer> = call_ids.iter().filter(|id| seen.insert(id.as_str())).map(|id| not_kept(id)).collect();
    stopped.into_iter().map(CallAnswer::State).chain(missing).collect()
}

/// The named calls' states (sorted by call id; only in `states` when given), then a not-kept
/// error for each named id the keeper does not keep at all (once per id), as
/// `Get-MgCommunicationCallKeepAlive -CallId` reports them.
pub fn list_named(call_ids: Vec<String>, states: Option<Vec<KeeperState>>) -> Vec<CallAnswer> {
    let listed = list(Some(call_ids.clone()), None);
    let mut seen: HashSet<&str> = listed.iter().map(|s| s.call_id.as_str()).collect();
    let missing: Vec<CallAnswer> = call_ids.iter().filter(|id| seen.insert(id.as_str())).map(|id| not_kept(id)).collect();
    let wanted = |s: &CallSnapshot| states.as_ref().map_or(true, |w| w.contains(&s.state));
    listed.into_iter().filter(wanted).map(CallAnswer::State).chain(missing).collect()
}

/// The kept calls: those named (all when `None`), optionally only in the given states.
pub fn list(call_ids: Option<Vec<String>>, states: Option<Vec<KeeperState>>) -> Vec<CallSnapshot> {
    let now = Instant::now();
    let wall = SystemTime::now();
    let calls = lock(&KEEPER.calls);
    let wanted = |e: &Entry| states.as_ref().map_or(true, |s| s.contains(&e.state));
    let mut out: Vec<CallSnapshot> = match call_ids {
        None => calls.iter().filter(|(_, e)| wanted(e)).map(|(id, e)| e.snapshot(id, now, wall)).collect(),
        Some(ids) => ids
            .iter()
            .filter_map(|id| calls.get_key_value(id.as_str()))
            .filter(|(_, e)| wanted(e))
            .map(|(id, e)| e.snapshot(id, now, wall))
            .collect(),
    };
    out.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    out
}

/// Events after `after` (a sequence number), waiting up to `timeout` for the first one.
/// Returns the events and the last sequence number handed out so far.
pub fn events(after: u64, timeout: Duration) -> (Vec<KeeperEvent>, u64) {
    let pending = |q: &VecDeque<KeeperEvent>| q.back().map_or(true, |e| e.seq <= after);
    let guard = lock(&KEEPER.events);
    let (guard, _) = KEEPER.event_added.wait_timeout_while(guard, timeout, |q| pending(q)).unwrap_or_else(|p| p.into_inner());
    let list: Vec<KeeperEvent> = guard.iter().filter(|e| e.seq > after).cloned().collect();
    (list, KEEPER.next_event.load(Ordering::Relaxed) - 1)
}

fn push_event(call_id: &str, state: KeeperState, error: Option<String>) {
    let mut q = lock(&KEEPER.events);
    let seq = KEEPER.next_event.fetch_add(1, Ordering::Relaxed);
    let time_unix_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    q.push_back(KeeperEvent { seq, call_id: call_id.to_owned(), state, time_unix_ms, error });
    if q.len() > MAX_EVENTS {
        q.pop_front();
    }
    KEEPER.event_added.notify_all();
    KEEPER.event_notify.notify_waiters();
}

fn ensure_scheduler(rt: &tokio::runtime::Runtime) {
    if !KEEPER.scheduler_started.swap(true, Ordering::AcqRel) {
        rt.spawn(async {
            // Should the scheduler ever panic (a bug), it starts again after a pause, and calls
            // whose keep-alive it had taken from the schedule are due at once.
            while crate::operation::isolated(schedule_loop()).await.is_err() {
                tokio::time::sleep(SCHEDULER_RESTART_PAUSE).await;
                reschedule_unscheduled();
            }
        });
    }
}

/// Schedules at once every kept call that has no due time (a keep-alive in flight, or one lost
/// with a panicked scheduler). At worst a call gets one keep-alive more, which is harmless.
fn reschedule_unscheduled() {
    let now = Instant::now();
    let mut due = Vec::new();
    for (id, entry) in lock(&KEEPER.calls).iter_mut() {
        if entry.state.is_kept() && entry.due.is_none() {
            entry.due = Some(now);
            due.push(Reverse((now, entry.generation, id.clone())));
        }
    }
    lock(&KEEPER.schedule).extend(due);
    KEEPER.wake.notify_one();
}

/// Sleeps until the earliest due time, then starts every due keep-alive.
async fn schedule_loop() {
    loop {
        let next = lock(&KEEPER.schedule).peek().map(|Reverse((t, _, _))| *t);
        match next {
            None => KEEPER.wake.notified().await,
            Some(at) if at > Instant::now() => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = KEEPER.wake.notified() => continue,
                }
            }
            Some(_) => {}
        }
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut schedule = lock(&KEEPER.schedule);
            while schedule.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
                if let Some(Reverse((at, generation, id))) = schedule.pop() {
                    due.push((at, generation, id));
                }
            }
        }
        let ready: Vec<(Arc<str>, u32)> = {
            let mut calls = lock(&KEEPER.calls);
            due.into_iter()
                .filter(|(at, generation, id)| {
                    // Stale entries (stopped, restarted or rescheduled calls) are skipped.
                    let Some(entry) = calls.get_mut(id) else { return false };
                    if entry.generation != *generation || entry.due != Some(*at) || !entry.state.is_kept() {
                        return false;
                    }
                    entry.due = None;
                    true
                })
                .map(|(_, generation, id)| (id, generation))
                .collect()
        };
        // A task exists only once it holds a permit: 100,000 calls due at once cost 64 tasks'
        // memory, not 100,000.
        for (id, generation) in ready {
            let Ok(permit) = KEEPER.permits.clone().acquire_owned().await else { return };
            tokio::spawn(keep_isolated(id, generation, permit));
        }
    }
}

fn schedule_at(id: Arc<str>, generation: u32, at: Instant) {
    lock(&KEEPER.schedule).push(Reverse((at, generation, id)));
    KEEPER.wake.notify_one();
}

/// [`keep_one`] as a task of its own: if it panics (a bug), its call becomes `Failed` with the
/// panic's message and an event, and the keeper goes on keeping the others.
async fn keep_isolated(id: Arc<str>, generation: u32, permit: tokio::sync::OwnedSemaphorePermit) {
    let Err(failure) = crate::operation::isolated(keep_one(id.clone(), generation, permit)).await else { return };
    let message = failure.to_string();
    {
        let mut calls = lock(&KEEPER.calls);
        let Some(entry) = calls.get_mut(&id).filter(|e| e.generation == generation) else { return };
        entry.attempts += 1;
        entry.finished(KeeperState::Failed, message.clone());
    }
    push_event(&id, KeeperState::Failed, Some(message));
}

/// Sends one keep-alive for a kept call and applies the policy to its outcome.
async fn keep_one(id: Arc<str>, generation: u32, _permit: tokio::sync::OwnedSemaphorePermit) {
    let paused = *lock(&KEEPER.paused_until);
    if let Some(until) = paused.filter(|u| *u > Instant::now()) {
        // Honour the app-wide Retry-After, but not past the point this call can afford. A call
        // already retrying was scheduled with that wait (capped the same way): no second wait.
        let latest = lock(&KEEPER.calls)
            .get(&id)
            .filter(|e| e.state != KeeperState::Retrying)
            .map(|e| after(Instant::now(), e.retry_budget(SystemTime::now())));
        if let Some(latest) = latest {
            tokio::time::sleep_until(until.min(latest).into()).await;
        }
    }
    let mut options = KeepAliveOptions::default();
    options.max_retry = 0; // the keeper schedules its own retries, against the deadline
    options.timeout = options.timeout.min(ATTEMPT_TIMEOUT);
    let outcome = match session::current() {
        Ok(s) => crate::graph::keep_alive(&s, &id, &options).await.map(|_| ()),
        Err(e) => Err(e),
    };

    let now = Instant::now();
    let wall = SystemTime::now();
    let mut calls = lock(&KEEPER.calls);
    let Some(entry) = calls.get_mut(&id) else { return };
    if entry.generation != generation {
        return;
    }
    entry.attempts += 1;
    match outcome {
        Ok(()) => {
            entry.succeeded(wall);
            let next = after(now, jittered(entry.interval));
            entry.due = Some(next);
            drop(calls);
            schedule_at(id, generation, next);
        }
        Err(error) => {
            let message = error.to_string();
            let permanent = match Class::of_error(&error).keeper() {
                KeeperVerdict::Ended => Some(KeeperState::Ended),
                KeeperVerdict::Failed => Some(KeeperState::Failed),
                KeeperVerdict::Transient => None,
            };
            if let Some(state) = permanent {
                entry.finished(state, message.clone());
                drop(calls);
                push_event(&id, state, Some(message));
                return;
            }
            // Transient: retry before the deadline, honouring Retry-After for the whole app.
            let retry_after = retry_after(&error, wall);
            if let Some(wait) = retry_after {
                let until = after(now, wait);
                let mut paused = lock(&KEEPER.paused_until);
                if paused.map_or(true, |p| p < until) {
                    *paused = Some(until);
                }
            }
            entry.failed_transiently(message);
            // Graph's back-off (3 s doubling), scaled down for short intervals; never more than
            // half an interval or half the time left before the deadline, so a retry schedule
            // cannot carry a call past the point where Graph would end it.
            let base = RETRY_DELAY.min(entry.interval / 4);
            let wait = retry_wait(retry_after, base, entry.consecutive_failures);
            let next = after(now, wait.min(entry.retry_budget(wall)));
            entry.due = Some(next);
            drop(calls);
            schedule_at(id, generation, next);
        }
    }
}

/// `interval` ± 10 %, from a cheap per-process random sequence (not for cryptography).
fn jittered(interval: Duration) -> Duration {
    static SEED: Lazy<AtomicU64> = Lazy::new(|| {
        let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        AtomicU64::new(t | 1)
    });
    let mut x = SEED.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    SEED.store(x, Ordering::Relaxed);
    let factor = 0.9 + 0.2 * ((x >> 11) as f64 / (1u64 << 53) as f64);
    interval.mul_f64(factor)
}

/// Ends the session and stops every kept call (`Disconnect-MgGraph`); returns the context closed.
pub fn disconnect() -> Option<session::Context> {
    let closed = session::disconnect();
    stop(None);
    closed
}

/// Counts per state, for progress and benchmarks.
pub fn counts() -> HashMap<KeeperState, usize> {
    let mut counts = HashMap::new();
    for entry in lock(&KEEPER.calls).values() {
        *counts.entry(entry.state).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let base = Duration::from_secs(900);
        let samples: Vec<Duration> = (0..1000).map(|_| jittered(base)).collect();
        assert!(samples.iter().all(|d| *d >= base.mul_f64(0.9) && *d <= base.mul_f64(1.1)));
        let min = samples.iter().min().unwrap();
        let max = samples.iter().max().unwrap();
        assert!(*max - *min > Duration::from_secs(60), "spread {min:?}..{max:?}");
    }
}
