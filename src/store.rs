//! The latest results, in memory. The background prober publishes a whole new [`Snapshot`]
//! after each round; `/metrics`, the page and the API only read the current one, so a scrape
//! never waits for a probe.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::body::Bytes;
use serde::Serialize;

use crate::backend::AppBackend;
use crate::endpoints::EndpointsState;
use crate::flow::{Failure, StepResults};
use crate::inventory::Inventory;
use crate::inventory::local::ServiceState;
use crate::proxy::ProxyState;

/// One app's walk through the flowchart.
#[derive(Debug, Clone, Serialize)]
pub struct AppWalk {
    /// The group the app is assigned to, or empty when it has none.
    pub connector_group: String,
    pub app: String,
    pub steps: StepResults,
    /// Where the walk stops; `None` when every evaluated step passes.
    pub failure: Option<Failure>,
    /// The latest requests to the app's internal URL (steps 7-9), once there is one.
    #[serde(skip)]
    pub backend: Option<AppBackend>,
}

/// The inventory as last refreshed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InventoryState {
    pub inventory: Inventory,
    /// Whether the last refresh succeeded.
    pub up: bool,
    pub last_success: Option<SystemTime>,
}

/// Everything one probe round found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// False until the first complete round; `/-/ready` answers 503 until then.
    pub complete: bool,
    pub inventory: InventoryState,
    /// Steps 3-4, from this host.
    pub endpoints: EndpointsState,
    /// Steps 5-6, from this host.
    pub proxy: ProxyState,
    /// The connector's Windows services on this host (step 2's local part); `None` elsewhere.
    pub local_services: Option<Vec<(&'static str, ServiceState)>>,
    /// The connector host's own health (trust certificate, event log, version, TLS, Kerberos).
    pub host: crate::host::HostHealth,
    pub walks: Vec<AppWalk>,
    /// How long the last round of each kind of probe took, in seconds.
    pub round_seconds: BTreeMap<&'static str, f64>,
}

/// Holds the latest snapshot and its rendered metrics; cheap to read from any thread.
#[derive(Debug, Default)]
pub struct Store {
    latest: RwLock<Arc<Snapshot>>,
    /// The snapshot's families as exposition text, rendered when it was published.
    exposition: RwLock<Bytes>,
}

impl Store {
    pub fn latest(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc; the value is whole.
        match self.latest.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The latest snapshot's metrics text (a cheap, shared copy).
    pub fn exposition(&self) -> Bytes {
        match self.exposition.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `snapshot` and its rendered `exposition` the latest, together.
    pub fn publish(&self, snapshot: Snapshot, exposition: String) {
        let snapshot = Arc::new(snapshot);
        let mut latest = self
            .latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = self
            .exposition
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *latest = snapshot;
        *text = Bytes::from(exposition);
    }
}
