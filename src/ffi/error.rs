//! Error records: what a host needs to show a failed call the way Microsoft's cmdlets do.

use std::ffi::c_char;

use super::boundary::{optional_str_arg, respond, to_json};
use super::MgkaStatus;
use crate::error_record::error_record;

/// Every status, by value (values are stable and never reused).
const STATUSES: [MgkaStatus; 14] = [
    MgkaStatus::Ok,
    MgkaStatus::GraphError,
    MgkaStatus::NotConnected,
    MgkaStatus::InvalidArgument,
    MgkaStatus::NullPointer,
    MgkaStatus::InvalidUtf8,
    MgkaStatus::TransportError,
    MgkaStatus::Timeout,
    MgkaStatus::Cancelled,
    MgkaStatus::Pending,
    MgkaStatus::InvalidHandle,
    MgkaStatus::AuthError,
    MgkaStatus::Panic,
    MgkaStatus::NotFound,
];

/// A status's name (`GraphError`), or `Status<n>` for a value this library does not know.
pub(crate) fn status_name(status: u32) -> String {
    STATUSES.iter().find(|s| **s as u32 == status).map_or_else(|| format!("Status{status}"), |s| s.name().to_owned())
}

/// The error record of a failed call: `status` (an `MgkaStatus` value) with its error JSON
/// (`error_json`, NULL when the call gave none; JSON that is not an object counts as none),
/// raised by `activity` (NULL: none), as the JSON object
/// `{"errorId","category","exception","httpStatus","message","properties","details","recommendedAction"}`:
/// the ErrorId; a PowerShell `ErrorCategory` name; the exception (`HttpRequest`, `Authentication`,
/// `Argument`, `ItemNotFound`, `Timeout`, `InvalidOperation` or `NotSupported`), with its StatusCode (`httpStatus`,
/// or null) and message; its extra properties in order, `[name, value]` or `[name, value, type]`
/// with type `Headers` (name → values), `Int64s`, or `Objects` (rows of values, the property names
/// as a fourth element: `[name, rows, "Objects", [names]]`); and, for a Graph
/// answer, the ErrorDetails text and its recommended action (else null). Every error JSON of this
/// library with a message already carries this object as `record`; this is for the others (a
/// status without JSON, an error of invalid input found by the host, and the sign-in errors a host
/// finds, `{"kind":"SignIn","errorId":...}` with their facts, which this words: certificates it
/// cannot use, missing `AZURE_*` variables). Caller frees `*out_json`
/// with `mgka_string_free`. Thread-safe.
///
/// # Safety
/// `error_json` and `activity` are NULL or NUL-terminated strings; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_error_record(
    status: u32,
    error_json: *const c_char,
    activity: *const c_char,
    out_json: *mut *mut c_char,
) -> MgkaStatus {
    respond(out_json, || {
        let info: serde_json::Value = optional_str_arg(error_json, "error_json")?.and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default();
        let activity = optional_str_arg(activity, "activity")?.unwrap_or_default();
        let kind = match info.get("kind") {
            Some(serde_json::Value::String(kind)) if !kind.is_empty() => kind.clone(),
            _ => status_name(status),
        };
        to_json(&error_record(&kind, &info, activity))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_by_value() {
        for (value, status) in STATUSES.iter().enumerate() {
            assert_eq!(*status as usize, value);
        }
        assert_eq!(status_name(1), "GraphError");
        assert_eq!(status_name(13), "NotFound");
        assert_eq!(status_name(99), "Status99");
    }
}
