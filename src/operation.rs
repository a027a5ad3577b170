//! Keep-alives as cancellable background operations.
//!
//! A host starts an operation, waits for it in short slices and cancels it when its user gives up
//! (PowerShell cannot interrupt a thread inside a native call, so nothing may block for long).
//! Handles are plain numbers, never pointers: a stale or forged handle is an error, not a crash.
//! Every operation finishes: with its result, its cancellation, or — if its work panicked (a bug)
//! — a `Panic` error carrying the panic's message.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use once_cell::sync::Lazy;
use tokio_util::sync::CancellationToken;

use crate::error::CoreError;
use crate::runtime::runtime;

/// An operation's result: its answer as JSON, or the error.
pub type Outcome = Result<serde_json::Value, CoreError>;

struct Operation {
    cancel: CancellationToken,
    outcome: Mutex<Option<Outcome>>,
    finished: Condvar,
}

static OPERATIONS: Lazy<Mutex<HashMap<u64, Arc<Operation>>>> = Lazy::new(|| Mutex::new(HashMap::new()));
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

fn registry() -> std::sync::MutexGuard<'static, HashMap<u64, Arc<Operation>>> {
    OPERATIONS.lock().unwrap_or_else(|p| p.into_inner())
}

pub enum Wait {
    Pending,
    Finished(Outcome),
}

/// Starts `work` on the library runtime and returns its handle at once.
/// `call_id` (when known) names the call in a cancellation error.
pub fn start<F>(call_id: Option<String>, work: F) -> Result<u64, CoreError>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let rt = runtime()?;
    let operation = Arc::new(Operation { cancel: CancellationToken::new(), outcome: Mutex::new(None), finished: Condvar::new() });
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    registry().insert(handle, operation.clone());
    rt.spawn(async move {
        let outcome = tokio::select! {
            biased;
            _ = operation.cancel.cancelled() => Err(CoreError::Cancelled { call_id }),
            // A panic in the work ends the operation with it: a host waiting is never left pending.
            outcome = isolated(work) => outcome.unwrap_or_else(|failed| Err(match &call_id {
                Some(id) => failed.with_call_id(id),
                None => failed,
            })),
        };
        *operation.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        operation.finished.notify_all();
    });
    Ok(handle)
}

/// Runs `work` as a task of its own on the current runtime and returns its output, or
/// `CoreError::Panic` (with the panic's message) if it panicked: a panic in background work
/// becomes a result instead of unwinding the task that waits for it, whose own result would then
/// never be delivered. Dropping the returned future aborts the task.
pub async fn isolated<F>(work: F) -> Result<F::Output, CoreError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = tokio::spawn(work);
    let _abort = AbortOnDrop(task.abort_handle());
    task.await.map_err(CoreError::from_join)
}

/// Waits up to `timeout` for the operation. A finished operation's handle is released.
/// `None`: the handle is unknown (never issued, already collected or cancelled).
pub fn wait(handle: u64, timeout: Duration) -> Option<Wait> {
    let operation = registry().get(&handle)?.clone();
    let guard = operation.outcome.lock().unwrap_or_else(|p| p.into_inner());
    let (mut guard, _) = operation
        .finished
        .wait_timeout_while(guard, timeout, |outcome| outcome.is_none())
        .unwrap_or_else(|p| p.into_inner());
    match guard.take() {
        None => Some(Wait::Pending),
        Some(outcome) => {
            drop(guard);
            // Another thread may have collected it meanwhile; either way it is released now.
            registry().remove(&handle);
            Some(Wait::Finished(outcome))
        }
    }
}

/// Cancels the operation (its request is dropped at once) and releases the handle.
pub fn cancel(handle: u64) -> bool {
    match registry().remove(&handle) {
        Some(operation) => {
            operation.cancel.cancel();
            true
        }
        None => false,
    }
}

/// Runs `work` to completion from a host thread that is not a runtime thread.
pub fn run_blocking<F>(call_id: Option<String>, work: F) -> Outcome
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let handle = start(call_id, work)?;
    loop {
        match wait(handle, Duration::from_secs(3600)) {
            Some(Wait::Finished(outcome)) => return outcome,
            Some(Wait::Pending) => continue,
            None => return Err(CoreError::Cancelled { call_id: None }),
        }
    }
}

/// Number of operations not yet collected; lets tests prove that handles are released.
pub fn outstanding() -> usize {
    registry().len()
}
