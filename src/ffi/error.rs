//! Errors at the ABI: a core error's JSON, and the error records a host needs to show a failed
//! call the way Microsoft's cmdlets do.

use std::ffi::c_char;

use super::boundary::{optional_str_arg, respond, to_json};
use super::MgkaStatus;
use crate::error::CoreError;
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

/// The error JSON of the ABI for a core error: `kind`, `message`, `callId`, `parameter`, Graph's
/// or the token endpoint's fields, the attempt log of a transport error or timeout, and the
/// `record` hosts show (see [`with_record`]).
pub fn core_error_json(error: &CoreError) -> serde_json::Value {
    let mut value = match error {
        CoreError::Graph(g) => serde_json::to_value(g.as_ref()).unwrap_or_default(),
        CoreError::Auth(a) => serde_json::to_value(a.as_ref()).unwrap_or_default(),
        _ => serde_json::json!({}),
    };
    let Some(obj) = value.as_object_mut() else { return value };
    obj.insert("kind".into(), error.kind().into());
    obj.insert("message".into(), error.to_string().into());
    obj.insert("callId".into(), error.call_id().into());
    let parameter = match error {
        CoreError::InvalidArgument { parameter, .. } => Some(*parameter),
        _ => None,
    };
    obj.insert("parameter".into(), parameter.into());
    if let CoreError::Transport { attempt_log, .. } | CoreError::Timeout { attempt_log, .. } = error {
        obj.insert("attempts".into(), attempt_log.len().into());
        let log = crate::graph::serialize_attempt_log(attempt_log, serde_json::value::Serializer);
        obj.insert("attemptLog".into(), log.unwrap_or_default());
    }
    let record = with_record(&value, error.kind());
    if let Some(obj) = value.as_object_mut() {
        obj.insert("record".into(), record);
    }
    value
}

/// The error record an error JSON of `kind` makes (see [`crate::error_record`]), or null when
/// its message is empty: then the host names its own activity in the message
/// (`mgka_error_record`).
pub(crate) fn with_record(json: &serde_json::Value, kind: &str) -> serde_json::Value {
    match json.get("message").and_then(serde_json::Value::as_str) {
        Some(message) if !message.is_empty() => serde_json::to_value(error_record(kind, json, "")).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
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
