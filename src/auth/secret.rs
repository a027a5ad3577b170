use std::fmt;
use std::hash::{Hash, Hasher};

use reqwest::header::HeaderValue;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::error::CoreError;

/// A secret held in memory only as long as needed, zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// Takes the secret out of a byte buffer, zeroing the buffer whatever happens.
    pub fn from_utf8(mut bytes: Zeroizing<Vec<u8>>, parameter: &'static str) -> Result<Self, CoreError> {
        let taken = std::mem::take(&mut *bytes);
        match String::from_utf8(taken) {
            Ok(s) => Ok(Secret::new(s)),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                Err(CoreError::invalid(parameter, format!("The {parameter} is not valid UTF-8.")))
            }
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `{prefix}{secret}` as a sensitive header value (`Bearer {token}`, `X-IDENTITY-HEADER`)
    /// whose bytes live in a zeroizing buffer: reqwest holds it without copying, and it is zeroed
    /// when the request that carries it is dropped. `parameter` names the secret in the error.
    pub fn header_value(&self, prefix: &str, parameter: &'static str) -> Result<HeaderValue, CoreError> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(prefix.len() + self.0.len()));
        bytes.extend_from_slice(prefix.as_bytes());
        bytes.extend_from_slice(self.0.as_bytes());
        let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(bytes))
            .map_err(|_| CoreError::invalid(parameter, format!("The {parameter} contains characters HTTP does not allow.")))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Hash for Secret {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state);
    }
}

/// A secret inside request JSON (a proxy password or proxy URL): taken as one string, which
/// serde_json allocates once, at its exact size, from the text it parses.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}
