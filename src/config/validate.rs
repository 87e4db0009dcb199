//! Stage two: raw config to typed settings. Fills defaults and checks the rules that span more
//! than one value. Every problem found is reported, each with its position and key path.

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::Problem;
use super::duration::PromDuration;
use super::raw::{RawBackend, RawConfig, RawEndpoint, RawGraph, RawProbes, RawRelease, RawStatic};
use super::settings::{
    BackendSettings, BackendTimeouts, Endpoint, EndpointSettings, ExternalSettings, GraphSettings,
    InventorySettings, ProbeSettings, SegmentSettings, Settings, StaticApp, StaticConnector,
    StaticGroup, StaticInventory, WildcardHost,
};
use super::values::{ConnectorRelease, GraphAuth, HttpUrl, Releases};

/// Collects the problems of one file; the settings are only used when it stays empty.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Checker {
    fn problem(&mut self, at: Location, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            line: at.line(),
            column: at.column(),
            path: Some(path.into()),
            message: message.into(),
        });
    }

    /// A duration that must be above zero; `None` keeps the default.
    fn positive(
        &mut self,
        value: Option<Spanned<PromDuration>>,
        path: &str,
        default: Duration,
    ) -> Duration {
        match value {
            Some(v) if v.value.0.is_zero() => {
                self.problem(v.referenced, path, "must be greater than 0s");
                default
            }
            Some(v) => v.value.0,
            None => default,
        }
    }
}

/// Validates a parsed file into settings, or returns every problem found, plus warnings to log.
pub fn validate(raw: RawConfig) -> Result<(Settings, Vec<String>), Vec<Problem>> {
    let mut check = Checker::default();
    let defaults = Settings::default();
    let cloud = raw.cloud.unwrap_or(defaults.cloud);
    let tenant_id = raw.tenant_id;

    let inventory = match raw.inventory {
        None => defaults.inventory,
        Some(inv) => InventorySettings {
            refresh_interval: inv
                .refresh_interval
                .map_or(defaults.inventory.refresh_interval, |d| d.0),
            graph: inv
                .graph
                .map(|graph| graph_settings(&mut check, graph, cloud, tenant_id.is_some())),
            static_inventory: inv
                .static_inventory
                .map(|s| static_inventory(&mut check, s)),
        },
    };
    let connector = match raw.connector {
        None => defaults.connector,
        Some(c) => super::settings::ConnectorSettings {
            machine_name: c.machine_name.unwrap_or_default(),
            groups: c.groups.unwrap_or_default(),
            service_config: c.service_config.unwrap_or_default(),
            updater_config: c.updater_config.unwrap_or_default(),
            proxy: c.proxy.unwrap_or_default(),
            machine_config: c.machine_config.unwrap_or_default(),
            wininet_proxy: c.wininet_proxy.unwrap_or_default(),
            winhttp_proxy: c.winhttp_proxy.unwrap_or_default(),
            use_default_proxy_for_backend_requests: c.use_default_proxy_for_backend_requests,
            releases: c
                .releases
                .map_or(Releases::Builtin, |r| releases(&mut check, r)),
        },
    };
    let probes = match raw.probes {
        None => defaults.probes,
        Some(p) => probe_settings(&mut check, p, defaults.probes),
    };
    let metrics = super::settings::MetricsSettings {
        per_step_series: raw
            .metrics
            .and_then(|m| m.per_step_series)
            .unwrap_or(defaults.metrics.per_step_series),
    };

    if check.problems.is_empty() {
        let settings = Settings {
            cloud,
            tenant_id,
            inventory,
            connector,
            probes,
            metrics,
        };
        Ok((settings, check.warnings))
    } else {
        Err(check.problems)
    }
}

fn graph_settings(
    check: &mut Checker,
    graph: Spanned<RawGraph>,
    cloud: super::values::Cloud,
    has_tenant: bool,
) -> GraphSettings {
    let at = graph.referenced;
    let g = graph.value;
    if !has_tenant {
        check.problem(
            at,
            "inventory.graph",
            "needs tenant_id (a top-level key) to sign in",
        );
    }
    let needs = |field: &Option<std::path::PathBuf>| field.is_none();
    match g.auth {
        GraphAuth::ClientCertificate if needs(&g.certificate_file) || needs(&g.private_key_file) => {
            check.problem(
                at,
                "inventory.graph",
                "auth client_certificate needs certificate_file and private_key_file",
            )
        }
        GraphAuth::DeviceCode if needs(&g.token_cache_file) => check.problem(
            at,
            "inventory.graph",
            "auth device_code needs token_cache_file (where `appproxy_exporter login` keeps the refresh token)",
        ),
        _ => {}
    }
    let url = |given: Option<HttpUrl>, default: &str, key: &str, warnings: &mut Vec<String>| {
        let url =
            given.unwrap_or_else(|| HttpUrl::parse(default).expect("built-in URLs are valid"));
        if url.0.scheme() == "http" {
            warnings.push(format!(
                "inventory.graph.{key} uses plain http ({url}): tokens and inventory travel unencrypted"
            ));
        }
        url
    };
    GraphSettings {
        graph_url: url(
            g.graph_url,
            cloud.graph_url(),
            "graph_url",
            &mut check.warnings,
        ),
        login_url: url(
            g.login_url,
            cloud.login_url(),
            "login_url",
            &mut check.warnings,
        ),
        client_id: g.client_id,
        auth: g.auth,
        client_secret_file: g.client_secret_file,
        certificate_file: g.certificate_file,
        private_key_file: g.private_key_file,
        token_cache_file: g.token_cache_file,
    }
}

/// `connector.releases`: sorted oldest first. An empty list, a version written twice or a list
/// without an auto-update release is a problem: the check could judge nothing with it, or would
/// judge by a release the author did not mean.
fn releases(check: &mut Checker, raw: Spanned<Vec<Spanned<RawRelease>>>) -> Releases {
    const KEY: &str = "connector.releases";
    if raw.value.is_empty() {
        check.problem(
            raw.referenced,
            KEY,
            "an empty list: list the connector releases (at least one with auto_update: true), or leave the key out for the built-in list",
        );
        return Releases::Builtin;
    }
    let mut seen: HashMap<_, Location> = HashMap::new();
    let mut list = Vec::with_capacity(raw.value.len());
    for (index, release) in raw.value.into_iter().enumerate() {
        let version = release.value.version;
        if let Some(first) = seen.insert(version, release.referenced) {
            check.problem(
                release.referenced,
                format!("{KEY}[{index}].version"),
                format!(
                    "{version} is listed twice (first on line {}): each release once",
                    first.line()
                ),
            );
            continue;
        }
        list.push(ConnectorRelease {
            version,
            auto_update: release.value.auto_update.unwrap_or(false),
        });
    }
    if !list.iter().any(|r| r.auto_update) {
        check.problem(
            raw.referenced,
            KEY,
            "no release has auto_update: true: a connector is judged against the newest release its updater installs by itself, so mark the releases the release history says may auto-upgrade",
        );
    }
    list.sort_by_key(|r| r.version);
    Releases::Listed(list)
}

fn static_inventory(check: &mut Checker, raw: RawStatic) -> StaticInventory {
    let mut seen_groups: HashMap<String, u64> = HashMap::new();
    let mut groups = Vec::new();
    for (i, group) in raw.connector_groups.into_iter().enumerate() {
        let path = format!("inventory.static.connector_groups[{i}].name");
        let line = group.referenced.line();
        let g = group.value;
        if g.name.trim().is_empty() {
            check.problem(group.referenced, path, "must not be empty");
        } else if let Some(first) = seen_groups.insert(g.name.clone(), line) {
            let message = format!(
                "duplicate connector group {:?} (first at line {first})",
                g.name
            );
            check.problem(group.referenced, path, message);
        }
        let connectors = g
            .connectors
            .into_iter()
            .map(|c| StaticConnector {
                machine_name: c.machine_name,
                status: c.status,
            })
            .collect();
        groups.push(StaticGroup {
            name: g.name,
            connectors,
        });
    }
    let mut seen_apps: HashMap<String, u64> = HashMap::new();
    let mut apps = Vec::with_capacity(raw.apps.len());
    for (i, app) in raw.apps.into_iter().enumerate() {
        let path = format!("inventory.static.apps[{i}].name");
        let line = app.referenced.line();
        let a = app.value;
        if a.name.trim().is_empty() {
            check.problem(app.referenced, path, "must not be empty");
        } else if let Some(first) = seen_apps.insert(a.name.clone(), line) {
            check.problem(
                app.referenced,
                path,
                format!("duplicate app {:?} (first at line {first})", a.name),
            );
        }
        let translate_host_header = a.translate_host_header.unwrap_or(true);
        if !translate_host_header && a.external_url.is_none() {
            check.problem(
                app.referenced,
                format!("inventory.static.apps[{i}].translate_host_header"),
                "false needs external_url: with it off App Proxy sends the backend the external host, which only external_url names",
            );
        }
        apps.push(StaticApp {
            name: a.name,
            connector_group: a.connector_group,
            internal_url: a.internal_url,
            backend_timeout: a.backend_timeout.unwrap_or_default(),
            backend_certificate_validation: a.backend_certificate_validation.unwrap_or(true),
            translate_host_header,
            external_url: a.external_url,
            kerberos_service_principal_name: a
                .kerberos_service_principal_name
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        });
    }
    StaticInventory {
        connector_groups: groups,
        apps,
    }
}

fn probe_settings(check: &mut Checker, raw: RawProbes, defaults: ProbeSettings) -> ProbeSettings {
    let interval_at = raw.interval.as_ref().map(|d| d.referenced);
    let interval = check.positive(raw.interval, "probes.interval", defaults.interval);
    let timeout_spanned = raw.timeout.as_ref().map(|d| (d.referenced, d.value.0));
    let timeout = check.positive(raw.timeout, "probes.timeout", defaults.timeout);
    if timeout > interval {
        let at = timeout_spanned.map(|(at, _)| at).or(interval_at);
        if let Some(at) = at {
            let message = format!(
                "{} is longer than probes.interval ({}): a probe round could never finish in time",
                super::duration::format(timeout),
                super::duration::format(interval)
            );
            check.problem(at, "probes.timeout", message);
        }
    }
    let concurrency = raw.concurrency.map_or(defaults.concurrency, |c| c.0);
    let endpoints = match raw.endpoints {
        None => defaults.endpoints,
        Some(e) => {
            let endpoint = |r: RawEndpoint| Endpoint {
                host: r.host.0,
                port: r.port.0,
                purpose: r.purpose,
                reachable_only: None,
            };
            EndpointSettings {
                catalog: e.catalog.unwrap_or(defaults.endpoints.catalog),
                extra: e.extra.into_iter().map(endpoint).collect(),
                replace: e.replace.into_iter().map(endpoint).collect(),
                expected_issuers: e
                    .expected_issuers
                    .unwrap_or(defaults.endpoints.expected_issuers),
            }
        }
    };
    let external = ExternalSettings {
        enabled: raw
            .external
            .and_then(|e| e.enabled)
            .unwrap_or(defaults.external.enabled),
    };
    let backend = match raw.backend {
        None => defaults.backend,
        Some(b) => backend_settings(check, b, defaults.backend),
    };
    let segments = match raw.segments {
        None => defaults.segments,
        Some(s) => SegmentSettings {
            enabled: s.enabled.unwrap_or(defaults.segments.enabled),
            max_addresses: s
                .max_addresses
                .map_or(defaults.segments.max_addresses, |n| n.0),
            max_ports: s.max_ports.map_or(defaults.segments.max_ports, |n| n.0),
        },
    };
    ProbeSettings {
        interval,
        timeout,
        concurrency,
        endpoints,
        external,
        backend,
        segments,
    }
}

fn backend_settings(
    check: &mut Checker,
    raw: RawBackend,
    defaults: BackendSettings,
) -> BackendSettings {
    let interval = check.positive(raw.interval, "probes.backend.interval", defaults.interval);
    let timeouts = match raw.timeouts {
        None => defaults.timeouts,
        Some(t) => BackendTimeouts {
            default: check.positive(
                t.default,
                "probes.backend.timeouts.default",
                defaults.timeouts.default,
            ),
            long: check.positive(
                t.long,
                "probes.backend.timeouts.long",
                defaults.timeouts.long,
            ),
        },
    };
    let timeout_risk_ratio = match raw.timeout_risk_ratio {
        Some(r) if !(r.value > 0.0 && r.value <= 1.0) => {
            let message = format!(
                "{} is out of range: use a fraction above 0 and at most 1, such as 0.8",
                r.value
            );
            check.problem(r.referenced, "probes.backend.timeout_risk_ratio", message);
            defaults.timeout_risk_ratio
        }
        Some(r) => r.value,
        None => defaults.timeout_risk_ratio,
    };
    let mut named: HashMap<String, Location> = HashMap::new();
    let mut wildcard_hosts = Vec::new();
    for (index, entry) in raw.wildcard_hosts.into_iter().enumerate() {
        let app = entry.app.value;
        if let Some(first) = named.insert(app.clone(), entry.app.referenced) {
            check.problem(
                entry.app.referenced,
                format!("probes.backend.wildcard_hosts[{index}].app"),
                format!(
                    "{app:?} is named twice (first on line {}): one concrete host per app",
                    first.line()
                ),
            );
            continue;
        }
        wildcard_hosts.push(WildcardHost {
            app,
            host: entry.host,
        });
    }
    BackendSettings {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        interval,
        timeouts,
        timeout_risk_ratio,
        wildcard_hosts,
    }
}
