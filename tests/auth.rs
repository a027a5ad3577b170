//! Sign-in flows of the core against the emulator's token and managed-identity endpoints:
//! token reuse, renewal, 401 → renew once and retry, and Entra ID's errors.
//! The library has one process-wide session, so these tests run one at a time.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use graph_emulator::{spawn_blocking_runtime, Config, EmulatorThread, FaultResponse, FaultScript};
use mgkeepalive::environment::{self, EnvironmentDefinition};
use mgkeepalive::graph::{KeepAliveOptions, KeepAliveSuccess};
use mgkeepalive::operation::run_blocking;
use mgkeepalive::session::{self, ConnectRequest};
use mgkeepalive::CoreError;
use zeroize::Zeroizing;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const TENANT: &str = "contoso.onmicrosoft.com";
const APP: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "s3cr3t~value";

struct Fixture {
    emu: EmulatorThread,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn fixture() -> Fixture {
    let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    session::disconnect();
    let emu = spawn_blocking_runtime(Config::default()).unwrap();
    environment::add(EnvironmentDefinition {
        name: "AuthEmulator".into(),
        azure_ad_endpoint: emu.base_url(),
        graph_endpoint: emu.base_url(),
    })
    .unwrap();
    Fixture { emu, _serial: serial }
}

fn connect(json: serde_json::Value, secret: &[u8]) -> Result<serde_json::Value, CoreError> {
    let request: ConnectRequest = serde_json::from_value(json).unwrap();
    let secret = Zeroizing::new(secret.to_vec());
    run_blocking(None, async move { Ok(serde_json::to_value(session::connect(request, secret).await?).unwrap()) })
}

fn secret_request() -> serde_json::Value {
    serde_json::json!({"authType": "ClientSecret", "environment": "AuthEmulator", "tenantId": TENANT, "clientId": APP})
}

fn keep_alive(id: &str) -> Result<KeepAliveSuccess, CoreError> {
    run_blocking(Some(id.into()), session::keep_alive(id.into(), KeepAliveOptions::default()))
}

fn token_requests(emu: &EmulatorThread) -> usize {
    emu.requests().iter().filter(|r| r.kind == "token" || r.kind == "managedIdentity").count()
}

fn auth_error(result: Result<serde_json::Value, CoreError>) -> mgkeepalive::AuthError {
    match result {
        Err(CoreError::Auth(e)) => *e,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[test]
fn client_secret_token_is_reused_across_keep_alives() {
    let f = fixture();
    f.emu.register_app(TENANT, APP, SECRET);
    let context = connect(secret_request(), SECRET.as_bytes()).unwrap();
    assert_eq!(context["authType"], "AppOnly");
    assert_eq!(context["tokenCredentialType"], "ClientSecret");
    assert_eq!((context["clientId"].as_str(), context["tenantId"].as_str()), (Some(APP), Some(TENANT)));
    assert_eq!(context["scopes"][0], format!("{}/.default", f.emu.base_url()));
    assert!(!context.to_string().contains(SECRET));

    let id = f.emu.create_call(None);
    for _ in 0..10 {
        keep_alive(&id).unwrap();
    }
    assert_eq!(token_requests(&f.emu), 1, "one token for connect and ten keep-alives");
    let token_request = f.emu.requests().into_iter().find(|r| r.kind == "token").unwrap();
    assert_eq!(token_request.raw_path, format!("/{TENANT}/oauth2/v2.0/token"));
    let bearer = &f.emu.requests().into_iter().find(|r| r.kind == "keepAlive").unwrap().headers["authorization"];
    assert!(bearer.starts_with("Bearer ") && bearer.len() > 20);
}

#[test]
fn a_short_lived_token_is_renewed_before_each_use() {
    let f = fixture();
    f.emu.register_app(TENANT, APP, SECRET);
    f.emu.set_token_lifetime(Duration::from_secs(2));
    connect(secret_request(), SECRET.as_bytes()).unwrap();
    let id = f.emu.create_call(None);
    for _ in 0..3 {
        keep_alive(&id).unwrap();
    }
    assert_eq!(token_requests(&f.emu), 4, "connect plus one renewal per keep-alive");
    std::thread::sleep(Duration::from_millis(2100));
    keep_alive(&id).expect("a renewed token works after the old one expired");
}

#[test]
fn concurrent_keep_alives_share_one_renewal() {
    let f = fixture();
    f.emu.register_app(TENANT, APP, SECRET);
    // Lifetime just over the 5-minute margin: due for renewal one second after it is issued.
    f.emu.set_token_lifetime(Duration::from_secs(301));
    connect(secret_request(), SECRET.as_bytes()).unwrap();
    // The renewal lives an hour, so it cannot fall due in turn however slowly (a loaded machine)
    // the sixteen keep-alives run: a second renewal could only be one made per thread.
    f.emu.set_token_lifetime(Duration::from_secs(3600));
    let id = f.emu.create_call(None);
    std::thread::sleep(Duration::from_millis(1100));
    let threads: Vec<_> = (0..16).map(|_| {
        let id = id.clone();
        std::thread::spawn(move || keep_alive(&id).unwrap())
    }).collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(token_requests(&f.emu), 2, "one renewal for sixteen concurrent keep-alives");
}

#[test]
fn a_401_renews_once_and_retries_once() {
    let f = fixture();
    f.emu.register_app(TENANT, APP, SECRET);
    connect(secret_request(), SECRET.as_bytes()).unwrap();
    let id = f.emu.create_call(None);
    f.emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(401)]));
    let ok = keep_alive(&id).unwrap();
    assert_eq!(ok.attempts, 2);
    assert_eq!(token_requests(&f.emu), 2);

    // Refused twice: the second 401 is the answer, after exactly one renewal.
    f.emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(401), FaultResponse::status(401)]));
    let Err(CoreError::Graph(e)) = keep_alive(&id) else { panic!("expected the 401") };
    assert_eq!((e.http_status, e.attempts), (401, 2));
    assert_eq!(token_requests(&f.emu), 3);
}

#[test]
fn a_user_provided_token_is_never_renewed() {
    let f = fixture();
    connect(serde_json::json!({"authType": "AccessToken", "environment": "AuthEmulator"}), b"given-token").unwrap();
    let id = f.emu.create_call(None);
    f.emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(401)]));
    let Err(CoreError::Graph(e)) = keep_alive(&id) else { panic!("expected the 401") };
    assert_eq!((e.http_status, e.attempts), (401, 1));
    assert_eq!(f.emu.requests().len(), 1);
}

#[test]
fn an_access_token_context_shows_its_claims() {
    let f = fixture();
    // Not a JWT: nothing to show of it; the context says so (appName null, the cloud's scope).
    let context = connect(serde_json::json!({"authType": "AccessToken", "environment": "AuthEmulator"}), b"given-token").unwrap();
    assert_eq!((context["clientId"].is_null(), context["tenantId"].is_null(), context["appName"].is_null()), (true, true, true));
    assert_eq!(context["scopes"], serde_json::json!([format!("{}/.default", f.emu.base_url())]));
    // A JWT: its claims, camelCase as every answer; the token itself is nowhere in the context.
    let claims = r#"{"tid":"tenant-jwt","appid":"app-jwt","app_displayname":"Token App","roles":["Calls.Initiate.All"],"exp":4102444800}"#;
    let jwt = format!("eyJhbGciOiJub25lIn0.{}.sig", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims));
    let context = connect(serde_json::json!({"authType": "AccessToken", "environment": "AuthEmulator"}), jwt.as_bytes()).unwrap();
    assert_eq!((context["clientId"].as_str(), context["tenantId"].as_str()), (Some("app-jwt"), Some("tenant-jwt")));
    assert_eq!(context["scopes"], serde_json::json!(["Calls.Initiate.All"]));
    assert_eq!((context["appName"].as_str(), context["authType"].as_str()), (Some("Token App"), Some("UserProvidedAccessToken")));
    assert!(!context.to_string().contains(&jwt));
    assert_eq!(serde_json::to_value(session::context()).unwrap(), context);
    // Other credentials keep MgKeepAlive's name.
    f.emu.register_app(TENANT, APP, SECRET);
    assert_eq!(connect(secret_request(), SECRET.as_bytes()).unwrap()["appName"], "MgKeepAlive");
}

#[test]
fn entra_failures_carry_their_aadsts_codes_and_never_the_secret() {
    let f = fixture();
    f.emu.register_app(TENANT, APP, SECRET);
    let e = auth_error(connect(secret_request(), b"wrong-secret"));
    assert_eq!((e.error.as_deref(), e.error_codes.as_slice()), (Some("invalid_client"), &[7000215][..]));
    assert!(e.message.contains("AADSTS7000215"));
    assert!(e.trace_id.is_some() && e.correlation_id.is_some());
    assert!(!format!("{e:?}").contains("wrong-secret"));
    assert!(session::context().is_none(), "a failed connect leaves no session");

    let mut other_app = secret_request();
    other_app["clientId"] = "99999999-0000-0000-0000-000000000000".into();
    assert_eq!(auth_error(connect(other_app, SECRET.as_bytes())).error_codes, [700016]);

    let mut other_tenant = secret_request();
    other_tenant["tenantId"] = "fabrikam.onmicrosoft.com".into();
    assert_eq!(auth_error(connect(other_tenant, SECRET.as_bytes())).error_codes, [90002]);
}

#[test]
fn missing_parameters_are_named() {
    let _f = fixture();
    let mut request = secret_request();
    request.as_object_mut().unwrap().remove("tenantId");
    let Err(CoreError::InvalidArgument { parameter, message }) = connect(request, SECRET.as_bytes()) else { panic!() };
    assert_eq!(parameter, "TenantId");
    assert!(message.contains("-TenantId"));
}

/// A throwaway self-signed RSA certificate made with the openssl CLI: (cert DER, PKCS#8 key DER).
fn test_certificate() -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("mgka-cert-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(&dir).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=MgKeepAlive test"]);
    run(&["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"]);
    run(&["pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.der"]);
    let cert = std::fs::read(dir.join("cert.der")).unwrap();
    let key = std::fs::read(dir.join("key.der")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (cert, key)
}

fn certificate_request(cert: &[u8], algorithm: &str, send_chain: bool) -> serde_json::Value {
    serde_json::json!({
        "authType": "ClientCertificate", "environment": "AuthEmulator", "tenantId": TENANT, "clientId": APP,
        "certificate": {"der": STANDARD.encode(cert), "algorithm": algorithm, "sendChain": send_chain}
    })
}

#[test]
fn certificate_assertions_ps256_and_rs256() {
    let f = fixture();
    let (cert, key) = test_certificate();
    f.emu.register_app_certificate(TENANT, APP, &cert);

    let context = connect(certificate_request(&cert, "PS256", false), &key).unwrap();
    assert_eq!(context["tokenCredentialType"], "ClientCertificate");
    let thumbprint: String = {
        use sha1::Digest;
        sha1::Sha1::digest(&cert).iter().map(|b| format!("{b:02X}")).collect()
    };
    assert_eq!(context["certificateThumbprint"], thumbprint);
    keep_alive(&f.emu.create_call(None)).unwrap();

    connect(certificate_request(&cert, "RS256", true), &key).unwrap();
    let logged = serde_json::to_value(f.emu.requests().into_iter().filter(|r| r.kind == "token").collect::<Vec<_>>()).unwrap();
    let text = logged.to_string();
    assert!(text.contains("PS256") && text.contains("RS256"), "{text}");
    assert!(!text.contains(&STANDARD.encode(&key)), "the key never travels");

    // A certificate the app does not have: AADSTS700027.
    let (other_cert, other_key) = test_certificate();
    let e = auth_error(connect(certificate_request(&other_cert, "PS256", false), &other_key));
    assert_eq!(e.error_codes, [700027]);
}

#[test]
fn a_key_that_is_not_rsa_pkcs8_is_refused_before_any_request() {
    let f = fixture();
    let (cert, _) = test_certificate();
    let Err(CoreError::InvalidArgument { parameter, .. }) = connect(certificate_request(&cert, "PS256", false), b"not a key") else { panic!() };
    assert_eq!(parameter, "Certificate");
    assert_eq!(token_requests(&f.emu), 0);
}

#[test]
fn managed_identity_vm_and_app_service() {
    let f = fixture();
    let base = f.emu.base_url();
    let context = connect(
        serde_json::json!({"authType": "ManagedIdentity", "environment": "AuthEmulator", "managedIdentity": {"imdsEndpoint": base}}),
        b"",
    )
    .unwrap();
    assert_eq!((context["authType"].as_str(), context["clientId"].as_str()), (Some("ManagedIdentity"), None));
    keep_alive(&f.emu.create_call(None)).unwrap();
    let imds = f.emu.requests().into_iter().find(|r| r.kind == "managedIdentity").unwrap();
    assert!(imds.raw_path.starts_with("/metadata/identity/oauth2/token?api-version=2018-02-01&resource="), "{}", imds.raw_path);
    assert_eq!(imds.headers["metadata"], "true");

    let user_assigned = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    f.emu.register_identity(user_assigned);
    f.emu.set_identity_header("header-value");
    let context = connect(
        serde_json::json!({"authType": "ManagedIdentity", "environment": "AuthEmulator", "clientId": user_assigned,
                           "managedIdentity": {"identityEndpoint": format!("{base}/msi/token")}}),
        b"header-value",
    )
    .unwrap();
    assert_eq!(context["managedIdentityId"], user_assigned);
    let app_service = f.emu.requests().into_iter().filter(|r| r.kind == "managedIdentity").last().unwrap();
    assert!(app_service.raw_path.contains("api-version=2019-08-01") && app_service.raw_path.contains(user_assigned));
    assert_eq!(app_service.headers["x-identity-header"], "header-value");

    let e = auth_error(connect(
        serde_json::json!({"authType": "ManagedIdentity", "environment": "AuthEmulator",
                           "managedIdentity": {"identityEndpoint": format!("{base}/msi/token")}}),
        b"wrong-header",
    ));
    assert_eq!(e.http_status, Some(401));
    let Err(CoreError::InvalidArgument { .. }) = connect(
        serde_json::json!({"authType": "ManagedIdentity", "managedIdentity": {"identityEndpoint": "http://metadata.example/msi"}}),
        b"",
    ) else { panic!("plain http off the machine is refused") };
}

#[test]
fn token_requests_use_the_proxy_given_at_connect() {
    let f = fixture();
    f.emu.register_app(TENANT, APP, SECRET);
    // The identity platform is reachable only through the proxy (the emulator).
    environment::add(EnvironmentDefinition {
        name: "BehindProxy".into(),
        azure_ad_endpoint: "http://127.0.0.2:9".into(),
        graph_endpoint: "http://127.0.0.2:9".into(),
    })
    .unwrap();
    let mut request = secret_request();
    request["environment"] = "BehindProxy".into();
    request["environmentProxy"] = serde_json::json!({"httpProxy": f.emu.base_url()});
    connect(request.clone(), SECRET.as_bytes()).expect("the token came through the proxy");
    assert_eq!(token_requests(&f.emu), 1);

    request["environmentProxy"] = serde_json::json!({"httpProxy": f.emu.base_url(), "noProxy": "127.0.0.2"});
    request["timeoutMs"] = 3000.into();
    assert!(matches!(connect(request, SECRET.as_bytes()), Err(CoreError::Auth(_))), "NO_PROXY goes direct, where nothing listens");
    session::disconnect();
}
