//! Which forward proxy each service (connector, updater) uses, and where that came from: its
//! own `.exe.config`, then `machine.config`, then the system proxy (WinHTTP on Windows, the
//! environment elsewhere), as .NET resolves it. `connector.proxy` other than `auto` overrides
//! all of that for hosts without a connector.

use std::fmt;
use std::path::{Path, PathBuf};

use super::dotnet::{self, ProxySection, XmlProblem};
use super::winhttp;
use crate::config::ConnectorSettings;
use crate::config::values::{AutoOr, ProxySetting};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Connector,
    Updater,
}

impl Service {
    pub fn label(self) -> &'static str {
        match self {
            Service::Connector => "connector",
            Service::Updater => "updater",
        }
    }

    /// The standard install paths, newest name first.
    fn standard_paths(self) -> [PathBuf; 2] {
        let base = PathBuf::from(
            std::env::var("ProgramFiles").unwrap_or_else(|_| r"C:\Program Files".into()),
        );
        match self {
            Service::Connector => [
                base.join("Microsoft Entra private network connector")
                    .join("MicrosoftEntraPrivateNetworkConnectorService.exe.config"),
                base.join("Microsoft AAD App Proxy Connector")
                    .join("ApplicationProxyConnectorService.exe.config"),
            ],
            Service::Updater => [
                base.join("Microsoft Entra private network connector Updater")
                    .join("MicrosoftEntraPrivateNetworkConnectorUpdaterService.exe.config"),
                base.join("Microsoft AAD App Proxy Connector Updater")
                    .join("ApplicationProxyConnectorUpdaterService.exe.config"),
            ],
        }
    }
}

/// Where a service's proxy setting came from (the `source` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ConfigFile,
    MachineConfig,
    Winhttp,
    Environment,
    Static,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::ConfigFile => "config_file",
            Source::MachineConfig => "machine_config",
            Source::Winhttp => "winhttp",
            Source::Environment => "environment",
            Source::Static => "static",
        }
    }
}

/// A proxy, as `host:port` (the form every source can be reduced to).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProxyAddress {
    pub host: String,
    pub port: u16,
}

impl ProxyAddress {
    /// Reads `http://host:port/`, `host:port` or `host` (port 80, as .NET assumes).
    pub fn parse(text: &str) -> Option<ProxyAddress> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let url = url::Url::parse(&with_scheme).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Some(ProxyAddress {
            host,
            port: url.port_or_known_default().unwrap_or(80),
        })
    }
}

impl fmt::Display for ProxyAddress {
    /// The `proxy_url` label form: `http://host:port`, no trailing slash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

/// A service's proxy and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `None` is direct.
    pub proxy: Option<ProxyAddress>,
    pub source: Source,
    /// What set it, for people: the file and element, the registry value, the config key.
    pub origin: String,
}

impl Choice {
    pub fn proxy_url(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| "direct".to_string(), ToString::to_string)
    }
}

/// A config file that stops the proxy from being known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    Unreadable { path: PathBuf, error: String },
    Malformed { path: PathBuf, problem: XmlProblem },
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileProblem::Unreadable { path, error } => {
                write!(f, "{} cannot be read: {error}", path.display())
            }
            FileProblem::Malformed { path, problem } => {
                write!(f, "{} is not valid: {problem}", path.display())
            }
        }
    }
}

/// What was found for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Neither standard path exists: the service is not installed on this host.
    NotInstalled,
    Known {
        file: Option<PathBuf>,
        choice: Choice,
    },
    Broken(FileProblem),
}

/// Resolves one service's proxy per the settings.
pub fn resolve(service: Service, settings: &ConnectorSettings) -> Finding {
    match &settings.proxy {
        ProxySetting::Direct => return static_choice(None, "connector.proxy: direct"),
        ProxySetting::Url(url) => {
            let proxy = ProxyAddress::parse(url.0.as_str());
            return static_choice(proxy, &format!("connector.proxy: {url}"));
        }
        ProxySetting::Auto => {}
    }
    let configured = match service {
        Service::Connector => &settings.service_config,
        Service::Updater => &settings.updater_config,
    };
    let file = match configured {
        AutoOr::Value(path) => path.clone(),
        AutoOr::Auto => match service.standard_paths().into_iter().find(|p| p.exists()) {
            Some(path) => path,
            None => return Finding::NotInstalled,
        },
    };
    let section = match read_section(&file) {
        Ok(section) => section,
        Err(problem) => return Finding::Broken(problem),
    };
    let name = file.display().to_string();
    let choice = match section {
        ProxySection::Disabled => Choice {
            proxy: None,
            source: Source::ConfigFile,
            origin: format!("{name}: <defaultProxy enabled=\"false\">"),
        },
        ProxySection::Proxy { address, .. } => Choice {
            proxy: ProxyAddress::parse(&address),
            source: Source::ConfigFile,
            origin: format!("{name}: <defaultProxy><proxy proxyaddress=\"{address}\">"),
        },
        ProxySection::Absent => machine_config(settings).unwrap_or_else(|| system_proxy(settings)),
        ProxySection::SystemDefault => system_proxy(settings),
    };
    Finding::Known {
        file: Some(file),
        choice,
    }
}

fn static_choice(proxy: Option<ProxyAddress>, origin: &str) -> Finding {
    Finding::Known {
        file: None,
        choice: Choice {
            proxy,
            source: Source::Static,
            origin: origin.to_string(),
        },
    }
}

fn read_section(path: &Path) -> Result<ProxySection, FileProblem> {
    let bytes = std::fs::read(path).map_err(|e| FileProblem::Unreadable {
        path: path.to_path_buf(),
        error: e.to_string(),
    })?;
    let malformed = |problem| FileProblem::Malformed {
        path: path.to_path_buf(),
        problem,
    };
    let text = dotnet::decode(&bytes).map_err(malformed)?;
    dotnet::parse(&text).map_err(malformed)
}

/// The `<defaultProxy>` of machine.config, when it sets one. A broken machine.config is logged
/// and skipped: .NET would not start at all, which the service check shows.
fn machine_config(settings: &ConnectorSettings) -> Option<Choice> {
    let path = match &settings.machine_config {
        AutoOr::Value(path) => path.clone(),
        AutoOr::Auto => {
            PathBuf::from(std::env::var("WINDIR").unwrap_or_else(|_| r"C:\Windows".into()))
                .join(r"Microsoft.NET\Framework64\v4.0.30319\Config\machine.config")
        }
    };
    if !path.exists() {
        return None;
    }
    let name = path.display().to_string();
    match read_section(&path) {
        Ok(ProxySection::Disabled) => Some(Choice {
            proxy: None,
            source: Source::MachineConfig,
            origin: format!("{name}: <defaultProxy enabled=\"false\">"),
        }),
        Ok(ProxySection::Proxy { address, .. }) => Some(Choice {
            proxy: ProxyAddress::parse(&address),
            source: Source::MachineConfig,
            origin: format!("{name}: <defaultProxy><proxy proxyaddress=\"{address}\">"),
        }),
        Ok(_) => None,
        Err(problem) => {
            tracing::warn!(%problem, "machine.config could not be read; skipping it");
            None
        }
    }
}

/// The system's proxy: WinHTTP's (`netsh winhttp show proxy`), or on hosts without it the
/// `HTTPS_PROXY` environment variable.
pub fn system_proxy(settings: &ConnectorSettings) -> Choice {
    match &settings.winhttp_proxy {
        ProxySetting::Url(url) => {
            return Choice {
                proxy: ProxyAddress::parse(url.0.as_str()),
                source: Source::Winhttp,
                origin: format!("connector.winhttp_proxy: {url}"),
            };
        }
        ProxySetting::Direct => {
            return Choice {
                proxy: None,
                source: Source::Winhttp,
                origin: "connector.winhttp_proxy: direct".into(),
            };
        }
        ProxySetting::Auto => {}
    }
    if let Some(found) = winhttp::from_registry() {
        return Choice {
            proxy: found,
            source: Source::Winhttp,
            origin: format!("registry {}", winhttp::SETTINGS_VALUE),
        };
    }
    let variable = ["HTTPS_PROXY", "https_proxy"].into_iter().find_map(|name| {
        let value = std::env::var(name).ok()?;
        (!value.trim().is_empty()).then_some((name, value))
    });
    match variable {
        Some((name, value)) => Choice {
            proxy: ProxyAddress::parse(&value),
            source: Source::Environment,
            origin: format!("environment {name}"),
        },
        None => Choice {
            proxy: None,
            source: if cfg!(windows) {
                Source::Winhttp
            } else {
                Source::Environment
            },
            origin: "no system proxy is set".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dotnet")
            .join(name)
    }

    fn settings(service_config: &str, machine_config: Option<&str>) -> ConnectorSettings {
        ConnectorSettings {
            service_config: AutoOr::Value(fixture(service_config)),
            updater_config: AutoOr::Value(fixture(service_config)),
            machine_config: AutoOr::Value(
                machine_config
                    .map_or_else(|| PathBuf::from("/nonexistent/machine.config"), fixture),
            ),
            winhttp_proxy: ProxySetting::Direct,
            ..ConnectorSettings::default()
        }
    }

    fn choice(finding: Finding) -> Choice {
        match finding {
            Finding::Known { choice, .. } => choice,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_services_own_file_decides_first() {
        let c = choice(resolve(
            Service::Connector,
            &settings("proxy.exe.config", Some("machine.config")),
        ));
        assert_eq!(c.proxy_url(), "http://proxy.corp.example:8080");
        assert_eq!(c.source, Source::ConfigFile);
        assert!(c.origin.contains("proxy.exe.config"), "{}", c.origin);
        let c = choice(resolve(
            Service::Connector,
            &settings("disabled.exe.config", Some("machine.config")),
        ));
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            ("direct", Source::ConfigFile)
        );
    }

    #[test]
    fn without_an_element_machine_config_then_the_system_proxy_apply() {
        let c = choice(resolve(
            Service::Updater,
            &settings("no-element.exe.config", Some("machine.config")),
        ));
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            (
                "http://machine-proxy.corp.example:3128",
                Source::MachineConfig
            )
        );
        let mut s = settings("no-element.exe.config", None);
        s.winhttp_proxy = ProxySetting::Url(
            crate::config::values::HttpUrl::parse("http://winhttp.corp.example:8080").unwrap(),
        );
        let c = choice(resolve(Service::Updater, &s));
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            ("http://winhttp.corp.example:8080", Source::Winhttp)
        );
    }

    #[test]
    fn use_system_default_skips_machine_config() {
        let c = choice(resolve(
            Service::Connector,
            &settings("system-default.exe.config", Some("machine.config")),
        ));
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            ("direct", Source::Winhttp)
        );
    }

    #[test]
    fn a_malformed_or_missing_file_is_a_finding_not_a_guess() {
        let finding = resolve(
            Service::Connector,
            &settings("malformed-mismatch.exe.config", None),
        );
        let Finding::Broken(problem) = finding else {
            panic!("{finding:?}")
        };
        assert!(
            problem
                .to_string()
                .contains("malformed-mismatch.exe.config is not valid: line 5"),
            "{problem}"
        );
        let finding = resolve(Service::Connector, &settings("missing.exe.config", None));
        assert!(
            matches!(finding, Finding::Broken(FileProblem::Unreadable { .. })),
            "{finding:?}"
        );
    }

    #[test]
    fn auto_paths_that_do_not_exist_mean_not_installed() {
        let s = ConnectorSettings::default();
        if !cfg!(windows) {
            assert_eq!(resolve(Service::Connector, &s), Finding::NotInstalled);
        }
    }

    #[test]
    fn a_static_proxy_overrides_the_files() {
        let mut s = settings("disabled.exe.config", None);
        s.proxy = ProxySetting::Url(
            crate::config::values::HttpUrl::parse("http://svc:pw@proxy.corp.example:3128").unwrap(),
        );
        let c = choice(resolve(Service::Connector, &s));
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            ("http://proxy.corp.example:3128", Source::Static)
        );
        assert!(!c.origin.contains("pw"), "{}", c.origin);
    }

    #[test]
    fn proxy_addresses_normalise_to_the_label_form() {
        assert_eq!(
            ProxyAddress::parse("http://proxy:8080/")
                .unwrap()
                .to_string(),
            "http://proxy:8080"
        );
        assert_eq!(
            ProxyAddress::parse("proxy.corp.example:3128")
                .unwrap()
                .to_string(),
            "http://proxy.corp.example:3128"
        );
        assert_eq!(
            ProxyAddress::parse("proxy").unwrap().to_string(),
            "http://proxy:80"
        );
    }
}
