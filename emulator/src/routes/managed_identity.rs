//! The managed-identity endpoints on loopback: `GET /metadata/identity/oauth2/token` (VM instance
//! metadata) and `GET /msi/token` (App Service).

use hyper::{HeaderMap, Method};

use super::token::{issue_token, whole_secs};
use super::{header_str, play_fault};
use crate::jwt::{ClientAuth, Holder};
use crate::reply::{Ctx, Reply};
use crate::state::{FaultTarget, State};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MiStyle {
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

pub(super) async fn managed_identity(
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
