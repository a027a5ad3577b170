//! The core against the emulator over https: sign in with a client secret at an https authority,
//! then keep a call (created through Graph's own route) alive, trusting the emulator's self-signed
//! certificate the way tests do — `SSL_CERT_FILE` naming a bundle from `emulator/trust-cert.sh`.
//! One test in this binary: it sets a process-wide environment variable before the library's
//! HTTP client is first built.

use std::process::Command;

use graph_emulator::{spawn_blocking_runtime, Config, TlsIdentity};
use mgkeepalive::auth::{Credential, Secret, TokenSource};
use mgkeepalive::environment::{Cloud, Environment, EnvironmentType};
use mgkeepalive::graph::{keep_alive, KeepAliveOptions};
use mgkeepalive::session::Session;

mod common;

const TENANT: &str = "0d4b6a3c-1f2e-4a5b-8c7d-9e0f1a2b3c4d";
const APP: &str = "11111111-2222-3333-4444-555555555555";

#[test]
fn keeps_a_call_alive_over_https_after_signing_in_with_a_secret() {
    let identity = TlsIdentity::generate().unwrap();
    let dir = std::env::temp_dir().join(format!("mgka-https-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, bundle) = (dir.join("emulator.pem"), dir.join("bundle.pem"));
    identity.write_cert(&cert).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/emulator/trust-cert.sh");
    assert!(Command::new("bash")
        .arg(script)
        .arg("bundle")
        .arg(&cert)
        .arg(&bundle)
        .status()
        .unwrap()
        .success());
    // Before the library's client exists: rustls-native-certs reads it when the client is built.
    std::env::set_var("SSL_CERT_FILE", &bundle);

    let emu = spawn_blocking_runtime(Config {
        tls: Some(identity),
        ..Config::default()
    })
    .unwrap();
    let base = emu.base_url();
    assert!(base.starts_with("https://127.0.0.1:"));
    emu.register_app(TENANT, APP, "s3cret");
    let session = Session {
        environment: Environment {
            name: "EmulatorTls".into(),
            azure_ad_endpoint: base.clone(),
            graph_endpoint: base.clone(),
            kind: EnvironmentType::UserDefined,
            cloud: Cloud::of_graph_endpoint(&base),
        },
        tokens: TokenSource::new(Credential::ClientSecret {
            tenant_id: TENANT.into(),
            client_id: APP.into(),
            secret: Secret::new("s3cret".into()),
        }),
    };

    // The call is created the way New-MgCommunicationCall creates it; the token is from the
    // emulator's token endpoint, over https too.
    let id = common::block_on(async {
        let token = session
            .tokens
            .token(&session.environment, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        let client = reqwest::Client::builder().use_rustls_tls().build().unwrap();
        let r = client
            .post(format!("{base}/v1.0/communications/calls"))
            .bearer_auth(token.expose())
            .header("Content-Type", "application/json")
            .body(r#"{"callbackUri":"https://bot.contoso.com/callback","requestedModalities":["audio"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let call: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(call["tenantId"], TENANT, "the token's tid");
        call["id"].as_str().unwrap().to_string()
    });

    for _ in 0..3 {
        let ok = common::block_on(keep_alive(&session, &id, &KeepAliveOptions::default())).unwrap();
        assert_eq!(ok.http_status, 200);
    }
    assert_eq!(emu.call_state(&id).unwrap().keep_alive_count, 3);
    let log = emu.requests();
    assert_eq!(
        log.iter().filter(|r| r.kind == "token").count(),
        1,
        "one sign-in, token reused"
    );
    emu.end_call(&id);
    let err =
        common::block_on(keep_alive(&session, &id, &KeepAliveOptions::default())).unwrap_err();
    assert!(format!("{err:?}").contains("itemNotFound"), "{err:?}");
    std::env::remove_var("SSL_CERT_FILE");
    let _ = std::fs::remove_dir_all(dir);
}
