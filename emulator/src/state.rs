//! Shared emulator state: calls, fault scripts, the request log, tokens and app registrations.
//!
//! Locking is short and never held across an await point. Calls are sharded so that concurrent
//! keep-alives for different calls rarely contend.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::assertion::{CertInfo, LoggedAssertion};
use crate::timefmt;

/// Maximum number of entries kept in the request log (oldest dropped first).
pub const LOG_CAPACITY: usize = 100_000;
const CALL_SHARDS: usize = 32;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave the data inconsistent in a way
    // that matters for an emulator: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---------------------------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------------------------

/// One entry of the request log (`GET /_emulator/requests`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub seq: u64,
    /// Arrival time, RFC 3339 UTC with milliseconds.
    pub time: String,
    pub method: String,
    /// Path and query exactly as received (still percent-encoded).
    pub raw_path: String,
    /// The decoded call id for keep-alive requests, else `None`.
    pub call_id: Option<String>,
    /// `"v1.0"` or `"beta"` for Graph requests, else `None`.
    pub api_version: Option<String>,
    /// Request headers, lower-case names; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    pub body_length: usize,
    /// The status answered, or `None` when the connection was dropped (or not answered yet).
    pub status: Option<u16>,
    /// `"keepAlive"`, `"batch"`, `"token"`, `"managedIdentity"` or `"other"`.
    pub kind: String,
    /// For `batch` requests: one entry per item, in request order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<LoggedBatchItem>>,
    /// For token requests with a `client_assertion` whose header and claims parse: what it held
    /// (never the signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<LoggedAssertion>,
}

/// One item of a logged `$batch` request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoggedBatchItem {
    pub id: String,
    pub method: String,
    pub url: String,
    pub call_id: Option<String>,
    pub status: Option<u16>,
}

/// Observable state of one call (`GET /_emulator/calls/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallState {
    pub id: String,
    /// `"Active"` or `"Ended"`.
    pub state: String,
    pub keep_alive_count: u64,
    pub last_keep_alive: Option<String>,
    pub deadline: String,
    /// `None`, `"KeepAliveTimeout"` or `"Ended"`.
    pub end_reason: Option<String>,
    pub created_at: String,
    pub ended_at: Option<String>,
}

impl CallState {
    pub fn is_active(&self) -> bool {
        self.state == "Active"
    }
}

/// A scripted sequence of responses, consumed in order by matching requests before normal handling.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultScript {
    /// Match only keep-alives (single or batch item) for this exact decoded call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Match requests whose raw path (or batch item url) contains this substring. With a `path`,
    /// the script may also match `$batch` envelopes and token requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How many requests the script answers (default: number of responses). When larger than
    /// the number of responses, the responses are cycled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub responses: Vec<FaultResponse>,
}

/// One scripted response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultResponse {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Raw body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A JSON body (sent with `Content-Type: application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub delay_ms: u64,
    /// Close the connection without answering (after `delay_ms`).
    #[serde(default)]
    pub drop: bool,
    /// Send this many bytes of `x` as the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<usize>,
}

fn default_status() -> u16 {
    200
}

impl Default for FaultResponse {
    fn default() -> Self {
        FaultResponse::status(200)
    }
}

impl FaultResponse {
    /// A response with this status and nothing else (errors get a standard Graph error body).
    pub fn status(status: u16) -> Self {
        FaultResponse {
            status,
            headers: BTreeMap::new(),
            body: None,
            json: None,
            content_type: None,
            delay_ms: 0,
            drop: false,
            body_bytes: None,
        }
    }
    /// A response that closes the connection without answering.
    pub fn dropped() -> Self {
        FaultResponse {
            drop: true,
            ..FaultResponse::status(0)
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_string(), value.to_string());
        self
    }
    pub fn retry_after(self, value: &str) -> Self {
        self.header("Retry-After", value)
    }
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
    pub fn body(mut self, text: &str, content_type: &str) -> Self {
        self.body = Some(text.to_string());
        self.content_type = Some(content_type.to_string());
        self
    }
    pub fn json(mut self, value: serde_json::Value) -> Self {
        self.json = Some(value);
        self
    }
    pub fn body_bytes(mut self, n: usize) -> Self {
        self.body_bytes = Some(n);
        self
    }
}

impl FaultScript {
    /// A script for keep-alives of one call.
    pub fn for_call(call_id: &str, responses: Vec<FaultResponse>) -> Self {
        FaultScript {
            call_id: Some(call_id.to_string()),
            responses,
            ..Default::default()
        }
    }
    /// A script for any request whose raw path contains `path`.
    pub fn for_path(path: &str, responses: Vec<FaultResponse>) -> Self {
        FaultScript {
            path: Some(path.to_string()),
            responses,
            ..Default::default()
        }
    }
    /// A script for any keep-alive.
    pub fn any(responses: Vec<FaultResponse>) -> Self {
        FaultScript {
            responses,
            ..Default::default()
        }
    }
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }
}

/// Runtime settings exposed at `GET/PUT /_emulator/config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    pub call_timeout_secs: f64,
    pub token_lifetime_secs: f64,
    /// True once tokens were registered: only registered, unexpired tokens are accepted.
    pub strict_auth: bool,
    /// How many request-log entries are kept (0 disables the log).
    pub log_capacity: usize,
    /// `refresh_in` of tokens issued by the token endpoint; `None` (default) omits it.
    pub token_refresh_in_secs: Option<f64>,
    /// The value `X-IDENTITY-HEADER` must have at the App Service managed-identity endpoint.
    pub identity_header: String,
    /// True: keep-alives inside a `$batch` are refused (400 per item), as a Graph that does not
    /// accept keepAlive in JSON batches would answer; single keep-alives are unaffected.
    pub refuse_batched_keep_alive: bool,
}

/// How many Graph, token and identity requests are being answered (`GET /_emulator/in-flight`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InFlightView {
    /// Requests being answered now.
    pub in_flight: usize,
    /// The most answered at once since start, reset or the last `DELETE /_emulator/in-flight`.
    pub max_in_flight: usize,
}

/// An app registration for the token endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppRegistration {
    pub tenant_id: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    /// When true, the secret is treated as expired (AADSTS7000222).
    #[serde(default)]
    pub secret_expired: bool,
    /// Registered certificates, base64 DER (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
}

/// A managed identity known to the managed-identity endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedIdentity {
    pub client_id: String,
    /// `"SystemAssigned"` or `"UserAssigned"`.
    pub kind: String,
}

/// The client id of the system-assigned managed identity (always present).
pub const SYSTEM_ASSIGNED_CLIENT_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The default value `X-IDENTITY-HEADER` must have (App Service managed identity).
pub const DEFAULT_IDENTITY_HEADER: &str = "emulator-identity-header";

// ---------------------------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    KeepAliveTimeout,
    Ended,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::KeepAliveTimeout => "KeepAliveTimeout",
            EndReason::Ended => "Ended",
        }
    }
}

struct Call {
    created_at: SystemTime,
    deadline: Instant,
    deadline_wall: SystemTime,
    keep_alive_count: u64,
    last_keep_alive: Option<SystemTime>,
    ended: Option<(EndReason, SystemTime)>,
    /// The Graph call resource for calls created with `POST /communications/calls`.
    resource: Option<Arc<CallResource>>,
}

/// The properties of a call resource (Graph's order), without `state` and `@odata.context`,
/// which depend on when and where it is read.
pub(crate) type CallResource = Vec<(String, serde_json::Value)>;

impl Call {
    fn new(timeout: Duration) -> Call {
        let now = SystemTime::now();
        Call {
            created_at: now,
            deadline: Instant::now() + timeout,
            deadline_wall: now + timeout,
            keep_alive_count: 0,
            last_keep_alive: None,
            ended: None,
            resource: None,
        }
    }

    /// Lazily applies the keep-alive timeout.
    fn refresh(&mut self, now: Instant) {
        if self.ended.is_none() && now >= self.deadline {
            self.ended = Some((EndReason::KeepAliveTimeout, self.deadline_wall));
        }
    }

    fn view(&self, id: &str) -> CallState {
        CallState {
            id: id.to_string(),
            state: if self.ended.is_some() {
                "Ended"
            } else {
                "Active"
            }
            .to_string(),
            keep_alive_count: self.keep_alive_count,
            last_keep_alive: self.last_keep_alive.map(timefmt::rfc3339_millis),
            deadline: timefmt::rfc3339_millis(self.deadline_wall),
            end_reason: self.ended.map(|(r, _)| r.as_str().to_string()),
            created_at: timefmt::rfc3339_millis(self.created_at),
            ended_at: self.ended.map(|(_, t)| timefmt::rfc3339_millis(t)),
        }
    }
}

struct ActiveFault {
    script: FaultScript,
    remaining: u64,
    used: u64,
}

/// What a fault script is matched against.
pub(crate) struct FaultTarget<'a> {
    /// Decoded call id for keep-alives (single or batch item).
    pub call_id: Option<&'a str>,
    /// Raw path (or batch item url).
    pub path: &'a str,
    pub is_keep_alive: bool,
}

struct Token {
    expires: Instant,
}

/// An app registration with its parsed certificates.
struct App {
    reg: AppRegistration,
    certs: Vec<Arc<CertInfo>>,
}

/// Settings restored by `reset`.
pub(crate) struct Defaults {
    pub call_timeout: Duration,
    pub token_lifetime: Duration,
    pub token_refresh_in: Option<Duration>,
    pub identity_header: String,
}

pub(crate) struct State {
    defaults: Defaults,
    call_timeout_nanos: AtomicU64,
    token_lifetime_nanos: AtomicU64,
    token_refresh_in: Mutex<Option<Duration>>,
    identity_header: Mutex<String>,

    hasher: RandomState,
    calls: Vec<Mutex<HashMap<String, Call>>>,

    fault_count: AtomicUsize,
    faults: Mutex<Vec<ActiveFault>>,

    log: Mutex<(u64, VecDeque<LoggedRequest>)>,
    log_capacity: AtomicUsize,

    strict: AtomicBool,
    tokens: Mutex<HashMap<String, Token>>,
    apps: Mutex<Vec<App>>,
    /// Used assertion ids ("client_id\njti") with the assertion's expiry (unix seconds).
    jtis: Mutex<HashMap<String, f64>>,
    /// User-assigned managed identities (client ids).
    identities: Mutex<Vec<String>>,

    refuse_batched_keep_alive: AtomicBool,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Counts one request as in flight until dropped (also when its connection is dropped).
pub(crate) struct InFlight<'a>(&'a State);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) enum KeepAliveOutcome {
    Ok,
    NotFound,
}

pub(crate) enum TokenCheck {
    Valid,
    Unknown,
    Expired,
}

impl State {
    pub fn new(defaults: Defaults) -> State {
        State {
            call_timeout_nanos: AtomicU64::new(dur_nanos(defaults.call_timeout)),
            token_lifetime_nanos: AtomicU64::new(dur_nanos(defaults.token_lifetime)),
            token_refresh_in: Mutex::new(defaults.token_refresh_in),
            identity_header: Mutex::new(defaults.identity_header.clone()),
            defaults,
            hasher: RandomState::new(),
            calls: (0..CALL_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            fault_count: AtomicUsize::new(0),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new((0, VecDeque::new())),
            log_capacity: AtomicUsize::new(LOG_CAPACITY),
            strict: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
            apps: Mutex::new(Vec::new()),
            jtis: Mutex::new(HashMap::new()),
            identities: Mutex::new(Vec::new()),
            refuse_batched_keep_alive: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    // --- config -------------------------------------------------------------------------------

    pub fn call_timeout(&self) -> Duration {
        Duration::from_nanos(self.call_timeout_nanos.load(Ordering::Relaxed))
    }
    pub fn token_lifetime(&self) -> Duration {
        Duration::from_nanos(self.token_lifetime_nanos.load(Ordering::Relaxed))
    }
    pub fn set_call_timeout(&self, d: Duration) {
        self.call_timeout_nanos
            .store(dur_nanos(d), Ordering::Relaxed);
    }
    pub fn set_token_lifetime(&self, d: Duration) {
        self.token_lifetime_nanos
            .store(dur_nanos(d), Ordering::Relaxed);
    }
    pub fn config_view(&self) -> ConfigView {
        ConfigView {
            call_timeout_secs: self.call_timeout().as_secs_f64(),
            token_lifetime_secs: self.token_lifetime().as_secs_f64(),
            strict_auth: self.strict.load(Ordering::Relaxed),
            log_capacity: self.log_capacity(),
            token_refresh_in_secs: self.token_refresh_in().map(|d| d.as_secs_f64()),
            identity_header: self.identity_header(),
            refuse_batched_keep_alive: self.refuses_batched_keep_alive(),
        }
    }
    pub fn refuses_batched_keep_alive(&self) -> bool {
        self.refuse_batched_keep_alive.load(Ordering::Relaxed)
    }
    pub fn set_refuse_batched_keep_alive(&self, on: bool) {
        self.refuse_batched_keep_alive.store(on, Ordering::Relaxed);
    }

    // --- requests in flight -------------------------------------------------------------------

    /// Counts a request as in flight (raising the maximum if needed) until the guard is dropped.
    pub(crate) fn enter_request(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_in_flight.fetch_max(now, Ordering::AcqRel);
        InFlight(self)
    }
    pub fn in_flight(&self) -> InFlightView {
        InFlightView {
            in_flight: self.in_flight.load(Ordering::Acquire),
            max_in_flight: self.max_in_flight.load(Ordering::Acquire),
        }
    }
    /// Starts a new maximum from the requests in flight now.
    pub fn reset_max_in_flight(&self) {
        self.max_in_flight
            .store(self.in_flight.load(Ordering::Acquire), Ordering::Release);
    }
    pub fn token_refresh_in(&self) -> Option<Duration> {
        *lock(&self.token_refresh_in)
    }
    pub fn set_token_refresh_in(&self, d: Option<Duration>) {
        *lock(&self.token_refresh_in) = d;
    }
    pub fn identity_header(&self) -> String {
        lock(&self.identity_header).clone()
    }
    pub fn set_identity_header(&self, h: &str) {
        *lock(&self.identity_header) = h.to_string();
    }
    pub fn set_strict(&self, on: bool) {
        self.strict.store(on, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.set_call_timeout(self.defaults.call_timeout);
        self.set_token_lifetime(self.defaults.token_lifetime);
        self.set_token_refresh_in(self.defaults.token_refresh_in);
        self.set_identity_header(&self.defaults.identity_header);
        self.set_refuse_batched_keep_alive(false);
        self.reset_max_in_flight();
        lock(&self.jtis).clear();
        lock(&self.identities).clear();
        for shard in &self.calls {
            lock(shard).clear();
        }
        self.clear_faults();
        self.clear_log();
        lock(&self.tokens).clear();
        self.strict.store(false, Ordering::Relaxed);
        lock(&self.apps).clear();
    }

    // --- calls --------------------------------------------------------------------------------

    fn shard(&self, id: &str) -> &Mutex<HashMap<String, Call>> {
        let h = self.hasher.hash_one(id);
        &self.calls[(h as usize) % CALL_SHARDS]
    }

    /// Creates (or re-creates, as active) a call. Returns its id.
    pub fn create_call(&self, id: Option<&str>) -> String {
        let id = id.map(str::to_string).unwrap_or_else(new_guid);
        let call = Call::new(self.call_timeout());
        lock(self.shard(&id)).insert(id.clone(), call);
        id
    }

    /// Creates an active call with its Graph resource (`POST /communications/calls`).
    pub fn create_call_resource(&self, id: &str, resource: CallResource) {
        let mut call = Call::new(self.call_timeout());
        call.resource = Some(Arc::new(resource));
        lock(self.shard(id)).insert(id.to_string(), call);
    }

    /// For an active call: `Some` with its Graph resource (`None` inside for calls created
    /// through the control API). `None` for unknown or ended calls.
    pub fn active_call_resource(&self, id: &str) -> Option<Option<Arc<CallResource>>> {
        let mut shard = lock(self.shard(id));
        let call = shard.get_mut(id)?;
        call.refresh(Instant::now());
        call.ended.is_none().then(|| call.resource.clone())
    }

    /// Ends an active call (reason "Ended"). Returns false when the call is unknown or had ended.
    pub fn end_active_call(&self, id: &str) -> bool {
        let mut shard = lock(self.shard(id));
        let Some(call) = shard.get_mut(id) else {
            return false;
        };
        call.refresh(Instant::now());
        if call.ended.is_some() {
            return false;
        }
        call.ended = Some((EndReason::Ended, SystemTime::now()));
        true
    }

    /// Ends a call (reason "Ended"). Returns false when unknown.
    pub fn end_call(&self, id: &str) -> bool {
        let mut shard = lock(self.shard(id));
        match shard.get_mut(id) {
            Some(call) => {
                call.refresh(Instant::now());
                if call.ended.is_none() {
                    call.ended = Some((EndReason::Ended, SystemTime::now()));
                }
                true
            }
            None => false,
        }
    }

    pub fn remove_calls(&self) {
        for shard in &self.calls {
            lock(shard).clear();
        }
    }

    pub fn call_state(&self, id: &str) -> Option<CallState> {
        let mut shard = lock(self.shard(id));
        shard.get_mut(id).map(|c| {
            c.refresh(Instant::now());
            c.view(id)
        })
    }

    pub fn all_calls(&self) -> Vec<CallState> {
        let now = Instant::now();
        let mut out = Vec::new();
        for shard in &self.calls {
            let mut shard = lock(shard);
            for (id, c) in shard.iter_mut() {
                c.refresh(now);
                out.push(c.view(id));
            }
        }
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }

    pub fn keep_alive(&self, id: &str) -> KeepAliveOutcome {
        let now = Instant::now();
        let mut shard = lock(self.shard(id));
        match shard.get_mut(id) {
            Some(call) => {
                call.refresh(now);
                if call.ended.is_some() {
                    return KeepAliveOutcome::NotFound;
                }
                let timeout = self.call_timeout();
                let wall = SystemTime::now();
                call.deadline = now + timeout;
                call.deadline_wall = wall + timeout;
                call.keep_alive_count += 1;
                call.last_keep_alive = Some(wall);
                KeepAliveOutcome::Ok
            }
            None => KeepAliveOutcome::NotFound,
        }
    }

    // --- faults -------------------------------------------------------------------------------

    pub fn push_faults(&self, script: FaultScript) {
        if script.responses.is_empty() {
            return;
        }
        let remaining = script.count.unwrap_or(script.responses.len() as u64);
        if remaining == 0 {
            return;
        }
        let mut faults = lock(&self.faults);
        faults.push(ActiveFault {
            script,
            remaining,
            used: 0,
        });
        self.fault_count.store(faults.len(), Ordering::Release);
    }

    pub fn clear_faults(&self) {
        let mut faults = lock(&self.faults);
        faults.clear();
        self.fault_count.store(0, Ordering::Release);
    }

    pub fn pending_faults(&self) -> Vec<FaultScript> {
        lock(&self.faults)
            .iter()
            .map(|f| FaultScript {
                count: Some(f.remaining),
                ..f.script.clone()
            })
            .collect()
    }

    /// Consumes the next scripted response for a matching request, if any.
    pub fn take_fault(&self, target: &FaultTarget<'_>) -> Option<FaultResponse> {
        if self.fault_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut faults = lock(&self.faults);
        let idx = faults.iter().position(|f| matches(&f.script, target))?;
        let f = &mut faults[idx];
        let response = f.script.responses[(f.used as usize) % f.script.responses.len()].clone();
        f.used += 1;
        f.remaining -= 1;
        if f.remaining == 0 {
            faults.remove(idx);
            self.fault_count.store(faults.len(), Ordering::Release);
        }
        Some(response)
    }

    // --- request log --------------------------------------------------------------------------

    /// Appends an entry (its `seq` is assigned here) and returns the seq.
    pub fn log_request(&self, mut entry: LoggedRequest) -> u64 {
        let cap = self.log_capacity.load(Ordering::Relaxed);
        let mut log = lock(&self.log);
        log.0 += 1;
        let seq = log.0;
        if cap == 0 {
            return seq;
        }
        entry.seq = seq;
        while log.1.len() >= cap {
            log.1.pop_front();
        }
        log.1.push_back(entry);
        seq
    }

    /// Changes the logged request `seq`, if it is still in the log.
    fn update_log_entry(&self, seq: u64, update: impl FnOnce(&mut LoggedRequest)) {
        let mut log = lock(&self.log);
        let Some(front) = log.1.front().map(|e| e.seq) else {
            return;
        };
        if let Some(e) = seq
            .checked_sub(front)
            .and_then(|i| log.1.get_mut(i as usize))
        {
            if e.seq == seq {
                update(e);
            }
        }
    }

    /// Attaches what a client assertion held to a logged token request.
    pub fn set_log_assertion(&self, seq: u64, assertion: LoggedAssertion) {
        self.update_log_entry(seq, |e| e.assertion = Some(assertion));
    }

    /// Records the answer to a logged request.
    pub fn complete_log(&self, seq: u64, status: Option<u16>, items: Option<Vec<LoggedBatchItem>>) {
        self.update_log_entry(seq, |e| {
            e.status = status;
            if items.is_some() {
                e.items = items;
            }
        });
    }

    pub fn requests(&self, call_id: Option<&str>, kind: Option<&str>) -> Vec<LoggedRequest> {
        let log = lock(&self.log);
        log.1
            .iter()
            .filter(|e| {
                call_id.is_none_or(|c| {
                    e.call_id.as_deref() == Some(c)
                        || e.items.as_ref().is_some_and(|items| {
                            items.iter().any(|i| i.call_id.as_deref() == Some(c))
                        })
                })
            })
            .filter(|e| kind.is_none_or(|k| e.kind.eq_ignore_ascii_case(k)))
            .cloned()
            .collect()
    }

    pub fn log_capacity(&self) -> usize {
        self.log_capacity.load(Ordering::Relaxed)
    }

    pub fn set_log_capacity(&self, cap: usize) {
        self.log_capacity.store(cap, Ordering::Relaxed);
        let mut log = lock(&self.log);
        while log.1.len() > cap {
            log.1.pop_front();
        }
    }

    pub fn clear_log(&self) {
        // Sequence numbers keep increasing across clears.
        lock(&self.log).1.clear();
    }

    // --- tokens and apps ----------------------------------------------------------------------

    pub fn strict(&self) -> bool {
        self.strict.load(Ordering::Relaxed)
    }

    pub fn register_token(&self, token: &str, lifetime: Duration) {
        lock(&self.tokens).insert(
            token.to_string(),
            Token {
                expires: Instant::now() + lifetime,
            },
        );
        self.strict.store(true, Ordering::Relaxed);
    }

    pub fn clear_tokens(&self) {
        lock(&self.tokens).clear();
        self.strict.store(false, Ordering::Relaxed);
    }

    pub fn check_token(&self, token: &str) -> TokenCheck {
        if !self.strict() {
            return TokenCheck::Valid;
        }
        match lock(&self.tokens).get(token) {
            None => TokenCheck::Unknown,
            Some(t) if Instant::now() >= t.expires => TokenCheck::Expired,
            Some(_) => TokenCheck::Valid,
        }
    }

    /// Registers (replaces) an app. Its certificates must parse (checked by the caller with
    /// [`CertInfo::parse`]); unparsable ones are rejected here too.
    pub fn register_app(&self, mut app: AppRegistration) -> Result<(), String> {
        use base64::Engine;
        let certs = parse_certs(&app.certificates)?;
        app.certificates = certs
            .iter()
            .map(|c| base64::engine::general_purpose::STANDARD.encode(&c.der))
            .collect();
        let mut apps = lock(&self.apps);
        apps.retain(|a| !same_app(&a.reg, &app.tenant_id, &app.client_id));
        apps.push(App { reg: app, certs });
        Ok(())
    }

    /// Sets the secret of an app, keeping its certificates (creates the app if needed).
    pub fn set_app_secret(&self, tenant_id: &str, client_id: &str, secret: &str) {
        let mut apps = lock(&self.apps);
        match apps
            .iter_mut()
            .find(|a| same_app(&a.reg, tenant_id, client_id))
        {
            Some(a) => {
                a.reg.client_secret = secret.to_string();
                a.reg.secret_expired = false;
            }
            None => apps.push(App {
                reg: AppRegistration {
                    tenant_id: tenant_id.into(),
                    client_id: client_id.into(),
                    client_secret: secret.into(),
                    secret_expired: false,
                    certificates: Vec::new(),
                },
                certs: Vec::new(),
            }),
        }
    }

    /// Adds a certificate to an app, keeping its secret (creates the app if needed).
    pub fn add_app_certificate(
        &self,
        tenant_id: &str,
        client_id: &str,
        der: &[u8],
    ) -> Result<(), String> {
        use base64::Engine;
        let cert = Arc::new(CertInfo::parse(der)?);
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut apps = lock(&self.apps);
        let idx = match apps
            .iter()
            .position(|a| same_app(&a.reg, tenant_id, client_id))
        {
            Some(i) => i,
            None => {
                apps.push(App {
                    reg: AppRegistration {
                        tenant_id: tenant_id.into(),
                        client_id: client_id.into(),
                        client_secret: String::new(),
                        secret_expired: false,
                        certificates: Vec::new(),
                    },
                    certs: Vec::new(),
                });
                apps.len() - 1
            }
        };
        let app = &mut apps[idx];
        if !app.certs.iter().any(|c| c.der == der) {
            app.reg.certificates.push(b64);
            app.certs.push(cert);
        }
        Ok(())
    }

    pub fn clear_apps(&self) {
        lock(&self.apps).clear();
    }

    pub fn apps(&self) -> Vec<AppRegistration> {
        lock(&self.apps).iter().map(|a| a.reg.clone()).collect()
    }

    pub fn tenant_known(&self, tenant_id: &str) -> bool {
        lock(&self.apps)
            .iter()
            .any(|a| a.reg.tenant_id.eq_ignore_ascii_case(tenant_id))
    }

    /// An app and its parsed certificates.
    pub fn find_app(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> Option<(AppRegistration, Vec<Arc<CertInfo>>)> {
        lock(&self.apps)
            .iter()
            .find(|a| same_app(&a.reg, tenant_id, client_id))
            .map(|a| (a.reg.clone(), a.certs.clone()))
    }

    /// Records an assertion id; false when it was used before (a replay).
    pub fn use_jti(&self, client_id: &str, jti: &str, exp: f64) -> bool {
        let key = format!("{}\n{jti}", client_id.to_ascii_lowercase());
        let mut jtis = lock(&self.jtis);
        if jtis.contains_key(&key) {
            return false;
        }
        if jtis.len() >= 10_000 {
            // Expired assertions are rejected anyway: forget their ids.
            let now = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            jtis.retain(|_, e| *e > now);
        }
        jtis.insert(key, exp);
        true
    }

    // --- managed identities -------------------------------------------------------------------

    pub fn register_identity(&self, client_id: &str) {
        let mut ids = lock(&self.identities);
        if !ids.iter().any(|i| i.eq_ignore_ascii_case(client_id)) {
            ids.push(client_id.to_string());
        }
    }

    pub fn clear_identities(&self) {
        lock(&self.identities).clear();
    }

    pub fn identities(&self) -> Vec<ManagedIdentity> {
        let mut out = vec![ManagedIdentity {
            client_id: SYSTEM_ASSIGNED_CLIENT_ID.into(),
            kind: "SystemAssigned".into(),
        }];
        out.extend(lock(&self.identities).iter().map(|c| ManagedIdentity {
            client_id: c.clone(),
            kind: "UserAssigned".into(),
        }));
        out
    }

    /// The canonical client id of a known identity (system-assigned when `client_id` is None).
    pub fn find_identity(&self, client_id: Option<&str>) -> Option<String> {
        match client_id {
            None => Some(SYSTEM_ASSIGNED_CLIENT_ID.to_string()),
            Some(c) if c.eq_ignore_ascii_case(SYSTEM_ASSIGNED_CLIENT_ID) => {
                Some(SYSTEM_ASSIGNED_CLIENT_ID.to_string())
            }
            Some(c) => lock(&self.identities)
                .iter()
                .find(|i| i.eq_ignore_ascii_case(c))
                .cloned(),
        }
    }
}

fn same_app(a: &AppRegistration, tenant_id: &str, client_id: &str) -> bool {
    a.tenant_id.eq_ignore_ascii_case(tenant_id) && a.client_id.eq_ignore_ascii_case(client_id)
}

fn parse_certs(texts: &[String]) -> Result<Vec<Arc<CertInfo>>, String> {
    texts
        .iter()
        .map(|t| {
            crate::assertion::decode_certificate_text(t)
                .and_then(|der| CertInfo::parse(&der))
                .map(Arc::new)
        })
        .collect()
}

fn matches(script: &FaultScript, t: &FaultTarget<'_>) -> bool {
    if let Some(c) = &script.call_id {
        if t.call_id != Some(c.as_str()) {
            return false;
        }
    }
    match &script.path {
        Some(p) => t.path.contains(p.as_str()),
        // Without a path, scripts only apply to keep-alives.
        None => t.is_keep_alive,
    }
}

fn dur_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
