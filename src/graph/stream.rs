//! Keep-alive streams: piped items go in one at a time as the host's pipeline delivers them, and
//! their answers come back in input order, as they arrive.
//!
//! A host pushes an item ([`KeepAliveStream::push`]): the identity rule resolves it and it is
//! *staged*; the host asks its user (ShouldProcess) and withdraws it if the answer is no
//! ([`KeepAliveStream::withdraw`]). Any later call commits the staged item. Committed items are
//! collected into chunks (512 items, or 4 × concurrency when that is more); a full chunk is sent
//! at once, its requests sharing the stream's bound of `concurrency` requests in flight with the
//! chunks still under way. After a chunk is sent, the answers of the chunks before it are *due*:
//! the host reads them ([`KeepAliveStream::next`]) before it pushes more, so at most two chunks
//! are ever outstanding. [`KeepAliveStream::finish`] sends the rest and makes every answer due.
//! Answers are read in input order: a count of successes in a row, then the one answer that needs
//! showing (a failure, or every success when the stream keeps details), so a host writes
//! thousands of successes without looking at any of them. Dropping or cancelling the stream
//! aborts every request still under way.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::bulk::{batching_applies, keep_alive_each, MAX_BULK_CONCURRENCY};
use super::identity::{resolve_item, PipedItem};
use super::{refusal_note, refuses_batched_keep_alive, KeepAliveOptions, KeepAliveSuccess};
use crate::error::CoreError;
use crate::runtime::runtime;

/// Items per chunk: at least this many (512 measured best, 128 much worse) ...
const MIN_CHUNK_SIZE: usize = 512;
/// ... or this many times the concurrency, when that is more.
const CHUNK_FACTOR: usize = 4;

/// An item's answer.
pub type ItemAnswer = Result<KeepAliveSuccess, CoreError>;

/// How a stream sends and answers.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub options: KeepAliveOptions,
    /// Requests in flight at most (1–256).
    pub concurrency: usize,
    /// Every success is answered on its own (for -Verbose, -Debug, -ResponseHeadersVariable);
    /// otherwise successes are only counted.
    pub details: bool,
    /// Notes for the user (e.g. that this Graph refuses batched keep-alives) are answered, once.
    pub notes: bool,
}

/// What a push did with the item.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Staged: ask the user about this call id (`None`: the item's own text) and withdraw it if
    /// the answer is no.
    Staged { call_id: Option<String> },
    /// Refused by the identity rule: its error is answered in its place, nothing is sent.
    Refused,
}

/// What [`KeepAliveStream::next`] found.
#[derive(Debug)]
pub enum Next {
    /// `successes` successes in a row (input order), then `answer`, if any.
    Answers { successes: u64, answer: Option<StreamAnswer> },
    /// Every due answer has been read (after `finish`: every answer).
    Drained,
    /// Answers are due, but none arrived within the timeout.
    Pending,
}

/// One answer that needs showing.
#[derive(Debug)]
pub enum StreamAnswer {
    Item(ItemAnswer),
    /// A note for the user, once per stream.
    Note(String),
}

enum Entry {
    Send(String),
    Refused(CoreError),
}

struct Inner {
    staged: Option<Entry>,
    /// Committed items not yet sent: (position, call id).
    pending: Vec<(u64, String)>,
    /// Answers from position `read` on; `None` until answered.
    answers: VecDeque<Option<ItemAnswer>>,
    read: u64,
    /// Answers before this position must be read before more items are pushed.
    due: u64,
    finished: bool,
    note: Option<String>,
    note_given: bool,
    tasks: Vec<tokio::task::AbortHandle>,
}

struct Shared {
    inner: Mutex<Inner>,
    answered: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct KeepAliveStream {
    shared: Arc<Shared>,
    options: Arc<KeepAliveOptions>,
    permits: Arc<Semaphore>,
    chunk_size: usize,
    details: bool,
    notes: bool,
}

impl KeepAliveStream {
    pub fn new(settings: StreamSettings) -> Self {
        let concurrency = settings.concurrency.clamp(1, MAX_BULK_CONCURRENCY);
        KeepAliveStream {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    staged: None,
                    pending: Vec::new(),
                    answers: VecDeque::new(),
                    read: 0,
                    due: 0,
                    finished: false,
                    note: None,
                    note_given: false,
                    tasks: Vec::new(),
                }),
                answered: Condvar::new(),
            }),
            options: Arc::new(settings.options),
            permits: Arc::new(Semaphore::new(concurrency)),
            chunk_size: MIN_CHUNK_SIZE.max(CHUNK_FACTOR * concurrency),
            details: settings.details,
            notes: settings.notes,
        }
    }

    /// Stages an item (resolved by the identity rule), after committing the one staged before.
    /// `Ok(true)` with the outcome when a chunk was sent by this push: answers are due.
    /// An item that cannot be passed on at all (`unreadable`: its text is not valid Unicode, or
    /// holds NUL) is refused with that error.
    pub fn push(&self, item: Result<PipedItem<'_>, CoreError>) -> Result<(Pushed, bool), CoreError> {
        let mut inner = self.shared.lock();
        if inner.finished {
            return Err(CoreError::invalid("InputObject", "The keep-alive stream is finished; no more items can be pushed."));
        }
        let due = self.commit(&mut inner)?;
        let (entry, pushed) = match item.and_then(resolve_item) {
            Ok(resolved) => {
                let call_id = if resolved.verbatim { None } else { Some(resolved.call_id.clone()) };
                (Entry::Send(resolved.call_id), Pushed::Staged { call_id })
            }
            Err(error) => (Entry::Refused(error), Pushed::Refused),
        };
        inner.staged = Some(entry);
        Ok((pushed, due))
    }

    /// Drops the staged item (the user said no): it is neither sent nor answered.
    pub fn withdraw(&self) -> bool {
        self.shared.lock().staged.take().is_some()
    }

    /// No more items: sends what is left; every answer is due.
    pub fn finish(&self) -> Result<(), CoreError> {
        let mut inner = self.shared.lock();
        self.commit(&mut inner)?;
        if !inner.pending.is_empty() {
            self.send(&mut inner)?;
        }
        inner.finished = true;
        inner.due = inner.read + inner.answers.len() as u64;
        self.shared.answered.notify_all();
        Ok(())
    }

    /// [`finish`](Self::finish), then waits up to `timeout` for every answer. `Some(n)`: all `n`
    /// answers are successes that are only counted (no details, no note to give): they are read
    /// and the stream is complete. `None`: an answer needs showing or not every answer arrived in
    /// time: nothing is read; read them with [`next`](Self::next). The common single keep-alive
    /// in one call, never blocking longer than `timeout`.
    pub fn settle(&self, timeout: Duration) -> Result<Option<u64>, CoreError> {
        self.finish()?;
        let deadline = Instant::now() + timeout;
        let mut inner = self.shared.lock();
        loop {
            if self.details || (self.notes && !inner.note_given && inner.note.is_some()) {
                return Ok(None);
            }
            let mut answered = true;
            for answer in &inner.answers {
                match answer {
                    Some(Ok(_)) => {}
                    Some(Err(_)) => return Ok(None),
                    None => answered = false,
                }
            }
            if answered {
                let count = inner.answers.len() as u64;
                inner.answers.clear();
                inner.read += count;
                return Ok(Some(count));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            inner = self.shared.answered.wait_timeout(inner, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The next answers in input order, waiting up to `timeout` for a due one.
    pub fn next(&self, timeout: Duration) -> Result<Next, CoreError> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.shared.lock();
        self.commit(&mut inner)?;
        if self.notes && !inner.note_given {
            if let Some(note) = inner.note.clone() {
                inner.note_given = true;
                return Ok(Next::Answers { successes: 0, answer: Some(StreamAnswer::Note(note)) });
            }
        }
        let mut successes = 0u64;
        loop {
            while matches!(inner.answers.front(), Some(Some(_))) {
                let answer = inner.answers.pop_front().flatten().expect("checked to be answered");
                inner.read += 1;
                match answer {
                    Ok(_) if !self.details => successes += 1,
                    other => return Ok(Next::Answers { successes, answer: Some(StreamAnswer::Item(other)) }),
                }
            }
            if successes > 0 {
                return Ok(Next::Answers { successes, answer: None });
            }
            if inner.read >= inner.due {
                return Ok(Next::Drained);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Next::Pending);
            }
            inner = self.shared.answered.wait_timeout(inner, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Aborts every request still under way; their answers are never given.
    pub fn cancel(&self) {
        let mut inner = self.shared.lock();
        inner.staged = None;
        inner.pending.clear();
        for task in inner.tasks.drain(..) {
            task.abort();
        }
    }

    /// Commits the staged item; sends the pending chunk when it is full. `true`: a chunk was sent.
    fn commit(&self, inner: &mut Inner) -> Result<bool, CoreError> {
        let Some(entry) = inner.staged.take() else { return Ok(false) };
        let position = inner.read + inner.answers.len() as u64;
        match entry {
            Entry::Send(call_id) => {
                inner.answers.push_back(None);
                inner.pending.push((position, call_id));
            }
            Entry::Refused(error) => inner.answers.push_back(Some(Err(error))),
        }
        if inner.pending.len() < self.chunk_size {
            return Ok(false);
        }
        self.send(inner)?;
        Ok(true)
    }

    /// Sends the pending items as one chunk; the answers before them become due.
    fn send(&self, inner: &mut Inner) -> Result<(), CoreError> {
        let items = std::mem::take(&mut inner.pending);
        let first = items.first().map_or(inner.read, |(position, _)| *position);
        inner.due = first;
        // The session is taken once per chunk: a disconnect does not affect a chunk under way.
        let session = crate::session::current();
        let batching = batching_applies(&self.options, items.len());
        if let Ok(session) = &session {
            let graph = &session.environment.graph_endpoint;
            if batching && refuses_batched_keep_alive(graph, self.options.api_version) && inner.note.is_none() {
                inner.note = Some(refusal_note(graph, self.options.api_version));
            }
        }
        let (shared, options, permits) = (self.shared.clone(), self.options.clone(), self.permits.clone());
        let task = runtime()?.spawn(async move {
            let session = match session {
                Ok(session) => session,
                Err(error) => {
                    let mut inner = shared.lock();
                    for (position, call_id) in items {
                        let error = error.clone().with_call_id(&call_id);
                        answer(&mut inner, position, Err(error));
                    }
                    shared.answered.notify_all();
                    return;
                }
            };
            let graph = session.environment.graph_endpoint.clone();
            let api_version = options.api_version;
            let base = first;
            let ids = items.into_iter().map(|(position, call_id)| ((position - base) as usize, call_id)).collect();
            keep_alive_each(session, ids, options, permits, |done| {
                let mut inner = shared.lock();
                // Before the answers it concerns: a host reads the note before the stream ends.
                if batching && inner.note.is_none() && refuses_batched_keep_alive(&graph, api_version) {
                    inner.note = Some(refusal_note(&graph, api_version));
                }
                for (index, outcome) in done {
                    answer(&mut inner, base + index as u64, outcome);
                }
                shared.answered.notify_all();
            })
            .await;
        });
        inner.tasks.retain(|t| !t.is_finished());
        inner.tasks.push(task.abort_handle());
        Ok(())
    }
}

impl Drop for KeepAliveStream {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn answer(inner: &mut Inner, position: u64, outcome: ItemAnswer) {
    if position < inner.read {
        return;
    }
    if let Some(slot) = inner.answers.get_mut((position - inner.read) as usize) {
        *slot = Some(outcome);
    }
}

static STREAMS: once_cell::sync::Lazy<Mutex<std::collections::HashMap<u64, Arc<KeepAliveStream>>>> =
    once_cell::sync::Lazy::new(|| Mutex::new(std::collections::HashMap::new()));
static NEXT_HANDLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn streams() -> MutexGuard<'static, std::collections::HashMap<u64, Arc<KeepAliveStream>>> {
    STREAMS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens a stream and returns its handle (a number, never a pointer: a stale or forged handle is
/// an error, not a crash).
pub fn open(settings: StreamSettings) -> u64 {
    let handle = NEXT_HANDLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    streams().insert(handle, Arc::new(KeepAliveStream::new(settings)));
    handle
}

/// The stream of `handle`, if open.
pub fn get(handle: u64) -> Option<Arc<KeepAliveStream>> {
    streams().get(&handle).cloned()
}

/// Cancels what is still under way and releases the handle. `false`: unknown handle.
pub fn close(handle: u64) -> bool {
    match streams().remove(&handle) {
        Some(stream) => {
            stream.cancel();
            true
        }
        None => false,
    }
}

/// Streams not yet closed; lets tests prove that handles are released.
pub fn open_streams() -> usize {
    streams().len()
}

/// The compatibility parameters a keep-alive command accepts and ignores, as the host names them.
pub const IGNORED_PARAMETERS: [&str; 4] = ["HttpPipelineAppend", "HttpPipelinePrepend", "ProxyCredential", "ProxyUseDefaultCredentials"];

/// What a keep-alive command warns about, in order: parameters it ignores (`given`: the names
/// of [`IGNORED_PARAMETERS`] the user gave; `ProxyCredential` only counts without `-Proxy`, which
/// the host leaves out), and `cloud_warning`: the connected cloud's once-per-process warning that
/// Microsoft does not document keepAlive there (`session::keep_alive_warning`).
pub fn warnings(cloud_warning: Option<String>, given: &[String]) -> Vec<String> {
    let given = |name: &str| given.iter().any(|g| g.eq_ignore_ascii_case(name));
    let mut warnings = Vec::new();
    for name in ["HttpPipelineAppend", "HttpPipelinePrepend"] {
        if given(name) {
            warnings.push(format!("MgKeepAlive does not support -{name}; the request is sent without it."));
        }
    }
    warnings.extend(cloud_warning);
    if given("ProxyCredential") {
        warnings.push("-ProxyCredential is used only together with -Proxy; it is ignored.".into());
    }
    if given("ProxyUseDefaultCredentials") {
        warnings.push(
            "MgKeepAlive cannot send default (integrated Windows) credentials to a proxy: -ProxyUseDefaultCredentials is ignored \
             and the request goes to the proxy without credentials. Give -ProxyCredential for a proxy that needs a user name and password."
                .into(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ApiVersion;

    #[test]
    fn warnings_in_order_and_the_cloud_once() {
        use crate::environment::{keep_alive_warning_once, Cloud};
        let given = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(warnings(keep_alive_warning_once(Cloud::Global, ApiVersion::V1), &[]).is_empty());
        assert!(warnings(keep_alive_warning_once(Cloud::USGov, ApiVersion::V1), &[]).is_empty(), "v1.0 is documented in USGov");
        let first = warnings(
            keep_alive_warning_once(Cloud::USGovDoD, ApiVersion::Beta),
            &given(&["ProxyUseDefaultCredentials", "HttpPipelineAppend"]),
        );
        assert_eq!(first.len(), 3);
        assert!(first[0].contains("-HttpPipelineAppend") && first[1].contains("(beta)") && first[2].contains("-ProxyUseDefaultCredentials"));
        assert!(warnings(keep_alive_warning_once(Cloud::USGovDoD, ApiVersion::Beta), &[]).is_empty(), "once per process");
        assert_eq!(warnings(keep_alive_warning_once(Cloud::China, ApiVersion::V1), &[]).len(), 1);
        assert!(warnings(keep_alive_warning_once(Cloud::Other, ApiVersion::Beta), &[]).is_empty());
    }
}
