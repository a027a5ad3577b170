//! `graph-emulator`: the Microsoft Graph keep-alive emulator as a program.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use graph_emulator::{Config, Emulator, TlsIdentity};

const USAGE: &str = "\
Usage: graph-emulator [OPTIONS]

A Microsoft Graph call keep-alive emulator on loopback.

Options:
  --host <HOST>                 Loopback address to bind [default: 127.0.0.1]
  --port <PORT>                 Port, 0 for a free one [default: 0]
  --call-timeout-secs <SECS>    Keep-alive timeout of calls, fractions allowed [default: 2700]
  --token-lifetime-secs <SECS>  Lifetime (expires_in) of issued tokens, fractions allowed [default: 3599]
  --token-refresh-in-secs <SECS>
                                refresh_in of tokens from the token endpoint [default: not sent]
  --identity-header <VALUE>     X-IDENTITY-HEADER value required at /msi/token
                                [default: emulator-identity-header]
  --log-capacity <N>            Request-log entries kept, 0 disables the log [default: 100000]
  --workers <N>                 Runtime worker threads [default: number of CPUs]
  --exit-on-stdin-eof           Exit when stdin is closed (so the emulator never outlives its parent)
  --tls                         Serve https with a fresh self-signed certificate
                                (IP:127.0.0.1, IP:::1, DNS:localhost)
  --tls-dir <DIR>               Serve https with DIR/cert.pem + DIR/key.pem, created there
                                when missing (one certificate across runs; implies --tls)
  --write-cert <PATH>           Write the served certificate (PEM) to PATH before the ready line
  -h, --help                    Print this help
  -V, --version                 Print the version

When ready it prints one line to stdout: `graph-emulator listening on http://HOST:PORT`
(`https://` with TLS).
";

struct Args {
    host: IpAddr,
    port: u16,
    call_timeout: Duration,
    token_lifetime: Duration,
    token_refresh_in: Option<Duration>,
    identity_header: String,
    workers: Option<usize>,
    log_capacity: Option<usize>,
    exit_on_stdin_eof: bool,
    tls: bool,
    tls_dir: Option<PathBuf>,
    write_cert: Option<PathBuf>,
}

fn parse_secs(flag: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|f| Duration::try_from_secs_f64(f).ok())
        .ok_or_else(|| format!("{flag}: expected a number of seconds >= 0, got '{v}'"))
}

fn parse_host(v: &str) -> Result<IpAddr, String> {
    let ip = if v.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        v.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| format!("--host: '{v}' is not an IP address or 'localhost'"))?
    };
    if !ip.is_loopback() {
        return Err(format!(
            "--host: refusing to bind {v}: the emulator only listens on loopback addresses (127.0.0.0/8, ::1, localhost)"
        ));
    }
    Ok(ip)
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        call_timeout: Duration::from_secs(2700),
        token_lifetime: Duration::from_secs(3599),
        token_refresh_in: None,
        identity_header: graph_emulator::DEFAULT_IDENTITY_HEADER.to_string(),
        workers: None,
        log_capacity: None,
        exit_on_stdin_eof: false,
        tls: false,
        tls_dir: None,
        write_cert: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag}: missing value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("graph-emulator {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--host" => args.host = parse_host(&value()?)?,
            "--port" => {
                let v = value()?;
                args.port = v
                    .parse()
                    .map_err(|_| format!("--port: invalid port '{v}'"))?;
            }
            "--call-timeout-secs" => {
                args.call_timeout = parse_secs("--call-timeout-secs", &value()?)?
            }
            "--token-lifetime-secs" => {
                args.token_lifetime = parse_secs("--token-lifetime-secs", &value()?)?
            }
            "--token-refresh-in-secs" => {
                let d = parse_secs("--token-refresh-in-secs", &value()?)?;
                args.token_refresh_in = Some(d).filter(|d| !d.is_zero());
            }
            "--identity-header" => {
                let v = value()?;
                if v.is_empty() {
                    return Err("--identity-header: must not be empty".into());
                }
                args.identity_header = v;
            }
            "--workers" => {
                let v = value()?;
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--workers: invalid count '{v}'"))?;
                args.workers = Some(n);
            }
            "--log-capacity" => {
                let v = value()?;
                args.log_capacity = Some(
                    v.parse()
                        .map_err(|_| format!("--log-capacity: invalid count '{v}'"))?,
                );
            }
            "--exit-on-stdin-eof" => args.exit_on_stdin_eof = true,
            "--tls" => args.tls = true,
            "--tls-dir" => {
                args.tls = true;
                args.tls_dir = Some(PathBuf::from(value()?));
            }
            "--write-cert" => args.write_cert = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    if args.write_cert.is_some() && !args.tls {
        return Err("--write-cert: needs --tls or --tls-dir".into());
    }
    Ok(Some(args))
}

/// The certificate to serve, per `--tls` / `--tls-dir`.
fn tls_identity(args: &Args) -> Result<Option<TlsIdentity>, String> {
    if !args.tls {
        return Ok(None);
    }
    let identity = match &args.tls_dir {
        Some(dir) => TlsIdentity::load_or_create(dir)
            .map_err(|e| format!("--tls-dir {}: {e}", dir.display()))?,
        None => TlsIdentity::generate().map_err(|e| format!("--tls: {e}"))?,
    };
    if let Some(path) = &args.write_cert {
        identity
            .write_cert(path)
            .map_err(|e| format!("--write-cert {}: {e}", path.display()))?;
    }
    Ok(Some(identity))
}

async fn wait_for_stop(exit_on_stdin_eof: bool) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    if exit_on_stdin_eof {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.blocking_send(());
        });
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut int = signal(SignalKind::interrupt()).ok();
        tokio::select! {
            _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
            _ = async { match int.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
            _ = rx.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = rx.recv() => {}
        }
    }
    drop(tx);
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("graph-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = match tls_identity(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("graph-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("graph-emulator");
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("graph-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        let config = Config {
            call_timeout: args.call_timeout,
            token_lifetime: args.token_lifetime,
            token_refresh_in: args.token_refresh_in,
            identity_header: args.identity_header.clone(),
            bind: SocketAddr::new(args.host, args.port),
            tls,
        };
        let emu = match Emulator::start(config).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!(
                    "graph-emulator: cannot listen on {}:{}: {e}",
                    args.host, args.port
                );
                return ExitCode::FAILURE;
            }
        };
        if let Some(cap) = args.log_capacity {
            emu.set_log_capacity(cap);
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "graph-emulator listening on {}", emu.base_url());
            let _ = out.flush();
        }
        wait_for_stop(args.exit_on_stdin_eof).await;
        emu.shutdown().await;
        ExitCode::SUCCESS
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}
