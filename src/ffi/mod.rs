//! The C ABI: converts pointers and strings, calls the core, converts results. Nothing else.
//!
//! Conventions (also in the header and the README):
//! - Every function returns an [`MgkaStatus`] and never unwinds: a panic becomes `MGKA_STATUS_PANIC`.
//! - Strings in are NUL-terminated UTF-8, borrowed for the duration of the call only.
//! - `char **out_json` receives a string owned by the caller, to be released with
//!   [`mgka_string_free`]; it may be NULL when the caller does not want it. On failure it holds the
//!   error JSON `{"kind","message","callId","parameter",...}`.
//! - Every function may be called from any thread, concurrently.

mod boundary;
mod environment;
mod keeper;
mod status;

use std::ffi::{c_char, CString};
use std::time::Duration;

use zeroize::Zeroizing;

pub use status::MgkaStatus;

use boundary::{answer, catch, guard, optional_str_arg, respond, str_arg, to_json, Failure};
use crate::environment::EnvironmentDefinition;
use crate::error::CoreError;
use crate::graph::{call_id_from_identity_json, KeepAliveOptions};
use crate::keeper::KeeperState;
use crate::operation::{self, Outcome, Wait};
use crate::request_context::{self, RequestContext, RequestContextChange};
use crate::session::{self, ConnectRequest};

/// The library version, e.g. "0.1.0". A static string: do NOT free it. Thread-safe.
#[no_mangle]
pub extern "C" fn mgka_version() -> *const c_char {
    static VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// The library version, e.g. "0.1.0", as NUL-terminated text in data: the same text as
/// `mgka_version()`, readable by symbol lookup right after loading, without calling into the
/// library (the PowerShell module checks it on import this way). Read-only.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mgka_version_string: [c_char; 16] = version_bytes(concat!(env!("CARGO_PKG_VERSION"), "\0"));

const fn version_bytes(text: &str) -> [c_char; 16] {
    let bytes = text.as_bytes();
    assert!(bytes.len() <= 16, "the version string must fit in 16 bytes");
    let mut out = [0 as c_char; 16];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i] as c_char;
        i += 1;
    }
    out
}

/// Frees a string returned by this library. NULL is a no-op. Each string must be freed once.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mgka_string_free(s: *mut c_char) {
    if !s.is_null() {
        let _ = guard(|| {
            drop(CString::from_raw(s));
            MgkaStatus::Ok
        });
    }
}

/// Lists the environments (clouds) as a JSON array of
/// `{"name","azureADEndpoint","graphEndpoint","type":"Built-in"|"User-defined","cloud"}` (`cloud`:
/// Global, USGov, USGovDoD, China or Other, by the Graph endpoint's host).
/// Caller frees `*out_json` with `mgka_string_free`. Thread-safe.
///
/// # Safety
/// `out_json` is NULL or points to writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn mgka_environment_list(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&crate::environment::list()))
}

/// Defines or redefines a user-defined environment from
/// `{"name","azureADEndpoint","graphEndpoint"}`. Endpoints must be https (http only to loopback).
/// Built-in clouds cannot be redefined. `*out_json`: the environment. Caller frees it. Thread-safe;
/// the environment is visible to every caller in the process.
///
/// # Safety
/// `environment_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_environment_add(environment_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let json = str_arg(environment_json, "environment_json")?;
        let definition: EnvironmentDefinition = serde_json::from_str(json)
            .map_err(|e| CoreError::invalid("Environment", format!("The environment JSON is invalid: {e}.")))?;
        to_json(&crate::environment::add(definition)?)
    })
}

/// Removes a user-defined environment. `*out_json`: the removed environment. Unknown name:
/// `MGKA_STATUS_NOT_FOUND`; a built-in cloud or the current session's environment:
/// `MGKA_STATUS_INVALID_ARGUMENT`. Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `name` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_environment_remove(name: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&session::remove_environment(str_arg(name, "name")?)?))
}

/// `url` as messages may show it: everything between the scheme's `://` and the last `@` (a
/// user name and password) replaced by `***`, whatever the text holds, URL or not.
/// `*out_json`: the result as a JSON string, e.g. `"http://***@proxy:3128"`. The one redaction
/// the library applies to every URL in its own messages; hosts use it for the URLs they print
/// (proxies, endpoints) rather than their own. Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `url` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_url_redact(url: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&crate::redact::url(str_arg(url, "url")?)))
}

/// Connects the process and acquires the first token, so a wrong secret, app, tenant or cloud
/// fails here (`MGKA_STATUS_AUTH_ERROR`, with Entra ID's `error`, `errorCodes`, `traceId` and
/// `correlationId`). `request_json`:
/// `{"authType":"AccessToken"|"ClientSecret"|"ClientCertificate"|"ManagedIdentity","environment",
/// "tenantId","clientId","certificate":{"der","chain","sendChain","algorithm"},
/// "managedIdentity":{"identityEndpoint","imdsEndpoint"},"timeoutMs"}`.
/// `secret`/`secret_len`: the access token, client secret, PKCS#8 DER private key or identity
/// header; NULL only with length 0. The library copies it and zeroes its copy when no longer
/// needed; the caller should zero its own buffer. Replaces any existing session on success.
/// `*out_json`: the context (as `mgka_context`) or the error. Caller frees it. Thread-safe.
/// Blocks until done; interruptible hosts use `mgka_connect_start`.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `secret` points to `secret_len` readable bytes;
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_connect(
    request_json: *const c_char,
    secret: *const u8,
    secret_len: usize,
    out_json: *mut *mut c_char,
) -> MgkaStatus {
    respond(out_json, || {
        let (request, secret) = connect_args(request_json, secret, secret_len)?;
        outcome_json(operation::run_blocking(None, connect(request, secret)))
    })
}

/// Like `mgka_connect`, but returns at once with a handle in `*out_operation` (the secret has been
/// copied by then); the context or error is the result of `mgka_operation_wait`. Fails only for
/// NULL or invalid UTF-8 arguments. Thread-safe.
///
/// # Safety
/// As `mgka_connect`; `out_operation` is writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_connect_start(
    request_json: *const c_char,
    secret: *const u8,
    secret_len: usize,
    out_operation: *mut u64,
) -> MgkaStatus {
    start(out_operation, || {
        let (request, secret) = connect_args(request_json, secret, secret_len)?;
        Ok(operation::start(None, connect(request, secret))?)
    })
}

/// The process-wide request settings (`Get-MgRequestContext`), durations in milliseconds:
/// `{"maxRetry":3,"retryDelayMs":3000,"retriesTimeLimitMs":0,"clientTimeoutMs":300000}`
/// (the defaults). Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_request_context_get(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&RequestContextJson::from(request_context::get())))
}

/// Changes the process-wide request settings (`Set-MgRequestContext`) from a JSON object with any
/// of `maxRetry` (0–10), `retryDelayMs` (0–180000), `retriesTimeLimitMs` (0 = off) and
/// `clientTimeoutMs` (≥ 1), durations in milliseconds. Out-of-range values are refused
/// (`MGKA_STATUS_INVALID_ARGUMENT`, naming the setting) and nothing changes. `*out_json`: the
/// settings now in force, as `mgka_request_context_get`. Caller frees it. Thread-safe; applies
/// to keep-alives started afterwards, in every caller of the process.
///
/// # Safety
/// `settings_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_request_context_set(settings_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let change: RequestContextJson = parse_json(str_arg(settings_json, "settings_json")?, "RequestContext")?;
        to_json(&RequestContextJson::from(request_context::set(&change.into())?))
    })
}

/// The request settings at the ABI: camelCase, durations in milliseconds.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestContextJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_retry: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retries_time_limit_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_timeout_ms: Option<u64>,
}

impl From<RequestContext> for RequestContextJson {
    fn from(c: RequestContext) -> Self {
        let ms = |d: Duration| Some(d.as_millis() as u64);
        RequestContextJson {
            max_retry: Some(c.max_retry),
            retry_delay_ms: ms(c.retry_delay),
            retries_time_limit_ms: ms(c.retries_time_limit),
            client_timeout_ms: ms(c.client_timeout),
        }
    }
}

impl From<RequestContextJson> for RequestContextChange {
    fn from(j: RequestContextJson) -> Self {
        RequestContextChange {
            max_retry: j.max_retry,
            retry_delay: j.retry_delay_ms.map(Duration::from_millis),
            retries_time_limit: j.retries_time_limit_ms.map(Duration::from_millis),
            client_timeout: j.client_timeout_ms.map(Duration::from_millis),
        }
    }
}

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
        Ok(keeper::answers_json(&crate::keeper::start(request.call_ids.unwrap_or_default(), interval)?).to_string())
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
            true => crate::keeper::stop(None).into_iter().map(crate::keeper::CallAnswer::State).collect(),
            false => crate::keeper::stop_named(request.call_ids.unwrap_or_default()),
        };
        Ok(keeper::answers_json(&answers).to_string())
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
            Some(ids) => crate::keeper::list_named(ids, request.states),
            None => crate::keeper::list(None, request.states).into_iter().map(crate::keeper::CallAnswer::State).collect(),
        };
        Ok(keeper::answers_json(&answers).to_string())
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
        let (events, last_seq) = crate::keeper::events(after_seq, Duration::from_millis(timeout_ms.into()));
        to_json(&serde_json::json!({ "events": events, "lastSeq": last_seq }))
    })
}

/// Ends the session and stops the keeper (every kept call is forgotten). `*out_json`: the context that was closed, or `null` when there was none.
/// Requests already under way finish with the session they started with. Thread-safe.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_disconnect(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&crate::keeper::disconnect()))
}

/// The current context
/// (`{"clientId","tenantId","scopes","authType","tokenCredentialType","certificateThumbprint","environment","cloud","contextScope","appName"}`;
/// `cloud`: Global, USGov, USGovDoD, China or Other, by the Graph endpoint),
/// or `null` when not connected. Never contains a secret. Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_context(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&session::context()))
}

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
        outcome_json(operation::run_blocking(Some(id.clone()), session::keep_alive(id, options)))
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
        outcome_json(operation::run_blocking(Some(id.clone()), session::keep_alive(id, options)))
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
        Ok(operation::start(Some(id.clone()), async move {
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
        Ok(operation::start(None, async move {
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
        Ok(operation::start(None, async move {
            let request: BulkRequest = parse_json(&request, "InputObject")?;
            let (details, notes) = (request.details.unwrap_or(true), request.notes);
            let (items, concurrency) = request.into_items()?;
            let options = parse_options(options.as_deref())?;
            session::keep_alive_many(items, options, concurrency, details, notes).await
        })?)
    })
}

/// Waits up to `timeout_ms` for an operation. `MGKA_STATUS_PENDING`: not finished, `*out_json`
/// untouched; wait again. Any other status is the operation's final result, with its JSON in
/// `*out_json` (caller frees), and the handle is released. Thread-safe; waiting in short slices
/// keeps the calling thread interruptible.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_operation_wait(operation: u64, timeout_ms: u32, out_json: *mut *mut c_char) -> MgkaStatus {
    let waited = catch(|| match operation::wait(operation, Duration::from_millis(timeout_ms.into())) {
        None => Err(Failure::Abi(MgkaStatus::InvalidHandle, format!("Operation {operation} is unknown or already finished."))),
        Some(Wait::Pending) => Ok(None),
        Some(Wait::Finished(outcome)) => outcome_json(outcome).map(Some),
    });
    match waited {
        Ok(None) => MgkaStatus::Pending,
        Ok(Some(json)) => answer(out_json, Ok(json)),
        Err(failure) => answer(out_json, Err(failure)),
    }
}

/// Cancels an operation: its request is abandoned at once and the handle released.
/// `MGKA_STATUS_OK`, or `MGKA_STATUS_INVALID_HANDLE` if it was unknown or already collected. Thread-safe.
#[no_mangle]
pub extern "C" fn mgka_operation_cancel(operation: u64) -> MgkaStatus {
    guard(|| if operation::cancel(operation) { MgkaStatus::Ok } else { MgkaStatus::InvalidHandle })
}

/// Panics inside the boundary on purpose, so tests can prove a panic becomes `MGKA_STATUS_PANIC`.
/// Built only with the `test-hooks` feature; not in the header.
///
/// # Safety
/// `out_json` is NULL or writable.
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub unsafe extern "C" fn mgka_test_panic(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || panic!("forced panic for a test"))
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

unsafe fn connect_args(
    request_json: *const c_char,
    secret: *const u8,
    secret_len: usize,
) -> Result<(String, Zeroizing<Vec<u8>>), Failure> {
    let request = str_arg(request_json, "request_json")?.to_owned();
    let secret = match (secret.is_null(), secret_len) {
        (true, 0) => Zeroizing::new(Vec::new()),
        (true, _) => return Err(Failure::Abi(MgkaStatus::NullPointer, "secret is NULL.".into())),
        (false, n) => Zeroizing::new(std::slice::from_raw_parts(secret, n).to_vec()),
    };
    Ok((request, secret))
}

/// Parses the request inside the operation, so that a bad request is the operation's result.
async fn connect(request: String, secret: Zeroizing<Vec<u8>>) -> Outcome {
    let request: ConnectRequest = serde_json::from_str(&request)
        .map_err(|e| CoreError::invalid("Connect", format!("The connect request JSON is invalid: {e}.")))?;
    Ok(serde_json::to_value(session::connect(request, secret).await?).unwrap_or_default())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BulkRequest {
    #[serde(default)]
    items: Option<Vec<session::BulkItem>>,
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
    fn into_items(self) -> Result<(Vec<session::BulkItem>, usize), CoreError> {
        let items = match (self.items, self.call_ids) {
            (Some(items), None) => items,
            (None, Some(ids)) => ids.into_iter().map(|id| session::BulkItem { call_id: Some(id), identity: None }).collect(),
            _ => return Err(CoreError::invalid("InputObject", "The bulk request needs exactly one of items or callIds.")),
        };
        Ok((items, self.concurrency.unwrap_or(16)))
    }
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

fn parse_json<T: serde::de::DeserializeOwned>(json: &str, parameter: &'static str) -> Result<T, CoreError> {
    serde_json::from_str(json).map_err(|e| CoreError::invalid(parameter, format!("The {parameter} request JSON is invalid: {e}.")))
}

fn parse_options(json: Option<&str>) -> Result<KeepAliveOptions, CoreError> {
    json.map_or_else(|| Ok(KeepAliveOptions::default()), KeepAliveOptions::from_json)
}

fn outcome_json(outcome: Outcome) -> Result<String, Failure> {
    Ok(outcome?.to_string())
}

fn start<F>(out_operation: *mut u64, body: F) -> MgkaStatus
where
    F: FnOnce() -> Result<u64, Failure> + std::panic::UnwindSafe,
{
    if out_operation.is_null() {
        return MgkaStatus::NullPointer;
    }
    match catch(body) {
        Ok(handle) => {
            // SAFETY: checked non-NULL above; the caller promised it is writable.
            unsafe { *out_operation = handle };
            MgkaStatus::Ok
        }
        Err(failure) => answer(std::ptr::null_mut(), Err(failure)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(json: &str) -> Result<(Vec<session::BulkItem>, usize), CoreError> {
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
