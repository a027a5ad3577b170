//! The core against the Graph emulator, in-process: what is sent, and what each answer becomes.

use std::time::{Duration, Instant};

use graph_emulator::{EmulatorThread, FaultResponse, FaultScript};
use mgkeepalive::graph::{keep_alive, ApiVersion, KeepAliveOptions, MAX_RESPONSE_BYTES};
use mgkeepalive::operation::{Operations, Wait};
use mgkeepalive::session::Session;
use mgkeepalive::CoreError;

mod common;

use common::{block_on as run, emulator, session_at};

const TOKEN: &str = "core-test-token";

fn session(emu: &EmulatorThread) -> Session {
    session_at(&emu.base_url(), TOKEN)
}


fn options() -> KeepAliveOptions {
    KeepAliveOptions::default()
}

/// Options without retries, to see each answer as it is (retries: tests/retry.rs).
fn no_retry() -> KeepAliveOptions {
    KeepAliveOptions { max_retry: 0, ..KeepAliveOptions::default() }
}

fn graph_error(result: Result<mgkeepalive::graph::KeepAliveSuccess, CoreError>) -> mgkeepalive::GraphError {
    match result {
        Err(CoreError::Graph(g)) => *g,
        other => panic!("expected a Graph error, got {other:?}"),
    }
}

#[test]
fn sends_an_empty_authenticated_post_with_fresh_request_ids() {
    let emu = emulator();
    let id = emu.create_call(None);
    let mut opts = options();
    opts.headers.insert("x-trace", "abc".parse().unwrap());
    let s = session(&emu);
    let first = run(keep_alive(&s, &id, &opts)).unwrap();
    let second = run(keep_alive(&s, &id, &opts)).unwrap();

    assert_eq!((first.http_status, second.http_status), (200, 200));
    assert_eq!(first.call_id, id);
    assert!(first.request_id.is_some());
    assert!(first.headers.contains_key("x-ms-ags-diagnostic"));
    let log = emu.requests();
    assert_eq!(log.len(), 2);
    let r = &log[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.raw_path, format!("/v1.0/communications/calls/{id}/keepAlive"));
    assert_eq!(r.body_length, 0);
    assert_eq!(r.headers.get("content-length").map(String::as_str), Some("0"));
    assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(r.headers["user-agent"], format!("MgKeepAlive/{}", mgkeepalive::VERSION));
    assert_eq!(r.headers["x-trace"], "abc");
    let crid = &r.headers["client-request-id"];
    assert!(uuid::Uuid::parse_str(crid).is_ok(), "client-request-id {crid} is a GUID");
    assert_ne!(crid, &log[1].headers["client-request-id"], "each request has a fresh id");
    assert_eq!(first.client_request_id.as_deref(), Some(crid.as_str()));
    assert_eq!(emu.call_state(&id).unwrap().keep_alive_count, 2);
}

#[test]
fn beta_uses_the_beta_path() {
    let emu = emulator();
    let id = emu.create_call(None);
    let opts = KeepAliveOptions { api_version: ApiVersion::Beta, ..options() };
    run(keep_alive(&session(&emu), &id, &opts)).unwrap();
    assert_eq!(emu.requests()[0].raw_path, format!("/beta/communications/calls/{id}/keepAlive"));
}

#[test]
fn an_ended_call_is_a_structured_404() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.end_call(&id);
    let e = graph_error(run(keep_alive(&session(&emu), &id, &options())));
    assert_eq!((e.http_status, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.code, "itemNotFound");
    assert!(e.display_message().starts_with("[itemNotFound] : "));
    assert_eq!(e.call_id.as_deref(), Some(id.as_str()));
    assert!(e.request_id.is_some() && e.client_request_id.is_some() && e.date.is_some());
    assert!(e.headers.contains_key("request-id"));
    assert!(e.body.is_none());
}

#[test]
fn unusual_ids_travel_as_one_segment_and_decode_back() {
    let emu = emulator();
    let s = session(&emu);
    for id in ["a/b", "../x", "a b", "q?x=1#f", "ünïcödé-☎", "%2e%2e", "$batch", "https://evil.example/calls/x"] {
        emu.create_call(Some(id));
        run(keep_alive(&s, id, &options())).unwrap_or_else(|e| panic!("{id}: {e}"));
        let last = emu.requests().pop().unwrap();
        assert_eq!(last.call_id.as_deref(), Some(id), "decoded id of {id}");
        let segment = last.raw_path.strip_prefix("/v1.0/communications/calls/").unwrap().strip_suffix("/keepAlive").unwrap();
        assert!(!segment.contains('/') && !segment.contains('?') && !segment.contains('#'), "{id} -> {segment}");
    }
}

#[test]
fn ids_that_would_retarget_the_request_send_nothing() {
    let emu = emulator();
    let s = session(&emu);
    for id in ["", " ", ".", "..", "a\nb", "a\0b"] {
        let e = run(keep_alive(&s, id, &options())).unwrap_err();
        assert!(matches!(e, CoreError::InvalidArgument { parameter: "CallId", .. }), "{id:?}: {e:?}");
    }
    assert!(emu.requests().is_empty());
}

#[test]
fn html_and_empty_bodies_become_unknown_error_with_the_status() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(
        &id,
        vec![FaultResponse::status(503).body("<html><h1>Service Unavailable</h1></html>", "text/html"), FaultResponse::status(500).body("", "text/plain")],
    ));
    let s = session(&emu);
    let e = graph_error(run(keep_alive(&s, &id, &no_retry())));
    assert_eq!((e.http_status, e.code.as_str()), (503, "UnknownError"));
    assert!(e.graph_message.contains("Service Unavailable"));
    assert!(e.body.as_deref().unwrap().starts_with("<html>"));
    let e = graph_error(run(keep_alive(&s, &id, &no_retry())));
    assert_eq!((e.http_status, e.reason.as_str()), (500, "InternalServerError"));
}

#[test]
fn huge_bodies_are_read_only_up_to_the_bound() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(500).body_bytes(8 * MAX_RESPONSE_BYTES)]));
    let e = graph_error(run(keep_alive(&session(&emu), &id, &options())));
    assert_eq!(e.http_status, 500);
    assert!(e.body.as_deref().unwrap().len() <= MAX_RESPONSE_BYTES);
}

#[test]
fn a_hung_server_is_a_timeout_after_the_client_timeout() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(200).delay_ms(10_000)]));
    let opts = KeepAliveOptions { timeout: Duration::from_millis(400), ..options() };
    let started = Instant::now();
    let e = run(keep_alive(&session(&emu), &id, &opts)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, CoreError::Timeout { after_ms: 400, .. }), "{e:?}");
    assert_eq!(emu.requests().len(), 1, "the hung attempt is the only one");
    assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn a_dropped_connection_is_a_transport_error() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::dropped()]));
    let e = run(keep_alive(&session(&emu), &id, &no_retry())).unwrap_err();
    assert!(matches!(e, CoreError::Transport { .. }), "{e:?}");
    assert!(!e.to_string().contains(TOKEN));
}

#[test]
fn an_operation_can_be_cancelled_while_the_server_hangs() {
    let emu = emulator();
    let id = emu.create_call(None);
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(200).delay_ms(30_000)]));
    let s = session(&emu);
    let operations = Operations::default();
    let handle = operations.start(Some(id.clone()), async move { keep_alive(&s, &id, &KeepAliveOptions::default()).await }).unwrap();
    assert!(matches!(operations.wait(handle, Duration::from_millis(200)), Some(Wait::Pending)));
    let started = Instant::now();
    assert!(operations.cancel(handle));
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(operations.wait(handle, Duration::from_millis(10)).is_none(), "a cancelled handle is released");
    assert!(!operations.cancel(handle));
    assert_eq!(operations.outstanding(), 0);
}

#[test]
fn a_finished_operation_is_collected_once() {
    let emu = emulator();
    let id = emu.create_call(None);
    let s = session(&emu);
    let operations = Operations::default();
    let handle = operations.start(None, async move { keep_alive(&s, &id, &KeepAliveOptions::default()).await }).unwrap();
    match operations.wait(handle, Duration::from_secs(10)) {
        Some(Wait::Finished(Ok(success))) => assert_eq!(success.http_status, 200),
        _ => panic!("expected success"),
    }
    assert!(operations.wait(handle, Duration::from_millis(1)).is_none());
    assert_eq!(operations.outstanding(), 0);
}

#[test]
fn the_error_body_and_the_header_name_the_same_request() {
    let emu = emulator();
    let e = graph_error(run(keep_alive(&session(&emu), "no-such-call", &options())));
    assert_eq!(e.request_id.as_deref(), e.headers["request-id"].first().map(String::as_str));
}
