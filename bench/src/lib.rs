//! Helpers shared by the benchmark binaries: the emulator as a separate process (so its memory and
//! CPU are not counted as the library's), the control API, the library's connection, and process
//! figures from /proc.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use mgkeepalive::environment::{self, EnvironmentDefinition};
use mgkeepalive::operation::run_blocking;
use mgkeepalive::session::{self, ConnectRequest};
use zeroize::Zeroizing;

/// A `graph-emulator` process (the binary next to this one in target/release), request log off.
/// It exits when dropped (its stdin is closed and it is killed).
pub struct EmulatorProcess {
    child: Child,
    _stdin: ChildStdin,
    pub base_url: String,
    control: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl EmulatorProcess {
    pub fn start(extra_args: &[&str]) -> EmulatorProcess {
        let exe = std::env::current_exe().expect("current_exe");
        let emulator = exe.with_file_name("graph-emulator");
        assert!(
            emulator.exists(),
            "{} not found: build it with `cargo build --release -p graph-emulator`",
            emulator.display()
        );
        let mut child = Command::new(&emulator)
            .args(["--port", "0", "--log-capacity", "0", "--exit-on-stdin-eof"])
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start graph-emulator");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("emulator stdout");
        let base_url = line
            .trim()
            .strip_prefix("graph-emulator listening on ")
            .unwrap_or_else(|| panic!("unexpected emulator banner: {line:?}"))
            .to_string();
        let control = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // No idle pooled connections: this runtime does not run between control requests.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        EmulatorProcess { child, _stdin: stdin, base_url, control, client }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates `count` calls through the control API and returns their ids.
    pub fn create_calls(&self, count: usize) -> Vec<String> {
        let v = self.control_json(reqwest::Method::POST, "/_emulator/calls", Some(format!(r#"{{"count":{count}}}"#)));
        v["ids"].as_array().expect("ids").iter().map(|s| s.as_str().unwrap().to_string()).collect()
    }

    /// Every call's state (`GET /_emulator/calls`).
    pub fn call_states(&self) -> Vec<serde_json::Value> {
        match self.control_json(reqwest::Method::GET, "/_emulator/calls", None) {
            serde_json::Value::Array(a) => a,
            other => panic!("unexpected /_emulator/calls answer: {other}"),
        }
    }

    pub fn delete_calls(&self) {
        self.control_json(reqwest::Method::DELETE, "/_emulator/calls", None);
    }

    fn control_json(&self, method: reqwest::Method, path: &str, body: Option<String>) -> serde_json::Value {
        let url = format!("{}{path}", self.base_url);
        self.control.block_on(async {
            let mut request = self.client.request(method, url).header("Content-Type", "application/json");
            if let Some(body) = body {
                request = request.body(body);
            }
            let text = request.send().await.expect("control request").text().await.expect("control body");
            if text.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&text).expect("control JSON")
            }
        })
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers an environment for the emulator and connects the library with an access token.
pub fn connect_library(base_url: &str) {
    environment::add(EnvironmentDefinition {
        name: "Bench".into(),
        azure_ad_endpoint: base_url.to_string(),
        graph_endpoint: base_url.to_string(),
    })
    .expect("environment");
    let request: ConnectRequest =
        serde_json::from_value(serde_json::json!({"authType": "AccessToken", "environment": "Bench"})).unwrap();
    run_blocking(None, async move {
        Ok(serde_json::to_value(session::connect(request, Zeroizing::new(b"bench-token".to_vec())).await?).unwrap())
    })
    .expect("connect");
}

/// A field of /proc/<pid>/status in kB (e.g. "VmRSS", "VmHWM").
pub fn status_kib(pid: Option<u32>, field: &str) -> u64 {
    let path = pid.map_or("/proc/self/status".to_string(), |p| format!("/proc/{p}/status"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process (self when `None`), from /proc/<pid>/stat. Linux only, like the
/// figures in BENCHMARKS.md; elsewhere the benches build but this is not measured (zero).
#[cfg(target_os = "linux")]
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let ticks: u64 = fields.get(11).and_then(|s| s.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

#[cfg(not(target_os = "linux"))]
pub fn cpu_time(_pid: Option<u32>) -> Duration {
    Duration::ZERO
}

/// Bytes the allocator has handed out and not got back (glibc `mallinfo2`: arena + mmapped
/// blocks in use), i.e. live heap, without what the allocator keeps for reuse. glibc only; zero
/// elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap_in_use() -> u64 {
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_in_use() -> u64 {
    0
}

/// Gives free heap memory back to the system (glibc `malloc_trim(0)`), so RSS shows live memory.
/// glibc only; a no-op elsewhere.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0)
    };
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// `--name value` from the command line, or the default.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: invalid value {v:?}")))
        .unwrap_or(default)
}
