//! The command line, with Prometheus-style flags (`--config.file`, `--web.listen-address`).
//! No subcommand means `serve`.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};
use url::Url;

use crate::ServeOptions;
use crate::http::WebOptions;
use crate::http::paths::{WebPaths, parse_external_url, parse_route_prefix, parse_telemetry_path};
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

    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    pub log_level: LogLevel,

    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,

    /// The web flags of serving without a subcommand.
    #[command(flatten)]
    pub web: WebFlags,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The flags of the web server (`serve`, `service`, or no subcommand); only those commands
/// show them in `--help`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebFlags {
    /// Address to serve on: `:9869` (every interface, the default), `127.0.0.1:9869`,
    /// `[::1]:9869`. Repeat it to serve on several addresses.
    #[arg(long = "web.listen-address", value_name = "ADDRESS", action = ArgAction::Append)]
    pub listen_addresses: Vec<String>,

    /// Serve on the listening sockets systemd passes (socket activation, LISTEN_FDS) instead of
    /// --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,

    /// The URL under which users reach the exporter (behind a reverse proxy, say). Its path
    /// is the default --web.route-prefix; runbook links become absolute URLs under it.
    #[arg(long = "web.external-url", value_name = "URL", value_parser = parse_external_url)]
    pub external_url: Option<Url>,

    /// Path prefix of every route (/metrics, /runbooks, ...). Defaults to the path of
    /// --web.external-url, else /.
    #[arg(long = "web.route-prefix", value_name = "PATH", value_parser = parse_route_prefix)]
    pub route_prefix: Option<String>,

    /// Most requests served at once (default 40); further ones are answered 503. 0 means no
    /// limit.
    #[arg(long = "web.max-requests", value_name = "N")]
    pub max_requests: Option<usize>,

    /// Most connections open at once (default 512); past it, new ones wait in the kernel's
    /// queue until one closes. 0 means no limit.
    #[arg(long = "web.max-connections", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most connections one client may hold (an IPv4 address, or an IPv6 /64; default 64);
    /// more are closed as they come. 0 means no limit.
    #[arg(long = "web.max-connections-per-client", value_name = "N")]
    pub max_connections_per_client: Option<usize>,

    /// Path under which metrics are served (default /metrics).
    #[arg(long = "web.telemetry-path", value_name = "PATH", value_parser = parse_telemetry_path)]
    pub telemetry_path: Option<String>,

    /// TLS and basic auth, in the exporter-toolkit web config format; re-read when it changes.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// Whether POST /-/reload reloads the config (default true; SIGHUP always does). Turn it
    /// off with --web.enable-lifecycle=false.
    #[arg(
        long = "web.enable-lifecycle",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub enable_lifecycle: Option<bool>,
}

impl WebFlags {
    /// These flags where given, `outer` (the ones before the subcommand) where not.
    fn or(&self, outer: &WebFlags) -> WebFlags {
        WebFlags {
            listen_addresses: if self.listen_addresses.is_empty() {
                outer.listen_addresses.clone()
            } else {
                self.listen_addresses.clone()
            },
            systemd_socket: self.systemd_socket || outer.systemd_socket,
            external_url: self
                .external_url
                .clone()
                .or_else(|| outer.external_url.clone()),
            route_prefix: self
                .route_prefix
                .clone()
                .or_else(|| outer.route_prefix.clone()),
            max_requests: self.max_requests.or(outer.max_requests),
            max_connections: self.max_connections.or(outer.max_connections),
            max_connections_per_client: self
                .max_connections_per_client
                .or(outer.max_connections_per_client),
            telemetry_path: self
                .telemetry_path
                .clone()
                .or_else(|| outer.telemetry_path.clone()),
            web_config_file: self
                .web_config_file
                .clone()
                .or_else(|| outer.web_config_file.clone()),
            enable_lifecycle: self.enable_lifecycle.or(outer.enable_lifecycle),
        }
    }

    pub fn listen_addresses(&self) -> Vec<String> {
        if self.listen_addresses.is_empty() {
            vec![DEFAULT_LISTEN_ADDRESS.to_string()]
        } else {
            self.listen_addresses.clone()
        }
    }

    /// Where routes live and how links to them are written.
    pub fn web_paths(&self) -> WebPaths {
        WebPaths::new(self.external_url.as_ref(), self.route_prefix.as_deref())
    }
}

/// The contract's default: port 9869 on every interface.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":9869";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve metrics and the flowchart page (the default).
    Serve {
        #[command(flatten)]
        web: WebFlags,
    },
    /// Check the config file and exit: 0 when valid, 2 with file:line:column when not.
    CheckConfig,
    /// Run under the Windows Service Control Manager, logging to the Windows event log
    /// (the MSI registers it); Windows only.
    Service {
        #[command(flatten)]
        web: WebFlags,
    },
    /// Walk the flowchart once, now, and print every step with its evidence and the failing
    /// step's remedy. Exit 0 when everything passes, 3 when some app (or this host) fails a
    /// step, 2 on a config error.
    Diagnose {
        /// Only this app.
        #[arg(long, value_name = "NAME")]
        app: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// The URL under which users reach the running exporter: runbook links are printed as
        /// absolute URLs under it.
        #[arg(long = "web.external-url", value_name = "URL", value_parser = parse_external_url)]
        external_url: Option<Url>,
    },
    /// Sign in to Microsoft Graph with a device code (delegated access) and store the refresh
    /// token in inventory.graph.token_cache_file for the exporter to use.
    Login,
}

impl Cli {
    /// The web flags in force: the subcommand's, then those before it.
    pub fn web(&self) -> WebFlags {
        match &self.command {
            Some(Command::Serve { web } | Command::Service { web }) => web.or(&self.web),
            Some(Command::Diagnose { external_url, .. }) => WebFlags {
                external_url: external_url.clone(),
                ..WebFlags::default()
            }
            .or(&self.web),
            _ => self.web.clone(),
        }
    }

    /// Where routes live and how links to them are written.
    pub fn web_paths(&self) -> WebPaths {
        self.web().web_paths()
    }

    /// What `serve` (and the Windows service) need from the flags.
    pub fn serve_options(&self) -> ServeOptions {
        let web = self.web();
        ServeOptions {
            listen_addresses: web.listen_addresses(),
            systemd_socket: web.systemd_socket,
            web: WebOptions {
                telemetry_path: web
                    .telemetry_path
                    .clone()
                    .unwrap_or_else(|| "/metrics".to_string()),
                paths: web.web_paths(),
                max_requests: web.max_requests.unwrap_or(40),
                web_config: None,
                enable_lifecycle: web.enable_lifecycle.unwrap_or(true),
            },
            web_config_file: web.web_config_file.clone(),
            max_connections: web.max_connections.unwrap_or(512),
            max_connections_per_client: web.max_connections_per_client.unwrap_or(64),
        }
    }
}

/// `--version`, as Prometheus' own binaries print it.
pub fn version_text() -> String {
    format!(
        "appproxy_exporter, version {} (revision: {})\n  rustc version:    {}\n  platform:         {}/{}\n",
        crate::release::VERSION,
        crate::release::REVISION,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_serve_with_prometheus_defaults() {
        let cli = Cli::try_parse_from(["appproxy_exporter"]).unwrap();
        assert!(cli.command.is_none());
        let options = cli.serve_options();
        assert_eq!(options.listen_addresses, [":9869"]);
        assert_eq!(options.web.telemetry_path, "/metrics");
        assert_eq!(cli.log_format, LogFormat::Logfmt);
        assert_eq!(options.web.max_requests, 40);
        assert!(!options.systemd_socket && !cli.version);
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
        assert!(matches!(cli.command, Some(Command::Service { .. })));
        assert_eq!(cli.serve_options().listen_addresses, [":9869"]);
        let cli = Cli::try_parse_from([
            "x",
            "--web.max-requests=7",
            "serve",
            "--web.listen-address=127.0.0.1:1",
        ])
        .unwrap();
        let options = cli.serve_options();
        assert_eq!(options.listen_addresses, ["127.0.0.1:1"]);
        assert_eq!(
            options.web.max_requests, 7,
            "flags before the subcommand count too"
        );
    }

    #[test]
    fn diagnose_takes_only_the_flags_it_uses() {
        let cli = Cli::try_parse_from([
            "x",
            "diagnose",
            "--web.external-url=https://mon.example/appproxy/",
        ])
        .unwrap();
        assert_eq!(
            cli.web_paths().runbooks(),
            "https://mon.example/appproxy/runbooks"
        );
        let error = Cli::try_parse_from(["x", "diagnose", "--web.listen-address=:1"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--web.listen-address"), "{error}");
        let help = Cli::try_parse_from(["x", "diagnose", "--help"])
            .unwrap_err()
            .to_string();
        assert!(!help.contains("--web.listen-address"), "{help}");
        assert!(
            help.contains("--web.external-url") && help.contains("--output"),
            "{help}"
        );
    }

    #[test]
    fn the_lifecycle_api_is_on_unless_turned_off() {
        let on = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            cli.serve_options().web.enable_lifecycle
        };
        assert!(on(&["x"]));
        assert!(on(&["x", "--web.enable-lifecycle"]));
        assert!(!on(&["x", "--web.enable-lifecycle=false"]));
        assert!(!on(&["x", "serve", "--web.enable-lifecycle=false"]));
    }

    #[test]
    fn listen_address_repeats_and_replaces_the_default() {
        let cli = Cli::try_parse_from([
            "x",
            "--web.listen-address=127.0.0.1:9869",
            "--web.listen-address=[::1]:9869",
        ])
        .unwrap();
        assert_eq!(
            cli.serve_options().listen_addresses,
            ["127.0.0.1:9869", "[::1]:9869"]
        );
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
