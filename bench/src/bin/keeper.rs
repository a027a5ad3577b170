//! The background keeper with many calls at a compressed interval, against the emulator as a
//! separate process (so this process's RSS and CPU time are the library's alone):
//!
//!   target/release/keeper [--calls 100000] [--interval 10] [--call-timeout 30] [--intervals 4]
//!                         [--idle-secs 20]
//!
//! Reports the first round (all calls' first keep-alive, which goes out at once), the achieved
//! steady rate, the oldest last success seen, missed deadlines (calls the emulator ended with
//! KeepAliveTimeout), RSS growth per call, and CPU time over an idle stretch with a long interval.

use std::time::{Duration, Instant, SystemTime};

use mgkeepalive::keeper::{self, KeeperState};
use mgkeepalive::operation::run_blocking;
use mgkeepalive::session;
use mgkeepalive_bench::{arg, connect_library, cpu_time, heap_in_use, status_kib, trim, EmulatorProcess};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64
}

struct Sample {
    at: Instant,
    attempts: u64,
    never_kept: usize,
    oldest_success_age_ms: u64,
    not_kept: usize,
    list_ms: f64,
    heap: u64,
}

fn sample() -> Sample {
    let heap = heap_in_use();
    let t = Instant::now();
    let list = keeper::list(None, None);
    let list_ms = t.elapsed().as_secs_f64() * 1000.0;
    let now = now_ms();
    Sample {
        at: Instant::now(),
        attempts: list.iter().map(|s| s.attempts as u64).sum(),
        never_kept: list.iter().filter(|s| s.last_success_unix_ms.is_none()).count(),
        oldest_success_age_ms: list.iter().filter_map(|s| s.last_success_unix_ms).map(|l| now.saturating_sub(l)).max().unwrap_or(0),
        not_kept: list.iter().filter(|s| !matches!(s.state, KeeperState::Active)).count(),
        list_ms,
        heap,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let calls: usize = arg("--calls", 100_000);
    let interval = Duration::from_secs_f64(arg("--interval", 10.0));
    let call_timeout: f64 = arg("--call-timeout", 30.0);
    let intervals: u32 = arg("--intervals", 4);
    let idle_secs: u64 = arg("--idle-secs", 20);

    let emu = EmulatorProcess::start(&["--call-timeout-secs", &call_timeout.to_string()]);
    connect_library(&emu.base_url);
    // Warm the library's runtime and connection pool with one keep-alive.
    let warm = emu.create_calls(1);
    run_blocking(None, session::keep_alive(warm[0].clone(), Default::default())).expect("warm-up keep-alive");
    emu.delete_calls();

    let ids = emu.create_calls(calls);
    trim();
    let rss0 = status_kib(None, "VmRSS");
    let heap0 = heap_in_use();
    let emu_rss0 = status_kib(Some(emu.pid()), "VmRSS");
    println!("keeper bench: {calls} calls, interval {interval:?} (±10 % jitter), emulator call timeout {call_timeout} s, emulator pid {}", emu.pid());

    let t0 = Instant::now();
    let cpu0 = cpu_time(None);
    let emu_cpu0 = cpu_time(Some(emu.pid()));
    let results = keeper::start(ids.clone(), interval).expect("keeper start");
    let start_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let heap_registered = heap_in_use();
    assert_eq!(results.len(), calls);
    drop(results);
    println!(
        "keeper::start of {calls} ids returned in {start_ms:.0} ms; live heap +{:.1} MiB right after (registration, the scheduler already spawning)",
        (heap_registered.saturating_sub(heap0)) as f64 / 1048576.0
    );

    // First round: every call's first keep-alive goes out at once.
    let mut first_round = None;
    let mut samples = Vec::new();
    while t0.elapsed() < interval * intervals {
        std::thread::sleep(Duration::from_millis(if first_round.is_none() { 250 } else { 1000 }));
        let s = sample();
        if first_round.is_none() && s.never_kept == 0 {
            first_round = Some(s.at - t0);
            println!(
                "first round: all {calls} first keep-alives done after {:.2} s = {:.0} keep-alives/s",
                (s.at - t0).as_secs_f64(),
                calls as f64 / (s.at - t0).as_secs_f64()
            );
        }
        samples.push(s);
    }
    let cpu1 = cpu_time(None);
    let emu_cpu1 = cpu_time(Some(emu.pid()));
    let elapsed = t0.elapsed();
    let last = samples.last().unwrap();
    let rss_end = status_kib(None, "VmRSS");
    let hwm = status_kib(None, "VmHWM");
    let heap_end = heap_in_use();
    let heap_peak = samples.iter().map(|s| s.heap).max().unwrap_or(0);
    trim();
    let rss_trimmed = status_kib(None, "VmRSS");
    let oldest = samples.iter().filter(|s| first_round.is_some_and(|f| s.at - t0 > f)).map(|s| s.oldest_success_age_ms).max().unwrap_or(0);
    let mut list_ms: Vec<f64> = samples.iter().map(|s| s.list_ms).collect();
    println!(
        "ran {:.1} s: {} keep-alives = {:.0}/s overall ({:.2} per call per interval); a {:.1} s mean interval for {calls} calls needs {:.0}/s",
        elapsed.as_secs_f64(),
        last.attempts,
        last.attempts as f64 / elapsed.as_secs_f64(),
        last.attempts as f64 / calls as f64 / (elapsed.as_secs_f64() / interval.as_secs_f64()),
        interval.as_secs_f64(),
        calls as f64 / interval.as_secs_f64()
    );
    println!("oldest last success seen after the first round: {:.2} s (interval + 10 % jitter = {:.1} s; the emulator ends a call after {call_timeout} s)", oldest as f64 / 1000.0, interval.as_secs_f64() * 1.1);
    println!("calls not Active in the keeper at the end: {}", last.not_kept);
    println!(
        "CPU while keeping: library process {:.2} s ({:.0} % of one core), emulator {:.2} s ({:.0} %) over {:.1} s",
        (cpu1 - cpu0).as_secs_f64(),
        100.0 * (cpu1 - cpu0).as_secs_f64() / elapsed.as_secs_f64(),
        (emu_cpu1 - emu_cpu0).as_secs_f64(),
        100.0 * (emu_cpu1 - emu_cpu0).as_secs_f64() / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!("keeper::list of all calls (sampling) took median {:.0} ms", mgkeepalive_bench::median(&mut list_ms));
    let per_call = |bytes: u64| bytes as f64 / calls as f64;
    println!(
        "memory, steady state: live heap +{:.1} MiB = {:.0} bytes per call; RSS {:.1} -> {:.1} MiB (+{:.0} bytes per call), {:.1} MiB after malloc_trim (+{:.0} bytes per call). Goal <= 64 MiB, <= ~650 bytes per call",
        heap_end.saturating_sub(heap0) as f64 / 1048576.0,
        per_call(heap_end.saturating_sub(heap0)),
        mib(rss0),
        mib(rss_end),
        per_call(rss_end.saturating_sub(rss0) * 1024),
        mib(rss_trimmed),
        per_call(rss_trimmed.saturating_sub(rss0) * 1024)
    );
    println!(
        "memory, peak: live heap +{:.1} MiB = {:.0} bytes per call (largest sample, during the first round); VmHWM {:.1} MiB = +{:.0} bytes per call",
        heap_peak.saturating_sub(heap0) as f64 / 1048576.0,
        per_call(heap_peak.saturating_sub(heap0)),
        mib(hwm),
        per_call(hwm.saturating_sub(rss0) * 1024)
    );
    println!(
        "emulator process RSS (not counted above): {:.1} MiB before start, {:.1} MiB at the end",
        mib(emu_rss0),
        mib(status_kib(Some(emu.pid()), "VmRSS"))
    );

    // Missed deadlines: calls the emulator ended because no keep-alive came in time.
    let states = emu.call_states();
    let mine: Vec<&serde_json::Value> = states.iter().filter(|s| s["endReason"].as_str() == Some("KeepAliveTimeout")).collect();
    let active = states.iter().filter(|s| s["state"].as_str() == Some("Active")).count();
    let counts: Vec<u64> = states.iter().filter_map(|s| s["keepAliveCount"].as_u64()).collect();
    println!(
        "emulator: {} calls, {active} active, missed deadlines (ended by KeepAliveTimeout): {} (goal 0); keep-alives per call min {} max {}",
        states.len(),
        mine.len(),
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0)
    );
    drop(states);

    // Idle: the same calls at a long interval; after their first keep-alive nothing is due.
    keeper::stop(None);
    let idle_interval = Duration::from_secs(3600);
    keeper::start(ids.clone(), idle_interval).expect("keeper start (idle)");
    let t1 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if keeper::list(None, None).iter().all(|s| s.attempts >= 1) || t1.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let (c0, e0, w0) = (cpu_time(None), cpu_time(Some(emu.pid())), Instant::now());
    std::thread::sleep(Duration::from_secs(idle_secs));
    let (c1, e1, w1) = (cpu_time(None), cpu_time(Some(emu.pid())), Instant::now());
    println!(
        "idle: {calls} calls kept at a {idle_interval:?} interval, between due times for {:.1} s: library process CPU {:.0} ms ({:.3} % of one core), emulator {:.0} ms (goal ~0)",
        (w1 - w0).as_secs_f64(),
        (c1 - c0).as_secs_f64() * 1000.0,
        100.0 * (c1 - c0).as_secs_f64() / (w1 - w0).as_secs_f64(),
        (e1 - e0).as_secs_f64() * 1000.0
    );
    println!(
        "after the idle stretch: live heap +{:.0} bytes per call over the start, RSS {:.1} MiB",
        heap_in_use().saturating_sub(heap0) as f64 / calls as f64,
        mib(status_kib(None, "VmRSS"))
    );
    keeper::stop(None);
    session::disconnect();
}
