//! A crude keep-alive load generator: `cargo run --release -p graph-emulator --example load -- [BASE_URL] [SECS] [CONCURRENCY]`.
//! Without BASE_URL (or with `-`) it starts an in-process emulator on its own runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let conc: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let (_emu, base) = match args.first().filter(|s| *s != "-") {
        Some(url) => (None, url.clone()),
        None => {
            let emu = graph_emulator::spawn_blocking_runtime(Default::default()).unwrap();
            let base = emu.base_url();
            (Some(emu), base)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::new();
        let ids: Vec<String> = {
            let r = client
                .post(format!("{base}/_emulator/calls"))
                .body(format!(r#"{{"count":{conc}}}"#))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(&r).unwrap();
            v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let ok = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for id in ids {
            let (client, ok, bad) = (client.clone(), ok.clone(), bad.clone());
            let url = format!("{base}/v1.0/communications/calls/{id}/keepAlive");
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let r = client
                        .post(&url)
                        .header("Authorization", "Bearer t")
                        .header("Content-Length", "0")
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => bad.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        let t0 = Instant::now();
        for t in tasks {
            t.await.unwrap();
        }
        let el = t0.elapsed().as_secs_f64();
        let n = ok.load(Ordering::Relaxed);
        println!(
            "{n} ok, {} failed in {el:.2}s: {:.0} req/s",
            bad.load(Ordering::Relaxed),
            n as f64 / el
        );
    });
}
