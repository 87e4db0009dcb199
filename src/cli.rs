//! The command line, with Prometheus-style flags (`--config.file`, `--web.listen-address`).
//! No subcommand means `serve`.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};
use url::Url;

use crate::ServeOptions;
use crate::http::WebOptions;
use crate::http::paths::{WebPaths, parse_external_url, parse_route_prefix};
use crate::logging::{LogFormat, LogLevel};

#[derive(Debug, Parser)]
#[command(
    name = "appproxy_exporter",
    // `--version` prints the Prometheus-style block of `version_text`, not clap's one line.
    disable_version_flag = true,
    about = "Prometheus exporter that walks the Microsoft Entra Application Proxy connector troubleshooting flowchart continuously"
)]
pub struct Cli {
    /// Print the version, revision, compiler and platform, and exit.
    #[arg(long = "version")]
    pub version: bool,

    /// The YAML config file; without it the exporter runs on built-in defaults.
    #[arg(long = "config.file", value_name = "PATH", global = true)]
    pub config_file: Option<PathBuf>,

    /// Address to serve on: `:9869` (every interface), `127.0.0.1:9869`, `[::1]:9869`.
    /// Repeat it to serve on several addresses.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDRESS",
        default_value = ":9869",
        action = ArgAction::Append,
        global = true
    )]
    pub listen_addresses: Vec<String>,

    /// Serve on the listening sockets systemd passes (socket activation, LISTEN_FDS) instead of
    /// --web.listen-address.
    #[arg(long = "web.systemd-socket", global = true)]
    pub systemd_socket: bool,

    /// The URL under which users reach the exporter (behind a reverse proxy, say). Its path
    /// is the default --web.route-prefix; runbook links become absolute URLs under it.
    #[arg(long = "web.external-url", value_name = "URL", value_parser = parse_external_url, global = true)]
    pub external_url: Option<Url>,

    /// Path prefix of every route (/metrics, /runbooks, ...). Defaults to the path of
    /// --web.external-url, else /.
    #[arg(long = "web.route-prefix", value_name = "PATH", value_parser = parse_route_prefix, global = true)]
    pub route_prefix: Option<String>,

    /// Most requests served at once; further ones are answered 503. 0 means no limit.
    #[arg(
        long = "web.max-requests",
        value_name = "N",
        default_value_t = 40,
        global = true
    )]
    pub max_requests: usize,

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
    /// (the MSI registers it: deploy/windows/appproxy_exporter.wxs); Windows only.
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

impl Cli {
    /// Where routes live and how links to them are written.
    pub fn web_paths(&self) -> WebPaths {
        WebPaths::new(self.external_url.as_ref(), self.route_prefix.as_deref())
    }

    /// What `serve` (and the Windows service) need from the flags.
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            listen_addresses: self.listen_addresses.clone(),
            systemd_socket: self.systemd_socket,
            web: WebOptions {
                telemetry_path: self.telemetry_path.clone(),
                paths: self.web_paths(),
                max_requests: self.max_requests,
            },
            web_config_file: self.web_config_file.clone(),
        }
    }
}

/// `--version`, as Prometheus' own binaries print it.
pub fn version_text() -> String {
    format!(
        "appproxy_exporter, version {} (revision: {})\n  rustc version:    {}\n  platform:         {}/{}\n",
        env!("CARGO_PKG_VERSION"),
        crate::metrics::REVISION,
        env!("APPPROXY_RUSTC_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
    )
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
        assert_eq!(cli.listen_addresses, [":9869"]);
        assert_eq!(cli.telemetry_path, "/metrics");
        assert_eq!(cli.log_format, LogFormat::Logfmt);
        assert_eq!(cli.max_requests, 40);
        assert!(!cli.systemd_socket && !cli.version);
        assert_eq!(cli.web_paths(), WebPaths::default());
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
        assert_eq!(cli.listen_addresses, [":9869"]);
    }

    #[test]
    fn listen_address_repeats_and_replaces_the_default() {
        let cli = Cli::try_parse_from([
            "x",
            "--web.listen-address=127.0.0.1:9869",
            "--web.listen-address=[::1]:9869",
        ])
        .unwrap();
        assert_eq!(cli.listen_addresses, ["127.0.0.1:9869", "[::1]:9869"]);
    }

    #[test]
    fn the_route_prefix_defaults_to_the_external_urls_path() {
        let cli =
            Cli::try_parse_from(["x", "--web.external-url=https://mon.example/appproxy/"]).unwrap();
        assert_eq!(cli.web_paths().route_prefix(), "/appproxy");
        let cli = Cli::try_parse_from([
            "x",
            "--web.external-url=https://mon.example/appproxy/",
            "--web.route-prefix=/",
        ])
        .unwrap();
        assert_eq!(cli.web_paths().route_prefix(), "");
    }

    #[test]
    fn a_bad_external_url_or_route_prefix_is_refused_by_name() {
        let error = Cli::try_parse_from(["x", "--web.external-url=mon.example/x"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--web.external-url"), "{error}");
        assert!(error.contains("absolute http"), "{error}");
        let error = Cli::try_parse_from(["x", "--web.route-prefix=/a b"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--web.route-prefix"), "{error}");
    }

    #[test]
    fn version_prints_the_prometheus_style_block() {
        let cli = Cli::try_parse_from(["x", "--version"]).unwrap();
        assert!(cli.version);
        let text = version_text();
        let first = text.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!(
                "appproxy_exporter, version {} (revision: ",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(text.contains("\n  platform:         "), "{text}");
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
