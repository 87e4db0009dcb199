//! The inventory written in the config file (`inventory.static`), for tenants where Graph is
//! not available to the exporter, or to add what Graph does not know.

use std::collections::HashMap;
use std::sync::Arc;

use super::{App, Connector, ConnectorGroup, Inventory, Publishing};
use crate::config::StaticInventory;

/// Turns the static section into an inventory; ids, regions and versions are unknown there.
pub fn from_static(config: &StaticInventory) -> Inventory {
    let groups = config
        .connector_groups
        .iter()
        .map(|g| ConnectorGroup {
            name: g.name.clone(),
            id: String::new(),
            region: String::new(),
            is_default: None,
            connectors: g
                .connectors
                .iter()
                .map(|c| Connector {
                    machine_name: c.machine_name.clone(),
                    id: String::new(),
                    external_ip: String::new(),
                    version: String::new(),
                    status: c.status,
                })
                .collect(),
        })
        .collect();
    // One allocation of each group's name for all of its apps.
    let mut group_names: HashMap<&str, Arc<str>> = HashMap::new();
    let apps = config
        .apps
        .iter()
        .map(|a| App {
            name: a.name.as_str().into(),
            id: String::new(),
            connector_group: a
                .connector_group
                .as_deref()
                .map(|group| Arc::clone(group_names.entry(group).or_insert_with(|| group.into()))),
            internal_url: a.internal_url.redacted(),
            external_url: a.external_url.as_ref().map(|u| u.redacted()),
            backend_timeout: a.backend_timeout,
            backend_certificate_validation: a.backend_certificate_validation,
            translate_host_header: a.translate_host_header,
            application_type: String::new(),
            pre_authenticated: None,
            // The config names an internal URL for every static app: a web app.
            publishing: Publishing::WebApp,
            kerberos_spn: a.kerberos_service_principal_name.clone(),
            custom_domain_certificate: None,
            segments: None,
            web_segments: None,
        })
        .collect();
    Inventory { groups, apps }
}
