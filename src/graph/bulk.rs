//! Bulk keep-alives: many calls, at most `concurrency` requests in flight, through Graph JSON
//! batching where it helps, each item answered as a single request would be. Used by the
//! one-shot bulk export (`keep_alive_many_in`) and by keep-alive streams ([`super::stream`]).

use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{batch_sizes, keep_alive, keep_alive_batch, keep_alive_url, refuses_batched_keep_alive, BatchItem, ItemOutcome, ItemTasks, KeepAliveOptions, KeepAliveSuccess};
use crate::error::CoreError;
use crate::session::Session;

/// One item of a bulk keep-alive: a call id, or an identity JSON object.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkItem {
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub identity: Option<String>,
}

/// Most keep-alives in flight at once in a bulk request.
pub const MAX_BULK_CONCURRENCY: usize = 256;

/// What a bulk keep-alive answers: one answer per item, in input order, and notes for the user
/// (shown with -Verbose), such as that this Graph refuses batched keep-alives.
#[derive(Debug, Default)]
pub struct BulkAnswers {
    pub answers: Vec<Result<KeepAliveSuccess, CoreError>>,
    pub notes: Vec<String>,
}

/// Whether keep-alives of `count` items to send would go through JSON batching (more than one,
/// and no -Debug traces, which need each request's own HTTP exchange).
pub fn batching_applies(options: &KeepAliveOptions, count: usize) -> bool {
    !options.trace && count > 1
}

/// Keeps many calls alive in `session` with at most `concurrency` requests in flight, answering
/// one result per item in input order. Items that cannot be resolved (an identity without a call
/// id, an invalid id) get their error without anything being sent. See
/// [`keep_alive_each`]. Cancelling the returned future aborts every request still under way.
pub async fn keep_alive_many_in(
    session: Arc<Session>,
    items: Vec<BulkItem>,
    options: KeepAliveOptions,
    concurrency: usize,
) -> BulkAnswers {
    let permits = Arc::new(Semaphore::new(concurrency.clamp(1, MAX_BULK_CONCURRENCY)));
    let options = Arc::new(options);
    let mut answers: Vec<Option<Result<KeepAliveSuccess, CoreError>>> = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let id = match (item.call_id, item.identity) {
            (Some(id), None) => Ok(id),
            (None, Some(identity)) => super::call_id_from_identity_json(&identity),
            _ => Err(CoreError::invalid("InputObject", "Each item needs exactly one of callId or identity.")),
        };
        match id {
            Ok(id) => {
                ids.push((index, id));
                answers.push(None);
            }
            Err(error) => answers.push(Some(Err(error))),
        }
    }
    let batching = batching_applies(&options, ids.len());
    let graph = session.environment.graph_endpoint.clone();
    keep_alive_each(session, ids, options.clone(), permits, |done| {
        for (index, outcome) in done {
            answers[index] = Some(outcome);
        }
    })
    .await;
    let refused = batching && refuses_batched_keep_alive(&graph, options.api_version);
    let notes = if refused { vec![super::refusal_note(&graph, options.api_version)] } else { Vec::new() };
    // `keep_alive_each` answers every position once; a position left unanswered would be a bug.
    let unanswered = || Err(CoreError::Panic { call_id: None, message: "Internal error in MgKeepAlive: a bulk item got no answer.".into() });
    BulkAnswers { answers: answers.into_iter().map(|a| a.unwrap_or_else(unanswered)).collect(), notes }
}

/// Keeps `items` (position, call id) alive in `session`, calling `record` with each group of
/// answers as it comes (in any order; every position is answered once). Invalid ids are answered
/// at once without a request. Two or more items to send go through Graph JSON batching (up to 20
/// keep-alives per `$batch`, as even as possible), falling back to single requests whenever a
/// batch or an item's answer calls for it (see `keep_alive_batch`); with `options.trace`
/// (-Debug), one item, or a Graph found to refuse batched keep-alives (from then on, also in the
/// middle of this call), single requests. Requests take their permits from `permits`, so callers
/// that share them share one bound. Dropping the future aborts everything it started.
pub async fn keep_alive_each(
    session: Arc<Session>,
    items: Vec<(usize, String)>,
    options: Arc<KeepAliveOptions>,
    permits: Arc<Semaphore>,
    mut record: impl FnMut(Vec<ItemOutcome>),
) {
    let mut sendable = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for (index, call_id) in items {
        match keep_alive_url(&session.environment.graph_endpoint, options.api_version, &call_id) {
            Ok(url) => sendable.push(BatchItem { index, call_id, url }),
            Err(error) => refused.push((index, Err(error.with_call_id(&call_id)))),
        }
    }
    if !refused.is_empty() {
        record(refused);
    }
    // A task that panics answers its items with the panic: no item is left without an answer.
    let mut tasks = ItemTasks::default();
    let graph = session.environment.graph_endpoint.clone();
    let batching = batching_applies(&options, sendable.len());
    let mut sizes = if batching { batch_sizes(sendable.len()) } else { Vec::new() }.into_iter();
    let mut sendable = sendable.into_iter().peekable();
    while sendable.peek().is_some() {
        // Spawn only with a permit in hand, so a large request holds few tasks at a time.
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        while let Some(done) = tasks.try_join_next() {
            record(done);
        }
        // Asked again for every batch: a refusal found by an earlier batch counts at once.
        let batch = batching && !refuses_batched_keep_alive(&graph, options.api_version);
        let size = if batch { sizes.next().unwrap_or(super::MAX_BATCH_REQUESTS) } else { 1 };
        let chunk: Vec<_> = sendable.by_ref().take(size).collect();
        let answered_by_task = chunk.iter().map(|item| (item.index, item.call_id.clone())).collect();
        let (session, options, permits) = (session.clone(), options.clone(), permits.clone());
        tasks.spawn(answered_by_task, async move {
            if batch {
                keep_alive_batch(session, chunk, options, permit, permits).await
            } else {
                let _permit = permit;
                let mut done = Vec::with_capacity(1);
                for item in chunk {
                    let outcome = keep_alive(&session, &item.call_id, &options).await;
                    done.push((item.index, outcome.map_err(|e| e.with_call_id(&item.call_id))));
                }
                done
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        record(done);
    }
}
