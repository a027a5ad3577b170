//! The process-wide connection: one environment and one credential (with its token cache), shared
//! by every runspace.
//!
//! The session is swapped atomically behind an `Arc`: a keep-alive in flight keeps the session it
//! started with, so `Disconnect-MgGraph` in one runspace never tears down another's request.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use once_cell::sync::Lazy;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::{CertificateCredential, Credential, ManagedIdentity, Secret, SignatureAlgorithm, TokenSource, IMDS_ENDPOINT};
use crate::environment::{self, Cloud, Environment, DEFAULT_ENVIRONMENT};
use crate::error::CoreError;
use crate::runtime::{EnvironmentProxy, ExplicitProxy, ProxySettings};

#[derive(Debug)]
pub struct Session {
    pub environment: Environment,
    pub tokens: TokenSource,
}

/// What `Get-MgContext` shows. Never contains a secret.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub scopes: Vec<String>,
    pub auth_type: String,
    pub token_credential_type: String,
    pub certificate_thumbprint: Option<String>,
    pub send_certificate_chain: bool,
    pub signature_algorithm: Option<&'static str>,
    pub managed_identity_id: Option<String>,
    pub environment: String,
    /// The cloud of the environment's Graph endpoint.
    pub cloud: Cloud,
    pub context_scope: String,
    /// `MgKeepAlive`; for `-AccessToken`, the token's `app_displayname` claim (`null` when the
    /// token is not a JWT).
    pub app_name: Option<String>,
}

/// How to connect. The secret (token, client secret, PKCS#8 key or identity header) travels
/// separately, never inside JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectRequest {
    pub auth_type: AuthKind,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub certificate: Option<CertificateRequest>,
    #[serde(default)]
    pub managed_identity: Option<ManagedIdentityRequest>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Proxy for token requests, as for keep-alives: explicit, else the host's proxy variables.
    #[serde(default)]
    pub proxy: Option<ExplicitProxy>,
    #[serde(default)]
    pub environment_proxy: Option<EnvironmentProxy>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    AccessToken,
    ClientSecret,
    ClientCertificate,
    ManagedIdentity,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateRequest {
    /// Base64 DER of the leaf certificate.
    pub der: String,
    #[serde(default)]
    pub chain: Vec<String>,
    #[serde(default)]
    pub send_chain: bool,
    #[serde(default)]
    pub algorithm: SignatureAlgorithm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedIdentityRequest {
    #[serde(default)]
    pub identity_endpoint: Option<String>,
    #[serde(default)]
    pub imds_endpoint: Option<String>,
}

static CURRENT: Lazy<RwLock<Option<Arc<Session>>>> = Lazy::new(|| RwLock::new(None));

impl Session {
    pub fn context(&self) -> Context {
        let credential = &self.tokens.credential;
        let certificate = credential.certificate();
        let managed = matches!(credential, Credential::ManagedIdentity(_));
        let claims = credential.token_claims();
        let from_token = matches!(credential, Credential::AccessToken(..));
        Context {
            // A JWT access token: what its claims say, as Microsoft's context shows it.
            client_id: if managed { None } else { claims.map_or(credential.client_id(), |c| c.client_id.as_deref()).map(str::to_owned) },
            tenant_id: claims.map_or(credential.tenant_id(), |c| c.tenant_id.as_deref()).map(str::to_owned),
            scopes: claims.map_or_else(|| vec![format!("{}/.default", self.environment.graph_endpoint)], |c| c.scopes.clone()),
            auth_type: credential.auth_type().into(),
            token_credential_type: credential.token_credential_type().into(),
            certificate_thumbprint: certificate.map(CertificateCredential::thumbprint),
            send_certificate_chain: certificate.is_some_and(CertificateCredential::send_chain),
            signature_algorithm: certificate.map(|c| c.algorithm().as_str()),
            managed_identity_id: if managed { credential.client_id().map(str::to_owned) } else { None },
            environment: self.environment.name.clone(),
            cloud: self.environment.cloud,
            context_scope: "Process".into(),
            app_name: match claims {
                Some(c) => Some(c.app_name.clone()),
                None if from_token => None,
                None => Some("MgKeepAlive".into()),
            },
        }
    }

    /// A bearer token for Graph, bounded by `timeout`.
    pub async fn token(&self, timeout: Duration) -> Result<Secret, CoreError> {
        self.tokens.token(&self.environment, timeout).await
    }
}

fn required(value: Option<String>, parameter: &'static str, flow: &str) -> Result<String, CoreError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) => Ok(v),
        None => Err(CoreError::invalid(parameter, format!("{flow} sign-in needs -{parameter}."))),
    }
}

/// The tenant id: one clean path segment of the token URL, checked as call ids are. `.` and `..`
/// would move the request out of the authority's path (and away from the assertion's `aud`).
fn tenant_id(value: Option<String>, flow: &str) -> Result<String, CoreError> {
    let tenant = required(value, "TenantId", flow)?;
    crate::graph::validate_segment("TenantId", "tenant id", &tenant).map_err(|e| match e {
        CoreError::InvalidArgument { parameter, message } => CoreError::invalid(
            parameter,
            format!("{message} Give -TenantId as the tenant's id (a GUID) or domain name, such as contoso.onmicrosoft.com."),
        ),
        other => other,
    })?;
    Ok(tenant)
}

/// Accepts https, or http to loopback or (for managed identity) link-local 169.254.0.0/16 only.
fn identity_endpoint(url: &str) -> Result<String, CoreError> {
    let shown = crate::redact::url(url);
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CoreError::invalid("Identity", format!("The managed identity endpoint '{shown}' is not a URL: {e}.")))?;
    let link_local = matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_link_local());
    if parsed.scheme() == "https" || (parsed.scheme() == "http" && (environment::is_loopback(&parsed) || link_local)) {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(CoreError::invalid(
            "Identity",
            format!("The managed identity endpoint '{shown}' must be https, or http on the local machine (loopback or 169.254.0.0/16)."),
        ))
    }
}

fn credential(request: ConnectRequest, secret: Zeroizing<Vec<u8>>) -> Result<Credential, CoreError> {
    match request.auth_type {
        AuthKind::AccessToken => Credential::access_token(Secret::from_utf8(secret, "AccessToken")?),
        AuthKind::ClientSecret => {
            let secret = Secret::from_utf8(secret, "ClientSecretCredential")?;
            if secret.expose().is_empty() {
                return Err(CoreError::invalid("ClientSecretCredential", "The client secret is empty."));
            }
            Ok(Credential::ClientSecret {
                tenant_id: tenant_id(request.tenant_id, "Client secret")?,
                client_id: required(request.client_id, "ClientId", "Client secret")?,
                secret,
            })
        }
        AuthKind::ClientCertificate => {
            let tenant_id = tenant_id(request.tenant_id, "Certificate")?;
            let client_id = required(request.client_id, "ClientId", "Certificate")?;
            let cert = request.certificate.ok_or_else(|| CoreError::invalid("Certificate", "Certificate sign-in needs a certificate."))?;
            let decode = |b64: &str| {
                STANDARD.decode(b64.trim()).map_err(|_| CoreError::invalid("Certificate", "The certificate is not valid base64 DER."))
            };
            let chain = cert.chain.iter().map(|c| decode(c)).collect::<Result<Vec<_>, _>>()?;
            let certificate = CertificateCredential::new(decode(&cert.der)?, chain, cert.send_chain, cert.algorithm, secret)?;
            Ok(Credential::ClientCertificate { tenant_id, client_id, certificate })
        }
        AuthKind::ManagedIdentity => {
            let options = request.managed_identity.unwrap_or_default();
            let client_id = request.client_id.filter(|c| !c.trim().is_empty());
            Ok(Credential::ManagedIdentity(match options.identity_endpoint {
                Some(endpoint) => ManagedIdentity::AppService {
                    endpoint: identity_endpoint(&endpoint)?,
                    header: Secret::from_utf8(secret, "IdentityHeader")?,
                    client_id,
                },
                None => ManagedIdentity::Imds {
                    endpoint: identity_endpoint(options.imds_endpoint.as_deref().unwrap_or(IMDS_ENDPOINT))?,
                    client_id,
                },
            }))
        }
    }
}

/// Builds a session from `request` and `secret` (zeroed here whatever happens), acquires its
/// first token — so a wrong secret, app, tenant or cloud fails now, not at the first keep-alive —
/// then makes it the current session and returns its context.
pub async fn connect(request: ConnectRequest, secret: Zeroizing<Vec<u8>>) -> Result<Context, CoreError> {
    let environment = environment::get(request.environment.as_deref().unwrap_or(DEFAULT_ENVIRONMENT))?;
    let timeout = request.timeout_ms.map_or(crate::request_context::get().client_timeout, Duration::from_millis);
    let proxy = ProxySettings::new(request.proxy.clone(), request.environment_proxy.clone())?;
    let session = Arc::new(Session { environment, tokens: TokenSource::with_proxy(credential(request, secret)?, proxy) });
    match tokio::time::timeout(timeout, session.token(timeout)).await {
        Ok(token) => drop(token?),
        Err(_) => return Err(CoreError::timeout(None, timeout)),
    }
    let context = session.context();
    *CURRENT.write().unwrap_or_else(|p| p.into_inner()) = Some(session);
    Ok(context)
}

/// Ends the session; returns the context it closed. Its cached token is zeroed now; the
/// credential's secrets when the last in-flight request holding the session ends. (The keeper,
/// which uses the session, is stopped with it by [`crate::keeper::disconnect`].)
pub fn disconnect() -> Option<Context> {
    let old = CURRENT.write().unwrap_or_else(|p| p.into_inner()).take();
    old.map(|s| {
        s.tokens.clear();
        s.context()
    })
}

/// Removes a user-defined environment unless the current session uses it.
pub fn remove_environment(name: &str) -> Result<Environment, CoreError> {
    let in_use = current().ok().map(|s| s.environment.name.clone());
    environment::remove(name, in_use.as_deref())
}

/// The warning for a keep-alive of `api_version` in the current session's cloud when Microsoft
/// does not document it there, once per process for each cloud and version; else `None` (also
/// when not connected).
pub fn keep_alive_warning(api_version: crate::graph::ApiVersion) -> Option<String> {
    current().ok().and_then(|s| environment::keep_alive_warning_once(s.environment.cloud, api_version))
}

pub fn current() -> Result<Arc<Session>, CoreError> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone().ok_or(CoreError::NotConnected)
}

pub fn context() -> Option<Context> {
    current().ok().map(|s| s.context())
}

/// Keeps many calls alive in the current session (`mgka_keep_alive_bulk_start`): see
/// [`crate::graph::keep_alive_many_in`].
pub async fn keep_alive_many(
    items: Vec<crate::graph::BulkItem>,
    options: crate::graph::KeepAliveOptions,
    concurrency: usize,
) -> crate::operation::Outcome<crate::graph::BulkAnswers> {
    Ok(crate::graph::keep_alive_many_in(current()?, items, options, concurrency).await)
}

/// One keep-alive in the current session. The session is taken once, at the start, so a
/// concurrent disconnect or reconnect does not affect a request already under way.
pub async fn keep_alive(
    call_id: String,
    options: crate::graph::KeepAliveOptions,
) -> crate::operation::Outcome<crate::graph::KeepAliveSuccess> {
    let session = current()?;
    crate::graph::keep_alive(&session, &call_id, &options).await.map_err(|e| e.with_call_id(&call_id))
}
