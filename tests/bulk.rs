//! The bulk keep-alive (`graph::keep_alive_many_in`, behind `mgka_keep_alive_bulk_start`) against
//! the Graph emulator: JSON batching, its fallbacks to single requests, and per-item answers that
//! are the ones single requests would give — against a Graph that accepts keep-alives in `$batch`
//! and against one that refuses them (the emulator's refusing mode), after which the process
//! sends that Graph single requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graph_emulator::{EmulatorThread, FaultResponse, FaultScript, LoggedRequest};
use mgkeepalive::graph::KeepAliveOptions;
use mgkeepalive::ffi::{bulk_answers_json, core_error_json};
use mgkeepalive::graph::{keep_alive_many_in, BulkItem};
use serde_json::Value;

mod common;

use common::{block_on as run, emulator, session_at};

const TOKEN: &str = "bulk-test-token";

fn items_of<S: AsRef<str>>(ids: &[S]) -> Vec<BulkItem> {
    ids.iter().map(|id| BulkItem { call_id: Some(id.as_ref().to_owned()), identity: None }).collect()
}

fn bulk(emu: &EmulatorThread, items: Vec<BulkItem>, options: KeepAliveOptions, concurrency: usize) -> Vec<Value> {
    bulk_with_notes(emu, items, options, concurrency).answers
}

/// A bulk keep-alive's answers and notes, as the ABI gives them (`mgka_keep_alive_bulk_start`).
struct Answered {
    answers: Vec<Value>,
    notes: Vec<String>,
}

fn bulk_with_notes(emu: &EmulatorThread, items: Vec<BulkItem>, options: KeepAliveOptions, concurrency: usize) -> Answered {
    let session = Arc::new(session_at(&emu.base_url(), TOKEN));
    let json = bulk_answers_json(run(keep_alive_many_in(session, items, options, concurrency)), true, true);
    Answered { answers: json["answers"].as_array().unwrap().clone(), notes: serde_json::from_value(json["notes"].clone()).unwrap() }
}

/// How the Graph (emulator) treats keep-alives inside `$batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accepting,
    Refusing,
}

const MODES: [Mode; 2] = [Mode::Accepting, Mode::Refusing];

/// A fresh emulator (so a fresh Graph endpoint: the library's memory of refusals is per endpoint)
/// in `mode`.
fn emulator_in(mode: Mode) -> EmulatorThread {
    let emu = emulator();
    emu.set_refuse_batched_keep_alive(mode == Mode::Refusing);
    emu
}

/// The answer's fields a user sees, without those that differ from request to request (ids,
/// dates, timings): what a single request's answer must equal.
fn visible(answer: &Value) -> Value {
    if answer["ok"] == true {
        let r = &answer["result"];
        serde_json::json!({"ok": true, "callId": r["callId"], "uri": r["uri"], "httpStatus": r["httpStatus"], "attempts": r["attempts"]})
    } else {
        let e = &answer["error"];
        serde_json::json!({"ok": false, "kind": e["kind"], "callId": e["callId"], "httpStatus": e["httpStatus"], "code": e["code"],
                           "graphMessage": e["graphMessage"], "parameter": e["parameter"], "attempts": e["attempts"], "body": e["body"]})
    }
}

/// What single requests answer for `ids` (sent one at a time with the single keep-alive path,
/// `-CallId`'s), in the form of [`visible`].
fn single_answers(emu: &EmulatorThread, ids: &[String], options: &KeepAliveOptions) -> Vec<Value> {
    let session = session_at(&emu.base_url(), TOKEN);
    ids.iter()
        .map(|id| {
            let outcome = run(mgkeepalive::graph::keep_alive(&session, id, options)).map_err(|e| e.with_call_id(id));
            visible(&match outcome {
                Ok(success) => serde_json::json!({"ok": true, "result": success}),
                Err(error) => serde_json::json!({"ok": false, "error": core_error_json(&error)}),
            })
        })
        .collect()
}

fn new_calls(emu: &EmulatorThread, n: usize) -> Vec<String> {
    (0..n).map(|_| emu.create_call(None)).collect()
}

fn batches(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter().filter(|r| r.kind == "batch").collect()
}

fn singles(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter().filter(|r| r.kind == "keepAlive").collect()
}

/// Every call id sent, in a batch item or a single request.
fn sent_ids(log: &[LoggedRequest]) -> Vec<String> {
    let mut ids = Vec::new();
    for r in log {
        match r.kind.as_str() {
            "keepAlive" => ids.push(r.call_id.clone().unwrap_or_default()),
            "batch" => ids.extend(r.items.iter().flatten().map(|i| i.call_id.clone().unwrap_or_default())),
            _ => {}
        }
    }
    ids
}

fn assert_all_ok_in_order(answers: &[Value], ids: &[String]) {
    assert_eq!(answers.len(), ids.len());
    for (i, (answer, id)) in answers.iter().zip(ids).enumerate() {
        assert_eq!(answer["ok"], true, "item {i}: {answer}");
        assert_eq!(answer["result"]["callId"], id.as_str(), "item {i} answers its own id");
        assert_eq!(answer["result"]["httpStatus"], 200);
    }
}

#[test]
fn forty_five_good_ids_go_in_three_batches_and_answer_in_order() {
    for mode in MODES {
        let emu = emulator_in(mode);
        let ids = new_calls(&emu, 45);
        let mut options = KeepAliveOptions::default();
        options.headers.insert("x-trace", "abc".parse().unwrap());
        let answers = bulk(&emu, items_of(&ids), options, 16);

        assert_all_ok_in_order(&answers, &ids);
        for (answer, id) in answers.iter().zip(&ids) {
            let result = &answer["result"];
            assert_eq!(result["uri"], format!("{}/v1.0/communications/calls/{id}/keepAlive", emu.base_url()));
            assert_eq!(result["attempts"], 1, "{mode:?}");
            assert_eq!(result["attemptLog"][0]["status"], 200);
            assert!(result["requestId"].as_str().is_some_and(|r| uuid::Uuid::parse_str(r).is_ok()), "{result}");
            assert!(result["clientRequestId"].as_str().is_some_and(|r| uuid::Uuid::parse_str(r).is_ok()), "{result}");
            assert!(result["date"].is_string() && result["elapsedMs"].is_u64() && result["headers"].is_object());
        }
        let crids: std::collections::HashSet<_> = answers.iter().map(|a| a["result"]["clientRequestId"].as_str().unwrap()).collect();
        assert_eq!(crids.len(), 45, "each item has its own client-request-id");

        let log = emu.requests();
        let batch_log = batches(&log);
        for batch in &batch_log {
            assert_eq!((batch.raw_path.as_str(), batch.status), ("/v1.0/$batch", Some(200)));
            assert_eq!(batch.headers["authorization"], format!("Bearer {TOKEN}"));
            let items = batch.items.as_ref().unwrap();
            assert!(items.len() <= graph_emulator::MAX_BATCH, "{}", items.len());
            for item in items {
                let expected = if mode == Mode::Accepting { 200 } else { 400 };
                assert_eq!((item.method.as_str(), item.status), ("POST", Some(expected)));
                assert_eq!(item.url, format!("/communications/calls/{}/keepAlive", item.call_id.as_deref().unwrap()));
            }
        }
        let mut sent = sent_ids(&log);
        sent.sort();
        let mut expected = ids.clone();
        expected.sort();
        match mode {
            Mode::Accepting => {
                assert_eq!(log.len(), 3, "45 keep-alives in 3 batch requests: {log:#?}");
                assert_eq!(sent, expected, "each id sent exactly once");
            }
            Mode::Refusing => {
                // The three batches go out together, before any refusal is known; then each item
                // once on its own.
                assert_eq!(batch_log.len(), 3);
                let mut single_ids: Vec<_> = singles(&log).iter().map(|r| r.call_id.clone().unwrap()).collect();
                single_ids.sort();
                assert_eq!(single_ids, expected, "each refused item sent again singly, once");
                assert!(singles(&log).iter().all(|r| r.status == Some(200)));
            }
        }
        assert!(ids.iter().all(|id| emu.call_state(id).unwrap().keep_alive_count == 1), "{mode:?}");
    }
}

#[test]
fn beta_batches_go_to_beta_and_odd_ids_are_one_encoded_segment() {
    let emu = emulator();
    let odd = emu.create_call(Some("a/b ?#%"));
    let plain = emu.create_call(None);
    let options = KeepAliveOptions { api_version: mgkeepalive::graph::ApiVersion::Beta, ..KeepAliveOptions::default() };
    let answers = bulk(&emu, items_of(&[&odd, &plain]), options, 4);
    assert_all_ok_in_order(&answers, &[odd.clone(), plain]);
    assert!(answers[0]["result"]["uri"].as_str().unwrap().ends_with("/beta/communications/calls/a%2Fb%20%3F%23%25/keepAlive"));
    let log = emu.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].raw_path, "/beta/$batch");
    assert_eq!(log[0].items.as_ref().unwrap()[0].url, "/communications/calls/a%2Fb%20%3F%23%25/keepAlive");
    assert_eq!(emu.call_state(&odd).unwrap().keep_alive_count, 1);
}

#[test]
fn good_ended_and_invalid_ids_keep_their_order_and_their_own_answers() {
    for mode in MODES {
        let emu = emulator_in(mode);
        let good = new_calls(&emu, 30);
        let ended = new_calls(&emu, 2);
        for id in &ended {
            emu.end_call(id);
        }
        let mut items = items_of(&good);
        // (position, item, expected): inserted in ascending positions.
        items.insert(0, BulkItem { call_id: Some(ended[0].clone()), identity: None });
        items.insert(5, BulkItem { call_id: Some("..".into()), identity: None });
        items.insert(9, BulkItem { call_id: None, identity: Some(r#"{"participantId":"p"}"#.into()) });
        items.insert(14, BulkItem { call_id: None, identity: Some(format!(r#"{{"Id":"{}"}}"#, ended[1])) });
        items.insert(20, BulkItem { call_id: Some("a\nb".into()), identity: None });
        items.insert(25, BulkItem { call_id: Some("never-created".into()), identity: None });
        items.insert(33, BulkItem { call_id: Some(String::new()), identity: None });
        let call_ids: Vec<Option<String>> = items.iter().map(|i| i.call_id.clone()).collect();
        let answers = bulk(&emu, items, KeepAliveOptions::default(), 8);

        assert_eq!(answers.len(), 37);
        let mut good_seen = 0;
        for (i, answer) in answers.iter().enumerate() {
            let error = &answer["error"];
            match i {
                0 | 14 | 25 => {
                    let id = match i {
                        0 => ended[0].as_str(),
                        14 => ended[1].as_str(),
                        _ => "never-created",
                    };
                    assert_eq!(answer["ok"], false, "item {i}");
                    assert_eq!((error["kind"].as_str(), error["httpStatus"].as_u64()), (Some("GraphError"), Some(404)), "item {i}: {error}");
                    assert_eq!((error["code"].as_str(), error["callId"].as_str()), (Some("itemNotFound"), Some(id)));
                    assert_eq!(error["graphMessage"], format!("Call '{id}' was not found or has ended."));
                    assert_eq!(error["message"], format!("[itemNotFound] : Call '{id}' was not found or has ended."));
                    assert_eq!((error["reason"].as_str(), error["attempts"].as_u64()), (Some("NotFound"), Some(1)));
                    assert!(error["requestId"].as_str().is_some_and(|r| uuid::Uuid::parse_str(r).is_ok()), "{error}");
                }
                5 | 20 | 33 => {
                    assert_eq!((error["kind"].as_str(), error["parameter"].as_str()), (Some("InvalidArgument"), Some("CallId")), "item {i}");
                }
                9 => {
                    assert_eq!(error["kind"], "InvalidArgument");
                    assert_eq!(error["message"], "InputObject has null value for InputObject.CallId");
                }
                _ => {
                    assert_eq!(answer["ok"], true, "item {i}: {answer}");
                    assert_eq!(answer["result"]["callId"], good[good_seen].as_str(), "item {i}");
                    good_seen += 1;
                }
            }
        }
        assert_eq!(good_seen, 30);
        let log = emu.requests();
        assert_eq!(batches(&log).len(), 2, "33 keep-alives to send: 2 batches");
        let sent = sent_ids(&log);
        match mode {
            Mode::Accepting => {
                assert!(singles(&log).is_empty(), "a 404 inside a batch is final: nothing is retried singly");
                assert_eq!(sent.len(), 33, "refused items are never sent");
            }
            Mode::Refusing => assert_eq!(singles(&log).len(), 33, "every refused item sent again singly, once"),
        }
        assert!(!sent.iter().any(|id| id == ".." || id.is_empty() || id.contains('\n')));

        // Each item's answer is the one a single request gives (sent now, one by one).
        for (i, call_id) in call_ids.iter().enumerate() {
            let Some(id) = call_id else { continue };
            let single = single_answers(&emu, std::slice::from_ref(id), &KeepAliveOptions::default());
            assert_eq!(visible(&answers[i]), single[0], "{mode:?}, item {i}");
        }
    }
}

#[test]
fn a_failing_batch_request_falls_back_to_single_requests() {
    let cases: Vec<(&str, FaultResponse)> = vec![
        ("500", FaultResponse::status(500)),
        ("503 with Retry-After", FaultResponse::status(503).retry_after("30")),
        ("429", FaultResponse::status(429).retry_after("30")),
        ("401", FaultResponse::status(401)),
        ("400", FaultResponse::status(400)),
        ("dropped connection", FaultResponse::dropped()),
        ("200 with HTML", FaultResponse::status(200).body("<html>proxy</html>", "text/html")),
        ("200 without responses", FaultResponse::status(200).json(serde_json::json!({"value": []}))),
        ("200 with an empty body", FaultResponse::status(200)),
        ("200 over the body limit", FaultResponse::status(200).body_bytes(mgkeepalive::graph::MAX_RESPONSE_BYTES + 10)),
    ];
    for (name, fault) in cases {
        let emu = emulator();
        let ids = new_calls(&emu, 45);
        emu.push_faults(FaultScript::for_path("batch", vec![fault]).count(100));
        let started = Instant::now();
        let answers = bulk(&emu, items_of(&ids), KeepAliveOptions::default(), 16);
        assert!(started.elapsed() < Duration::from_secs(10), "{name}: no batch-level Retry-After is waited out");
        assert_all_ok_in_order(&answers, &ids);
        assert!(answers.iter().all(|a| a["result"]["attempts"] == 1), "{name}");
        let log = emu.requests();
        assert_eq!(batches(&log).len(), 3, "{name}");
        assert_eq!(singles(&log).len(), 45, "{name}: every item sent singly");
        assert!(singles(&log).iter().all(|r| r.status == Some(200)), "{name}");
        assert!(ids.iter().all(|id| emu.call_state(id).unwrap().keep_alive_count == 1), "{name}");
    }
}

#[test]
fn an_item_without_an_answer_is_sent_singly() {
    let emu = emulator();
    let ids = new_calls(&emu, 3);
    // A well-formed batch answer that only answers request "2" (of 1, 2, 3) and adds a stranger.
    let partial = serde_json::json!({"responses": [
        {"id": "2", "status": 200, "headers": {}, "body": null},
        {"id": "99", "status": 200, "body": null},
    ]});
    emu.push_faults(FaultScript::for_path("batch", vec![FaultResponse::status(200).json(partial)]));
    let answers = bulk(&emu, items_of(&ids), KeepAliveOptions::default(), 4);
    assert_all_ok_in_order(&answers, &ids);
    let log = emu.requests();
    let single_ids: Vec<_> = singles(&log).iter().map(|r| r.call_id.clone().unwrap()).collect();
    assert_eq!(single_ids.len(), 2);
    assert!(single_ids.contains(&ids[0]) && single_ids.contains(&ids[2]) && !single_ids.contains(&ids[1]));
}

#[test]
fn a_throttled_item_is_retried_singly_after_its_retry_after() {
    for mode in MODES {
        let emu = emulator_in(mode);
        let ids = new_calls(&emu, 10);
        emu.push_faults(FaultScript::for_call(&ids[3], vec![FaultResponse::status(429).retry_after("0.3")]));
        emu.push_faults(FaultScript::for_call(&ids[7], vec![FaultResponse::status(503)]));
        let options = KeepAliveOptions { retry_delay: Duration::from_millis(50), ..KeepAliveOptions::default() };
        let started = Instant::now();
        let answers = bulk(&emu, items_of(&ids), options, 4);
        assert!(started.elapsed() >= Duration::from_millis(300), "the item's Retry-After was honoured");
        assert_all_ok_in_order(&answers, &ids);
        let throttled = &answers[3]["result"];
        assert_eq!(throttled["attempts"], 2, "{mode:?}");
        assert_eq!((throttled["attemptLog"][0]["status"].as_u64(), throttled["attemptLog"][0]["retryAfter"].as_str()), (Some(429), Some("0.3")));
        assert_eq!(throttled["attemptLog"][0]["waitMs"], 300);
        assert_eq!(throttled["attemptLog"][1]["status"], 200);
        assert_eq!(answers[7]["result"]["attemptLog"][0]["waitMs"], 50, "no Retry-After: the back-off");
        assert_eq!(answers[0]["result"]["attempts"], 1);

        let log = emu.requests();
        assert_eq!(batches(&log).len(), 1);
        let retries: Vec<_> = singles(&log).into_iter().filter(|r| r.headers.contains_key("retry-attempt")).collect();
        assert_eq!(retries.len(), 2, "only the two retryable items are sent again after a wait");
        for r in retries {
            assert!(r.call_id.as_deref() == Some(ids[3].as_str()) || r.call_id.as_deref() == Some(ids[7].as_str()));
            assert_eq!(r.headers.get("retry-attempt").map(String::as_str), Some("1"));
            assert_eq!(r.status, Some(200));
        }
        // Refusing: each item once on its own (the scripted 429 and 503 answer two of them), then the two retries.
        let expected_singles = if mode == Mode::Accepting { 2 } else { 12 };
        assert_eq!(singles(&log).len(), expected_singles, "{mode:?}");
        assert_eq!(emu.call_state(&ids[3]).unwrap().keep_alive_count, 1);
    }
}

#[test]
fn retryable_item_answers_follow_max_retry_and_other_answers_are_the_single_requests() {
    for mode in MODES {
        let emu = emulator_in(mode);
        let ids = new_calls(&emu, 4);
        emu.push_faults(FaultScript::for_call(&ids[0], vec![FaultResponse::status(429).retry_after("0")]));
        emu.push_faults(FaultScript::for_call(&ids[1], vec![FaultResponse::status(403)]));
        // A 500 inside a batch may be the batch's: the item is sent again singly, and answered 500 again.
        emu.push_faults(FaultScript::for_call(&ids[2], vec![FaultResponse::status(500).body("<html>oops</html>", "text/html")]).count(2));
        let options = KeepAliveOptions { max_retry: 0, ..KeepAliveOptions::default() };
        let answers = bulk(&emu, items_of(&ids), options, 4);
        assert_eq!(answers[0]["error"]["httpStatus"], 429, "MaxRetry 0: the throttled answer is final");
        assert_eq!(answers[0]["error"]["code"], "TooManyRequests");
        assert_eq!(answers[0]["error"]["headers"]["retry-after"][0], "0");
        assert_eq!((answers[1]["error"]["httpStatus"].as_u64(), answers[1]["error"]["code"].as_str()), (Some(403), Some("Forbidden")));
        let html = &answers[2]["error"];
        assert_eq!((html["httpStatus"].as_u64(), html["code"].as_str()), (Some(500), Some("UnknownError")));
        assert_eq!(html["body"], "<html>oops</html>", "a text body is kept as a single request keeps it");
        assert_eq!(answers[3]["ok"], true);
        assert!(answers[..3].iter().all(|a| a["error"]["attempts"] == 1 && a["error"]["callId"].is_string()), "{mode:?}");
        let single_ids: Vec<_> = singles(&emu.requests()).iter().map(|r| r.call_id.clone().unwrap()).collect();
        match mode {
            Mode::Accepting => assert_eq!(single_ids, [ids[2].clone()], "only the 500 is sent again"),
            Mode::Refusing => assert_eq!(single_ids.len(), 4),
        }
    }
}

#[test]
fn a_hung_batch_is_abandoned_at_half_the_client_timeout_and_its_items_sent_singly() {
    let emu = emulator();
    let ids = new_calls(&emu, 5);
    emu.push_faults(FaultScript::for_path("batch", vec![FaultResponse::status(200).delay_ms(10_000)]));
    let options = KeepAliveOptions { timeout: Duration::from_millis(800), ..KeepAliveOptions::default() };
    let started = Instant::now();
    let answers = bulk(&emu, items_of(&ids), options, 4);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(800), "{elapsed:?}");
    assert_all_ok_in_order(&answers, &ids);
    assert_eq!(singles(&emu.requests()).len(), 5);
}

#[test]
fn a_hung_item_times_out_alone_within_the_client_timeout() {
    let emu = emulator();
    let ids = new_calls(&emu, 4);
    // The item hangs inside the batch and again when sent singly.
    emu.push_faults(FaultScript::for_call(&ids[1], vec![FaultResponse::status(200).delay_ms(10_000)]).count(2));
    let options = KeepAliveOptions { timeout: Duration::from_millis(800), ..KeepAliveOptions::default() };
    let started = Instant::now();
    let answers = bulk(&emu, items_of(&ids), options, 4);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    let error = &answers[1]["error"];
    assert_eq!((error["kind"].as_str(), error["callId"].as_str()), (Some("Timeout"), Some(ids[1].as_str())), "{error}");
    for i in [0, 2, 3] {
        assert_eq!(answers[i]["result"]["callId"], ids[i].as_str(), "item {i}: its batch-mate's hang does not cost it");
    }
}

#[test]
fn cancelling_stops_at_once() {
    let emu = emulator();
    let ids = new_calls(&emu, 40);
    emu.push_faults(FaultScript::for_path("batch", vec![FaultResponse::status(200).delay_ms(10_000)]).count(10));
    let session = Arc::new(session_at(&emu.base_url(), TOKEN));
    let items = items_of(&ids);
    let started = Instant::now();
    let outcome = run(async { tokio::time::timeout(Duration::from_millis(300), keep_alive_many_in(session, items, KeepAliveOptions::default(), 4)).await });
    assert!(outcome.is_err() && started.elapsed() < Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(300));
    assert!(singles(&emu.requests()).is_empty(), "nothing is sent after the cancel");
}

#[test]
fn debug_and_a_single_item_use_single_requests() {
    let emu = emulator();
    let ids = new_calls(&emu, 3);
    let options = KeepAliveOptions { trace: true, ..KeepAliveOptions::default() };
    let answers = bulk(&emu, items_of(&ids), options, 4);
    assert_all_ok_in_order(&answers, &ids);
    assert!(answers.iter().all(|a| a["result"]["attemptLog"][0]["http"]["uri"].as_str().is_some_and(|u| u.ends_with("/keepAlive"))));
    let log = emu.requests();
    assert_eq!((singles(&log).len(), batches(&log).len()), (3, 0));

    emu.clear_requests();
    let answers = bulk(&emu, items_of(&[ids[0].as_str(), "..", "never-created-but-refused\n"]), KeepAliveOptions::default(), 4);
    assert_eq!(answers[0]["ok"], true);
    assert_eq!((answers[1]["ok"].as_bool(), answers[2]["ok"].as_bool()), (Some(false), Some(false)));
    let log = emu.requests();
    assert_eq!((singles(&log).len(), batches(&log).len()), (1, 0), "one item to send: a single request");
}


#[test]
fn server_errors_inside_a_batch_are_sent_singly_and_batching_goes_on() {
    let emu = emulator();
    let ids = new_calls(&emu, 4);
    // Only the batch item gets the scripted answer; the item's own request is kept alive.
    emu.push_faults(FaultScript::for_call(&ids[0], vec![FaultResponse::status(500)]));
    emu.push_faults(FaultScript::for_call(&ids[2], vec![FaultResponse::status(502)]));
    let first = bulk_with_notes(&emu, items_of(&ids), KeepAliveOptions::default(), 4);
    assert_all_ok_in_order(&first.answers, &ids);
    assert!(first.answers.iter().all(|a| a["result"]["attempts"] == 1));
    assert!(first.notes.is_empty(), "a server error proves nothing about batching: {:?}", first.notes);
    let log = emu.requests();
    let mut single_ids: Vec<_> = singles(&log).iter().map(|r| r.call_id.clone().unwrap()).collect();
    single_ids.sort();
    let mut expected = vec![ids[0].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(single_ids, expected);

    emu.clear_requests();
    assert_all_ok_in_order(&bulk(&emu, items_of(&ids), KeepAliveOptions::default(), 4), &ids);
    let log = emu.requests();
    assert_eq!((batches(&log).len(), singles(&log).len()), (1, 0), "still batched");
}

#[test]
fn an_item_400_that_its_single_request_also_gets_is_its_answer_and_batching_goes_on() {
    let emu = emulator();
    let ids = new_calls(&emu, 3);
    emu.push_faults(FaultScript::for_call(&ids[1], vec![FaultResponse::status(400)]).count(2));
    let first = bulk_with_notes(&emu, items_of(&ids), KeepAliveOptions::default(), 4);
    let error = &first.answers[1]["error"];
    assert_eq!((error["httpStatus"].as_u64(), error["code"].as_str(), error["attempts"].as_u64()), (Some(400), Some("BadRequest"), Some(1)));
    assert_eq!((first.answers[0]["ok"].as_bool(), first.answers[2]["ok"].as_bool()), (Some(true), Some(true)));
    assert!(first.notes.is_empty());
    assert_eq!(singles(&emu.requests()).len(), 1, "the 400 item is asked once more, alone");

    emu.clear_requests();
    assert_all_ok_in_order(&bulk(&emu, items_of(&ids), KeepAliveOptions::default(), 4), &ids);
    assert_eq!(batches(&emu.requests()).len(), 1, "the same 400 alone is the call's own answer: batching goes on");
}

#[test]
fn an_item_client_error_that_its_single_request_does_not_get_stops_batching_to_that_graph_only() {
    let emu = emulator();
    let other = emulator();
    let ids = new_calls(&emu, 4);
    emu.push_faults(FaultScript::for_call(&ids[1], vec![FaultResponse::status(405)]));
    let first = bulk_with_notes(&emu, items_of(&ids), KeepAliveOptions::default(), 4);
    assert_all_ok_in_order(&first.answers, &ids);
    let note = mgkeepalive::graph::refusal_note(&emu.base_url(), mgkeepalive::graph::ApiVersion::V1);
    assert_eq!(first.notes, [note.clone()]);
    assert!(note.contains(&emu.base_url()) && note.contains("(v1.0)") && note.contains("single requests"), "{note}");

    // From now on this Graph gets single requests, and the note says why.
    emu.clear_requests();
    let second = bulk_with_notes(&emu, items_of(&ids), KeepAliveOptions::default(), 4);
    assert_all_ok_in_order(&second.answers, &ids);
    assert_eq!(second.notes, [note]);
    let log = emu.requests();
    assert_eq!((batches(&log).len(), singles(&log).len()), (0, 4));

    // Its beta endpoint and another Graph are not affected.
    let beta = KeepAliveOptions { api_version: mgkeepalive::graph::ApiVersion::Beta, ..KeepAliveOptions::default() };
    emu.clear_requests();
    assert_eq!(bulk_with_notes(&emu, items_of(&ids), beta, 4).notes.len(), 0);
    assert_eq!(batches(&emu.requests()).len(), 1);
    let other_ids = new_calls(&other, 4);
    let elsewhere = bulk_with_notes(&other, items_of(&other_ids), KeepAliveOptions::default(), 4);
    assert_all_ok_in_order(&elsewhere.answers, &other_ids);
    assert!(elsewhere.notes.is_empty());
    assert_eq!(batches(&other.requests()).len(), 1);
}

#[test]
fn two_hundred_ids_against_a_graph_that_refuses_batched_keep_alives_all_succeed_then_go_singly() {
    let emu = emulator_in(Mode::Refusing);
    let ids = new_calls(&emu, 200);
    let first = bulk_with_notes(&emu, items_of(&ids), KeepAliveOptions::default(), 32);
    assert_all_ok_in_order(&first.answers, &ids);
    assert!(first.answers.iter().all(|a| a["result"]["attempts"] == 1));
    assert_eq!(first.notes.len(), 1);
    let log = emu.requests();
    assert_eq!(singles(&log).len(), 200, "each refused item sent again singly, once");
    assert!(ids.iter().all(|id| emu.call_state(id).unwrap().keep_alive_count == 1));

    // The next bulk sends single requests only, still at most 32 at once (and 32 at once: the
    // first 64 answers are held 300 ms).
    emu.clear_requests();
    emu.push_faults(FaultScript::for_path("/keepAlive", vec![FaultResponse::status(200).delay_ms(300)]).count(64));
    emu.reset_max_in_flight();
    let second = bulk_with_notes(&emu, items_of(&ids), KeepAliveOptions::default(), 32);
    assert_all_ok_in_order(&second.answers, &ids);
    assert_eq!(second.notes, first.notes);
    let log = emu.requests();
    assert_eq!((batches(&log).len(), singles(&log).len()), (0, 200));
    assert_eq!(emu.in_flight().max_in_flight, 32);
}
