//! What names an app everywhere: its connector group and its name.

use std::sync::Arc;

use serde::Serialize;

/// An app as the probes, the walk and every output know it. Its names are the inventory's,
/// shared rather than copied by the target, the schedule, the answers kept and the walk: at
/// 10,000 apps a copy each is megabytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AppKey {
    /// The app's connector group, empty when it has none.
    pub connector_group: Arc<str>,
    pub app: Arc<str>,
}

impl AppKey {
    /// A key of names of its own, for tests.
    pub fn new(connector_group: &str, app: &str) -> AppKey {
        AppKey {
            connector_group: connector_group.into(),
            app: app.into(),
        }
    }
}
