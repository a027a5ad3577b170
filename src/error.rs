//! Errors of the core. Each maps to exactly one ABI status code in `ffi::status`; `ffi::error`
//! turns it into the error JSON documented in the header.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::graph::AttemptRecord;

/// A non-2xx answer from Graph, with everything a script needs to act on it without parsing text.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GraphError {
    pub call_id: Option<String>,
    pub http_status: u16,
    /// Canonical reason phrase of the status, e.g. `NotFound` (no spaces, like .NET's HttpStatusCode).
    pub reason: String,
    /// Graph's `error.code`, or `UnknownError` when the body carries none.
    pub code: String,
    /// Graph's `error.message`, or the raw body text when it is not Graph JSON.
    pub graph_message: String,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    /// `error.innerError.date`, else the `Date` response header.
    pub date: Option<String>,
    /// Response headers, names in lower case, each with all its values.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The raw body when it was not Graph's error JSON (bounded), so nothing is lost.
    pub body: Option<String>,
    pub attempts: u32,
    /// Every attempt, for `-Verbose` and `-Debug` (with their text).
    #[serde(serialize_with = "crate::graph::serialize_attempt_log")]
    pub attempt_log: Vec<AttemptRecord>,
}

impl GraphError {
    /// The message the official cmdlet shows: `[{code}] : {message}`.
    pub fn display_message(&self) -> String {
        format!("[{}] : {}", self.code, self.graph_message)
    }
}

/// A failed token request: Microsoft Entra ID's (or a managed identity endpoint's) answer.
/// Never holds the secret, key, assertion or token that was sent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthError {
    #[serde(skip)]
    pub message: String,
    /// OAuth `error`, e.g. `invalid_client`.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// AADSTS codes, e.g. `[7000215]`.
    pub error_codes: Vec<u64>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    pub http_status: Option<u16>,
    pub token_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    Graph(Box<GraphError>),
    NotConnected,
    InvalidArgument { parameter: &'static str, message: String },
    NotFound(String),
    Transport { call_id: Option<String>, message: String, attempt_log: Vec<AttemptRecord> },
    Timeout { call_id: Option<String>, after_ms: u64, attempt_log: Vec<AttemptRecord> },
    Cancelled { call_id: Option<String> },
    Auth(Box<AuthError>),
    /// A bug: background work panicked. Its operation, bulk item or kept call ends with this
    /// instead of never ending.
    Panic { call_id: Option<String>, message: String },
}

/// What a caught panic says, as every Panic result shows it.
pub(crate) fn panic_description(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    format!("Internal error in MgKeepAlive: {text}")
}

/// The text PowerShell users know from the official cmdlet.
pub const NOT_CONNECTED_MESSAGE: &str = "Authentication needed. Please call Connect-MgGraph.";

impl CoreError {
    pub fn transport(call_id: Option<&str>, message: impl Into<String>) -> Self {
        CoreError::Transport { call_id: call_id.map(str::to_owned), message: message.into(), attempt_log: Vec::new() }
    }

    pub fn timeout(call_id: Option<&str>, after: std::time::Duration) -> Self {
        CoreError::Timeout { call_id: call_id.map(str::to_owned), after_ms: after.as_millis() as u64, attempt_log: Vec::new() }
    }

    /// Records the attempts a keep-alive made before it ended in this error.
    pub fn with_attempts(mut self, log: Vec<AttemptRecord>) -> Self {
        match &mut self {
            CoreError::Graph(g) => {
                g.attempts = log.len().max(1) as u32;
                g.attempt_log = log;
            }
            CoreError::Transport { attempt_log, .. } | CoreError::Timeout { attempt_log, .. } => *attempt_log = log,
            _ => {}
        }
        self
    }

    fn attempt_log(&self) -> &[AttemptRecord] {
        match self {
            CoreError::Graph(g) => &g.attempt_log,
            CoreError::Transport { attempt_log, .. } | CoreError::Timeout { attempt_log, .. } => attempt_log,
            _ => &[],
        }
    }

    pub fn auth(message: impl Into<String>) -> Self {
        CoreError::Auth(Box::new(AuthError { message: message.into(), ..AuthError::default() }))
    }

    pub fn invalid(parameter: &'static str, message: impl Into<String>) -> Self {
        CoreError::InvalidArgument { parameter, message: message.into() }
    }

    /// A task that did not finish: its panic (with the panic's message), or its cancellation.
    pub fn from_join(error: tokio::task::JoinError) -> Self {
        match error.try_into_panic() {
            Ok(payload) => CoreError::Panic { call_id: None, message: panic_description(&*payload) },
            Err(_) => CoreError::Cancelled { call_id: None },
        }
    }

    /// Stable name of the error kind; the same word as the ABI status.
    pub fn kind(&self) -> &'static str {
        match self {
            CoreError::Graph(_) => "GraphError",
            CoreError::NotConnected => "NotConnected",
            CoreError::InvalidArgument { .. } => "InvalidArgument",
            CoreError::NotFound(_) => "NotFound",
            CoreError::Transport { .. } => "TransportError",
            CoreError::Timeout { .. } => "Timeout",
            CoreError::Cancelled { .. } => "Cancelled",
            CoreError::Auth(_) => "AuthError",
            CoreError::Panic { .. } => "Panic",
        }
    }

    /// Attaches the call id to errors raised before the id was known to the failing layer.
    pub fn with_call_id(mut self, id: &str) -> Self {
        match &mut self {
            CoreError::Graph(g) if g.call_id.is_none() => g.call_id = Some(id.to_owned()),
            CoreError::Transport { call_id, .. }
            | CoreError::Timeout { call_id, .. }
            | CoreError::Cancelled { call_id }
            | CoreError::Panic { call_id, .. }
                if call_id.is_none() =>
            {
                *call_id = Some(id.to_owned())
            }
            _ => {}
        }
        self
    }

    /// The call the error is about, when known.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            CoreError::Graph(g) => g.call_id.as_deref(),
            CoreError::Transport { call_id, .. }
            | CoreError::Timeout { call_id, .. }
            | CoreError::Cancelled { call_id }
            | CoreError::Panic { call_id, .. } => call_id.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Graph(g) => f.write_str(&g.display_message()),
            CoreError::NotConnected => f.write_str(NOT_CONNECTED_MESSAGE),
            CoreError::InvalidArgument { message, .. } => f.write_str(message),
            CoreError::NotFound(m) => f.write_str(m),
            CoreError::Auth(a) => f.write_str(&a.message),
            CoreError::Transport { message, .. } => match self.attempt_log().len() {
                0 | 1 => write!(f, "The request to Microsoft Graph failed: {message}"),
                n => write!(f, "The request to Microsoft Graph failed after {n} attempts: {message}"),
            },
            CoreError::Timeout { after_ms, .. } => write!(
                f,
                "The request to Microsoft Graph timed out after {} s (ClientTimeout){}.",
                *after_ms as f64 / 1000.0,
                after_attempts(self.attempt_log())
            ),
            CoreError::Cancelled { .. } => f.write_str("The request was cancelled."),
            CoreError::Panic { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for CoreError {}

/// ` after N attempts (last answer: 503)` for a timeout that followed earlier attempts.
fn after_attempts(log: &[AttemptRecord]) -> String {
    let answered = log.iter().rev().find_map(|a| a.status.map(|s| s.to_string()).or_else(|| a.error.clone().filter(|e| e != "Timeout")));
    match (log.len(), answered) {
        (0 | 1, _) => String::new(),
        (n, Some(last)) => format!(" after {n} attempts (last answer: {last})"),
        (n, None) => format!(" after {n} attempts"),
    }
}
