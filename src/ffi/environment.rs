//! Environments (clouds): list, add, set, remove, and the clouds' keep-alive warnings.

use std::ffi::c_char;

use super::boundary::{parse_json, respond, str_arg, to_json, Failure};
use super::MgkaStatus;
use crate::environment::{self, EnvironmentChange, EnvironmentDefinition};
use crate::graph::ApiVersion;
use crate::error::CoreError;
use crate::session;

/// Lists the environments (clouds) as a JSON array of
/// `{"name","azureADEndpoint","graphEndpoint","type":"Built-in"|"User-defined","cloud"}` (`cloud`:
/// Global, USGov, USGovDoD, China or Other, by the Graph endpoint's host).
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

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetJson {
    name: String,
    #[serde(default, rename = "azureADEndpoint")]
    azure_ad_endpoint: Option<String>,
    #[serde(default)]
    graph_endpoint: Option<String>,
    #[serde(default)]
    preview: bool,
}

/// Changes a user-defined environment in one step (`Set-MgEnvironment`): `request_json` is
/// `{"name","azureADEndpoint","graphEndpoint"}`; an endpoint not given (absent, null or empty)
/// keeps its value; endpoints are checked as by `mgka_environment_add`. `*out_json`: the changed environment (as
/// `mgka_environment_list` shows it). An unknown name is `MGKA_STATUS_NOT_FOUND` and a built-in
/// cloud `MGKA_STATUS_INVALID_ARGUMENT`, their error JSON with `"errorId"`
/// (`EnvironmentNotFound`, `BuiltInEnvironment`). With `"preview":true` nothing changes: the
/// answer is the environment as the change would make it, endpoints unchecked and shown without
/// user info (`***`), for a host to ask its user to confirm; the same two refusals apply.
/// Caller frees `*out_json`. Thread-safe; the change is atomic.
///
/// # Safety
/// `request_json` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_environment_set(request_json: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let request: SetJson = parse_json(str_arg(request_json, "request_json")?, "Environment")?;
        // An endpoint not given (absent, null or empty) keeps its value.
        let given = |endpoint: Option<String>| endpoint.filter(|e| !e.is_empty());
        let change = EnvironmentChange { name: request.name, azure_ad_endpoint: given(request.azure_ad_endpoint), graph_endpoint: given(request.graph_endpoint) };
        let result = if request.preview {
            environment::preview_set(&change).map(|mut e| {
                e.azure_ad_endpoint = crate::redact::url(&e.azure_ad_endpoint);
                e.graph_endpoint = crate::redact::url(&e.graph_endpoint);
                e
            })
        } else {
            environment::set(&change)
        };
        match result {
            Ok(environment) => to_json(&environment),
            Err(e @ CoreError::NotFound(_)) => Err(Failure::Named(e, "EnvironmentNotFound")),
            Err(e @ CoreError::InvalidArgument { parameter: "Name", .. }) => Err(Failure::Named(e, "BuiltInEnvironment")),
            Err(e) => Err(e.into()),
        }
    })
}

/// The warning a host shows before keep-alives of `api_version` ("v1.0" or "beta") when the
/// current connection's cloud is one where Microsoft does not document call keepAlive for it
/// (v1.0: Global, USGov, USGovDoD; beta: Global). `*out_json`: the warning as a JSON string, at
/// most once per process for each cloud and version, else `null` (also when not connected, or
/// for a user-defined cloud). An unknown version is `MGKA_STATUS_INVALID_ARGUMENT`. Caller frees
/// `*out_json`. Thread-safe.
///
/// # Safety
/// `api_version` is a NUL-terminated string; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mgka_keep_alive_warning(api_version: *const c_char, out_json: *mut *mut c_char) -> MgkaStatus {
    respond(out_json, || {
        let version = match str_arg(api_version, "api_version")? {
            "v1.0" => ApiVersion::V1,
            "beta" => ApiVersion::Beta,
            other => return Err(CoreError::invalid("ApiVersion", format!("The API version '{other}' is neither v1.0 nor beta.")).into()),
        };
        to_json(&crate::session::keep_alive_warning(version))
    })
}
