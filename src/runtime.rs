//! The library's one tokio runtime and its HTTP clients, created on first use and shared by every
//! caller in the process (every PowerShell runspace), so connections are pooled. reqwest binds
//! proxies and the redirect policy to a client, so each distinct proxy setting gets one client
//! for Graph and one for token requests (which follow no redirect), kept for reuse.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use once_cell::sync::Lazy;
use serde::Deserialize;

use crate::auth::Secret;
use crate::environment::is_loopback;
use crate::error::CoreError;
use crate::redact;

/// `User-Agent` of every request: names the product and its version.
pub const USER_AGENT: &str = concat!("MgKeepAlive/", env!("CARGO_PKG_VERSION"));

/// Graph's rule: follow at most 5 redirects. reqwest drops `Authorization` when the host changes.
const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct proxy settings kept at once; more are unusual, and the cache starts over.
const MAX_CLIENTS: usize = 16;

static RUNTIME: Lazy<Result<tokio::runtime::Runtime, String>> = Lazy::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mgka-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the MgKeepAlive runtime: {e}"))
});

/// `-Proxy`, `-ProxyCredential`: every request goes through this proxy. The URL is a [`Secret`]
/// too: it may carry a user name and password (`http://alice:pw@proxy:3128`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExplicitProxy {
    pub url: Secret,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` as the host process sees them (on Linux and macOS the
/// library's own environment does not follow PowerShell's `$env:` changes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentProxy {
    #[serde(default)]
    pub https_proxy: Option<Secret>,
    #[serde(default)]
    pub http_proxy: Option<Secret>,
    #[serde(default)]
    pub no_proxy: Option<String>,
}

/// Which proxy a request uses. Default: the proxy variables of the library's own environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProxySettings {
    explicit: Option<ExplicitProxy>,
    environment: Option<EnvironmentProxy>,
}

impl ProxySettings {
    pub fn new(explicit: Option<ExplicitProxy>, environment: Option<EnvironmentProxy>) -> Result<Self, CoreError> {
        let settings = ProxySettings { explicit, environment };
        settings.proxies()?;
        Ok(settings)
    }

    fn proxies(&self) -> Result<Option<Vec<reqwest::Proxy>>, CoreError> {
        // A proxy URL is shown only without its user info: it may hold a password.
        let invalid = |url: &str, e: reqwest::Error| {
            CoreError::invalid("Proxy", format!("The proxy '{}' is not usable: {}.", redact::url(url), redact::reqwest_error(e)))
        };
        let check = |url: &str| -> Result<(), CoreError> {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| CoreError::invalid("Proxy", format!("The proxy '{}' is not a URL: {e}.", redact::url(url))))?;
            match parsed.scheme() {
                "http" | "https" => Ok(()),
                // The scheme is not echoed on its own: in `alice:pw@host` it is the user name.
                _ => Err(CoreError::invalid(
                    "Proxy",
                    format!("The proxy '{}' does not use http:// or https://; only HTTP proxies are supported.", redact::url(url)),
                )),
            }
        };
        if let Some(explicit) = &self.explicit {
            let url = explicit.url.expose();
            check(url)?;
            let mut proxy = reqwest::Proxy::all(url).map_err(|e| invalid(url, e))?;
            if let Some(user) = &explicit.username {
                proxy = proxy.basic_auth(user, explicit.password.as_ref().map_or("", Secret::expose));
            }
            return Ok(Some(vec![proxy]));
        }
        let Some(env) = &self.environment else { return Ok(None) };
        let no_proxy = env.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
        let mut proxies = Vec::new();
        for (url, https) in [(&env.https_proxy, true), (&env.http_proxy, false)] {
            if let Some(url) = url.as_ref().map(Secret::expose).filter(|u| !u.trim().is_empty()) {
                check(url)?;
                let proxy = if https { reqwest::Proxy::https(url) } else { reqwest::Proxy::http(url) };
                proxies.push(proxy.map_err(|e| invalid(url, e))?.no_proxy(no_proxy.clone()));
            }
        }
        Ok(Some(proxies))
    }
}

/// What a client is for: its redirect policy. reqwest sets the policy per client, not per
/// request, hence a second client (per proxy setting) rather than one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Graph requests: up to 5 redirects, as Graph's SDKs follow them; reqwest drops
    /// `Authorization` (and `Proxy-Authorization`, cookies) when a redirect changes the host.
    Graph,
    /// Token and managed identity requests: no redirect is followed. A redirect would re-send the
    /// client secret or assertion (307/308 keep the body) or `X-IDENTITY-HEADER` to its target,
    /// which reqwest does not strip; the redirect answer becomes the request's error instead.
    Token,
}

static CLIENTS: Lazy<Mutex<HashMap<(ProxySettings, Purpose), reqwest::Client>>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn build_client(settings: &ProxySettings, purpose: Purpose) -> Result<reqwest::Client, CoreError> {
    let redirect = match purpose {
        Purpose::Graph => reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("more than 5 redirects")
            } else if attempt.url().scheme() != "https" && !is_loopback(attempt.url()) {
                attempt.error("refused a redirect to plain http")
            } else {
                attempt.follow()
            }
        }),
        Purpose::Token => reqwest::redirect::Policy::none(),
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .use_rustls_tls()
        .https_only(false) // plain http is allowed only to loopback; checked per endpoint
        .redirect(redirect)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90));
    if let Some(proxies) = settings.proxies()? {
        builder = builder.no_proxy();
        for proxy in proxies {
            builder = builder.proxy(proxy);
        }
    }
    builder.build().map_err(|e| CoreError::transport(None, format!("cannot create the HTTP client: {}", redact::reqwest_error(e))))
}

pub fn runtime() -> Result<&'static tokio::runtime::Runtime, CoreError> {
    RUNTIME.as_ref().map_err(|e| CoreError::transport(None, e.clone()))
}

/// The Graph client for `settings` (one per distinct proxy setting, pooled connections).
pub fn http_client_for(settings: &ProxySettings) -> Result<reqwest::Client, CoreError> {
    client(settings, Purpose::Graph)
}

/// The client for `purpose` and `settings`. The cache keeps each setting (a proxy password
/// included, zeroed when its entry goes) as long as its client.
pub fn client(settings: &ProxySettings, purpose: Purpose) -> Result<reqwest::Client, CoreError> {
    let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    let key = (settings.clone(), purpose);
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    if clients.len() >= MAX_CLIENTS {
        clients.clear();
    }
    let client = build_client(settings, purpose)?;
    clients.insert(key, client.clone());
    Ok(client)
}

/// The Graph client without an explicit proxy.
pub fn http_client() -> Result<reqwest::Client, CoreError> {
    http_client_for(&ProxySettings::default())
}
