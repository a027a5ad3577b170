//! The HTTP server: the accept loop, and each request read, logged and handed to its endpoint
//! (`routes`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::reply::{Ctx, Reply};
use crate::routes::{self, control, decode_segment, header_str, is_version, route, Request as RouteRequest, Route};
use crate::state::{LoggedRequest, State};
use crate::timefmt;

/// Largest request body read (bigger → 413).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Error returned by the service to make hyper close the connection without answering.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault script")
    }
}
impl std::error::Error for Dropped {}

pub(crate) type HttpResponse = Response<Full<Bytes>>;

// ---------------------------------------------------------------------------------------------
// Accept loop
// ---------------------------------------------------------------------------------------------

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until shutdown; with `tls`, each one is served over TLS.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (state, shutdown) = (state.clone(), shutdown.clone());
                    match tls.clone() {
                        None => {
                            tokio::spawn(serve_connection(stream, state, shutdown, "http"));
                        }
                        Some(acceptor) => {
                            tokio::spawn(async move {
                                let handshake = acceptor.accept(stream);
                                if let Ok(Ok(stream)) =
                                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await
                                {
                                    serve_connection(stream, state, shutdown, "https").await;
                                }
                            });
                        }
                    }
                }
                Err(_) => {
                    // e.g. too many open files: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn serve_connection<S>(
    stream: S,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
    scheme: &'static str,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let svc = service_fn(move |req| handle(state.clone(), req, scheme));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

fn log_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

/// `scheme` is `http` or `https`: how the client reached the emulator.
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    scheme: &'static str,
) -> Result<HttpResponse, Dropped> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    if segs[0] == "_emulator" {
        return Ok(control::handle(&state, req, &segs[1..]).await);
    }
    let _in_flight = state.enter_request();
    let arrival = SystemTime::now();
    let raw_path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| header_str(req.headers(), "host").map(str::to_string));
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(true)
            } else {
                Err(false) // client went away
            }
        }
    };

    let route = route(&segs);
    let (kind, call_id) = match &route {
        Route::KeepAlive { seg } => ("keepAlive", decode_segment(seg)),
        Route::Calls(r) => ("call", routes::calls::logged_call_id(r)),
        Route::Batch => ("batch", None),
        Route::Token { .. } => ("token", None),
        Route::Imds | Route::AppServiceMsi => ("managedIdentity", None),
        Route::NotFound { .. } => ("other", None),
    };
    let api_version = Some(segs[0]).filter(|s| is_version(s)).map(str::to_string);
    let seq = state.log_request(LoggedRequest {
        seq: 0,
        time: timefmt::rfc3339_millis(arrival),
        method: method.to_string(),
        raw_path: raw_path.clone(),
        call_id: call_id.clone(),
        api_version,
        headers: log_headers(&headers),
        body_length: body.as_ref().map(|b| b.len()).unwrap_or(0),
        status: None,
        kind: kind.to_string(),
        items: None,
        assertion: None,
    });

    let ctx = Ctx::new(header_str(&headers, "client-request-id"));
    let body = match body {
        Ok(b) => b,
        Err(true) => {
            let reply = Reply::graph_error(
                413,
                "RequestEntityTooLarge",
                "The request body is too large.",
                &ctx.client_request_id,
            );
            state.complete_log(seq, Some(413), None);
            return Ok(reply.into_response(&ctx));
        }
        Err(false) => {
            state.complete_log(seq, None, None);
            return Err(Dropped);
        }
    };

    let mut items_log = None;
    let request = RouteRequest {
        method: &method,
        headers: &headers,
        body: &body,
        path: &path,
        raw_path: &raw_path,
        query: &query,
        version: segs[0],
        call_id: call_id.as_deref(),
        authority: authority.as_deref(),
        scheme,
        seq,
        ctx: &ctx,
    };
    let reply = routes::dispatch(&state, route, &request, &mut items_log).await;
    state.complete_log(seq, reply.as_ref().map(|r| r.status), items_log);
    match reply {
        Some(r) => Ok(r.into_response(&ctx)),
        None => Err(Dropped),
    }
}
