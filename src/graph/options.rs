//! Per-request options, as the ABI receives them in JSON.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::error::CoreError;
use crate::request_context::{self, MAX_RETRY_DELAY, MAX_RETRY_LIMIT};
use crate::runtime::{EnvironmentProxy, ExplicitProxy, ProxySettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ApiVersion {
    #[default]
    #[serde(rename = "v1.0")]
    V1,
    #[serde(rename = "beta")]
    Beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeepAliveOptions {
    pub api_version: ApiVersion,
    pub headers: HeaderMap,
    /// Bounds the whole keep-alive, however many attempts it takes.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retry: u32,
    /// Base of the exponential back-off.
    pub retry_delay: Duration,
    /// Total time retries may wait; zero = no limit beyond `timeout`.
    pub retries_time_limit: Duration,
    /// Record each HTTP exchange (without credentials) for `-Debug`.
    pub trace: bool,
    pub proxy: ProxySettings,
}

impl Default for KeepAliveOptions {
    /// The process-wide request context's settings.
    fn default() -> Self {
        let context = request_context::get();
        KeepAliveOptions {
            api_version: ApiVersion::V1,
            headers: HeaderMap::new(),
            timeout: context.client_timeout,
            max_retry: context.max_retry,
            retry_delay: context.retry_delay,
            retries_time_limit: context.retries_time_limit,
            trace: false,
            proxy: ProxySettings::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawOptions {
    #[serde(default)]
    api_version: ApiVersion,
    #[serde(default)]
    headers: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_retry: Option<u32>,
    #[serde(default)]
    retry_delay_ms: Option<u64>,
    #[serde(default)]
    retries_time_limit_ms: Option<u64>,
    #[serde(default)]
    debug: bool,
    #[serde(default)]
    proxy: Option<ExplicitProxy>,
    #[serde(default)]
    environment_proxy: Option<EnvironmentProxy>,
}

/// Headers the library owns: a caller cannot replace the credential or break the framing.
const RESERVED_HEADERS: [&str; 4] = ["authorization", "host", "content-length", "transfer-encoding"];

impl KeepAliveOptions {
    pub fn from_json(json: &str) -> Result<Self, CoreError> {
        let invalid = |e: String| CoreError::invalid("Options", format!("The options JSON is invalid: {e}."));
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        if !value.is_object() {
            return Err(invalid("it must be an object".into()));
        }
        let raw: RawOptions = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| CoreError::invalid("Headers", format!("'{name}' is not a valid HTTP header name.")))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(CoreError::invalid(
                    "Headers",
                    format!("The header '{name}' is set by MgKeepAlive and cannot be given in -Headers."),
                ));
            }
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            let value = HeaderValue::from_str(&text)
                .map_err(|_| CoreError::invalid("Headers", format!("The value of header '{name}' contains characters HTTP does not allow.")))?;
            headers.append(header, value);
        }
        let defaults = KeepAliveOptions::default();
        let timeout = match raw.timeout_ms {
            None => defaults.timeout,
            Some(0) => return Err(CoreError::invalid("ClientTimeout", "The client timeout must be greater than 0.")),
            Some(ms) => Duration::from_millis(ms),
        };
        let max_retry = raw.max_retry.unwrap_or(defaults.max_retry);
        if max_retry > MAX_RETRY_LIMIT {
            return Err(CoreError::invalid("MaxRetry", format!("MaxRetry must be between 0 and {MAX_RETRY_LIMIT}.")));
        }
        let retry_delay = raw.retry_delay_ms.map_or(defaults.retry_delay, Duration::from_millis);
        if retry_delay > MAX_RETRY_DELAY {
            return Err(CoreError::invalid("RetryDelay", "RetryDelay must be at most 180 seconds."));
        }
        let proxy = ProxySettings::new(raw.proxy, raw.environment_proxy)?;
        Ok(KeepAliveOptions {
            api_version: raw.api_version,
            headers,
            timeout,
            max_retry,
            retry_delay,
            retries_time_limit: raw.retries_time_limit_ms.map_or(defaults.retries_time_limit, Duration::from_millis),
            trace: raw.debug,
            proxy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_options() {
        let o = KeepAliveOptions::from_json(r#"{"apiVersion":"beta","headers":{"X-A":"1","x-b":2},"timeoutMs":1500}"#).unwrap();
        assert_eq!(o.api_version, ApiVersion::Beta);
        assert_eq!(o.headers["x-a"], "1");
        assert_eq!(o.headers["x-b"], "2");
        assert_eq!(o.timeout, Duration::from_millis(1500));
        assert_eq!(KeepAliveOptions::from_json("{}").unwrap().timeout, request_context::get().client_timeout);
        let o = KeepAliveOptions::from_json(r#"{"maxRetry":5,"retryDelayMs":10,"retriesTimeLimitMs":100,"debug":true}"#).unwrap();
        assert_eq!((o.max_retry, o.retry_delay, o.retries_time_limit, o.trace), (5, Duration::from_millis(10), Duration::from_millis(100), true));
    }

    #[test]
    fn refuses_reserved_and_invalid_headers() {
        for j in [
            r#"{"headers":{"Authorization":"Bearer x"}}"#,
            r#"{"headers":{"bad name":"x"}}"#,
            r#"{"headers":{"x":"a\nb"}}"#,
            r#"{"apiVersion":"v2"}"#,
            r#"{"timeoutMs":0}"#,
            r#"{"maxRetry":11}"#,
            r#"{"retryDelayMs":181000}"#,
            r#"{"proxy":{"url":"not a url"}}"#,
            r#"{"proxy":{"url":"socks9://x:1"}}"#,
            r#"{"unknown":1}"#,
            "[]",
        ] {
            assert!(KeepAliveOptions::from_json(j).is_err(), "{j}");
        }
    }
}
