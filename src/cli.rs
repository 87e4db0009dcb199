//! The command line, with Prometheus-style flags (`--config.file`, `--web.listen-address`).
//! No subcommand means `serve`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::logging::{LogFormat, LogLevel};

#[derive(Debug, Parser)]
#[command(
    name = "appproxy_exporter",
    version,
    about = "Prometheus exporter that walks the Microsoft Entra Application Proxy connector troubleshooting flowchart continuously"
)]
pub struct Cli {
    /// The YAML config file; without it the exporter runs on built-in defaults.
    #[arg(long = "config.file", value_name = "PATH", global = true)]
    pub config_file: Option<PathBuf>,

    /// Address to serve on: `:9869` (every interface), `127.0.0.1:9869`, `[::1]:9869`.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDRESS",
        default_value = ":9869",
        global = true
    )]
    pub listen_address: String,

    /// Path under which metrics are served.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = telemetry_path, global = true)]
    pub telemetry_path: String,

    /// TLS and basic auth, in the exporter-toolkit web config format; re-read when it changes.
    #[arg(long = "web.config.file", value_name = "PATH", global = true)]
    pub web_config_file: Option<PathBuf>,

    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    pub log_level: LogLevel,

    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve metrics and the flowchart page (the default).
    Serve,
    /// Check the config file and exit: 0 when valid, 2 with file:line:column when not.
    CheckConfig,
    /// Run under the Windows Service Control Manager, logging to the Windows event log
    /// (deploy/windows/install.ps1 registers it); Windows only.
    Service,
    /// Walk the flowchart once, now, and print every step with its evidence and the failing
    /// step's remedy. Exit 0 when everything passes, 3 when some app (or this host) fails a
    /// step, 2 on a config error.
    Diagnose {
        /// Only this app.
        #[arg(long, value_name = "NAME")]
        app: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Sign in to Microsoft Graph with a device code (delegated access) and store the refresh
    /// token in inventory.graph.token_cache_file for the exporter to use.
    Login,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// The metrics path must be a plain absolute path that no other endpoint uses.
fn telemetry_path(text: &str) -> Result<String, String> {
    let reserved = [
        "/",
        "/config",
        "/-/healthy",
        "/-/ready",
        "/-/reload",
        "/runbooks",
        "/api/v1/diagnosis",
    ];
    if !text.starts_with('/') || text.len() < 2 {
        return Err("must start with / and name a path, such as /metrics".into());
    }
    if reserved.contains(&text) || text.contains(['{', '}', '*', '?', '#', ' ']) {
        return Err(format!(
            "{text:?} is taken by another endpoint or is not a plain path"
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_serve_with_prometheus_defaults() {
        let cli = Cli::try_parse_from(["appproxy_exporter"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.listen_address, ":9869");
        assert_eq!(cli.telemetry_path, "/metrics");
        assert_eq!(cli.log_format, LogFormat::Logfmt);
    }

    #[test]
    fn dotted_flags_parse_before_and_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "x",
            "check-config",
            "--config.file=a.yml",
            "--log.level=debug",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::CheckConfig)));
        assert_eq!(cli.config_file, Some(PathBuf::from("a.yml")));
        assert_eq!(cli.log_level, LogLevel::Debug);
    }

    #[test]
    fn web_flags_may_follow_the_service_subcommand() {
        let cli = Cli::try_parse_from([
            "x",
            "service",
            "--config.file=c.yml",
            "--web.listen-address=:9869",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Service)));
        assert_eq!(cli.listen_address, ":9869");
    }

    #[test]
    fn telemetry_path_cannot_shadow_another_endpoint() {
        for bad in ["metrics", "/", "/config", "/{x}", "/a b"] {
            assert!(
                Cli::try_parse_from(["x", &format!("--web.telemetry-path={bad}")]).is_err(),
                "{bad}"
            );
        }
        assert!(Cli::try_parse_from(["x", "--web.telemetry-path=/probe/metrics"]).is_ok());
    }
}
