//! Shared emulator state: calls, fault scripts, the request log, tokens and app registrations.
//!
//! Locking is short and never held across an await point. Calls are sharded so that concurrent
//! keep-alives for different calls rarely contend.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

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
    /// `"keepAlive"`, `"batch"`, `"token"` or `"other"`.
    pub kind: String,
    /// For `batch` requests: one entry per item, in request order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<LoggedBatchItem>>,
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
}

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
}

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

pub(crate) struct State {
    default_call_timeout: Duration,
    default_token_lifetime: Duration,
    call_timeout_nanos: AtomicU64,
    token_lifetime_nanos: AtomicU64,

    hasher: RandomState,
    calls: Vec<Mutex<HashMap<String, Call>>>,

    fault_count: AtomicUsize,
    faults: Mutex<Vec<ActiveFault>>,

    log: Mutex<(u64, VecDeque<LoggedRequest>)>,
    log_capacity: AtomicUsize,

    strict: AtomicBool,
    tokens: Mutex<HashMap<String, Token>>,
    apps: Mutex<Vec<AppRegistration>>,
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
    pub fn new(call_timeout: Duration, token_lifetime: Duration) -> State {
        State {
            default_call_timeout: call_timeout,
            default_token_lifetime: token_lifetime,
            call_timeout_nanos: AtomicU64::new(dur_nanos(call_timeout)),
            token_lifetime_nanos: AtomicU64::new(dur_nanos(token_lifetime)),
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
        }
    }
    pub fn set_strict(&self, on: bool) {
        self.strict.store(on, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.set_call_timeout(self.default_call_timeout);
        self.set_token_lifetime(self.default_token_lifetime);
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

    /// Records the answer to a logged request.
    pub fn complete_log(&self, seq: u64, status: Option<u16>, items: Option<Vec<LoggedBatchItem>>) {
        let mut log = lock(&self.log);
        let Some(front) = log.1.front().map(|e| e.seq) else {
            return;
        };
        if seq < front {
            return;
        }
        if let Some(e) = log.1.get_mut((seq - front) as usize) {
            if e.seq == seq {
                e.status = status;
                if items.is_some() {
                    e.items = items;
                }
            }
        }
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

    pub fn register_app(&self, app: AppRegistration) {
        let mut apps = lock(&self.apps);
        apps.retain(|a| {
            !(a.tenant_id.eq_ignore_ascii_case(&app.tenant_id)
                && a.client_id.eq_ignore_ascii_case(&app.client_id))
        });
        apps.push(app);
    }

    pub fn clear_apps(&self) {
        lock(&self.apps).clear();
    }

    pub fn apps(&self) -> Vec<AppRegistration> {
        lock(&self.apps).clone()
    }
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
