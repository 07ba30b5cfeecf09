//! Simulated model servers (planex-sim) on loopback ports for tests.

use planex_sim::{SimConfig, SimServer};

/// The default simulator settings serving `model`, on 127.0.0.1 and a port the system picks.
pub fn config(model: &str) -> SimConfig {
    SimConfig {
        host: "127.0.0.1".into(),
        port: 0,
        model: model.into(),
        ..SimConfig::default()
    }
}

/// Starts a simulator with `config` on 127.0.0.1 and a port the system picks (whatever host and
/// port `config` names). Panics with the reason when it cannot start.
#[allow(clippy::panic)] // A test helper: panics with the reason.
pub async fn start(config: SimConfig) -> SimServer {
    let config = SimConfig {
        host: "127.0.0.1".into(),
        port: 0,
        ..config
    };
    match SimServer::start(config).await {
        Ok(server) => server,
        Err(e) => panic!("the simulator did not start on a loopback port: {e}"),
    }
}
