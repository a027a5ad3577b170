//! Response building: the standard Graph headers, Graph/Entra error bodies and scripted replies.

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::state::{new_guid, FaultResponse};
use crate::timefmt;

pub(crate) const AGS_DIAGNOSTIC: &str = r#"{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"graph-emulator"}}"#;

/// Per-request identifiers echoed in headers and error bodies.
pub(crate) struct Ctx {
    pub request_id: String,
    pub client_request_id: String,
}

impl Ctx {
    pub fn new(client_request_id: Option<&str>) -> Ctx {
        Ctx {
            request_id: new_guid(),
            client_request_id: client_request_id
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(new_guid),
        }
    }
}

pub(crate) enum ReplyBody {
    None,
    /// Serialized JSON text (kept as text so field order stays as Graph sends it).
    Json(String),
    Text(String),
}

/// A response before it is turned into HTTP (single request) or a batch item.
pub(crate) struct Reply {
    pub status: u16,
    /// Extra headers (scripted ones, Retry-After, ...). They override the standard headers.
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: ReplyBody,
}

impl Reply {
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: None,
            body: ReplyBody::None,
        }
    }

    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: Some("application/json".into()),
            body: ReplyBody::Json(serde_json::to_string(value).unwrap_or_else(|_| "null".into())),
        }
    }

    /// A standard Graph error: `{"error":{"code","message","innerError":{...}}}`.
    pub fn graph_error(status: u16, code: &str, message: &str, client_request_id: &str) -> Reply {
        Reply {
            body: ReplyBody::Json(graph_error_body(code, message, client_request_id)),
            ..Reply::json(status, &())
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Turns the reply into an HTTP response with the standard Graph headers.
    pub fn into_response(self, ctx: &Ctx) -> Response<Full<Bytes>> {
        let body: Bytes = match self.body {
            ReplyBody::None => Bytes::new(),
            // Graph's error body names the same request-id as the header.
            ReplyBody::Json(v) => Bytes::from(v.replace(REQUEST_ID_PLACEHOLDER, &ctx.request_id)),
            ReplyBody::Text(t) => Bytes::from(t),
        };
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = Response::new(Full::new(body.clone()));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert("request-id", hv(&ctx.request_id));
        h.insert("client-request-id", hv(&ctx.client_request_id));
        h.insert(
            "x-ms-ags-diagnostic",
            HeaderValue::from_static(AGS_DIAGNOSTIC),
        );
        h.insert(
            hyper::header::DATE,
            hv(&httpdate::fmt_http_date(SystemTime::now())),
        );
        if let Some(ct) = &self.content_type {
            h.insert(CONTENT_TYPE, hv(ct));
        }
        h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                h.insert(n, v);
            }
        }
        resp
    }

    /// Turns the reply into one `$batch` response item (JSON text).
    pub fn into_batch_item(self, id: &str) -> String {
        let mut headers = serde_json::Map::new();
        if let Some(ct) = &self.content_type {
            headers.insert("Content-Type".into(), Value::String(ct.clone()));
        }
        for (name, value) in self.headers {
            headers.insert(name, Value::String(value));
        }
        let body = match self.body {
            ReplyBody::None => "null".to_string(),
            ReplyBody::Json(v) => v.replace(REQUEST_ID_PLACEHOLDER, &new_guid()),
            ReplyBody::Text(t) => serde_json::to_string(&t).unwrap_or_default(),
        };
        format!(
            r#"{{"id":{},"status":{},"headers":{},"body":{}}}"#,
            serde_json::to_string(id).unwrap_or_default(),
            self.status,
            Value::Object(headers),
            body
        )
    }
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Serialize)]
struct GraphError<'a> {
    error: GraphErrorDetail<'a>,
}

#[derive(Serialize)]
struct GraphErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(rename = "innerError")]
    inner_error: InnerError<'a>,
}

#[derive(Serialize)]
struct InnerError<'a> {
    date: String,
    #[serde(rename = "request-id")]
    request_id: String,
    #[serde(rename = "client-request-id")]
    client_request_id: &'a str,
}

/// Stands for the response's request id in a Graph error body until the response is made, so the
/// body and the `request-id` header agree, as Graph's do.
const REQUEST_ID_PLACEHOLDER: &str = "00000000-0000-0000-0000-00request-id";

/// `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}` as text.
pub(crate) fn graph_error_body(code: &str, message: &str, client_request_id: &str) -> String {
    serde_json::to_string(&GraphError {
        error: GraphErrorDetail {
            code,
            message,
            inner_error: InnerError {
                date: timefmt::rfc3339(SystemTime::now()),
                request_id: REQUEST_ID_PLACEHOLDER.into(),
                client_request_id,
            },
        },
    })
    .unwrap_or_default()
}

/// The Graph error code used for a status when a script gives no body.
pub(crate) fn code_for_status(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("BadRequest", "The request is malformed or incorrect."),
        401 => (
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        ),
        403 => (
            "Forbidden",
            "Insufficient privileges to complete the operation.",
        ),
        404 => ("itemNotFound", "The requested resource was not found."),
        405 => (
            "MethodNotAllowed",
            "The HTTP method is not allowed for this resource.",
        ),
        408 => ("RequestTimeout", "The request timed out."),
        409 => ("Conflict", "The request conflicts with the current state."),
        429 => ("TooManyRequests", "Too many requests."),
        500 => ("InternalServerError", "An internal server error occurred."),
        502 => ("BadGateway", "Bad gateway."),
        503 => (
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        ),
        504 => ("GatewayTimeout", "The gateway timed out."),
        _ => ("UnknownError", "An error occurred."),
    }
}

/// Builds the reply for a scripted response (delay and drop are handled by the caller).
pub(crate) fn fault_reply(f: &FaultResponse, client_request_id: &str) -> Reply {
    let headers: Vec<(String, String)> = f
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (content_type, body) = if let Some(v) = &f.json {
        (
            Some(
                f.content_type
                    .clone()
                    .unwrap_or_else(|| "application/json".into()),
            ),
            ReplyBody::Json(v.to_string()),
        )
    } else if let Some(t) = &f.body {
        (
            Some(
                f.content_type
                    .clone()
                    .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
            ),
            ReplyBody::Text(t.clone()),
        )
    } else if let Some(n) = f.body_bytes {
        (
            Some(
                f.content_type
                    .clone()
                    .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
            ),
            ReplyBody::Text("x".repeat(n)),
        )
    } else if f.status >= 400 {
        let (code, message) = code_for_status(f.status);
        (
            Some("application/json".into()),
            ReplyBody::Json(graph_error_body(code, message, client_request_id)),
        )
    } else {
        (f.content_type.clone(), ReplyBody::None)
    };
    Reply {
        status: f.status,
        headers,
        content_type,
        body,
    }
}

/// Validates a scripted response (used by the control API).
pub(crate) fn validate_fault(f: &FaultResponse) -> Result<(), String> {
    if !f.drop && StatusCode::from_u16(f.status).is_err() {
        return Err(format!("invalid status {}", f.status));
    }
    for (name, value) in &f.headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err()
        {
            return Err(format!("invalid header {name}: {value}"));
        }
    }
    if let Some(ct) = &f.content_type {
        if HeaderValue::from_str(ct).is_err() {
            return Err(format!("invalid contentType {ct}"));
        }
    }
    Ok(())
}

/// An Entra ID (AAD) token endpoint error.
pub(crate) fn aad_error(
    status: u16,
    error: &str,
    code: u32,
    description: &str,
    correlation_id: &str,
) -> Reply {
    #[derive(Serialize)]
    struct AadError<'a> {
        error: &'a str,
        error_description: String,
        error_codes: [u32; 1],
        timestamp: &'a str,
        trace_id: &'a str,
        correlation_id: &'a str,
        error_uri: String,
    }
    let trace_id = new_guid();
    let ts = timefmt::aad_timestamp(SystemTime::now());
    Reply::json(
        status,
        &AadError {
            error,
            error_description: format!(
                "AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {ts}"
            ),
            error_codes: [code],
            timestamp: &ts,
            trace_id: &trace_id,
            correlation_id,
            error_uri: format!("https://login.microsoftonline.com/error?code={code}"),
        },
    )
    .header("x-ms-request-id", &trace_id)
    .header("Cache-Control", "no-store, no-cache")
}
