//! A Microsoft Graph emulator for call keep-alive.
//!
//! It serves `POST /{v1.0|beta}/communications/calls/{id}/keepAlive` (also spelled
//! `microsoft.graph.keepAlive`), the call resource (`POST /{v1.0|beta}/communications/calls`,
//! `GET` / `DELETE .../calls/{id}`), `POST /{v1.0|beta}/$batch`,
//! an Entra ID style token endpoint `POST /{tenant}/oauth2/v2.0/token` (client secrets and
//! certificate assertions), the managed-identity endpoints `GET /metadata/identity/oauth2/token`
//! (VM instance metadata) and `GET /msi/token` (App Service) on loopback, plus a control API
//! under `/_emulator` (see `emulator/README.md`).
//!
//! Use it in-process from async tests with [`Emulator::start`], from synchronous tests with
//! [`spawn_blocking_runtime`], or as the `graph-emulator` binary.

mod assertion;
mod jwt;
mod reply;
mod routes;
mod server;
mod state;
mod timefmt;
mod tls;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use assertion::LoggedAssertion;
pub use jwt::{tenant_guid, MANAGED_IDENTITY_TENANT_ID, TOKEN_ROLES};
pub use routes::batch::MAX_BATCH;
pub use state::{
    AppRegistration, CallState, ConfigView, FaultResponse, FaultScript, InFlightView,
    LoggedBatchItem, LoggedRequest, ManagedIdentity, DEFAULT_IDENTITY_HEADER, LOG_CAPACITY,
    SYSTEM_ASSIGNED_CLIENT_ID,
};
pub use tls::{TlsIdentity, CERTIFICATE_NAMES};

use state::{Defaults, State};

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// A call without a successful keep-alive for this long is ended ("KeepAliveTimeout").
    pub call_timeout: Duration,
    /// Lifetime of issued tokens (token endpoint and managed identity); `expires_in`.
    pub token_lifetime: Duration,
    /// `refresh_in` of tokens issued by the token endpoint (omitted when `None`, the default).
    pub token_refresh_in: Option<Duration>,
    /// The value `X-IDENTITY-HEADER` must have at `/msi/token` (default
    /// [`DEFAULT_IDENTITY_HEADER`]).
    pub identity_header: String,
    /// Where to listen; must be a loopback address. Port 0 picks a free port.
    pub bind: SocketAddr,
    /// Serve `https` with this certificate instead of `http` (default: `None`). See
    /// [`TlsIdentity::generate`] and [`TlsIdentity::load_or_create`].
    pub tls: Option<TlsIdentity>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            call_timeout: Duration::from_secs(45 * 60),
            token_lifetime: Duration::from_secs(3599),
            token_refresh_in: None,
            identity_header: DEFAULT_IDENTITY_HEADER.to_string(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: None,
        }
    }
}

fn base_url_for(addr: SocketAddr, scheme: &str) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{scheme}://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{scheme}://[{}]:{}", a.ip(), a.port()),
    }
}

/// Operations shared by [`Emulator`] and [`EmulatorThread`].
#[derive(Clone)]
struct Handle {
    state: Arc<State>,
    addr: SocketAddr,
    tls: Option<TlsIdentity>,
}

impl Handle {
    fn base_url(&self) -> String {
        base_url_for(self.addr, if self.tls.is_some() { "https" } else { "http" })
    }
}

macro_rules! handle_api {
    () => {
        /// The address the emulator listens on.
        pub fn local_addr(&self) -> SocketAddr {
            self.handle.addr
        }

        /// `http://127.0.0.1:PORT` (`https://` with TLS; no trailing slash). Graph and token
        /// endpoints live under it.
        pub fn base_url(&self) -> String {
            self.handle.base_url()
        }

        /// The certificate served over TLS (PEM), or `None` without TLS.
        pub fn certificate_pem(&self) -> Option<&str> {
            self.handle.tls.as_ref().map(TlsIdentity::cert_pem)
        }

        /// Creates an active call (re-creating an existing id makes it active again) and returns
        /// its id: `id`, or a fresh lower-case GUID.
        pub fn create_call(&self, id: Option<&str>) -> String {
            self.handle.state.create_call(id)
        }

        /// Ends a call (end reason "Ended"); unknown ids are ignored.
        pub fn end_call(&self, id: &str) {
            self.handle.state.end_call(id);
        }

        /// The state of a call, or `None` when unknown.
        pub fn call_state(&self, id: &str) -> Option<CallState> {
            self.handle.state.call_state(id)
        }

        /// All calls, oldest first.
        pub fn calls(&self) -> Vec<CallState> {
            self.handle.state.all_calls()
        }

        /// The request log (control-API requests are not logged), oldest first.
        pub fn requests(&self) -> Vec<LoggedRequest> {
            self.handle.state.requests(None, None)
        }

        /// The logged requests for one decoded call id (including `$batch` requests with an item
        /// for it).
        pub fn requests_for_call(&self, call_id: &str) -> Vec<LoggedRequest> {
            self.handle.state.requests(Some(call_id), None)
        }

        /// Clears the request log.
        pub fn clear_requests(&self) {
            self.handle.state.clear_log();
        }

        /// Queues a fault script (same semantics as `POST /_emulator/faults`).
        pub fn push_faults(&self, script: FaultScript) {
            self.handle.state.push_faults(script);
        }

        /// Removes all pending fault scripts.
        pub fn clear_faults(&self) {
            self.handle.state.clear_faults();
        }

        /// Changes the call timeout for future keep-alives and new calls.
        pub fn set_call_timeout(&self, timeout: Duration) {
            self.handle.state.set_call_timeout(timeout);
        }

        /// Changes the lifetime of tokens issued from now on.
        pub fn set_token_lifetime(&self, lifetime: Duration) {
            self.handle.state.set_token_lifetime(lifetime);
        }

        /// How many request-log entries are kept (default 100,000; 0 disables the log). Not
        /// changed by `reset`.
        pub fn set_log_capacity(&self, capacity: usize) {
            self.handle.state.set_log_capacity(capacity);
        }

        /// Registers an app for the token endpoint with this secret, or sets the secret of an
        /// already registered app (its certificates are kept).
        pub fn register_app(&self, tenant_id: &str, client_id: &str, client_secret: &str) {
            self.handle
                .state
                .set_app_secret(tenant_id, client_id, client_secret);
        }

        /// Adds a certificate (DER X.509 with an RSA key) to an app, registering the app (without
        /// a secret) if needed; an existing secret and certificates are kept.
        ///
        /// # Panics
        /// When `cert_der` is not a DER X.509 certificate with an RSA public key.
        pub fn register_app_certificate(&self, tenant_id: &str, client_id: &str, cert_der: &[u8]) {
            if let Err(e) = self
                .handle
                .state
                .add_app_certificate(tenant_id, client_id, cert_der)
            {
                panic!("register_app_certificate: {e}");
            }
        }

        /// Registers an app exactly as given (replacing any registration of the same tenant and
        /// client), like `POST /_emulator/apps`. Certificates are base64 DER or PEM.
        pub fn register_app_registration(&self, app: AppRegistration) -> Result<(), String> {
            self.handle.state.register_app(app)
        }

        /// All app registrations.
        pub fn apps(&self) -> Vec<AppRegistration> {
            self.handle.state.apps()
        }

        /// Registers a user-assigned managed identity (the system-assigned one,
        /// [`SYSTEM_ASSIGNED_CLIENT_ID`], always exists).
        pub fn register_identity(&self, client_id: &str) {
            self.handle.state.register_identity(client_id);
        }

        /// Sets (or, with `None`, stops sending) `refresh_in` of issued tokens.
        pub fn set_token_refresh_in(&self, refresh_in: Option<Duration>) {
            self.handle.state.set_token_refresh_in(refresh_in);
        }

        /// Sets the value `X-IDENTITY-HEADER` must have at `/msi/token`.
        pub fn set_identity_header(&self, value: &str) {
            self.handle.state.set_identity_header(value);
        }

        /// The current runtime settings (as `GET /_emulator/config`).
        pub fn config(&self) -> ConfigView {
            self.handle.state.config_view()
        }

        /// Refuses (true) or handles (false, the default) keep-alives inside a `$batch`: each such
        /// item is answered 400 `BadRequest`, as a Graph that does not take keepAlive in JSON
        /// batches would answer. Single keep-alives are unaffected. `reset` turns it off.
        pub fn set_refuse_batched_keep_alive(&self, refuse: bool) {
            self.handle.state.set_refuse_batched_keep_alive(refuse);
        }

        /// Requests being answered now and the most at once since start, reset or
        /// [`reset_max_in_flight`](Self::reset_max_in_flight).
        pub fn in_flight(&self) -> InFlightView {
            self.handle.state.in_flight()
        }

        /// Starts a new maximum of requests in flight from those in flight now.
        pub fn reset_max_in_flight(&self) {
            self.handle.state.reset_max_in_flight();
        }

        /// Registers an access token (turns strict token checking on).
        pub fn register_token(&self, token: &str, lifetime: Duration) {
            self.handle.state.register_token(token, lifetime);
        }

        /// Mints a JWT-shaped access token for an app (claims as the token endpoint's, see
        /// `emulator/README.md`) and registers it for `lifetime` (strict mode on), like
        /// `POST /_emulator/tokens/issue`. For `Connect-MgGraph -AccessToken` tests: Microsoft's
        /// module reads the tenant from the token.
        pub fn issue_token(&self, tenant_id: &str, client_id: &str, lifetime: Duration) -> String {
            jwt::issue_for_app(&self.handle.state, tenant_id, client_id, lifetime)
        }

        /// Clears calls, faults, the log, tokens, apps, used assertion ids and user-assigned
        /// identities; restores the configured timeouts, token settings and identity header.
        pub fn reset(&self) {
            self.handle.state.reset();
        }
    };
}

/// A running emulator on the current tokio runtime.
pub struct Emulator {
    handle: Handle,
    shutdown: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Binds `config.bind` (loopback only) and spawns the server on the current tokio runtime.
    pub async fn start(config: Config) -> io::Result<Emulator> {
        if !config.bind.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to bind {}: the emulator only listens on loopback addresses",
                    config.bind.ip()
                ),
            ));
        }
        let acceptor = config.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(Defaults {
            call_timeout: config.call_timeout,
            token_lifetime: config.token_lifetime,
            token_refresh_in: config.token_refresh_in,
            identity_header: config.identity_header.clone(),
        }));
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(server::serve(listener, state.clone(), rx, acceptor));
        Ok(Emulator {
            handle: Handle {
                state,
                addr,
                tls: config.tls,
            },
            shutdown: tx,
            server: Some(server),
        })
    }

    handle_api!();

    /// Stops accepting connections (the port is closed when this returns) and asks open
    /// connections to close: idle ones close at once, in-flight requests get up to 1 s.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// An emulator running on its own runtime in a background thread, for synchronous tests.
/// Dropping it stops the server.
pub struct EmulatorThread {
    handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts an emulator on a 2-worker tokio runtime in a background thread.
pub fn spawn_blocking_runtime(config: Config) -> io::Result<EmulatorThread> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<Handle>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("graph-emulator".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("graph-emulator-worker")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                match Emulator::start(config).await {
                    Ok(emu) => {
                        let _ = ready_tx.send(Ok(emu.handle.clone()));
                        let _ = stop_rx.await;
                        emu.shutdown().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
    let handle = ready_rx
        .recv()
        .map_err(|_| io::Error::other("the emulator thread exited before starting"))??;
    Ok(EmulatorThread {
        handle,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

impl EmulatorThread {
    handle_api!();
}

impl Drop for EmulatorThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
