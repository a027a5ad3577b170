//! The process-wide connection: one environment and one credential, shared by every runspace.
//!
//! The session is swapped atomically behind an `Arc`: a keep-alive in flight keeps the session it
//! started with, so `Disconnect-MgGraph` in one runspace never tears down another's request.

use std::sync::{Arc, RwLock};

use once_cell::sync::Lazy;
use serde::{Deserialize, Serialize};

use crate::auth::{Credential, Secret};
use crate::environment::{self, Environment, DEFAULT_ENVIRONMENT};
use crate::error::CoreError;

#[derive(Debug)]
pub struct Session {
    pub environment: Environment,
    pub credential: Credential,
}

/// What `Get-MgContext` shows. Never contains a secret.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub scopes: Vec<String>,
    pub auth_type: String,
    pub token_credential_type: String,
    pub certificate_thumbprint: Option<String>,
    pub environment: String,
    pub context_scope: String,
    pub app_name: String,
}

/// How to connect. The secret travels separately, never inside JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectRequest {
    pub auth_type: AuthKind,
    #[serde(default)]
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    AccessToken,
}

static CURRENT: Lazy<RwLock<Option<Arc<Session>>>> = Lazy::new(|| RwLock::new(None));

impl Session {
    pub fn context(&self) -> Context {
        Context {
            client_id: None,
            tenant_id: None,
            scopes: Vec::new(),
            auth_type: self.credential.auth_type().into(),
            token_credential_type: self.credential.token_credential_type().into(),
            certificate_thumbprint: None,
            environment: self.environment.name.clone(),
            context_scope: "Process".into(),
            app_name: "MgKeepAlive".into(),
        }
    }
}

/// Replaces the current session (if any) with a new one and returns its context.
pub fn connect(request: ConnectRequest, secret: Secret) -> Result<Context, CoreError> {
    let environment = environment::get(request.environment.as_deref().unwrap_or(DEFAULT_ENVIRONMENT))?;
    let credential = match request.auth_type {
        AuthKind::AccessToken => Credential::access_token(secret)?,
    };
    let session = Arc::new(Session { environment, credential });
    let context = session.context();
    *CURRENT.write().unwrap_or_else(|p| p.into_inner()) = Some(session);
    Ok(context)
}

/// Ends the session; returns the context it closed. Secrets are zeroed when the last in-flight
/// request that holds the session finishes.
pub fn disconnect() -> Option<Context> {
    let old = CURRENT.write().unwrap_or_else(|p| p.into_inner()).take();
    old.map(|s| s.context())
}

pub fn current() -> Result<Arc<Session>, CoreError> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone().ok_or(CoreError::NotConnected)
}

pub fn context() -> Option<Context> {
    current().ok().map(|s| s.context())
}

/// One keep-alive in the current session. The session is taken once, at the start, so a
/// concurrent disconnect or reconnect does not affect a request already under way.
pub async fn keep_alive(call_id: String, options: crate::graph::KeepAliveOptions) -> crate::operation::Outcome {
    let session = current()?;
    crate::graph::keep_alive(&session, &call_id, &options).await.map_err(|e| e.with_call_id(&call_id))
}
