//! The latest results, in memory. The background prober publishes a whole new [`Snapshot`]
//! after each round; `/metrics`, the page and the API only read the current one, so a scrape
//! never waits for a probe.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::exposition::gzip::OpenMember;
use serde::Serialize;

use crate::endpoints::EndpointsState;
use crate::inventory::Inventory;
use crate::inventory::local::ServiceState;
use crate::proxy::ProxyState;
use crate::verdict::Walks;

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
    /// This host's, each group's and each app's walk, decided from the rest ([`crate::verdict`]).
    pub walks: Walks,
    /// How long the last round of each kind of probe took, in seconds.
    pub round_seconds: BTreeMap<&'static str, f64>,
    /// When the last round of each kind finished (`backend`: the last backend answer).
    #[serde(skip)]
    pub round_finished: BTreeMap<&'static str, SystemTime>,
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
