//! Client assertions: a JWT signed with the app certificate's private key (graph-facts §5).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Secret;
use crate::error::CoreError;

/// Assertions live at most this long (Entra ID accepts up to 10 minutes).
const ASSERTION_LIFETIME_SECS: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SignatureAlgorithm {
    /// RSASSA-PSS with SHA-256, certificate named by `x5t#S256` (the default).
    #[default]
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, certificate named by `x5t` (SHA-1), for older setups.
    RS256,
}

impl SignatureAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::PS256 => "PS256",
            SignatureAlgorithm::RS256 => "RS256",
        }
    }
}

/// An app certificate: the DER certificate (and chain) and its RSA private key.
pub struct CertificateCredential {
    certificate_der: Vec<u8>,
    chain_der: Vec<Vec<u8>>,
    send_chain: bool,
    algorithm: SignatureAlgorithm,
    /// Zeroed on drop (the rsa crate zeroizes its key material).
    key: RsaPrivateKey,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("thumbprint", &self.thumbprint())
            .field("algorithm", &self.algorithm)
            .field("send_chain", &self.send_chain)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl CertificateCredential {
    /// `key_pkcs8_der` is consumed and zeroed.
    pub fn new(
        certificate_der: Vec<u8>,
        chain_der: Vec<Vec<u8>>,
        send_chain: bool,
        algorithm: SignatureAlgorithm,
        key_pkcs8_der: Zeroizing<Vec<u8>>,
    ) -> Result<Self, CoreError> {
        if certificate_der.is_empty() {
            return Err(CoreError::invalid("Certificate", "The certificate is empty."));
        }
        let key = RsaPrivateKey::from_pkcs8_der(&key_pkcs8_der).map_err(|_| {
            CoreError::invalid(
                "Certificate",
                "The certificate's private key is not an RSA key in PKCS#8 form; app certificates for Microsoft Entra ID must be RSA.",
            )
        })?;
        Ok(CertificateCredential { certificate_der, chain_der, send_chain, algorithm, key })
    }

    /// Upper-case hex SHA-1 of the certificate, as Windows and `Get-MgContext` show it.
    pub fn thumbprint(&self) -> String {
        Sha1::digest(&self.certificate_der).iter().map(|b| format!("{b:02X}")).collect()
    }

    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    pub fn send_chain(&self) -> bool {
        self.send_chain
    }

    /// A fresh assertion for `token_url`: `aud` = that exact URL, `iss` = `sub` = client id,
    /// a new `jti`, `nbf` = now, `exp` = now + 10 min. A bearer credential for 10 minutes: the
    /// signature and the assertion are built in buffers that are zeroed.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> Result<Secret, CoreError> {
        let mut header = serde_json::json!({ "alg": self.algorithm.as_str(), "typ": "JWT" });
        match self.algorithm {
            SignatureAlgorithm::PS256 => header["x5t#S256"] = URL_SAFE_NO_PAD.encode(Sha256::digest(&self.certificate_der)).into(),
            SignatureAlgorithm::RS256 => header["x5t"] = URL_SAFE_NO_PAD.encode(Sha1::digest(&self.certificate_der)).into(),
        }
        if self.send_chain {
            let chain: Vec<String> =
                std::iter::once(&self.certificate_der).chain(&self.chain_der).map(|der| STANDARD.encode(der)).collect();
            header["x5c"] = chain.into();
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let claims = serde_json::json!({
            "aud": token_url, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now, "iat": now, "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match self.algorithm {
            SignatureAlgorithm::PS256 => rsa::pss::BlindedSigningKey::<Sha256>::new(self.key.clone())
                .try_sign_with_rng(&mut rsa::rand_core::OsRng, signing_input.as_bytes())
                .map(|s| s.to_vec()),
            SignatureAlgorithm::RS256 => {
                rsa::pkcs1v15::SigningKey::<Sha256>::new(self.key.clone()).try_sign(signing_input.as_bytes()).map(|s| s.to_vec())
            }
        }
        .map(Zeroizing::new)
        .map_err(|e| CoreError::invalid("Certificate", format!("Cannot sign the client assertion with the certificate's key: {e}.")))?;
        let signature = Zeroizing::new(URL_SAFE_NO_PAD.encode(&*signature));
        let mut assertion = String::with_capacity(signing_input.len() + 1 + signature.len());
        assertion.push_str(&signing_input);
        assertion.push('.');
        assertion.push_str(&signature);
        Ok(Secret::new(assertion))
    }
}
