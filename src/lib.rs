//! appproxy_exporter: a Prometheus exporter that walks Microsoft's "Debug Application Proxy
//! connector issues" flowchart continuously, from the host it runs on, and reports per
//! connector group and app which step fails, with its evidence and remedy.
//!
//! The layout follows the flowchart (docs/architecture.md): `walk` holds the chart, a step's
//! outcome and the one shape of every step family ([`walk::Judge`]); the families are
//! `inventory` (steps 1-2), `endpoints` (3-4), `proxy` (5-6) and `backend` (7-10), with `host`
//! the connector host's own checks (steps 2, 4, 7); `verdict` decides every walk from their
//! evidence, in one place; `prober` gathers the evidence in the background and publishes the
//! walks in the `store`; `metrics`, `diagnosis` and `http` only read them. `config` reads the
//! YAML file and knows nothing of probing. `platform` holds every read of the machine itself
//! (files, and on Windows the registry, services, certificate store, event log and SSPI), each
//! with its stand-in elsewhere.

// Denied everywhere but in three places, each with its reason beside it: platform::event_log's
// Windows reader (the event log API has no safe wrapper crate), `memory` (glibc's malloc
// tuning) and `background` (the publishing thread's priority), each a few foreign calls.
#![deny(unsafe_code)]

pub mod backend;
pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod diagnosis;
pub mod endpoints;
pub mod exporter;
pub mod exposition;
pub mod host;
pub mod http;
pub mod inventory;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod platform;
pub mod prober;
pub mod proxy;
pub mod release;
pub mod secret;
mod serve;
pub mod store;
pub mod supervise;
mod text;
pub mod verdict;
pub mod walk;

pub use net::tls::install_crypto_provider;
pub use serve::{ServeOptions, SystemdSocketError, diagnose, serve, serve_until};

/// What can stop the exporter; `main` maps each to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Server(std::io::Error),
    #[error("--web.systemd-socket: {0}")]
    SystemdSocket(serve::SystemdSocketError),
    #[error(transparent)]
    WebConfig(#[from] http::webconfig::WebConfigError),
    #[error("setting up logging failed: {0}")]
    Logging(#[from] logging::LoggingError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
