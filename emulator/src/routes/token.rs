//! `POST /{tenant}/oauth2/v2.0/token`: Entra ID's token endpoint (client secrets and certificate
//! assertions).

use std::time::Duration;

use bytes::Bytes;
use hyper::{HeaderMap, Method};

use super::{decode_segment, header_str, play_fault};
use crate::assertion::{self, LoggedAssertion};
use crate::jwt::{self, ClientAuth, Holder};
use crate::reply::{aad_error, Ctx, Reply};
use crate::state::{new_guid, FaultTarget, State};

pub(super) struct TokenRequest<'a> {
    pub(super) method: &'a Method,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: &'a Bytes,
    pub(super) tenant_seg: &'a str,
    pub(super) raw_path: &'a str,
    /// `http://{Host}{path}`: the exact token URL the request came to (the assertion's `aud`).
    pub(super) expected_aud: &'a str,
}

/// Whole seconds of a lifetime, rounded down (a 2.5 s lifetime is announced as 2).
pub(super) fn whole_secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Issues and registers a fresh JWT-shaped access token with the configured lifetime.
pub(super) fn issue_token(state: &State, holder: &Holder<'_>) -> (String, Duration) {
    let lifetime = state.token_lifetime();
    let access_token = jwt::mint(holder, lifetime);
    state.register_token(&access_token, lifetime);
    (access_token, lifetime)
}

pub(super) async fn token(
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
