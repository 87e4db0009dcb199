//! The background prober: on its own interval it refreshes the inventory, runs every probe,
//! walks each app through the flowchart and publishes the result as one snapshot. Nothing here
//! is called from a scrape.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Instant;

use crate::config::Settings;
use crate::config::values::EndpointPurpose;
use crate::endpoints::{self, ChangeLog, EndpointsState};
use crate::exporter::Exporter;
use crate::flow::{self, Outcome, Step, StepResults};
use crate::inventory::graph::RetryPolicy;
use crate::inventory::{Inventory, Refresher, ThisHost};
use crate::proxy::{self, ProxyState};
use crate::store::{AppWalk, Snapshot};

/// The prober and the state it keeps between rounds.
pub struct Prober {
    exporter: Arc<Exporter>,
    inventory: Refresher,
    endpoint_log: ChangeLog,
    proxy_log: proxy::ChangeLog,
    /// The catalog note last logged, so it is said once per change.
    catalog_note: Option<String>,
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
        }
    }

    /// Runs rounds forever: one at once, then one every `probes.interval`, or sooner after a
    /// reload.
    pub async fn run(mut self) {
        loop {
            let snapshot = self.round().await;
            let failing = snapshot
                .walks
                .iter()
                .filter(|w| w.failure.is_some())
                .count();
            tracing::debug!(apps = snapshot.walks.len(), failing, "probe round complete");
            self.exporter.store.publish(snapshot);
            let interval = self.exporter.config().settings.probes.interval;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = self.exporter.wake.notified() => {}
            }
        }
    }

    /// One complete round with the config in force. Every kind of probe runs at once.
    pub async fn round(&mut self) -> Snapshot {
        let config = self.exporter.config();
        let settings = &config.settings;
        let mut round_seconds = BTreeMap::new();

        let generation = self.exporter.generation();
        let (inventory, (endpoints, proxy, network_seconds)) = tokio::join!(
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

        let host_steps = [
            (Step::PortTest, endpoints.port_test.clone()),
            (Step::RequiredEndpoints, endpoints.required.clone()),
            (Step::ForwardProxy, proxy.forward_proxy.clone()),
            (Step::ProxyConsistency, proxy.consistency.clone()),
        ];
        let walks = walk_apps(
            &inventory.inventory,
            &host_steps,
            &self.exporter.this_host(),
        );
        Snapshot {
            complete: true,
            inventory,
            endpoints,
            proxy,
            walks,
            round_seconds,
        }
    }
}

/// Steps 3-6: what the connector's files say about the proxy, every required endpoint by every
/// route, and the proxies in use.
async fn probe_network(settings: &Settings) -> (EndpointsState, ProxyState, f64) {
    let started = Instant::now();
    let probes = &settings.probes;
    let connector = settings.connector.clone();
    // Small files, but file I/O all the same: off the async workers.
    let services = tokio::task::spawn_blocking(move || proxy::read(&connector))
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
    (endpoints, proxy, started.elapsed().as_secs_f64())
}

/// Gathers each app's step outcomes and walks the chart with them.
fn walk_apps(
    inventory: &Inventory,
    host_steps: &[(Step, Option<Outcome>)],
    host: &ThisHost,
) -> Vec<AppWalk> {
    inventory
        .apps_to_walk(&host.groups, &host.machine)
        .into_iter()
        .map(|app| {
            let mut steps = StepResults::default();
            inventory.judge(app, host, &mut steps);
            // Steps 3-6 are judged once for this host and shared by every app.
            for (step, outcome) in host_steps {
                if let Some(outcome) = outcome {
                    steps.set(*step, outcome.clone());
                }
            }
            AppWalk {
                connector_group: app.connector_group.clone().unwrap_or_default(),
                app: app.name.clone(),
                failure: flow::walk(&steps),
                steps,
            }
        })
        .collect()
}
