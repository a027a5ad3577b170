//! Environments (clouds): list, add, remove.

use std::ffi::c_char;

use super::boundary::{respond, str_arg, to_json};
use super::MgkaStatus;
use crate::environment::{self, EnvironmentDefinition};
use crate::error::CoreError;
use crate::session;

/// Lists the environments (clouds) as a JSON array of
/// `{"name","azureADEndpoint","graphEndpoint","type":"Built-in"|"User-defined"}`.
/// Caller frees `*out_json` with `mgka_string_free`. Thread-safe.
///
/// # Safety
/// `out_json` is NULL or points to writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn mgka_environment_list(out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&environment::list()))
}

/// Defines or redefines a user-defined environment from
/// `{"name","azureADEndpoint","graphEndpoint"}`. Endpoints must be https (http only to loopback).
/// Built-in clouds cannot be redefined. `*out_json`: the environment. Caller frees it. Thread-safe;
/// the environment is visible to every caller in the process.
///
/// # Safety
/// `environment_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_environment_add(environment_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let json = str_arg(environment_json, "environment_json")?;
        let definition: EnvironmentDefinition = serde_json::from_str(json)
            .map_err(|e| CoreError::invalid("Environment", format!("The environment JSON is invalid: {e}.")))?;
        to_json(&environment::add(definition)?)
    })
}

/// Removes a user-defined environment. `*out_json`: the removed environment. Unknown name:
/// `MGKA_STATUS_NOT_FOUND`; a built-in cloud or the current session's environment:
/// `MGKA_STATUS_INVALID_ARGUMENT`. Caller frees `*out_json`. Thread-safe.
///
/// # Safety
/// `name` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_environment_remove(name: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || to_json(&session::remove_environment(str_arg(name, "name")?)?))
}
