//! Keep-alive: one call by id or identity, blocking or as an operation, and in bulk.

use std::ffi::c_char;

use super::boundary::{optional_str_arg, parse_json, respond, run_to_json, start, start_operation, str_arg, Failure};
use super::error::core_error_json;
use super::MgkaStatus;
use crate::error::CoreError;
use crate::graph::{call_id_from_identity_json, BulkAnswers, KeepAliveOptions};
use crate::session;

/// Keeps a call alive; blocks until done or the client timeout (`timeoutMs`, default 300 s).
/// `options_json` may be NULL: `{"apiVersion":"v1.0"|"beta","headers":{..},"timeoutMs":n}`.
/// `*out_json`: the success JSON (status, request ids, headers) or the error JSON.
/// Caller frees it. Thread-safe. Hosts that must stay interruptible use `mgka_keep_alive_by_id_start`.
///
/// # Safety
/// `call_id` is a NUL-terminated string; `options_json` is NULL or one; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_by_id(
    call_id: *const c_char,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> MgkaStatus {
    respond(out_json, || {
        let (id, options) = id_request(call_id, options_json)?;
        run_to_json(Some(id.clone()), session::keep_alive(id, options))
    })
}

/// Keeps alive the call named by an identity JSON object: its `CallId` key (any case), else `Id`.
/// Otherwise as `mgka_keep_alive_by_id`.
///
/// # Safety
/// As `mgka_keep_alive_by_id`, with `identity_json` for `call_id`.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_by_identity(
    identity_json: *const c_char,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> MgkaStatus {
    respond(out_json, || {
        let (identity, options) = identity_request(identity_json, options_json)?;
        let id = call_id_from_identity_json(identity)?;
        run_to_json(Some(id.clone()), session::keep_alive(id, options))
    })
}

/// Starts a keep-alive and returns at once with a handle in `*out_operation`; collect it with
/// `mgka_operation_wait` or abandon it with `mgka_operation_cancel`. Fails only for NULL or
/// invalid UTF-8 arguments; every other outcome (bad id, not connected, Graph error) is the
/// result of the wait. Thread-safe.
///
/// # Safety
/// `call_id` is a NUL-terminated string; `options_json` is NULL or one; `out_operation` is writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_by_id_start(
    call_id: *const c_char,
    options_json: *const c_char,
    out_operation: *mut u64,
) -> MgkaStatus {
    start(out_operation, || {
        let id = str_arg(call_id, "call_id")?.to_owned();
        let options = optional_str_arg(options_json, "options_json")?.map(str::to_owned);
        Ok(start_operation(Some(id.clone()), async move {
            let options = parse_options(options.as_deref())?;
            session::keep_alive(id, options).await
        })?)
    })
}

/// Like `mgka_keep_alive_by_id_start` for an identity JSON object.
///
/// # Safety
/// As `mgka_keep_alive_by_id_start`, with `identity_json` for `call_id`.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_by_identity_start(
    identity_json: *const c_char,
    options_json: *const c_char,
    out_operation: *mut u64,
) -> MgkaStatus {
    start(out_operation, || {
        let identity = str_arg(identity_json, "identity_json")?.to_owned();
        let options = optional_str_arg(options_json, "options_json")?.map(str::to_owned);
        Ok(start_operation(None, async move {
            let id = call_id_from_identity_json(&identity)?;
            let options = parse_options(options.as_deref())?;
            session::keep_alive(id, options).await
        })?)
    })
}

/// Starts a bulk keep-alive: `request_json` is `{"items":[{"callId":"..."}|{"identity":"{...}"}],
/// "concurrency":16}` or, for plain ids, `{"callIds":["...","..."],"concurrency":16}` (exactly one
/// of `items` and `callIds`; concurrency 1–256, default 16; optional `"details":false`,
/// `"notes":true`). Returns at once with a handle; the result of `mgka_operation_wait` is a JSON
/// array with one answer per item, in input order: `{"ok":true,"result":{...success JSON...}}`
/// (only `{"ok":true}` with `"details":false`) or `{"ok":false,"error":{...error JSON...}}`; with
/// `"notes":true` it is `{"answers":[that array],"notes":["..."]}`, the notes being what a host
/// shows with -Verbose (e.g. that this Graph refuses batched keep-alives).
/// Two or more keep-alives are sent through Graph JSON batching (`$batch`, up to 20 per batch, at
/// most `concurrency` batches in flight), falling back to single requests when a batch fails or an
/// item's answer is not a verdict about its call; each answer is the one a single request would
/// give. A Graph found to refuse batched keep-alives gets single requests from then on, in the
/// whole process. With `"debug":true` in the options, every keep-alive is a single request.
/// The wait's status is `MGKA_STATUS_OK` unless the whole request failed (e.g. not connected,
/// a malformed request). Cancelling aborts every request still under way. Thread-safe.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `options_json` is NULL or one; `out_operation` is writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_bulk_start(
    request_json: *const c_char,
    options_json: *const c_char,
    out_operation: *mut u64,
) -> MgkaStatus {
    start(out_operation, || {
        let request = str_arg(request_json, "request_json")?.to_owned();
        let options = optional_str_arg(options_json, "options_json")?.map(str::to_owned);
        Ok(start_operation(None, async move {
            let request: BulkRequest = parse_json(&request, "InputObject")?;
            let (details, notes) = (request.details.unwrap_or(true), request.notes);
            let (items, concurrency) = request.into_items()?;
            let options = parse_options(options.as_deref())?;
            Ok(bulk_answers_json(session::keep_alive_many(items, options, concurrency).await?, details, notes))
        })?)
    })
}

/// A bulk keep-alive's answer JSON (see `mgka_keep_alive_bulk_start`): one answer per item,
/// `{"ok":true,"result":{...}}` (`{"ok":true}` without `details`) or `{"ok":false,"error":{...}}`;
/// with `notes`, `{"answers":[...],"notes":[...]}`.
pub fn bulk_answers_json(bulk: BulkAnswers, details: bool, notes: bool) -> serde_json::Value {
    let answers: serde_json::Value = bulk
        .answers
        .iter()
        .map(|answer| match answer {
            Ok(success) if details => serde_json::json!({ "ok": true, "result": success }),
            Ok(_) => serde_json::json!({ "ok": true }),
            Err(error) => serde_json::json!({ "ok": false, "error": core_error_json(error) }),
        })
        .collect();
    if notes {
        serde_json::json!({ "answers": answers, "notes": bulk.notes })
    } else {
        answers
    }
}

unsafe fn id_request(call_id: *const c_char, options_json: *const c_char) -> Result<(String, KeepAliveOptions), Failure> {
    let id = str_arg(call_id, "call_id")?.to_owned();
    let options = parse_options(optional_str_arg(options_json, "options_json")?)?;
    Ok((id, options))
}

unsafe fn identity_request<'a>(
    identity_json: *const c_char,
    options_json: *const c_char,
) -> Result<(&'a str, KeepAliveOptions), Failure> {
    let identity = str_arg(identity_json, "identity_json")?;
    let options = parse_options(optional_str_arg(options_json, "options_json")?)?;
    Ok((identity, options))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BulkRequest {
    #[serde(default)]
    items: Option<Vec<crate::graph::BulkItem>>,
    /// The cheaper form for plain ids: the same as `items` with a `callId` each.
    #[serde(default)]
    call_ids: Option<Vec<String>>,
    #[serde(default)]
    concurrency: Option<usize>,
    /// false: a success answers only `{"ok":true}` (default true: with its result).
    #[serde(default)]
    details: Option<bool>,
    /// true: the answer is `{"answers":[...],"notes":[...]}` (default false: the array alone).
    #[serde(default)]
    notes: bool,
}

impl BulkRequest {
    fn into_items(self) -> Result<(Vec<crate::graph::BulkItem>, usize), CoreError> {
        let items = match (self.items, self.call_ids) {
            (Some(items), None) => items,
            (None, Some(ids)) => ids.into_iter().map(|id| crate::graph::BulkItem { call_id: Some(id), identity: None }).collect(),
            _ => return Err(CoreError::invalid("InputObject", "The bulk request needs exactly one of items or callIds.")),
        };
        Ok((items, self.concurrency.unwrap_or(16)))
    }
}

fn parse_options(json: Option<&str>) -> Result<KeepAliveOptions, CoreError> {
    json.map_or_else(|| Ok(KeepAliveOptions::default()), KeepAliveOptions::from_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(json: &str) -> Result<(Vec<crate::graph::BulkItem>, usize), CoreError> {
        parse_json::<BulkRequest>(json, "InputObject")?.into_items()
    }

    #[test]
    fn bulk_request_takes_items_or_call_ids() {
        let (list, concurrency) = items(r#"{"callIds":["a","b/c"],"concurrency":4}"#).unwrap();
        assert_eq!(list.iter().map(|i| i.call_id.as_deref()).collect::<Vec<_>>(), [Some("a"), Some("b/c")]);
        assert!(list.iter().all(|i| i.identity.is_none()));
        assert_eq!(concurrency, 4);
        let (list, concurrency) = items(r#"{"items":[{"identity":"{\"id\":\"x\"}"}]}"#).unwrap();
        assert_eq!((list.len(), concurrency), (1, 16));
        assert_eq!(items(r#"{"callIds":[]}"#).unwrap().0.len(), 0);
        for refused in [r#"{"items":[],"callIds":[]}"#, r#"{"concurrency":4}"#, r#"{"callIds":"a"}"#, r#"{"callIds":[1]}"#, r#"{"ids":["a"]}"#] {
            let error = items(refused).unwrap_err();
            assert!(matches!(error, CoreError::InvalidArgument { parameter: "InputObject", .. }), "{refused}: {error:?}");
        }
    }
}
