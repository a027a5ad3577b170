//! The library's bulk keep-alive (what the cmdlet's pipeline calls into, `keep_alive_many` behind
//! `mgka_keep_alive_bulk_start`) at several concurrency levels, from Rust: the engine's ceiling
//! for the pipeline, without PowerShell. Each run keeps fresh, distinct calls alive once.
//!
//!   target/release/bulk [--calls 10000] [--rounds 3] [--levels 1,2,4,8,16,32,64] [--json FILE]
//!                       [--mode batch|single]
//!
//! `--mode batch` (default) is the product: `keep_alive_many`, which uses Graph JSON batching.
//! `--mode single` is a bench-only comparison: the same items as one single keep-alive request
//! each (`graph::keep_alive`), at most `concurrency` in flight — the bulk path before batching.

use std::sync::Arc;
use std::time::Instant;

use mgkeepalive::operation::run_blocking;
use mgkeepalive::graph::BulkItem;
use mgkeepalive::session;
use mgkeepalive_bench::{arg, connect_library, median, EmulatorProcess};

fn main() {
    let calls: usize = arg("--calls", 10_000);
    let rounds: usize = arg("--rounds", 3);
    let levels: String = arg("--levels", "1,2,4,8,16,32,64".to_string());
    let json: String = arg("--json", String::new());
    let mode: String = arg("--mode", "batch".to_string());
    assert!(mode == "batch" || mode == "single", "--mode batch|single");
    let levels: Vec<usize> = levels.split(',').map(|s| s.trim().parse().expect("--levels")).collect();

    let emu = EmulatorProcess::start(&[]);
    connect_library(&emu.base_url);
    let warm = emu.create_calls(64);
    let items = |ids: &[String]| ids.iter().map(|id| BulkItem { call_id: Some(id.clone()), identity: None }).collect::<Vec<_>>();
    run_blocking(None, session::keep_alive_many(items(&warm), Default::default(), 64)).expect("warm-up");
    let what = if mode == "batch" { "session::keep_alive_many, JSON batching" } else { "single requests, bench-only" };
    println!("library bulk keep-alive ({what}), {calls} distinct calls per run, median of {rounds}");
    let mut out = Vec::new();
    for &conc in &levels {
        let mut rates = Vec::new();
        for _ in 0..rounds {
            emu.delete_calls();
            let ids = emu.create_calls(calls);
            let batch = items(&ids);
            let t = Instant::now();
            let ok = if mode == "batch" {
                run_blocking(None, session::keep_alive_many(batch, Default::default(), conc)).expect("bulk").answers.iter().filter(|a| a.is_ok()).count()
            } else {
                run_blocking(None, singles(batch, conc)).expect("bulk")
            };
            let el = t.elapsed().as_secs_f64();
            assert_eq!(ok, calls, "every keep-alive succeeds");
            rates.push(calls as f64 / el);
        }
        let runs = rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
        let m = median(&mut rates);
        println!("concurrency {conc:>3}: {m:>7.0} keep-alives/s (runs: {runs})");
        out.push(serde_json::json!({"concurrency": conc, "perSecond": m}));
    }
    if !json.is_empty() {
        std::fs::write(&json, serde_json::to_string_pretty(&out).unwrap()).expect("write --json");
    }
}

/// Bench-only: every item as its own keep-alive request, at most `concurrency` in flight.
/// Answers how many succeeded.
async fn singles(items: Vec<BulkItem>, concurrency: usize) -> mgkeepalive::operation::Outcome<usize> {
    let session = session::current()?;
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for item in items {
        let permit = permits.clone().acquire_owned().await.expect("open");
        let session = session.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let id = item.call_id.unwrap_or_default();
            mgkeepalive::graph::keep_alive(&session, &id, &Default::default()).await.is_ok()
        });
    }
    let mut ok = 0;
    while let Some(Ok(answered)) = tasks.join_next().await {
        ok += usize::from(answered);
    }
    Ok(ok)
}
