//! The running exporter's shared state: the config in force, how the last reload went, and the
//! store the prober fills. HTTP handlers, signal handlers and the prober all hold an `Arc` of it.
//! Reloads are taken one at a time, and those asked for while one runs share the next one: a
//! slow reload of an older file can never finish after, and replace, a newer one.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::config::values::AutoOr;
use crate::config::{self, ConfigError, Loaded};
use crate::inventory::ThisHost;
use crate::inventory::graph::GraphMetrics;
use crate::store::Store;
use crate::supervise::Tasks;

/// How the last reload went, for `appproxy_exporter_config_last_reload_*`.
#[derive(Debug, Clone, Copy)]
pub struct ReloadStatus {
    pub successful: bool,
    pub last_success: SystemTime,
}

#[derive(Debug)]
pub struct Exporter {
    config_file: Option<PathBuf>,
    loaded: RwLock<Arc<Loaded>>,
    reload_status: Mutex<ReloadStatus>,
    /// Reloads asked for so far; a reload started after a request was counted answers it.
    reloads_asked: AtomicU64,
    /// Held while a reload reads and applies the file: the count it answers up to, and how it went.
    reloading: Mutex<(u64, Result<(), Arc<ConfigError>>)>,
    /// Counts applied configurations, so the prober notices a reload.
    generation: AtomicU64,
    pub store: Store,
    /// Cumulative Graph request metrics, kept across reloads.
    pub graph_metrics: GraphMetrics,
    /// Wakes the prober early, after a reload.
    pub(crate) wake: Notify,
    /// The background tasks' panics, and which are down.
    pub tasks: Tasks,
    host_name: String,
}

impl Exporter {
    /// `loaded` must come from `config_file` (or be the defaults when there is none).
    pub fn new(loaded: Loaded) -> Arc<Self> {
        Arc::new(Self {
            config_file: loaded.file.clone(),
            loaded: RwLock::new(Arc::new(loaded)),
            reload_status: Mutex::new(ReloadStatus {
                successful: true,
                last_success: SystemTime::now(),
            }),
            generation: AtomicU64::new(0),
            reloads_asked: AtomicU64::new(0),
            reloading: Mutex::new((0, Ok(()))),
            store: Store::default(),
            graph_metrics: GraphMetrics::default(),
            wake: Notify::new(),
            tasks: Tasks::new(),
            host_name: gethostname::gethostname().to_string_lossy().into_owned(),
        })
    }

    /// Renders `snapshot`'s metrics and makes both the latest. CPU work on large tenants:
    /// the prober calls it off the async workers.
    pub fn publish(&self, snapshot: crate::store::Snapshot) {
        let text = crate::metrics::render_snapshot(&snapshot, &self.config().settings);
        self.store.publish(snapshot, text);
        crate::memory::release_freed();
    }

    /// Changes whenever a reload applies a new configuration.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn reload_status(&self) -> ReloadStatus {
        match self.reload_status.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Re-reads the config file. A file that does not load leaves the config in force as it
    /// was; either way the outcome is recorded for the reload metrics and logged. Blocking:
    /// one reload reads at a time, and a call made while one runs waits for the next one and
    /// shares its outcome, however many are made (a flood of POST /-/reload reads the file
    /// twice, not once per request).
    pub fn reload(&self) -> Result<(), Arc<ConfigError>> {
        let asked = self.reloads_asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut reloading = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if reloading.0 >= asked {
            // A reload that started after this call was made has finished meanwhile.
            return reloading.1.clone();
        }
        let answers = self.reloads_asked.load(Ordering::SeqCst);
        let outcome = self.load_and_apply().map_err(Arc::new);
        *reloading = (answers, outcome.clone());
        outcome
    }

    fn load_and_apply(&self) -> Result<(), ConfigError> {
        let result = config::load(self.config_file.as_deref());
        let mut status = match self.reload_status.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match result {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    tracing::warn!("{warning}");
                }
                tracing::info!(config = %loaded, "configuration reloaded");
                match self.loaded.write() {
                    Ok(mut guard) => *guard = Arc::new(loaded),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
                }
                self.generation.fetch_add(1, Ordering::Relaxed);
                *status = ReloadStatus {
                    successful: true,
                    last_success: SystemTime::now(),
                };
                self.wake.notify_one();
                Ok(())
            }
            Err(error) => {
                tracing::error!(error = %error, "reload failed; keeping the previous configuration");
                status.successful = false;
                Err(error)
            }
        }
    }

    /// Which connector this host is: `connector.machine_name`, or the host name for `auto`.
    pub fn machine_name(&self) -> String {
        self.this_host().machine
    }

    /// This host's identity and the groups it serves, per the config in force.
    pub fn this_host(&self) -> ThisHost {
        let config = self.config();
        let connector = &config.settings.connector;
        let machine = match &connector.machine_name {
            AutoOr::Auto => self.host_name.clone(),
            AutoOr::Value(name) => name.clone(),
        };
        ThisHost {
            machine,
            groups: connector.groups.clone(),
        }
    }
}
