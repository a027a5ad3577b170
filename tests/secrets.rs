//! Secrets stay where they belong: no user info of a URL in any message, no secret sent along a
//! redirect, no secret printable through `Debug`, and tenant ids that stay one path segment.
//! The library has one process-wide session, so the tests that connect run one at a time.

mod common;

use std::sync::Mutex;

use graph_emulator::{spawn_blocking_runtime, Config, EmulatorThread, FaultResponse, FaultScript};
use mgkeepalive::auth::Secret;
use mgkeepalive::environment::{self, EnvironmentDefinition};
use mgkeepalive::graph::{self, KeepAliveOptions};
use mgkeepalive::operation::run_blocking;
use mgkeepalive::runtime::{EnvironmentProxy, ExplicitProxy, ProxySettings};
use mgkeepalive::session::{self, ConnectRequest};
use mgkeepalive::CoreError;
use zeroize::Zeroizing;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const TENANT: &str = "contoso.onmicrosoft.com";
const APP: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT_SECRET: &str = "s3cr3t~value";

/// A proxy user and a password with `@`, `:` and a percent-escape, and the pieces of them that
/// must never show (a redaction that stops at the first `@` or `:` would leave one of them).
const USER: &str = "pRoxyUser";
const PASSWORD: &str = "lEft7@mIddle8:rIght9%40end";
const PIECES: [&str; 5] = ["pRoxyUser", "lEft7", "mIddle8", "rIght9", "%40end"];

fn leaked(text: &str) -> Vec<&'static str> {
    let text = text.to_lowercase();
    PIECES.into_iter().filter(|piece| text.contains(&piece.to_lowercase())).collect()
}

fn assert_hidden(what: &str, text: &str) {
    assert!(leaked(text).is_empty(), "{what} shows {:?}: {text}", leaked(text));
}

fn with_user_info(scheme_and_rest: &str) -> String {
    let (scheme, rest) = scheme_and_rest.split_once("://").unwrap();
    format!("{scheme}://{USER}:{PASSWORD}@{rest}")
}

fn error_text(error: &CoreError) -> String {
    format!("{} {}", error, mgkeepalive::ffi::core_error_json(error))
}

fn connect(json: serde_json::Value, secret: &[u8]) -> Result<serde_json::Value, CoreError> {
    let request: ConnectRequest = serde_json::from_value(json).unwrap();
    let secret = Zeroizing::new(secret.to_vec());
    run_blocking(None, async move { Ok(serde_json::to_value(session::connect(request, secret).await?).unwrap()) })
}

fn emulator_environment(name: &str, emu: &EmulatorThread) {
    environment::add(EnvironmentDefinition { name: name.into(), azure_ad_endpoint: emu.base_url(), graph_endpoint: emu.base_url() })
        .unwrap();
}

fn secret_request(environment: &str) -> serde_json::Value {
    serde_json::json!({"authType": "ClientSecret", "environment": environment, "tenantId": TENANT, "clientId": APP})
}

fn requests_of(emu: &EmulatorThread, kind: &str) -> Vec<graph_emulator::LoggedRequest> {
    emu.requests().into_iter().filter(|r| r.kind == kind).collect()
}

#[test]
fn unusable_proxies_are_named_without_user_info() {
    for url in [
        with_user_info("socks5h://127.0.0.1:1080"),
        with_user_info("ftp://proxy.example:21"),
        with_user_info("http://127.0.0.1:notaport"),
        format!("{USER}:{PASSWORD}@"),
    ] {
        let environment_proxy = serde_json::json!({"httpsProxy": url});
        let explicit = serde_json::json!({"url": url, "username": USER, "password": PASSWORD});

        // Keep-alive options (Invoke-MgKeepCommunicationCallAlive with HTTPS_PROXY or -Proxy).
        for options in [serde_json::json!({"environmentProxy": environment_proxy}), serde_json::json!({"proxy": explicit})] {
            let error = KeepAliveOptions::from_json(&options.to_string()).expect_err(&url);
            assert!(matches!(error, CoreError::InvalidArgument { parameter: "Proxy", .. }), "{error:?}");
            assert_hidden("the keep-alive options error", &error_text(&error));
        }
        // Connect-MgGraph with HTTPS_PROXY set.
        let error = connect(
            serde_json::json!({"authType": "AccessToken", "environmentProxy": environment_proxy}),
            b"eyJ0eXAiOiJKV1QifQ.e30.sig",
        )
        .expect_err(&url);
        assert!(matches!(error, CoreError::InvalidArgument { parameter: "Proxy", .. }), "{error:?}");
        assert_hidden("the connect error", &error_text(&error));
    }
}

#[test]
fn endpoints_are_named_without_user_info() {
    for (parameter, endpoint) in [
        ("AzureADEndpoint", with_user_info("https://login.example")),
        ("AzureADEndpoint", with_user_info("ftp://login.example")),
        ("GraphEndpoint", with_user_info("http://graph.example")),
    ] {
        let mut definition = serde_json::json!({"name": "UserInfoCloud", "azureADEndpoint": "https://login.example", "graphEndpoint": "https://graph.example"});
        definition[parameter.replace("AzureAD", "azureAD").replace("Graph", "graph")] = endpoint.clone().into();
        let error = environment::add(serde_json::from_value(definition).unwrap()).expect_err(&endpoint);
        assert_hidden("the environment error", &error_text(&error));
    }
    // IDENTITY_ENDPOINT and MGKEEPALIVE_IMDS_ENDPOINT.
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    for managed in [
        serde_json::json!({"identityEndpoint": with_user_info("http://metadata.example/msi/token")}),
        serde_json::json!({"imdsEndpoint": with_user_info("ftp://169.254.169.254")}),
        serde_json::json!({"imdsEndpoint": format!("{USER}:{PASSWORD}@ not a url")}),
    ] {
        let error = connect(serde_json::json!({"authType": "ManagedIdentity", "managedIdentity": managed}), b"header").unwrap_err();
        assert!(matches!(error, CoreError::InvalidArgument { parameter: "Identity", .. }), "{error:?}");
        assert_hidden("the managed identity error", &error_text(&error));
    }
}

#[test]
fn redirect_targets_and_proxy_failures_are_named_without_user_info() {
    let emu = common::emulator();
    let session = common::session_at(&emu.base_url(), "token");
    let id = emu.create_call(None);
    let options = KeepAliveOptions { max_retry: 0, trace: true, ..KeepAliveOptions::default() };

    // Followed to a closed port: reqwest's error names the redirect target.
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(307).header("Location", &with_user_info("http://127.0.0.1:1/x"))]));
    let error = common::block_on(graph::keep_alive(&session, &id, &options)).unwrap_err();
    assert!(matches!(error, CoreError::Transport { .. }), "{error:?}");
    assert_hidden("the redirect failure", &error_text(&error));

    // Not followed (300): the answer's Location header, in the error and in the -Debug trace.
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(300).header("Location", &with_user_info("http://127.0.0.1:1/x"))]));
    let error = common::block_on(graph::keep_alive(&session, &id, &options)).unwrap_err();
    let CoreError::Graph(graph_error) = &error else { panic!("{error:?}") };
    assert!(graph_error.headers["location"][0].ends_with("@127.0.0.1:1/x"), "{:?}", graph_error.headers);
    assert_hidden("the redirect answer", &error_text(&error));

    // A proxy that does not answer, named with a password.
    let proxied = KeepAliveOptions::from_json(
        &serde_json::json!({"maxRetry": 0, "timeoutMs": 5000, "environmentProxy": {"httpProxy": with_user_info("http://127.0.0.1:1")}}).to_string(),
    )
    .unwrap();
    let error = common::block_on(graph::keep_alive(&session, &id, &proxied)).unwrap_err();
    assert_hidden("the proxy failure", &error_text(&error));
}

#[test]
fn proxy_secrets_never_print_through_debug() {
    let explicit = serde_json::json!({"url": with_user_info("http://127.0.0.1:3128"), "username": "u", "password": PASSWORD});
    let environment_proxy = serde_json::json!({"httpsProxy": with_user_info("http://127.0.0.1:3128"), "httpProxy": with_user_info("http://127.0.0.1:3129")});
    let explicit_proxy: ExplicitProxy = serde_json::from_value(explicit.clone()).unwrap();
    let env_proxy: EnvironmentProxy = serde_json::from_value(environment_proxy.clone()).unwrap();
    let settings = ProxySettings::new(Some(explicit_proxy.clone()), Some(env_proxy.clone())).unwrap();
    let options = KeepAliveOptions::from_json(&serde_json::json!({"proxy": explicit, "environmentProxy": environment_proxy}).to_string()).unwrap();
    let request: ConnectRequest = serde_json::from_value(serde_json::json!({
        "authType": "ClientSecret", "tenantId": TENANT, "clientId": APP, "proxy": explicit, "environmentProxy": environment_proxy
    }))
    .unwrap();
    for printed in [
        format!("{explicit_proxy:?}"),
        format!("{env_proxy:?}"),
        format!("{settings:?}"),
        format!("{options:?}"),
        format!("{request:?}"),
        format!("{:#?}", Secret::new(PASSWORD.into())),
    ] {
        let password_pieces: Vec<_> = leaked(&printed).into_iter().filter(|p| *p != USER).collect();
        assert!(password_pieces.is_empty(), "Debug shows {password_pieces:?}: {printed}");
    }
}

#[test]
fn token_requests_follow_no_redirect() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    session::disconnect();
    let (login, elsewhere) = (common::emulator(), common::emulator());
    emulator_environment("RedirectingLogin", &login);
    // The target would accept the secret: a request that reached it would sign in.
    elsewhere.register_app(TENANT, APP, CLIENT_SECRET);
    let target = format!("{}/{TENANT}/oauth2/v2.0/token", elsewhere.base_url());
    login.push_faults(FaultScript::for_path("/oauth2/v2.0/token", vec![FaultResponse::status(307).header("Location", &target)]));

    let error = connect(secret_request("RedirectingLogin"), CLIENT_SECRET.as_bytes()).unwrap_err();
    let CoreError::Auth(auth) = &error else { panic!("{error:?}") };
    assert_eq!(auth.http_status, Some(307));
    assert!(auth.message.contains("redirect") && auth.message.contains(&target), "{}", auth.message);
    assert!(requests_of(&elsewhere, "token").is_empty(), "the secret was sent to the redirect target");
    assert_eq!(requests_of(&login, "token").len(), 1);

    // The App Service identity request and its X-IDENTITY-HEADER.
    let target = format!("{}/msi/token", elsewhere.base_url());
    login.push_faults(FaultScript::for_path("/msi/token", vec![FaultResponse::status(302).header("Location", &target)]));
    let error = connect(
        serde_json::json!({"authType": "ManagedIdentity", "managedIdentity": {"identityEndpoint": format!("{}/msi/token", login.base_url())}}),
        graph_emulator::DEFAULT_IDENTITY_HEADER.as_bytes(),
    )
    .unwrap_err();
    let CoreError::Auth(auth) = &error else { panic!("{error:?}") };
    assert_eq!(auth.http_status, Some(302));
    assert!(requests_of(&elsewhere, "managedIdentity").is_empty(), "X-IDENTITY-HEADER was sent to the redirect target");
    session::disconnect();
}

#[test]
fn graph_redirects_keep_authorization_on_the_same_host_only() {
    let (graph_host, elsewhere) = (common::emulator(), common::emulator());
    let session = common::session_at(&graph_host.base_url(), "the-bearer-token");
    let options = KeepAliveOptions { max_retry: 0, ..KeepAliveOptions::default() };
    let (id, moved_here, moved_away) = (graph_host.create_call(None), graph_host.create_call(None), elsewhere.create_call(None));
    let url = |emu: &EmulatorThread, call: &str| format!("{}/v1.0/communications/calls/{call}/keepAlive", emu.base_url());

    graph_host.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(307).header("Location", &url(&graph_host, &moved_here))]));
    common::block_on(graph::keep_alive(&session, &id, &options)).expect("a same-host redirect is followed with the token");
    let followed = graph_host.requests_for_call(&moved_here);
    assert_eq!(followed.len(), 1);
    assert_eq!(followed[0].headers["authorization"], "Bearer the-bearer-token");

    graph_host.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(307).header("Location", &url(&elsewhere, &moved_away))]));
    let error = common::block_on(graph::keep_alive(&session, &id, &options)).unwrap_err();
    let CoreError::Graph(answer) = &error else { panic!("{error:?}") };
    assert_eq!(answer.http_status, 401, "the other host saw no token");
    let followed = elsewhere.requests_for_call(&moved_away);
    assert_eq!(followed.len(), 1, "the redirect to another host is followed");
    assert!(!followed[0].headers.contains_key("authorization"), "Authorization went to another host: {:?}", followed[0].headers);
}

#[test]
fn tenant_ids_that_are_not_one_clean_segment_are_refused() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    session::disconnect();
    let emu = spawn_blocking_runtime(Config::default()).unwrap();
    emulator_environment("TenantCheck", &emu);
    emu.register_app(TENANT, APP, CLIENT_SECRET);
    for tenant in [".", "..", " .. ", "a\tb", "a\nb", &"x".repeat(2000)] {
        let mut request = secret_request("TenantCheck");
        request["tenantId"] = tenant.into();
        let error = connect(request, CLIENT_SECRET.as_bytes()).unwrap_err();
        let CoreError::InvalidArgument { parameter: "TenantId", message } = &error else { panic!("{tenant:?}: {error:?}") };
        assert!(message.contains("-TenantId"), "{message}");
    }
    assert!(requests_of(&emu, "token").is_empty(), "nothing is sent for a refused tenant id");
    connect(secret_request("TenantCheck"), CLIENT_SECRET.as_bytes()).expect("a domain name is one segment");
    session::disconnect();
}
