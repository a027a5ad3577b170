//! `POST .../communications/calls/{id}/keepAlive`, and Graph's answer turned into a result.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH};
use reqwest::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::retry::{parse_retry_after, retry_after_header, retry_wait, AttemptRecord, Class, HttpTrace};
use super::{keep_alive_url, KeepAliveOptions};
use crate::error::{CoreError, GraphError};
use crate::request_context::MAX_RETRY_DELAY;
use crate::runtime::http_client_for;
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
    /// Every attempt, for `-Verbose` and `-Debug` (with their text).
    #[serde(serialize_with = "super::serialize_attempt_log")]
    pub attempt_log: Vec<AttemptRecord>,
}

/// Sends one keep-alive for `call_id` in `session`. The whole call — token acquisition, retries
/// and their waits — is bounded by `options.timeout`. 429, 503, 504 and connection failures are
/// retried under Graph's policy; a 401 renews the token once and retries once, as the SDK does.
pub async fn keep_alive(session: &Session, call_id: &str, options: &KeepAliveOptions) -> Result<KeepAliveSuccess, CoreError> {
    let url = keep_alive_url(&session.environment.graph_endpoint, options.api_version, call_id)?;
    keep_alive_from(session, &url, call_id, options, Instant::now(), None).await
}

/// A first attempt that was answered elsewhere (a `$batch` item): its error, how long it took,
/// and the token it was sent with (so a 401 renews that token, not a newer one).
#[derive(Debug)]
pub(crate) struct Answered {
    pub error: CoreError,
    pub elapsed: Duration,
    pub token: Option<Secret>,
}

/// The keep-alive of `keep_alive`, with its clock started at `started` (`options.timeout` bounds
/// it from there) and, when `first` is given, that answer taken as attempt 1: the retry policy
/// decides what follows (a 404 is final and sends nothing; a 429 waits its `Retry-After`, then
/// retries with `Retry-Attempt: 1`; a 401 renews the token and retries once).
pub(crate) async fn keep_alive_from(
    session: &Session,
    url: &reqwest::Url,
    call_id: &str,
    options: &KeepAliveOptions,
    started: Instant,
    first: Option<Answered>,
) -> Result<KeepAliveSuccess, CoreError> {
    // Lets the ABI tests prove that a panic in background work (an operation, a bulk item, the
    // keeper) ends that work with a Panic result instead of a hang.
    #[cfg(feature = "test-hooks")]
    if call_id.starts_with("mgka-test-panic") {
        panic!("forced panic for a test (call {call_id})");
    }
    let mut log = Vec::new();
    let remaining = options.timeout.saturating_sub(started.elapsed());
    let outcome = if remaining.is_zero() && first.is_none() {
        // Nothing may go out once the time is up (the batch before it took it all). An answer
        // already given is still judged: `timeout` polls `attempts` once before its deadline.
        Err(())
    } else {
        tokio::time::timeout(remaining, attempts(session, url, call_id, options, started, first, &mut log)).await.map_err(|_| ())
    };
    match outcome {
        Ok(Ok(mut success)) => {
            success.attempts = log.len() as u32;
            success.attempt_log = log;
            Ok(success)
        }
        Ok(Err(error)) => Err(error.with_attempts(log)),
        Err(_) => {
            // The attempt under way when the client timeout struck is part of the story too.
            let accounted: u64 = log.iter().map(|a| a.elapsed_ms + a.wait_ms.unwrap_or(0)).sum();
            log.push(AttemptRecord {
                attempt: log.len() as u32 + 1,
                status: None,
                error: Some("Timeout".into()),
                elapsed_ms: (started.elapsed().as_millis() as u64).saturating_sub(accounted),
                wait_ms: None,
                retry_after: None,
                http: None,
            });
            Err(CoreError::timeout(Some(call_id), options.timeout).with_attempts(log))
        }
    }
}

async fn attempts(
    session: &Session,
    url: &reqwest::Url,
    call_id: &str,
    options: &KeepAliveOptions,
    started: Instant,
    mut first: Option<Answered>,
    log: &mut Vec<AttemptRecord>,
) -> Result<KeepAliveSuccess, CoreError> {
    let client = http_client_for(&options.proxy)?;
    // Taken when the first request goes out: an answer given elsewhere may need none (a 404).
    let mut token = first.as_mut().and_then(|f| f.token.take());
    let mut renewed = false;
    let mut retries = 0u32;
    let mut waited = Duration::ZERO;
    loop {
        let attempt_started = Instant::now();
        let (result, http, elapsed) = match first.take() {
            Some(answered) => (Err(answered.error), None, answered.elapsed),
            None => {
                let current = match token.take() {
                    Some(current) => current,
                    None => session.token(options.timeout).await?,
                };
                let (result, http) = send(&client, url, call_id, options, &current, retries, started).await;
                token = Some(current);
                (result, http, attempt_started.elapsed())
            }
        };
        let mut record = AttemptRecord {
            attempt: log.len() as u32 + 1,
            status: None,
            error: None,
            elapsed_ms: elapsed.as_millis() as u64,
            wait_ms: None,
            retry_after: None,
            http,
        };
        let error = match result {
            Ok(success) => {
                record.status = Some(success.http_status);
                log.push(record);
                return Ok(success);
            }
            Err(error) => error,
        };
        let class = Class::of_error(&error);
        match &error {
            CoreError::Graph(g) => {
                record.status = Some(g.http_status);
                record.error = Some(g.code.clone());
                record.retry_after = retry_after_header(&error).map(str::to_owned);
            }
            CoreError::Transport { message, .. } => record.error = Some(message.clone()),
            CoreError::Timeout { .. } => record.error = Some("Timeout".into()),
            _ => {}
        }
        let retry_after = record.retry_after.as_deref().and_then(|v| parse_retry_after(v, SystemTime::now()));

        // 401: renew the token once and try again at once.
        if class.renews_token() && !renewed {
            renewed = true;
            let rejected = match token.take() {
                Some(rejected) => rejected,
                None => session.token(options.timeout).await?,
            };
            if let Some(fresh) = session.tokens.renew_after_rejection(&session.environment, options.timeout, &rejected).await {
                log.push(record);
                token = Some(fresh?);
                continue;
            }
            token = Some(rejected);
        }
        if !class.retried() || retries >= options.max_retry {
            log.push(record);
            return Err(error);
        }
        let wait = retry_wait(retry_after, options.retry_delay, retries + 1).min(MAX_RETRY_DELAY);
        let over_time_limit = !options.retries_time_limit.is_zero() && waited + wait > options.retries_time_limit;
        // Waiting past the client timeout would only turn the last answer into a timeout.
        let past_timeout = started.elapsed() + wait >= options.timeout;
        if over_time_limit || past_timeout {
            log.push(record);
            return Err(error);
        }
        record.wait_ms = Some(wait.as_millis() as u64);
        log.push(record);
        tokio::time::sleep(wait).await;
        waited += wait;
        retries += 1;
    }
}

/// One HTTP attempt. Returns its result and, when tracing, the exchange without credentials.
async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    call_id: &str,
    options: &KeepAliveOptions,
    token: &Secret,
    retry: u32,
    started: Instant,
) -> (Result<KeepAliveSuccess, CoreError>, Option<HttpTrace>) {
    let mut headers = options.headers.clone();
    if !headers.contains_key("client-request-id") {
        let id = uuid::Uuid::new_v4().to_string();
        headers.insert("client-request-id", HeaderValue::from_str(&id).expect("a GUID is a valid header value"));
    }
    if retry > 0 {
        headers.insert("retry-attempt", HeaderValue::from(retry));
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    let mut trace = options.trace.then(|| HttpTrace {
        method: "POST".into(),
        uri: url.to_string(),
        // What goes on the wire, as the official -Debug shows it (Authorization aside).
        request_headers: [
            ("host".to_owned(), url[url::Position::BeforeHost..url::Position::AfterPort].to_owned()),
            ("user-agent".to_owned(), crate::runtime::USER_AGENT.to_owned()),
            ("accept".to_owned(), "*/*".to_owned()),
        ]
        .into_iter()
        .chain(pairs(&headers))
        .collect(),
        status: None,
        response_headers: Vec::new(),
        response_body: None,
    });
    match bearer(token) {
        Ok(authorization) => headers.insert(AUTHORIZATION, authorization),
        Err(refused) => return (Err(refused), trace),
    };

    let response = match client.post(url.clone()).headers(headers).timeout(options.timeout).send().await {
        Ok(response) => response,
        Err(e) => return (Err(transport_error(call_id, options.timeout, e)), trace),
    };
    let status = response.status();
    let response_headers = header_map(response.headers());
    let body = match read_bounded(response).await {
        Ok(body) => body,
        Err(e) => return (Err(transport_error(call_id, options.timeout, e)), trace),
    };
    if let Some(t) = trace.as_mut() {
        t.status = Some(status.as_u16());
        t.response_headers = response_headers.iter().flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone()))).collect();
        t.response_body = (!body.is_empty()).then(|| String::from_utf8_lossy(&body[..body.len().min(MAX_TRACE_BODY)]).into_owned());
    }
    let first = |name: &str| response_headers.get(name).and_then(|v| v.first().cloned());
    let result = if status.is_success() {
        Ok(KeepAliveSuccess {
            call_id: call_id.to_owned(),
            uri: url.to_string(),
            http_status: status.as_u16(),
            request_id: first("request-id"),
            client_request_id: first("client-request-id"),
            date: first("date"),
            elapsed_ms: started.elapsed().as_millis() as u64,
            attempts: 1,
            headers: response_headers,
            attempt_log: Vec::new(),
        })
    } else {
        Err(CoreError::Graph(Box::new(graph_error(call_id, status, response_headers, &body))))
    };
    (result, trace)
}

/// How much of a non-Graph error body becomes the error message.
const MAX_MESSAGE_CHARS: usize = 1000;

/// How much of a response body `-Debug` shows.
const MAX_TRACE_BODY: usize = 4096;

/// `Authorization: Bearer {token}`, zeroed when the request is dropped (see [`Secret::header_value`]).
pub(crate) fn bearer(token: &Secret) -> Result<HeaderValue, CoreError> {
    token.header_value("Bearer ", "access token")
}

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
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
        // The whole body stays in `body`; the message shows its start.
        None if text.chars().count() > MAX_MESSAGE_CHARS => {
            format!("{}… (truncated; the whole body is in the error's body)", text.chars().take(MAX_MESSAGE_CHARS).collect::<String>())
        }
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
        attempt_log: Vec::new(),
    }
}

/// Graph's JSON keys vary in case (`innerError`, `innererror`).
fn get_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// .NET's `HttpStatusCode` names, which the official cmdlet prints (`Status: 404 (NotFound)`).
pub fn reason_phrase(status: StatusCode) -> String {
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
            .push(shown_header_value(name.as_str(), &String::from_utf8_lossy(value.as_bytes())));
    }
    map
}

/// A response header's value as errors and `-Debug` show it: a URL (a redirect's `Location`)
/// without its user info.
pub(crate) fn shown_header_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("location") || name.eq_ignore_ascii_case("content-location") {
        crate::redact::url(value)
    } else {
        value.to_owned()
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`]; the rest of a larger body is dropped unread. The body
/// may be a token response: it is kept in a zeroizing buffer that grows by moving to a larger
/// zeroizing buffer, so no copy of it is left behind un-zeroed (hyper's own buffers aside).
pub(crate) async fn read_bounded(mut response: Response) -> Result<Zeroizing<Vec<u8>>, reqwest::Error> {
    let expected = response.content_length().map_or(0, |n| n.min(MAX_RESPONSE_BYTES as u64) as usize);
    let mut body = Zeroizing::new(Vec::with_capacity(expected));
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - body.len();
        let take = chunk.len().min(room);
        if body.capacity() - body.len() < take {
            let mut grown = Zeroizing::new(Vec::with_capacity((body.len() + take).max(body.capacity() * 2).min(MAX_RESPONSE_BYTES)));
            grown.extend_from_slice(&body);
            body = grown;
        }
        body.extend_from_slice(&chunk[..take]);
        if chunk.len() >= room {
            break;
        }
    }
    Ok(body)
}

fn transport_error(call_id: &str, timeout: Duration, error: reqwest::Error) -> CoreError {
    if error.is_timeout() {
        return CoreError::timeout(Some(call_id), timeout);
    }
    // The URL (a redirect target may carry user info) and the cause chain that explains the failure.
    CoreError::transport(Some(call_id), crate::redact::reqwest_error(error))
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
        let huge = err(500, &"x".repeat(100_000));
        assert!(huge.graph_message.chars().count() < 1100 && huge.body.as_deref().unwrap().len() == 100_000);
        assert_eq!(err(403, r#"{"ERROR":{"CODE":"Forbidden","MESSAGE":"no"}}"#).display_message(), "[Forbidden] : no");
    }
}
