//! The background prober: on its own interval it refreshes the inventory and runs the host's
//! probes (steps 3-6), while every app's backend is requested on its own schedule (steps 7-9).
//! Each time either finishes, the walks are composed again and published as one snapshot.
//! Nothing here is called from a scrape.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};

use crate::backend::{self, AppKey, BackendStore, Scheduler, Target, wildcard};
use crate::config::Settings;
use crate::config::values::EndpointPurpose;
use crate::endpoints::{self, ChangeLog, EndpointsState};
use crate::exporter::Exporter;
use crate::flow::{self, Outcome, Step, StepResults};
use crate::inventory::graph::RetryPolicy;
use crate::inventory::local::{self, ServiceState};
use crate::inventory::{Publishing, Refresher, ThisHost};
use crate::proxy::{self, Finding, ProxyState, Service};
use crate::store::{AppWalk, InventoryState, Snapshot};

/// The prober and the state it keeps between rounds.
pub struct Prober {
    exporter: Arc<Exporter>,
    inventory: Refresher,
    endpoint_log: ChangeLog,
    proxy_log: proxy::ChangeLog,
    /// The catalog note last logged, so it is said once per change.
    catalog_note: Option<String>,
    backends: Arc<BackendStore>,
    /// Per-app backend tasks; only while [`Prober::run`] runs.
    scheduler: Option<Scheduler>,
    /// The last round's host-level results, composed again with each backend answer.
    last: Option<HostRound>,
}

/// What a round found that is not per app.
struct HostRound {
    inventory: InventoryState,
    local_services: Option<Vec<(&'static str, ServiceState)>>,
    endpoints: EndpointsState,
    proxy: ProxyState,
    round_seconds: BTreeMap<&'static str, f64>,
    host: ThisHost,
    targets: Vec<Target>,
    /// Apps whose backend is not requested, with the reason (steps 7-10 not evaluated).
    unprobed: HashMap<AppKey, String>,
}

impl Prober {
    pub fn new(exporter: Arc<Exporter>) -> Self {
        Self::with_retry(exporter, RetryPolicy::default())
    }

    /// With a Graph retry policy of the caller's choosing (tests shorten the backoff).
    pub fn with_retry(exporter: Arc<Exporter>, retry: RetryPolicy) -> Self {
        let inventory = Refresher::new(exporter.graph_metrics.clone(), retry);
        Self {
            exporter,
            inventory,
            endpoint_log: ChangeLog::default(),
            proxy_log: proxy::ChangeLog::default(),
            catalog_note: None,
            backends: Arc::new(BackendStore::default()),
            scheduler: None,
            last: None,
        }
    }

    /// Runs forever: a host round at once, then every `probes.interval` (sooner after a
    /// reload); backends on their own schedule, each answer published as it comes.
    pub async fn run(mut self) {
        self.scheduler = Some(Scheduler::new(
            Arc::clone(&self.backends),
            self.exporter.backend_histogram.clone(),
        ));
        loop {
            // Rounds start every interval, whatever a round takes (within the interval).
            let started = tokio::time::Instant::now();
            let snapshot = self.round().await;
            let failing = snapshot
                .walks
                .iter()
                .filter(|w| w.failure.is_some())
                .count();
            tracing::debug!(apps = snapshot.walks.len(), failing, "probe round complete");
            self.publish(snapshot).await;
            let next = started + self.exporter.config().settings.probes.interval;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(next) => break,
                    () = self.exporter.wake.notified() => break,
                    () = self.backends.changed.notified() => {
                        // Answers come in bursts, and rendering a large tenant costs: publish at
                        // most once a second, but never hold up the next round for it.
                        let soon = tokio::time::Instant::now() + Duration::from_secs(1);
                        tokio::time::sleep_until(soon.min(next)).await;
                        if let Some(snapshot) = self.compose() {
                            self.publish(snapshot).await;
                        }
                    }
                }
            }
        }
    }

    /// Renders and publishes off the async workers, so probes' timings stay true.
    async fn publish(&self, snapshot: Snapshot) {
        let exporter = Arc::clone(&self.exporter);
        if let Err(error) = tokio::task::spawn_blocking(move || exporter.publish(snapshot)).await {
            tracing::error!(%error, "publishing a snapshot failed");
        }
    }

    /// One round of the host's probes with the config in force, composed with the latest
    /// backend answers (none yet, unless the scheduler runs or [`Prober::round_once`] asked).
    pub async fn round(&mut self) -> Snapshot {
        let config = self.exporter.config();
        let settings = &config.settings;
        let mut round_seconds = BTreeMap::new();

        let generation = self.exporter.generation();
        let (inventory, (endpoints, proxy, local_services, network_seconds)) = tokio::join!(
            self.inventory.refresh(settings, generation),
            probe_network(settings)
        );
        if let Some(seconds) = self.inventory.last_refresh_seconds {
            round_seconds.insert("inventory", seconds);
        }
        round_seconds.insert("endpoints", network_seconds);
        self.endpoint_log.record(&endpoints.results);
        self.proxy_log.record(&proxy);
        if endpoints.note != self.catalog_note {
            if let Some(note) = &endpoints.note {
                tracing::warn!(note = %note, "endpoint catalog");
            }
            self.catalog_note.clone_from(&endpoints.note);
        }

        let host = self.exporter.this_host();
        let (targets, unprobed) = backend_targets(&inventory, settings, &host, &proxy);
        if let Some(scheduler) = &mut self.scheduler {
            let concurrency = usize::try_from(settings.probes.concurrency).unwrap_or(usize::MAX);
            scheduler.sync(
                targets.clone(),
                settings.probes.backend.interval,
                concurrency,
            );
        }
        self.last = Some(HostRound {
            inventory,
            local_services,
            endpoints,
            proxy,
            round_seconds,
            host,
            targets,
            unprobed,
        });
        self.compose().unwrap_or_default()
    }

    /// A round that also requests every app's backend once and waits for the answers: for
    /// one-shot use (diagnose, tests), not for the running exporter.
    pub async fn round_once(&mut self) -> Snapshot {
        self.round().await;
        let targets = self
            .last
            .as_ref()
            .map(|l| l.targets.clone())
            .unwrap_or_default();
        let concurrency = usize::try_from(self.exporter.config().settings.probes.concurrency)
            .unwrap_or(usize::MAX);
        let histogram = self.exporter.backend_histogram.clone();
        let backends = Arc::clone(&self.backends);
        stream::iter(targets)
            .map(|target| async move {
                let (outcome, external) = backend::request_both(&target).await;
                (target, outcome, external)
            })
            .buffer_unordered(concurrency.max(1))
            .for_each(|(target, outcome, external)| {
                histogram
                    .with_label_values(&[&target.key.connector_group, &target.key.app])
                    .observe(outcome.seconds);
                backends.record(&target, outcome, external);
                async {}
            })
            .await;
        self.compose().unwrap_or_default()
    }

    /// The snapshot of the last host round with the latest backend answers.
    fn compose(&self) -> Option<Snapshot> {
        let last = self.last.as_ref()?;
        let config = self.exporter.config();
        let ratio = config.settings.probes.backend.timeout_risk_ratio;
        let host_steps = [
            (Step::PortTest, last.endpoints.port_test.clone()),
            (Step::RequiredEndpoints, last.endpoints.required.clone()),
            (Step::ForwardProxy, last.proxy.forward_proxy.clone()),
            (Step::ProxyConsistency, last.proxy.consistency.clone()),
        ];
        let inventory = &last.inventory.inventory;
        let host_is_connector = inventory
            .groups
            .iter()
            .any(|g| g.has_member(&last.host.machine));
        let local = last
            .local_services
            .as_deref()
            .and_then(|states| local::judge(states, host_is_connector));
        let walks = inventory
            .apps_to_walk(&last.host.groups, &last.host.machine)
            .into_iter()
            .map(|app| {
                let mut steps = StepResults::default();
                inventory.judge(app, &last.host, &mut steps);
                // The connector's services on this host: step 2 fails when they do not run.
                if let (Some(Outcome::Pass), Some(failed @ Outcome::Fail { .. })) =
                    (steps.get(Step::ConnectorInstalled), &local)
                {
                    steps.set(Step::ConnectorInstalled, failed.clone());
                }
                let key = AppKey {
                    connector_group: app.connector_group.clone().unwrap_or_default(),
                    app: app.name.clone(),
                };
                let backend = self.backends.get(&key);
                // Steps 3-6 are judged once for this host and shared by every app; 7-10 per
                // app, and an app's own answers may fail an earlier step for it alone (its
                // backend proxy's refusal, App Proxy's page saying no connector answered).
                for (step, outcome) in &host_steps {
                    if let Some(outcome) = outcome {
                        steps.set(*step, outcome.clone());
                    }
                }
                for (step, outcome) in backend::judge(backend.as_ref(), ratio) {
                    let earlier = step < Step::InternalUrl;
                    if !earlier || !outcome.passed() {
                        steps.set(step, outcome);
                    }
                }
                // What no probe can judge says so: a Private Access app is walked to step 2
                // only, a wildcard app without a concrete host has no page to load.
                let (unjudged, reason) = match (&app.publishing, last.unprobed.get(&key)) {
                    (Publishing::NotWebApp { reason }, _) => (&Step::ALL[2..], Some(reason)),
                    (Publishing::WebApp, reason) => (&Step::ALL[6..], reason),
                };
                if let Some(reason) = reason {
                    for step in unjudged {
                        steps.set(*step, Outcome::not_evaluated(reason.as_str()));
                    }
                }
                AppWalk {
                    connector_group: key.connector_group,
                    app: key.app,
                    failure: flow::walk(&steps),
                    steps,
                    backend,
                }
            })
            .collect();
        Some(Snapshot {
            complete: true,
            inventory: last.inventory.clone(),
            endpoints: last.endpoints.clone(),
            proxy: last.proxy.clone(),
            local_services: last.local_services.clone(),
            walks,
            round_seconds: last.round_seconds.clone(),
        })
    }
}

/// Steps 3-6: what the connector's files say about the proxy, every required endpoint by every
/// route, and the proxies in use.
async fn probe_network(
    settings: &Settings,
) -> (
    EndpointsState,
    ProxyState,
    Option<Vec<(&'static str, ServiceState)>>,
    f64,
) {
    let started = Instant::now();
    let probes = &settings.probes;
    let connector = settings.connector.clone();
    // Small files and a Service Control Manager query, blocking all the same: off the async
    // workers.
    let (services, local_services) =
        tokio::task::spawn_blocking(move || (proxy::read(&connector), local::services()))
            .await
            .unwrap_or_default();
    let candidate = proxy::candidate(&services, &settings.connector);
    let (list, note) = endpoints::catalog::endpoints(
        settings.cloud,
        settings.tenant_id.as_deref(),
        &probes.endpoints,
    );
    let routes = endpoints::routes(candidate.as_ref());
    let concurrency = usize::try_from(probes.concurrency).unwrap_or(usize::MAX);
    let issuers = &probes.endpoints.expected_issuers;
    // The proxy is tried with CONNECT to a core service endpoint, as the connector would.
    let target = list
        .iter()
        .find(|e| e.port == 443 && e.purpose == EndpointPurpose::Service)
        .or_else(|| list.iter().find(|e| e.port == 443));
    let (results, proxy_probes) = tokio::join!(
        endpoints::probe_all(&list, &routes, probes.timeout, concurrency, issuers),
        proxy::probe_proxies(&services, target, probes.timeout, issuers)
    );
    let endpoints = endpoints::judge(results, note);
    let proxy = proxy::judge(services, proxy_probes, &endpoints);
    (
        endpoints,
        proxy,
        local_services,
        started.elapsed().as_secs_f64(),
    )
}

/// What steps 7-10 request: every walked web app's internal URL, through the connector's proxy
/// when it sends backend requests through one (`UseDefaultProxyForBackendRequests`); and for
/// every web app that cannot be requested, why.
fn backend_targets(
    inventory: &InventoryState,
    settings: &Settings,
    host: &ThisHost,
    proxy: &ProxyState,
) -> (Vec<Target>, HashMap<AppKey, String>) {
    let backend = &settings.probes.backend;
    let through_proxy = settings
        .connector
        .use_default_proxy_for_backend_requests
        .or_else(proxy::registry::use_default_proxy_for_backend_requests)
        .unwrap_or(false);
    let connector_proxy = proxy
        .services
        .iter()
        .find_map(|(service, finding)| match finding {
            Finding::Known { choice, .. } if *service == Service::Connector => Some(choice.clone()),
            _ => None,
        });
    // With UseDefaultProxyForBackendRequests, backend requests take the connector's proxy, or
    // WinHTTP's when one is set (it overrides), except where the proxy's bypass rules say not.
    let backend_proxy = if through_proxy {
        proxy::sources::winhttp(&settings.connector).or_else(|| connector_proxy.clone())
    } else {
        None
    };
    let connector_proxy = connector_proxy.and_then(|c| c.proxy);
    let external = settings.probes.external.enabled;
    let mut targets = Vec::new();
    let mut unprobed = HashMap::new();
    let apps = inventory
        .inventory
        .apps_to_walk(&host.groups, &host.machine);
    for app in apps.into_iter().filter(|a| a.publishing.is_web_app()) {
        let key = AppKey {
            connector_group: app.connector_group.clone().unwrap_or_default(),
            app: app.name.clone(),
        };
        if !backend.enabled {
            unprobed.insert(key, "probes.backend.enabled is false".to_string());
            continue;
        }
        let urls = match wildcard::urls(app, &backend.wildcard_hosts) {
            Ok(urls) => urls,
            Err(reason) => {
                unprobed.insert(key, reason);
                continue;
            }
        };
        let proxy = backend_proxy.as_ref().and_then(|choice| {
            let bypassed =
                url::Url::parse(&urls.internal).is_ok_and(|u| choice.bypass.bypasses(&u));
            choice.proxy.clone().filter(|_| !bypassed)
        });
        let target = Target::new(
            key,
            &urls.internal,
            app.backend_certificate_validation,
            app.backend_timeout,
            backend,
            proxy,
        );
        let target = Target {
            pre_authenticated: app.pre_authenticated,
            ..target
        };
        targets.push(match &urls.external {
            Some(url) if external => target.with_external(url, connector_proxy.clone()),
            _ => target,
        });
    }
    (targets, unprobed)
}
