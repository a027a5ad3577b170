//! Token requests: client credentials against Microsoft Entra ID, and managed identity endpoints.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use zeroize::Zeroizing;

use super::token_cache::announced_lifetime;
use super::{AccessToken, Secret};
use crate::error::{AuthError, CoreError};
use crate::graph::read_bounded;
use crate::redact;
use crate::runtime::{client, ProxySettings, Purpose};

/// `{login}/{tenant}/oauth2/v2.0/token`, the tenant encoded as one path segment.
pub fn token_url(login_endpoint: &str, tenant_id: &str) -> String {
    format!("{}/{}/oauth2/v2.0/token", login_endpoint.trim_end_matches('/'), crate::graph::encode_segment(tenant_id))
}

/// `POST` a client-credentials form; `credential` holds `client_secret` or the assertion pair.
pub async fn client_credentials(
    token_url: &str,
    client_id: &str,
    scope: &str,
    credential: &[(&str, &str)],
    proxy: &ProxySettings,
    timeout: Duration,
) -> Result<AccessToken, CoreError> {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials"), ("client_id", client_id), ("scope", scope)];
    form.extend_from_slice(credential);
    let request = client(proxy, Purpose::Token)?
        .post(token_url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&form))
        .timeout(timeout);
    let (status, body) = send(request, token_url, timeout).await?;
    parse_token(status, &body, token_url)
}

/// The form, URL-encoded into one buffer of its exact size that reqwest sends without copying
/// and that is zeroed when the request is dropped: it carries the secret or the assertion.
fn form_body(form: &[(&str, &str)]) -> reqwest::Body {
    let pieces = || {
        form.iter().enumerate().flat_map(|(i, (name, value))| {
            let separator = if i == 0 { "" } else { "&" };
            std::iter::once(separator)
                .chain(url::form_urlencoded::byte_serialize(name.as_bytes()))
                .chain(std::iter::once("="))
                .chain(url::form_urlencoded::byte_serialize(value.as_bytes()))
        })
    };
    let mut body = Zeroizing::new(Vec::with_capacity(pieces().map(str::len).sum()));
    for piece in pieces() {
        body.extend_from_slice(piece.as_bytes());
    }
    reqwest::Body::from(bytes::Bytes::from_owner(body))
}

/// A managed identity endpoint: `GET url` with the platform's header.
pub async fn managed_identity(
    url: reqwest::Url,
    header: (HeaderName, HeaderValue),
    proxy: &ProxySettings,
    timeout: Duration,
) -> Result<AccessToken, CoreError> {
    let endpoint = format!("{}://{}{}", url.scheme(), url.host_str().unwrap_or_default(), url.path());
    let request = client(proxy, Purpose::Token)?.get(url).header(header.0, header.1).timeout(timeout);
    let (status, body) = send(request, &endpoint, timeout).await?;
    parse_token(status, &body, &endpoint)
}

async fn send(request: reqwest::RequestBuilder, endpoint: &str, timeout: Duration) -> Result<(StatusCode, Zeroizing<Vec<u8>>), CoreError> {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            CoreError::timeout(None, timeout)
        } else {
            let what = if e.is_connect() { "cannot connect" } else { "the request failed" };
            CoreError::auth(format!("The token request to {endpoint} failed: {what}: {}", redact::reqwest_error(e)))
        }
    };
    let response = request.send().await.map_err(failed)?;
    let status = response.status();
    if status.is_redirection() {
        // The client follows no redirect here (see `runtime::Purpose::Token`): say so plainly.
        let target = response.headers().get(reqwest::header::LOCATION).map(|l| redact::url(&String::from_utf8_lossy(l.as_bytes())));
        return Err(CoreError::Auth(Box::new(AuthError {
            message: format!(
                "The token endpoint {endpoint} answered HTTP {} with a redirect{}; token requests never follow redirects, \
                 so that the secret is sent only to the endpoint configured. Use the endpoint's final address.",
                status.as_u16(),
                target.map(|t| format!(" to {t}")).unwrap_or_default()
            ),
            http_status: Some(status.as_u16()),
            token_endpoint: Some(endpoint.to_owned()),
            ..AuthError::default()
        })));
    }
    let body = read_bounded(response).await.map_err(failed)?;
    Ok((status, body))
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Moves `access_token` out of the parsed answer, so that the only copy is the one the returned
/// [`Secret`] zeroes (serde_json allocates a string once, at its size, unless it holds escapes).
fn take_token(json: &mut Option<Value>) -> Option<String> {
    match json.as_mut()?.as_object_mut()?.remove("access_token")? {
        Value::String(token) if !token.is_empty() => Some(token),
        _ => None,
    }
}

fn parse_token(status: StatusCode, body: &[u8], endpoint: &str) -> Result<AccessToken, CoreError> {
    let mut json: Option<Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| json.as_ref().and_then(|j| j.get(key)).and_then(Value::as_str).map(str::to_owned);
    if !status.is_success() {
        let error_codes: Vec<u64> = json
            .as_ref()
            .and_then(|j| j.get("error_codes"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let description = text("error_description");
        let error = text("error");
        let message = match (&description, &error) {
            (Some(d), _) => d.clone(),
            (None, Some(e)) => format!("The token request was refused: {e} (HTTP {}).", status.as_u16()),
            (None, None) => format!(
                "The token endpoint {endpoint} answered HTTP {} without an OAuth error: {}",
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(512)])
            ),
        };
        return Err(CoreError::Auth(Box::new(AuthError {
            message,
            error,
            error_description: description,
            error_codes,
            trace_id: text("trace_id"),
            correlation_id: text("correlation_id"),
            http_status: Some(status.as_u16()),
            token_endpoint: Some(endpoint.to_owned()),
        })));
    }
    let token = take_token(&mut json).ok_or_else(|| {
        CoreError::auth(format!("The token endpoint {endpoint} answered without an access_token."))
    })?;
    let obj = json.as_ref();
    let lifetime = number(obj.and_then(|j| j.get("expires_in"))).or_else(|| {
        // Managed identity endpoints may give only `expires_on` (Unix seconds).
        let on = number(obj.and_then(|j| j.get("expires_on")))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
        Some(on - now)
    });
    // Clamped: the numbers come from the network, and an absurd one must not panic the renewal.
    let lifetime = announced_lifetime(lifetime.unwrap_or(0.0));
    let refresh_in = number(obj.and_then(|j| j.get("refresh_in"))).map(announced_lifetime);
    Ok(AccessToken::new(Secret::new(token), lifetime, refresh_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_errors_keep_their_codes_and_ids() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"trace_id":"t1","correlation_id":"c1"}"#;
        let CoreError::Auth(e) = parse_token(StatusCode::UNAUTHORIZED, body, "https://login/x").unwrap_err() else { panic!() };
        assert_eq!(e.error_codes, [7000215]);
        assert_eq!((e.trace_id.as_deref(), e.correlation_id.as_deref()), (Some("t1"), Some("c1")));
        assert!(e.message.starts_with("AADSTS7000215"));
        let CoreError::Auth(e) = parse_token(StatusCode::BAD_GATEWAY, b"<html>", "https://login/x").unwrap_err() else { panic!() };
        assert!(e.message.contains("HTTP 502"));
    }

    #[test]
    fn lifetimes_from_expires_in_or_expires_on() {
        let t = parse_token(StatusCode::OK, br#"{"access_token":"a","expires_in":3599}"#, "x").unwrap();
        assert!(t.expires_at - t.acquired_at == Duration::from_secs(3599));
        let t = parse_token(StatusCode::OK, br#"{"access_token":"a","expires_in":"60"}"#, "x").unwrap();
        assert!(t.is_due(), "a token shorter than the margin is due at once");
        let t = parse_token(StatusCode::OK, br#"{"access_token":"a","expires_in":3599,"refresh_in":100}"#, "x").unwrap();
        assert_eq!(t.renew_at - t.acquired_at, Duration::from_secs(100));
        assert!(parse_token(StatusCode::OK, br#"{"expires_in":1}"#, "x").is_err());
    }

    proptest::proptest! {
        /// Whatever an endpoint announces, parsing gives a token and never panics.
        #[test]
        fn any_announced_lifetime_gives_a_token(seconds in proptest::num::f64::ANY, field in 0..3usize, quoted: bool) {
            let value = if quoted || !seconds.is_finite() { format!("\"{seconds}\"") } else { format!("{seconds:e}") };
            let lifetime = match field {
                0 => format!(r#""expires_in":{value}"#),
                1 => format!(r#""expires_in":3599,"refresh_in":{value}"#),
                _ => format!(r#""expires_on":{value}"#),
            };
            let body = format!(r#"{{"access_token":"a",{lifetime}}}"#);
            let token = parse_token(StatusCode::OK, body.as_bytes(), "x").unwrap();
            proptest::prop_assert!(token.renew_at <= token.expires_at);
            proptest::prop_assert!(token.expires_at - token.acquired_at <= super::super::token_cache::MAX_ANNOUNCED_LIFETIME);
        }
    }
}
