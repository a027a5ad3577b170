//! A call's whole life through Graph's own routes: create, read, keep alive (both spellings of the
//! action), end; and the JWT-shaped access tokens the token endpoints issue.

mod common;

use base64::Engine;
use common::*;
use graph_emulator::{Config, Emulator};
use serde_json::{json, Value};

const TENANT: &str = "0d4b6a3c-1f2e-4a5b-8c7d-9e0f1a2b3c4d";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

fn call_body() -> Value {
    json!({
        "@odata.type": "#microsoft.graph.call",
        "callbackUri": "https://bot.contoso.com/callback",
        "targets": [{
            "@odata.type": "#microsoft.graph.invitationParticipantInfo",
            "identity": {"@odata.type": "#microsoft.graph.identitySet",
                         "user": {"@odata.type": "#microsoft.graph.identity", "id": "8e8d5c8f-3b59-4b4e-93f5-2e5e1e8c6a2b"}}
        }],
        "requestedModalities": ["audio"],
        "mediaConfig": {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"},
        "tenantId": TENANT
    })
}

async fn graph(method: reqwest::Method, url: String, token: &str, body: Option<&Value>) -> Resp {
    let mut rb = client()
        .request(method, url)
        .header("Authorization", format!("Bearer {token}"));
    rb = match body {
        Some(b) => rb
            .header("Content-Type", "application/json")
            .body(b.to_string()),
        None => rb.header("Content-Length", "0"),
    };
    send(rb).await
}

/// The claims of a JWT-shaped token.
fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["typ"], "JWT");
    assert!(!b64.decode(parts[2]).unwrap().is_empty());
    serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap()
}

async fn secret_token(base: &str, tenant: &str) -> String {
    let r = token_request(
        base,
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_created_call_lives_until_it_is_deleted() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let base = emu.base_url();
    emu.register_app(TENANT, CLIENT, "s3cret");
    let token = secret_token(&base, TENANT).await;
    for version in ["v1.0", "beta"] {
        let calls = format!("{base}/{version}/communications/calls");
        let r = graph(
            reqwest::Method::POST,
            calls.clone(),
            &token,
            Some(&call_body()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let call = r.json();
        let id = call["id"].as_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert_eq!(id, id.to_lowercase());
        assert_eq!(
            call["@odata.context"],
            format!("{base}/{version}/$metadata#communications/calls/$entity")
        );
        assert_eq!(call["state"], "establishing");
        assert_eq!(call["direction"], "outgoing");
        assert_eq!(call["callbackUri"], "https://bot.contoso.com/callback");
        assert_eq!(call["targets"], call_body()["targets"]);
        assert_eq!(call["requestedModalities"], json!(["audio"]));
        assert_eq!(call["mediaConfig"], call_body()["mediaConfig"]);
        assert_eq!(call["tenantId"], TENANT);
        assert_eq!(call["source"]["identity"]["application"]["id"], CLIENT);
        assert_eq!(r.header("location"), Some(format!("{calls}/{id}").as_str()));
        // Graph's property order: the context, the type, then the state.
        assert!(r.text.starts_with(r##"{"@odata.context":"##));
        assert!(r.text.contains(r##""@odata.type":"#microsoft.graph.call","state":"establishing","direction":"outgoing""##));
        assert_eq!(emu.call_state(&id).unwrap().state, "Active");

        let item = format!("{calls}/{id}");
        let r = graph(reqwest::Method::GET, item.clone(), &token, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let read = r.json();
        assert_eq!(read["id"], id.as_str());
        assert_eq!(read["state"], "established");
        assert_eq!(read["callbackUri"], call["callbackUri"]);
        assert_eq!(read["myParticipantId"], call["myParticipantId"]);

        // Both spellings of the action, as Graph accepts them.
        for action in ["keepAlive", "microsoft.graph.keepAlive"] {
            let r = graph(
                reqwest::Method::POST,
                format!("{item}/{action}"),
                &token,
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{action}: {}", r.text);
        }
        assert_eq!(emu.call_state(&id).unwrap().keep_alive_count, 2);

        let r = graph(reqwest::Method::DELETE, item.clone(), &token, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(r.text.is_empty());
        let state = emu.call_state(&id).unwrap();
        assert_eq!(state.state, "Ended");
        assert_eq!(state.end_reason.as_deref(), Some("Ended"));

        for (method, url) in [
            (reqwest::Method::GET, item.clone()),
            (reqwest::Method::DELETE, item.clone()),
            (
                reqwest::Method::POST,
                format!("{item}/microsoft.graph.keepAlive"),
            ),
        ] {
            let r = graph(method.clone(), url, &token, None).await;
            assert_eq!(r.status, 404, "{method}: {}", r.text);
            assert_eq!(r.json()["error"]["code"], "itemNotFound");
            assert_eq!(
                r.json()["error"]["message"],
                format!("Call '{id}' was not found or has ended.")
            );
        }
    }
    let kinds: Vec<String> = emu
        .requests()
        .iter()
        .filter(|r| r.kind == "call")
        .map(|r| format!("{} {:?}", r.method, r.status))
        .collect();
    assert_eq!(kinds.len(), 10, "{kinds:?}");
}

#[tokio::test]
async fn call_routes_check_auth_method_and_body() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let base = emu.base_url();
    let calls = format!("{base}/v1.0/communications/calls");
    // No token at all.
    let r = send(
        client()
            .post(calls.clone())
            .header("Content-Type", "application/json")
            .body(call_body().to_string()),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "InvalidAuthenticationToken");
    // Strict mode: an unknown token is refused on every call route.
    emu.register_token("known", std::time::Duration::from_secs(60));
    let id = emu.create_call(None);
    for (method, url) in [
        (reqwest::Method::POST, calls.clone()),
        (reqwest::Method::GET, format!("{calls}/{id}")),
        (reqwest::Method::DELETE, format!("{calls}/{id}")),
    ] {
        let r = graph(method.clone(), url, "unknown", Some(&call_body())).await;
        assert_eq!(r.status, 401, "{method}");
    }
    assert_eq!(emu.call_state(&id).unwrap().state, "Active");

    let r = graph(reqwest::Method::GET, calls.clone(), "known", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = graph(reqwest::Method::PUT, format!("{calls}/{id}"), "known", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, DELETE"));

    let r = graph(
        reqwest::Method::POST,
        calls.clone(),
        "known",
        Some(&json!([1])),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "BadRequest");
    let r = graph(
        reqwest::Method::POST,
        calls.clone(),
        "known",
        Some(&json!({"targets": []})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(emu.calls().len() == 1, "a refused create makes no call");

    // A call made through the control API can be read and ended through Graph's routes too.
    let r = graph(reqwest::Method::GET, format!("{calls}/{id}"), "known", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], id.as_str());
    assert_eq!(r.json()["state"], "established");
    let r = graph(
        reqwest::Method::DELETE,
        format!("{calls}/{id}"),
        "known",
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(keep_alive(&base, &id, Some("known")).await.status, 404);

    // A call id is one percent-encoded segment.
    let odd = emu.create_call(Some("a/b"));
    let r = graph(
        reqwest::Method::GET,
        format!("{calls}/a%2Fb"),
        "known",
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], odd.as_str());

    // Fault scripts with a path reach the call routes.
    emu.push_faults(graph_emulator::FaultScript::for_path(
        "/communications/calls",
        vec![graph_emulator::FaultResponse::status(503)],
    ));
    let r = graph(reqwest::Method::POST, calls, "known", Some(&call_body())).await;
    assert_eq!(r.status, 503);
}

#[tokio::test]
async fn created_calls_are_kept_alive_in_batches() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let base = emu.base_url();
    let r = graph(
        reqwest::Method::POST,
        format!("{base}/beta/communications/calls"),
        "t",
        Some(&call_body()),
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": format!("/communications/calls/{id}/microsoft.graph.keepAlive")},
        {"id": "2", "method": "POST", "url": format!("/communications/calls/{id}/keepAlive")}
    ]});
    let r = graph(
        reqwest::Method::POST,
        format!("{base}/v1.0/$batch"),
        "t",
        Some(&batch),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let statuses: Vec<i64> = r.json()["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 200]);
    assert_eq!(emu.call_state(&id).unwrap().keep_alive_count, 2);
}

#[tokio::test]
async fn issued_tokens_are_jwts_naming_tenant_app_and_role() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let base = emu.base_url();
    emu.register_app(TENANT, CLIENT, "s3cret");
    emu.register_app("contoso.onmicrosoft.com", CLIENT, "s3cret");

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = secret_token(&base, TENANT).await;
    let c = claims(&token);
    assert_eq!(c["tid"], TENANT);
    assert_eq!(c["appid"], CLIENT);
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["roles"], json!(["Calls.Initiate.All"]));
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(c["oid"], c["sub"]);
    let iat = c["iat"].as_u64().unwrap();
    assert!(iat >= before && c["nbf"] == c["iat"]);
    assert_eq!(c["exp"].as_u64().unwrap(), iat + 3599);
    // The token it issued passes (strict mode is on now) ...
    let id = emu.create_call(None);
    assert_eq!(keep_alive(&base, &id, Some(&token)).await.status, 200);
    // ... a look-alike does not.
    let forged = format!("{}x", token);
    assert_eq!(keep_alive(&base, &id, Some(&forged)).await.status, 401);

    // A tenant named by domain gets a stable GUID, the same as the library function's.
    let by_name = claims(&secret_token(&base, "contoso.onmicrosoft.com").await);
    let tid = by_name["tid"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(tid).is_ok());
    assert_eq!(tid, graph_emulator::tenant_guid("contoso.onmicrosoft.com"));
    assert_eq!(
        claims(&secret_token(&base, "contoso.onmicrosoft.com").await)["tid"],
        tid
    );
    assert_ne!(by_name["oid"], c["oid"]);

    // Managed identity tokens: the identity's client id, the requested resource.
    let r = send(
        client()
            .get(format!(
                "{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com"
            ))
            .header("Metadata", "true"),
    )
    .await;
    assert_eq!(r.status, 200);
    let mi = claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!(mi["appid"], graph_emulator::SYSTEM_ASSIGNED_CLIENT_ID);
    assert_eq!(mi["tid"], graph_emulator::MANAGED_IDENTITY_TENANT_ID);
    assert_eq!(mi["aud"], "https://graph.microsoft.com");
    assert_eq!(mi["appidacr"], "0");

    // A created call's tenant comes from the token when the body names none.
    let mut body = call_body();
    body.as_object_mut().unwrap().remove("tenantId");
    let r = graph(
        reqwest::Method::POST,
        format!("{base}/v1.0/communications/calls"),
        &token,
        Some(&body),
    )
    .await;
    assert_eq!(r.json()["tenantId"], TENANT);
}

#[tokio::test]
async fn tokens_issued_through_the_control_api_are_jwts_for_access_token_sign_in() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let base = emu.base_url();
    let r = control(
        "POST",
        &base,
        "tokens/issue",
        Some(json!({"tenantId": TENANT, "clientId": CLIENT, "expiresInSecs": 60})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json()["token"].as_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!(c["tid"], TENANT);
    assert_eq!(c["appid"], CLIENT);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["exp"].as_u64().unwrap(), c["iat"].as_u64().unwrap() + 60);
    assert!(emu.config().strict_auth, "registered: strict mode on");
    let id = emu.create_call(None);
    assert_eq!(keep_alive(&base, &id, Some(&token)).await.status, 200);
    assert_eq!(keep_alive(&base, &id, Some("other")).await.status, 401);

    let lib = emu.issue_token(
        "contoso.onmicrosoft.com",
        CLIENT,
        std::time::Duration::from_secs(5),
    );
    assert_eq!(
        claims(&lib)["tid"],
        graph_emulator::tenant_guid("contoso.onmicrosoft.com")
    );
    assert_eq!(keep_alive(&base, &id, Some(&lib)).await.status, 200);

    let r = control(
        "POST",
        &base,
        "tokens/issue",
        Some(json!({"tenantId": TENANT})),
    )
    .await;
    assert_eq!(r.status, 400);
}
