//! The C ABI: converts pointers and strings, calls the core, converts results. Nothing else.
//!
//! Conventions (also in the header and the README):
//! - Every function returns an [`MgkaStatus`] and never unwinds: a panic becomes `MGKA_STATUS_PANIC`.
//! - Strings in are NUL-terminated UTF-8, borrowed for the duration of the call only.
//! - `char **out_json` receives a string owned by the caller, to be released with
//!   [`mgka_string_free`]; it may be NULL when the caller does not want it. On failure it holds the
//!   error JSON `{"kind","message","callId","parameter",...}`.
//! - Every function may be called from any thread, concurrently.
//!
//! One file per concern, as the header groups them: `library` (version, strings, redaction),
//! `environment`, `session` (connect, context, request settings), `keep_alive`, `operation`
//! (waiting for and cancelling what `*_start` began), `keeper`, `error` (error records).
//! `boundary` holds what they share: the panic boundary, argument and answer conversion.

mod boundary;
mod environment;
mod error;
mod keep_alive;
mod keeper;
mod library;
mod operation;
mod session;
mod status;

pub use environment::*;
pub use error::*;
pub use keep_alive::*;
pub use keeper::*;
pub use library::*;
pub use operation::*;
pub use session::*;
pub use status::MgkaStatus;
