//! Graph's retry policy (kiota's RetryHandler): 429, 503 and 504 — and, keep-alive being
//! idempotent, connection failures — are retried, honouring `Retry-After`, else waiting
//! `delay × 2^(retry-1)`, each wait capped at 180 s.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::request_context::MAX_RETRY_DELAY;

pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 503 | 504)
}

/// `Retry-After` as integer seconds, fractional seconds (`2.128`) or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(1e9)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait before retry number `retry` (1-based) when the server gave no `Retry-After`.
pub fn backoff(delay: Duration, retry: u32) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    delay.saturating_mul(factor).min(MAX_RETRY_DELAY)
}

/// One HTTP exchange as `-Debug` shows it; `Authorization` is never included.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpTrace {
    pub method: String,
    pub uri: String,
    pub request_headers: Vec<(String, String)>,
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
}

/// What happened in one attempt: for `-Verbose` (one line each) and the final error.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub attempt: u32,
    pub status: Option<u16>,
    /// The Graph error code, or the transport failure.
    pub error: Option<String>,
    pub elapsed_ms: u64,
    /// How long the client waited after this attempt before the next.
    pub wait_ms: Option<u64>,
    pub retry_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTrace>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("2.128", now), Some(Duration::from_millis(2128)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn exponential_backoff_capped() {
        let d = Duration::from_secs(3);
        assert_eq!([1, 2, 3].map(|n| backoff(d, n).as_secs()), [3, 6, 12]);
        assert_eq!(backoff(d, 10), Duration::from_secs(180));
        assert_eq!(backoff(d, 40), Duration::from_secs(180));
    }

    #[test]
    fn only_throttling_and_unavailability_are_retried() {
        assert!(is_retryable_status(429) && is_retryable_status(503) && is_retryable_status(504));
        for s in [400, 401, 403, 404, 500, 502] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }
}
