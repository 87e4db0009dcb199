//! The background prober: on its own interval it refreshes the inventory, runs every probe,
//! walks each app through the flowchart and publishes the result as one snapshot. Nothing here
//! is called from a scrape.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::config::Settings;
use crate::exporter::Exporter;
use crate::flow::{self, StepResults};
use crate::inventory::{self, Inventory};
use crate::store::{AppWalk, InventoryState, Snapshot};

/// Runs rounds forever: one at once, then one every `probes.interval`, or sooner after a reload.
pub async fn run(exporter: Arc<Exporter>) {
    loop {
        let snapshot = round(&exporter).await;
        let failing = snapshot
            .walks
            .iter()
            .filter(|w| w.failure.is_some())
            .count();
        tracing::debug!(apps = snapshot.walks.len(), failing, "probe round complete");
        exporter.store.publish(snapshot);
        let interval = exporter.config().settings.probes.interval;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = exporter.wake.notified() => {}
        }
    }
}

/// One complete round with the config in force.
pub async fn round(exporter: &Exporter) -> Snapshot {
    let config = exporter.config();
    let settings = &config.settings;
    let mut round_seconds = BTreeMap::new();

    let started = Instant::now();
    let inventory = refresh_inventory(settings);
    round_seconds.insert("inventory", started.elapsed().as_secs_f64());

    let walks = walk_apps(&inventory.inventory, settings, &exporter.machine_name());
    Snapshot {
        complete: true,
        inventory,
        walks,
        round_seconds,
    }
}

fn refresh_inventory(settings: &Settings) -> InventoryState {
    let inventory = settings
        .inventory
        .static_inventory
        .as_ref()
        .map(inventory::from_static)
        .unwrap_or_default();
    InventoryState {
        inventory,
        up: true,
        last_success: Some(SystemTime::now()),
    }
}

/// Gathers each app's step outcomes and walks the chart with them.
fn walk_apps(inventory: &Inventory, settings: &Settings, machine: &str) -> Vec<AppWalk> {
    inventory
        .apps_to_walk(&settings.connector.groups, machine)
        .into_iter()
        .map(|app| {
            let mut steps = StepResults::default();
            inventory.judge(app, &mut steps);
            AppWalk {
                connector_group: app.connector_group.clone().unwrap_or_default(),
                app: app.name.clone(),
                failure: flow::walk(&steps),
                steps,
            }
        })
        .collect()
}
