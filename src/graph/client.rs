//! `POST .../communications/calls/{id}/keepAlive`, and Graph's answer turned into a result.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH};
use reqwest::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::{keep_alive_url, KeepAliveOptions};
use crate::error::{CoreError, GraphError};
use crate::runtime::http_client;
use crate::auth::Secret;
use crate::session::Session;

/// Bodies are read up to this many bytes; a hostile or broken server cannot exhaust memory.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeepAliveSuccess {
    pub call_id: String,
    pub uri: String,
    pub http_status: u16,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub date: Option<String>,
    pub elapsed_ms: u64,
    pub attempts: u32,
    pub headers: BTreeMap<String, Vec<String>>,
}

/// Sends one keep-alive for `call_id` in `session`, bounded by `options.timeout` as a whole
/// (token acquisition included). A 401 renews the token once and retries once, as the SDK does.
pub async fn keep_alive(session: &Session, call_id: &str, options: &KeepAliveOptions) -> Result<KeepAliveSuccess, CoreError> {
    let url = keep_alive_url(&session.environment.graph_endpoint, options.api_version, call_id)?;
    let started = Instant::now();
    let timeout = options.timeout;
    let attempt = async {
        let token = session.token(timeout).await?;
        match send(&url, call_id, options, &token, 1, started).await {
            Err(CoreError::Graph(rejected)) if rejected.http_status == 401 => {
                match session.tokens.renew_after_rejection(&session.environment, timeout, &token).await {
                    None => Err(CoreError::Graph(rejected)),
                    Some(renewed) => send(&url, call_id, options, &renewed?, 2, started).await,
                }
            }
            other => other,
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(timeout_error(call_id, timeout)),
    }
}

async fn send(
    url: &reqwest::Url,
    call_id: &str,
    options: &KeepAliveOptions,
    token: &Secret,
    attempt: u32,
    started: Instant,
) -> Result<KeepAliveSuccess, CoreError> {
    let mut headers = options.headers.clone();
    if !headers.contains_key("client-request-id") {
        let id = uuid::Uuid::new_v4().to_string();
        headers.insert("client-request-id", HeaderValue::from_str(&id).expect("a GUID is a valid header value"));
    }
    let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| CoreError::invalid("AccessToken", "The access token contains characters HTTP does not allow."))?;
    authorization.set_sensitive(true);
    headers.insert(AUTHORIZATION, authorization);
    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));

    let response = http_client()?
        .post(url.clone())
        .headers(headers)
        .timeout(options.timeout)
        .send()
        .await
        .map_err(|e| transport_error(call_id, options.timeout, e))?;

    let status = response.status();
    let response_headers = header_map(response.headers());
    let body = read_bounded(response).await.map_err(|e| transport_error(call_id, options.timeout, e))?;
    let first = |name: &str| response_headers.get(name).and_then(|v| v.first().cloned());

    if status.is_success() {
        return Ok(KeepAliveSuccess {
            call_id: call_id.to_owned(),
            uri: url.to_string(),
            http_status: status.as_u16(),
            request_id: first("request-id"),
            client_request_id: first("client-request-id"),
            date: first("date"),
            elapsed_ms: started.elapsed().as_millis() as u64,
            attempts: attempt,
            headers: response_headers,
        });
    }
    let mut error = graph_error(call_id, status, response_headers, &body);
    error.attempts = attempt;
    Err(CoreError::Graph(Box::new(error)))
}

/// Builds the structured error of a non-2xx answer; tolerant of HTML, empty and odd JSON bodies.
pub(crate) fn graph_error(
    call_id: &str,
    status: StatusCode,
    headers: BTreeMap<String, Vec<String>>,
    body: &[u8],
) -> GraphError {
    let text = String::from_utf8_lossy(body).into_owned();
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let error = json.as_ref().and_then(|v| get_ci(v, "error")).filter(|e| e.is_object());
    let field = |v: Option<&Value>, key: &str| v.and_then(|v| get_ci(v, key)).and_then(Value::as_str).map(str::to_owned);
    let inner = error.and_then(|e| get_ci(e, "innerError"));
    let header = |name: &str| headers.get(name).and_then(|v| v.first().cloned());

    let code = field(error, "code").filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "UnknownError".into());
    let graph_message = match error {
        Some(_) => field(error, "message").unwrap_or_default(),
        None if text.trim().is_empty() => format!("The server answered {} with an empty body.", status.as_u16()),
        None => text.clone(),
    };
    GraphError {
        call_id: Some(call_id.to_owned()),
        http_status: status.as_u16(),
        reason: reason_phrase(status),
        code,
        graph_message,
        request_id: field(inner, "request-id").or_else(|| header("request-id")),
        client_request_id: field(inner, "client-request-id").or_else(|| header("client-request-id")),
        date: field(inner, "date").or_else(|| header("date")),
        body: if error.is_none() && !text.is_empty() { Some(text) } else { None },
        headers,
        attempts: 1,
    }
}

/// Graph's JSON keys vary in case (`innerError`, `innererror`).
fn get_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// .NET's `HttpStatusCode` names, which the official cmdlet prints (`Status: 404 (NotFound)`).
fn reason_phrase(status: StatusCode) -> String {
    match status.as_u16() {
        429 => "TooManyRequests".into(),
        413 => "RequestEntityTooLarge".into(),
        414 => "RequestUriTooLong".into(),
        _ => status.canonical_reason().unwrap_or("Unknown").replace([' ', '-'], ""),
    }
}

pub(crate) fn header_map(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    map
}

/// Reads at most [`MAX_RESPONSE_BYTES`]; the rest of a larger body is dropped unread.
pub(crate) async fn read_bounded(mut response: Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn timeout_error(call_id: &str, timeout: Duration) -> CoreError {
    CoreError::Timeout { call_id: Some(call_id.to_owned()), after_ms: timeout.as_millis() as u64 }
}

fn transport_error(call_id: &str, timeout: Duration, error: reqwest::Error) -> CoreError {
    if error.is_timeout() {
        return timeout_error(call_id, timeout);
    }
    // reqwest's Display names the URL (no secret in it) and the cause chain explains the failure.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    CoreError::Transport { call_id: Some(call_id.to_owned()), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> GraphError {
        graph_error("c1", StatusCode::from_u16(status).unwrap(), BTreeMap::new(), body.as_bytes())
    }

    #[test]
    fn graph_error_json_is_parsed() {
        let e = err(
            404,
            r#"{"error":{"code":"itemNotFound","message":"gone","innerError":{"date":"2026-01-01T00:00:00","request-id":"r1","client-request-id":"c9"}}}"#,
        );
        assert_eq!(e.display_message(), "[itemNotFound] : gone");
        assert_eq!((e.reason.as_str(), e.request_id.as_deref(), e.date.as_deref()), ("NotFound", Some("r1"), Some("2026-01-01T00:00:00")));
        assert_eq!(e.client_request_id.as_deref(), Some("c9"));
        assert!(e.body.is_none());
    }

    #[test]
    fn odd_bodies_become_unknown_error_with_the_raw_text() {
        let e = err(503, "<html><body>Service Unavailable</body></html>");
        assert_eq!((e.code.as_str(), e.reason.as_str()), ("UnknownError", "ServiceUnavailable"));
        assert!(e.graph_message.contains("<html>"));
        assert_eq!(err(500, "").graph_message, "The server answered 500 with an empty body.");
        assert_eq!(err(400, r#"{"message":"no error key"}"#).code, "UnknownError");
        assert_eq!(err(429, r#"{"error":{"code":"","message":"slow down"}}"#).code, "UnknownError");
        assert_eq!(err(429, "x").reason, "TooManyRequests");
        assert_eq!(err(403, r#"{"ERROR":{"CODE":"Forbidden","MESSAGE":"no"}}"#).display_message(), "[Forbidden] : no");
    }
}
