//! The HTTP server: accept loop, routing on the raw path, and the Graph / token handlers.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::assertion::{self, LoggedAssertion};
use crate::calls::{self, CallsRoute};
use crate::control;
use crate::jwt::{self, ClientAuth, Holder};
use crate::reply::{aad_error, fault_reply, Ctx, Reply, ReplyBody};
use crate::state::{
    new_guid, FaultResponse, FaultTarget, KeepAliveOutcome, LoggedBatchItem, LoggedRequest, State,
    TokenCheck,
};
use crate::timefmt;

/// Largest request body read (bigger → 413).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Maximum number of requests in one `$batch`.
pub const MAX_BATCH: usize = 20;

/// Error returned by the service to make hyper close the connection without answering.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault script")
    }
}
impl std::error::Error for Dropped {}

pub(crate) type HttpResponse = Response<Full<Bytes>>;

// ---------------------------------------------------------------------------------------------
// Accept loop
// ---------------------------------------------------------------------------------------------

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until shutdown; with `tls`, each one is served over TLS.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (state, shutdown) = (state.clone(), shutdown.clone());
                    match tls.clone() {
                        None => {
                            tokio::spawn(serve_connection(stream, state, shutdown, "http"));
                        }
                        Some(acceptor) => {
                            tokio::spawn(async move {
                                let handshake = acceptor.accept(stream);
                                if let Ok(Ok(stream)) =
                                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await
                                {
                                    serve_connection(stream, state, shutdown, "https").await;
                                }
                            });
                        }
                    }
                }
                Err(_) => {
                    // e.g. too many open files: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn serve_connection<S>(
    stream: S,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
    scheme: &'static str,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let svc = service_fn(move |req| handle(state.clone(), req, scheme));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

enum Route<'a> {
    KeepAlive {
        seg: &'a str,
    },
    /// Create, read or end a call (`calls.rs`).
    Calls(CallsRoute<'a>),
    Batch,
    Token {
        tenant: &'a str,
    },
    /// `GET /metadata/identity/oauth2/token` (VM instance metadata service).
    Imds,
    /// `GET /msi/token` (App Service / Functions / Container Apps `IDENTITY_ENDPOINT`).
    AppServiceMsi,
    NotFound {
        segment: String,
    },
}

fn is_version(s: &str) -> bool {
    s == "v1.0" || s == "beta"
}

/// `keepAlive`, or the namespaced `microsoft.graph.keepAlive` that Microsoft's cmdlets send (Graph
/// accepts both), in any case.
fn is_keep_alive_action(seg: &str) -> bool {
    seg.eq_ignore_ascii_case("keepAlive") || seg.eq_ignore_ascii_case("microsoft.graph.keepAlive")
}

/// Matches `communications/calls/{id}/keepAlive` (segments after the version).
/// Returns the raw id segment, or the segment at which the path stops matching.
fn match_call_path<'a>(segs: &[&'a str]) -> Result<&'a str, String> {
    let expected = ["communications", "calls"];
    for (i, e) in expected.iter().enumerate() {
        match segs.get(i) {
            Some(s) if s.eq_ignore_ascii_case(e) => {}
            Some(s) => return Err((*s).to_string()),
            None => return Err(segs.last().copied().unwrap_or("").to_string()),
        }
    }
    match segs.len() {
        4 if is_keep_alive_action(segs[3]) && !segs[2].is_empty() => Ok(segs[2]),
        4 if segs[2].is_empty() => Err(String::new()),
        4 => Err(segs[3].to_string()),
        n if n > 4 => Err(segs[4].to_string()),
        _ => Err(segs.last().copied().unwrap_or("").to_string()),
    }
}

fn route<'a>(segs: &[&'a str]) -> Route<'a> {
    if segs.len() == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token" {
        return Route::Token { tenant: segs[0] };
    }
    if segs == ["metadata", "identity", "oauth2", "token"] {
        return Route::Imds;
    }
    if segs == ["msi", "token"] {
        return Route::AppServiceMsi;
    }
    let first = segs.first().copied().unwrap_or("");
    if !is_version(first) {
        return Route::NotFound {
            segment: first.to_string(),
        };
    }
    if segs.len() == 2 && (segs[1] == "$batch" || segs[1].eq_ignore_ascii_case("%24batch")) {
        return Route::Batch;
    }
    if let Some(r) = calls::route(&segs[1..]) {
        return Route::Calls(r);
    }
    match match_call_path(&segs[1..]) {
        Ok(seg) => Route::KeepAlive { seg },
        Err(segment) => Route::NotFound { segment },
    }
}

pub(crate) fn decode_segment(seg: &str) -> Option<String> {
    percent_decode_str(seg)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn log_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

/// `scheme` is `http` or `https`: how the client reached the emulator.
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    scheme: &'static str,
) -> Result<HttpResponse, Dropped> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    if segs[0] == "_emulator" {
        return Ok(control::handle(&state, req, &segs[1..]).await);
    }
    let _in_flight = state.enter_request();
    let arrival = SystemTime::now();
    let raw_path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| header_str(req.headers(), "host").map(str::to_string));
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(true)
            } else {
                Err(false) // client went away
            }
        }
    };

    let route = route(&segs);
    let (kind, call_id) = match &route {
        Route::KeepAlive { seg } => ("keepAlive", decode_segment(seg)),
        Route::Calls(r) => ("call", calls::logged_call_id(r)),
        Route::Batch => ("batch", None),
        Route::Token { .. } => ("token", None),
        Route::Imds | Route::AppServiceMsi => ("managedIdentity", None),
        Route::NotFound { .. } => ("other", None),
    };
    let api_version = Some(segs[0]).filter(|s| is_version(s)).map(str::to_string);
    let seq = state.log_request(LoggedRequest {
        seq: 0,
        time: timefmt::rfc3339_millis(arrival),
        method: method.to_string(),
        raw_path: raw_path.clone(),
        call_id: call_id.clone(),
        api_version,
        headers: log_headers(&headers),
        body_length: body.as_ref().map(|b| b.len()).unwrap_or(0),
        status: None,
        kind: kind.to_string(),
        items: None,
        assertion: None,
    });

    let ctx = Ctx::new(header_str(&headers, "client-request-id"));
    let body = match body {
        Ok(b) => b,
        Err(true) => {
            let reply = Reply::graph_error(
                413,
                "RequestEntityTooLarge",
                "The request body is too large.",
                &ctx.client_request_id,
            );
            state.complete_log(seq, Some(413), None);
            return Ok(reply.into_response(&ctx));
        }
        Err(false) => {
            state.complete_log(seq, None, None);
            return Err(Dropped);
        }
    };

    let mut items_log = None;
    let reply = match route {
        Route::KeepAlive { seg } => {
            keep_alive(
                &state,
                &method,
                &headers,
                &body,
                seg,
                call_id.as_deref(),
                &raw_path,
                &ctx,
            )
            .await
        }
        Route::Calls(r) => {
            let request = calls::CallRequest {
                method: &method,
                headers: &headers,
                body: &body,
                raw_path: &raw_path,
                version_url: format!(
                    "{scheme}://{}/{}",
                    authority.as_deref().unwrap_or("localhost"),
                    segs[0]
                ),
            };
            calls::handle(&state, r, call_id.as_deref(), &request, &ctx).await
        }
        Route::Batch => {
            batch(
                &state,
                &method,
                &headers,
                &body,
                &raw_path,
                &ctx,
                &mut items_log,
            )
            .await
        }
        Route::Token { tenant } => {
            let mut assertion_log = None;
            let expected_aud = format!(
                "{scheme}://{}{path}",
                authority.as_deref().unwrap_or("localhost")
            );
            let reply = token(
                &state,
                &TokenRequest {
                    method: &method,
                    headers: &headers,
                    body: &body,
                    tenant_seg: tenant,
                    raw_path: &raw_path,
                    expected_aud: &expected_aud,
                },
                &ctx,
                &mut assertion_log,
            )
            .await;
            if let Some(a) = assertion_log {
                state.set_log_assertion(seq, a);
            }
            reply
        }
        Route::Imds | Route::AppServiceMsi => {
            let style = if matches!(route, Route::Imds) {
                MiStyle::Imds
            } else {
                MiStyle::AppService
            };
            managed_identity(&state, style, &method, &headers, &query, &raw_path, &ctx).await
        }
        Route::NotFound { segment } => Some(Reply::graph_error(
            404,
            "UnknownError",
            &format!("Resource not found for the segment '{segment}'."),
            &ctx.client_request_id,
        )),
    };
    state.complete_log(seq, reply.as_ref().map(|r| r.status), items_log);
    match reply {
        Some(r) => Ok(r.into_response(&ctx)),
        None => Err(Dropped),
    }
}

/// Applies a scripted response: waits, then either answers or asks to drop (None).
pub(crate) async fn play_fault(f: FaultResponse, client_request_id: &str) -> Option<Reply> {
    if f.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
    }
    if f.drop {
        return None;
    }
    Some(fault_reply(&f, client_request_id))
}

fn method_not_allowed(method: &Method, client_request_id: &str) -> Reply {
    Reply::graph_error(
        405,
        "MethodNotAllowed",
        &format!("The HTTP method '{method}' is not allowed for this resource."),
        client_request_id,
    )
    .header("Allow", "POST")
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks `Authorization: Bearer <token>`.
pub(crate) fn check_auth(
    state: &State,
    headers: &HeaderMap,
    client_request_id: &str,
) -> Option<Reply> {
    let fail = |message: &str| {
        Some(
            Reply::graph_error(401, "InvalidAuthenticationToken", message, client_request_id).header(
                "WWW-Authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            ),
        )
    };
    let value = match headers.get(hyper::header::AUTHORIZATION) {
        None => return fail("Access token is empty."),
        Some(v) => match v.to_str() {
            Ok(s) => s.trim(),
            Err(_) => return fail("Access token validation failure."),
        },
    };
    if value.is_empty() {
        return fail("Access token is empty.");
    }
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return fail("Access token validation failure.");
    }
    let token = token.trim();
    if token.is_empty() {
        return fail("Access token is empty.");
    }
    match state.check_token(token) {
        TokenCheck::Valid => None,
        TokenCheck::Unknown => fail("Access token validation failure."),
        TokenCheck::Expired => fail("Lifetime validation failed, the token is expired."),
    }
}

/// The keep-alive itself, once the path matched and auth passed (shared by single and batch).
fn do_keep_alive(state: &State, id: &str, client_request_id: &str) -> Reply {
    match state.keep_alive(id) {
        KeepAliveOutcome::Ok => Reply::empty(200),
        KeepAliveOutcome::NotFound => Reply::graph_error(
            404,
            "itemNotFound",
            &format!("Call '{id}' was not found or has ended."),
            client_request_id,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
async fn keep_alive(
    state: &State,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    seg: &str,
    call_id: Option<&str>,
    raw_path: &str,
    ctx: &Ctx,
) -> Option<Reply> {
    let crid = ctx.client_request_id.as_str();
    let Some(id) = call_id else {
        return Some(Reply::graph_error(
            400,
            "BadRequest",
            &format!("The call id segment '{seg}' is not valid percent-encoded UTF-8."),
            crid,
        ));
    };
    if method != Method::POST {
        return Some(method_not_allowed(method, crid));
    }
    if let Some(f) = state.take_fault(&FaultTarget {
        call_id: Some(id),
        path: raw_path,
        is_keep_alive: true,
    }) {
        return play_fault(f, crid).await;
    }
    if let Some(r) = check_auth(state, headers, crid) {
        return Some(r);
    }
    if !body.is_empty() {
        return Some(Reply::graph_error(
            400,
            "BadRequest",
            "keepAlive does not take a request body; send an empty body with Content-Length: 0.",
            crid,
        ));
    }
    Some(do_keep_alive(state, id, crid))
}

async fn batch(
    state: &State,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    raw_path: &str,
    ctx: &Ctx,
    items_log: &mut Option<Vec<LoggedBatchItem>>,
) -> Option<Reply> {
    let crid = ctx.client_request_id.as_str();
    if method != Method::POST {
        return Some(method_not_allowed(method, crid));
    }
    if let Some(f) = state.take_fault(&FaultTarget {
        call_id: None,
        path: raw_path,
        is_keep_alive: false,
    }) {
        return play_fault(f, crid).await;
    }
    if let Some(r) = check_auth(state, headers, crid) {
        return Some(r);
    }
    let bad = |msg: &str| Some(Reply::graph_error(400, "BadRequest", msg, crid));
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return bad("Unable to deserialize the batch request body as JSON.");
    };
    let Some(requests) = doc.get("requests").and_then(Value::as_array) else {
        return bad("The batch request body must contain a 'requests' array.");
    };
    if requests.is_empty() {
        return bad("The batch request must contain at least one request.");
    }
    if requests.len() > MAX_BATCH {
        return bad(&format!(
            "The number of batch requests ({}) exceeds the maximum of {MAX_BATCH}.",
            requests.len()
        ));
    }
    let mut seen = HashSet::new();
    for r in requests {
        let Some(id) = r
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return bad("Every batch request must have a non-empty string 'id'.");
        };
        if !seen.insert(id) {
            return bad(&format!(
                "Batch request ids must be unique; '{id}' is duplicated."
            ));
        }
        if r.get("url").and_then(Value::as_str).is_none() {
            return bad(&format!("Batch request '{id}' has no 'url'."));
        }
        if r.get("method").and_then(Value::as_str).is_none() {
            return bad(&format!("Batch request '{id}' has no 'method'."));
        }
    }

    let mut responses = Vec::with_capacity(requests.len());
    let mut logged = Vec::with_capacity(requests.len());
    for r in requests {
        let id = r["id"].as_str().unwrap_or_default();
        let url = r["url"].as_str().unwrap_or_default();
        let item_method = r["method"].as_str().unwrap_or_default();
        let item_crid = r
            .get("headers")
            .and_then(|h| h.as_object())
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("client-request-id"))
                    .and_then(|(_, v)| v.as_str())
            })
            .unwrap_or(crid)
            .to_string();
        let (reply, call_id) = batch_item(state, item_method, url, r.get("body"), &item_crid).await;
        let Some(reply) = reply else {
            logged.push(LoggedBatchItem {
                id: id.into(),
                method: item_method.into(),
                url: url.into(),
                call_id,
                status: None,
            });
            *items_log = Some(logged);
            return None; // drop the whole connection
        };
        logged.push(LoggedBatchItem {
            id: id.into(),
            method: item_method.into(),
            url: url.into(),
            call_id,
            status: Some(reply.status),
        });
        responses.push(reply.into_batch_item(id));
    }
    *items_log = Some(logged);
    let mut reply = Reply::json(200, &());
    reply.body = ReplyBody::Json(format!(r#"{{"responses":[{}]}}"#, responses.join(",")));
    Some(reply)
}

async fn batch_item(
    state: &State,
    method: &str,
    url: &str,
    body: Option<&Value>,
    crid: &str,
) -> (Option<Reply>, Option<String>) {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let seg = match match_call_path(&segs) {
        Ok(seg) => seg,
        Err(segment) => {
            return (
                Some(Reply::graph_error(
                    404,
                    "UnknownError",
                    &format!("Resource not found for the segment '{segment}'."),
                    crid,
                )),
                None,
            )
        }
    };
    let Some(id) = decode_segment(seg) else {
        return (
            Some(Reply::graph_error(
                400,
                "BadRequest",
                &format!("The call id segment '{seg}' is not valid percent-encoded UTF-8."),
                crid,
            )),
            None,
        );
    };
    if !method.eq_ignore_ascii_case("POST") {
        let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        return (Some(method_not_allowed(&m, crid)), Some(id));
    }
    if state.refuses_batched_keep_alive() {
        // Refused where a Graph without keepAlive in JSON batches would refuse it: before the
        // call is looked at (so fault scripts are left for the item's own request).
        return (
            Some(Reply::graph_error(
                400,
                "BadRequest",
                "Unsupported request in a JSON batch: keepAlive must be sent as its own request.",
                crid,
            )),
            Some(id),
        );
    }
    if let Some(f) = state.take_fault(&FaultTarget {
        call_id: Some(&id),
        path: url,
        is_keep_alive: true,
    }) {
        return (play_fault(f, crid).await, Some(id));
    }
    if body.is_some_and(|b| !b.is_null()) {
        return (
            Some(Reply::graph_error(
                400,
                "BadRequest",
                "keepAlive does not take a request body.",
                crid,
            )),
            Some(id),
        );
    }
    let reply = do_keep_alive(state, &id, crid);
    (Some(reply), Some(id))
}

struct TokenRequest<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    tenant_seg: &'a str,
    raw_path: &'a str,
    /// `http://{Host}{path}`: the exact token URL the request came to (the assertion's `aud`).
    expected_aud: &'a str,
}

/// Whole seconds of a lifetime, rounded down (a 2.5 s lifetime is announced as 2).
fn whole_secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Issues and registers a fresh JWT-shaped access token with the configured lifetime.
fn issue_token(state: &State, holder: &Holder<'_>) -> (String, Duration) {
    let lifetime = state.token_lifetime();
    let access_token = jwt::mint(holder, lifetime);
    state.register_token(&access_token, lifetime);
    (access_token, lifetime)
}

async fn token(
    state: &State,
    req: &TokenRequest<'_>,
    ctx: &Ctx,
    assertion_log: &mut Option<LoggedAssertion>,
) -> Option<Reply> {
    let correlation = header_str(req.headers, "client-request-id")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(new_guid);
    if let Some(f) = state.take_fault(&FaultTarget {
        call_id: None,
        path: req.raw_path,
        is_keep_alive: false,
    }) {
        return play_fault(f, &ctx.client_request_id).await;
    }
    let err = |status: u16, error: &str, code: u32, desc: &str| {
        Some(aad_error(status, error, code, desc, &correlation))
    };
    if req.method != Method::POST {
        return err(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    let tenant = decode_segment(req.tenant_seg).unwrap_or_default();
    if !state.tenant_known(&tenant) {
        return err(
            400,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(req.body).into_owned().collect();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match get("grant_type") {
        None => {
            return err(
                400,
                "unsupported_grant_type",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        }
        Some("client_credentials") => {}
        Some(_) => {
            return err(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            )
        }
    }
    let Some(client_id) = get("client_id") else {
        return err(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some((app, certs)) = state.find_app(&tenant, client_id) else {
        return err(
            400,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
        );
    };
    let audience = match get("scope") {
        None => {
            return err(400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
        }
        Some(scope) if !scope.ends_with("/.default") => {
            return err(
                400,
                "invalid_scope",
                70011,
                &format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
            )
        }
        Some(scope) => scope.trim_end_matches("/.default"),
    };
    let assertion = get("client_assertion");
    let assertion_type = get("client_assertion_type");
    if assertion.is_some() || assertion_type.is_some() {
        if get("client_secret").is_some() {
            return err(
                400,
                "invalid_request",
                7000216,
                "Only one of 'client_assertion' and 'client_secret' may be sent for the 'client_credentials' grant type.",
            );
        }
        let Some(assertion) = assertion else {
            return err(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion'.",
            );
        };
        if assertion_type != Some(assertion::JWT_BEARER) {
            return err(
                400,
                "invalid_request",
                50027,
                &format!(
                    "JWT token is invalid or malformed. 'client_assertion_type' must be '{}'.",
                    assertion::JWT_BEARER
                ),
            );
        }
        let accepted = match assertion::verify(
            assertion,
            client_id,
            req.expected_aud,
            &certs,
            assertion_log,
        ) {
            Ok(a) => a,
            Err(f) => return err(f.status, f.error, f.code, &f.description),
        };
        if !state.use_jti(client_id, &accepted.jti, accepted.exp) {
            let f = assertion::replayed(&accepted.jti);
            return err(f.status, f.error, f.code, &f.description);
        }
    } else {
        match get("client_secret") {
            None => {
                return err(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
            }
            Some(secret) if app.client_secret.is_empty() || secret != app.client_secret => {
                return err(
                    401,
                    "invalid_client",
                    7000215,
                    &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
                )
            }
            Some(_) if app.secret_expired => {
                return err(
                    401,
                    "invalid_client",
                    7000222,
                    &format!("The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app.", app.client_id),
                )
            }
            Some(_) => {}
        }
    }
    let holder = Holder {
        tenant: &tenant,
        client_id,
        audience,
        auth: if assertion.is_some() {
            ClientAuth::Certificate
        } else {
            ClientAuth::Secret
        },
    };
    let (access_token, lifetime) = issue_token(state, &holder);
    let secs = whole_secs(lifetime);
    #[derive(serde::Serialize)]
    struct TokenResponse<'a> {
        token_type: &'a str,
        expires_in: u64,
        ext_expires_in: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_in: Option<u64>,
        access_token: &'a str,
    }
    Some(
        Reply::json(
            200,
            &TokenResponse {
                token_type: "Bearer",
                expires_in: secs,
                ext_expires_in: secs,
                refresh_in: state.token_refresh_in().map(whole_secs),
                access_token: &access_token,
            },
        )
        .header("Cache-Control", "no-store, no-cache")
        .header("x-ms-request-id", &new_guid()),
    )
}

// ---------------------------------------------------------------------------------------------
// Managed identity
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum MiStyle {
    /// VM instance metadata service: `Metadata: true`.
    Imds,
    /// App Service: `X-IDENTITY-HEADER: <IDENTITY_HEADER>`.
    AppService,
}

fn mi_error(status: u16, description: &str) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({"error": "invalid_request", "error_description": description}),
    )
}

async fn managed_identity(
    state: &State,
    style: MiStyle,
    method: &Method,
    headers: &HeaderMap,
    query: &str,
    raw_path: &str,
    ctx: &Ctx,
) -> Option<Reply> {
    if method != Method::GET {
        return Some(
            mi_error(405, "The request method is not allowed; use GET.").header("Allow", "GET"),
        );
    }
    if let Some(f) = state.take_fault(&FaultTarget {
        call_id: None,
        path: raw_path,
        is_keep_alive: false,
    }) {
        return play_fault(f, &ctx.client_request_id).await;
    }
    match style {
        MiStyle::Imds => {
            if !header_str(headers, "metadata")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            {
                return Some(mi_error(400, "Required metadata header not specified"));
            }
        }
        MiStyle::AppService => {
            let expected = state.identity_header();
            if header_str(headers, "x-identity-header") != Some(expected.as_str()) {
                return Some(mi_error(
                    401,
                    "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
                ));
            }
        }
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if get("api-version").is_none() {
        return Some(mi_error(
            400,
            "Required query variable 'api-version' is missing",
        ));
    }
    let Some(resource) = get("resource") else {
        return Some(mi_error(
            400,
            "Required query variable 'resource' is missing",
        ));
    };
    let Some(client_id) = state.find_identity(get("client_id")) else {
        return Some(mi_error(400, "Identity not found"));
    };
    let holder = Holder {
        tenant: "",
        client_id: &client_id,
        audience: resource,
        auth: ClientAuth::ManagedIdentity,
    };
    let (access_token, lifetime) = issue_token(state, &holder);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let expires_on = (now + lifetime).as_secs().to_string();
    Some(match style {
        MiStyle::Imds => {
            #[derive(serde::Serialize)]
            struct ImdsToken<'a> {
                access_token: &'a str,
                refresh_token: &'a str,
                expires_in: String,
                expires_on: String,
                not_before: String,
                resource: &'a str,
                token_type: &'a str,
                client_id: &'a str,
            }
            Reply::json(
                200,
                &ImdsToken {
                    access_token: &access_token,
                    refresh_token: "",
                    expires_in: whole_secs(lifetime).to_string(),
                    expires_on,
                    not_before: now.as_secs().to_string(),
                    resource,
                    token_type: "Bearer",
                    client_id: &client_id,
                },
            )
        }
        MiStyle::AppService => {
            #[derive(serde::Serialize)]
            struct AppServiceToken<'a> {
                access_token: &'a str,
                expires_on: String,
                resource: &'a str,
                token_type: &'a str,
                client_id: &'a str,
            }
            Reply::json(
                200,
                &AppServiceToken {
                    access_token: &access_token,
                    expires_on,
                    resource,
                    token_type: "Bearer",
                    client_id: &client_id,
                },
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<&str> {
        p.strip_prefix('/').unwrap().split('/').collect()
    }

    #[test]
    fn routes() {
        assert!(matches!(
            route(&segs("/v1.0/communications/calls/a%2Fb/keepAlive")),
            Route::KeepAlive { seg: "a%2Fb" }
        ));
        assert!(matches!(
            route(&segs("/beta/communications/calls/x/keepalive")),
            Route::KeepAlive { seg: "x" }
        ));
        // Microsoft's SDK spells the action with its namespace.
        assert!(matches!(
            route(&segs("/v1.0/communications/calls/y/microsoft.graph.keepAlive")),
            Route::KeepAlive { seg: "y" }
        ));
        assert!(matches!(route(&segs("/v1.0/$batch")), Route::Batch));
        assert!(matches!(route(&segs("/v1.0/%24batch")), Route::Batch));
        assert!(matches!(
            route(&segs("/t/oauth2/v2.0/token")),
            Route::Token { tenant: "t" }
        ));
        assert!(matches!(
            route(&segs("/metadata/identity/oauth2/token")),
            Route::Imds
        ));
        assert!(matches!(route(&segs("/msi/token")), Route::AppServiceMsi));
        assert!(matches!(
            route(&segs("/v1.0/communications/calls/a/b/keepAlive")),
            Route::NotFound { .. }
        ));
        assert!(matches!(
            route(&segs("/v1.0/communications/calls//keepAlive")),
            Route::NotFound { .. }
        ));
        assert!(matches!(
            route(&segs("/v2.0/communications/calls/a/keepAlive")),
            Route::NotFound { .. }
        ));
        assert!(matches!(
            route(&segs("/v1.0/communications/calls/a/keepAlive/")),
            Route::NotFound { .. }
        ));
    }
}
