use std::fmt;

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
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
