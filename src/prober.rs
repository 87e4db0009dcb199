//! The background prober: on its own interval it refreshes the inventory, runs every probe,
//! walks each app through the flowchart and publishes the result as one snapshot. Nothing here
//! is called from a scrape.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::exporter::Exporter;
use crate::flow::{self, StepResults};
use crate::inventory::graph::RetryPolicy;
use crate::inventory::{Inventory, Refresher, ThisHost};
use crate::store::{AppWalk, Snapshot};

/// The prober and the state it keeps between rounds.
pub struct Prober {
    exporter: Arc<Exporter>,
    inventory: Refresher,
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

    /// One complete round with the config in force.
    pub async fn round(&mut self) -> Snapshot {
        let config = self.exporter.config();
        let settings = &config.settings;
        let mut round_seconds = BTreeMap::new();

        let inventory = self
            .inventory
            .refresh(settings, self.exporter.generation())
            .await;
        if let Some(seconds) = self.inventory.last_refresh_seconds {
            round_seconds.insert("inventory", seconds);
        }

        let walks = walk_apps(&inventory.inventory, &self.exporter.this_host());
        Snapshot {
            complete: true,
            inventory,
            walks,
            round_seconds,
        }
    }
}

/// Gathers each app's step outcomes and walks the chart with them.
fn walk_apps(inventory: &Inventory, host: &ThisHost) -> Vec<AppWalk> {
    inventory
        .apps_to_walk(&host.groups, &host.machine)
        .into_iter()
        .map(|app| {
            let mut steps = StepResults::default();
            inventory.judge(app, host, &mut steps);
            AppWalk {
                connector_group: app.connector_group.clone().unwrap_or_default(),
                app: app.name.clone(),
                failure: flow::walk(&steps),
                steps,
            }
        })
        .collect()
}
