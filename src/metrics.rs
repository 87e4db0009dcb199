//! Every metric family the exporter serves, defined in one place, and the collector that fills
//! them from the latest snapshot at scrape time. The registry is built once and passed to the
//! HTTP layer; nothing here is global.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, Opts, Registry};

use crate::exposition::Family;

use crate::backend::AppBackend;
use crate::config::values::ConnectorStatus;
use crate::endpoints::{self, EndpointsState};
use crate::exporter::Exporter;
use crate::flow::Outcome;
use crate::inventory::local::ServiceState;
use crate::proxy::{FileProblem, Finding, ProxyState, Source};
use crate::store::Snapshot;

/// The revision the binary was built from (see build.rs).
pub const REVISION: &str = env!("APPPROXY_REVISION");

/// The families built from the snapshot. They are reset and refilled on every scrape, so a
/// series disappears as soon as what it describes does.
struct Families {
    flow_step_ok: Family,
    flow_failing_step: Family,
    flow_failing_step_info: Family,
    inventory_up: Family,
    inventory_last_success: Family,
    inventory_refresh_interval: Family,
    group_info: Family,
    group_active_connectors: Family,
    connector_info: Family,
    connector_active: Family,
    app_info: Family,
    build_info: GaugeVec,
    reload_successful: Gauge,
    reload_success_timestamp: Gauge,
    round_duration: Family,
    port_open: Family,
    endpoint_up: Family,
    endpoint_duration: Family,
    endpoint_family: Family,
    endpoint_tls_intercepted: Family,
    forward_proxy_info: Family,
    forward_proxy_up: Family,
    forward_proxy_status: Family,
    /// No labels; a vec so it can be absent when not evaluated.
    forward_proxy_consistent: Family,
    connector_config_valid: Family,
    backend_up: Family,
    backend_status: Family,
    backend_failure_info: Family,
    backend_phase_duration: Family,
    backend_timeout: Family,
    backend_latency_ratio: Family,
    external_up: Family,
    external_status: Family,
    service_running: Family,
}

fn gauge(name: &str, help: &str) -> prometheus::Result<Gauge> {
    Gauge::with_opts(Opts::new(name, help))
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    GaugeVec::new(Opts::new(name, help), labels)
}

const APP_LABELS: [&str; 2] = ["connector_group", "app"];

const ENDPOINT_LABELS: [&str; 4] = ["host", "port", "purpose", "route"];

const STEP_LABELS: [&str; 4] = ["connector_group", "app", "step", "step_name"];

impl Families {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            flow_step_ok: Family::new(
                "appproxy_flow_step_ok",
                "1 when the flowchart step passes for the app, 0 when it fails; absent where not evaluated.",
                &STEP_LABELS,
            ),
            flow_failing_step: Family::new(
                "appproxy_flow_failing_step",
                "The flowchart step (1-10) the app's walk stops at; 0 when every step passes.",
                &["connector_group", "app"],
            ),
            flow_failing_step_info: Family::new(
                "appproxy_flow_failing_step_info",
                "1 for the step the app's walk stops at, present only while the app fails.",
                &STEP_LABELS,
            ),
            inventory_up: Family::new(
                "appproxy_inventory_up",
                "1 when the last inventory refresh succeeded.",
                &[],
            ),
            inventory_last_success: Family::new(
                "appproxy_inventory_last_success_timestamp_seconds",
                "Unix time of the last successful inventory refresh.",
                &[],
            ),
            inventory_refresh_interval: Family::new(
                "appproxy_inventory_refresh_interval_seconds",
                "How often the inventory is refreshed (inventory.refresh_interval); alerts call it stale after three.",
                &[],
            ),
            group_info: Family::new(
                "appproxy_connector_group_info",
                "Connector groups in the inventory.",
                &["connector_group", "group_id", "region", "is_default"],
            ),
            group_active_connectors: Family::new(
                "appproxy_connector_group_active_connectors",
                "Connectors of the group whose status is active.",
                &["connector_group"],
            ),
            connector_info: Family::new(
                "appproxy_connector_info",
                "Connectors in the inventory.",
                &[
                    "connector_group",
                    "machine_name",
                    "connector_id",
                    "external_ip",
                    "version",
                ],
            ),
            connector_active: Family::new(
                "appproxy_connector_active",
                "1 when the connector's status is active, 0 when inactive.",
                &["connector_group", "machine_name"],
            ),
            app_info: Family::new(
                "appproxy_app_info",
                "Applications of the connector groups, as the inventory knows them; application_type is Graph's (nonwebapp, quickaccessapp: Private Access apps, walked to step 2 only), empty for a web app.",
                &[
                    "connector_group",
                    "app",
                    "app_id",
                    "internal_url",
                    "external_url",
                    "backend_timeout",
                    "application_type",
                ],
            ),
            build_info: gauges(
                "appproxy_exporter_build_info",
                "The exporter's version and source revision.",
                &["version", "revision"],
            )?,
            reload_successful: gauge(
                "appproxy_exporter_config_last_reload_successful",
                "1 when the last configuration reload succeeded.",
            )?,
            reload_success_timestamp: gauge(
                "appproxy_exporter_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful configuration load.",
            )?,
            round_duration: Family::new(
                "appproxy_probe_round_duration_seconds",
                "How long the last probe round of each kind took.",
                &["kind"],
            ),
            port_open: Family::new(
                "appproxy_port_open",
                "The port test (step 3): 1 when outbound TCP on the port reaches the core service endpoints (443) or the certificate endpoints (80).",
                &["port"],
            ),
            endpoint_up: Family::new(
                "appproxy_endpoint_up",
                "1 when the required endpoint resolves, connects and, on 443, presents a genuine TLS chain by this route.",
                &ENDPOINT_LABELS,
            ),
            endpoint_duration: Family::new(
                "appproxy_endpoint_duration_seconds",
                "How long each completed phase of the last endpoint probe took.",
                &["host", "port", "purpose", "route", "phase"],
            ),
            endpoint_family: Family::new(
                "appproxy_endpoint_family_info",
                "The address family (ipv4, ipv6) of the endpoint's last connection by this route; both families are raced (RFC 8305).",
                &["host", "port", "purpose", "route", "family"],
            ),
            endpoint_tls_intercepted: Family::new(
                "appproxy_endpoint_tls_intercepted",
                "1 when the endpoint's certificate chain comes from an issuer other than the expected ones (TLS inspection).",
                &["host"],
            ),
            forward_proxy_info: Family::new(
                "appproxy_forward_proxy_info",
                "The forward proxy each service uses (proxy_url direct when none) and where that setting came from.",
                &["service", "proxy_url", "source"],
            ),
            forward_proxy_up: Family::new(
                "appproxy_forward_proxy_up",
                "1 when the forward proxy is reachable and accepts CONNECT to a core service endpoint.",
                &["proxy_url"],
            ),
            forward_proxy_status: Family::new(
                "appproxy_forward_proxy_connect_status_code",
                "The forward proxy's last answer to CONNECT (200, 407, 403, 502 ...).",
                &["proxy_url"],
            ),
            forward_proxy_consistent: Family::new(
                "appproxy_forward_proxy_consistent",
                "1 when connector and updater use the same proxy and the connector's route is one that works.",
                &[],
            ),
            connector_config_valid: Family::new(
                "appproxy_connector_config_valid",
                "1 when the service's .exe.config could be read and parsed, 0 when it is unreadable or malformed (see the log for the position).",
                &["service", "file"],
            ),
            backend_up: Family::new(
                "appproxy_backend_up",
                "1 when the app's internal URL loaded from this host (a 401/403 sign-in challenge counts as loaded).",
                &APP_LABELS,
            ),
            backend_status: Family::new(
                "appproxy_backend_http_status_code",
                "The HTTP status of the last request to the app's internal URL.",
                &APP_LABELS,
            ),
            backend_failure_info: Family::new(
                "appproxy_backend_failure_info",
                "1 while requests to the internal URL fail, with the phase that failed (resolve, connect, timeout: the network; tls, http: the application).",
                &["connector_group", "app", "phase"],
            ),
            backend_phase_duration: Family::new(
                "appproxy_backend_phase_duration_seconds",
                "How long each phase of the last request to the internal URL took.",
                &["connector_group", "app", "phase"],
            ),
            backend_timeout: Family::new(
                "appproxy_backend_timeout_seconds",
                "The app's App Proxy backend timeout: 85 (Default) or 180 (Long) unless configured otherwise.",
                &APP_LABELS,
            ),
            backend_latency_ratio: Family::new(
                "appproxy_backend_latency_ratio",
                "The last request's latency divided by the app's backend timeout.",
                &APP_LABELS,
            ),
            external_up: Family::new(
                "appproxy_external_up",
                "Step 10: 1 when the app's external URL answers as App Proxy should (2xx, 3xx, 401, 403, and not its error page).",
                &APP_LABELS,
            ),
            external_status: Family::new(
                "appproxy_external_http_status_code",
                "The HTTP status of the last request to the app's external URL.",
                &APP_LABELS,
            ),
            service_running: Family::new(
                "appproxy_connector_service_running",
                "1 when the connector's Windows service (connector: WAPCSvc, updater: WAPCUpdaterSvc) runs on this host, 0 when it is stopped or not installed; Windows only.",
                &["service"],
            ),
        })
    }

    /// The exporter's own families, served from the start and built at scrape time.
    fn live(&self) -> [&dyn Collector; 3] {
        [
            &self.build_info,
            &self.reload_successful,
            &self.reload_success_timestamp,
        ]
    }

    /// The snapshot's families, in the order they are written.
    fn snapshot(&self) -> [&Family; 31] {
        [
            &self.flow_step_ok,
            &self.flow_failing_step,
            &self.flow_failing_step_info,
            &self.inventory_up,
            &self.inventory_last_success,
            &self.inventory_refresh_interval,
            &self.group_info,
            &self.group_active_connectors,
            &self.connector_info,
            &self.connector_active,
            &self.app_info,
            &self.round_duration,
            &self.port_open,
            &self.endpoint_up,
            &self.endpoint_duration,
            &self.endpoint_family,
            &self.endpoint_tls_intercepted,
            &self.forward_proxy_info,
            &self.forward_proxy_up,
            &self.forward_proxy_status,
            &self.forward_proxy_consistent,
            &self.connector_config_valid,
            &self.backend_up,
            &self.backend_status,
            &self.backend_failure_info,
            &self.backend_phase_duration,
            &self.backend_timeout,
            &self.backend_latency_ratio,
            &self.external_up,
            &self.external_status,
            &self.service_running,
        ]
    }

    /// Fills the snapshot's families; false while no probe round has completed yet.
    fn fill_snapshot(&self, snapshot: &Snapshot, exporter: &Exporter) -> bool {
        if !snapshot.complete {
            return false;
        }
        for walk in &snapshot.walks {
            let (group, app) = (walk.connector_group.as_str(), walk.app.as_str());
            for (step, outcome) in walk.steps.iter().filter(|(_, o)| o.evaluated()) {
                let number = step.number().to_string();
                let ok = if matches!(outcome, Outcome::Pass) {
                    1.0
                } else {
                    0.0
                };
                self.flow_step_ok
                    .with_label_values(&[group, app, &number, step.name()])
                    .set(ok);
            }
            let failing = walk.failure.as_ref().map_or(0, |f| f.step.number());
            self.flow_failing_step
                .with_label_values(&[group, app])
                .set(f64::from(failing));
            if let Some(failure) = &walk.failure {
                let number = failure.step.number().to_string();
                self.flow_failing_step_info
                    .with_label_values(&[group, app, &number, failure.step.name()])
                    .set(1.0);
            }
        }

        let state = &snapshot.inventory;
        self.inventory_up.set(if state.up { 1.0 } else { 0.0 });
        self.inventory_last_success
            .set(state.last_success.map_or(0.0, unix_seconds));
        let refresh = exporter.config().settings.inventory.refresh_interval;
        self.inventory_refresh_interval.set(refresh.as_secs_f64());
        for group in &state.inventory.groups {
            let is_default = group
                .is_default
                .map_or("", |d| if d { "true" } else { "false" });
            self.group_info
                .with_label_values(&[&group.name, &group.id, &group.region, is_default])
                .set(1.0);
            self.group_active_connectors
                .with_label_values(&[&group.name])
                .set(group.active_connectors() as f64);
            for c in &group.connectors {
                let labels = [
                    &group.name,
                    &c.machine_name,
                    &c.id,
                    &c.external_ip,
                    &c.version,
                ];
                self.connector_info.with_label_values(&labels).set(1.0);
                let active = if c.status == ConnectorStatus::Active {
                    1.0
                } else {
                    0.0
                };
                self.connector_active
                    .with_label_values(&[&group.name, &c.machine_name])
                    .set(active);
            }
        }
        for app in &state.inventory.apps {
            let group = app.connector_group.as_deref().unwrap_or("");
            let external = app.external_url.as_deref().unwrap_or("");
            let labels = [
                group,
                &app.name,
                &app.id,
                &app.internal_url,
                external,
                app.backend_timeout.as_str(),
                &app.application_type,
            ];
            self.app_info.with_label_values(&labels).set(1.0);
        }

        for (kind, seconds) in &snapshot.round_seconds {
            self.round_duration.with_label_values(&[kind]).set(*seconds);
        }
        self.fill_endpoints(&snapshot.endpoints);
        self.fill_proxy(&snapshot.proxy);
        for (service, state) in snapshot.local_services.iter().flatten() {
            let running = if *state == ServiceState::Running {
                1.0
            } else {
                0.0
            };
            self.service_running
                .with_label_values(&[*service])
                .set(running);
        }
        for walk in &snapshot.walks {
            if let Some(backend) = &walk.backend {
                self.fill_backend(&walk.connector_group, &walk.app, backend);
            }
        }
        true
    }

    /// Steps 7-9 for one app: the last request to its internal URL.
    fn fill_backend(&self, group: &str, app: &str, backend: &AppBackend) {
        let labels = [group, app];
        let last = &backend.last;
        self.backend_up
            .with_label_values(&labels)
            .set(if backend.up() { 1.0 } else { 0.0 });
        if let Some(status) = last.status {
            self.backend_status
                .with_label_values(&labels)
                .set(f64::from(status));
        }
        if let Some(failure) = &last.failure {
            self.backend_failure_info
                .with_label_values(&[group, app, failure.phase.label()])
                .set(1.0);
        }
        for (phase, seconds) in &last.phases {
            self.backend_phase_duration
                .with_label_values(&[group, app, phase.label()])
                .set(*seconds);
        }
        self.backend_timeout
            .with_label_values(&labels)
            .set(backend.threshold.as_secs_f64());
        self.backend_latency_ratio
            .with_label_values(&labels)
            .set(backend.ratio());
        if let Some(external) = &backend.external {
            let up = if external.reachable() { 1.0 } else { 0.0 };
            self.external_up.with_label_values(&labels).set(up);
            if let Some(status) = external.outcome.status {
                self.external_status
                    .with_label_values(&labels)
                    .set(f64::from(status));
            }
        }
    }

    /// Steps 5-6: each service's proxy, each proxy's health, and whether they agree.
    fn fill_proxy(&self, state: &ProxyState) {
        let valid_file = |service: &str, file: &Option<std::path::PathBuf>| {
            if let Some(file) = file {
                let file = file.display().to_string();
                self.connector_config_valid
                    .with_label_values(&[service, &file])
                    .set(1.0);
            }
        };
        for (service, finding) in &state.services {
            match finding {
                Finding::Known { file, choice } => {
                    let labels = [service.label(), &choice.proxy_url(), choice.source.label()];
                    self.forward_proxy_info.with_label_values(&labels).set(1.0);
                    valid_file(service.label(), file);
                }
                // WPAD or a script picks the proxy at run time: which one is unknown here.
                Finding::Automatic { file, .. } => {
                    let labels = [service.label(), "unknown", Source::AutoDetect.label()];
                    self.forward_proxy_info.with_label_values(&labels).set(1.0);
                    valid_file(service.label(), file);
                }
                Finding::Broken(
                    FileProblem::Malformed { path, .. } | FileProblem::Unreadable { path, .. },
                ) => {
                    let file = path.display().to_string();
                    self.connector_config_valid
                        .with_label_values(&[service.label(), &file])
                        .set(0.0);
                }
                Finding::NotInstalled => {}
            }
        }
        for probe in &state.probes {
            let url = probe.proxy.to_string();
            self.forward_proxy_up
                .with_label_values(&[&url])
                .set(if probe.up() { 1.0 } else { 0.0 });
            if let Some(status) = probe.result.proxy_status {
                self.forward_proxy_status
                    .with_label_values(&[&url])
                    .set(f64::from(status));
            }
        }
        if let Some(consistent) = state.consistent {
            self.forward_proxy_consistent
                .with_label_values::<&str>(&[])
                .set(if consistent { 1.0 } else { 0.0 });
        }
    }

    /// Steps 3-4: the port test and every endpoint by every route.
    fn fill_endpoints(&self, state: &EndpointsState) {
        for (port, open) in &state.port_open {
            self.port_open
                .with_label_values(&[&port.to_string()])
                .set(if *open { 1.0 } else { 0.0 });
        }
        // A stand-in host that proves nothing has no verdict, so no series.
        for result in state.results.iter().filter(|r| r.judged()) {
            let e = &result.endpoint;
            let (port, purpose) = (e.port.to_string(), endpoints::purpose_name(e.purpose));
            let mut intercepted = None;
            for route in &result.routes {
                let labels = [e.host.as_str(), &port, purpose, route.route.label()];
                self.endpoint_up
                    .with_label_values(&labels)
                    .set(if route.up() { 1.0 } else { 0.0 });
                if let (Some(family), true) = (route.family, route.connected) {
                    self.endpoint_family
                        .with_label_values(&[
                            e.host.as_str(),
                            &port,
                            purpose,
                            route.route.label(),
                            family.label(),
                        ])
                        .set(1.0);
                }
                for (phase, seconds) in &route.phases {
                    self.endpoint_duration
                        .with_label_values(&[
                            e.host.as_str(),
                            &port,
                            purpose,
                            route.route.label(),
                            phase.label(),
                        ])
                        .set(*seconds);
                }
                if let Some(i) = route.intercepted {
                    intercepted = Some(intercepted.unwrap_or(false) || i);
                }
            }
            if let Some(i) = intercepted {
                self.endpoint_tls_intercepted
                    .with_label_values(&[&e.host])
                    .set(if i { 1.0 } else { 0.0 });
            }
        }
    }

    /// The exporter's own series, there from the start.
    fn fill_exporter(&self, exporter: &Exporter) {
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), REVISION])
            .set(1.0);
        let reload = exporter.reload_status();
        self.reload_successful
            .set(if reload.successful { 1.0 } else { 0.0 });
        self.reload_success_timestamp
            .set(unix_seconds(reload.last_success));
    }
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The exporter's own families (build info, reloads), built at scrape time: they change
/// without a probe round.
struct LiveCollector {
    exporter: Arc<Exporter>,
    families: Mutex<Families>,
    descs: Vec<Desc>,
}

impl Collector for LiveCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let families = match self.families.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        families.fill_exporter(&self.exporter);
        families.live().iter().flat_map(|c| c.collect()).collect()
    }
}

/// The text of every family built from `snapshot`, and the backend histogram: rendered once
/// per published snapshot, in the background, so a scrape only copies it out. Empty before
/// the first round: no series beats a misleading 0.
pub fn render_snapshot(snapshot: &Snapshot, exporter: &Exporter) -> String {
    let families = match Families::new() {
        Ok(families) => families,
        Err(error) => {
            tracing::error!(%error, "metric families could not be built");
            return String::new();
        }
    };
    if !families.fill_snapshot(snapshot, exporter) {
        return String::new();
    }
    let mut text = String::with_capacity(1 << 16);
    for family in families.snapshot() {
        family.write(&mut text);
    }
    // The histogram is cumulative state of the `prometheus` crate; a family without a series
    // is left out, as the registry does when it gathers.
    let mut histogram = exporter.backend_histogram.collect();
    histogram.retain(|family| !family.get_metric().is_empty());
    match prometheus::TextEncoder::new().encode_to_string(&histogram) {
        Ok(encoded) => text.push_str(&encoded),
        Err(error) => tracing::error!(%error, "encoding the backend histogram failed"),
    }
    text
}

/// The registry `/metrics` serves beside the rendered snapshot: the exporter's own families,
/// Graph's request metrics, and process metrics where the platform has them.
pub fn registry(exporter: Arc<Exporter>) -> prometheus::Result<Registry> {
    let families = Families::new()?;
    let descs = families
        .live()
        .iter()
        .flat_map(|c| c.desc().into_iter().cloned())
        .collect();
    let registry = Registry::new();
    registry.register(Box::new(exporter.graph_metrics.requests.clone()))?;
    registry.register(Box::new(exporter.graph_metrics.duration.clone()))?;
    registry.register(Box::new(LiveCollector {
        exporter,
        families: Mutex::new(families),
        descs,
    }))?;
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}

/// The text exposition of everything in `registry`.
pub fn encode(registry: &Registry) -> Result<String, prometheus::Error> {
    prometheus::TextEncoder::new().encode_to_string(&registry.gather())
}
