//! The one place where pointers, strings and panics are handled for every export.

use std::ffi::{c_char, CStr, CString};
use std::future::Future;
use std::panic::{catch_unwind, UnwindSafe};

use once_cell::sync::Lazy;

use super::error::{core_error_json, with_record};
use super::MgkaStatus;
use crate::error::{panic_description, CoreError};
use crate::operation::{self, Operations, Outcome};

/// Why an export failed: a core error, or a problem with the arguments at the ABI itself.
pub(crate) enum Failure {
    Core(CoreError),
    /// A core error with the error id hosts show for it (`"errorId"` in its JSON), where the
    /// kind alone does not say it (e.g. `CallNotKept`, `EnvironmentNotFound`).
    Named(CoreError, &'static str),
    Abi(MgkaStatus, String),
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    fn status(&self) -> MgkaStatus {
        match self {
            Failure::Core(e) | Failure::Named(e, _) => e.into(),
            Failure::Abi(status, _) => *status,
        }
    }

    fn to_json(&self) -> String {
        match self {
            Failure::Core(e) => core_error_json(e).to_string(),
            Failure::Named(e, id) => error_json(e, Some(id)).to_string(),
            Failure::Abi(status, message) => {
                let mut json = serde_json::json!({
                    "kind": status.name(), "message": message, "callId": null, "parameter": null,
                });
                json["record"] = with_record(&json, status.name());
                json.to_string()
            }
        }
    }
}

/// A core error's JSON, with `"errorId"` when given.
pub(crate) fn error_json(error: &CoreError, error_id: Option<&str>) -> serde_json::Value {
    let mut json = core_error_json(error);
    if let (Some(id), Some(object)) = (error_id, json.as_object_mut()) {
        object.insert("errorId".into(), id.into());
        // The record hosts make (see crate::error) carries the same id.
        if let Some(record) = object.get_mut("record").and_then(|r| r.as_object_mut()) {
            record.insert("errorId".into(), id.into());
        }
    }
    json
}

/// Runs an export's body behind the panic boundary: a panic becomes a `Panic` failure.
pub(crate) fn catch<T, F>(body: F) -> Result<T, Failure>
where
    F: FnOnce() -> Result<T, Failure> + UnwindSafe,
{
    catch_unwind(body).unwrap_or_else(|panic| {
        Err(Failure::Abi(MgkaStatus::Panic, panic_description(&*panic)))
    })
}

/// Writes the JSON answer to `out_json` (when not NULL): the success JSON, or the error JSON.
pub(crate) fn answer(out_json: *mut *mut c_char, result: Result<String, Failure>) -> MgkaStatus {
    let (status, json) = match result {
        Ok(json) => (MgkaStatus::Ok, json),
        Err(failure) => (failure.status(), failure.to_json()),
    };
    write_string(out_json, json);
    status
}

/// [`catch`] then [`answer`]: the shape of most exports.
pub(crate) fn respond<F>(out_json: *mut *mut c_char, body: F) -> MgkaStatus
where
    F: FnOnce() -> Result<String, Failure> + UnwindSafe,
{
    answer(out_json, catch(body))
}

/// Like [`respond`] for exports that answer with a status only.
pub(crate) fn guard<F>(body: F) -> MgkaStatus
where
    F: FnOnce() -> MgkaStatus + UnwindSafe,
{
    catch_unwind(body).unwrap_or(MgkaStatus::Panic)
}

/// Borrows a NUL-terminated UTF-8 argument. NULL and invalid UTF-8 are errors, never decoded lossily.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::Abi(MgkaStatus::NullPointer, format!("{name} is NULL.")));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map_err(|_| Failure::Abi(MgkaStatus::InvalidUtf8, format!("{name} is not valid UTF-8.")))
}

/// Like [`str_arg`], but NULL means "not given".
pub(crate) unsafe fn optional_str_arg<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        str_arg(ptr, name).map(Some)
    }
}

/// Hands a string to the caller, who frees it with `mgka_string_free`.
pub(crate) fn write_string(out: *mut *mut c_char, value: String) {
    if out.is_null() {
        return;
    }
    // JSON escapes NUL, so this cannot fail for our output; stay total anyway.
    let c = CString::new(value).unwrap_or_else(|_| CString::from(c"{\"kind\":\"Panic\"}"));
    // SAFETY: `out` is non-NULL and the caller promised it points to writable storage.
    unsafe { *out = c.into_raw() };
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::Abi(MgkaStatus::Panic, format!("cannot serialise the answer: {e}")))
}

/// Parses a request JSON; a malformed one is an InvalidArgument naming `parameter`.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(json: &str, parameter: &'static str) -> Result<T, CoreError> {
    serde_json::from_str(json).map_err(|e| CoreError::invalid(parameter, format!("The {parameter} request JSON is invalid: {e}.")))
}

/// The operations the `*_start` exports began, their results already JSON text (made when
/// the work finishes, on the library's runtime), collected by `mgka_operation_wait`.
pub(crate) static OPERATIONS: Lazy<Operations<String>> = Lazy::new(Operations::default);

/// Starts `work` as an operation of the ABI: its typed answer becomes the JSON of the wait.
pub(crate) fn start_operation<T, F>(call_id: Option<String>, work: F) -> Result<u64, CoreError>
where
    T: serde::Serialize,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    OPERATIONS.start(call_id, async move { json_text(&work.await?) })
}

/// Runs `work` to completion (the blocking exports) and gives its answer as JSON.
pub(crate) fn run_to_json<T, F>(call_id: Option<String>, work: F) -> Result<String, Failure>
where
    T: serde::Serialize + Send + 'static,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    Ok(json_text(&operation::run_blocking(call_id, work)?)?)
}

fn json_text<T: serde::Serialize>(answer: &T) -> Outcome<String> {
    serde_json::to_string(answer)
        .map_err(|e| CoreError::Panic { call_id: None, message: format!("Internal error in MgKeepAlive: cannot serialise the answer: {e}") })
}

/// Runs a `*_start` export's body behind the panic boundary and writes the operation handle.
pub(crate) fn start<F>(out_operation: *mut u64, body: F) -> MgkaStatus
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
