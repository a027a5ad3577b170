//! Helpers shared by the core's integration tests.

#![allow(dead_code)] // each test file uses a different subset

use graph_emulator::{spawn_blocking_runtime, Config, EmulatorThread};
use mgkeepalive::auth::{Credential, Secret, TokenSource};
use mgkeepalive::environment::{Cloud, Environment, EnvironmentType};
use mgkeepalive::session::Session;

/// An emulator on its own thread, with Graph's defaults.
pub fn emulator() -> EmulatorThread {
    spawn_blocking_runtime(Config::default()).expect("emulator starts")
}

/// A session with a user-provided `token` against `graph` (login at the same address); built
/// directly, so tests need not share the process-wide connection.
pub fn session_at(graph: &str, token: &str) -> Session {
    Session {
        environment: Environment {
            name: "Emulator".into(),
            azure_ad_endpoint: graph.into(),
            graph_endpoint: graph.into(),
            kind: EnvironmentType::UserDefined,
            cloud: Cloud::of_graph_endpoint(graph),
        },
        tokens: TokenSource::new(Credential::access_token(Secret::new(token.into())).unwrap()),
    }
}

/// Runs a future on the library's runtime, as the ABI does (its pooled connections live there).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    mgkeepalive::runtime::runtime().unwrap().block_on(f)
}
