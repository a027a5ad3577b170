//! The background keeper: start, stop, list, events.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{optional_str_arg, parse_json, respond, str_arg, to_json};
use super::MgkaStatus;
use crate::keeper::{self, KeeperState};

/// Registers calls with the background keeper, or updates the interval of calls already kept.
/// `request_json`: `{"callIds":["..."],"intervalMs":900000}` (interval ≥ 1000 ms). Returns at
/// once; each call's first keep-alive goes out right away. `*out_json`: one entry per id, in
/// order: a call state (`{"callId","state","intervalMs","lastSuccessUnixMs","nextDueUnixMs",
/// "deadlineUnixMs","attempts","consecutiveFailures","lastError"}`) or `{"callId","error":{...}}`
/// for an id that cannot be a call id. Caller frees it. Thread-safe.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keeper_start(request_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let request: KeeperRequest = parse_json(str_arg(request_json, "request_json")?, "Keeper")?;
        let interval = Duration::from_millis(request.interval_ms.unwrap_or(15 * 60 * 1000));
        to_json(&keeper::start(request.call_ids.unwrap_or_default(), interval)?)
    })
}

/// Stops keeping calls and forgets them: `{"callIds":[...]}`, or `{"all":true}`.
/// `*out_json`: the stopped calls' states (as `Stopped`). Unknown ids are skipped.
/// Caller frees it. Thread-safe.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keeper_stop(request_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let request: KeeperRequest = parse_json(str_arg(request_json, "request_json")?, "Keeper")?;
        let ids = if request.all { None } else { Some(request.call_ids.unwrap_or_default()) };
        to_json(&keeper::stop(ids))
    })
}

/// The kept calls' states, sorted by call id. `request_json` may be NULL (all calls) or
/// `{"callIds":[...],"states":["Active","Retrying","Ended","Failed"]}` (both optional).
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
        to_json(&keeper::list(request.call_ids, request.states))
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
