//! Keeps the inventory current: the static part on every round, the Graph part every
//! `inventory.refresh_interval` (and at once after a reload that changes how Graph is read).
//! A failed Graph refresh keeps the last good Graph inventory, sets `up` to false and is
//! logged once per distinct problem.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::graph::auth::AuthError;
use super::graph::{self, GraphMetrics, GraphSource, RetryPolicy};
use super::{Inventory, from_static};
use crate::config::Settings;
use crate::store::InventoryState;

/// The prober's inventory state between rounds.
pub struct Refresher {
    metrics: GraphMetrics,
    retry: RetryPolicy,
    /// The config generation the Graph source was built for.
    generation: Option<u64>,
    /// What the Graph source was built from: a reload that leaves it as it was keeps the
    /// source, its token and its inventory.
    built_from: Option<GraphKey>,
    source: Option<Result<GraphSource, AuthError>>,
    last_graph: Option<Inventory>,
    next_refresh: Option<Instant>,
    up: bool,
    last_success: Option<SystemTime>,
    /// The problem last logged, so a persisting one is logged once.
    last_problem: Option<String>,
    /// How long the last Graph refresh took.
    pub last_refresh_seconds: Option<f64>,
    /// The merged inventory of the last round, until the config or Graph's answer changes:
    /// rounds do not rebuild (and hold twice) what has not changed.
    merged: Option<Arc<Inventory>>,
}

impl Refresher {
    pub fn new(metrics: GraphMetrics, retry: RetryPolicy) -> Self {
        Self {
            metrics,
            retry,
            generation: None,
            built_from: None,
            source: None,
            last_graph: None,
            next_refresh: None,
            up: true,
            last_success: None,
            last_problem: None,
            last_refresh_seconds: None,
            merged: None,
        }
    }

    /// The inventory for this round. `generation` changes with every applied reload.
    pub async fn refresh(&mut self, settings: &Settings, generation: u64) -> InventoryState {
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            // The static part may have changed whatever Graph's settings did.
            self.merged = None;
            let key = GraphKey::of(settings);
            if self.built_from.as_ref() != Some(&key) {
                // Anyone who may POST /-/reload could otherwise make the exporter sign in
                // and read the whole tenant again, as often as they like.
                self.built_from = Some(key);
                self.next_refresh = None;
                self.source = None;
            }
        }
        let due = self.next_refresh.is_none_or(|at| Instant::now() >= at);
        // Built after a reload that changed how Graph is read, and again when due while
        // unusable: a missing secret file may have appeared since.
        if due && !matches!(self.source, Some(Ok(_)) if self.next_refresh.is_some()) {
            self.source =
                settings.inventory.graph.as_ref().map(|graph| {
                    GraphSource::new(settings, graph, self.metrics.clone(), self.retry)
                });
        }
        match &self.source {
            None => {
                self.up = true;
                self.last_success = Some(SystemTime::now());
                if self.last_graph.take().is_some() {
                    self.merged = None;
                }
            }
            Some(Err(problem)) => {
                self.next_refresh = Some(crate::clock::later(
                    Instant::now(),
                    settings.inventory.refresh_interval,
                ));
                let problem = format!("Microsoft Graph is not usable: {problem}");
                self.failed(problem, None);
            }
            Some(Ok(source)) if due => {
                let started = Instant::now();
                let result = source.fetch().await;
                self.last_refresh_seconds = Some(started.elapsed().as_secs_f64());
                self.next_refresh = Some(crate::clock::later(
                    Instant::now(),
                    settings.inventory.refresh_interval,
                ));
                match result {
                    Ok(inventory) => {
                        if self.last_problem.take().is_some() {
                            tracing::info!("Microsoft Graph inventory read again");
                        }
                        tracing::debug!(
                            groups = inventory.groups.len(),
                            apps = inventory.apps.len(),
                            seconds = started.elapsed().as_secs_f64(),
                            "Graph inventory refreshed"
                        );
                        self.last_graph = Some(inventory);
                        self.merged = None;
                        self.up = true;
                        self.last_success = Some(SystemTime::now());
                    }
                    Err(error) => {
                        let advice = graph::advice(&error);
                        self.failed(error.to_string(), advice);
                    }
                }
            }
            Some(Ok(_)) => {}
        }

        let inventory = self.merged.get_or_insert_with(|| {
            let static_part = settings
                .inventory
                .static_inventory
                .as_ref()
                .map(from_static)
                .unwrap_or_default();
            Arc::new(merge(self.last_graph.as_ref(), static_part))
        });
        InventoryState {
            inventory: Arc::clone(inventory),
            up: self.up,
            last_success: self.last_success,
        }
    }

    fn failed(&mut self, problem: String, advice: Option<&str>) {
        self.up = false;
        if self.last_problem.as_deref() == Some(problem.as_str()) {
            tracing::debug!(problem = %problem, "Graph inventory refresh failed again; keeping the last good inventory");
            return;
        }
        match advice {
            Some(advice) => {
                tracing::error!(problem = %problem, advice, "Graph inventory refresh failed; keeping the last good inventory")
            }
            None => {
                tracing::error!(problem = %problem, "Graph inventory refresh failed; keeping the last good inventory")
            }
        }
        self.last_problem = Some(problem);
    }
}

/// What a Graph source is built from: its settings, the tenant, the client's timeout, and the
/// credential files as they are now (a secret rotated in place is read by the next reload).
#[derive(Debug, PartialEq)]
struct GraphKey {
    graph: Option<crate::config::GraphSettings>,
    tenant: Option<String>,
    timeout: Duration,
    files: Vec<Option<(Option<SystemTime>, u64)>>,
}

impl GraphKey {
    fn of(settings: &Settings) -> GraphKey {
        let graph = settings.inventory.graph.clone();
        let files = graph
            .iter()
            .flat_map(|g| {
                [
                    &g.client_secret_file,
                    &g.certificate_file,
                    &g.private_key_file,
                ]
            })
            .flatten()
            .map(|path| {
                let metadata = std::fs::metadata(path).ok()?;
                Some((metadata.modified().ok(), metadata.len()))
            })
            .collect();
        GraphKey {
            graph,
            tenant: settings.tenant_id.clone(),
            timeout: settings.probes.timeout,
            files,
        }
    }
}

/// Graph's inventory with the static one added; Graph wins when both name a group or an app.
fn merge(graph: Option<&Inventory>, static_part: Inventory) -> Inventory {
    let Some(graph) = graph else {
        return static_part;
    };
    let mut merged = graph.clone();
    for group in static_part.groups {
        if merged.group(&group.name).is_none() {
            merged.groups.push(group);
        }
    }
    for app in static_part.apps {
        if !merged.apps.iter().any(|a| a.name == app.name) {
            merged.apps.push(app);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn graph_wins_on_a_name_clash_and_static_adds_the_rest() {
        let graph = inventory()
            .group(group("Default").connector(connector("CONN-01")))
            .app(app("intranet").in_group("Default"))
            .build();
        let static_part = inventory()
            .group(group("Default"))
            .group(group("Lab").connector(connector("LAB-01")))
            .app(app("intranet"))
            .app(app("lab-wiki").in_group("Lab"))
            .build();
        let merged = merge(Some(&graph), static_part);
        assert_eq!(merged.groups.len(), 2);
        assert_eq!(merged.group("Default").unwrap().connectors.len(), 1);
        assert_eq!(merged.apps.len(), 2);
        assert_eq!(merged.apps[0].connector_group.as_deref(), Some("Default"));
    }
}
