//! The background prober: on its own interval it refreshes the inventory and runs the host's
//! probes (steps 3-6), while every app's backend is requested on its own schedule (steps 7-9).
//! Each time either finishes, the walks are composed again and published as one snapshot.
//! Nothing here is called from a scrape.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};

use crate::backend::{self, BackendStore, Scheduler, Target, segments, wildcard};
use crate::background::Background;
use crate::config::Settings;
use crate::config::values::EndpointPurpose;
use crate::endpoints::{self, ChangeLog, EndpointsState};
use crate::exporter::Exporter;
use crate::host::{self, HostHealth, eventlog::EventLogMonitor};
use crate::inventory::graph::RetryPolicy;
use crate::inventory::local::{self, ServiceState};
use crate::inventory::{Refresher, ThisHost};
use crate::platform::deadline::Pending;
use crate::proxy::{self, Finding, ProxyState, Service};
use crate::store::{InventoryState, Snapshot};
use crate::verdict::{self, Evidence};
use crate::walk::{AppKey, Outcome};

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
    last: Option<Arc<HostRound>>,
    /// The read of the connector's files still running past its round, if one is.
    host_read: Pending<HostFacts>,
    /// The host checks' reads still running past their round, if they are.
    host_checks: Pending<Option<host::LocalChecks>>,
    /// The connector's event logs, read on from where the last round stopped.
    event_log: Arc<std::sync::Mutex<EventLogMonitor>>,
    /// The capacity check's previous CPU reading.
    capacity: Arc<std::sync::Mutex<host::capacity::CapacityMonitor>>,
    /// Where the walks are composed and rendered, below the workers' priority.
    publisher: Background,
}

/// What a round found that is not per app.
struct HostRound {
    inventory: Arc<InventoryState>,
    local_services: Option<Vec<(&'static str, ServiceState)>>,
    endpoints: Arc<EndpointsState>,
    proxy: Arc<ProxyState>,
    round_seconds: BTreeMap<&'static str, f64>,
    /// When the round finished.
    finished: std::time::SystemTime,
    host: ThisHost,
    targets: Vec<Arc<Target>>,
    /// Apps whose backend is not requested, with the reason (steps 7-10 not evaluated),
    /// shared by every snapshot composed from the round.
    unprobed: HashMap<AppKey, Outcome>,
    /// The connector host's own health (steps 2, 4, 7).
    host_health: Arc<HostHealth>,
    /// Private Access apps' segments as this host reached them (step 8).
    segments: Arc<segments::Reports>,
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
            host_read: Pending::default(),
            host_checks: Pending::default(),
            event_log: Arc::default(),
            capacity: Arc::default(),
            publisher: Background::start("publish"),
        }
    }

    /// Runs forever: a host round at once, then every `probes.interval` (sooner after a
    /// reload); backends on their own schedule, each answer published as it comes.
    pub async fn run(mut self) {
        self.scheduler = Some(Scheduler::new(
            Arc::clone(&self.backends),
            &self.exporter.tasks,
        ));
        loop {
            // Rounds start every interval, whatever a round takes (within the interval).
            let started = tokio::time::Instant::now();
            self.probe_host().await;
            self.compose_and_publish().await;
            let next =
                crate::clock::later_tokio(started, self.exporter.config().settings.probes.interval);
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(next) => break,
                    () = self.exporter.wake.notified() => break,
                    () = self.backends.changed.notified() => {
                        // Answers come in bursts, and rendering a large tenant costs: publish at
                        // most once a second, but never hold up the next round for it.
                        let soon = tokio::time::Instant::now() + Duration::from_secs(1);
                        tokio::time::sleep_until(soon.min(next)).await;
                        self.compose_and_publish().await;
                    }
                }
            }
        }
    }

    /// One round of the host's probes with the config in force, composed with the latest
    /// backend answers (none yet, unless the scheduler runs or [`Prober::round_once`] asked).
    pub async fn round(&mut self) -> Snapshot {
        self.probe_host().await;
        self.compose().unwrap_or_default()
    }

    /// Probes the host and refreshes the inventory: the round without its walks.
    async fn probe_host(&mut self) {
        let config = self.exporter.config();
        let settings = &config.settings;
        let mut round_seconds = BTreeMap::new();

        let generation = self.exporter.generation();
        let (inventory, (endpoints, proxy, local_services, network_seconds)) = tokio::join!(
            self.inventory.refresh(settings, generation),
            probe_network(settings, generation, &mut self.host_read)
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
        let started = Instant::now();
        let input = host_input(&inventory, settings, &host, local_services.as_deref());
        let host_health = host::check_all(
            input,
            Arc::clone(&self.event_log),
            Arc::clone(&self.capacity),
            &mut self.host_checks,
            generation,
        )
        .await;
        round_seconds.insert("host", started.elapsed().as_secs_f64());
        let started = Instant::now();
        let segments = probe_segments(&inventory, settings, &host).await;
        if !segments.is_empty() {
            round_seconds.insert("segments", started.elapsed().as_secs_f64());
        }
        let previous = self.last.as_ref().map(|l| l.targets.as_slice());
        let (targets, unprobed) = backend_targets(
            &inventory,
            settings,
            &host,
            &proxy,
            previous.unwrap_or_default(),
        );
        if let Some(scheduler) = &mut self.scheduler {
            let concurrency = usize::try_from(settings.probes.concurrency).unwrap_or(usize::MAX);
            scheduler.sync(&targets, settings.probes.backend.interval, concurrency);
        }
        self.last = Some(Arc::new(HostRound {
            inventory: Arc::new(inventory),
            local_services,
            endpoints: Arc::new(endpoints),
            proxy: Arc::new(proxy),
            round_seconds,
            finished: std::time::SystemTime::now(),
            host,
            targets,
            unprobed,
            segments: Arc::new(segments),
            host_health: Arc::new(host_health),
        }));
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
        let backends = Arc::clone(&self.backends);
        stream::iter(targets)
            .map(|target| async move {
                let answered = backend::request_both(&target).await;
                (target, answered)
            })
            .buffer_unordered(concurrency.max(1))
            .for_each(|(target, answered)| {
                backends.record(&target, answered);
                async {}
            })
            .await;
        self.compose().unwrap_or_default()
    }

    /// The snapshot of the last host round with the latest backend answers.
    fn compose(&self) -> Option<Snapshot> {
        let last = self.last.as_ref()?;
        Some(compose(last, &self.exporter, &self.backends))
    }

    /// Composes and publishes off the async workers, on the publishing thread: at 10,000 apps
    /// both take tens of milliseconds of CPU, which on a worker would delay the backend
    /// answers being timed and the scrapes being served.
    async fn compose_and_publish(&self) {
        let Some(last) = self.last.clone() else {
            return;
        };
        let exporter = Arc::clone(&self.exporter);
        let backends = Arc::clone(&self.backends);
        let published = self.publisher.run(move || {
            let snapshot = compose(&last, &exporter, &backends);
            let failing = snapshot
                .walks
                .apps
                .iter()
                .filter(|w| w.failure.is_some())
                .count();
            tracing::debug!(apps = snapshot.walks.apps.len(), failing, "walks composed");
            exporter.publish(snapshot);
        });
        if published.await.is_none() {
            // The publishing thread caught a panic (its message went to standard error).
            self.exporter.tasks.caught(
                "publish",
                "publishing a snapshot failed; the last one is still served",
            );
        }
    }
}

/// The snapshot of host round `last` with the latest backend answers.
fn compose(last: &HostRound, exporter: &Exporter, backends: &BackendStore) -> Snapshot {
    let config = exporter.config();
    let answers = backends.answers();
    let timeouts: HashMap<AppKey, Duration> = last
        .targets
        .iter()
        .map(|t| (t.key.clone(), t.threshold))
        .collect();
    let walks = verdict::decide(&Evidence {
        inventory: &last.inventory.inventory,
        host: &last.host,
        services: last.local_services.as_deref(),
        endpoints: &last.endpoints,
        proxy: &last.proxy,
        host_checks: &last.host_health,
        backends: &answers,
        unprobed: &last.unprobed,
        segments: last.segments.as_ref(),
        segments_enabled: config.settings.probes.segments.enabled,
        timeouts: &timeouts,
        risk_ratio: config.settings.probes.backend.timeout_risk_ratio,
    });
    Snapshot {
        complete: true,
        inventory: Arc::clone(&last.inventory),
        endpoints: Arc::clone(&last.endpoints),
        proxy: Arc::clone(&last.proxy),
        local_services: last.local_services.clone(),
        host: Arc::clone(&last.host_health),
        walks,
        round_seconds: last.round_seconds.clone(),
        round_finished: BTreeMap::from_iter(
            ["inventory", "endpoints", "proxy"]
                .map(|kind| (kind, last.finished))
                .into_iter()
                .chain(backends.last_answer().map(|at| ("backend", at))),
        ),
    }
}

/// Step 8 of the Private Access apps this host walks: their segments, planned with
/// `probes.segments` and probed within `probes.timeout`, `probes.concurrency` at once.
async fn probe_segments(
    inventory: &InventoryState,
    settings: &Settings,
    host: &ThisHost,
) -> segments::Reports {
    let config = &settings.probes.segments;
    if !config.enabled {
        return segments::Reports::new();
    }
    let plans = inventory
        .inventory
        .apps_to_walk(&host.groups, &host.machine)
        .into_iter()
        .filter_map(|app| {
            let read = app.segments.as_deref()?;
            Some((
                app.key(),
                segments::plan_of(read, config),
                segments::unreadable(read),
            ))
        })
        .collect();
    let concurrency = usize::try_from(settings.probes.concurrency).unwrap_or(usize::MAX);
    segments::probe_apps(plans, settings.probes.timeout, concurrency).await
}

/// Steps 3-6: what the connector's files say about the proxy, every required endpoint by every
/// route, the proxies in use, and the certificate endpoints by the system context's route.
async fn probe_network(
    settings: &Settings,
    generation: u64,
    host_read: &mut Pending<HostFacts>,
) -> (
    EndpointsState,
    ProxyState,
    Option<Vec<(&'static str, ServiceState)>>,
    f64,
) {
    let started = Instant::now();
    let probes = &settings.probes;
    let (services, local_services) = read_host(settings, generation, host_read).await;
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
    let system = proxy::sources::system_route(&settings.connector);
    let (results, proxy_probes, certificates) = tokio::join!(
        endpoints::probe_all(&list, &routes, probes.timeout, concurrency, issuers),
        proxy::probe_proxies(&services, target, probes.timeout, issuers),
        proxy::probe_certificate_route(
            system,
            &list,
            &routes,
            probes.timeout,
            concurrency,
            issuers
        )
    );
    let endpoints = endpoints::judge(results, note);
    let proxy = proxy::judge(services, proxy_probes, &endpoints, &certificates);
    (
        endpoints,
        proxy,
        local_services,
        started.elapsed().as_secs_f64(),
    )
}

/// How long the connector's files and services may take to read before a round goes on
/// without them.
const HOST_READ_LIMIT: Duration = crate::platform::deadline::READ_LIMIT;

type HostFacts = (
    Vec<(Service, Finding)>,
    Option<Vec<(&'static str, ServiceState)>>,
);

/// Reads the connector's `.exe.config` files and services, waiting at most
/// [`HOST_READ_LIMIT`]: past that, steps 5 and 6 are not evaluated and say why.
async fn read_host(
    settings: &Settings,
    generation: u64,
    pending: &mut Pending<HostFacts>,
) -> HostFacts {
    let connector = settings.connector.clone();
    let read = move || (proxy::read(&connector), local::services());
    match pending.wait(generation, HOST_READ_LIMIT, read).await {
        Ok(facts) => facts,
        Err(waited) => {
            let why = format!(
                "config files were still being read after {} s (a network share that does not answer?); the read goes on, and the next round uses it if it finishes",
                waited.as_secs()
            );
            let unread = |service| (service, Finding::Unread { why: why.clone() });
            (
                vec![unread(Service::Connector), unread(Service::Updater)],
                None,
            )
        }
    }
}

/// What the connector host's checks need from this round: this host's connector and groups,
/// and the walked apps that sign in with Kerberos.
fn host_input(
    inventory: &InventoryState,
    settings: &Settings,
    host: &ThisHost,
    services: Option<&[(&'static str, ServiceState)]>,
) -> host::HostInput {
    let inventory = &inventory.inventory;
    let group_versions = inventory
        .groups
        .iter()
        .filter(|g| g.has_member(&host.machine))
        .flat_map(|g| g.connectors.iter().map(|c| c.version.clone()))
        .collect();
    let kerberos_apps = inventory
        .apps_to_walk(&host.groups, &host.machine)
        .into_iter()
        .filter(|a| a.publishing.is_web_app())
        .filter_map(|a| {
            Some(host::kerberos::KerberosApp {
                connector_group: a.connector_group.as_deref().unwrap_or_default().to_string(),
                app: a.name.to_string(),
                spn: a.kerberos_spn.clone()?,
            })
        })
        .collect();
    host::HostInput {
        service_config: settings.connector.service_config.clone(),
        connector_installed: services
            .map(|s| s.iter().any(|(_, state)| *state != ServiceState::Missing)),
        group_versions,
        releases: host::releases::ReleaseList::from_settings(&settings.connector.releases),
        services: services.map(<[_]>::to_vec),
        kerberos_apps,
        timeout: settings.probes.timeout,
        read_limit: HOST_READ_LIMIT,
    }
}

/// What steps 7-10 request: every walked web app's internal URL, through the connector's proxy
/// when it sends backend requests through one (`UseDefaultProxyForBackendRequests`); and for
/// every web app that cannot be requested, why. A target equal to one of `previous` is that
/// one, shared: a round does not hold a second copy of what did not change.
fn backend_targets(
    inventory: &InventoryState,
    settings: &Settings,
    host: &ThisHost,
    proxy: &ProxyState,
    previous: &[Arc<Target>],
) -> (Vec<Arc<Target>>, HashMap<AppKey, Outcome>) {
    let previous: HashMap<&AppKey, &Arc<Target>> = previous.iter().map(|t| (&t.key, t)).collect();
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
        let key = app.key();
        if !backend.enabled {
            unprobed.insert(
                key,
                Outcome::not_evaluated("probes.backend.enabled is false"),
            );
            continue;
        }
        let requests = match wildcard::requests(app, &backend.wildcard_hosts) {
            Ok(requests) => requests,
            Err(reason) => {
                unprobed.insert(key, Outcome::not_evaluated(reason.to_string()));
                continue;
            }
        };
        let proxy_for = |internal: &str| {
            backend_proxy.as_ref().and_then(|choice| {
                let bypassed = url::Url::parse(internal).is_ok_and(|u| choice.bypass.bypasses(&u));
                choice.proxy.clone().filter(|_| !bypassed)
            })
        };
        // "Translate URLs in headers" off: App Proxy passes the user's Host, the external one,
        // to the backend.
        let host_header = |external: Option<&str>| {
            (!app.translate_host_header)
                .then(|| external.and_then(host_header_of))
                .flatten()
        };
        // A wildcard app judged by its segments is requested at each; step 10 asks the first
        // segment's external URL.
        let Some(urls) = requests.urls.first() else {
            continue;
        };
        let proxy = proxy_for(&urls.internal);
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
            custom_domain_certificate: app.custom_domain_certificate.clone(),
            // "Translate URLs in headers" off: App Proxy passes the user's Host, the external
            // one, to the backend.
            host_header: host_header(urls.external.as_deref()),
            segments: if requests.from_segments {
                requests
                    .urls
                    .iter()
                    .map(|u| {
                        backend::SegmentRequest::new(
                            &u.internal,
                            host_header(u.external.as_deref()),
                            proxy_for(&u.internal),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
            segments_not_requested: requests.not_requested,
            ..target
        };
        let target = match &urls.external {
            Some(url) if external => target.with_external(url, connector_proxy.clone()),
            _ => target,
        };
        targets.push(match previous.get(&target.key) {
            Some(same) if ***same == target => Arc::clone(same),
            _ => Arc::new(target),
        });
    }
    (targets, unprobed)
}

/// The Host header a browser sends for `url`: its host, with its port when not the scheme's.
fn host_header_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}
