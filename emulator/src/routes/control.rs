//! The control API under `/_emulator` (JSON in and out, no auth, not logged).

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::reply::validate_fault;
use crate::server::HttpResponse;
use crate::state::{AppRegistration, FaultScript, State, SYSTEM_ASSIGNED_CLIENT_ID};

/// Largest number of calls one `POST /_emulator/calls {"count":n}` may create.
const MAX_CREATE: u64 = 1_000_000;

fn respond(status: u16, value: &Value) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: u16, message: &str) -> HttpResponse {
    respond(status, &json!({ "error": message }))
}

/// A control-API error: status and message (rendered as `{"error": message}`).
struct CtlErr(u16, String);

fn err(status: u16, message: &str) -> CtlErr {
    CtlErr(status, message.to_string())
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Parses a JSON body; an empty body parses as `default`.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], default: &str) -> Result<T, CtlErr> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        default.as_bytes()
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|e| err(400, &format!("invalid JSON body: {e}")))
}

fn secs(v: f64, what: &str) -> Result<Duration, CtlErr> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| err(400, &format!("{what} must be a finite number >= 0")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateCalls {
    ids: Option<Vec<String>>,
    count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigUpdate {
    call_timeout_secs: Option<f64>,
    token_lifetime_secs: Option<f64>,
    strict_auth: Option<bool>,
    log_capacity: Option<usize>,
    /// A number of seconds, or null (or 0) to stop sending `refresh_in`. Absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    token_refresh_in_secs: Option<Value>,
    identity_header: Option<String>,
    refuse_batched_keep_alive: Option<bool>,
}

/// Deserializes a field that is present (even as `null`) into `Some(value)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppInput {
    tenant_id: String,
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    secret_expired: bool,
    certificate: Option<String>,
    #[serde(default)]
    certificates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentityInput {
    client_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRegistration {
    token: String,
    expires_in_secs: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenIssue {
    tenant_id: String,
    client_id: String,
    expires_in_secs: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>, segs: &[&str]) -> HttpResponse {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(400, "could not read the request body"),
    };
    match route(state, &method, segs, &query, &body) {
        Ok(r) => r,
        Err(CtlErr(status, message)) => error(status, &message),
    }
}

fn route(
    state: &State,
    method: &Method,
    segs: &[&str],
    query: &str,
    body: &[u8],
) -> Result<HttpResponse, CtlErr> {
    let m = method.as_str();
    let decoded = |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned());
    Ok(match (m, segs) {
        ("GET", ["health"]) => respond(200, &json!({ "status": "ok" })),

        ("GET", ["calls"]) => respond(200, &to_value(&state.all_calls())),
        ("POST", ["calls"]) => {
            let req: CreateCalls = parse(body, "{}")?;
            let ids: Vec<String> = match (req.ids, req.count) {
                (Some(_), Some(_)) => return Err(err(400, "give either ids or count, not both")),
                (Some(ids), None) => {
                    if ids.iter().any(String::is_empty) {
                        return Err(err(400, "call ids must not be empty"));
                    }
                    ids.iter().map(|id| state.create_call(Some(id))).collect()
                }
                (None, count) => {
                    let n = count.unwrap_or(1);
                    if n > MAX_CREATE {
                        return Err(err(400, &format!("count must be at most {MAX_CREATE}")));
                    }
                    (0..n).map(|_| state.create_call(None)).collect()
                }
            };
            respond(201, &json!({ "ids": ids }))
        }
        ("DELETE", ["calls"]) => {
            state.remove_calls();
            respond(200, &json!({}))
        }
        ("GET", ["calls", id]) => {
            let id = decoded(id).map_err(|_| err(400, "call id is not valid UTF-8"))?;
            match state.call_state(&id) {
                Some(c) => respond(200, &to_value(&c)),
                None => error(404, &format!("unknown call '{id}'")),
            }
        }
        ("POST", ["calls", id, "end"]) => {
            let id = decoded(id).map_err(|_| err(400, "call id is not valid UTF-8"))?;
            if state.end_call(&id) {
                respond(200, &to_value(&state.call_state(&id)))
            } else {
                error(404, &format!("unknown call '{id}'"))
            }
        }

        ("GET", ["config"]) => respond(200, &to_value(&state.config_view())),
        ("PUT", ["config"]) | ("PATCH", ["config"]) => {
            let upd: ConfigUpdate = parse(body, "{}")?;
            let call_timeout = upd
                .call_timeout_secs
                .map(|v| secs(v, "callTimeoutSecs"))
                .transpose()?;
            let token_lifetime = upd
                .token_lifetime_secs
                .map(|v| secs(v, "tokenLifetimeSecs"))
                .transpose()?;
            let refresh_in = match upd.token_refresh_in_secs {
                None => None,
                Some(Value::Null) => Some(None),
                Some(v) => {
                    let f = v
                        .as_f64()
                        .ok_or_else(|| err(400, "tokenRefreshInSecs must be a number or null"))?;
                    let d = secs(f, "tokenRefreshInSecs")?;
                    Some(Some(d).filter(|d| !d.is_zero()))
                }
            };
            if upd.identity_header.as_deref() == Some("") {
                return Err(err(400, "identityHeader must not be empty"));
            }
            if let Some(r) = refresh_in {
                state.set_token_refresh_in(r);
            }
            if let Some(h) = &upd.identity_header {
                state.set_identity_header(h);
            }
            if let Some(d) = call_timeout {
                state.set_call_timeout(d);
            }
            if let Some(d) = token_lifetime {
                state.set_token_lifetime(d);
            }
            if let Some(s) = upd.strict_auth {
                state.set_strict(s);
            }
            if let Some(c) = upd.log_capacity {
                state.set_log_capacity(c);
            }
            if let Some(r) = upd.refuse_batched_keep_alive {
                state.set_refuse_batched_keep_alive(r);
            }
            respond(200, &to_value(&state.config_view()))
        }

        ("GET", ["faults"]) => respond(200, &to_value(&state.pending_faults())),
        ("POST", ["faults"]) => {
            let scripts: OneOrMany<FaultScript> = parse(body, "")?;
            let scripts = scripts.into_vec();
            for s in &scripts {
                if s.responses.is_empty() {
                    return Err(err(400, "a fault script needs at least one response"));
                }
                for r in &s.responses {
                    validate_fault(r).map_err(|e| CtlErr(400, e))?;
                }
            }
            for s in scripts {
                state.push_faults(s);
            }
            respond(201, &to_value(&state.pending_faults()))
        }
        ("DELETE", ["faults"]) => {
            state.clear_faults();
            respond(200, &json!([]))
        }

        ("GET", ["requests"]) => {
            let mut call_id = None;
            let mut kind = None;
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                match k.as_ref() {
                    "callId" => call_id = Some(v.into_owned()),
                    "kind" => kind = Some(v.into_owned()),
                    _ => {}
                }
            }
            respond(
                200,
                &to_value(&state.requests(call_id.as_deref(), kind.as_deref())),
            )
        }
        ("DELETE", ["requests"]) => {
            state.clear_log();
            respond(200, &json!([]))
        }

        ("GET", ["in-flight"]) => respond(200, &to_value(&state.in_flight())),
        ("DELETE", ["in-flight"]) => {
            state.reset_max_in_flight();
            respond(200, &to_value(&state.in_flight()))
        }

        ("POST", ["tokens"]) => {
            let t: TokenRegistration = parse(body, "")?;
            if t.token.is_empty() {
                return Err(err(400, "token must not be empty"));
            }
            let lifetime = match t.expires_in_secs {
                Some(v) => secs(v, "expiresInSecs")?,
                None => state.token_lifetime(),
            };
            state.register_token(&t.token, lifetime);
            respond(
                201,
                &json!({ "token": t.token, "expiresInSecs": lifetime.as_secs_f64() }),
            )
        }
        ("POST", ["tokens", "issue"]) => {
            let t: TokenIssue = parse(body, "")?;
            if t.tenant_id.is_empty() || t.client_id.is_empty() {
                return Err(err(400, "tenantId and clientId must not be empty"));
            }
            let lifetime = match t.expires_in_secs {
                Some(v) => secs(v, "expiresInSecs")?,
                None => state.token_lifetime(),
            };
            let token = crate::jwt::issue_for_app(state, &t.tenant_id, &t.client_id, lifetime);
            respond(
                201,
                &json!({ "token": token, "expiresInSecs": lifetime.as_secs_f64() }),
            )
        }
        ("DELETE", ["tokens"]) => {
            state.clear_tokens();
            respond(200, &json!({}))
        }

        ("GET", ["apps"]) => respond(200, &to_value(&state.apps())),
        ("POST", ["apps"]) => {
            let input: AppInput = parse(body, "")?;
            if input.tenant_id.is_empty() || input.client_id.is_empty() {
                return Err(err(400, "tenantId and clientId must not be empty"));
            }
            let mut certificates = input.certificates;
            if let Some(c) = input.certificate {
                certificates.insert(0, c);
            }
            let app = AppRegistration {
                tenant_id: input.tenant_id,
                client_id: input.client_id,
                client_secret: input.client_secret,
                secret_expired: input.secret_expired,
                certificates,
            };
            let (tenant, client) = (app.tenant_id.clone(), app.client_id.clone());
            state
                .register_app(app)
                .map_err(|e| err(400, &format!("invalid certificate: {e}")))?;
            let registered = state
                .apps()
                .into_iter()
                .find(|a| a.tenant_id == tenant && a.client_id == client);
            respond(201, &to_value(&registered))
        }
        ("DELETE", ["apps"]) => {
            state.clear_apps();
            respond(200, &json!([]))
        }

        ("GET", ["identities"]) => respond(200, &to_value(&state.identities())),
        ("POST", ["identities"]) => {
            let ids: OneOrMany<IdentityInput> = parse(body, "")?;
            let ids = ids.into_vec();
            if ids.iter().any(|i| i.client_id.is_empty()) {
                return Err(err(400, "clientId must not be empty"));
            }
            if ids
                .iter()
                .any(|i| i.client_id.eq_ignore_ascii_case(SYSTEM_ASSIGNED_CLIENT_ID))
            {
                return Err(err(
                    400,
                    "that clientId is the system-assigned identity, which always exists",
                ));
            }
            for i in &ids {
                state.register_identity(&i.client_id);
            }
            respond(201, &to_value(&state.identities()))
        }
        ("DELETE", ["identities"]) => {
            state.clear_identities();
            respond(200, &to_value(&state.identities()))
        }

        ("POST", ["reset"]) => {
            state.reset();
            respond(200, &json!({}))
        }

        _ => error(
            404,
            &format!("no control endpoint {m} /_emulator/{}", segs.join("/")),
        ),
    })
}
