//! Stage one: the config file exactly as written. Every struct rejects unknown keys; leaf values
//! check themselves (see `values`). Sections whose cross-field rules are checked in stage two
//! keep their position (`Spanned`) so those errors can point at them too.

use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::duration::PromDuration;
use super::values::{
    AddressSample, AutoOr, BackendTimeout, Catalog, Cloud, Concurrency, ConnectorStatus,
    ConnectorVersion, EndpointHost, EndpointPurpose, GraphAuth, GroupSelection, HostName, HttpUrl,
    Port, PortSample, ProxySetting,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub cloud: Option<Cloud>,
    pub tenant_id: Option<String>,
    pub inventory: Option<RawInventory>,
    pub connector: Option<RawConnector>,
    pub probes: Option<RawProbes>,
    pub metrics: Option<RawMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub per_step_series: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub refresh_interval: Option<PromDuration>,
    pub graph: Option<Spanned<RawGraph>>,
    #[serde(rename = "static")]
    pub static_inventory: Option<RawStatic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraph {
    pub client_id: String,
    pub auth: GraphAuth,
    pub client_secret_file: Option<PathBuf>,
    pub certificate_file: Option<PathBuf>,
    pub private_key_file: Option<PathBuf>,
    pub token_cache_file: Option<PathBuf>,
    pub graph_url: Option<HttpUrl>,
    pub login_url: Option<HttpUrl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatic {
    #[serde(default)]
    pub connector_groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    pub apps: Vec<Spanned<RawApp>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    #[serde(default)]
    pub connectors: Vec<RawStaticConnector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaticConnector {
    pub machine_name: String,
    pub status: ConnectorStatus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub name: String,
    pub connector_group: Option<String>,
    pub internal_url: HttpUrl,
    pub backend_timeout: Option<BackendTimeout>,
    pub backend_certificate_validation: Option<bool>,
    pub translate_host_header: Option<bool>,
    pub external_url: Option<HttpUrl>,
    pub kerberos_service_principal_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnector {
    pub machine_name: Option<AutoOr<String>>,
    pub groups: Option<GroupSelection>,
    pub service_config: Option<AutoOr<PathBuf>>,
    pub updater_config: Option<AutoOr<PathBuf>>,
    pub proxy: Option<ProxySetting>,
    pub machine_config: Option<AutoOr<PathBuf>>,
    pub wininet_proxy: Option<ProxySetting>,
    pub winhttp_proxy: Option<ProxySetting>,
    pub use_default_proxy_for_backend_requests: Option<bool>,
    /// Omitted: the built-in list. Kept with its position, as is each release, so an empty
    /// list or a version named twice is reported where it is written.
    pub releases: Option<Spanned<Vec<Spanned<RawRelease>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelease {
    pub version: ConnectorVersion,
    pub auto_update: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbes {
    pub interval: Option<Spanned<PromDuration>>,
    pub timeout: Option<Spanned<PromDuration>>,
    pub concurrency: Option<Concurrency>,
    pub endpoints: Option<RawEndpoints>,
    pub external: Option<RawExternal>,
    pub backend: Option<RawBackend>,
    pub segments: Option<RawSegments>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegments {
    pub enabled: Option<bool>,
    pub max_addresses: Option<AddressSample>,
    pub max_ports: Option<PortSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoints {
    pub catalog: Option<Catalog>,
    #[serde(default)]
    pub extra: Vec<RawEndpoint>,
    #[serde(default)]
    pub replace: Vec<RawEndpoint>,
    pub expected_issuers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub host: EndpointHost,
    pub port: Port,
    pub purpose: EndpointPurpose,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExternal {
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    pub enabled: Option<bool>,
    pub interval: Option<Spanned<PromDuration>>,
    pub timeouts: Option<RawTimeouts>,
    pub timeout_risk_ratio: Option<Spanned<f64>>,
    #[serde(default)]
    pub wildcard_hosts: Vec<RawWildcardHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWildcardHost {
    pub app: Spanned<String>,
    pub host: HostName,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub default: Option<Spanned<PromDuration>>,
    pub long: Option<Spanned<PromDuration>>,
}
