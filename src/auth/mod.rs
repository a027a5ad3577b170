//! Credentials and the access tokens they yield, acquired and renewed here in the core.
//!
//! A session holds one [`Credential`] and one [`TokenCache`]; the Graph client only ever asks the
//! session for a bearer token ([`TokenSource::token`]) and, after a 401, for a renewed one.

mod assertion;
mod claims;
mod secret;
mod token_cache;
mod token_request;

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

pub use assertion::{CertificateCredential, SignatureAlgorithm};
pub use claims::TokenClaims;
pub use secret::Secret;
pub use token_cache::{AccessToken, TokenCache, RENEWAL_MARGIN};
pub use token_request::token_url;

use crate::environment::Environment;
use crate::error::CoreError;
use crate::runtime::ProxySettings;

/// The VM instance metadata service: link-local, never leaves the host.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";

#[derive(Debug)]
pub enum Credential {
    /// `Connect-MgGraph -AccessToken`: used as given, never renewed; with its claims when it is
    /// a JWT (what the context shows of it).
    AccessToken(Secret, Option<TokenClaims>),
    /// An app registration's client secret.
    ClientSecret { tenant_id: String, client_id: String, secret: Secret },
    /// An app registration's certificate: a signed client assertion per token request.
    ClientCertificate { tenant_id: String, client_id: String, certificate: CertificateCredential },
    /// The Azure resource's managed identity; `client_id` picks a user-assigned one.
    ManagedIdentity(ManagedIdentity),
}

#[derive(Debug)]
pub enum ManagedIdentity {
    /// App Service / Functions / Container Apps: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`.
    AppService { endpoint: String, header: Secret, client_id: Option<String> },
    /// Virtual machines: the instance metadata service.
    Imds { endpoint: String, client_id: Option<String> },
}

impl Credential {
    /// A caller-supplied access token. Rejects what cannot be a bearer token, before any request.
    pub fn access_token(token: Secret) -> Result<Self, CoreError> {
        let t = token.expose();
        if t.trim().is_empty() {
            return Err(CoreError::invalid("AccessToken", "The access token is empty."));
        }
        if t.chars().any(|c| c.is_control() || c == ' ') {
            return Err(CoreError::invalid(
                "AccessToken",
                "The access token contains spaces or control characters; pass the token itself, without 'Bearer '.",
            ));
        }
        let claims = TokenClaims::from_token(t);
        Ok(Credential::AccessToken(token, claims))
    }

    /// Whether a token can be acquired again (after expiry or a 401).
    pub fn renewable(&self) -> bool {
        !matches!(self, Credential::AccessToken(..))
    }

    /// `Get-MgContext`'s AuthType.
    pub fn auth_type(&self) -> &'static str {
        match self {
            Credential::AccessToken(..) => "UserProvidedAccessToken",
            Credential::ClientSecret { .. } | Credential::ClientCertificate { .. } => "AppOnly",
            Credential::ManagedIdentity(_) => "ManagedIdentity",
        }
    }

    /// `Get-MgContext`'s TokenCredentialType.
    pub fn token_credential_type(&self) -> &'static str {
        match self {
            Credential::AccessToken(..) => "UserProvidedAccessToken",
            Credential::ClientSecret { .. } => "ClientSecret",
            Credential::ClientCertificate { .. } => "ClientCertificate",
            Credential::ManagedIdentity(_) => "ManagedIdentity",
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Credential::AccessToken(..) => None,
            Credential::ClientSecret { client_id, .. } | Credential::ClientCertificate { client_id, .. } => Some(client_id),
            Credential::ManagedIdentity(ManagedIdentity::AppService { client_id, .. } | ManagedIdentity::Imds { client_id, .. }) => {
                client_id.as_deref()
            }
        }
    }

    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Credential::ClientSecret { tenant_id, .. } | Credential::ClientCertificate { tenant_id, .. } => Some(tenant_id),
            _ => None,
        }
    }

    /// The claims of a `-AccessToken` JWT; `None` for other credentials and for a token that is
    /// not a JWT.
    pub fn token_claims(&self) -> Option<&TokenClaims> {
        match self {
            Credential::AccessToken(_, claims) => claims.as_ref(),
            _ => None,
        }
    }

    pub fn certificate(&self) -> Option<&CertificateCredential> {
        match self {
            Credential::ClientCertificate { certificate, .. } => Some(certificate),
            _ => None,
        }
    }

    /// Acquires a new token for Graph in `environment`.
    pub async fn acquire(&self, environment: &Environment, proxy: &ProxySettings, timeout: Duration) -> Result<AccessToken, CoreError> {
        let scope = format!("{}/.default", environment.graph_endpoint);
        match self {
            Credential::AccessToken(token, _) => Ok(AccessToken::new(token.clone(), Duration::MAX / 4, None)),
            Credential::ClientSecret { tenant_id, client_id, secret } => {
                let url = token_url(&environment.azure_ad_endpoint, tenant_id);
                token_request::client_credentials(&url, client_id, &scope, &[("client_secret", secret.expose())], proxy, timeout).await
            }
            Credential::ClientCertificate { tenant_id, client_id, certificate } => {
                let url = token_url(&environment.azure_ad_endpoint, tenant_id);
                let assertion = certificate.assertion(client_id, &url)?;
                let form = [
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", assertion.expose()),
                ];
                token_request::client_credentials(&url, client_id, &scope, &form, proxy, timeout).await
            }
            Credential::ManagedIdentity(identity) => {
                let resource = environment.graph_endpoint.as_str();
                let (base, api_version, header, client_id) = match identity {
                    ManagedIdentity::AppService { endpoint, header, client_id } => (
                        endpoint.clone(),
                        "2019-08-01",
                        (HeaderName::from_static("x-identity-header"), header.header_value("", "IDENTITY_HEADER")?),
                        client_id,
                    ),
                    ManagedIdentity::Imds { endpoint, client_id } => (
                        format!("{}/metadata/identity/oauth2/token", endpoint.trim_end_matches('/')),
                        "2018-02-01",
                        (HeaderName::from_static("metadata"), HeaderValue::from_static("true")),
                        client_id,
                    ),
                };
                let mut url = reqwest::Url::parse(&base).map_err(|e| {
                    CoreError::invalid("Identity", format!("The managed identity endpoint '{}' is not a URL: {e}.", crate::redact::url(&base)))
                })?;
                url.query_pairs_mut().append_pair("api-version", api_version).append_pair("resource", resource);
                if let Some(id) = client_id {
                    url.query_pairs_mut().append_pair("client_id", id);
                }
                token_request::managed_identity(url, header, proxy, timeout).await
            }
        }
    }
}

/// A credential with its token cache: what a session asks for bearer tokens.
#[derive(Debug)]
pub struct TokenSource {
    pub credential: Credential,
    /// How token requests reach the identity platform (the connect-time proxy settings).
    proxy: ProxySettings,
    cache: TokenCache,
}

impl TokenSource {
    pub fn new(credential: Credential) -> Self {
        Self::with_proxy(credential, ProxySettings::default())
    }

    pub fn with_proxy(credential: Credential, proxy: ProxySettings) -> Self {
        TokenSource { credential, proxy, cache: TokenCache::default() }
    }

    /// A valid token: the cached one unless it is due for renewal. One renewal at a time: callers
    /// that find a renewal under way wait for it and use its token.
    pub async fn token(&self, environment: &Environment, timeout: Duration) -> Result<Secret, CoreError> {
        if let Some(token) = self.cache.current().filter(|t| !t.is_due()) {
            return Ok(token.secret);
        }
        self.renew(environment, timeout, None).await
    }

    /// After Graph refused `rejected` with 401: renews once, unless another caller already did.
    /// `None` when the credential cannot be renewed (a user-provided access token).
    pub async fn renew_after_rejection(
        &self,
        environment: &Environment,
        timeout: Duration,
        rejected: &Secret,
    ) -> Option<Result<Secret, CoreError>> {
        if !self.credential.renewable() {
            return None;
        }
        Some(self.renew(environment, timeout, Some(rejected)).await)
    }

    async fn renew(&self, environment: &Environment, timeout: Duration, rejected: Option<&Secret>) -> Result<Secret, CoreError> {
        let waited_since = std::time::Instant::now();
        let _one_at_a_time = self.cache.renewal_lock().lock().await;
        if let Some(token) = self.cache.current() {
            // A renewal finished while we waited for the lock: use its token.
            let renewed_meanwhile = token.acquired_at >= waited_since;
            let still_good = !token.is_due() && Some(&token.secret) != rejected;
            if renewed_meanwhile || still_good {
                return Ok(token.secret);
            }
        }
        let token = self.credential.acquire(environment, &self.proxy, timeout).await?;
        let secret = token.secret.clone();
        self.cache.store(token);
        Ok(secret)
    }

    /// Forgets the cached token (its secret is zeroed).
    pub fn clear(&self) {
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("eyJ0eXAiOi.secret".into());
        assert!(!format!("{s:?}").contains("secret"));
        let c = Credential::access_token(s).unwrap();
        assert!(!format!("{c:?}").contains("eyJ"));
        let c = Credential::ClientSecret { tenant_id: "t".into(), client_id: "c".into(), secret: Secret::new("hunter2".into()) };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn rejects_what_cannot_be_a_token() {
        assert!(Credential::access_token(Secret::new("  ".into())).is_err());
        assert!(Credential::access_token(Secret::new("Bearer abc".into())).is_err());
        assert!(Credential::access_token(Secret::new("a\nb".into())).is_err());
        assert!(Secret::from_utf8(zeroize::Zeroizing::new(vec![0xff, 0xfe]), "AccessToken").is_err());
    }

    #[test]
    fn tenant_goes_into_one_segment() {
        assert_eq!(token_url("https://login.microsoftonline.com/", "contoso.onmicrosoft.com"), "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
        assert_eq!(token_url("https://l", "a/b"), "https://l/a%2Fb/oauth2/v2.0/token");
    }
}
