//! Which forward proxy each service (connector, updater) uses, and where that came from, as
//! .NET Framework resolves it: the service's own `.exe.config` `<defaultProxy>`, else
//! `machine.config`'s; a `<proxy proxyaddress>` there is the proxy, `enabled="false"` is
//! direct, and `usesystemdefault="true"` or an element without an address means the system
//! default, which for .NET is the Internet Options (WinINet) of the account the service runs as:
//! Network Service for the connector, LocalSystem for the updater, or the machine's when the
//! per-machine policy is set. Those may detect the proxy automatically (WPAD) or run a script:
//! then the proxy is a run-time choice this exporter cannot evaluate, and says so. Off Windows
//! the system default is `connector.wininet_proxy`, else `HTTPS_PROXY`. `connector.proxy` other
//! than `auto` overrides all of that for hosts without a connector.

use std::fmt;
use std::path::{Path, PathBuf};

use super::bypass::Bypass;
use super::dotnet::{self, ProxySection, XmlProblem};
use super::registry::{self, WinInet};
use crate::config::ConnectorSettings;
use crate::config::values::{AutoOr, ProxySetting};
use crate::net::ProxyAddress;

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

    /// The account it runs as, whose WinINet settings apply to it (SID, name): the connector
    /// runs as Network Service, the updater as LocalSystem (Microsoft's troubleshoot-connectors
    /// page).
    pub fn account(self) -> (&'static str, &'static str) {
        match self {
            Service::Connector => ("S-1-5-20", "Network Service"),
            Service::Updater => ("S-1-5-18", "LocalSystem"),
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
    Wininet,
    Winhttp,
    AutoDetect,
    Environment,
    Static,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::ConfigFile => "config_file",
            Source::MachineConfig => "machine_config",
            Source::Wininet => "wininet",
            Source::Winhttp => "winhttp",
            Source::AutoDetect => "auto_detect",
            Source::Environment => "environment",
            Source::Static => "static",
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
    /// Hosts the service reaches without the proxy (steps 7-9, through the proxy only with
    /// `UseDefaultProxyForBackendRequests`).
    pub bypass: Bypass,
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
    /// The proxy is chosen at run time, by WPAD or a script: `how` says which and where.
    Automatic {
        file: Option<PathBuf>,
        how: String,
    },
    Broken(FileProblem),
    /// The read of the service's files did not finish (a hung network share): `why` says so.
    Unread {
        why: String,
    },
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
    let found = match section {
        ProxySection::Disabled => Ok(Choice {
            proxy: None,
            source: Source::ConfigFile,
            origin: format!("{name}: <defaultProxy enabled=\"false\">"),
            bypass: Bypass::default(),
        }),
        ProxySection::Proxy {
            address,
            bypass_on_local,
            bypass_list,
        } => match Bypass::dotnet(bypass_on_local, &bypass_list) {
            Ok(bypass) => Ok(Choice {
                proxy: ProxyAddress::parse(&address),
                source: Source::ConfigFile,
                origin: format!("{name}: <defaultProxy><proxy proxyaddress=\"{address}\">"),
                bypass,
            }),
            Err(error) => {
                return Finding::Broken(FileProblem::Malformed {
                    path: file.clone(),
                    problem: XmlProblem {
                        line: 0,
                        column: 0,
                        message: error.to_string(),
                    },
                });
            }
        },
        ProxySection::Absent => {
            machine_config(settings).map_or_else(|| system_default(service, settings), Ok)
        }
        ProxySection::SystemDefault => system_default(service, settings),
    };
    match found {
        Ok(choice) => Finding::Known {
            file: Some(file),
            choice,
        },
        Err(how) => Finding::Automatic {
            file: Some(file),
            how: how.to_string(),
        },
    }
}

fn static_choice(proxy: Option<ProxyAddress>, origin: &str) -> Finding {
    Finding::Known {
        file: None,
        choice: Choice {
            proxy,
            source: Source::Static,
            origin: origin.to_string(),
            bypass: Bypass::default(),
        },
    }
}

fn read_section(path: &Path) -> Result<ProxySection, FileProblem> {
    let bytes = crate::platform::file::read_bounded(path, crate::platform::file::CONFIG_LIMIT)
        .map_err(|e| FileProblem::Unreadable {
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
            bypass: Bypass::default(),
        }),
        Ok(ProxySection::Proxy {
            address,
            bypass_on_local,
            bypass_list,
        }) => Some(Choice {
            proxy: ProxyAddress::parse(&address),
            source: Source::MachineConfig,
            origin: format!("{name}: <defaultProxy><proxy proxyaddress=\"{address}\">"),
            bypass: Bypass::dotnet(bypass_on_local, &bypass_list).unwrap_or_else(|message| {
                tracing::warn!(%message, "machine.config's bypass list cannot be used");
                Bypass::default()
            }),
        }),
        Ok(_) => None,
        Err(problem) => {
            tracing::warn!(%problem, "machine.config could not be read; skipping it");
            None
        }
    }
}

/// A proxy chosen at run time, by WPAD or a script, which this exporter cannot evaluate: how,
/// and where that is set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChosenAtRunTime {
    #[error("{how}, set in the Internet Options of {account} ({value})")]
    Configured {
        how: String,
        account: &'static str,
        value: String,
    },
    #[error(
        "automatic detection (WPAD): no Internet Options are saved for {account} ({value} is absent), so WinINet's defaults apply"
    )]
    Defaults {
        account: &'static str,
        value: String,
    },
}

/// .NET's system default proxy for `service`: the WinINet settings of its account on Windows
/// (or `connector.wininet_proxy`), `HTTPS_PROXY` elsewhere. `Err` says how the proxy is chosen
/// when it is chosen at run time.
pub fn system_default(
    service: Service,
    settings: &ConnectorSettings,
) -> Result<Choice, ChosenAtRunTime> {
    let configured = |proxy, origin: String| Choice {
        proxy,
        source: Source::Wininet,
        origin,
        bypass: Bypass::default(),
    };
    match &settings.wininet_proxy {
        ProxySetting::Url(url) => {
            return Ok(configured(
                ProxyAddress::parse(url.0.as_str()),
                format!("connector.wininet_proxy: {url}"),
            ));
        }
        ProxySetting::Direct => {
            return Ok(configured(None, "connector.wininet_proxy: direct".into()));
        }
        ProxySetting::Auto => {}
    }
    if let Some(found) = registry::wininet(service.account().0) {
        return from_wininet(service, found);
    }
    Ok(environment())
}

/// A service's proxy from its account's WinINet settings.
fn from_wininet(service: Service, found: WinInet) -> Result<Choice, ChosenAtRunTime> {
    let (_, account) = service.account();
    match found {
        WinInet::Set { settings, value } => match settings.automatic() {
            Some(how) => Err(ChosenAtRunTime::Configured {
                how,
                account,
                value,
            }),
            None => Ok(Choice {
                proxy: settings.proxy(),
                source: Source::Wininet,
                origin: format!("{value} (Internet Options of {account})"),
                bypass: settings.bypass(),
            }),
        },
        WinInet::Unset { value } => Err(ChosenAtRunTime::Defaults { account, value }),
    }
}

/// `HTTPS_PROXY`, the proxy of hosts without WinINet.
fn environment() -> Choice {
    let variable = ["HTTPS_PROXY", "https_proxy"].into_iter().find_map(|name| {
        let value = std::env::var(name).ok()?;
        (!value.trim().is_empty()).then_some((name, value))
    });
    match variable {
        Some((name, value)) => Choice {
            proxy: ProxyAddress::parse(&value),
            source: Source::Environment,
            origin: format!("environment {name}"),
            bypass: Bypass::default(),
        },
        None => Choice {
            proxy: None,
            source: Source::Environment,
            origin: "no system proxy is set".into(),
            bypass: Bypass::default(),
        },
    }
}

/// The WinHTTP proxy (`netsh winhttp show proxy`): `connector.winhttp_proxy`, else the registry
/// on Windows. With `UseDefaultProxyForBackendRequests` it overrides the connector's proxy for
/// backend requests (Microsoft's proxy page: "Proxy settings configured via NETSH WINHTTP ...
/// override"). `None`: not set.
/// The route Windows takes to check certificate chains (CRL, OCSP, the certificate endpoints on
/// port 80): the system context, through WinHTTP's proxy setting, not the services'
/// `.exe.config` (Microsoft's troubleshoot-connectors.md, "Failed to validate chain of
/// certificate", fixed with `netsh winhttp set proxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemRoute {
    /// Through `proxy`, or direct; `origin` says where that was read.
    Known {
        proxy: Option<ProxyAddress>,
        origin: String,
    },
    /// Why it cannot be known here.
    Unknown(String),
}

/// The system context's route, from `connector.winhttp_proxy` or, on `auto`, the registry.
pub fn system_route(settings: &ConnectorSettings) -> SystemRoute {
    match &settings.winhttp_proxy {
        ProxySetting::Url(url) => SystemRoute::Known {
            proxy: ProxyAddress::parse(url.0.as_str()),
            origin: format!("connector.winhttp_proxy: {url}"),
        },
        ProxySetting::Direct => SystemRoute::Known {
            proxy: None,
            origin: "connector.winhttp_proxy: direct".to_string(),
        },
        ProxySetting::Auto => match registry::winhttp_setting() {
            Ok(None) => SystemRoute::Known {
                proxy: None,
                origin: format!("no WinHTTP proxy is set ({})", registry::WINHTTP_VALUE),
            },
            Ok(Some(setting)) => SystemRoute::Known {
                proxy: setting.proxy(),
                origin: format!("registry {}", registry::WINHTTP_VALUE),
            },
            Err(why) => SystemRoute::Unknown(format!("WinHTTP's proxy setting is unknown: {why}")),
        },
    }
}

pub fn winhttp(settings: &ConnectorSettings) -> Option<Choice> {
    let choice = |proxy, origin: String, bypass| Choice {
        proxy,
        source: Source::Winhttp,
        origin,
        bypass,
    };
    match &settings.winhttp_proxy {
        ProxySetting::Url(url) => Some(choice(
            ProxyAddress::parse(url.0.as_str()),
            format!("connector.winhttp_proxy: {url}"),
            Bypass::default(),
        )),
        ProxySetting::Direct => None,
        ProxySetting::Auto => registry::winhttp().and_then(|s| {
            let proxy = s.proxy()?;
            Some(choice(
                Some(proxy),
                format!("registry {}", registry::WINHTTP_VALUE),
                s.bypass(),
            ))
        }),
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
    fn without_an_element_machine_config_then_the_accounts_internet_options_apply() {
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
        s.wininet_proxy = ProxySetting::Url(
            crate::config::values::HttpUrl::parse("http://wininet.corp.example:8080").unwrap(),
        );
        s.winhttp_proxy = ProxySetting::Url(
            crate::config::values::HttpUrl::parse("http://winhttp.corp.example:8080").unwrap(),
        );
        let c = choice(resolve(Service::Updater, &s));
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            ("http://wininet.corp.example:8080", Source::Wininet),
            ".NET's system default is WinINet's, not WinHTTP's"
        );
    }

    #[test]
    fn use_system_default_skips_machine_config() {
        let mut s = settings("system-default.exe.config", Some("machine.config"));
        s.wininet_proxy = ProxySetting::Direct;
        let c = choice(resolve(Service::Connector, &s));
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            ("direct", Source::Wininet)
        );
    }

    fn wininet(flags: u32, proxy: &str, bypass: &str, script: &str) -> WinInet {
        let mut blob = Vec::new();
        for dword in [0x46u32, 3, flags] {
            blob.extend(dword.to_le_bytes());
        }
        for text in [proxy, bypass, script] {
            blob.extend((text.len() as u32).to_le_bytes());
            blob.extend(text.as_bytes());
        }
        WinInet::Set {
            settings: registry::ConnectionSettings::parse(&blob).unwrap(),
            value: r"HKU\S-1-5-20\...\DefaultConnectionSettings".into(),
        }
    }

    #[test]
    fn an_accounts_manual_proxy_is_used_with_its_exceptions() {
        let c = from_wininet(
            Service::Connector,
            wininet(0x3, "proxy.corp.example:8080", "*.corp.example;<local>", ""),
        )
        .unwrap();
        assert_eq!(
            (c.proxy_url().as_str(), c.source),
            ("http://proxy.corp.example:8080", Source::Wininet)
        );
        assert!(
            c.origin.contains("Internet Options of Network Service"),
            "{}",
            c.origin
        );
        let wiki = url::Url::parse("https://wiki.corp.example/").unwrap();
        assert!(c.bypass.bypasses(&wiki));
    }

    #[test]
    fn automatic_detection_a_script_or_no_settings_leave_the_proxy_to_run_time() {
        let how = from_wininet(Service::Connector, wininet(0x9, "", "", ""))
            .unwrap_err()
            .to_string();
        assert!(
            how.starts_with(
                "automatic detection (WPAD), set in the Internet Options of Network Service"
            ),
            "{how}"
        );
        let how = from_wininet(
            Service::Updater,
            wininet(0x5, "", "", "http://pac.corp.example/x.pac"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            how.contains("http://pac.corp.example/x.pac") && how.contains("LocalSystem"),
            "{how}"
        );
        let how = from_wininet(
            Service::Connector,
            WinInet::Unset {
                value: "HKU\\S-1-5-20\\...".into(),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(how.contains("WinINet's defaults apply"), "{how}");
    }

    #[test]
    fn an_invalid_bypass_expression_is_a_finding_naming_the_file() {
        let finding = resolve(Service::Connector, &settings("bad-bypass.exe.config", None));
        let Finding::Broken(problem) = finding else {
            panic!("{finding:?}")
        };
        assert!(
            problem
                .to_string()
                .contains("bad-bypass.exe.config is not valid: line 7, column 9")
                && problem.to_string().contains("\"[unclosed\""),
            "{problem}"
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
