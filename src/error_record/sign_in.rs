//! The errors of `Connect-MgGraph`'s app-only sign-in that the host finds (a certificate it cannot
//! use, missing `AZURE_*` environment variables): their messages and categories, decided here; the
//! host names the error and gives the facts (error JSON `{"kind":"SignIn","errorId",...}`).

use serde_json::Value;

use super::{text, ExceptionKind};

/// The message, category and exception of the sign-in error `error_id` with the facts in `info`,
/// or None for an error id this library does not know.
pub(super) fn sign_in_error(error_id: &str, info: &serde_json::Map<String, Value>) -> Option<(String, &'static str, ExceptionKind)> {
    let fact = |k: &str| text(info.get(k));
    // A certificate as messages name it.
    let certificate = || format!("'{}' (thumbprint {})", fact("subject"), fact("thumbprint"));
    let argument = |message: String| Some((message, "InvalidArgument", ExceptionKind::Argument));
    match error_id {
        "CertificateNotFound" => {
            let wanted = if info.get("thumbprint").is_some_and(|t| !t.is_null()) {
                format!("thumbprint {}", fact("thumbprint"))
            } else {
                format!("subject name '{}'", fact("subjectName"))
            };
            let message = format!(
                "No certificate with {wanted} was found in the CurrentUser\\My certificate store ({} certificate(s) there). \
                 Import it with its private key, or use -Certificate or -CertificatePath.",
                fact("count")
            );
            Some((message, "ObjectNotFound", ExceptionKind::Argument))
        }
        "CertificateFileNotFound" => {
            Some((format!("The certificate file '{}' ({}) does not exist.", fact("path"), fact("source")), "ObjectNotFound", ExceptionKind::Argument))
        }
        "CertificateFileInvalid" => argument(format!(
            "Cannot read the certificate file '{}' ({}) as a PFX or PEM certificate with its private key: {}",
            fact("path"),
            fact("source"),
            fact("reason")
        )),
        "CertificatePrivateKeyMissing" => argument(format!(
            "The certificate {} has no private key. Import it with its private key (PFX, or PEM with the key), \
             or use -CertificatePath with such a file.",
            certificate()
        )),
        "CertificatePrivateKeyUnreadable" => argument(format!("The private key of the certificate {} cannot be read: {}", certificate(), fact("reason"))),
        "CertificateKeyNotRsa" => argument(format!(
            "The certificate {} does not have an RSA key ({}). \
             Microsoft Entra ID certificate credentials for client assertions need an RSA key (PS256/RS256).",
            certificate(),
            fact("algorithm")
        )),
        "CertificatePrivateKeyNotExportable" => argument(format!(
            "The private key of the certificate {} cannot be exported, which MgKeepAlive needs to sign the client assertion. \
             Re-import the certificate with an exportable key (X509KeyStorageFlags Exportable), or use -CertificatePath.",
            certificate()
        )),
        "EnvironmentUserCredentialNotSupported" => Some((
            "AZURE_USERNAME/AZURE_PASSWORD describe a user sign-in, which cannot keep calls alive: \
             call keep-alive needs an application permission (Calls.Initiate.All or Calls.AccessMedia.All) and an app-only token. \
             Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) instead."
                .to_owned(),
            "InvalidOperation",
            ExceptionKind::NotSupported,
        )),
        "EnvironmentVariableMissing" => {
            let missing: Vec<String> = info.get("missing").and_then(Value::as_array).map(|m| m.iter().map(|v| text(Some(v))).collect()).unwrap_or_default();
            argument(format!("Connect-MgGraph -EnvironmentVariable needs the environment variables {}, which are not set.", missing.join(", ")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(id: &str, info: Value) -> (String, &'static str, ExceptionKind) {
        sign_in_error(id, info.as_object().unwrap()).unwrap()
    }

    #[test]
    fn certificate_messages() {
        let (message, category, _) = error("CertificateNotFound", json!({"thumbprint": "AB12", "subjectName": null, "count": 3}));
        assert_eq!(
            message,
            "No certificate with thumbprint AB12 was found in the CurrentUser\\My certificate store (3 certificate(s) there). \
             Import it with its private key, or use -Certificate or -CertificatePath."
        );
        assert_eq!(category, "ObjectNotFound");
        let (message, ..) = error("CertificateNotFound", json!({"subjectName": "CN=x", "count": 0}));
        assert!(message.starts_with("No certificate with subject name 'CN=x' was found"));
        let (message, category, kind) = error("CertificatePrivateKeyMissing", json!({"subject": "CN=a", "thumbprint": "T"}));
        assert!(message.starts_with("The certificate 'CN=a' (thumbprint T) has no private key."));
        assert_eq!((category, kind), ("InvalidArgument", ExceptionKind::Argument));
        let (message, category, _) = error("CertificateFileNotFound", json!({"path": "/x.pfx", "source": "-CertificatePath"}));
        assert_eq!((message.as_str(), category), ("The certificate file '/x.pfx' (-CertificatePath) does not exist.", "ObjectNotFound"));
        let (message, ..) = error("CertificateFileInvalid", json!({"path": "/x.pfx", "source": "-CertificatePath", "reason": null}));
        assert!(message.ends_with("with its private key: "));
        assert!(sign_in_error("Unknown", &serde_json::Map::new()).is_none());
    }

    #[test]
    fn environment_messages() {
        let (message, category, kind) = error("EnvironmentVariableMissing", json!({"missing": ["AZURE_TENANT_ID", "AZURE_CLIENT_ID"]}));
        assert_eq!(message, "Connect-MgGraph -EnvironmentVariable needs the environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID, which are not set.");
        assert_eq!((category, kind), ("InvalidArgument", ExceptionKind::Argument));
        let (message, category, kind) = error("EnvironmentUserCredentialNotSupported", json!({}));
        assert!(message.starts_with("AZURE_USERNAME/AZURE_PASSWORD describe a user sign-in"));
        assert_eq!((category, kind), ("InvalidOperation", ExceptionKind::NotSupported));
    }
}
