//! Trust per process: `trust-cert.sh bundle` + `SSL_CERT_FILE`, the way tests trust the emulator's
//! certificate without touching the system store. rustls-native-certs (our library's reqwest)
//! reads `SSL_CERT_FILE`, and so does .NET (pwsh, MSAL). One test in this binary, because it sets
//! a process-wide environment variable.

use std::process::Command;
use std::time::Duration;

use graph_emulator::{Config, Emulator, TlsIdentity};

#[tokio::test]
async fn a_bundle_named_by_ssl_cert_file_makes_native_roots_trust_the_emulator() {
    let identity = TlsIdentity::generate().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "graph-emulator-trust-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let bundle = dir.join("bundle.pem");
    identity.write_cert(&cert).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/trust-cert.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg("bundle")
        .arg(&cert)
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(
        text.ends_with(identity.cert_pem()),
        "the bundle ends with the certificate"
    );

    let emu = Emulator::start(Config {
        tls: Some(identity.clone()),
        ..Config::default()
    })
    .await
    .unwrap();
    let url = format!("{}/_emulator/health", emu.base_url());
    let native = || {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    // Before: the system roots do not include it.
    assert!(native().get(&url).send().await.is_err());
    std::env::set_var("SSL_CERT_FILE", &bundle);
    let roots = rustls_native_certs::load_native_certs();
    let der = identity.cert_der().unwrap();
    assert!(roots.certs.iter().any(|c| c.as_ref() == der.as_slice()));
    let r = native().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    std::env::remove_var("SSL_CERT_FILE");
    let _ = std::fs::remove_dir_all(dir);
}
