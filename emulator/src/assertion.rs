//! Client certificates and JWT client assertions (`client_assertion`) for the token endpoint.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

/// The only accepted `client_assertion_type`.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Allowed clock skew for `nbf` and the maximum lifetime (seconds).
const SKEW_SECS: f64 = 300.0;
/// Longest accepted assertion lifetime (`exp - nbf`, and `exp - now`), seconds.
const MAX_LIFETIME_SECS: f64 = 600.0;

/// A registered client certificate: its DER, thumbprints and RSA public key.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    pub der: Vec<u8>,
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    key: RsaPublicKey,
}

impl CertInfo {
    /// Parses a DER X.509 certificate with an RSA public key.
    pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| format!("not a DER X.509 certificate: {e}"))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| format!("cannot encode the certificate's public key: {e}"))?;
        let key = RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| format!("the certificate's public key is not an RSA key: {e}"))?;
        Ok(CertInfo {
            der: der.to_vec(),
            sha1: Sha1::digest(der).into(),
            sha256: Sha256::digest(der).into(),
            key,
        })
    }

    /// Upper-case hex SHA-1 thumbprint (as shown in the Azure portal).
    pub fn thumbprint_hex(&self) -> String {
        hex_upper(&self.sha1)
    }

    fn verify(&self, alg: Alg, signing_input: &[u8], signature: &[u8]) -> bool {
        let digest = Sha256::digest(signing_input);
        match alg {
            Alg::Rs256 => self
                .key
                .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                .is_ok(),
            Alg::Ps256 => {
                // Salt length 32 (the digest length: what .NET, MSAL and most clients use), and
                // the other common choices (maximum as OpenSSL's default, 0, 20, 48, 64).
                let k = rsa::traits::PublicKeyParts::size(&self.key);
                let max = k.saturating_sub(32 + 2);
                [32usize, max, 0, 20, 48, 64].iter().any(|&salt| {
                    self.key
                        .verify(Pss::new_with_salt::<Sha256>(salt), &digest, signature)
                        .is_ok()
                })
            }
        }
    }
}

/// Decodes a certificate given as base64 DER (standard alphabet, padding optional, whitespace
/// ignored) or as PEM (`-----BEGIN CERTIFICATE-----`).
pub(crate) fn decode_certificate_text(text: &str) -> Result<Vec<u8>, String> {
    let body: String = if text.contains("-----BEGIN") {
        text.lines()
            .skip_while(|l| !l.contains("-----BEGIN CERTIFICATE-----"))
            .skip(1)
            .take_while(|l| !l.contains("-----END"))
            .collect()
    } else {
        text.to_string()
    };
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let trimmed = compact.trim_end_matches('=');
    if trimmed.is_empty() {
        return Err("the certificate is empty".into());
    }
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| "the certificate is not valid base64 (DER) or PEM".into())
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Ps256,
    Rs256,
}

/// What the request log records about a client assertion (never the signature).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoggedAssertion {
    pub alg: Option<String>,
    pub x5t: Option<String>,
    #[serde(rename = "x5tS256")]
    pub x5t_s256: Option<String>,
    /// Number of certificates in the header's `x5c` (None when the header has no `x5c`).
    pub x5c_length: Option<usize>,
    pub aud: Option<Value>,
    pub iss: Option<Value>,
    pub sub: Option<Value>,
    pub jti: Option<Value>,
    pub nbf: Option<Value>,
    pub exp: Option<Value>,
}

/// A rejected assertion: HTTP status, OAuth `error`, AADSTS code and description.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

fn malformed(reason: &str) -> Failure {
    Failure {
        status: 400,
        error: "invalid_request",
        code: 50027,
        description: format!("JWT token is invalid or malformed. {reason}"),
    }
}

fn invalid_client(code: u32, description: String) -> Failure {
    Failure {
        status: 401,
        error: "invalid_client",
        code,
        description,
    }
}

fn b64url_json(part: &str, what: &str) -> Result<Map<String, Value>, Failure> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(&format!("The {what} is not base64url without padding.")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(malformed(&format!("The {what} is not a JSON object."))),
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// A time claim: a number, or a string of digits — MSAL.NET sends `"exp":"1714564799"`, and
/// Entra ID accepts it.
fn num_field(m: &Map<String, Value>, k: &str) -> Result<Option<f64>, Failure> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .or_else(|| {
                v.as_str()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse().ok())
            })
            .map(Some)
            .ok_or_else(|| {
                malformed(&format!(
                    "The '{k}' claim must be a number (seconds since 1970)."
                ))
            }),
    }
}

fn iso(secs: f64) -> String {
    crate::timefmt::rfc3339(UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0)))
}

/// The checked parts of a valid assertion (for replay bookkeeping).
#[derive(Debug)]
pub(crate) struct Accepted {
    pub jti: String,
    pub exp: f64,
}

/// Verifies a client assertion for `client_id` against the app's certificates. `log` receives
/// the logged view as soon as header and claims parse. The replay check (jti) is the caller's.
pub(crate) fn verify(
    assertion: &str,
    client_id: &str,
    expected_aud: &str,
    certs: &[std::sync::Arc<CertInfo>],
    log: &mut Option<LoggedAssertion>,
) -> Result<Accepted, Failure> {
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed(
            "A compact JWS has three base64url parts separated by dots.",
        ));
    }
    let header = b64url_json(parts[0], "JWT header")?;
    let claims = b64url_json(parts[1], "JWT payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| malformed("The signature is not base64url without padding."))?;

    let x5c = header.get("x5c");
    *log = Some(LoggedAssertion {
        alg: str_field(&header, "alg").map(str::to_string),
        x5t: str_field(&header, "x5t").map(str::to_string),
        x5t_s256: str_field(&header, "x5t#S256").map(str::to_string),
        x5c_length: x5c.map(|v| v.as_array().map_or(0, Vec::len)),
        aud: claims.get("aud").cloned(),
        iss: claims.get("iss").cloned(),
        sub: claims.get("sub").cloned(),
        jti: claims.get("jti").cloned(),
        nbf: claims.get("nbf").cloned(),
        exp: claims.get("exp").cloned(),
    });

    if signature.is_empty() {
        return Err(malformed("The JWT has no signature."));
    }
    let (alg, thumb_name) = match str_field(&header, "alg") {
        Some("PS256") => (Alg::Ps256, "x5t#S256"),
        Some("RS256") => (Alg::Rs256, "x5t"),
        Some(other) => {
            return Err(malformed(&format!(
                "Unsupported signing algorithm '{other}': use PS256 (with x5t#S256) or RS256 (with x5t)."
            )))
        }
        None => return Err(malformed("The JWT header has no 'alg'.")),
    };
    let Some(thumb) = str_field(&header, thumb_name) else {
        return Err(malformed(&format!(
            "The JWT header must contain '{thumb_name}' for {}.",
            if alg == Alg::Ps256 { "PS256" } else { "RS256" }
        )));
    };
    let thumb_bytes = URL_SAFE_NO_PAD
        .decode(thumb.trim_end_matches('='))
        .unwrap_or_default();
    let cert = certs.iter().find(|c| match alg {
        Alg::Ps256 => c.sha256.as_slice() == thumb_bytes.as_slice(),
        Alg::Rs256 => c.sha1.as_slice() == thumb_bytes.as_slice(),
    });
    let Some(cert) = cert else {
        return Err(invalid_client(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. The certificate with identifier '{thumb}' ({thumb_name}) is not registered for this app.]",
                hex_upper(&thumb_bytes)
            ),
        ));
    };

    if let Some(x5c) = x5c {
        let first = x5c
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .ok_or_else(|| {
                malformed("'x5c' must be a non-empty array of base64 DER certificates.")
            })?;
        let all_valid = x5c.as_array().is_some_and(|a| {
            a.iter()
                .all(|v| v.as_str().is_some_and(|s| STANDARD.decode(s).is_ok()))
        });
        if !all_valid {
            return Err(malformed(
                "'x5c' must contain standard base64 (with padding) DER certificates.",
            ));
        }
        if STANDARD.decode(first).ok().as_deref() != Some(cert.der.as_slice()) {
            return Err(invalid_client(
                700027,
                format!("Client assertion failed signature validation. [Reason - The first certificate in 'x5c' is not the certificate identified by '{thumb_name}' ('{}').]", cert.thumbprint_hex()),
            ));
        }
    }

    let signing_input = &assertion[..parts[0].len() + 1 + parts[1].len()];
    if !cert.verify(alg, signing_input.as_bytes(), &signature) {
        return Err(invalid_client(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{}', Found key 'Start=, End=']",
                cert.thumbprint_hex()
            ),
        ));
    }

    // Claims.
    let iss = str_field(&claims, "iss");
    let sub = str_field(&claims, "sub");
    let same = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case(client_id));
    if !same(iss) || !same(sub) {
        return Err(invalid_client(
            700021,
            format!(
                "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials . (iss '{}', sub '{}', client_id '{client_id}')",
                iss.unwrap_or(""),
                sub.unwrap_or("")
            ),
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(s)) => s == expected_aud,
        Some(Value::Array(a)) => a.len() == 1 && a[0].as_str() == Some(expected_aud),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(
            50012,
            format!(
                "Client assertion audience claim does not match Realm issuer. The 'aud' claim must be the token endpoint '{expected_aud}'; got {}.",
                claims.get("aud").map_or("nothing".to_string(), Value::to_string)
            ),
        ));
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let nbf = num_field(&claims, "nbf")?;
    let Some(exp) = num_field(&claims, "exp")? else {
        return Err(malformed("The JWT has no 'exp' claim."));
    };
    let time_error = |why: &str| {
        invalid_client(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. ({why}) Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
                iso(now),
                nbf.map_or("(none)".to_string(), iso),
                iso(exp)
            ),
        )
    };
    if exp <= now {
        return Err(time_error("expired"));
    }
    if let Some(nbf) = nbf {
        if nbf > now + SKEW_SECS {
            return Err(time_error("not yet valid"));
        }
        if exp - nbf > MAX_LIFETIME_SECS {
            return Err(time_error("lifetime longer than 10 minutes"));
        }
    }
    if exp > now + MAX_LIFETIME_SECS + SKEW_SECS {
        return Err(time_error("expires more than 10 minutes from now"));
    }

    let jti = match claims.get("jti") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(malformed("The JWT has no 'jti' claim.")),
    };
    Ok(Accepted { jti, exp })
}

/// The error for a replayed `jti` (an emulator choice; see README).
pub(crate) fn replayed(jti: &str) -> Failure {
    invalid_client(
        7000277,
        format!("Client assertion replay detected: the 'jti' claim '{jti}' was already used. Every assertion needs a fresh jti."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_text_forms() {
        let der = vec![0x30u8, 0x03, 0x02, 0x01, 0x05];
        let b64 = STANDARD.encode(&der);
        assert_eq!(decode_certificate_text(&b64).unwrap(), der);
        assert_eq!(
            decode_certificate_text(b64.trim_end_matches('=')).unwrap(),
            der
        );
        let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        assert_eq!(decode_certificate_text(&pem).unwrap(), der);
        assert!(decode_certificate_text("!!").is_err());
        assert!(CertInfo::parse(&der).is_err());
    }

    #[test]
    fn malformed_assertions() {
        let mut log = None;
        for bad in ["", "a.b", "a.b.c", "e30.e30.", "e30.e30.c2ln"] {
            let e = verify(bad, "c", "aud", &[], &mut log).unwrap_err();
            assert_eq!((e.status, e.code), (400, 50027), "{bad}");
        }
    }
}
