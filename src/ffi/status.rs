use crate::error::CoreError;

/// The result of every `mgka_*` function. Values are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgkaStatus {
    /// Success.
    Ok = 0,
    /// Graph answered with a non-2xx status; the error JSON has its status, code, message and ids.
    GraphError = 1,
    /// No session: "Authentication needed. Please call Connect-MgGraph."
    NotConnected = 2,
    /// A call id, identity, option or environment was refused; the error JSON names the `parameter`.
    InvalidArgument = 3,
    /// A required pointer was NULL.
    NullPointer = 4,
    /// An input string was not valid UTF-8.
    InvalidUtf8 = 5,
    /// The connection failed or the response was broken.
    TransportError = 6,
    /// The client timeout elapsed.
    Timeout = 7,
    /// The operation was cancelled.
    Cancelled = 8,
    /// `mgka_operation_wait`: not finished yet; wait again.
    Pending = 9,
    /// The operation handle is unknown, already collected or cancelled.
    InvalidHandle = 10,
    /// A token could not be acquired.
    AuthError = 11,
    /// An internal error (a bug) was caught: at the ABI boundary, or in an operation's background
    /// work (then it is the operation's result).
    Panic = 12,
    /// A named thing (e.g. an environment) does not exist.
    NotFound = 13,
}

impl MgkaStatus {
    pub(crate) fn name(self) -> &'static str {
        match self {
            MgkaStatus::Ok => "Ok",
            MgkaStatus::GraphError => "GraphError",
            MgkaStatus::NotConnected => "NotConnected",
            MgkaStatus::InvalidArgument => "InvalidArgument",
            MgkaStatus::NullPointer => "NullPointer",
            MgkaStatus::InvalidUtf8 => "InvalidUtf8",
            MgkaStatus::TransportError => "TransportError",
            MgkaStatus::Timeout => "Timeout",
            MgkaStatus::Cancelled => "Cancelled",
            MgkaStatus::Pending => "Pending",
            MgkaStatus::InvalidHandle => "InvalidHandle",
            MgkaStatus::AuthError => "AuthError",
            MgkaStatus::Panic => "Panic",
            MgkaStatus::NotFound => "NotFound",
        }
    }
}

impl From<&CoreError> for MgkaStatus {
    fn from(error: &CoreError) -> Self {
        match error {
            CoreError::Graph(_) => MgkaStatus::GraphError,
            CoreError::NotConnected => MgkaStatus::NotConnected,
            CoreError::InvalidArgument { .. } => MgkaStatus::InvalidArgument,
            CoreError::NotFound(_) => MgkaStatus::NotFound,
            CoreError::Transport { .. } => MgkaStatus::TransportError,
            CoreError::Timeout { .. } => MgkaStatus::Timeout,
            CoreError::Cancelled { .. } => MgkaStatus::Cancelled,
            CoreError::Auth(_) => MgkaStatus::AuthError,
            CoreError::Panic { .. } => MgkaStatus::Panic,
        }
    }
}
