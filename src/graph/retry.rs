//! The one retry classifier. Graph's retry policy (kiota's RetryHandler): 429, 503 and 504 —
//! and, keep-alive being idempotent, connection failures — are retried, honouring `Retry-After`,
//! else waiting `delay × 2^(retry-1)`, each wait capped at 180 s; a 401 renews the token once.
//! [`Class`] names what an outcome is, and its methods say what each sender does with it: a
//! single request ([`Class::retried`], [`Class::renews_token`]), a `$batch` item
//! ([`Class::batch_item`]) and the keeper ([`Class::keeper`]); [`retry_after`] and [`retry_wait`]
//! say how long to wait.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::CoreError;
use crate::request_context::MAX_RETRY_DELAY;

/// What one attempt's outcome is, as every retry decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx: the keep-alive succeeded.
    Success,
    /// 401: the token was refused; renewed once, then the request is sent again.
    Unauthorized,
    /// 429, 503, 504: throttling or unavailability; retried after `Retry-After` or back-off.
    Throttled,
    /// The connection failed or the response was broken; retried like throttling.
    Transport,
    /// 404: the call is over.
    CallEnded,
    /// 403: the app may not keep this call alive.
    Forbidden,
    /// 400, 405: the request was refused (in a `$batch`, maybe the batch rather than the call).
    Refused,
    /// Any other status (409, 500, 502, ...).
    OtherStatus,
    /// The client timeout elapsed.
    Timeout,
    /// Input that cannot be sent (an invalid call id, identity or option).
    InvalidInput,
    /// Anything else: not connected, no token, cancelled, an internal error.
    Other,
}

/// How a `$batch` item's own answer is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemAnswer {
    /// 2xx: the keep-alive succeeded.
    Success,
    /// 404, 403: what a single request would get; final.
    Verdict,
    /// 401, 429, 503, 504: the single request's retry policy takes it as attempt 1.
    Retry,
    /// Anything else: maybe about the batch, not the call; the item is sent again singly.
    Resend,
}

/// What the keeper does after a kept call's keep-alive failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeeperVerdict {
    /// 404: the call is over; no more requests.
    Ended,
    /// 400, 403, 405, an invalid id: refused for good; no more requests.
    Failed,
    /// Anything else: retried before the call's deadline.
    Transient,
}

impl Class {
    pub fn of_status(status: u16) -> Class {
        match status {
            200..=299 => Class::Success,
            401 => Class::Unauthorized,
            429 | 503 | 504 => Class::Throttled,
            404 => Class::CallEnded,
            403 => Class::Forbidden,
            400 | 405 => Class::Refused,
            _ => Class::OtherStatus,
        }
    }

    pub fn of_error(error: &CoreError) -> Class {
        match error {
            CoreError::Graph(g) => Class::of_status(g.http_status),
            CoreError::Transport { .. } => Class::Transport,
            CoreError::Timeout { .. } => Class::Timeout,
            CoreError::InvalidArgument { .. } => Class::InvalidInput,
            _ => Class::Other,
        }
    }

    /// Whether a single request is sent again (up to MaxRetry, within the time limits).
    pub fn retried(self) -> bool {
        matches!(self, Class::Throttled | Class::Transport)
    }

    /// Whether a single request renews its token (once) and is sent again at once.
    pub fn renews_token(self) -> bool {
        self == Class::Unauthorized
    }

    /// How a `$batch` item's answer is used: only a verdict about the call (2xx, 404, 403) is
    /// final; what the single request's policy retries starts it; the rest is sent again singly.
    pub fn batch_item(self) -> ItemAnswer {
        match self {
            Class::Success => ItemAnswer::Success,
            Class::CallEnded | Class::Forbidden => ItemAnswer::Verdict,
            Class::Unauthorized | Class::Throttled => ItemAnswer::Retry,
            _ => ItemAnswer::Resend,
        }
    }

    /// What the keeper does with a failed keep-alive of a kept call.
    pub fn keeper(self) -> KeeperVerdict {
        match self {
            Class::CallEnded => KeeperVerdict::Ended,
            Class::Forbidden | Class::Refused | Class::InvalidInput => KeeperVerdict::Failed,
            _ => KeeperVerdict::Transient,
        }
    }
}

/// Whether a single request retries an answer with this status (429, 503, 504).
pub fn is_retryable_status(status: u16) -> bool {
    Class::of_status(status) == Class::Throttled
}

/// The `Retry-After` value a Graph answer carries, as sent.
pub fn retry_after_header(error: &CoreError) -> Option<&str> {
    match error {
        CoreError::Graph(g) => g.headers.get("retry-after").and_then(|v| v.first()).map(String::as_str),
        _ => None,
    }
}

/// How long a Graph answer asks to wait (its `Retry-After`), from `now`.
pub fn retry_after(error: &CoreError, now: SystemTime) -> Option<Duration> {
    retry_after_header(error).and_then(|v| parse_retry_after(v, now))
}

/// The wait before retry number `retry` (1-based): the server's `Retry-After` when it gave one,
/// else back-off from `delay`.
pub fn retry_wait(retry_after: Option<Duration>, delay: Duration, retry: u32) -> Duration {
    retry_after.unwrap_or_else(|| backoff(delay, retry))
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
    fn one_table_for_every_sender() {
        use ItemAnswer::*;
        use KeeperVerdict::*;
        // status: single request retried, renews the token, batch item, keeper
        let table: [(u16, bool, bool, ItemAnswer, KeeperVerdict); 14] = [
            (200, false, false, Success, Transient),
            (204, false, false, Success, Transient),
            (400, false, false, Resend, Failed),
            (401, false, true, Retry, Transient),
            (403, false, false, Verdict, Failed),
            (404, false, false, Verdict, Ended),
            (405, false, false, Resend, Failed),
            (409, false, false, Resend, Transient),
            (429, true, false, Retry, Transient),
            (500, false, false, Resend, Transient),
            (502, false, false, Resend, Transient),
            (503, true, false, Retry, Transient),
            (504, true, false, Retry, Transient),
            (302, false, false, Resend, Transient),
        ];
        for (status, retried, renews, item, keeper) in table {
            let class = Class::of_status(status);
            assert_eq!((class.retried(), class.renews_token(), class.batch_item(), class.keeper()), (retried, renews, item, keeper), "{status}");
        }
        let transport = Class::of_error(&CoreError::transport(None, "reset"));
        assert!(transport.retried() && transport.keeper() == Transient);
        let timeout = Class::of_error(&CoreError::timeout(None, Duration::from_secs(1)));
        assert!(!timeout.retried() && timeout.keeper() == Transient);
        assert_eq!(Class::of_error(&CoreError::invalid("CallId", "bad")).keeper(), Failed);
        assert_eq!(Class::of_error(&CoreError::NotConnected).keeper(), Transient);
        assert!(!Class::of_error(&CoreError::NotConnected).retried());
    }

    #[test]
    fn waits_honour_retry_after_else_back_off() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut g = crate::error::GraphError { http_status: 429, ..Default::default() };
        g.headers.insert("retry-after".into(), vec!["7".into()]);
        let throttled = CoreError::Graph(Box::new(g));
        assert_eq!(retry_after_header(&throttled), Some("7"));
        assert_eq!(retry_after(&throttled, now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&CoreError::transport(None, "x"), now), None);
        assert_eq!(retry_wait(Some(Duration::from_secs(400)), Duration::from_secs(3), 1), Duration::from_secs(400));
        assert_eq!(retry_wait(None, Duration::from_secs(3), 2), Duration::from_secs(6));
    }

    #[test]
    fn only_throttling_and_unavailability_are_retried() {
        assert!(is_retryable_status(429) && is_retryable_status(503) && is_retryable_status(504));
        for s in [400, 401, 403, 404, 500, 502] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }
}
