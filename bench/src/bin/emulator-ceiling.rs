//! The emulator's own ceiling on loopback: N connections sending keep-alives back to back for a
//! few seconds against a `graph-emulator` process (the load loop of emulator/examples/load.rs, run
//! per concurrency level and repeated; the median is reported).
//!
//!   target/release/emulator-ceiling [--secs 3] [--rounds 3] [--levels 1,4,16,64]
//!                                   [--client-threads 1] [--emulator-workers 0 (= its default)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mgkeepalive_bench::{arg, cpu_time, median, EmulatorProcess};

fn main() {
    let secs: f64 = arg("--secs", 3.0);
    let rounds: usize = arg("--rounds", 3);
    let levels: String = arg("--levels", "1,4,16,64".to_string());
    let client_threads: usize = arg("--client-threads", 1);
    let workers: usize = arg("--emulator-workers", 0);
    let levels: Vec<usize> = levels.split(',').map(|s| s.trim().parse().expect("--levels")).collect();

    let workers_arg = workers.to_string();
    let extra: Vec<&str> = if workers > 0 { vec!["--workers", &workers_arg] } else { vec![] };
    let emu = EmulatorProcess::start(&extra);
    let ids = emu.create_calls(*levels.iter().max().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(client_threads).enable_all().build().unwrap();
    let client = reqwest::Client::new();
    println!(
        "emulator ceiling: {} (workers {}), load generator reqwest on {client_threads} runtime thread(s), {secs} s per run, median of {rounds}",
        emu.base_url,
        if workers > 0 { workers_arg.clone() } else { "default = CPUs".into() }
    );
    for &conc in &levels {
        let mut rates = Vec::new();
        let mut emu_cpu = Vec::new();
        let mut failed_total = 0;
        for _ in 0..rounds {
            let ok = Arc::new(AtomicU64::new(0));
            let bad = Arc::new(AtomicU64::new(0));
            let (e0, t0) = (cpu_time(Some(emu.pid())), Instant::now());
            let end = t0 + Duration::from_secs_f64(secs);
            rt.block_on(async {
                let mut tasks = Vec::new();
                for id in &ids[..conc] {
                    let (client, ok, bad) = (client.clone(), ok.clone(), bad.clone());
                    let url = format!("{}/v1.0/communications/calls/{id}/keepAlive", emu.base_url);
                    tasks.push(tokio::spawn(async move {
                        while Instant::now() < end {
                            let r = client.post(&url).header("Authorization", "Bearer t").header("Content-Length", "0").send().await;
                            match r {
                                Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                                _ => bad.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
            let el = t0.elapsed().as_secs_f64();
            rates.push(ok.load(Ordering::Relaxed) as f64 / el);
            emu_cpu.push(100.0 * (cpu_time(Some(emu.pid())) - e0).as_secs_f64() / el);
            failed_total += bad.load(Ordering::Relaxed);
        }
        let runs = rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
        println!(
            "concurrency {conc:>3}: {:>7.0} keep-alives/s (runs: {runs}); emulator CPU {:.0} % of one core; failed {failed_total}",
            median(&mut rates),
            median(&mut emu_cpu)
        );
    }
}
