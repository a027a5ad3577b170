//! MgKeepAlive: keeps Microsoft Graph calls alive.
//!
//! The crate is a safe Rust core that knows nothing of C — the Graph client ([`graph`]), the
//! credentials ([`auth`]), clouds ([`environment`]), the process-wide connection ([`session`])
//! and cancellable background operations ([`operation`]) — under a thin C ABI ([`ffi`]) that only
//! converts pointers, strings and results. The core answers with typed results and errors
//! ([`CoreError`]); their JSON (answers, the error JSON and its error record) is made only in
//! [`ffi`]. The PowerShell module `pwsh/MgKeepAlive` drives the ABI.

pub mod auth;
pub mod clock;
pub mod environment;
pub mod error;
pub mod error_record;
pub mod ffi;
pub mod graph;
pub mod keeper;
pub mod operation;
pub mod redact;
pub mod request_context;
pub mod runtime;
pub mod session;

/// The library version; the PowerShell module refuses to load a library of another version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use error::{AuthError, CoreError, GraphError};
