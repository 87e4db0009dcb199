//! The background prober: on its own interval it refreshes the inventory, runs every probe,
//! walks each app through the flowchart and publishes the result as one snapshot. Nothing here
//! is called from a scrape.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Instant;

use crate::config::Settings;
use crate::endpoints::{self, ChangeLog, EndpointsState};
use crate::exporter::Exporter;
use crate::flow::{self, Step, StepResults};
use crate::inventory::graph::RetryPolicy;
use crate::inventory::{Inventory, Refresher, ThisHost};
use crate::store::{AppWalk, Snapshot};

/// The prober and the state it keeps between rounds.
pub struct Prober {
    exporter: Arc<Exporter>,
    inventory: Refresher,
    endpoint_log: ChangeLog,
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
        let (inventory, (endpoints, endpoint_seconds)) = tokio::join!(
            self.inventory.refresh(settings, generation),
            probe_endpoints(settings)
        );
        if let Some(seconds) = self.inventory.last_refresh_seconds {
            round_seconds.insert("inventory", seconds);
        }
        round_seconds.insert("endpoints", endpoint_seconds);
        self.endpoint_log.record(&endpoints.results);
        if endpoints.note != self.catalog_note {
            if let Some(note) = &endpoints.note {
                tracing::warn!(note = %note, "endpoint catalog");
            }
            self.catalog_note.clone_from(&endpoints.note);
        }

        let walks = walk_apps(&inventory.inventory, &endpoints, &self.exporter.this_host());
        Snapshot {
            complete: true,
            inventory,
            endpoints,
            walks,
            round_seconds,
        }
    }
}

/// Steps 3-4: every required endpoint by every route.
async fn probe_endpoints(settings: &Settings) -> (EndpointsState, f64) {
    let started = Instant::now();
    let probes = &settings.probes;
    let (list, note) = endpoints::catalog::endpoints(
        settings.cloud,
        settings.tenant_id.as_deref(),
        &probes.endpoints,
    );
    let routes = endpoints::routes(settings);
    let concurrency = usize::try_from(probes.concurrency).unwrap_or(usize::MAX);
    let results = endpoints::probe_all(
        &list,
        &routes,
        probes.timeout,
        concurrency,
        &probes.endpoints.expected_issuers,
    )
    .await;
    (
        endpoints::judge(results, note),
        started.elapsed().as_secs_f64(),
    )
}

/// Gathers each app's step outcomes and walks the chart with them.
fn walk_apps(inventory: &Inventory, endpoints: &EndpointsState, host: &ThisHost) -> Vec<AppWalk> {
    inventory
        .apps_to_walk(&host.groups, &host.machine)
        .into_iter()
        .map(|app| {
            let mut steps = StepResults::default();
            inventory.judge(app, host, &mut steps);
            // Steps 3-4 are judged once for this host and shared by every app.
            for (step, outcome) in [
                (Step::PortTest, &endpoints.port_test),
                (Step::RequiredEndpoints, &endpoints.required),
            ] {
                if let Some(outcome) = outcome {
                    steps.set(step, outcome.clone());
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
