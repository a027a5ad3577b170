//! Token requests: client credentials against Microsoft Entra ID, and managed identity endpoints.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::token_cache::announced_lifetime;
use super::{AccessToken, Secret};
use crate::error::{AuthError, CoreError};
use crate::graph::read_bounded;
use crate::runtime::{http_client_for, ProxySettings};

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
    let request = http_client_for(proxy)?.post(token_url).form(&form).timeout(timeout);
    let (status, body) = send(request, token_url, timeout).await?;
    parse_token(status, &body, token_url)
}

/// A managed identity endpoint: `GET url` with the platform's header.
pub async fn managed_identity(
    url: reqwest::Url,
    header: (&str, &str),
    proxy: &ProxySettings,
    timeout: Duration,
) -> Result<AccessToken, CoreError> {
    let endpoint = format!("{}://{}{}", url.scheme(), url.host_str().unwrap_or_default(), url.path());
    let request = http_client_for(proxy)?.get(url).header(header.0, header.1).timeout(timeout);
    let (status, body) = send(request, &endpoint, timeout).await?;
    parse_token(status, &body, &endpoint)
}

async fn send(request: reqwest::RequestBuilder, endpoint: &str, timeout: Duration) -> Result<(StatusCode, Vec<u8>), CoreError> {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            CoreError::timeout(None, timeout)
        } else {
            CoreError::auth(format!("The token request to {endpoint} failed: {}", describe(&e)))
        }
    };
    let response = request.send().await.map_err(failed)?;
    let status = response.status();
    let body = read_bounded(response).await.map_err(failed)?;
    Ok((status, body))
}

/// The failure and its causes, without the URL reqwest would name.
fn describe(e: &reqwest::Error) -> String {
    let mut message = String::from(if e.is_connect() { "cannot connect" } else { "the request failed" });
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_token(status: StatusCode, body: &[u8], endpoint: &str) -> Result<AccessToken, CoreError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
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
    let token = text("access_token").filter(|t| !t.is_empty()).ok_or_else(|| {
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
