//! The emulator over TLS: the certificate it serves, who can connect, the binary's TLS options.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{send, Resp};
use graph_emulator::{Config, Emulator, TlsIdentity};
use serde_json::json;

fn trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "graph-emulator-tls-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The certificate's subject alternative names, as the `openssl` CLI prints them.
fn alt_names(cert_pem: &str) -> String {
    let dir = temp_dir("san");
    let path = dir.join("cert.pem");
    std::fs::write(&path, cert_pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&path)
        .output()
        .expect("the openssl CLI");
    let _ = std::fs::remove_dir_all(dir);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_call_lives_over_https_for_a_client_that_trusts_the_certificate() {
    let emu = Emulator::start(Config {
        tls: Some(TlsIdentity::generate().unwrap()),
        ..Config::default()
    })
    .await
    .unwrap();
    let base = emu.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let pem = emu.certificate_pem().unwrap().to_string();
    let names = alt_names(&pem);
    for name in ["IP Address:127.0.0.1", "DNS:localhost"] {
        assert!(names.contains(name), "{name} missing in {names}");
    }

    let client = trusting(&pem);
    let auth = ("Authorization", "Bearer t");
    let r: Resp = send(
        client
            .post(format!("{base}/v1.0/communications/calls"))
            .header(auth.0, auth.1)
            .header("Content-Type", "application/json")
            .body(json!({"callbackUri": "https://bot.contoso.com/callback"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.json()["@odata.context"],
        format!("{base}/v1.0/$metadata#communications/calls/$entity")
    );
    let r = send(
        client
            .post(format!(
                "{base}/v1.0/communications/calls/{id}/microsoft.graph.keepAlive"
            ))
            .header(auth.0, auth.1)
            .header("Content-Length", "0"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        client
            .delete(format!("{base}/v1.0/communications/calls/{id}"))
            .header(auth.0, auth.1),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        emu.call_state(&id).unwrap().end_reason.as_deref(),
        Some("Ended")
    );

    // A client that does not trust the certificate cannot connect; nor can plain http.
    let untrusting = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("{base}/_emulator/health"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let plain = base.replace("https://", "http://");
    assert!(untrusting
        .get(format!("{plain}/_emulator/health"))
        .send()
        .await
        .is_err());
    // The server keeps serving after failed handshakes.
    assert_eq!(
        send(client.get(format!("{base}/_emulator/health")))
            .await
            .status,
        200
    );
    emu.shutdown().await;
}

#[test]
fn a_tls_directory_keeps_one_certificate_across_runs() {
    let dir = temp_dir("dir");
    let first = TlsIdentity::load_or_create(&dir).unwrap();
    let second = TlsIdentity::load_or_create(&dir).unwrap();
    assert_eq!(first.cert_pem(), second.cert_pem());
    assert!(first.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
    }
    assert_ne!(
        TlsIdentity::generate().unwrap().cert_pem(),
        first.cert_pem(),
        "generate makes a new certificate"
    );
    // A broken key is an error, not a silently replaced certificate.
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    assert!(TlsIdentity::load_or_create(&dir).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

fn ready_url(child: &mut std::process::Child) -> String {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("graph-emulator listening on ")
        .unwrap_or_else(|| panic!("ready line: {line}"))
        .to_string()
}

#[tokio::test]
async fn the_binary_serves_tls_and_writes_its_certificate() {
    let exe = env!("CARGO_BIN_EXE_graph-emulator");
    let dir = temp_dir("bin");
    let cert_path = dir.join("served.pem");

    let out = Command::new(exe)
        .arg("--write-cert")
        .arg(&cert_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--write-cert needs TLS");

    let start = |extra: &[&str]| {
        Command::new(exe)
            .args(extra)
            .arg("--write-cert")
            .arg(&cert_path)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let tls_dir = dir.join("tls");
    let tls_dir_arg = tls_dir.to_string_lossy().into_owned();
    let mut served = Vec::new();
    for args in [
        vec!["--tls"],
        vec!["--tls-dir", &tls_dir_arg],
        vec!["--tls-dir", &tls_dir_arg],
    ] {
        let mut child = start(&args);
        let url = ready_url(&mut child);
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        // The certificate file is complete once the ready line is out.
        let pem = std::fs::read_to_string(&cert_path).unwrap();
        let r = send(trusting(&pem).get(format!("{url}/_emulator/health"))).await;
        assert_eq!(r.status, 200);
        served.push(pem);
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
    }
    assert_ne!(served[0], served[1], "--tls makes a fresh certificate");
    assert_eq!(served[1], served[2], "--tls-dir reuses its certificate");
    assert_eq!(
        std::fs::read_to_string(tls_dir.join("cert.pem")).unwrap(),
        served[1]
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
