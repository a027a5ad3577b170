//! Operations started by the `*_start` exports: wait in slices, or cancel.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{answer, catch, guard, Failure, OPERATIONS};
use super::MgkaStatus;
use crate::operation::Wait;

/// Waits up to `timeout_ms` for an operation. `MGKA_STATUS_PENDING`: not finished, `*out_json`
/// untouched; wait again. Any other status is the operation's final result, with its JSON in
/// `*out_json` (caller frees), and the handle is released. Thread-safe; waiting in short slices
/// keeps the calling thread interruptible.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_operation_wait(operation: u64, timeout_ms: u32, out_json: *mut *mut c_char) -> MgkaStatus {
    let waited = catch(|| match OPERATIONS.wait(operation, Duration::from_millis(timeout_ms.into())) {
        None => Err(Failure::Abi(MgkaStatus::InvalidHandle, format!("Operation {operation} is unknown or already finished."))),
        Some(Wait::Pending) => Ok(None),
        Some(Wait::Finished(outcome)) => Ok(Some(outcome?)),
    });
    match waited {
        Ok(None) => MgkaStatus::Pending,
        Ok(Some(json)) => answer(out_json, Ok(json)),
        Err(failure) => answer(out_json, Err(failure)),
    }
}

/// Cancels an operation: its request is abandoned at once and the handle released.
/// `MGKA_STATUS_OK`, or `MGKA_STATUS_INVALID_HANDLE` if it was unknown or already collected. Thread-safe.
#[no_mangle]
pub extern "C" fn mgka_operation_cancel(operation: u64) -> MgkaStatus {
    guard(|| if OPERATIONS.cancel(operation) { MgkaStatus::Ok } else { MgkaStatus::InvalidHandle })
}

/// Operations started through the ABI and not yet collected (for tests: every handle is released).
pub fn outstanding_operations() -> usize {
    OPERATIONS.outstanding()
}
