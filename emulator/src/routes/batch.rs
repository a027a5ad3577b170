//! `POST /{v1.0|beta}/$batch`: keep-alives in a JSON batch.

use std::collections::HashSet;

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::Value;

use super::{check_auth, decode_segment, do_keep_alive, match_call_path, method_not_allowed, play_fault};
use crate::reply::{Ctx, Reply, ReplyBody};
use crate::state::{FaultTarget, LoggedBatchItem, State};

/// Maximum number of requests in one `$batch`.
pub const MAX_BATCH: usize = 20;

pub(super) async fn batch(
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
