//! Every metric family the exporter serves, defined in one place. The snapshot's families are
//! written once per published snapshot, straight into the compressed exposition; the
//! exporter's own few (build info, reloads, Graph's requests, tasks' panics) and the process's
//! are written at scrape time ([`write_live`]) by the same writer. Nothing here is global.
//!
//! What is per app is what Prometheus pays for on every connector host, so by default only
//! what is per app is served per app (steps 7-10 and the walk's result); steps judged once per
//! host (3-6) or per connector group (2) are served once at that level. Every per-app series
//! is there with `metrics.per_step_series: true` (docs/performance.md says which dashboard or
//! alert reads each).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::exposition::gzip::{Compressor, OpenMember};
use crate::exposition::{Family, HistogramSeries, write_family, write_histogram};

mod capacity;
mod host;
mod process;

use crate::backend::LatencyHistogram;
use crate::config::Settings;
use crate::config::values::ConnectorStatus;
use crate::endpoints::{self, EndpointsState};
use crate::inventory::local::ServiceState;
use crate::proxy::{FileProblem, Finding, ProxyState, Source};
use crate::store::Snapshot;
use crate::verdict::AppWalk;
use crate::walk::Outcome;

const APP_LABELS: [&str; 2] = ["connector_group", "app"];
const STEP_LABELS: [&str; 4] = ["connector_group", "app", "step", "step_name"];
const ENDPOINT_LABELS: [&str; 4] = ["host", "port", "purpose", "route"];

const GAUGE: &str = "gauge";

/// The snapshot's families, compressed and ready for a scrape's own series to close them.
/// Empty before the first round: no series beats a misleading 0.
pub fn render_snapshot(snapshot: &Snapshot, settings: &Settings) -> OpenMember {
    let mut out = Compressor::default();
    if snapshot.complete {
        let per_app_detail = settings.metrics.per_step_series;
        write_flow(&mut out, snapshot, per_app_detail);
        write_inventory(&mut out, snapshot, settings.inventory.refresh_interval);
        write_rounds(&mut out, snapshot);
        write_endpoints(&mut out, &snapshot.endpoints);
        write_proxy(&mut out, &snapshot.proxy);
        write_services(&mut out, snapshot);
        write_backends(
            &mut out,
            &snapshot.walks.apps,
            settings.probes.backend.timeout_risk_ratio,
            per_app_detail,
        );
        write_segments(&mut out, &snapshot.walks.apps);
        let host = host::HostFamilies::new();
        host.fill(&snapshot.host);
        for family in host.all() {
            family.write(&mut out);
        }
        let capacity = capacity::CapacityFamilies::new();
        capacity.fill(snapshot.host.capacity.as_ref());
        for family in capacity.all() {
            family.write(&mut out);
        }
    }
    out.open()
}

fn bool_value(yes: bool) -> f64 {
    if yes { 1.0 } else { 0.0 }
}

fn step_value(outcome: &Outcome) -> Option<f64> {
    outcome
        .evaluated()
        .then(|| bool_value(matches!(outcome, Outcome::Pass)))
}

/// The walk: where each app stops, and the steps' verdicts once per host (3-6) and per group
/// (2); every app's every step with `per_app_detail`.
fn write_flow(out: &mut Compressor, snapshot: &Snapshot, per_app_detail: bool) {
    let walks = &snapshot.walks.apps;
    let host = snapshot.walks.host.iter().filter_map(|(step, outcome)| {
        let number = step.number().to_string();
        step_value(outcome).map(|v| {
            let labels = vec![
                String::new(),
                String::new(),
                number,
                step.name().to_string(),
            ];
            (labels, v)
        })
    });
    let groups = snapshot.walks.groups.iter().filter_map(|(group, outcome)| {
        let step = crate::walk::Step::ConnectorInstalled;
        step_value(outcome).map(|v| {
            (
                vec![
                    group.clone(),
                    String::new(),
                    step.number().to_string(),
                    step.name().to_string(),
                ],
                v,
            )
        })
    });
    let apps = walks.iter().filter(|_| per_app_detail).flat_map(|walk| {
        walk.steps.iter().filter_map(move |(step, outcome)| {
            step_value(outcome).map(|v| {
                (
                    vec![
                        walk.connector_group.to_string(),
                        walk.app.to_string(),
                        step.number().to_string(),
                        step.name().to_string(),
                    ],
                    v,
                )
            })
        })
    });
    write_family(
        out,
        "appproxy_flow_step_ok",
        "1 when the flowchart step passes, 0 when it fails; absent where not evaluated. Steps 3-6 are judged once for this host (no connector_group or app label), step 2 once per connector group (no app label); every app's every step with metrics.per_step_series.",
        GAUGE,
        &STEP_LABELS,
        host.chain(groups).chain(apps),
    );
    write_family(
        out,
        "appproxy_flow_failing_step",
        "The flowchart step (1-10) the app's walk stops at; 0 when every step passes.",
        GAUGE,
        &APP_LABELS,
        walks.iter().map(|w| {
            let failing = w.failure.as_ref().map_or(0, |f| f.step.number());
            ([&*w.connector_group, &*w.app], f64::from(failing))
        }),
    );
    write_family(
        out,
        "appproxy_flow_failing_step_info",
        "1 for the step the app's walk stops at, present only while the app fails.",
        GAUGE,
        &STEP_LABELS,
        walks.iter().filter_map(|w| {
            let failure = w.failure.as_ref()?;
            let labels = [
                w.connector_group.to_string(),
                w.app.to_string(),
                failure.step.number().to_string(),
                failure.step.name().to_string(),
            ];
            Some((labels, 1.0))
        }),
    );
}

fn write_inventory(out: &mut Compressor, snapshot: &Snapshot, refresh: std::time::Duration) {
    let state = &snapshot.inventory;
    let up = Family::new(
        "appproxy_inventory_up",
        "1 when the last inventory refresh succeeded.",
        &[],
    );
    up.set(bool_value(state.up));
    let last_success = Family::new(
        "appproxy_inventory_last_success_timestamp_seconds",
        "Unix time of the last successful inventory refresh.",
        &[],
    );
    last_success.set(state.last_success.map_or(0.0, unix_seconds));
    let interval = Family::new(
        "appproxy_inventory_refresh_interval_seconds",
        "How often the inventory is refreshed (inventory.refresh_interval); alerts call it stale after three.",
        &[],
    );
    interval.set(refresh.as_secs_f64());
    for family in [&up, &last_success, &interval] {
        family.write(out);
    }
    let groups = &state.inventory.groups;
    write_family(
        out,
        "appproxy_connector_group_info",
        "Connector groups in the inventory.",
        GAUGE,
        &["connector_group", "group_id", "region", "is_default"],
        groups.iter().map(|g| {
            let is_default = g
                .is_default
                .map_or("", |d| if d { "true" } else { "false" });
            ([g.name.as_str(), &g.id, &g.region, is_default], 1.0)
        }),
    );
    write_family(
        out,
        "appproxy_connector_group_active_connectors",
        "Connectors of the group whose status is active.",
        GAUGE,
        &["connector_group"],
        groups
            .iter()
            .map(|g| ([g.name.as_str()], g.active_connectors() as f64)),
    );
    let connectors = || {
        groups
            .iter()
            .flat_map(|g| g.connectors.iter().map(move |c| (g, c)))
    };
    write_family(
        out,
        "appproxy_connector_info",
        "Connectors in the inventory.",
        GAUGE,
        &[
            "connector_group",
            "machine_name",
            "connector_id",
            "external_ip",
            "version",
        ],
        connectors().map(|(g, c)| {
            let labels = [
                g.name.as_str(),
                &c.machine_name,
                &c.id,
                &c.external_ip,
                &c.version,
            ];
            (labels, 1.0)
        }),
    );
    write_family(
        out,
        "appproxy_connector_active",
        "1 when the connector's status is active, 0 when inactive.",
        GAUGE,
        &["connector_group", "machine_name"],
        connectors().map(|(g, c)| {
            let active = bool_value(c.status == ConnectorStatus::Active);
            ([g.name.as_str(), &c.machine_name], active)
        }),
    );
    write_family(
        out,
        "appproxy_app_info",
        "Applications of the connector groups, as the inventory knows them; application_type is Graph's (nonwebapp, quickaccessapp: Private Access apps, walked to step 2 only), empty for a web app.",
        GAUGE,
        &[
            "connector_group",
            "app",
            "app_id",
            "internal_url",
            "external_url",
            "backend_timeout",
            "application_type",
        ],
        state.inventory.apps.iter().map(|app| {
            let labels = [
                app.connector_group.as_deref().unwrap_or(""),
                &app.name,
                &app.id,
                &app.internal_url,
                app.external_url.as_deref().unwrap_or(""),
                app.backend_timeout.as_str(),
                &app.application_type,
            ];
            (labels, 1.0)
        }),
    );
    write_family(
        out,
        "appproxy_custom_domain_certificate_expiry_timestamp_seconds",
        "Unix time at which the certificate App Proxy presents on the app's custom domain expires (Graph's onPremisesPublishing.verifiedCustomDomainCertificatesMetadata.expiryDate); only apps on a custom domain whose expiry Graph gives as a date.",
        GAUGE,
        &APP_LABELS,
        state.inventory.apps.iter().filter_map(|app| {
            let expires = app.custom_domain_certificate.as_ref()?.expires_at?;
            let labels = [app.connector_group.as_deref().unwrap_or(""), &*app.name];
            Some((labels, expires as f64))
        }),
    );
}

/// How long each kind of round took, and when it last finished: a prober that stopped shows
/// as a timestamp that no longer moves.
fn write_rounds(out: &mut Compressor, snapshot: &Snapshot) {
    write_family(
        out,
        "appproxy_probe_round_duration_seconds",
        "How long the last probe round of each kind took.",
        GAUGE,
        &["kind"],
        snapshot.round_seconds.iter().map(|(kind, s)| ([*kind], *s)),
    );
    write_family(
        out,
        "appproxy_probe_last_round_timestamp_seconds",
        "Unix time the last round of each kind finished (inventory, endpoints, proxy: the host's round; backend: the last answer of any app's internal URL).",
        GAUGE,
        &["kind"],
        snapshot
            .round_finished
            .iter()
            .map(|(kind, at)| ([*kind], unix_seconds(*at))),
    );
}

/// Steps 3-4: the port test and every endpoint by every route.
fn write_endpoints(out: &mut Compressor, state: &EndpointsState) {
    write_family(
        out,
        "appproxy_port_open",
        "The port test (step 3): 1 when outbound TCP on the port reaches the core service endpoints (443) or the certificate endpoints (80).",
        GAUGE,
        &["port"],
        state
            .port_open
            .iter()
            .map(|(port, open)| ([port.to_string()], bool_value(*open))),
    );
    // A stand-in host that proves nothing has no verdict, so no series.
    let routes = || {
        state
            .results
            .iter()
            .filter(|r| r.judged())
            .flat_map(|result| {
                let e = &result.endpoint;
                let (port, purpose) = (e.port.to_string(), endpoints::purpose_name(e.purpose));
                result.routes.iter().map(move |route| {
                    let labels = [
                        e.host.clone(),
                        port.clone(),
                        purpose.to_string(),
                        route.route.label().to_string(),
                    ];
                    (labels, route)
                })
            })
    };
    write_family(
        out,
        "appproxy_endpoint_up",
        "1 when the required endpoint resolves, connects and, on 443, presents a genuine TLS chain by this route.",
        GAUGE,
        &ENDPOINT_LABELS,
        routes().map(|(labels, route)| (labels, bool_value(route.up()))),
    );
    write_family(
        out,
        "appproxy_endpoint_duration_seconds",
        "How long each completed phase of the last endpoint probe took.",
        GAUGE,
        &["host", "port", "purpose", "route", "phase"],
        routes().flat_map(|(labels, route)| {
            route.phases.iter().map(move |(phase, seconds)| {
                let [host, port, purpose, route] = labels.clone();
                (
                    [host, port, purpose, route, phase.label().to_string()],
                    *seconds,
                )
            })
        }),
    );
    write_family(
        out,
        "appproxy_endpoint_family_info",
        "The address family (ipv4, ipv6) of the endpoint's last connection by this route; both families are raced (RFC 8305).",
        GAUGE,
        &["host", "port", "purpose", "route", "family"],
        routes().filter_map(|(labels, route)| {
            let family = route.family.filter(|_| route.connected)?;
            let [host, port, purpose, route] = labels;
            Some((
                [host, port, purpose, route, family.label().to_string()],
                1.0,
            ))
        }),
    );
    write_family(
        out,
        "appproxy_endpoint_tls_intercepted",
        "1 when the endpoint's certificate chain comes from an issuer other than the expected ones (TLS inspection).",
        GAUGE,
        &["host"],
        state
            .results
            .iter()
            .filter(|r| r.judged())
            .filter_map(|result| {
                let seen = result.routes.iter().filter_map(|r| r.intercepted);
                let intercepted = seen.reduce(|a, b| a || b)?;
                Some(([result.endpoint.host.as_str()], bool_value(intercepted)))
            }),
    );
}

/// Steps 5-6: each service's proxy, each proxy's health, and whether they agree.
fn write_proxy(out: &mut Compressor, state: &ProxyState) {
    let info = Family::new(
        "appproxy_forward_proxy_info",
        "The forward proxy each service uses (proxy_url direct when none) and where that setting came from.",
        &["connector_service", "proxy_url", "source"],
    );
    let valid = Family::new(
        "appproxy_connector_config_valid",
        "1 when the service's .exe.config could be read and parsed, 0 when it is unreadable or malformed (see the log for the position).",
        &["connector_service", "file"],
    );
    let valid_file = |service: &str, file: &Option<std::path::PathBuf>| {
        if let Some(file) = file {
            let file = file.display().to_string();
            valid.with_label_values(&[service, &file]).set(1.0);
        }
    };
    for (service, finding) in &state.services {
        match finding {
            Finding::Known { file, choice } => {
                let labels = [service.label(), &choice.proxy_url(), choice.source.label()];
                info.with_label_values(&labels).set(1.0);
                valid_file(service.label(), file);
            }
            // WPAD or a script picks the proxy at run time: which one is unknown here.
            Finding::Automatic { file, .. } => {
                let labels = [service.label(), "unknown", Source::AutoDetect.label()];
                info.with_label_values(&labels).set(1.0);
                valid_file(service.label(), file);
            }
            Finding::Broken(
                FileProblem::Malformed { path, .. } | FileProblem::Unreadable { path, .. },
            ) => {
                let file = path.display().to_string();
                valid.with_label_values(&[service.label(), &file]).set(0.0);
            }
            Finding::NotInstalled | Finding::Unread { .. } => {}
        }
    }
    let up = Family::new(
        "appproxy_forward_proxy_up",
        "1 when the forward proxy is reachable and accepts CONNECT to a core service endpoint.",
        &["proxy_url"],
    );
    let status = Family::new(
        "appproxy_forward_proxy_connect_status_code",
        "The forward proxy's last answer to CONNECT (200, 407, 403, 502 ...).",
        &["proxy_url"],
    );
    for probe in &state.probes {
        let url = probe.proxy.to_string();
        up.with_label_values(&[&url]).set(bool_value(probe.up()));
        if let Some(code) = probe.result.proxy_status {
            status.with_label_values(&[&url]).set(f64::from(code));
        }
    }
    let consistent = Family::new(
        "appproxy_forward_proxy_consistent",
        "1 when connector and updater use the same proxy and the connector's route is one that works.",
        &[],
    );
    if let Some(agree) = state.consistent {
        consistent.set(bool_value(agree));
    }
    for family in [&info, &up, &status, &consistent, &valid] {
        family.write(out);
    }
}

/// The connector's Windows services on this host.
fn write_services(out: &mut Compressor, snapshot: &Snapshot) {
    write_family(
        out,
        "appproxy_connector_service_running",
        "1 when the connector's Windows service (connector: WAPCSvc, updater: WAPCUpdaterSvc) runs on this host, 0 when it is stopped or not installed; Windows only.",
        GAUGE,
        &["connector_service"],
        snapshot
            .local_services
            .iter()
            .flatten()
            .map(|(service, state)| ([*service], bool_value(*state == ServiceState::Running))),
    );
}

/// Step 8 of Private Access apps, two series per app whatever its segments (the per-segment
/// detail is on the page and in `diagnose`): how many TCP address:port pairs were probed, and
/// how many of them did not connect. Only for apps with at least one probe.
fn write_segments(out: &mut Compressor, walks: &[AppWalk]) {
    let probed = || {
        walks.iter().filter_map(|w| {
            let report = w.segments.as_ref().filter(|r| !r.probes.is_empty())?;
            Some(([&*w.connector_group, &*w.app], report))
        })
    };
    write_family(
        out,
        "appproxy_segment_targets",
        "Private Access apps (step 8): how many TCP address:port pairs of the app's segments this host probed (ranges and port ranges sampled per probes.segments).",
        GAUGE,
        &APP_LABELS,
        probed().map(|(labels, r)| (labels, r.probes.len() as f64)),
    );
    write_family(
        out,
        "appproxy_segment_failed_targets",
        "Private Access apps (step 8): how many of the probed TCP address:port pairs of the app's segments did not connect (did not resolve, refused, unreachable or timed out).",
        GAUGE,
        &APP_LABELS,
        probed().map(|(labels, r)| (labels, r.failed().count() as f64)),
    );
}

/// Steps 7-10, per app: the last request to its internal URL, its latency against its
/// timeout, and its external URL. Phases, timeout and the external status with
/// `per_app_detail`.
fn write_backends(out: &mut Compressor, walks: &[AppWalk], risk_ratio: f64, per_app_detail: bool) {
    let requested = || {
        walks.iter().filter_map(|w| {
            let backend = w.backend.as_ref()?;
            Some(([&*w.connector_group, &*w.app], backend))
        })
    };
    write_family(
        out,
        "appproxy_backend_up",
        "1 when the app's internal URL loaded from this host (a 401/403 sign-in challenge counts as loaded).",
        GAUGE,
        &APP_LABELS,
        requested().map(|(labels, b)| (labels, bool_value(b.up()))),
    );
    write_family(
        out,
        "appproxy_backend_http_status_code",
        "The HTTP status of the last final answer of the app's internal URL, whether it passed or failed (as blackbox_exporter's probe_http_status_code); absent while no answer came.",
        GAUGE,
        &APP_LABELS,
        requested().filter_map(|(labels, b)| {
            let status = b.last.status?;
            Some((labels, f64::from(status)))
        }),
    );
    write_family(
        out,
        "appproxy_backend_failure_info",
        "1 while requests to the internal URL fail, with the phase that failed (resolve, connect, timeout: the network; tls, http: the application; proxy: the backend proxy refused) and the HTTP status when there was one.",
        GAUGE,
        &["connector_group", "app", "phase", "code"],
        requested().filter_map(|([group, app], b)| {
            let failure = b.last.failure.as_ref()?;
            let code = b.last.status.map(|s| s.to_string()).unwrap_or_default();
            Some((
                [
                    group.to_string(),
                    app.to_string(),
                    failure.phase.label().to_string(),
                    code,
                ],
                1.0,
            ))
        }),
    );
    write_family(
        out,
        "appproxy_backend_tls_version_info",
        "1 with the TLS version the last handshake with the app's internal URL reached (TLS 1.2, TLS 1.3), or TLS 1.0/1.1 for a backend that offers nothing newer (the connector reaches it only while SChannel allows those versions); absent for http and before a TLS answer.",
        GAUGE,
        &["connector_group", "app", "version"],
        requested().filter_map(|([group, app], b)| {
            let version = b.last.tls_version?;
            Some(([group, app, version.label()], 1.0))
        }),
    );
    write_family(
        out,
        "appproxy_backend_latency_ratio",
        "What step 9 judges: the median latency of the last three requests to the internal URL divided by the app's backend timeout (it fails above probes.backend.timeout_risk_ratio).",
        GAUGE,
        &APP_LABELS,
        requested().map(|(labels, b)| (labels, b.ratio())),
    );
    // Every app whose internal URL is requested has its histogram from the start, at zero.
    let histograms: Vec<(&AppWalk, LatencyHistogram)> = walks
        .iter()
        .filter_map(|w| match (&w.backend, w.backend_timeout) {
            (Some(b), _) => Some((w, b.latency.clone())),
            (None, Some(timeout)) => Some((w, LatencyHistogram::new(timeout, risk_ratio))),
            (None, None) => None,
        })
        .collect();
    let labels: Vec<[&str; 2]> = histograms
        .iter()
        .map(|(w, _)| [&*w.connector_group, &*w.app])
        .collect();
    let buckets: Vec<[(f64, u64); 2]> = histograms.iter().map(|(_, h)| h.buckets()).collect();
    write_histogram(
        out,
        "appproxy_backend_request_duration_seconds",
        "How long requests to the app's internal URL took, to the final answer's head or the failure. Its buckets are the timeout risk ratio of the app's timeout and the timeout (68 and 85 s for Default, 144 and 180 s for Long): sum over count is the mean latency.",
        &APP_LABELS,
        histograms
            .iter()
            .enumerate()
            .map(|(i, (_, h))| HistogramSeries {
                labels: &labels[i],
                buckets: &buckets[i],
                sum: h.sum,
                count: h.count,
            }),
    );
    write_family(
        out,
        "appproxy_external_up",
        "Step 10: 1 when the app's external URL answers as App Proxy should (2xx, 3xx, 401, 403, and not its error page).",
        GAUGE,
        &APP_LABELS,
        requested().filter_map(|(labels, b)| {
            let external = b.external.as_ref()?;
            Some((labels, bool_value(external.reachable())))
        }),
    );
    if !per_app_detail {
        return;
    }
    write_family(
        out,
        "appproxy_backend_phase_duration_seconds",
        "How long each phase of the last request to the internal URL took.",
        GAUGE,
        &["connector_group", "app", "phase"],
        requested().flat_map(|([group, app], b)| {
            b.last
                .phases
                .iter()
                .map(move |(phase, seconds)| ([group, app, phase.label()], *seconds))
        }),
    );
    write_family(
        out,
        "appproxy_backend_timeout_seconds",
        "The app's App Proxy backend timeout: 85 (Default) or 180 (Long) unless configured otherwise.",
        GAUGE,
        &APP_LABELS,
        requested().map(|(labels, b)| (labels, b.threshold.as_secs_f64())),
    );
    write_family(
        out,
        "appproxy_external_http_status_code",
        "The HTTP status of the last request to the app's external URL.",
        GAUGE,
        &APP_LABELS,
        requested().filter_map(|(labels, b)| {
            let status = b.external.as_ref()?.outcome.status?;
            Some((labels, f64::from(status)))
        }),
    );
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What the running exporter keeps beside the snapshot, for [`write_live`].
pub struct Live<'a> {
    pub reload_successful: bool,
    pub reload_last_success: SystemTime,
    pub graph: &'a crate::inventory::graph::GraphMetrics,
    pub tasks: &'a crate::supervise::Tasks,
}

/// The exporter's own series, written at scrape time because they change without a probe
/// round: its build, its reloads, Graph's requests, its tasks' panics, and the process's.
pub fn write_live(out: &mut impl std::fmt::Write, live: &Live<'_>) {
    let build_info = Family::new(
        "appproxy_exporter_build_info",
        "The exporter's version and source revision.",
        &["version", "revision"],
    );
    build_info
        .with_label_values(&[crate::release::VERSION, crate::release::REVISION])
        .set(1.0);
    let reload_successful = Family::new(
        "appproxy_exporter_config_last_reload_successful",
        "1 when the last configuration reload succeeded.",
        &[],
    );
    reload_successful.set(bool_value(live.reload_successful));
    let reload_success_timestamp = Family::new(
        "appproxy_exporter_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful configuration load.",
        &[],
    );
    reload_success_timestamp.set(unix_seconds(live.reload_last_success));
    // In name order, as scrapes have always had them.
    for family in [&build_info, &reload_success_timestamp, &reload_successful] {
        family.write(out);
    }
    live.tasks.write(out);
    live.graph.write(out);
    process::write(out);
}
