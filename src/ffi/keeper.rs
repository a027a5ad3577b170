//! The background keeper: start, stop, list, events, wait; and its one answer shape.

use std::ffi::c_char;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::boundary::{error_json, optional_str_arg, parse_json, respond, start, start_operation, str_arg, to_json};
use super::MgkaStatus;
use crate::error::CoreError;
use crate::keeper::{self, CallAnswer, KeeperState, WaitRequest, WaitStep, Waiter};
use crate::operation::Outcome;

/// Registers calls with the background keeper, or updates the interval of calls already kept.
/// `request_json`: `{"callIds":["..."],"intervalMs":900000}` (interval ≥ 1000 ms). Returns at
/// once; each call's first keep-alive goes out right away. `*out_json`: one entry per id, in
/// order, in the keeper's one answer shape: a call state (`{"callId","state","intervalMs",
/// "lastSuccessUnixMs","nextDueUnixMs","deadlineUnixMs","attempts","consecutiveFailures",
/// "lastError"}`, times in Unix milliseconds) or `{"callId","error":{...}}` for an id that cannot
/// be a call id (`"kind":"InvalidArgument"`). Caller frees it. Thread-safe.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keeper_start(request_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let request: KeeperRequest = parse_json(str_arg(request_json, "request_json")?, "Keeper")?;
        let interval = Duration::from_millis(request.interval_ms.unwrap_or(15 * 60 * 1000));
        Ok(answers_json(&keeper::start(request.call_ids.unwrap_or_default(), interval)?).to_string())
    })
}

/// Stops keeping calls and forgets them: `{"callIds":[...]}`, or `{"all":true}`.
/// `*out_json`: the stopped calls' states (as `Stopped`), then, for named ids that were not kept,
/// `{"callId","error":{"kind":"NotFound","errorId":"CallNotKept",...}}` (once per id), in the
/// shape of `mgka_keeper_start`. Caller frees it. Thread-safe.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keeper_stop(request_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let request: KeeperRequest = parse_json(str_arg(request_json, "request_json")?, "Keeper")?;
        let answers = match request.all {
            true => keeper::stop(None).into_iter().map(keeper::CallAnswer::State).collect(),
            false => keeper::stop_named(request.call_ids.unwrap_or_default()),
        };
        Ok(answers_json(&answers).to_string())
    })
}

/// The kept calls' states, sorted by call id. `request_json` may be NULL (all calls) or
/// `{"callIds":[...],"states":["Active","Retrying","Ended","Failed"]}` (both optional). With
/// `callIds`, each named id that is not kept at all is answered after the states with a
/// `CallNotKept` error entry (once per id), in the shape of `mgka_keeper_start`.
/// Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `request_json` is NULL or a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keeper_list(request_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let request: KeeperRequest = match optional_str_arg(request_json, "request_json")? {
            Some(json) => parse_json(json, "Keeper")?,
            None => KeeperRequest::default(),
        };
        let answers = match request.call_ids {
            Some(ids) => keeper::list_named(ids, request.states),
            None => keeper::list(None, request.states).into_iter().map(keeper::CallAnswer::State).collect(),
        };
        Ok(answers_json(&answers).to_string())
    })
}

/// Keeper events (a call `Ended` or `Failed`) with a sequence number above `after_seq`, waiting up
/// to `timeout_ms` for the first. `*out_json`: `{"events":[{"seq","callId","state","timeUnixMs",
/// "error"}],"lastSeq":n}`; pass `lastSeq` as `after_seq` next time. Keep `timeout_ms` short to
/// stay interruptible. Caller frees it. Thread-safe.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keeper_events(after_seq: u64, timeout_ms: u32, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let (events, last_seq) = keeper::events(after_seq, Duration::from_millis(timeout_ms.into()));
        to_json(&serde_json::json!({ "events": events, "lastSeq": last_seq }))
    })
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeeperRequest {
    #[serde(default)]
    call_ids: Option<Vec<String>>,
    #[serde(default)]
    interval_ms: Option<u64>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    states: Option<Vec<KeeperState>>,
}

/// The keeper's answers as JSON: call states, and `{"callId","error"}` for an id without one
/// (`"errorId":"CallNotKept"` for a call that is not kept).
fn answers_json(answers: &[CallAnswer]) -> serde_json::Value {
    answers.iter().map(answer_json).collect()
}

fn answer_json(answer: &CallAnswer) -> serde_json::Value {
    match answer {
        CallAnswer::State(state) => serde_json::to_value(state).unwrap_or_default(),
        CallAnswer::Refused { call_id, error } => {
            let id = matches!(error, CoreError::NotFound(_)).then_some("CallNotKept");
            serde_json::json!({ "callId": call_id, "error": error_json(error, id) })
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WaitJson {
    #[serde(default)]
    call_ids: Option<Vec<String>>,
    #[serde(default)]
    any: bool,
    /// Milliseconds, fractions allowed (a host's TimeSpan to the tick).
    #[serde(default)]
    timeout_ms: Option<f64>,
}

/// Starts waiting until kept calls end or fail (`Wait-MgCommunicationCallKeepAlive`) and returns
/// at once with a handle in `*out_operation`. `request_json`: `{"callIds":[...],"any":false,
/// "timeoutMs":n}`, all optional: no `callIds` waits for every call kept now; `any` ends the wait
/// at the first call that ended or failed; `timeoutMs` (fractions allowed; absent: no limit)
/// bounds it. The result of `mgka_operation_wait` is one step of the wait, given as soon as there
/// is something to report: `{"calls":[...],"notes":[...],"timedOut":null|{"callIds":[...],
/// "message"},"next":n}`. `calls`: the states of calls that ended or failed (each once), then
/// `CallNotKept` errors for named calls that are not kept, in the shape of `mgka_keeper_start`;
/// `notes`: what a host shows with -Verbose (a call stopped meanwhile is no longer waited for);
/// `timedOut`: the timeout was reached with these calls still kept. `next`: the handle of the
/// wait's next step, already under way (wait for it, or cancel it to give up), or 0 when the wait
/// is over. Fails only for NULL or invalid UTF-8 arguments; a malformed request is the result of
/// the wait. Thread-safe.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `out_operation` is writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keeper_wait_start(request_json: *const c_char, out_operation: *mut u64) -> MgkaStatus {
    start(out_operation, || {
        let request = str_arg(request_json, "request_json")?.to_owned();
        Ok(start_operation(None, async move {
            let request: WaitJson = parse_json(&request, "Keeper")?;
            let timeout_ticks = request.timeout_ms.map(|ms| {
                if ms.is_finite() && ms > 0.0 { (ms * 10_000.0).round().min(u64::MAX as f64) as u64 } else { 0 }
            });
            let waiter = Waiter::new(WaitRequest { call_ids: request.call_ids, any: request.any, timeout_ticks });
            wait_step(waiter).await
        })?)
    })
}

/// One step of a wait; the next step is started before this one answers, so the host only ever
/// holds one handle.
fn wait_step(mut waiter: Waiter) -> Pin<Box<dyn Future<Output = Outcome<serde_json::Value>> + Send>> {
    Box::pin(async move {
        let step = waiter.next().await;
        let next = if step.done { 0 } else { start_operation(None, wait_step(waiter))? };
        Ok(step_json(step, next))
    })
}

fn step_json(step: WaitStep, next: u64) -> serde_json::Value {
    let timed_out = step.timed_out.map(|t| serde_json::json!({ "callIds": t.call_ids, "message": t.message }));
    serde_json::json!({ "calls": answers_json(&step.calls), "notes": step.notes, "timedOut": timed_out, "next": next })
}
