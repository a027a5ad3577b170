//! The emulator's endpoints, one file each, and the routing on the raw path that picks one.

pub(crate) mod batch;
pub(crate) mod calls;
pub(crate) mod control;
mod keep_alive;
mod managed_identity;
mod token;

use std::time::Duration;

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use crate::reply::{fault_reply, Ctx, Reply};
use crate::state::{FaultResponse, LoggedBatchItem, State, TokenCheck};
use batch::batch;
use calls::CallsRoute;
use keep_alive::keep_alive;
pub(crate) use keep_alive::do_keep_alive;
use managed_identity::{managed_identity, MiStyle};
use token::{token, TokenRequest};

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

pub(crate) enum Route<'a> {
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

pub(crate) fn is_version(s: &str) -> bool {
    s == "v1.0" || s == "beta"
}

/// `keepAlive`, or the namespaced `microsoft.graph.keepAlive` that Microsoft's cmdlets send (Graph
/// accepts both), in any case.
fn is_keep_alive_action(seg: &str) -> bool {
    seg.eq_ignore_ascii_case("keepAlive") || seg.eq_ignore_ascii_case("microsoft.graph.keepAlive")
}

/// Matches `communications/calls/{id}/keepAlive` (segments after the version).
/// Returns the raw id segment, or the segment at which the path stops matching.
pub(crate) fn match_call_path<'a>(segs: &[&'a str]) -> Result<&'a str, String> {
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

pub(crate) fn route<'a>(segs: &[&'a str]) -> Route<'a> {
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

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// One request as its endpoint sees it.
pub(crate) struct Request<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    /// The decoded path, and the path with its query as sent.
    pub path: &'a str,
    pub raw_path: &'a str,
    pub query: &'a str,
    /// The first path segment (`v1.0`, `beta`, a tenant, ...).
    pub version: &'a str,
    /// The decoded call id of a keep-alive or call route.
    pub call_id: Option<&'a str>,
    pub authority: Option<&'a str>,
    /// `http` or `https`: how the client reached the emulator.
    pub scheme: &'static str,
    /// The request's sequence number in the log.
    pub seq: u64,
    pub ctx: &'a Ctx,
}

/// Answers `req` at its endpoint; `None` drops the connection. A `$batch` fills `items_log`.
pub(crate) async fn dispatch(
    state: &State,
    route: Route<'_>,
    req: &Request<'_>,
    items_log: &mut Option<Vec<LoggedBatchItem>>,
) -> Option<Reply> {
    match route {
        Route::KeepAlive { seg } => {
            keep_alive(
                state,
                req.method,
                req.headers,
                req.body,
                seg,
                req.call_id,
                req.raw_path,
                req.ctx,
            )
            .await
        }
        Route::Calls(r) => {
            let request = calls::CallRequest {
                method: req.method,
                headers: req.headers,
                body: req.body,
                raw_path: req.raw_path,
                version_url: format!(
                    "{}://{}/{}",
                    req.scheme,
                    req.authority.unwrap_or("localhost"),
                    req.version
                ),
            };
            calls::handle(state, r, req.call_id, &request, req.ctx).await
        }
        Route::Batch => {
            batch(
                state,
                req.method,
                req.headers,
                req.body,
                req.raw_path,
                req.ctx,
                items_log,
            )
            .await
        }
        Route::Token { tenant } => {
            let mut assertion_log = None;
            let expected_aud = format!(
                "{}://{}{}",
                req.scheme,
                req.authority.unwrap_or("localhost"),
                req.path
            );
            let reply = token(
                state,
                &TokenRequest {
                    method: req.method,
                    headers: req.headers,
                    body: req.body,
                    tenant_seg: tenant,
                    raw_path: req.raw_path,
                    expected_aud: &expected_aud,
                },
                req.ctx,
                &mut assertion_log,
            )
            .await;
            if let Some(a) = assertion_log {
                state.set_log_assertion(req.seq, a);
            }
            reply
        }
        Route::Imds | Route::AppServiceMsi => {
            let style = if matches!(route, Route::Imds) {
                MiStyle::Imds
            } else {
                MiStyle::AppService
            };
            managed_identity(state, style, req.method, req.headers, req.query, req.raw_path, req.ctx).await
        }
        Route::NotFound { segment } => Some(Reply::graph_error(
            404,
            "UnknownError",
            &format!("Resource not found for the segment '{segment}'."),
            &req.ctx.client_request_id,
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared by the endpoints
// ---------------------------------------------------------------------------------------------

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

pub(crate) fn method_not_allowed(method: &Method, client_request_id: &str) -> Reply {
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
