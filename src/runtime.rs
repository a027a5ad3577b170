//! The library's one tokio runtime and one HTTP client, created on first use and shared by every
//! caller in the process (every PowerShell runspace), so connections are pooled.

use std::time::Duration;

use once_cell::sync::Lazy;

use crate::environment::is_loopback;
use crate::error::CoreError;

/// `User-Agent` of every request: names the product and its version.
pub const USER_AGENT: &str = concat!("MgKeepAlive/", env!("CARGO_PKG_VERSION"));

/// Graph's rule: follow at most 5 redirects. reqwest drops `Authorization` when the host changes.
const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static RUNTIME: Lazy<Result<tokio::runtime::Runtime, String>> = Lazy::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mgka-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the MgKeepAlive runtime: {e}"))
});

static CLIENT: Lazy<Result<reqwest::Client, String>> = Lazy::new(|| {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .use_rustls_tls()
        .https_only(false) // plain http is allowed only to loopback; checked per endpoint
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("more than 5 redirects")
            } else if attempt.url().scheme() != "https" && !is_loopback(attempt.url()) {
                attempt.error("refused a redirect to plain http")
            } else {
                attempt.follow()
            }
        }))
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| format!("cannot create the HTTP client: {e}"))
});

pub fn runtime() -> Result<&'static tokio::runtime::Runtime, CoreError> {
    RUNTIME.as_ref().map_err(|e| CoreError::Transport { call_id: None, message: e.clone() })
}

pub fn http_client() -> Result<&'static reqwest::Client, CoreError> {
    CLIENT.as_ref().map_err(|e| CoreError::Transport { call_id: None, message: e.clone() })
}
