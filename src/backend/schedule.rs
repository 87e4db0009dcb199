//! The per-app schedule of steps 7-10's requests: one task per app, each requesting its
//! backend every `probes.backend.interval`, at most `probes.concurrency` at once. A hanging
//! backend holds only its own task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus::HistogramVec;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{AppKey, BackendStore, Target, request_both};

/// One task per app, each requesting its backend every `probes.backend.interval`, at most
/// `probes.concurrency` at once.
pub struct Scheduler {
    store: Arc<BackendStore>,
    histogram: HistogramVec,
    semaphore: Arc<Semaphore>,
    concurrency: usize,
    tasks: HashMap<AppKey, (Target, Duration, JoinHandle<()>)>,
}

impl Scheduler {
    pub fn new(store: Arc<BackendStore>, histogram: HistogramVec) -> Scheduler {
        Scheduler {
            store,
            histogram,
            semaphore: Arc::new(Semaphore::new(0)),
            concurrency: 0,
            tasks: HashMap::new(),
        }
    }

    /// Makes the running tasks match `targets`: new apps start, gone or changed ones stop.
    pub fn sync(&mut self, targets: Vec<Target>, interval: Duration, concurrency: usize) {
        if concurrency != self.concurrency {
            // A new bound applies to every task: restart them all under it.
            self.stop_all();
            self.semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
            self.concurrency = concurrency;
        }
        let wanted: HashMap<AppKey, Target> =
            targets.into_iter().map(|t| (t.key.clone(), t)).collect();
        self.tasks.retain(|key, (target, every, handle)| {
            let keep = wanted
                .get(key)
                .is_some_and(|t| t == target && *every == interval);
            if !keep {
                handle.abort();
            }
            keep
        });
        for (key, target) in wanted {
            if self.tasks.contains_key(&key) {
                continue;
            }
            let handle = tokio::spawn(app_loop(
                target.clone(),
                interval,
                Arc::clone(&self.store),
                Arc::clone(&self.semaphore),
                self.histogram.clone(),
            ));
            self.tasks.insert(key, (target, interval, handle));
        }
        let tasks = &self.tasks;
        self.store.retain(|key| tasks.contains_key(key));
        // Histogram series of apps no longer probed go too.
        let families = prometheus::core::Collector::collect(&self.histogram);
        let gone: Vec<AppKey> = families
            .iter()
            .flat_map(|family| family.get_metric().iter())
            .map(|metric| {
                let label = |name: &str| {
                    metric
                        .get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_string())
                        .unwrap_or_default()
                };
                AppKey {
                    connector_group: label("connector_group"),
                    app: label("app"),
                }
            })
            .filter(|key| !tasks.contains_key(key))
            .collect();
        for key in gone {
            let _ = self
                .histogram
                .remove_label_values(&[key.connector_group.as_str(), key.app.as_str()]);
        }
    }

    pub fn stop_all(&mut self) {
        for (_, (_, _, handle)) in self.tasks.drain() {
            handle.abort();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop_all();
    }
}

async fn app_loop(
    target: Target,
    interval: Duration,
    store: Arc<BackendStore>,
    semaphore: Arc<Semaphore>,
    histogram: HistogramVec,
) {
    loop {
        let (outcome, external) = {
            let Ok(_permit) = semaphore.acquire().await else {
                return;
            };
            request_both(&target).await
        };
        if let Some(failure) = &outcome.failure {
            tracing::debug!(group = %target.key.connector_group, app = %target.key.app, phase = failure.phase.label(), failure = %failure, "backend request failed");
        }
        histogram
            .with_label_values(&[&target.key.connector_group, &target.key.app])
            .observe(outcome.seconds);
        store.record(&target, outcome, external);
        store.changed.notify_one();
        tokio::time::sleep(interval).await;
    }
}
