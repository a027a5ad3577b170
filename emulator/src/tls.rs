//! Serving over TLS with a self-signed certificate for the loopback names.
//!
//! Microsoft's sign-in (MSAL) refuses an `http` authority, so tests that sign in with Microsoft's
//! modules need the emulator on `https`; the client trusts the certificate through its trust
//! store (see `emulator/trust-cert.sh`).

use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The names the certificate is valid for (subject alternative names).
pub const CERTIFICATE_NAMES: &[&str] = &["127.0.0.1", "::1", "localhost"];

/// A certificate and its private key for serving over TLS.
#[derive(Clone)]
pub struct TlsIdentity {
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    // Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl TlsIdentity {
    /// A fresh self-signed certificate (ECDSA P-256) for `IP:127.0.0.1`, `IP:::1` and
    /// `DNS:localhost`.
    pub fn generate() -> io::Result<TlsIdentity> {
        let names: Vec<String> = CERTIFICATE_NAMES.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(invalid)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "graph-emulator");
        let key = rcgen::KeyPair::generate().map_err(invalid)?;
        let cert = params.self_signed(&key).map_err(invalid)?;
        Ok(TlsIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A certificate and key given as PEM text.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> io::Result<TlsIdentity> {
        let identity = TlsIdentity {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        };
        identity.server_config()?;
        Ok(identity)
    }

    /// `dir/cert.pem` and `dir/key.pem` when both exist; otherwise a fresh certificate written
    /// there (the directory is created; the key is readable by its owner only). Reusing one
    /// directory keeps one certificate across runs, so it needs to be trusted only once.
    pub fn load_or_create(dir: &Path) -> io::Result<TlsIdentity> {
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        if cert_path.exists() && key_path.exists() {
            return TlsIdentity::from_pem(
                &std::fs::read_to_string(&cert_path)?,
                &std::fs::read_to_string(&key_path)?,
            );
        }
        std::fs::create_dir_all(dir)?;
        let identity = TlsIdentity::generate()?;
        write_private(&key_path, identity.key_pem.as_bytes())?;
        std::fs::write(&cert_path, &identity.cert_pem)?;
        Ok(identity)
    }

    /// The certificate, PEM (what a client adds to its trust store).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> io::Result<Vec<u8>> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map(|c| c.to_vec())
            .map_err(invalid)
    }

    /// Writes the certificate (PEM, no key) to `path`.
    pub fn write_cert(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, &self.cert_pem)
    }

    fn server_config(&self) -> io::Result<ServerConfig> {
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(invalid)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(invalid)?;
        let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(invalid)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    pub(crate) fn acceptor(&self) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(Arc::new(self.server_config()?)))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
}
