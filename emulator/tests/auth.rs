//! Certificate client assertions, token lifetimes and the managed-identity endpoints.
//!
//! Test certificates and keys are generated with the `openssl` CLI into a temporary directory;
//! assertions are signed with the `rsa` crate.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use graph_emulator::{Config, Emulator, SYSTEM_ASSIGNED_CLIENT_ID};
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod common;

use common::{client, control, form, keep_alive, send, token_request, Resp};

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SCOPE: &str = "https://graph.microsoft.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// ---------------------------------------------------------------------------------------------
// Test material
// ---------------------------------------------------------------------------------------------

struct TestCert {
    der: Vec<u8>,
    key: RsaPrivateKey,
}

impl TestCert {
    fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&self.der))
    }
    fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }
}

fn openssl(dir: &PathBuf, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed to generate test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed RSA 2048 certificate and its key, made with the openssl CLI.
fn generate(name: &str) -> TestCert {
    let dir =
        std::env::temp_dir().join(format!("graph-emulator-auth-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-days",
            "2",
            "-subj",
            "/CN=graph-emulator-test",
        ],
    );
    openssl(
        &dir,
        &["x509", "-in", "c.pem", "-outform", "DER", "-out", "c.der"],
    );
    openssl(
        &dir,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "k.pem", "-outform", "DER", "-out", "k.der",
        ],
    );
    let der = std::fs::read(dir.join("c.der")).unwrap();
    let key = RsaPrivateKey::from_pkcs8_der(&std::fs::read(dir.join("k.der")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    TestCert { der, key }
}

fn cert_a() -> &'static TestCert {
    static C: OnceLock<TestCert> = OnceLock::new();
    C.get_or_init(|| generate("a"))
}

fn cert_b() -> &'static TestCert {
    static C: OnceLock<TestCert> = OnceLock::new();
    C.get_or_init(|| generate("b"))
}

/// A deterministic RNG for PSS salts (tests only).
struct TestRng(u64);

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[derive(Clone, Copy)]
enum Alg {
    Ps256,
    /// PS256 with the maximum salt length (OpenSSL's default).
    Ps256MaxSalt,
    Rs256,
}

/// Signs `header.claims` with `key`.
fn sign(header: &Value, claims: &Value, key: &RsaPrivateKey, alg: Alg) -> String {
    let input = format!("{}.{}", b64json(header), b64json(claims));
    let sig = match alg {
        Alg::Ps256 => rsa::pss::SigningKey::<Sha256>::new(key.clone())
            .sign_with_rng(&mut TestRng(0x9e37_79b9_7f4a_7c15), input.as_bytes())
            .to_vec(),
        Alg::Ps256MaxSalt => {
            let max = 256 - 32 - 2;
            rsa::pss::SigningKey::<Sha256>::new_with_salt_len(key.clone(), max)
                .sign_with_rng(&mut TestRng(0x1234_5678_9abc_def1), input.as_bytes())
                .to_vec()
        }
        Alg::Rs256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
            .sign(input.as_bytes())
            .to_vec(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn header_for(cert: &TestCert, alg: Alg) -> Value {
    match alg {
        Alg::Ps256 | Alg::Ps256MaxSalt => {
            json!({"alg":"PS256","typ":"JWT","x5t#S256":cert.x5t_s256()})
        }
        Alg::Rs256 => json!({"alg":"RS256","typ":"JWT","x5t":cert.x5t()}),
    }
}

fn claims_for(aud: &str, client: &str) -> Value {
    let n = now();
    json!({"aud":aud,"iss":client,"sub":client,"jti":uuid::Uuid::new_v4().to_string(),"nbf":n,"exp":n+600})
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

fn token_url(base: &str) -> String {
    format!("{base}/{TENANT}/oauth2/v2.0/token")
}

async fn token_with(base: &str, pairs: &[(&str, &str)]) -> Resp {
    token_request(base, TENANT, pairs).await
}

async fn assert_token(base: &str, client_id: &str, assertion: &str) -> Resp {
    token_with(
        base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", SCOPE),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// The JSON object in `text` has exactly these keys, in this order.
#[track_caller]
fn assert_keys_in_order(text: &str, keys: &[&str]) {
    let obj = serde_json::from_str::<Value>(text).unwrap();
    assert_eq!(obj.as_object().unwrap().len(), keys.len(), "{text}");
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing: {text}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "order: {text}");
}

#[track_caller]
fn check(r: &Resp, status: u16, error: &str, code: u64) {
    assert_eq!(r.status, status, "{}", r.text);
    let j = r.json();
    assert_eq!(j["error"], error, "{}", r.text);
    assert_eq!(j["error_codes"], json!([code]), "{}", r.text);
    let desc = j["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(
        desc.contains("Trace ID: ")
            && desc.contains("Correlation ID: ")
            && desc.contains("Timestamp: ")
    );
    assert!(
        j["trace_id"].is_string() && j["correlation_id"].is_string() && j["timestamp"].is_string()
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_assertions() {
    let (a, b) = (cert_a(), cert_b());
    let emu = Emulator::start(Config::default()).await.unwrap();
    let base = emu.base_url();
    let aud = token_url(&base);

    // Registration over the control API (base64 DER), bad certificates refused.
    let r = control(
        "POST",
        &base,
        "apps",
        Some(json!({"tenantId":TENANT,"clientId":CLIENT,"certificate":STANDARD.encode(&a.der)})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["certificates"], json!([STANDARD.encode(&a.der)]));
    let r = control(
        "POST",
        &base,
        "apps",
        Some(json!({"tenantId":TENANT,"clientId":"x","certificates":["bm90IGEgY2VydA=="]})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // The Rust helper adds certificates to an app and keeps its secret.
    emu.register_app("t2", "app-2", "s3cret");
    emu.register_app_certificate("t2", "app-2", &b.der);
    let apps = emu.apps();
    let app2 = apps.iter().find(|x| x.client_id == "app-2").unwrap();
    assert_eq!(app2.client_secret, "s3cret");
    assert_eq!(app2.certificates.len(), 1);

    // Valid PS256 (salt 32 and maximum) and RS256 assertions.
    let id = emu.create_call(None);
    for alg in [Alg::Ps256, Alg::Ps256MaxSalt, Alg::Rs256] {
        let jwt = sign(&header_for(a, alg), &claims_for(&aud, CLIENT), &a.key, alg);
        let r = assert_token(&base, CLIENT, &jwt).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let j = r.json();
        assert_eq!(j["token_type"], "Bearer");
        assert_eq!(j["expires_in"], 3599);
        assert!(j.get("refresh_in").is_none());
        let token = j["access_token"].as_str().unwrap();
        assert_eq!(keep_alive(&base, &id, Some(token)).await.status, 200);
    }
    // The client id is compared case-insensitively; x5c is recorded.
    let mut header = header_for(a, Alg::Ps256);
    header["x5c"] = json!([STANDARD.encode(&a.der)]);
    let claims = claims_for(&aud, &CLIENT.to_uppercase());
    let jwt = sign(&header, &claims, &a.key, Alg::Ps256);
    emu.clear_requests();
    let r = assert_token(&base, &CLIENT.to_uppercase(), &jwt).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let log = emu.requests();
    let logged = log[0].assertion.as_ref().expect("assertion logged");
    assert_eq!(logged.alg.as_deref(), Some("PS256"));
    assert_eq!(logged.x5t_s256.as_deref(), Some(a.x5t_s256().as_str()));
    assert_eq!(logged.x5c_length, Some(1));
    assert_eq!(logged.aud, Some(json!(aud)));
    assert_eq!(logged.jti, Some(claims["jti"].clone()));
    let log_json = control("GET", &base, "requests?kind=token", None)
        .await
        .text;
    assert!(log_json.contains("\"x5cLength\":1"), "{log_json}");
    assert!(
        !log_json.contains(jwt.rsplit('.').next().unwrap()),
        "signature logged"
    );
    // x5c whose first certificate is not the signing one.
    header["x5c"] = json!([STANDARD.encode(&b.der)]);
    let jwt = sign(&header, &claims_for(&aud, CLIENT), &a.key, Alg::Ps256);
    check(
        &assert_token(&base, CLIENT, &jwt).await,
        401,
        "invalid_client",
        700027,
    );

    // Replayed jti.
    let claims = claims_for(&aud, CLIENT);
    let jwt = sign(&header_for(a, Alg::Rs256), &claims, &a.key, Alg::Rs256);
    assert_eq!(assert_token(&base, CLIENT, &jwt).await.status, 200);
    check(
        &assert_token(&base, CLIENT, &jwt).await,
        401,
        "invalid_client",
        7000277,
    );

    // Unknown certificate (thumbprint of a certificate not registered for the app).
    for alg in [Alg::Ps256, Alg::Rs256] {
        let jwt = sign(&header_for(b, alg), &claims_for(&aud, CLIENT), &b.key, alg);
        let r = assert_token(&base, CLIENT, &jwt).await;
        check(&r, 401, "invalid_client", 700027);
        assert!(r.text.contains("The key was not found"), "{}", r.text);
    }
    // Registered thumbprint, signed by another key = bad signature.
    let jwt = sign(
        &header_for(a, Alg::Ps256),
        &claims_for(&aud, CLIENT),
        &b.key,
        Alg::Ps256,
    );
    let r = assert_token(&base, CLIENT, &jwt).await;
    check(&r, 401, "invalid_client", 700027);
    assert!(r.text.contains("did not match"), "{}", r.text);
    // Tampered payload.
    let jwt = sign(
        &header_for(a, Alg::Rs256),
        &claims_for(&aud, CLIENT),
        &a.key,
        Alg::Rs256,
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64json(&claims_for(&aud, CLIENT)),
        parts[2]
    );
    check(
        &assert_token(&base, CLIENT, &tampered).await,
        401,
        "invalid_client",
        700027,
    );
    // PS256 header with only x5t (SHA-1): malformed for PS256.
    let jwt = sign(
        &json!({"alg":"PS256","x5t":a.x5t()}),
        &claims_for(&aud, CLIENT),
        &a.key,
        Alg::Ps256,
    );
    check(
        &assert_token(&base, CLIENT, &jwt).await,
        400,
        "invalid_request",
        50027,
    );

    // Wrong audience (other host spelling, other tenant, v1 endpoint).
    for bad_aud in [
        aud.replace("127.0.0.1", "localhost"),
        format!("{base}/other/oauth2/v2.0/token"),
        format!("{base}/{TENANT}/oauth2/token"),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token".into(),
    ] {
        let jwt = sign(
            &header_for(a, Alg::Ps256),
            &claims_for(&bad_aud, CLIENT),
            &a.key,
            Alg::Ps256,
        );
        check(
            &assert_token(&base, CLIENT, &jwt).await,
            401,
            "invalid_client",
            50012,
        );
    }
    // iss / sub not the client id.
    let mut claims = claims_for(&aud, CLIENT);
    claims["sub"] = json!("someone-else");
    let jwt = sign(&header_for(a, Alg::Ps256), &claims, &a.key, Alg::Ps256);
    check(
        &assert_token(&base, CLIENT, &jwt).await,
        401,
        "invalid_client",
        700021,
    );

    // Time range: expired, not yet valid, too long.
    let n = now();
    for (nbf, exp) in [
        (n - 700, n - 100),
        (n + 400, n + 900),
        (n, n + 601),
        (n - 100, n + 2000),
    ] {
        let mut claims = claims_for(&aud, CLIENT);
        claims["nbf"] = json!(nbf);
        claims["exp"] = json!(exp);
        let jwt = sign(&header_for(a, Alg::Ps256), &claims, &a.key, Alg::Ps256);
        let r = assert_token(&base, CLIENT, &jwt).await;
        check(&r, 401, "invalid_client", 700024);
        assert!(
            r.text.contains("not within its valid time range"),
            "{}",
            r.text
        );
    }
    // A failed assertion does not burn its jti.
    let mut claims = claims_for(&aud, CLIENT);
    claims["aud"] = json!("wrong");
    let jwt = sign(&header_for(a, Alg::Ps256), &claims, &a.key, Alg::Ps256);
    check(
        &assert_token(&base, CLIENT, &jwt).await,
        401,
        "invalid_client",
        50012,
    );
    claims["aud"] = json!(aud);
    let jwt = sign(&header_for(a, Alg::Ps256), &claims, &a.key, Alg::Ps256);
    assert_eq!(assert_token(&base, CLIENT, &jwt).await.status, 200);

    // Malformed JWTs and unsupported algorithms.
    let good = sign(
        &header_for(a, Alg::Ps256),
        &claims_for(&aud, CLIENT),
        &a.key,
        Alg::Ps256,
    );
    let padded = format!("{}=", good);
    let no_jti = {
        let mut c = claims_for(&aud, CLIENT);
        c.as_object_mut().unwrap().remove("jti");
        sign(&header_for(a, Alg::Ps256), &c, &a.key, Alg::Ps256)
    };
    let hs256 = sign(
        &json!({"alg":"HS256"}),
        &claims_for(&aud, CLIENT),
        &a.key,
        Alg::Rs256,
    );
    for bad in [
        "not-a-jwt".to_string(),
        "a.b.c".into(),
        format!(
            "{}.{}",
            b64json(&json!({"alg":"PS256"})),
            b64json(&json!({}))
        ),
        padded,
        no_jti,
        hs256,
    ] {
        check(
            &assert_token(&base, CLIENT, &bad).await,
            400,
            "invalid_request",
            50027,
        );
    }
    // Wrong assertion type; both a secret and an assertion.
    let r = token_with(
        &base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", SCOPE),
            ("client_assertion_type", "jwt"),
            ("client_assertion", &good),
        ],
    )
    .await;
    check(&r, 400, "invalid_request", 50027);
    let r = send(
        client()
            .post(format!("{base}/t2/oauth2/v2.0/token"))
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "app-2"),
                ("scope", SCOPE),
                ("client_secret", "s3cret"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &good),
            ])),
    )
    .await;
    check(&r, 400, "invalid_request", 7000216);
    // The secret flow still works for an app with a certificate; certificate-only apps have no
    // secret; the scope check still applies.
    let secret_form = |secret: &'static str, scope: &'static str| {
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app-2"),
            ("scope", scope),
            ("client_secret", secret),
        ])
    };
    let r = send(
        client()
            .post(format!("{base}/t2/oauth2/v2.0/token"))
            .body(secret_form("s3cret", SCOPE)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        client()
            .post(format!("{base}/t2/oauth2/v2.0/token"))
            .body(secret_form(
                "s3cret",
                "https://graph.microsoft.com/User.Read",
            )),
    )
    .await;
    check(&r, 400, "invalid_scope", 70011);
    let r = token_with(
        &base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", SCOPE),
            ("client_secret", "guess"),
        ],
    )
    .await;
    check(&r, 401, "invalid_client", 7000215);
    // An assertion for an app registered in another tenant.
    let jwt = sign(
        &header_for(b, Alg::Ps256),
        &claims_for(&aud, "app-2"),
        &b.key,
        Alg::Ps256,
    );
    check(
        &assert_token(&base, "app-2", &jwt).await,
        400,
        "unauthorized_client",
        700016,
    );
    // Same assertion at t2's endpoint: aud must be t2's URL.
    let t2_aud = format!("{base}/t2/oauth2/v2.0/token");
    let jwt = sign(
        &header_for(b, Alg::Ps256),
        &claims_for(&t2_aud, "app-2"),
        &b.key,
        Alg::Ps256,
    );
    let r = send(client().post(&t2_aud).body(form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "app-2"),
        ("scope", SCOPE),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &jwt),
    ])))
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Reset forgets apps (and used jtis).
    emu.reset();
    assert!(emu.apps().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lifetimes_and_expiry() {
    let a = cert_a();
    let emu = Emulator::start(Config {
        token_lifetime: Duration::from_millis(2500),
        ..Config::default()
    })
    .await
    .unwrap();
    let base = emu.base_url();
    let aud = token_url(&base);
    emu.register_app_certificate(TENANT, CLIENT, &a.der);
    let id = emu.create_call(None);
    let get_token = || async {
        let jwt = sign(
            &header_for(a, Alg::Ps256),
            &claims_for(&aud, CLIENT),
            &a.key,
            Alg::Ps256,
        );
        let r = assert_token(&base, CLIENT, &jwt).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    };

    // Fractional lifetimes: expires_in is rounded down, the token lives the exact lifetime.
    let j = get_token().await;
    assert_eq!(j["expires_in"], 2);
    assert_eq!(j["ext_expires_in"], 2);
    assert!(j.get("refresh_in").is_none());
    let cfg = control(
        "PUT",
        &base,
        "config",
        Some(json!({"tokenLifetimeSecs": 0.6, "tokenRefreshInSecs": 1.5})),
    )
    .await;
    assert_eq!(cfg.status, 200, "{}", cfg.text);
    assert_eq!(cfg.json()["tokenRefreshInSecs"], 1.5);
    let j = get_token().await;
    assert_eq!(j["expires_in"], 0);
    assert_eq!(j["refresh_in"], 1);
    let short = j["access_token"].as_str().unwrap().to_string();
    assert_eq!(keep_alive(&base, &id, Some(&short)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = keep_alive(&base, &id, Some(&short)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        r.json()["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    // Unknown token in strict mode.
    let r = keep_alive(&base, &id, Some("emu.unknown")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Access token validation failure."
    );
    // refresh_in can be switched off again; the Rust setters work too.
    let cfg = control(
        "PUT",
        &base,
        "config",
        Some(json!({"tokenRefreshInSecs": null})),
    )
    .await;
    assert_eq!(cfg.json()["tokenRefreshInSecs"], Value::Null);
    assert!(get_token().await.get("refresh_in").is_none());
    emu.set_token_refresh_in(Some(Duration::from_secs(1800)));
    emu.set_token_lifetime(Duration::from_secs(3600));
    let j = get_token().await;
    assert_eq!(
        (j["expires_in"].clone(), j["refresh_in"].clone()),
        (json!(3600), json!(1800))
    );
    assert_eq!(
        control(
            "PUT",
            &base,
            "config",
            Some(json!({"tokenRefreshInSecs": "x"}))
        )
        .await
        .status,
        400
    );
    // Reset restores the configured values.
    emu.reset();
    assert_eq!(emu.config().token_lifetime_secs, 2.5);
    assert_eq!(emu.config().token_refresh_in_secs, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_endpoints() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let base = emu.base_url();
    let id = emu.create_call(None);
    let resource = "https://graph.microsoft.com";
    let imds = |query: &str, metadata: Option<&str>| {
        let mut rb = client().get(format!("{base}/metadata/identity/oauth2/token?{query}"));
        if let Some(m) = metadata {
            rb = rb.header("Metadata", m);
        }
        send(rb)
    };
    let q = format!("api-version=2018-02-01&resource={resource}");

    // VM instance metadata style.
    let r = imds(&q, None).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error":"invalid_request","error_description":"Required metadata header not specified"})
    );
    assert_eq!(imds(&q, Some("false")).await.status, 400);
    let before = now();
    let r = imds(&q, Some("true")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_keys_in_order(
        &r.text,
        &[
            "access_token",
            "refresh_token",
            "expires_in",
            "expires_on",
            "not_before",
            "resource",
            "token_type",
            "client_id",
        ],
    );
    assert_eq!(j["refresh_token"], "");
    assert_eq!(j["expires_in"], "3599");
    let expires_on: i64 = j["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: i64 = j["not_before"].as_str().unwrap().parse().unwrap();
    assert!((before..=before + 2).contains(&not_before));
    assert_eq!(expires_on - not_before, 3599);
    assert_eq!(j["resource"], resource);
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["client_id"], SYSTEM_ASSIGNED_CLIENT_ID);
    let token = j["access_token"].as_str().unwrap();
    assert_eq!(keep_alive(&base, &id, Some(token)).await.status, 200);
    assert_eq!(keep_alive(&base, &id, Some("other")).await.status, 401);

    // Missing resource / api-version, unknown and user-assigned identities.
    let r = imds("api-version=2018-02-01", Some("true")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    assert_eq!(
        imds(&format!("{q}&resource="), Some("true")).await.status,
        200
    ); // first one wins
    assert_eq!(
        imds("api-version=2018-02-01&resource=", Some("true"))
            .await
            .status,
        400
    );
    assert_eq!(
        imds(&format!("resource={resource}"), Some("true"))
            .await
            .status,
        400
    );
    let uai = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    let r = imds(&format!("{q}&client_id={uai}"), Some("true")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error":"invalid_request","error_description":"Identity not found"})
    );
    let r = control("POST", &base, "identities", Some(json!({"clientId": uai}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.json()[1],
        json!({"clientId": uai, "kind": "UserAssigned"})
    );
    let r = imds(&format!("{q}&client_id={uai}"), Some("true")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["client_id"], uai);
    emu.register_identity("user-2");
    let r = imds(&format!("{q}&client_id=USER-2"), Some("true")).await;
    assert_eq!(r.json()["client_id"], "user-2");
    let r = imds(
        &format!("{q}&client_id={SYSTEM_ASSIGNED_CLIENT_ID}"),
        Some("true"),
    )
    .await;
    assert_eq!(r.json()["client_id"], SYSTEM_ASSIGNED_CLIENT_ID);
    assert_eq!(
        send(
            client()
                .post(format!("{base}/metadata/identity/oauth2/token?{q}"))
                .header("Metadata", "true")
        )
        .await
        .status,
        405
    );

    // App Service style.
    let msi = |query: &str, header: Option<&str>| {
        let mut rb = client().get(format!("{base}/msi/token?{query}"));
        if let Some(h) = header {
            rb = rb.header("X-IDENTITY-HEADER", h);
        }
        send(rb)
    };
    let q = format!("resource={resource}&api-version=2019-08-01");
    let r = msi(&q, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_request");
    assert_eq!(msi(&q, Some("wrong")).await.status, 401);
    let r = msi(&q, Some("emulator-identity-header")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_keys_in_order(
        &r.text,
        &[
            "access_token",
            "expires_on",
            "resource",
            "token_type",
            "client_id",
        ],
    );
    let expires_on: i64 = j["expires_on"].as_str().unwrap().parse().unwrap();
    assert!((now() + 3597..=now() + 3600).contains(&expires_on));
    assert_eq!(j["client_id"], SYSTEM_ASSIGNED_CLIENT_ID);
    assert_eq!(
        keep_alive(&base, &id, j["access_token"].as_str())
            .await
            .status,
        200
    );
    let r = msi(
        &format!("{q}&client_id={uai}"),
        Some("emulator-identity-header"),
    )
    .await;
    assert_eq!(r.json()["client_id"], uai);
    let r = msi(
        &format!("{q}&client_id=nope"),
        Some("emulator-identity-header"),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error_description"].clone()),
        (400, json!("Identity not found"))
    );
    assert_eq!(
        msi("api-version=2019-08-01", Some("emulator-identity-header"))
            .await
            .status,
        400
    );
    let r = control(
        "PUT",
        &base,
        "config",
        Some(json!({"identityHeader": "s3cr3t"})),
    )
    .await;
    assert_eq!(r.json()["identityHeader"], "s3cr3t");
    assert_eq!(msi(&q, Some("emulator-identity-header")).await.status, 401);
    assert_eq!(msi(&q, Some("s3cr3t")).await.status, 200);

    // Same lifetime as the token endpoint.
    emu.set_token_lifetime(Duration::from_millis(1500));
    let j = msi(&q, Some("s3cr3t")).await.json();
    let short = j["access_token"].as_str().unwrap().to_string();
    let j = imds(
        &format!("api-version=2018-02-01&resource={resource}"),
        Some("true"),
    )
    .await
    .json();
    assert_eq!(j["expires_in"], "1");

    // Faults by path; the log has kind managedIdentity with headers.
    control(
        "POST",
        &base,
        "faults",
        Some(json!({"path":"/msi/token","responses":[{"status":500}]})),
    )
    .await;
    assert_eq!(msi(&q, Some("s3cr3t")).await.status, 500);
    let log = emu.requests();
    let mi: Vec<_> = log.iter().filter(|e| e.kind == "managedIdentity").collect();
    assert!(mi.len() >= 10);
    assert!(mi
        .iter()
        .any(|e| e.headers.get("metadata").map(String::as_str) == Some("true")));
    assert!(mi
        .iter()
        .any(|e| e.headers.contains_key("x-identity-header")));
    assert_eq!(mi.last().unwrap().status, Some(500));
    let r = control("GET", &base, "requests?kind=managedIdentity", None).await;
    assert_eq!(r.json().as_array().unwrap().len(), mi.len());

    // Token expiry applies to managed-identity tokens too.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = keep_alive(&base, &id, Some(&short)).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );

    // Reset: user-assigned identities gone, header back to the default.
    control("POST", &base, "reset", None).await;
    let ids = control("GET", &base, "identities", None).await.json();
    assert_eq!(
        ids,
        json!([{"clientId": SYSTEM_ASSIGNED_CLIENT_ID, "kind": "SystemAssigned"}])
    );
    assert_eq!(msi(&q, Some("emulator-identity-header")).await.status, 200);
}

/// Over TLS the assertion's audience is the `https` token URL, as MSAL sends it.
#[tokio::test]
async fn certificate_assertions_over_https() {
    let a = cert_a();
    let emu = Emulator::start(Config {
        tls: Some(graph_emulator::TlsIdentity::generate().unwrap()),
        ..Config::default()
    })
    .await
    .unwrap();
    emu.register_app_certificate(TENANT, CLIENT, &a.der);
    let base = emu.base_url();
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(emu.certificate_pem().unwrap().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let url = token_url(&base);
    assert!(url.starts_with("https://"));
    let request_with = |claims: Value| {
        let jwt = sign(&header_for(a, Alg::Ps256), &claims, &a.key, Alg::Ps256);
        https
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("scope", SCOPE),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &jwt),
            ]))
    };
    let request = |aud: &str| request_with(claims_for(aud, CLIENT));
    let r = send(request(&url.replace("https://", "http://"))).await;
    check(&r, 401, "invalid_client", 50012);
    let r = send(request(&url)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["appidacr"], "2", "a certificate credential");
    assert_eq!(claims["tid"], graph_emulator::tenant_guid(TENANT));

    // MSAL.NET sends the time claims as strings of digits ("exp":"1714564799"); Entra ID takes
    // them, so does the emulator. Other strings stay malformed.
    let mut msal_style = claims_for(&url, CLIENT);
    for k in ["nbf", "exp"] {
        msal_style[k] = json!(msal_style[k].to_string());
    }
    assert!(msal_style["exp"].is_string());
    let r = send(request_with(msal_style)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut bad = claims_for(&url, CLIENT);
    bad["exp"] = json!("soon");
    check(
        &send(request_with(bad)).await,
        400,
        "invalid_request",
        50027,
    );
}
