//! Graph's retry policy, the client timeout, cancellation during waits, `-Debug` traces and
//! proxies, against the emulator's fault scripting. Each case checks what the emulator saw and,
//! where it matters, the time taken.

use std::time::{Duration, Instant};

use graph_emulator::{EmulatorThread, FaultResponse, FaultScript};
use mgkeepalive::graph::{keep_alive, KeepAliveOptions, KeepAliveSuccess};
use mgkeepalive::operation::{Operations, Wait};
use mgkeepalive::session::Session;
use mgkeepalive::CoreError;

mod common;

use common::{block_on, emulator};

const TOKEN: &str = "retry-test-token";

fn session_at(graph: &str) -> Session {
    common::session_at(graph, TOKEN)
}


/// Fast waits so the policy can be tested in milliseconds.
fn options() -> KeepAliveOptions {
    KeepAliveOptions { retry_delay: Duration::from_millis(100), ..KeepAliveOptions::default() }
}

fn run(emu: &EmulatorThread, id: &str, options: KeepAliveOptions) -> (Result<KeepAliveSuccess, CoreError>, Duration) {
    let session = session_at(&emu.base_url());
    let started = Instant::now();
    let result = block_on(keep_alive(&session, id, &options));
    (result, started.elapsed())
}

fn retry_attempt_headers(emu: &EmulatorThread) -> Vec<Option<String>> {
    emu.requests().iter().map(|r| r.headers.get("retry-attempt").cloned()).collect()
}

#[test]
fn throttling_is_retried_after_retry_after_seconds() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(429).retry_after("0.25"), FaultResponse::status(429).retry_after("0.25")]));
    let (result, elapsed) = run(&emu, &id, options());
    let ok = result.unwrap();
    assert_eq!((ok.http_status, ok.attempts), (200, 3));
    assert_eq!(retry_attempt_headers(&emu), [None, Some("1".into()), Some("2".into())]);
    assert!(elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(ok.attempt_log[0].wait_ms, Some(250));
    assert_eq!(ok.attempt_log[0].retry_after.as_deref(), Some("0.25"));
}

#[test]
fn retry_after_as_an_http_date() {
    let emu = emulator();
    let id = emu.create_call(None);
    let in_two_seconds = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(503).retry_after(&in_two_seconds)]));
    let (result, elapsed) = run(&emu, &id, options());
    assert_eq!(result.unwrap().attempts, 2);
    // HTTP dates have whole seconds: the wait is between 1 and 2 s.
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn without_retry_after_the_wait_doubles() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(503), FaultResponse::status(504)]));
    let (result, elapsed) = run(&emu, &id, options());
    let ok = result.unwrap();
    assert_eq!(ok.attempt_log.iter().map(|a| a.wait_ms).collect::<Vec<_>>(), [Some(100), Some(200), None]);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
}

#[test]
fn client_errors_and_ended_calls_are_never_retried() {
    let emu = emulator();
    for status in [400, 403, 404, 500] {
        emu.clear_requests();
        let id = emu.create_call(None);
        emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(status)]));
        let (result, _) = run(&emu, &id, options());
        let Err(CoreError::Graph(e)) = result else { panic!("{status}: expected the error") };
        assert_eq!((e.http_status, e.attempts), (status, 1));
        assert_eq!(emu.requests().len(), 1, "{status} is final");
    }
}

#[test]
fn the_final_error_tells_how_many_attempts_and_the_last_answer() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(503); 5]));
    let (result, _) = run(&emu, &id, KeepAliveOptions { max_retry: 2, ..options() });
    let Err(CoreError::Graph(e)) = result else { panic!("expected the 503") };
    assert_eq!((e.http_status, e.attempts, e.attempt_log.len()), (503, 3, 3));
    assert_eq!(emu.requests().len(), 3);
    let json = mgkeepalive::ffi::core_error_json(&CoreError::Graph(e));
    assert_eq!(json["attempts"], 3);
    assert_eq!(json["attemptLog"][2]["status"], 503);
}

#[test]
fn retries_time_limit_stops_retrying() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(503); 5]));
    // Waits would be 100, 200, 400 ms; a 250 ms budget allows only the first.
    let (result, _) = run(&emu, &id, KeepAliveOptions { retries_time_limit: Duration::from_millis(250), ..options() });
    assert!(matches!(result, Err(CoreError::Graph(ref e)) if e.attempts == 2), "{result:?}");
    assert_eq!(emu.requests().len(), 2);
}

#[test]
fn a_retry_after_beyond_the_client_timeout_returns_the_answer_at_once() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(429).retry_after("30")]));
    let (result, elapsed) = run(&emu, &id, KeepAliveOptions { timeout: Duration::from_secs(2), ..options() });
    let Err(CoreError::Graph(e)) = result else { panic!("expected the 429") };
    assert_eq!((e.http_status, e.attempts), (429, 1));
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
}

#[test]
fn the_client_timeout_bounds_attempts_and_waits_together() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(
        &id,
        vec![FaultResponse::status(503).retry_after("0.3"), FaultResponse::status(200).delay_ms(10_000)],
    ));
    let (result, elapsed) = run(&emu, &id, KeepAliveOptions { timeout: Duration::from_millis(800), ..options() });
    let error = result.unwrap_err();
    assert!(error.to_string().contains("after 2 attempts (last answer: 503)"), "{error}");
    let CoreError::Timeout { after_ms, attempt_log, .. } = error else { panic!("expected a timeout") };
    assert_eq!((after_ms, attempt_log.len()), (800, 2), "the hung second attempt is cut off");
    assert_eq!(attempt_log[1].error.as_deref(), Some("Timeout"));
    assert!(elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn dropped_connections_are_retried() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::dropped(), FaultResponse::dropped()]));
    let (result, _) = run(&emu, &id, options());
    assert_eq!(result.unwrap().attempts, 3);

    // Nothing listening: every attempt fails; the error names the attempts.
    let session = session_at("http://127.0.0.1:9");
    let e = block_on(keep_alive(&session, "x", &KeepAliveOptions { max_retry: 1, ..options() })).unwrap_err();
    assert!(matches!(e, CoreError::Transport { ref attempt_log, .. } if attempt_log.len() == 2), "{e:?}");
    assert!(e.to_string().contains("after 2 attempts"), "{e}");
}

#[test]
fn cancelling_interrupts_a_retry_after_wait() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(429).retry_after("20")]));
    let session = session_at(&emu.base_url());
    let call = id.clone();
    let operations = Operations::default();
    let handle = operations.start(Some(id), async move { keep_alive(&session, &call, &KeepAliveOptions::default()).await }).unwrap();
    assert!(matches!(operations.wait(handle, Duration::from_millis(300)), Some(Wait::Pending)));
    assert_eq!(emu.requests().len(), 1, "waiting out Retry-After");
    let started = Instant::now();
    assert!(operations.cancel(handle));
    assert!(started.elapsed() < Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(emu.requests().len(), 1, "no retry after cancellation");
}

#[test]
fn debug_traces_show_the_exchange_without_the_token() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(503).retry_after("0")]));
    let (result, _) = run(&emu, &id, KeepAliveOptions { trace: true, ..options() });
    let ok = result.unwrap();
    let first = ok.attempt_log[0].http.as_ref().expect("traced");
    assert_eq!((first.method.as_str(), first.status), ("POST", Some(503)));
    assert!(first.request_headers.iter().any(|(k, _)| k == "client-request-id"));
    assert!(first.response_body.as_deref().unwrap_or_default().contains("ServiceUnavailable"));
    let text = serde_json::to_string(&ok.attempt_log).unwrap();
    assert!(!text.contains(TOKEN) && !text.to_lowercase().contains("authorization"), "{text}");
}

#[test]
fn an_explicit_proxy_carries_the_request() {
    let emu = emulator();
    let id = emu.create_call(None);
    // The Graph endpoint is unreachable directly; only the proxy (the emulator) can answer.
    let session = session_at("http://127.0.0.2:9");
    let options: KeepAliveOptions = KeepAliveOptions::from_json(&format!(
        r#"{{"maxRetry":0,"proxy":{{"url":"{}","username":"proxy-user","password":"proxy-pass"}}}}"#,
        emu.base_url()
    ))
    .unwrap();
    block_on(keep_alive(&session, &id, &options)).expect("answered through the proxy");
    let seen = &emu.requests()[0];
    assert_eq!(seen.call_id.as_deref(), Some(id.as_str()));
    assert!(seen.headers.contains_key("proxy-authorization"), "{:?}", seen.headers);
}

#[test]
fn environment_proxy_variables_are_honoured_and_no_proxy_bypasses_them() {
    let emu = emulator();
    let id = emu.create_call(None);
    let through = |no_proxy: &str| {
        let session = session_at("http://127.0.0.2:9");
        let options = KeepAliveOptions::from_json(&format!(
            r#"{{"maxRetry":0,"timeoutMs":2000,"environmentProxy":{{"httpProxy":"{}","noProxy":"{no_proxy}"}}}}"#,
            emu.base_url()
        ))
        .unwrap();
        block_on(keep_alive(&session, &id, &options))
    };
    through("example.org").expect("HTTP_PROXY is used");
    assert_eq!(emu.requests().len(), 1);
    assert!(matches!(through("127.0.0.2"), Err(CoreError::Transport { .. })), "NO_PROXY sends it directly, where nothing listens");
    assert_eq!(emu.requests().len(), 1);
}
