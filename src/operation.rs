//! Keep-alives as cancellable background operations.
//!
//! A host starts an operation, waits for it in short slices and cancels it when its user gives up
//! (PowerShell cannot interrupt a thread inside a native call, so nothing may block for long).
//! Handles are plain numbers, never pointers: a stale or forged handle is an error, not a crash.
//! Every operation finishes: with its result, its cancellation, or — if its work panicked (a bug)
//! — a `Panic` error carrying the panic's message.
//!
//! Results are typed: an [`Operations`] registry holds operations of one result type, chosen by
//! its owner (the C ABI keeps one whose results are already JSON text, made in `ffi`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::CoreError;
use crate::runtime::runtime;

/// An operation's result: its answer, or the error.
pub type Outcome<T> = Result<T, CoreError>;

struct Operation<T> {
    cancel: CancellationToken,
    outcome: Mutex<Option<Outcome<T>>>,
    finished: Condvar,
}

pub enum Wait<T> {
    Pending,
    Finished(Outcome<T>),
}

impl<T: Send + 'static> Operation<T> {
    /// Starts `work` on the library runtime; the operation ends with its outcome, its
    /// cancellation (`call_id`, when known, names the call in that error) or its panic.
    fn spawn<F>(call_id: Option<String>, work: F) -> Result<Arc<Self>, CoreError>
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
    {
        let rt = runtime()?;
        let operation = Arc::new(Operation { cancel: CancellationToken::new(), outcome: Mutex::new(None), finished: Condvar::new() });
        let running = operation.clone();
        rt.spawn(async move {
            let outcome = tokio::select! {
                biased;
                _ = running.cancel.cancelled() => Err(CoreError::Cancelled { call_id }),
                // A panic in the work ends the operation with it: a host waiting is never left pending.
                outcome = isolated(work) => outcome.unwrap_or_else(|failed| Err(match &call_id {
                    Some(id) => failed.with_call_id(id),
                    None => failed,
                })),
            };
            *running.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
            running.finished.notify_all();
        });
        Ok(operation)
    }

    /// Takes the outcome if it arrives within `timeout`.
    fn take(&self, timeout: Duration) -> Option<Outcome<T>> {
        let guard = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = self.finished.wait_timeout_while(guard, timeout, |outcome| outcome.is_none()).unwrap_or_else(|p| p.into_inner());
        guard.take()
    }
}

/// Operations whose results are `T`, by handle. Handles are plain numbers, never pointers.
pub struct Operations<T> {
    live: Mutex<HashMap<u64, Arc<Operation<T>>>>,
    next: AtomicU64,
}

impl<T: Send + 'static> Default for Operations<T> {
    fn default() -> Self {
        Operations { live: Mutex::new(HashMap::new()), next: AtomicU64::new(1) }
    }
}

impl<T: Send + 'static> Operations<T> {
    fn live(&self) -> MutexGuard<'_, HashMap<u64, Arc<Operation<T>>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `work` on the library runtime and returns its handle at once.
    /// `call_id` (when known) names the call in a cancellation error.
    pub fn start<F>(&self, call_id: Option<String>, work: F) -> Result<u64, CoreError>
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
    {
        let operation = Operation::spawn(call_id, work)?;
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        self.live().insert(handle, operation);
        Ok(handle)
    }

    /// Waits up to `timeout` for the operation. A finished operation's handle is released.
    /// `None`: the handle is unknown (never issued, already collected or cancelled).
    pub fn wait(&self, handle: u64, timeout: Duration) -> Option<Wait<T>> {
        let operation = self.live().get(&handle)?.clone();
        match operation.take(timeout) {
            None => Some(Wait::Pending),
            Some(outcome) => {
                // Another thread may have collected it meanwhile; either way it is released now.
                self.live().remove(&handle);
                Some(Wait::Finished(outcome))
            }
        }
    }

    /// Cancels the operation (its request is dropped at once) and releases the handle.
    pub fn cancel(&self, handle: u64) -> bool {
        match self.live().remove(&handle) {
            Some(operation) => {
                operation.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Number of operations not yet collected; lets tests prove that handles are released.
    pub fn outstanding(&self) -> usize {
        self.live().len()
    }
}

/// Runs `work` to completion from a host thread that is not a runtime thread, with the same
/// panic isolation as a started operation.
pub fn run_blocking<T, F>(call_id: Option<String>, work: F) -> Outcome<T>
where
    T: Send + 'static,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    let operation = Operation::spawn(call_id, work)?;
    loop {
        if let Some(outcome) = operation.take(Duration::from_secs(3600)) {
            return outcome;
        }
    }
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
