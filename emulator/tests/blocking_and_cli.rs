//! The synchronous wrapper and the `graph-emulator` binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use graph_emulator::{spawn_blocking_runtime, Config, FaultResponse, FaultScript};

/// A minimal HTTP/1.1 request over a fresh connection; returns (status, raw response).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[test]
fn blocking_runtime_wrapper() {
    let emu = spawn_blocking_runtime(Config {
        call_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .unwrap();
    let addr = emu.base_url().trim_start_matches("http://").to_string();
    let id = emu.create_call(Some("a b/c"));
    let path = "/v1.0/communications/calls/a%20b%2Fc/keepAlive";
    let auth = [("Authorization", "Bearer t")];
    let (status, raw) = http(&addr, "POST", path, &auth, "");
    assert_eq!(status, 200, "{raw}");
    emu.push_faults(FaultScript::for_call(&id, vec![FaultResponse::status(504)]));
    let (status, raw) = http(&addr, "POST", path, &auth, "");
    assert_eq!(status, 504);
    assert!(raw.contains("GatewayTimeout"));
    let log = emu.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].raw_path, path);
    assert_eq!(log[0].call_id.as_deref(), Some("a b/c"));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(http(&addr, "POST", path, &auth, "").0, 404);
    emu.end_call(&id);
    drop(emu);
    assert!(TcpStream::connect(&addr).is_err());
}

#[test]
fn binary_cli() {
    let exe = env!("CARGO_BIN_EXE_graph-emulator");

    // Non-loopback hosts are refused.
    let out = Command::new(exe)
        .args(["--host", "0.0.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));

    let mut child = Command::new(exe)
        .args([
            "--port",
            "0",
            "--call-timeout-secs",
            "0.5",
            "--exit-on-stdin-eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("graph-emulator listening on ")
        .expect(&line)
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    let addr = url.trim_start_matches("http://").to_string();

    let (status, raw) = http(&addr, "POST", "/_emulator/calls", &[], r#"{"ids":["c1"]}"#);
    assert_eq!(status, 201, "{raw}");
    let auth = [("Authorization", "Bearer t")];
    assert_eq!(
        http(
            &addr,
            "POST",
            "/v1.0/communications/calls/c1/keepAlive",
            &auth,
            ""
        )
        .0,
        200
    );
    let (_, raw) = http(&addr, "GET", "/_emulator/config", &[], "");
    assert!(raw.contains(r#""callTimeoutSecs":0.5"#), "{raw}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        http(
            &addr,
            "POST",
            "/v1.0/communications/calls/c1/keepAlive",
            &auth,
            ""
        )
        .0,
        404
    );

    // Closing stdin stops it.
    drop(child.stdin.take());
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "emulator did not exit on stdin EOF"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing else on stdout");
}
