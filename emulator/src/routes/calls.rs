//! The call resource: `POST /communications/calls` (create), `GET` and `DELETE
//! /communications/calls/{id}` (read, hang up), in v1.0 and beta. Calls created here are the
//! calls keep-alives and `$batch` items act on.

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::Value;

use crate::jwt;
use crate::reply::{Ctx, Reply};
use super::{bearer_token, check_auth, decode_segment, play_fault};
use crate::state::{new_guid, CallResource, FaultTarget, State};

/// A path under `/{version}/communications/calls` other than a keep-alive.
pub(crate) enum CallsRoute<'a> {
    /// `communications/calls`
    Collection,
    /// `communications/calls/{id}`: the raw (percent-encoded) id segment.
    Item { seg: &'a str },
}

/// Matches the segments after the version.
pub(crate) fn route<'a>(segs: &[&'a str]) -> Option<CallsRoute<'a>> {
    let prefix = segs.len() >= 2
        && segs[0].eq_ignore_ascii_case("communications")
        && segs[1].eq_ignore_ascii_case("calls");
    match segs.len() {
        2 if prefix => Some(CallsRoute::Collection),
        3 if prefix && !segs[2].is_empty() => Some(CallsRoute::Item { seg: segs[2] }),
        _ => None,
    }
}

/// What a call request needs besides the state.
pub(crate) struct CallRequest<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    pub raw_path: &'a str,
    /// `https://127.0.0.1:PORT/v1.0`: where this version of the API lives, as the client named it.
    pub version_url: String,
}

pub(crate) async fn handle(
    state: &State,
    route: CallsRoute<'_>,
    call_id: Option<&str>,
    req: &CallRequest<'_>,
    ctx: &Ctx,
) -> Option<Reply> {
    let crid = ctx.client_request_id.as_str();
    let allowed = match route {
        CallsRoute::Collection => "POST",
        CallsRoute::Item { .. } => "GET, DELETE",
    };
    if !allowed.split(", ").any(|m| m == req.method.as_str()) {
        return Some(
            Reply::graph_error(
                405,
                "MethodNotAllowed",
                &format!(
                    "The HTTP method '{}' is not allowed for this resource.",
                    req.method
                ),
                crid,
            )
            .header("Allow", allowed),
        );
    }
    let id = match route {
        CallsRoute::Collection => None,
        CallsRoute::Item { seg } => match call_id {
            Some(id) => Some(id),
            None => {
                return Some(Reply::graph_error(
                    400,
                    "BadRequest",
                    &format!("The call id segment '{seg}' is not valid percent-encoded UTF-8."),
                    crid,
                ))
            }
        },
    };
    if let Some(f) = state.take_fault(&FaultTarget {
        call_id: id,
        path: req.raw_path,
        is_keep_alive: false,
    }) {
        return play_fault(f, crid).await;
    }
    if let Some(r) = check_auth(state, req.headers, crid) {
        return Some(r);
    }
    let Some(id) = id else {
        return Some(create(state, req, crid));
    };
    let not_found = || {
        Reply::graph_error(
            404,
            "itemNotFound",
            &format!("Call '{id}' was not found or has ended."),
            crid,
        )
    };
    Some(if req.method == Method::DELETE {
        if state.end_active_call(id) {
            Reply::empty(204)
        } else {
            not_found()
        }
    } else {
        match state.active_call_resource(id) {
            Some(resource) => {
                let resource = resource.map(|r| (*r).clone()).unwrap_or_else(|| {
                    // A call created through the control API: the little Graph would know.
                    vec![
                        ("@odata.type".into(), Value::from("#microsoft.graph.call")),
                        ("direction".into(), Value::from("outgoing")),
                        ("id".into(), Value::from(id)),
                    ]
                });
                Reply {
                    body: crate::reply::ReplyBody::Json(render(
                        &req.version_url,
                        "established",
                        &resource,
                    )),
                    ..Reply::json(200, &())
                }
            }
            None => not_found(),
        }
    })
}

/// Properties Graph lists first, in its order; other request properties follow.
const LEADING: &[&str] = &[
    "@odata.type",
    "state",
    "direction",
    "callbackUri",
    "callChainId",
    "callRoutes",
    "source",
    "targets",
    "requestedModalities",
    "activeModalities",
    "mediaConfig",
    "routingPolicies",
    "tenantId",
    "myParticipantId",
    "id",
];

fn create(state: &State, req: &CallRequest<'_>, crid: &str) -> Reply {
    let bad = |msg: &str| Reply::graph_error(400, "BadRequest", msg, crid);
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(req.body) else {
        return bad("The request body must be a JSON object describing the call.");
    };
    if !body.get("callbackUri").is_some_and(Value::is_string) {
        return bad("The call must have a 'callbackUri'.");
    }
    let token = bearer_token(req.headers).unwrap_or_default();
    let id = new_guid();
    let mut filled = serde_json::Map::new();
    filled.insert("@odata.type".into(), "#microsoft.graph.call".into());
    filled.insert("direction".into(), "outgoing".into());
    filled.insert("callChainId".into(), new_guid().into());
    filled.insert("callRoutes".into(), Value::Array(Vec::new()));
    filled.insert("activeModalities".into(), Value::Array(Vec::new()));
    filled.insert("routingPolicies".into(), Value::Array(Vec::new()));
    filled.insert(
        "tenantId".into(),
        jwt::claim(token, "tid").map_or(Value::Null, Value::String),
    );
    if let Some(app) = jwt::claim(token, "appid") {
        filled.insert(
            "source".into(),
            serde_json::json!({
                "@odata.type": "#microsoft.graph.participantInfo",
                "identity": {
                    "@odata.type": "#microsoft.graph.identitySet",
                    "application": {"@odata.type": "#microsoft.graph.identity", "id": app}
                }
            }),
        );
    }
    // What the request says wins over what the emulator fills in; the id and state are Graph's.
    for (k, v) in body {
        if k != "id" && k != "state" {
            filled.insert(k, v);
        }
    }
    filled.insert("myParticipantId".into(), new_guid().into());
    filled.insert("id".into(), Value::String(id.clone()));
    let mut resource: CallResource = LEADING
        .iter()
        .filter_map(|k| filled.remove(*k).map(|v| ((*k).to_string(), v)))
        .collect();
    resource.extend(filled);
    let body = render(&req.version_url, "establishing", &resource);
    state.create_call_resource(&id, resource);
    Reply {
        body: crate::reply::ReplyBody::Json(body),
        ..Reply::json(201, &())
    }
    .header(
        "Location",
        &format!("{}/communications/calls/{id}", req.version_url),
    )
}

/// The call as JSON text: `@odata.context`, then the properties with `state` in Graph's place.
fn render(version_url: &str, call_state: &str, resource: &CallResource) -> String {
    let mut out = format!(
        "{{\"@odata.context\":{}",
        Value::from(format!(
            "{version_url}/$metadata#communications/calls/$entity"
        ))
    );
    let mut push = |k: &str, v: &Value| {
        out.push(',');
        out.push_str(&Value::from(k).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    };
    let state_value = Value::from(call_state);
    let mut state_written = false;
    for (k, v) in resource {
        if !state_written && k != "@odata.type" {
            push("state", &state_value);
            state_written = true;
        }
        push(k, v);
    }
    if !state_written {
        push("state", &state_value);
    }
    out.push('}');
    out
}

/// The decoded call id of a call path, for the request log.
pub(crate) fn logged_call_id(route: &CallsRoute<'_>) -> Option<String> {
    match route {
        CallsRoute::Collection => None,
        CallsRoute::Item { seg } => decode_segment(seg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route(&["communications", "calls"]),
            Some(CallsRoute::Collection)
        ));
        assert!(matches!(
            route(&["communications", "Calls", "a%2Fb"]),
            Some(CallsRoute::Item { seg: "a%2Fb" })
        ));
        assert!(route(&["communications", "calls", ""]).is_none());
        assert!(route(&["communications", "calls", "a", "keepAlive"]).is_none());
        assert!(route(&["communications", "presences"]).is_none());
    }

    #[test]
    fn state_follows_the_odata_type() {
        let text = render(
            "http://h/v1.0",
            "established",
            &vec![
                ("@odata.type".into(), Value::from("#microsoft.graph.call")),
                ("id".into(), Value::from("x")),
            ],
        );
        assert_eq!(
            text,
            r##"{"@odata.context":"http://h/v1.0/$metadata#communications/calls/$entity","@odata.type":"#microsoft.graph.call","state":"established","id":"x"}"##
        );
    }
}
