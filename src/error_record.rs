//! What a PowerShell error record of a failed call is made of, decided once from the error's kind
//! and its error JSON: the ErrorId, the category (a PowerShell `ErrorCategory` name), the .NET
//! exception ([`ExceptionKind`]) with its message and extra properties, and for a Graph answer the
//! ErrorDetails text Microsoft's cmdlets show and their recommended action. The PowerShell module
//! only makes the .NET objects (`New-MgkaErrorRecord`).

mod headers;
mod sign_in;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// What Microsoft's cmdlets recommend for a Graph error, word for word (Microsoft.Graph 2.38.1).
pub const GRAPH_ERROR_RECOMMENDATION: &str = "See service error codes: https://learn.microsoft.com/graph/errors";

/// An error message (and the first line of ErrorDetails) is cut after this many UTF-16 code units:
/// a broken server's body can be the message (up to 1 MiB); the whole text stays in ResponseBody.
const MAX_MESSAGE_UNITS: usize = 2000;

/// The .NET exception of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExceptionKind {
    /// `System.Net.Http.HttpRequestException` (with `httpStatus`: its StatusCode).
    HttpRequest,
    /// `System.Security.Authentication.AuthenticationException`.
    Authentication,
    /// `System.ArgumentException` (without ParamName: the ErrorId names the parameter).
    Argument,
    /// `System.Management.Automation.ItemNotFoundException`.
    ItemNotFound,
    /// `System.TimeoutException`.
    Timeout,
    /// `System.InvalidOperationException`.
    InvalidOperation,
    /// `System.NotSupportedException`.
    NotSupported,
}

/// How PowerShell turns a property's JSON into the value scripts see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    /// A JSON value as it is (string, number, null).
    Value,
    /// Header name → values: a case-insensitive `Dictionary[string, string[]]`.
    Headers,
    /// Objects, in JSON rows of values whose property names are given in order (`[pscustomobject]`
    /// each, an array of them): (name, the library's name) per column.
    Objects(&'static [(&'static str, &'static str)]),
    /// An array of numbers: `[long[]]`.
    Int64s,
}

/// The exception's extra properties, in the order scripts see them: in JSON an array of
/// `[name, value]`, or `[name, value, type]` for a value that is not plain (see [`PropertyType`]),
/// `[name, rows, "Objects", [column names]]` for objects, so that every order survives any JSON
/// map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties(pub Vec<(&'static str, PropertyType, Value)>);

impl Serialize for Properties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, kind, value) in &self.0 {
            match kind {
                PropertyType::Value => seq.serialize_element(&(name, value))?,
                PropertyType::Headers => seq.serialize_element(&(name, value, "Headers"))?,
                PropertyType::Int64s => seq.serialize_element(&(name, value, "Int64s"))?,
                PropertyType::Objects(columns) => {
                    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                    seq.serialize_element(&(name, value, "Objects", names))?
                }
            }
        }
        seq.end()
    }
}

/// Everything an error record needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRecordInfo {
    pub error_id: String,
    /// A `System.Management.Automation.ErrorCategory` name.
    pub category: &'static str,
    pub exception: ExceptionKind,
    /// The exception's StatusCode (`HttpRequest` exceptions of Graph answers).
    pub http_status: Option<i64>,
    pub message: String,
    pub properties: Properties,
    /// The ErrorDetails text (Graph answers), with its recommended action.
    pub details: Option<String>,
    pub recommended_action: Option<&'static str>,
}

impl Serialize for ErrorRecordInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("errorId", &self.error_id)?;
        map.serialize_entry("category", self.category)?;
        map.serialize_entry("exception", &self.exception)?;
        map.serialize_entry("httpStatus", &self.http_status)?;
        map.serialize_entry("message", &self.message)?;
        map.serialize_entry("properties", &self.properties)?;
        map.serialize_entry("details", &self.details)?;
        map.serialize_entry("recommendedAction", &self.recommended_action)?;
        map.end()
    }
}

/// The line break of ErrorDetails: the platform's, as .NET's `Environment.NewLine`.
const NEW_LINE: &str = if cfg!(windows) { "\r\n" } else { "\n" };

/// A JSON value as PowerShell prints it in a string (`"$x"`): null and missing are empty.
fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_owned(),
        Some(other) => other.to_string(),
    }
}

/// Whether PowerShell takes the value as true (`if ($x)`).
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(_)) => true,
    }
}

/// At most 2,000 characters (UTF-16 code units, as .NET counts) of an error text.
pub fn limit_text(text: &str) -> String {
    let units = text.encode_utf16().count();
    if units <= MAX_MESSAGE_UNITS {
        return text.to_owned();
    }
    let mut taken = 0;
    let head: String = text
        .chars()
        .take_while(|c| {
            taken += c.len_utf16();
            taken <= MAX_MESSAGE_UNITS
        })
        .collect();
    format!("{head}... ({} more characters; the whole answer is in Exception.ResponseBody)", units - MAX_MESSAGE_UNITS)
}

/// The ErrorId of an invalid argument, from the parameter it names.
fn invalid_argument_id(parameter: Option<&str>) -> String {
    const NAMED: [(&str, &str); 6] = [
        ("CallId", "InvalidCallId"),
        ("InputObject", "InvalidIdentity"),
        (crate::graph::MISSING_CALL_ID_PARAMETER, "InputObjectCallIdMissing"),
        ("Headers", "InvalidHeaders"),
        ("Environment", "InvalidEnvironment"),
        ("AccessToken", "InvalidAccessToken"),
    ];
    match parameter {
        None => "InvalidArgument".to_owned(),
        Some(p) => NAMED.iter().find(|(name, _)| name.eq_ignore_ascii_case(p)).map_or_else(|| format!("Invalid{p}"), |(_, id)| (*id).to_owned()),
    }
}

/// The columns of an attempt log as scripts see it (no HTTP traces), and the library's names.
const ATTEMPT_COLUMNS: [(&str, &str); 6] =
    [("Attempt", "attempt"), ("Status", "status"), ("Error", "error"), ("ElapsedMs", "elapsedMs"), ("WaitMs", "waitMs"), ("RetryAfter", "retryAfter")];

/// The attempt log as rows of [`ATTEMPT_COLUMNS`].
fn attempt_log(info: &serde_json::Map<String, Value>) -> Value {
    let entries = info.get("attemptLog").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let row = |e: &serde_json::Map<String, Value>| Value::Array(ATTEMPT_COLUMNS.iter().map(|(_, k)| e.get(*k).cloned().unwrap_or(Value::Null)).collect());
    Value::Array(entries.iter().filter_map(Value::as_object).map(row).collect())
}

/// `Attempts`, `AttemptLog` and `CallId`: what a failed keep-alive's exception carries.
fn attempt_properties(info: &serde_json::Map<String, Value>) -> Vec<(&'static str, PropertyType, Value)> {
    let field = |k: &str| info.get(k).cloned().unwrap_or(Value::Null);
    vec![
        ("Attempts", PropertyType::Value, field("attempts")),
        ("AttemptLog", PropertyType::Objects(&ATTEMPT_COLUMNS), attempt_log(info)),
        ("CallId", PropertyType::Value, field("callId")),
    ]
}

/// The ErrorDetails text of Microsoft's cmdlets for an HTTP error, line for line: the message,
/// Status, ErrorCode, Date (Graph's innerError date), then the response headers as .NET's
/// `HttpResponseHeaders` names and keeps them (see [`headers`]).
fn graph_details(info: &serde_json::Map<String, Value>, message: &str, code: &str) -> String {
    let nl = NEW_LINE;
    let shown_message = match info.get("graphMessage") {
        None | Some(Value::Null) => message.to_owned(),
        graph => text(graph),
    };
    let reason = if truthy(info.get("reason")) {
        text(info.get("reason"))
    } else {
        // .NET's HttpStatusCode name, as the library names a status everywhere.
        let status = info.get("httpStatus").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
        status
            .and_then(|s| reqwest::StatusCode::from_u16(s).ok())
            .map(crate::graph::reason_phrase)
            .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_else(|| text(info.get("httpStatus")))
    };
    let mut details = format!(
        "{}{nl}{nl}Status: {} ({reason}){nl}ErrorCode: {code}{nl}Date: {}{nl}{nl}Headers:{nl}",
        limit_text(&shown_message),
        text(info.get("httpStatus")),
        text(info.get("date")),
    );
    if let Some(map) = info.get("headers").and_then(Value::as_object) {
        let sent = map.iter().map(|(name, values)| {
            let values = match values {
                Value::Array(list) => list.iter().map(|v| v.as_str().unwrap_or_default()).collect(),
                Value::String(one) => vec![one.as_str()],
                _ => Vec::new(),
            };
            (name.as_str(), values)
        });
        let lines: Vec<String> = headers::shown(sent).into_iter().map(|(name, values)| format!("{name:<30}: {}", values.join(", "))).collect();
        details.push_str(&lines.join(nl));
    }
    details.push_str(nl);
    details.push_str(nl);
    details
}

/// The record of an error of `kind` (the error JSON's `kind`, else the status name) with its error
/// JSON `info` (an object; anything else counts as empty), raised by `activity` (named in the
/// message when the JSON has none).
pub fn error_record(kind: &str, info: &Value, activity: &str) -> ErrorRecordInfo {
    let empty = serde_json::Map::new();
    let info = info.as_object().unwrap_or(&empty);
    let field = |k: &str| info.get(k).cloned().unwrap_or(Value::Null);
    let message = if truthy(info.get("message")) { text(info.get("message")) } else { format!("MgKeepAlive: {activity} failed ({kind}).") };
    let mut record = ErrorRecordInfo {
        error_id: String::new(),
        category: "InvalidOperation",
        exception: ExceptionKind::InvalidOperation,
        http_status: None,
        message: limit_text(&message),
        properties: Properties::default(),
        details: None,
        recommended_action: None,
    };
    match kind {
        "GraphError" => {
            let code = if truthy(info.get("code")) { text(info.get("code")) } else { "UnknownError".to_owned() };
            record.exception = ExceptionKind::HttpRequest;
            record.http_status = Some(info.get("httpStatus").and_then(Value::as_i64).unwrap_or(0));
            record.properties = Properties(
                [
                    ("ErrorCode", PropertyType::Value, Value::String(code.clone())),
                    ("GraphMessage", PropertyType::Value, field("graphMessage")),
                    ("RequestId", PropertyType::Value, field("requestId")),
                    ("ClientRequestId", PropertyType::Value, field("clientRequestId")),
                    ("Date", PropertyType::Value, field("date")),
                    ("ResponseHeaders", PropertyType::Headers, info.get("headers").filter(|h| h.is_object()).cloned().unwrap_or_else(|| serde_json::json!({}))),
                    ("ResponseBody", PropertyType::Value, field("body")),
                ]
                .into_iter()
                .chain(attempt_properties(info).into_iter().take(2))
                .chain([("CallId", PropertyType::Value, field("callId"))])
                .collect(),
            );
            record.details = Some(graph_details(info, &message, &code));
            record.recommended_action = Some(GRAPH_ERROR_RECOMMENDATION);
            record.error_id = code;
        }
        "NotConnected" => {
            // Microsoft's words; its record's CategoryInfo.Reason is AuthenticationException too.
            record.message = crate::error::NOT_CONNECTED_MESSAGE.to_owned();
            record.exception = ExceptionKind::Authentication;
            record.error_id = "NotConnected".to_owned();
            record.category = "AuthenticationError";
        }
        "InvalidArgument" => {
            let parameter = truthy(info.get("parameter")).then(|| text(info.get("parameter")));
            record.exception = ExceptionKind::Argument;
            record.error_id = invalid_argument_id(parameter.as_deref());
            record.category = "InvalidArgument";
        }
        "NotFound" => {
            record.exception = ExceptionKind::ItemNotFound;
            record.error_id = "NotFound".to_owned();
            record.category = "ObjectNotFound";
        }
        "Timeout" => {
            record.exception = ExceptionKind::Timeout;
            record.error_id = "Timeout".to_owned();
            record.category = "OperationTimeout";
            record.properties = Properties(attempt_properties(info));
        }
        "TransportError" => {
            record.exception = ExceptionKind::HttpRequest;
            record.error_id = "TransportError".to_owned();
            record.category = "ConnectionError";
            record.properties = Properties(attempt_properties(info));
        }
        "AuthError" => {
            // Token endpoint failures: ErrorId AADSTS<first code>, else the OAuth error. The
            // library never puts the secret, key, assertion or a token into this JSON.
            let codes: Vec<Value> = info.get("errorCodes").and_then(Value::as_array).map(|a| a.iter().filter(|c| !c.is_null()).cloned().collect()).unwrap_or_default();
            record.exception = ExceptionKind::Authentication;
            record.error_id = match (codes.first(), truthy(info.get("error"))) {
                (Some(first), _) => format!("AADSTS{}", text(Some(first))),
                (None, true) => text(info.get("error")),
                (None, false) => "AuthenticationFailed".to_owned(),
            };
            record.category = "AuthenticationError";
            record.properties = Properties(vec![
                ("Error", PropertyType::Value, field("error")),
                ("ErrorDescription", PropertyType::Value, field("errorDescription")),
                ("ErrorCodes", PropertyType::Int64s, Value::Array(codes)),
                ("TraceId", PropertyType::Value, field("traceId")),
                ("CorrelationId", PropertyType::Value, field("correlationId")),
                ("HttpStatus", PropertyType::Value, field("httpStatus")),
                ("TokenEndpoint", PropertyType::Value, field("tokenEndpoint")),
            ]);
        }
        "SignIn" => match sign_in::sign_in_error(&text(info.get("errorId")), info) {
            // Connect-MgGraph's app-only sign-in errors found by the host (see sign_in).
            Some((message, category, exception)) => {
                record.message = limit_text(&message);
                record.error_id = text(info.get("errorId"));
                record.category = category;
                record.exception = exception;
            }
            None => {
                record.message = format!("MgKeepAlive internal error (SignIn): {} Please report it.", record.message);
                record.error_id = "InternalSignIn".to_owned();
                record.category = "NotSpecified";
            }
        },
        _ => {
            // NullPointer, InvalidUtf8, InvalidHandle, Panic: bugs in the module or the library.
            record.message = format!("MgKeepAlive internal error ({kind}): {} Please report it.", record.message);
            record.error_id = format!("Internal{kind}");
            record.category = "NotSpecified";
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(kind: &str, info: Value) -> Value {
        serde_json::to_value(error_record(kind, &info, "Keep alive")).unwrap()
    }

    #[test]
    fn graph_errors_carry_microsofts_details() {
        let info = json!({
            "kind": "GraphError", "message": "[itemNotFound] : gone", "callId": "c1", "httpStatus": 404,
            "reason": "NotFound", "code": "itemNotFound", "graphMessage": "gone", "requestId": "r1",
            "clientRequestId": "c9", "date": "2026-01-01T00:00:00", "body": null, "attempts": 1,
            "headers": {
                "cache-control": ["no-store, no-cache"], "client-request-id": ["c9"], "content-type": ["application/json"],
                "date": ["Thu, 03 Dec 2026 11:14:05 GMT"], "request-id": ["r1"], "strict-transport-security": ["max-age=31536000"],
                "transfer-encoding": ["chunked"], "vary": ["Accept-Encoding"], "x-ms-ags-diagnostic": ["{\"a\":1}"]
            },
            "attemptLog": [{"attempt": 1, "status": 404, "error": "itemNotFound", "elapsedMs": 5, "waitMs": null, "retryAfter": null,
                            "http": {"method": "POST"}}]
        });
        let r = record("GraphError", info);
        assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("itemNotFound"), Some("InvalidOperation"), Some("HttpRequest")));
        assert_eq!((r["httpStatus"].as_i64(), r["message"].as_str()), (Some(404), Some("[itemNotFound] : gone")));
        let headers = r["properties"][5][1].clone();
        assert_eq!(headers["content-type"], json!(["application/json"]));
        assert_eq!(
            r["properties"],
            json!([
                ["ErrorCode", "itemNotFound"], ["GraphMessage", "gone"], ["RequestId", "r1"], ["ClientRequestId", "c9"],
                ["Date", "2026-01-01T00:00:00"], ["ResponseHeaders", headers, "Headers"], ["ResponseBody", null], ["Attempts", 1],
                ["AttemptLog", [[1, 404, "itemNotFound", 5, null, null]], "Objects", ["Attempt", "Status", "Error", "ElapsedMs", "WaitMs", "RetryAfter"]],
                ["CallId", "c1"]
            ])
        );
        assert_eq!(r["recommendedAction"], GRAPH_ERROR_RECOMMENDATION);
        let nl = NEW_LINE;
        let expected = [
            "gone",
            "",
            "Status: 404 (NotFound)",
            "ErrorCode: itemNotFound",
            "Date: 2026-01-01T00:00:00",
            "",
            "Headers:",
            "Cache-Control                 : no-store, no-cache",
            "client-request-id             : c9",
            "Date                          : Thu, 03 Dec 2026 11:14:05 GMT",
            "request-id                    : r1",
            "Strict-Transport-Security     : max-age=31536000",
            "Transfer-Encoding             : chunked",
            "Vary                          : Accept-Encoding",
            "x-ms-ags-diagnostic           : {\"a\":1}",
            "",
            "",
        ]
        .join(nl);
        assert_eq!(r["details"].as_str().unwrap(), expected);
    }

    #[test]
    fn details_without_headers_message_or_code() {
        let r = record("GraphError", json!({"kind": "GraphError", "message": "m", "httpStatus": 503, "reason": "ServiceUnavailable", "headers": {}}));
        let nl = NEW_LINE;
        assert_eq!(r["details"].as_str().unwrap(), format!("m{nl}{nl}Status: 503 (ServiceUnavailable){nl}ErrorCode: UnknownError{nl}Date: {nl}{nl}Headers:{nl}{nl}{nl}"));
        assert_eq!(r["errorId"], "UnknownError");
        assert_eq!(r["properties"][5], json!(["ResponseHeaders", {}, "Headers"]));
        assert_eq!(r["properties"][8], json!(["AttemptLog", [], "Objects", ["Attempt", "Status", "Error", "ElapsedMs", "WaitMs", "RetryAfter"]]));
    }

    #[test]
    fn long_messages_are_cut_at_two_thousand_utf16_units() {
        assert_eq!(limit_text("short"), "short");
        let exact = "x".repeat(2000);
        assert_eq!(limit_text(&exact), exact);
        let long = "x".repeat(2500);
        assert_eq!(limit_text(&long), format!("{}... (500 more characters; the whole answer is in Exception.ResponseBody)", "x".repeat(2000)));
        // "€" is one UTF-16 unit (three UTF-8 bytes), "😀" two.
        let euros = "€".repeat(2001);
        assert!(limit_text(&euros).starts_with(&format!("{}... (1 more", "€".repeat(2000))));
        let body = "b".repeat(100_000);
        let r = record("GraphError", json!({"kind": "GraphError", "message": format!("[UnknownError] : {body}"), "graphMessage": body, "httpStatus": 500}));
        assert_eq!(r["message"].as_str().unwrap().encode_utf16().count(), 2000 + "... (98017 more characters; the whole answer is in Exception.ResponseBody)".len());
        assert!(r["details"].as_str().unwrap().starts_with(&format!("{}... (98000 more characters", "b".repeat(2000))));
        assert_eq!(r["details"].as_str().unwrap().lines().nth(2), Some("Status: 500 (InternalServerError)"));
    }

    const COLUMNS: [&str; 6] = ["Attempt", "Status", "Error", "ElapsedMs", "WaitMs", "RetryAfter"];

    #[test]
    fn the_other_kinds() {
        let r = record("NotConnected", json!({"kind": "NotConnected", "message": "x"}));
        assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("NotConnected"), Some("AuthenticationError"), Some("Authentication")));
        assert_eq!(r["message"], "Authentication needed. Please call Connect-MgGraph.");
        assert_eq!(r["properties"], json!([]));
        assert_eq!(r["details"], Value::Null);

        for (parameter, id) in [
            (json!("CallId"), "InvalidCallId"),
            (json!("callid"), "InvalidCallId"),
            (json!("InputObject"), "InvalidIdentity"),
            (json!("Headers"), "InvalidHeaders"),
            (json!("Environment"), "InvalidEnvironment"),
            (json!("AccessToken"), "InvalidAccessToken"),
            (json!("Interval"), "InvalidInterval"),
            (json!(null), "InvalidArgument"),
            (json!(""), "InvalidArgument"),
        ] {
            let r = record("InvalidArgument", json!({"kind": "InvalidArgument", "parameter": parameter, "message": "bad"}));
            assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str(), r["message"].as_str()), (Some(id), Some("InvalidArgument"), Some("Argument"), Some("bad")));
        }

        let r = record("NotFound", json!({"message": "no such environment"}));
        assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("NotFound"), Some("ObjectNotFound"), Some("ItemNotFound")));

        let log = json!([{"attempt": 1, "status": null, "error": "Timeout", "elapsedMs": 100, "waitMs": null, "retryAfter": null}]);
        let r = record("Timeout", json!({"kind": "Timeout", "message": "timed out", "callId": "c", "attempts": 1, "attemptLog": log}));
        assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("Timeout"), Some("OperationTimeout"), Some("Timeout")));
        assert_eq!(
            r["properties"],
            json!([["Attempts", 1], ["AttemptLog", [[1, null, "Timeout", 100, null, null]], "Objects", COLUMNS], ["CallId", "c"]])
        );
        assert_eq!(record("Timeout", json!({}))["properties"], json!([["Attempts", null], ["AttemptLog", [], "Objects", COLUMNS], ["CallId", null]]));

        let r = record("TransportError", json!({"kind": "TransportError", "message": "reset"}));
        assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str(), r["httpStatus"].as_i64()), (Some("TransportError"), Some("ConnectionError"), Some("HttpRequest"), None));

        let auth = |info: Value| record("AuthError", info);
        let r = auth(json!({"message": "no", "error": "invalid_client", "errorCodes": [7000215, 1], "httpStatus": 401}));
        assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("AADSTS7000215"), Some("AuthenticationError"), Some("Authentication")));
        assert_eq!(r["properties"][2], json!(["ErrorCodes", [7000215, 1], "Int64s"]));
        assert_eq!(
            auth(json!({}))["properties"],
            json!([["Error", null], ["ErrorDescription", null], ["ErrorCodes", [], "Int64s"], ["TraceId", null], ["CorrelationId", null], ["HttpStatus", null], ["TokenEndpoint", null]])
        );
        assert_eq!(auth(json!({"error": "invalid_grant", "errorCodes": []}))["errorId"], "invalid_grant");
        assert_eq!(auth(json!({"error": ""}))["errorId"], "AuthenticationFailed");

        let r = record("Panic", json!({"message": "Internal error in MgKeepAlive: boom"}));
        assert_eq!((r["errorId"].as_str(), r["category"].as_str(), r["exception"].as_str()), (Some("InternalPanic"), Some("NotSpecified"), Some("InvalidOperation")));
        assert_eq!(r["message"], "MgKeepAlive internal error (Panic): Internal error in MgKeepAlive: boom Please report it.");
        // No message: the activity names what failed.
        let r = serde_json::to_value(error_record("InvalidHandle", &Value::Null, "Wait")).unwrap();
        assert_eq!(r["message"], "MgKeepAlive internal error (InvalidHandle): MgKeepAlive: Wait failed (InvalidHandle). Please report it.");
        assert_eq!(record("InvalidArgument", json!({"message": ""}))["message"], "MgKeepAlive: Keep alive failed (InvalidArgument).");
    }
}
