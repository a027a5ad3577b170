//! The session: connect, disconnect, the context, the process-wide request settings.

use std::ffi::c_char;
use std::time::Duration;

use zeroize::Zeroizing;

use super::boundary::{parse_json, respond, run_to_json, start, start_operation, str_arg, to_json, Failure};
use super::MgkaStatus;
use crate::error::CoreError;
use crate::operation::Outcome;
use crate::request_context::{self, RequestContext, RequestContextChange};
use crate::session::{self, ConnectRequest, Context};

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
        run_to_json(None, connect(request, secret))
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
        Ok(start_operation(None, connect(request, secret))?)
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
/// `cloud`: Global, USGov, USGovDoD, China or Other, by the Graph endpoint; for an access token
/// that is a JWT, `clientId` (`appid` or `azp`), `tenantId` (`tid`), `scopes` (`roles`, else `scp`)
/// and `appName` (`app_displayname`) are its claims, and `appName` is `null` for one that is not),
/// or `null` when not connected. Never contains a secret. Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_context(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&session::context()))
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
async fn connect(request: String, secret: Zeroizing<Vec<u8>>) -> Outcome<Context> {
    let request: ConnectRequest = serde_json::from_str(&request)
        .map_err(|e| CoreError::invalid("Connect", format!("The connect request JSON is invalid: {e}.")))?;
    session::connect(request, secret).await
}
