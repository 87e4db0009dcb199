//! Stage two's result: typed, validated settings with every default filled in. This is what the
//! rest of the exporter reads, and what `/config` prints (passwords in URLs redacted).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::duration;
use super::values::{
    AutoOr, BackendTimeout, Catalog, Cloud, ConnectorStatus, EndpointPurpose, GraphAuth,
    GroupSelection, HostName, HttpUrl, ProxySetting, Releases,
};

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub cloud: Cloud,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub inventory: InventorySettings,
    pub connector: ConnectorSettings,
    pub probes: ProbeSettings,
    pub metrics: MetricsSettings,
}

/// Which series `/metrics` serves beyond the default ones.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricsSettings {
    /// Every per-app series: the whole step matrix per app (`appproxy_flow_step_ok` with
    /// `connector_group` and `app`), the backend's phase durations and timeout, the external
    /// URL's status code. Off, steps 2-6 are served once per group or host.
    pub per_step_series: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct InventorySettings {
    #[serde(serialize_with = "duration::serialize")]
    pub refresh_interval: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphSettings>,
    #[serde(rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_inventory: Option<StaticInventory>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphSettings {
    pub client_id: String,
    pub auth: GraphAuth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_cache_file: Option<PathBuf>,
    pub graph_url: HttpUrl,
    pub login_url: HttpUrl,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StaticInventory {
    pub connector_groups: Vec<StaticGroup>,
    pub apps: Vec<StaticApp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaticGroup {
    pub name: String,
    pub connectors: Vec<StaticConnector>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaticConnector {
    pub machine_name: String,
    pub status: ConnectorStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaticApp {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_group: Option<String>,
    pub internal_url: HttpUrl,
    pub backend_timeout: BackendTimeout,
    pub backend_certificate_validation: bool,
    /// App Proxy's "Translate URLs in headers": off, the backend gets the external host in
    /// Host (Graph's `isTranslateHostHeaderEnabled`).
    pub translate_host_header: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<HttpUrl>,
    /// Kerberos single sign-on (KCD): the backend's SPN, as Graph's `singleSignOnSettings`
    /// gives it for discovered apps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kerberos_service_principal_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectorSettings {
    pub machine_name: AutoOr<String>,
    pub groups: GroupSelection,
    pub service_config: AutoOr<PathBuf>,
    pub updater_config: AutoOr<PathBuf>,
    pub proxy: ProxySetting,
    /// .NET's machine.config, where a service without its own `<defaultProxy>` looks next.
    pub machine_config: AutoOr<PathBuf>,
    /// .NET's system default proxy for the services: the Internet Options (WinINet) of their
    /// accounts. `auto` reads the registry on Windows and means `HTTPS_PROXY` elsewhere.
    pub wininet_proxy: ProxySetting,
    /// The WinHTTP proxy (`netsh winhttp show proxy`), which overrides the connector's proxy for
    /// backend requests: `auto` reads the registry on Windows and means none elsewhere.
    pub winhttp_proxy: ProxySetting,
    /// The connector's `UseDefaultProxyForBackendRequests`: omitted reads the registry on
    /// Windows and means false elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_default_proxy_for_backend_requests: Option<bool>,
    /// The connector releases the version check judges this host's connector against: the
    /// built-in list, or the config file's (oldest first, each version once, at least one of
    /// them an auto-update release).
    #[serde(skip_serializing_if = "Releases::is_builtin")]
    pub releases: Releases,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeSettings {
    #[serde(serialize_with = "duration::serialize")]
    pub interval: Duration,
    #[serde(serialize_with = "duration::serialize")]
    pub timeout: Duration,
    pub concurrency: u32,
    pub endpoints: EndpointSettings,
    pub external: ExternalSettings,
    pub backend: BackendSettings,
    /// Step 8 for Private Access apps: their segments, sampled.
    pub segments: SegmentSettings,
}

/// How Private Access apps' segments are probed (step 8; docs/backend.md, "Private Access
/// apps"). A range or CIDR block is sampled to `max_addresses` addresses and a port range to
/// `max_ports` ports: the first, the last, and the rest evenly spaced between them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SegmentSettings {
    /// Off, step 8 of Private Access apps is not evaluated (and says so).
    pub enabled: bool,
    pub max_addresses: u32,
    pub max_ports: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointSettings {
    pub catalog: Catalog,
    pub extra: Vec<Endpoint>,
    pub replace: Vec<Endpoint>,
    pub expected_issuers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub purpose: EndpointPurpose,
    /// `Some(why)`: a stand-in host checked for DNS and TCP only (the built-in catalog's
    /// wildcards without a documented connector host); `None`: the full check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable_only: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExternalSettings {
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendSettings {
    /// Steps 7-9 probe each app's internal URL; off, they are not evaluated.
    pub enabled: bool,
    #[serde(serialize_with = "duration::serialize")]
    pub interval: Duration,
    pub timeouts: BackendTimeouts,
    pub timeout_risk_ratio: f64,
    /// The concrete host to request for an app whose internal URL is a wildcard
    /// (`https://*.corp.example/`); without one, steps 7-10 are not evaluated for that app.
    pub wildcard_hosts: Vec<WildcardHost>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WildcardHost {
    /// The app's name (its `app` label) or Graph id.
    pub app: String,
    pub host: HostName,
}

/// App Proxy's limits per backend timeout setting; configurable only so tests can scale them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BackendTimeouts {
    #[serde(serialize_with = "duration::serialize")]
    pub default: Duration,
    #[serde(serialize_with = "duration::serialize")]
    pub long: Duration,
}

impl BackendTimeouts {
    pub fn for_setting(&self, setting: BackendTimeout) -> Duration {
        match setting {
            BackendTimeout::Default => self.default,
            BackendTimeout::Long => self.long,
        }
    }
}

pub const DEFAULT_EXPECTED_ISSUERS: [&str; 2] = ["Microsoft Corporation", "DigiCert Inc"];

impl Default for Settings {
    /// The built-in defaults: public cloud, built-in endpoint catalog, connector files at their
    /// standard paths, no Graph and no static inventory.
    fn default() -> Self {
        Self {
            cloud: Cloud::Public,
            tenant_id: None,
            inventory: InventorySettings {
                refresh_interval: Duration::from_secs(300),
                graph: None,
                static_inventory: None,
            },
            connector: ConnectorSettings::default(),
            metrics: MetricsSettings::default(),
            probes: ProbeSettings {
                interval: Duration::from_secs(60),
                timeout: Duration::from_secs(10),
                concurrency: 64,
                endpoints: EndpointSettings {
                    catalog: Catalog::Builtin,
                    extra: Vec::new(),
                    replace: Vec::new(),
                    expected_issuers: DEFAULT_EXPECTED_ISSUERS.map(String::from).to_vec(),
                },
                external: ExternalSettings { enabled: true },
                backend: BackendSettings {
                    enabled: true,
                    interval: Duration::from_secs(30),
                    timeouts: BackendTimeouts {
                        default: Duration::from_secs(85),
                        long: Duration::from_secs(180),
                    },
                    timeout_risk_ratio: 0.8,
                    wildcard_hosts: Vec::new(),
                },
                segments: SegmentSettings {
                    enabled: true,
                    max_addresses: 4,
                    max_ports: 4,
                },
            },
        }
    }
}
