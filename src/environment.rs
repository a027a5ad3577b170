//! Clouds: the built-in national clouds and user-defined environments (e.g. the emulator).
//! Environments live for the process and are shared by every runspace, like the connection.

use std::net::IpAddr;
use std::sync::RwLock;

use once_cell::sync::Lazy;
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::graph::ApiVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EnvironmentType {
    #[serde(rename = "Built-in")]
    BuiltIn,
    #[serde(rename = "User-defined")]
    UserDefined,
}

/// Which Microsoft cloud an environment's Graph endpoint is: one of the national clouds, or
/// `Other` (a user-defined endpoint that is none of them, such as an emulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Cloud {
    Global,
    USGov,
    USGovDoD,
    China,
    Other,
}

impl Cloud {
    /// The cloud of a Graph endpoint, by its host (the one host-to-cloud table).
    pub fn of_graph_endpoint(graph_endpoint: &str) -> Cloud {
        let host = reqwest::Url::parse(graph_endpoint).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        match host.as_deref() {
            Some("graph.microsoft.com") => Cloud::Global,
            Some("graph.microsoft.us") => Cloud::USGov,
            Some("dod-graph.microsoft.us") => Cloud::USGovDoD,
            Some("microsoftgraph.chinacloudapi.cn") => Cloud::China,
            _ => Cloud::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Global => "Global",
            Cloud::USGov => "USGov",
            Cloud::USGovDoD => "USGovDoD",
            Cloud::China => "China",
            Cloud::Other => "Other",
        }
    }

    /// Whether Microsoft documents call keepAlive of `api_version` in this cloud: v1.0 in
    /// Global, USGov and USGovDoD; beta in Global only. `Other` (an emulator, a private cloud)
    /// is not judged.
    pub fn documents_keep_alive(self, api_version: ApiVersion) -> bool {
        match (self, api_version) {
            (Cloud::Global | Cloud::Other, _) => true,
            (Cloud::USGov | Cloud::USGovDoD, ApiVersion::V1) => true,
            _ => false,
        }
    }

    /// The warning for a keep-alive of `api_version` sent to this cloud, when Microsoft does not
    /// document it there (the request is sent anyway).
    pub fn keep_alive_warning(self, api_version: ApiVersion) -> Option<String> {
        if self.documents_keep_alive(api_version) {
            return None;
        }
        let available = match api_version {
            ApiVersion::Beta => "only in the Global cloud",
            ApiVersion::V1 => "in the Global, USGov and USGovDoD clouds, not in China",
        };
        Some(format!(
            "Microsoft documents call keepAlive ({}) as available {available}; you are connected to the {} cloud. \
             MgKeepAlive sends the request anyway; if it fails, check with your cloud's Graph documentation. \
             (This warning is shown once per process.)",
            api_version.as_str(),
            self.as_str()
        ))
    }
}

/// [`Cloud::keep_alive_warning`], at most once per process for each cloud and API version: the
/// first caller gets the text, later ones `None`.
pub fn keep_alive_warning_once(cloud: Cloud, api_version: ApiVersion) -> Option<String> {
    static WARNED: Lazy<std::sync::Mutex<std::collections::HashSet<(Cloud, &'static str)>>> = Lazy::new(Default::default);
    let text = cloud.keep_alive_warning(api_version)?;
    WARNED.lock().unwrap_or_else(|p| p.into_inner()).insert((cloud, api_version.as_str())).then_some(text)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: String,
    #[serde(rename = "azureADEndpoint")]
    pub azure_ad_endpoint: String,
    pub graph_endpoint: String,
    #[serde(rename = "type")]
    pub kind: EnvironmentType,
    /// The cloud of `graph_endpoint`.
    pub cloud: Cloud,
}

/// What a caller changes in a user-defined environment (`Set-MgEnvironment`): an endpoint not
/// given keeps its value.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentChange {
    pub name: String,
    pub azure_ad_endpoint: Option<String>,
    pub graph_endpoint: Option<String>,
}

/// What a caller asks for when defining an environment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentDefinition {
    pub name: String,
    #[serde(rename = "azureADEndpoint")]
    pub azure_ad_endpoint: String,
    pub graph_endpoint: String,
}

pub const DEFAULT_ENVIRONMENT: &str = "Global";

fn built_in(name: &str, login: &str, graph: &str) -> Environment {
    Environment {
        name: name.into(),
        azure_ad_endpoint: login.into(),
        graph_endpoint: graph.into(),
        kind: EnvironmentType::BuiltIn,
        cloud: Cloud::of_graph_endpoint(graph),
    }
}

static ENVIRONMENTS: Lazy<RwLock<Vec<Environment>>> = Lazy::new(|| {
    RwLock::new(vec![
        built_in("Global", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
        built_in("USGov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        built_in("USGovDoD", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        built_in("China", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
    ])
});

pub fn list() -> Vec<Environment> {
    ENVIRONMENTS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Looks an environment up by name, case-insensitively like the official module.
pub fn get(name: &str) -> Result<Environment, CoreError> {
    list()
        .into_iter()
        .find(|e| e.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            CoreError::NotFound(format!(
                "Environment '{name}' was not found. Use Get-MgEnvironment to list the environments, or Add-MgEnvironment to define one."
            ))
        })
}

/// Defines (or redefines) a user-defined environment. Built-in clouds cannot be replaced.
pub fn add(definition: EnvironmentDefinition) -> Result<Environment, CoreError> {
    let name = definition.name.trim();
    if name.is_empty() {
        return Err(CoreError::invalid("Name", "The environment name must not be empty."));
    }
    let graph_endpoint = validate_endpoint("GraphEndpoint", &definition.graph_endpoint)?;
    let environment = Environment {
        name: name.to_owned(),
        azure_ad_endpoint: validate_endpoint("AzureADEndpoint", &definition.azure_ad_endpoint)?,
        cloud: Cloud::of_graph_endpoint(&graph_endpoint),
        graph_endpoint,
        kind: EnvironmentType::UserDefined,
    };
    let mut all = ENVIRONMENTS.write().unwrap_or_else(|p| p.into_inner());
    match all.iter_mut().find(|e| e.name.eq_ignore_ascii_case(name)) {
        Some(existing) if existing.kind == EnvironmentType::BuiltIn => Err(CoreError::invalid(
            "Name",
            format!("'{}' is a built-in environment and cannot be redefined.", existing.name),
        )),
        Some(existing) => {
            *existing = environment.clone();
            Ok(environment)
        }
        None => {
            all.push(environment.clone());
            Ok(environment)
        }
    }
}

/// The user-defined environment `change.name` as `change` would make it, endpoints not checked:
/// what `Set-MgEnvironment` asks the user to confirm. Errors as [`set`].
pub fn preview_set(change: &EnvironmentChange) -> Result<Environment, CoreError> {
    let all = ENVIRONMENTS.read().unwrap_or_else(|p| p.into_inner());
    let current = changeable(&all, &change.name)?;
    let mut preview = current.clone();
    if let Some(login) = &change.azure_ad_endpoint {
        preview.azure_ad_endpoint = login.clone();
    }
    if let Some(graph) = &change.graph_endpoint {
        preview.graph_endpoint = graph.clone();
        preview.cloud = Cloud::of_graph_endpoint(graph);
    }
    Ok(preview)
}

/// Changes the endpoints of a user-defined environment in one step (read, merge, check, write
/// under one lock): an endpoint not given keeps its value. Unknown names are `NotFound` and
/// built-in clouds `InvalidArgument` (`Name`), with `Set-MgEnvironment`'s messages; nothing else
/// fails with these two.
pub fn set(change: &EnvironmentChange) -> Result<Environment, CoreError> {
    let mut all = ENVIRONMENTS.write().unwrap_or_else(|p| p.into_inner());
    let current = changeable(&all, &change.name)?.clone();
    let azure_ad_endpoint = match &change.azure_ad_endpoint {
        Some(login) => validate_endpoint("AzureADEndpoint", login)?,
        None => current.azure_ad_endpoint.clone(),
    };
    let graph_endpoint = match &change.graph_endpoint {
        Some(graph) => validate_endpoint("GraphEndpoint", graph)?,
        None => current.graph_endpoint.clone(),
    };
    let changed = Environment { cloud: Cloud::of_graph_endpoint(&graph_endpoint), azure_ad_endpoint, graph_endpoint, ..current };
    if let Some(slot) = all.iter_mut().find(|e| e.name == changed.name) {
        *slot = changed.clone();
    }
    Ok(changed)
}

const SET_NOT_FOUND_HINT: &str = "was not found; add it with Add-MgEnvironment.";
const SET_BUILT_IN_HINT: &str = "is a built-in environment and cannot be changed; add a user-defined one with Add-MgEnvironment.";

fn changeable<'a>(all: &'a [Environment], name: &str) -> Result<&'a Environment, CoreError> {
    let found = all
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| CoreError::NotFound(format!("Environment '{name}' {SET_NOT_FOUND_HINT}")))?;
    if found.kind == EnvironmentType::BuiltIn {
        return Err(CoreError::invalid("Name", format!("'{}' {SET_BUILT_IN_HINT}", found.name)));
    }
    Ok(found)
}

/// Removes a user-defined environment; `in_use` names the current session's environment, which
/// cannot be removed. Returns the removed environment.
pub fn remove(name: &str, in_use: Option<&str>) -> Result<Environment, CoreError> {
    let mut all = ENVIRONMENTS.write().unwrap_or_else(|p| p.into_inner());
    let index = all.iter().position(|e| e.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
        CoreError::NotFound(format!("Environment '{name}' was not found. Use Get-MgEnvironment to list the environments."))
    })?;
    let found = &all[index];
    if found.kind == EnvironmentType::BuiltIn {
        return Err(CoreError::invalid("Name", format!("'{}' is a built-in environment and cannot be removed.", found.name)));
    }
    if in_use.is_some_and(|n| n.eq_ignore_ascii_case(&found.name)) {
        return Err(CoreError::invalid(
            "Name",
            format!("Environment '{}' is used by the current connection; run Disconnect-MgGraph first.", found.name),
        ));
    }
    Ok(all.remove(index))
}

/// Accepts an absolute `https://` URL, or `http://` to a loopback host only (a local emulator):
/// an access token must never travel in clear text over a network. Returns it without a trailing `/`.
pub fn validate_endpoint(parameter: &'static str, endpoint: &str) -> Result<String, CoreError> {
    // Echoed in messages without its user info, which is refused but may hold a password.
    let shown = crate::redact::url(endpoint);
    let url = reqwest::Url::parse(endpoint.trim())
        .map_err(|e| CoreError::invalid(parameter, format!("{parameter} '{shown}' is not an absolute URL: {e}.")))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(CoreError::invalid(
            parameter,
            format!("{parameter} '{shown}' must not contain credentials, a query or a fragment."),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(CoreError::invalid(
                parameter,
                format!("{parameter} '{shown}' uses plain http, which is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1]). Use https."),
            ))
        }
        // The scheme is not echoed on its own: in `alice:pw@host` it is the user name.
        _ => return Err(CoreError::invalid(parameter, format!("{parameter} '{shown}' does not use https://; use https."))),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_have_the_documented_endpoints() {
        let china = get("china").unwrap();
        assert_eq!(china.graph_endpoint, "https://microsoftgraph.chinacloudapi.cn");
        assert_eq!(get("USGovDoD").unwrap().graph_endpoint, "https://dod-graph.microsoft.us");
        assert_eq!(get("Global").unwrap().kind, EnvironmentType::BuiltIn);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(validate_endpoint("GraphEndpoint", "http://127.0.0.1:5000/").is_ok());
        assert!(validate_endpoint("GraphEndpoint", "http://localhost:5000").is_ok());
        assert!(validate_endpoint("GraphEndpoint", "http://[::1]:5000").is_ok());
        assert!(validate_endpoint("GraphEndpoint", "http://graph.example.com").is_err());
        assert!(validate_endpoint("GraphEndpoint", "http://10.0.0.1").is_err());
        assert!(validate_endpoint("GraphEndpoint", "ftp://x").is_err());
        assert!(validate_endpoint("GraphEndpoint", "graph.microsoft.com").is_err());
        assert_eq!(validate_endpoint("GraphEndpoint", "https://g.example/").unwrap(), "https://g.example");
    }

    #[test]
    fn built_ins_cannot_be_replaced_and_user_defined_can() {
        let def = |g: &str| EnvironmentDefinition {
            name: "Global".into(),
            azure_ad_endpoint: "https://login.example".into(),
            graph_endpoint: g.into(),
        };
        assert!(add(def("https://g.example")).is_err());
        let mut d = def("https://g1.example");
        d.name = "UnitTestCloud".into();
        assert_eq!(add(d).unwrap().kind, EnvironmentType::UserDefined);
        let mut d = def("https://g2.example");
        d.name = "unittestcloud".into();
        add(d).unwrap();
        assert_eq!(get("UnitTestCloud").unwrap().graph_endpoint, "https://g2.example");
        assert!(remove("UnitTestCloud", Some("unittestcloud")).is_err(), "in use");
        assert!(remove("Global", None).is_err(), "built-in");
        assert_eq!(remove("UnitTestCloud", None).unwrap().graph_endpoint, "https://g2.example");
        assert!(matches!(remove("UnitTestCloud", None), Err(CoreError::NotFound(_))));
    }
}
