//! Credentials and the access tokens they yield.
//!
//! Today a session holds a caller-supplied access token. Client secrets, certificates and managed
//! identities (acquired and renewed here, in the core) are further variants of [`Credential`]; the
//! Graph client only ever asks a credential for a bearer token.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::CoreError;

/// A secret held in memory only as long as the session lives, zeroed on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// Takes the secret out of a byte buffer, zeroing the buffer whatever happens.
    pub fn from_utf8(mut bytes: Zeroizing<Vec<u8>>) -> Result<Self, CoreError> {
        let taken = std::mem::take(&mut *bytes);
        match String::from_utf8(taken) {
            Ok(s) => Ok(Secret::new(s)),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                Err(CoreError::invalid("AccessToken", "The access token is not valid UTF-8."))
            }
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// `Connect-MgGraph -AccessToken`: used as given, never renewed.
    AccessToken(Secret),
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
        Ok(Credential::AccessToken(token))
    }

    /// The token to send as `Authorization: Bearer`.
    pub async fn bearer_token(&self) -> Result<Secret, CoreError> {
        match self {
            Credential::AccessToken(token) => Ok(token.clone()),
        }
    }

    /// `Get-MgContext`'s AuthType.
    pub fn auth_type(&self) -> &'static str {
        match self {
            Credential::AccessToken(_) => "UserProvidedAccessToken",
        }
    }

    /// `Get-MgContext`'s TokenCredentialType.
    pub fn token_credential_type(&self) -> &'static str {
        match self {
            Credential::AccessToken(_) => "UserProvidedAccessToken",
        }
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
    }

    #[test]
    fn rejects_what_cannot_be_a_token() {
        assert!(Credential::access_token(Secret::new("  ".into())).is_err());
        assert!(Credential::access_token(Secret::new("Bearer abc".into())).is_err());
        assert!(Credential::access_token(Secret::new("a\nb".into())).is_err());
        assert!(Secret::from_utf8(Zeroizing::new(vec![0xff, 0xfe])).is_err());
    }
}
