//! Process-wide request settings: `Set-MgRequestContext` / `Get-MgRequestContext`, shared by
//! every runspace like the connection. Per-request options start from these.

use std::sync::RwLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext {
            max_retry: 3,
            retry_delay: Duration::from_secs(3),
            retries_time_limit: Duration::ZERO,
            client_timeout: Duration::from_secs(300),
        }
    }
}

/// The JSON shape, in the official parameter names' units (seconds).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RequestContextJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_time_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_timeout: Option<f64>,
}

static CURRENT: RwLock<RequestContext> = RwLock::new(RequestContext {
    max_retry: 3,
    retry_delay: Duration::from_secs(3),
    retries_time_limit: Duration::ZERO,
    client_timeout: Duration::from_secs(300),
});

pub fn get() -> RequestContext {
    *CURRENT.read().unwrap_or_else(|p| p.into_inner())
}

impl RequestContext {
    pub fn to_json(self) -> RequestContextJson {
        RequestContextJson {
            max_retry: Some(self.max_retry),
            retry_delay: Some(self.retry_delay.as_secs_f64()),
            retries_time_limit: Some(self.retries_time_limit.as_secs_f64()),
            client_timeout: Some(self.client_timeout.as_secs_f64()),
        }
    }

    /// This context with the given values changed; out-of-range values are refused, not clamped.
    pub fn updated(mut self, update: &RequestContextJson) -> Result<Self, CoreError> {
        let seconds = |parameter: &'static str, v: f64, min: f64, max: f64| {
            if v.is_finite() && v >= min && v <= max {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(CoreError::invalid(parameter, format!("{parameter} must be between {min} and {max} seconds; it is {v}.")))
            }
        };
        if let Some(n) = update.max_retry {
            if n > MAX_RETRY_LIMIT {
                return Err(CoreError::invalid("MaxRetry", format!("MaxRetry must be between 0 and {MAX_RETRY_LIMIT}; it is {n}.")));
            }
            self.max_retry = n;
        }
        if let Some(v) = update.retry_delay {
            self.retry_delay = seconds("RetryDelay", v, 0.0, MAX_RETRY_DELAY.as_secs_f64())?;
        }
        if let Some(v) = update.retries_time_limit {
            self.retries_time_limit = seconds("RetriesTimeLimit", v, 0.0, f64::from(u32::MAX))?;
        }
        if let Some(v) = update.client_timeout {
            self.client_timeout = seconds("ClientTimeout", v, 0.001, f64::from(u32::MAX))?;
        }
        Ok(self)
    }
}

/// Changes the process-wide settings; returns the new ones.
pub fn set(update: &RequestContextJson) -> Result<RequestContext, CoreError> {
    let mut current = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    *current = current.updated(update)?;
    Ok(*current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_defaults_and_limits() {
        let d = RequestContext::default();
        assert_eq!((d.max_retry, d.retry_delay.as_secs(), d.client_timeout.as_secs()), (3, 3, 300));
        let too_many = RequestContextJson { max_retry: Some(11), ..Default::default() };
        assert!(d.updated(&too_many).is_err());
        let long_delay = RequestContextJson { retry_delay: Some(181.0), ..Default::default() };
        assert!(d.updated(&long_delay).is_err());
        let zero_timeout = RequestContextJson { client_timeout: Some(0.0), ..Default::default() };
        assert!(d.updated(&zero_timeout).is_err());
        let ok = RequestContextJson { max_retry: Some(10), retry_delay: Some(0.5), ..Default::default() };
        let u = d.updated(&ok).unwrap();
        assert_eq!((u.max_retry, u.retry_delay), (10, Duration::from_millis(500)));
    }
}
