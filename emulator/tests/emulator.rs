//! End-to-end tests of the emulator over real HTTP.

use std::time::{Duration, Instant};

use graph_emulator::{Config, Emulator, FaultResponse, FaultScript};
use serde_json::{json, Value};

mod common;

use common::{client, control, keep_alive, send, token_request, Resp};

async fn start() -> Emulator {
    Emulator::start(Config::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_ok_and_not_found() {
    let emu = start().await;
    let base = emu.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    let id = emu.create_call(None);
    assert_eq!(id.len(), 36);
    assert_eq!(id, id.to_lowercase());

    let r = send(
        client()
            .post(format!("{base}/v1.0/communications/calls/{id}/keepAlive"))
            .header("Authorization", "Bearer t")
            .header("client-request-id", "my-crid")
            .header("Content-Length", "0"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, "");
    assert_eq!(r.header("client-request-id"), Some("my-crid"));
    assert_eq!(r.header("request-id").map(str::len), Some(36));
    assert!(r
        .header("x-ms-ags-diagnostic")
        .unwrap()
        .contains("ServerInfo"));
    assert!(r.header("date").is_some());

    let st = emu.call_state(&id).unwrap();
    assert_eq!(st.state, "Active");
    assert_eq!(st.keep_alive_count, 1);
    assert!(st.last_keep_alive.is_some());

    let r = keep_alive(&base, "no-such-call", Some("t")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(j["error"]["code"], "itemNotFound");
    assert_eq!(
        j["error"]["message"],
        "Call 'no-such-call' was not found or has ended."
    );
    let inner = &j["error"]["innerError"];
    assert_eq!(
        inner["client-request-id"].as_str(),
        r.header("client-request-id")
    );
    assert!(inner["date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(inner["request-id"].as_str().unwrap().len(), 36);
    // Field order as Graph sends it.
    assert!(r.text.find("\"code\"").unwrap() < r.text.find("\"message\"").unwrap());
    assert!(r.text.find("\"message\"").unwrap() < r.text.find("\"innerError\"").unwrap());

    emu.end_call(&id);
    let r = keep_alive(&base, &id, Some("t")).await;
    assert_eq!(r.status, 404);
    let st = emu.call_state(&id).unwrap();
    assert_eq!(st.state, "Ended");
    assert_eq!(st.end_reason.as_deref(), Some("Ended"));

    // Non-empty body and wrong method.
    let id2 = emu.create_call(Some("c2"));
    let r = send(
        client()
            .post(format!("{base}/v1.0/communications/calls/{id2}/keepAlive"))
            .header("Authorization", "Bearer t")
            .body("{}"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "BadRequest");
    let r = send(client().get(format!("{base}/v1.0/communications/calls/c2/keepAlive"))).await;
    assert_eq!(r.status, 405);
    assert_eq!(emu.call_state("c2").unwrap().keep_alive_count, 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_at_compressed_time() {
    let emu = Emulator::start(Config {
        call_timeout: Duration::from_millis(400),
        ..Config::default()
    })
    .await
    .unwrap();
    let base = emu.base_url();
    // "short" is kept every half timeout, "idle" never. A keep-alive is only sure to find "short"
    // active when answered less than the timeout after the previous keep-alive (or the creation)
    // was sent; on a loaded machine a gap can be longer, which proves nothing: the round starts
    // again with the calls created anew and the timeout (and so the interval) doubled.
    let mut timeout = Duration::from_millis(400);
    let mut rounds = 0;
    let (id, idle) = 'round: loop {
        rounds += 1;
        assert!(rounds <= 6, "never three keep-alives less than {timeout:?} apart");
        emu.set_call_timeout(timeout);
        let mut previous = Instant::now();
        let id = emu.create_call(Some("short"));
        let idle = emu.create_call(Some("idle"));
        for _ in 0..3 {
            tokio::time::sleep(timeout / 2).await;
            let sent = Instant::now();
            let status = keep_alive(&base, &id, Some("t")).await.status;
            if previous.elapsed() >= timeout {
                timeout *= 2;
                continue 'round;
            }
            assert_eq!(status, 200);
            previous = sent;
        }
        break (id, idle);
    };
    // One and a half timeouts after creation, "idle" had no keep-alive: ended by the timeout.
    let st = emu.call_state(&idle).unwrap();
    assert_eq!(st.state, "Ended");
    assert_eq!(st.end_reason.as_deref(), Some("KeepAliveTimeout"));
    assert_eq!(keep_alive(&base, &idle, Some("t")).await.status, 404);

    tokio::time::sleep(timeout + Duration::from_millis(100)).await;
    let r = keep_alive(&base, &id, Some("t")).await;
    assert_eq!(r.status, 404);
    let st = control("GET", &base, "calls/short", None).await.json();
    assert_eq!(st["state"], "Ended");
    assert_eq!(st["endReason"], "KeepAliveTimeout");
    assert_eq!(st["keepAliveCount"], 3);

    // Fractional timeout through the control API.
    let cfg = control(
        "PUT",
        &base,
        "config",
        Some(json!({"callTimeoutSecs": 3.5})),
    )
    .await
    .json();
    assert_eq!(cfg["callTimeoutSecs"], 3.5);
    assert_eq!(cfg["tokenLifetimeSecs"], 3599.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_path_decoding_and_shapes() {
    let emu = start().await;
    let base = emu.base_url();
    emu.create_call(Some("a/b"));
    emu.create_call(Some("x y+é"));

    assert_eq!(keep_alive(&base, "a%2Fb", Some("t")).await.status, 200);
    assert_eq!(
        keep_alive(&base, "x%20y%2B%C3%A9", Some("t")).await.status,
        200
    );
    // beta and lower-case keepalive
    let r = send(
        client()
            .post(format!("{base}/beta/communications/calls/a%2Fb/keepalive"))
            .header("Authorization", "Bearer t"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(emu.call_state("a/b").unwrap().keep_alive_count, 2);

    // An unencoded slash is a different shape.
    let r = keep_alive(&base, "a/b", Some("t")).await;
    assert_eq!(r.status, 404);
    let j = r.json();
    assert_eq!(j["error"]["code"], "UnknownError");
    assert!(j["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Resource not found for the segment"));
    // Invalid UTF-8 after decoding.
    let r = keep_alive(&base, "%FF", Some("t")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "BadRequest");
    // Unknown version.
    let r = send(
        client()
            .post(format!("{base}/v2.0/communications/calls/a%2Fb/keepAlive"))
            .header("Authorization", "Bearer t"),
    )
    .await;
    assert_eq!(r.status, 404);

    let log = emu.requests();
    assert_eq!(
        log[0].raw_path,
        "/v1.0/communications/calls/a%2Fb/keepAlive"
    );
    assert_eq!(log[0].call_id.as_deref(), Some("a/b"));
    assert_eq!(log[1].call_id.as_deref(), Some("x y+é"));
    assert_eq!(log[2].api_version.as_deref(), Some("beta"));
    assert_eq!(log[3].call_id, None);
    assert_eq!(log[3].kind, "other");
    assert_eq!(log[4].call_id, None);
    assert_eq!(log[4].kind, "keepAlive");
    assert_eq!(log[5].api_version, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication() {
    let emu = start().await;
    let base = emu.base_url();
    let id = emu.create_call(None);

    let r = keep_alive(&base, &id, None).await;
    assert_eq!(r.status, 401);
    let j = r.json();
    assert_eq!(j["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(j["error"]["message"], "Access token is empty.");
    let r = send(
        client()
            .post(format!("{base}/v1.0/communications/calls/{id}/keepAlive"))
            .header("Authorization", "Basic abc"),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Access token validation failure."
    );
    let r = send(
        client()
            .post(format!("{base}/v1.0/communications/calls/{id}/keepAlive"))
            .header("Authorization", "Bearer "),
    )
    .await;
    assert_eq!(r.status, 401);
    // Any non-empty token by default.
    assert_eq!(keep_alive(&base, &id, Some("anything")).await.status, 200);

    // Strict mode once a token is registered.
    let r = control(
        "POST",
        &base,
        "tokens",
        Some(json!({"token":"good","expiresInSecs":60})),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(keep_alive(&base, &id, Some("good")).await.status, 200);
    let mut kept = 2; // "anything" before strict mode, then "good"
    // "old" lives 0.2 s: accepted when the keep-alive is answered within its lifetime of sending
    // its registration. On a loaded machine it can take longer, which proves nothing: "old" is
    // registered anew with the lifetime doubled and tried again.
    let mut lifetime = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts <= 6, "never a keep-alive within {lifetime:?} of registering a token");
        let registering = Instant::now();
        control(
            "POST",
            &base,
            "tokens",
            Some(json!({"token":"old","expiresInSecs":lifetime.as_secs_f64()})),
        )
        .await;
        let status = keep_alive(&base, &id, Some("old")).await.status;
        kept += u64::from(status == 200);
        if registering.elapsed() < lifetime {
            assert_eq!(status, 200);
            break;
        }
        lifetime *= 2;
    }
    let r = keep_alive(&base, &id, Some("anything")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Access token validation failure."
    );
    tokio::time::sleep(lifetime + Duration::from_millis(50)).await;
    let r = keep_alive(&base, &id, Some("old")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        r.json()["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    assert_eq!(emu.call_state(&id).unwrap().keep_alive_count, kept);

    control("DELETE", &base, "tokens", None).await;
    assert_eq!(keep_alive(&base, &id, Some("anything")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_scripts() {
    let emu = start().await;
    let base = emu.base_url();
    let id = emu.create_call(None);
    let other = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(
        &id,
        vec![
            FaultResponse::status(429).retry_after("1"),
            FaultResponse::status(503).retry_after("2.128"),
            FaultResponse::status(204).delay_ms(300),
            FaultResponse::dropped(),
        ],
    ));

    // Other calls are not affected.
    assert_eq!(keep_alive(&base, &other, Some("t")).await.status, 200);

    let r = keep_alive(&base, &id, Some("t")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"]["code"], "TooManyRequests");
    assert!(r.header("request-id").is_some());
    let r = keep_alive(&base, &id, Some("t")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("2.128"));
    assert_eq!(r.json()["error"]["code"], "ServiceUnavailable");
    let t0 = Instant::now();
    let r = keep_alive(&base, &id, Some("t")).await;
    assert_eq!(r.status, 204);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let err = client()
        .post(format!("{base}/v1.0/communications/calls/{id}/keepAlive"))
        .header("Authorization", "Bearer t")
        .send()
        .await;
    assert!(err.is_err(), "dropped connection must fail: {err:?}");
    // Script exhausted: normal handling again; scripted answers did not touch the call.
    assert_eq!(keep_alive(&base, &id, Some("t")).await.status, 200);
    assert_eq!(emu.call_state(&id).unwrap().keep_alive_count, 1);

    // Through the control API: a path match, a raw HTML body, bodyBytes, count cycling.
    let r = control(
        "POST",
        &base,
        "faults",
        Some(json!({"path":"/keepAlive","count":3,"responses":[
            {"status":502,"body":"<html>bad gateway</html>","contentType":"text/html"},
            {"status":200,"bodyBytes":5}
        ]})),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = keep_alive(&base, &other, Some("t")).await;
    assert_eq!(
        (r.status, r.text.as_str(), r.header("content-type")),
        (502, "<html>bad gateway</html>", Some("text/html"))
    );
    let r = keep_alive(&base, &id, None).await; // faults come before auth
    assert_eq!((r.status, r.text.as_str()), (200, "xxxxx"));
    assert_eq!(keep_alive(&base, &id, Some("t")).await.status, 502);
    assert_eq!(keep_alive(&base, &id, Some("t")).await.status, 200);
    assert_eq!(keep_alive(&base, &id, Some("t")).await.text, "");

    // Clearing.
    control(
        "POST",
        &base,
        "faults",
        Some(json!({"responses":[{"status":500}]})),
    )
    .await;
    assert_eq!(
        control("GET", &base, "faults", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    control("DELETE", &base, "faults", None).await;
    assert_eq!(keep_alive(&base, &id, Some("t")).await.status, 200);
    // Invalid scripts are refused.
    let r = control(
        "POST",
        &base,
        "faults",
        Some(json!({"responses":[{"status":42}]})),
    )
    .await;
    assert_eq!(r.status, 400);

    // The log records dropped requests with a null status.
    let log = emu.requests_for_call(&id);
    assert!(log.iter().any(|e| e.status.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch() {
    let emu = start().await;
    let base = emu.base_url();
    let a = emu.create_call(Some("a/1"));
    let b = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(
        &b,
        vec![FaultResponse::status(429).retry_after("3")],
    ));

    let body = json!({"requests":[
        {"id":"1","method":"POST","url":"/communications/calls/a%2F1/keepAlive","headers":{"Content-Type":"application/json"}},
        {"id":"2","method":"POST","url":format!("/communications/calls/{b}/keepAlive")},
        {"id":"3","method":"POST","url":"communications/calls/nope/keepAlive"},
        {"id":"4","method":"GET","url":"/communications/calls/a%2F1/keepAlive"},
        {"id":"5","method":"POST","url":"/me"}
    ]});
    let post = |path: &str, body: String, auth: bool| {
        let mut rb = client()
            .post(format!("{base}/v1.0/{path}"))
            .header("Content-Type", "application/json")
            .body(body);
        if auth {
            rb = rb.header("Authorization", "Bearer t");
        }
        send(rb)
    };
    let r = post("$batch", body.to_string(), true).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let items = j["responses"].as_array().unwrap();
    let by_id = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"], Value::Null);
    assert_eq!(by_id("2")["status"], 429);
    assert_eq!(by_id("2")["headers"]["Retry-After"], "3");
    assert_eq!(by_id("2")["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(by_id("3")["body"]["error"]["code"], "itemNotFound");
    assert_eq!(by_id("4")["status"], 405);
    assert_eq!(by_id("5")["status"], 404);
    assert_eq!(emu.call_state(&a).unwrap().keep_alive_count, 1);
    assert_eq!(emu.call_state(&b).unwrap().keep_alive_count, 0);

    // %24batch works the same.
    let one = json!({"requests":[{"id":"x","method":"POST","url":format!("/communications/calls/{b}/keepAlive")}]});
    let r = post("%24batch", one.to_string(), true).await;
    assert_eq!(r.json()["responses"][0]["status"], 200);

    // Limits and validation.
    let many: Vec<Value> = (0..21).map(|i| json!({"id":i.to_string(),"method":"POST","url":"/communications/calls/a%2F1/keepAlive"})).collect();
    let r = post("$batch", json!({ "requests": many }).to_string(), true).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "BadRequest");
    let dup = json!({"requests":[{"id":"1","method":"POST","url":"/a"},{"id":"1","method":"POST","url":"/b"}]});
    assert_eq!(post("$batch", dup.to_string(), true).await.status, 400);
    assert_eq!(post("$batch", "not json".into(), true).await.status, 400);
    assert_eq!(post("$batch", one.to_string(), false).await.status, 401);

    let log = emu.requests();
    let first = &log[0];
    assert_eq!(first.kind, "batch");
    assert_eq!(first.raw_path, "/v1.0/$batch");
    let items = first.items.as_ref().unwrap();
    assert_eq!(items[0].call_id.as_deref(), Some("a/1"));
    assert_eq!(items[1].status, Some(429));
    assert_eq!(emu.requests_for_call("a/1").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint() {
    let emu = start().await;
    let base = emu.base_url();
    let tenant = "11111111-2222-3333-4444-555555555555";
    let r = control(
        "POST",
        &base,
        "apps",
        Some(json!({"tenantId":tenant,"clientId":"app-1","clientSecret":"s3cret"})),
    )
    .await;
    assert_eq!(r.status, 201);
    let scope = "https://graph.microsoft.com/.default";
    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", "app-1"),
        ("client_secret", "s3cret"),
        ("scope", scope),
    ];

    let r = token_request(&base, tenant, &good).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 3599);
    let token = j["access_token"].as_str().unwrap().to_string();
    assert!(!token.is_empty());

    // Strict mode now: the issued token works, others do not.
    let id = emu.create_call(None);
    assert_eq!(keep_alive(&base, &id, Some(&token)).await.status, 200);
    assert_eq!(keep_alive(&base, &id, Some("made-up")).await.status, 401);

    let check = |r: &Resp, status: u16, error: &str, code: u64| {
        assert_eq!(r.status, status, "{}", r.text);
        let j = r.json();
        assert_eq!(j["error"], error, "{}", r.text);
        assert_eq!(j["error_codes"][0], code);
        let d = j["error_description"].as_str().unwrap();
        assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
        assert!(
            d.contains("Trace ID: ") && d.contains("Correlation ID: ") && d.contains("Timestamp: "),
            "{d}"
        );
        assert_eq!(j["trace_id"].as_str().unwrap().len(), 36);
        assert!(j["correlation_id"].is_string() && j["timestamp"].is_string());
    };
    let mut bad_secret = good;
    bad_secret[2] = ("client_secret", "wrong");
    check(
        &token_request(&base, tenant, &bad_secret).await,
        401,
        "invalid_client",
        7000215,
    );
    check(
        &token_request(&base, "other-tenant", &good).await,
        400,
        "invalid_request",
        90002,
    );
    let mut bad_client = good;
    bad_client[1] = ("client_id", "app-2");
    check(
        &token_request(&base, tenant, &bad_client).await,
        400,
        "unauthorized_client",
        700016,
    );
    let mut bad_scope = good;
    bad_scope[3] = ("scope", "https://graph.microsoft.com/Calls.Initiate.All");
    check(
        &token_request(&base, tenant, &bad_scope).await,
        400,
        "invalid_scope",
        70011,
    );
    check(
        &token_request(&base, tenant, &good[1..]).await,
        400,
        "unsupported_grant_type",
        900144,
    );
    let mut bad_grant = good;
    bad_grant[0] = ("grant_type", "password");
    check(
        &token_request(&base, tenant, &bad_grant).await,
        400,
        "unsupported_grant_type",
        70003,
    );
    let assertion = [
        ("grant_type", "client_credentials"),
        ("client_id", "app-1"),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", "a.b.c"),
    ];
    check(
        &token_request(&base, tenant, &assertion).await,
        400,
        "invalid_request",
        50027,
    );

    // Token lifetime from config; tokens expire.
    control(
        "PUT",
        &base,
        "config",
        Some(json!({"tokenLifetimeSecs": 1})),
    )
    .await;
    let j = token_request(&base, tenant, &good).await.json();
    assert_eq!(j["expires_in"], 1);
    let short = j["access_token"].as_str().unwrap().to_string();
    assert_eq!(keep_alive(&base, &id, Some(&short)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = keep_alive(&base, &id, Some(&short)).await;
    assert_eq!(
        r.json()["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );

    // Token requests can be faulted by path.
    control(
        "POST",
        &base,
        "faults",
        Some(json!({"path":"/oauth2/v2.0/token","responses":[{"status":503}]})),
    )
    .await;
    assert_eq!(token_request(&base, tenant, &good).await.status, 503);
    assert_eq!(token_request(&base, tenant, &good).await.status, 200);

    let kinds: Vec<String> = emu.requests().iter().map(|e| e.kind.clone()).collect();
    assert_eq!(kinds[0], "token");
    assert!(kinds.iter().any(|k| k == "keepAlive"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_and_control_api() {
    let emu = start().await;
    let base = emu.base_url();

    assert_eq!(
        control("GET", &base, "health", None).await.json(),
        json!({"status":"ok"})
    );
    let r = control("POST", &base, "calls", Some(json!({"count": 3}))).await;
    assert_eq!(r.status, 201);
    let ids: Vec<String> = serde_json::from_value(r.json()["ids"].clone()).unwrap();
    assert_eq!(ids.len(), 3);
    let r = control("POST", &base, "calls", None).await;
    assert_eq!(r.json()["ids"].as_array().unwrap().len(), 1);
    let r = control("POST", &base, "calls", Some(json!({"ids": ["q/1", "q2"]}))).await;
    assert_eq!(r.json()["ids"], json!(["q/1", "q2"]));
    assert_eq!(
        control("GET", &base, "calls", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        6
    );

    let st = control("GET", &base, "calls/q%2F1", None).await.json();
    assert_eq!(st["id"], "q/1");
    assert_eq!(st["state"], "Active");
    assert_eq!(st["keepAliveCount"], 0);
    assert_eq!(st["lastKeepAlive"], Value::Null);
    assert_eq!(st["endReason"], Value::Null);
    assert!(st["deadline"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        control("GET", &base, "calls/unknown", None).await.status,
        404
    );

    let r = send(
        client()
            .post(format!(
                "{base}/v1.0/communications/calls/q%2F1/keepAlive?x=1"
            ))
            .header("Authorization", "Bearer tok")
            .header("Client-Request-Id", "crid-1")
            .header("Content-Length", "0"),
    )
    .await;
    assert_eq!(r.status, 200);
    keep_alive(&base, "q2", Some("tok")).await;

    let r = control("POST", &base, "calls/q%2F1/end", None).await;
    assert_eq!(r.json()["endReason"], "Ended");
    assert_eq!(keep_alive(&base, "q%2F1", Some("tok")).await.status, 404);

    let log = control("GET", &base, "requests?callId=q%2F1", None)
        .await
        .json();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    let e = &log[0];
    assert_eq!(e["method"], "POST");
    assert_eq!(
        e["rawPath"],
        "/v1.0/communications/calls/q%2F1/keepAlive?x=1"
    );
    assert_eq!(e["callId"], "q/1");
    assert_eq!(e["apiVersion"], "v1.0");
    assert_eq!(e["kind"], "keepAlive");
    assert_eq!(e["status"], 200);
    assert_eq!(e["bodyLength"], 0);
    assert_eq!(e["headers"]["authorization"], "Bearer tok");
    assert_eq!(e["headers"]["client-request-id"], "crid-1");
    assert_eq!(e["headers"]["content-length"], "0");
    assert!(e["time"].as_str().unwrap().contains('.'));
    assert_eq!(log[1]["status"], 404);
    assert!(log[0]["seq"].as_u64() < log[1]["seq"].as_u64());

    // Control requests are not logged.
    let all = control("GET", &base, "requests", None).await.json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    control("DELETE", &base, "requests", None).await;
    assert!(emu.requests().is_empty());

    // Reset restores everything.
    control("PUT", &base, "config", Some(json!({"callTimeoutSecs": 1}))).await;
    control("POST", &base, "tokens", Some(json!({"token":"x"}))).await;
    assert_eq!(control("POST", &base, "reset", None).await.status, 200);
    assert!(emu.calls().is_empty());
    let cfg = control("GET", &base, "config", None).await.json();
    assert_eq!(
        cfg,
        json!({"callTimeoutSecs": 2700.0, "tokenLifetimeSecs": 3599.0, "strictAuth": false, "logCapacity": 100000,
               "tokenRefreshInSecs": null, "identityHeader": "emulator-identity-header",
               "refuseBatchedKeepAlive": false})
    );
    assert_eq!(control("GET", &base, "nope", None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_non_loopback_and_shuts_down() {
    let cfg = Config {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..Config::default()
    };
    assert!(Emulator::start(cfg).await.is_err());

    let emu = start().await;
    let addr = emu.local_addr();
    emu.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_mode_answers_batched_keep_alives_400_and_leaves_single_ones_alone() {
    let emu = start().await;
    let base = emu.base_url();
    let id = emu.create_call(None);
    // A fault script for the call is left for its own request, not used by the refused item.
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(503)]));
    let r = control("PUT", &base, "config", Some(json!({"refuseBatchedKeepAlive": true}))).await;
    assert_eq!(r.json()["refuseBatchedKeepAlive"], true);

    let body = json!({"requests":[
        {"id":"1","method":"POST","url":format!("/communications/calls/{id}/keepAlive"),"headers":{"client-request-id":"c-1"}},
        {"id":"2","method":"POST","url":"/communications/calls/never-created/keepAlive"}
    ]});
    let r = send(
        client()
            .post(format!("{base}/v1.0/$batch"))
            .header("Authorization", "Bearer t")
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    for item in j["responses"].as_array().unwrap() {
        assert_eq!(item["status"], 400, "{item}");
        assert_eq!(item["body"]["error"]["code"], "BadRequest");
        assert!(item["body"]["error"]["message"].as_str().unwrap().contains("keepAlive"));
    }
    assert_eq!(j["responses"][0]["body"]["error"]["innerError"]["client-request-id"], "c-1");
    assert_eq!(emu.call_state(&id).unwrap().keep_alive_count, 0, "a refused item is no keep-alive");
    let items = emu.requests()[0].items.clone().unwrap();
    assert_eq!((items[0].call_id.as_deref(), items[0].status), (Some(id.as_str()), Some(400)));

    // Single keep-alives are answered as always (here: the scripted 503, then the keep-alive).
    assert_eq!(keep_alive(&base, &id, Some("t")).await.status, 503);
    assert_eq!(keep_alive(&base, &id, Some("t")).await.status, 200);

    // Reset turns the mode off.
    control("POST", &base, "reset", None).await;
    assert_eq!(control("GET", &base, "config", None).await.json()["refuseBatchedKeepAlive"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_gauge_counts_requests_being_answered() {
    let emu = start().await;
    let base = emu.base_url();
    let id = emu.create_call(None);
    // Long enough that the three overlap even on a loaded machine.
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(200).delay_ms(1500)]).count(3));
    let zero = control("GET", &base, "in-flight", None).await.json();
    assert_eq!(zero, json!({"inFlight": 0, "maxInFlight": 0}));

    let slow = (0..3).map(|_| {
        let base = base.clone();
        let id = id.clone();
        tokio::spawn(async move { keep_alive(&base, &id, Some("t")).await.status })
    });
    let slow: Vec<_> = slow.collect();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while emu.in_flight().in_flight < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(emu.in_flight().in_flight, 3);
    for task in slow {
        assert_eq!(task.await.unwrap(), 200);
    }
    let after = control("GET", &base, "in-flight", None).await.json();
    assert_eq!(after, json!({"inFlight": 0, "maxInFlight": 3}), "control requests are not counted");
    assert_eq!(control("DELETE", &base, "in-flight", None).await.json()["maxInFlight"], 0);
    keep_alive(&base, &id, Some("t")).await;
    assert_eq!(emu.in_flight().max_in_flight, 1);
}
