//! Process-wide request settings: `Set-MgRequestContext` / `Get-MgRequestContext`, shared by
//! every runspace like the connection. Per-request options start from these.

use std::sync::RwLock;
use std::time::Duration;

use crate::error::CoreError;

/// The official limits: at most 10 retries, each wait at most 180 s.
pub const MAX_RETRY_LIMIT: u32 = 10;
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext {
    /// Retries after the first attempt (429, 503, 504, connection failures).
    pub max_retry: u32,
    /// Base of the exponential back-off when the server gives no `Retry-After`.
    pub retry_delay: Duration,
    /// Total time retries may spend waiting; zero = no limit beyond the client timeout.
    pub retries_time_limit: Duration,
    /// Bounds a whole keep-alive, retries and waits included.
    pub client_timeout: Duration,
}

impl RequestContext {
    /// The official defaults, declared once: 3 retries, 3 s back-off base, no retry time limit,
    /// a 300 s client timeout.
    pub const DEFAULT: RequestContext = RequestContext {
        max_retry: 3,
        retry_delay: Duration::from_secs(3),
        retries_time_limit: Duration::ZERO,
        client_timeout: Duration::from_secs(300),
    };
}

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext::DEFAULT
    }
}

/// A change of the settings: those given are set, the others keep their values.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RequestContextChange {
    pub max_retry: Option<u32>,
    pub retry_delay: Option<Duration>,
    pub retries_time_limit: Option<Duration>,
    pub client_timeout: Option<Duration>,
}

/// The longest retry time limit and client timeout: u32::MAX seconds.
const MAX_SECONDS: Duration = Duration::from_secs(u32::MAX as u64);

static CURRENT: RwLock<RequestContext> = RwLock::new(RequestContext::DEFAULT);

pub fn get() -> RequestContext {
    *CURRENT.read().unwrap_or_else(|p| p.into_inner())
}

impl RequestContext {
    /// This context with `change` applied: the one validator of the settings. Out-of-range
    /// values are refused, not clamped: MaxRetry 0-10, RetryDelay 0-180 s, RetriesTimeLimit and
    /// ClientTimeout up to u32::MAX s, ClientTimeout at least 1 ms.
    pub fn updated(mut self, change: &RequestContextChange) -> Result<Self, CoreError> {
        let within = |parameter: &'static str, v: Duration, min: Duration, max: Duration| {
            if v >= min && v <= max {
                Ok(v)
            } else {
                Err(CoreError::invalid(
                    parameter,
                    format!("{parameter} must be between {} and {} seconds; it is {}.", min.as_secs_f64(), max.as_secs_f64(), v.as_secs_f64()),
                ))
            }
        };
        if let Some(n) = change.max_retry {
            if n > MAX_RETRY_LIMIT {
                return Err(CoreError::invalid("MaxRetry", format!("MaxRetry must be between 0 and {MAX_RETRY_LIMIT}; it is {n}.")));
            }
            self.max_retry = n;
        }
        if let Some(v) = change.retry_delay {
            self.retry_delay = within("RetryDelay", v, Duration::ZERO, MAX_RETRY_DELAY)?;
        }
        if let Some(v) = change.retries_time_limit {
            self.retries_time_limit = within("RetriesTimeLimit", v, Duration::ZERO, MAX_SECONDS)?;
        }
        if let Some(v) = change.client_timeout {
            self.client_timeout = within("ClientTimeout", v, Duration::from_millis(1), MAX_SECONDS)?;
        }
        Ok(self)
    }
}

/// Changes the process-wide settings; returns the new ones. Nothing changes when a value is refused.
pub fn set(change: &RequestContextChange) -> Result<RequestContext, CoreError> {
    let mut current = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    *current = current.updated(change)?;
    Ok(*current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_defaults_and_limits() {
        let d = RequestContext::default();
        assert_eq!((d.max_retry, d.retry_delay.as_secs(), d.client_timeout.as_secs()), (3, 3, 300));
        let too_many = RequestContextChange { max_retry: Some(11), ..Default::default() };
        assert!(d.updated(&too_many).is_err());
        let long_delay = RequestContextChange { retry_delay: Some(Duration::from_secs(181)), ..Default::default() };
        assert!(d.updated(&long_delay).is_err());
        let zero_timeout = RequestContextChange { client_timeout: Some(Duration::ZERO), ..Default::default() };
        assert!(d.updated(&zero_timeout).is_err());
        let ok = RequestContextChange { max_retry: Some(10), retry_delay: Some(Duration::from_millis(500)), ..Default::default() };
        let u = d.updated(&ok).unwrap();
        assert_eq!((u.max_retry, u.retry_delay), (10, Duration::from_millis(500)));
    }
}
