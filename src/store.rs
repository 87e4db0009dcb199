//! The latest results, in memory. The background prober publishes a whole new [`Snapshot`]
//! after each round; `/metrics`, the page and the API only read the current one, so a scrape
//! never waits for a probe.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::exposition::gzip::OpenMember;
use serde::Serialize;

use crate::backend::AppBackend;
use crate::endpoints::EndpointsState;
use crate::flow::{Failure, Outcome, Step, StepResults};
use crate::inventory::Inventory;
use crate::inventory::local::ServiceState;
use crate::proxy::ProxyState;

/// One app's walk through the flowchart.
#[derive(Debug, Clone, Serialize)]
pub struct AppWalk {
    /// The group the app is assigned to, or empty when it has none; shared with the app's
    /// [`crate::backend::AppKey`].
    pub connector_group: Arc<str>,
    pub app: Arc<str>,
    pub steps: StepResults,
    /// Where the walk stops; `None` when every evaluated step passes.
    pub failure: Option<Failure>,
    /// The latest requests to the app's internal URL (steps 7-9), once there is one.
    #[serde(skip)]
    pub backend: Option<Arc<AppBackend>>,
    /// The app's backend timeout, when its internal URL is requested: its latency histogram
    /// is served from the start, at zero.
    #[serde(skip)]
    pub backend_timeout: Option<std::time::Duration>,
}

/// The inventory as last refreshed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InventoryState {
    /// Shared from round to round while neither the config nor Graph's answer changes.
    pub inventory: Arc<Inventory>,
    /// Whether the last refresh succeeded.
    pub up: bool,
    pub last_success: Option<SystemTime>,
}

/// Everything one probe round found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// False until the first complete round; `/-/ready` answers 503 until then.
    pub complete: bool,
    /// The round's results are shared by every snapshot composed from the round.
    pub inventory: Arc<InventoryState>,
    /// Steps 3-4, from this host.
    pub endpoints: Arc<EndpointsState>,
    /// Steps 5-6, from this host.
    pub proxy: Arc<ProxyState>,
    /// The connector's Windows services on this host (step 2's local part); `None` elsewhere.
    pub local_services: Option<Vec<(&'static str, ServiceState)>>,
    /// The connector host's own health (trust certificate, event log, version, TLS, Kerberos).
    pub host: Arc<crate::host::HostHealth>,
    pub walks: Vec<AppWalk>,
    /// How long the last round of each kind of probe took, in seconds.
    pub round_seconds: BTreeMap<&'static str, f64>,
    /// When the last round of each kind finished (`backend`: the last backend answer).
    #[serde(skip)]
    pub round_finished: BTreeMap<&'static str, SystemTime>,
    /// Steps 3-6 as this host judged them, before any app's own answers: served once.
    #[serde(skip)]
    pub host_steps: Vec<(Step, Outcome)>,
    /// Step 2 per connector group, as the inventory and this host judged it.
    #[serde(skip)]
    pub group_steps: BTreeMap<String, Outcome>,
}

/// Holds the latest snapshot and its rendered metrics; cheap to read from any thread.
#[derive(Debug, Default)]
pub struct Store {
    latest: RwLock<Arc<Snapshot>>,
    /// The snapshot's families, rendered and compressed when it was published.
    exposition: RwLock<Arc<OpenMember>>,
}

impl Store {
    pub fn latest(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc; the value is whole.
        match self.latest.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The latest snapshot's metrics, compressed (a shared reference).
    pub fn exposition(&self) -> Arc<OpenMember> {
        match self.exposition.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `snapshot` and its rendered `exposition` the latest, together.
    pub fn publish(&self, snapshot: Snapshot, exposition: OpenMember) {
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
        *text = Arc::new(exposition);
    }
}
