//! The background keeper against the emulator's call expiry at compressed time (calls end after
//! 3 s without a keep-alive; the keeper keeps them every second). The keeper and the session are
//! process-wide, so these tests run one at a time.

use std::sync::Mutex;
use std::time::Duration;

use graph_emulator::{spawn_blocking_runtime, Config, EmulatorThread, FaultResponse, FaultScript};
use mgkeepalive::environment::{self, EnvironmentDefinition};
use mgkeepalive::keeper::{self, KeeperState, StartResult};
use mgkeepalive::operation::run_blocking;
use mgkeepalive::session::{self, ConnectRequest};
use zeroize::Zeroizing;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Fixture {
    emu: EmulatorThread,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        keeper::stop(None);
        session::disconnect();
    }
}

fn fixture() -> Fixture {
    let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let emu = spawn_blocking_runtime(Config { call_timeout: Duration::from_secs(3), ..Config::default() }).unwrap();
    environment::add(EnvironmentDefinition {
        name: "KeeperEmulator".into(),
        azure_ad_endpoint: emu.base_url(),
        graph_endpoint: emu.base_url(),
    })
    .unwrap();
    let request: ConnectRequest = serde_json::from_value(serde_json::json!({"authType": "AccessToken", "environment": "KeeperEmulator"})).unwrap();
    run_blocking(None, async move {
        Ok(serde_json::to_value(session::connect(request, Zeroizing::new(b"keeper-token".to_vec())).await?).unwrap())
    })
    .unwrap();
    Fixture { emu, _serial: serial }
}

fn start(ids: &[String], interval: Duration) {
    for result in keeper::start(ids.to_vec(), interval).unwrap() {
        assert!(matches!(result, StartResult::State(_)), "{result:?}");
    }
}

fn state_of(id: &str) -> KeeperState {
    keeper::list(Some(vec![id.into()]), None)[0].state
}

fn keep_alives_for(emu: &EmulatorThread, id: &str) -> usize {
    emu.requests_for_call(id).len()
}

#[test]
fn kept_calls_outlive_the_call_timeout() {
    let f = fixture();
    let ids: Vec<String> = (0..20).map(|_| f.emu.create_call(None)).collect();
    start(&ids, Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(200));
    assert!(ids.iter().all(|id| keep_alives_for(&f.emu, id) == 1), "the first keep-alive goes out at once");
    std::thread::sleep(Duration::from_secs(7));
    for id in &ids {
        assert!(f.emu.call_state(id).unwrap().is_active(), "{id} expired although kept");
        let n = keep_alives_for(&f.emu, id);
        assert!((6..=10).contains(&n), "{id}: {n} keep-alives in ~7 s at a 1 s interval");
        assert_eq!(state_of(id), KeeperState::Active);
    }
    let snapshot = &keeper::list(Some(vec![ids[0].clone()]), None)[0];
    assert!(snapshot.last_success_unix_ms.is_some() && snapshot.next_due_unix_ms.is_some());
    assert_eq!(snapshot.deadline_unix_ms, snapshot.last_success_unix_ms.unwrap() + 45 * 60 * 1000);
}

#[test]
fn an_ended_call_becomes_ended_with_an_event_and_gets_no_more_requests() {
    let f = fixture();
    let (_, first_seq) = keeper::events(u64::MAX, Duration::ZERO);
    let kept = f.emu.create_call(None);
    let ended = f.emu.create_call(None);
    start(&[kept.clone(), ended.clone()], Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(300));
    f.emu.end_call(&ended);
    let (events, _) = keeper::events(first_seq, Duration::from_secs(3));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].call_id.as_str(), events[0].state), (ended.as_str(), KeeperState::Ended));
    assert_eq!(state_of(&ended), KeeperState::Ended);
    assert!(keeper::list(Some(vec![ended.clone()]), None)[0].last_error.as_deref().unwrap().contains("itemNotFound"));
    let after_end = keep_alives_for(&f.emu, &ended);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(keep_alives_for(&f.emu, &ended), after_end, "no requests for an ended call");
    assert_eq!(state_of(&kept), KeeperState::Active);
    assert_eq!(keeper::list(None, Some(vec![KeeperState::Ended])).len(), 1, "ended calls stay listed until stopped");
}

#[test]
fn a_forbidden_call_fails_for_good() {
    let f = fixture();
    let id = f.emu.create_call(None);
    f.emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(403)]));
    start(&[id.clone()], Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state_of(&id), KeeperState::Failed);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(keep_alives_for(&f.emu, &id), 1);
}

#[test]
fn a_storm_of_throttling_loses_no_call() {
    let f = fixture();
    let ids: Vec<String> = (0..10).map(|_| f.emu.create_call(None)).collect();
    // The first 30 keep-alives, whichever calls they are for, are throttled or refused, with a
    // Retry-After as long as the whole (compressed) call timeout: the keeper must not wait it out.
    f.emu.push_faults(FaultScript::any(vec![FaultResponse::status(429).retry_after("3"), FaultResponse::status(503)]).count(30));
    start(&ids, Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(6));
    for id in &ids {
        assert!(f.emu.call_state(id).unwrap().is_active(), "{id} expired during the storm");
        assert!(keeper::list(Some(vec![id.clone()]), None)[0].last_success_unix_ms.is_some());
    }
}

#[test]
fn stop_halts_all_traffic_and_restart_updates_the_interval() {
    let f = fixture();
    let ids: Vec<String> = (0..5).map(|_| f.emu.create_call(None)).collect();
    start(&ids, Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(1500));
    let (_, seq) = keeper::events(u64::MAX, Duration::ZERO);
    let stopped = keeper::stop(None);
    assert_eq!(stopped.len(), 5);
    let (events, _) = keeper::events(seq, Duration::ZERO);
    assert_eq!(events.iter().filter(|e| e.state == KeeperState::Stopped).count(), 5, "a Stopped event per call");
    assert!(stopped.iter().all(|s| s.state == KeeperState::Stopped));
    let seen = f.emu.requests().len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(f.emu.requests().len(), seen, "no traffic after stop");
    assert!(keeper::list(None, None).is_empty());

    start(&ids[..1], Duration::from_secs(1));
    start(&ids[..1], Duration::from_secs(60));
    assert_eq!(keeper::list(None, None)[0].interval_ms, 60_000);
}

#[test]
fn invalid_ids_are_refused_one_by_one() {
    let f = fixture();
    let good = f.emu.create_call(None);
    let results = keeper::start(vec!["..".into(), good.clone(), String::new()], Duration::from_secs(5)).unwrap();
    assert!(matches!(&results[0], StartResult::Refused { call_id, .. } if call_id == ".."));
    assert!(matches!(&results[1], StartResult::State(s) if s.call_id == good));
    assert!(matches!(&results[2], StartResult::Refused { .. }));
    // (Their JSON at the ABI: tests/abi.rs, the_keeper_answers_not_kept_calls_per_id_and_waits_...)
    assert!(matches!(&results[0], StartResult::Refused { error: mgkeepalive::CoreError::InvalidArgument { parameter: "CallId", .. }, .. }));
    assert!(matches!(&results[1], StartResult::State(s) if s.state == KeeperState::Active));
    assert!(keeper::start(vec![good], Duration::from_millis(500)).is_err(), "intervals under 1 s are refused");
}

#[test]
fn concurrent_start_and_stop_from_many_threads_is_safe() {
    let f = fixture();
    let ids: Vec<String> = (0..200).map(|_| f.emu.create_call(None)).collect();
    let (_, before) = keeper::events(u64::MAX, Duration::ZERO);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ids = ids.clone();
            std::thread::spawn(move || {
                for round in 0..20 {
                    let mine: Vec<String> = ids.iter().skip(t).step_by(8).cloned().collect();
                    keeper::start(mine.clone(), Duration::from_secs(1)).unwrap();
                    if round % 3 == 0 {
                        keeper::stop(Some(mine[..5].to_vec()));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Each thread's calls are its own, so the keeper's records are exact: every thread stopped
    // its first 5 calls in 7 of its 20 rounds, each stop one Stopped event.
    let (events, _) = keeper::events(before, Duration::ZERO);
    let mut stops: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for event in events.iter().filter(|e| e.state == KeeperState::Stopped) {
        *stops.entry(event.call_id.as_str()).or_default() += 1;
    }
    let stopped_each_round: Vec<&str> = (0..8).flat_map(|t| ids.iter().skip(t).step_by(8).take(5).map(String::as_str)).collect();
    assert_eq!(stops.len(), 40, "{stops:?}");
    assert!(stopped_each_round.iter().all(|id| stops.get(id) == Some(&7)), "{stops:?}");
    std::thread::sleep(Duration::from_secs(2));
    let listed = keeper::list(None, None);
    assert_eq!(listed.len(), 200, "the last round started every call");
    assert!(listed.iter().all(|s| s.state == KeeperState::Active), "{:?}", listed.iter().find(|s| s.state != KeeperState::Active));
}
