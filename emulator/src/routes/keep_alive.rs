//! `POST /{v1.0|beta}/communications/calls/{id}/keepAlive`.

use bytes::Bytes;
use hyper::{HeaderMap, Method};

use super::{check_auth, method_not_allowed, play_fault};
use crate::reply::{Ctx, Reply};
use crate::state::{FaultTarget, KeepAliveOutcome, State};

/// The keep-alive itself, once the path matched and auth passed (shared by single and batch).
pub(crate) fn do_keep_alive(state: &State, id: &str, client_request_id: &str) -> Reply {
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
pub(super) async fn keep_alive(
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
