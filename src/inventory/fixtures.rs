//! Chainable builders for inventories in tests: `inventory().group(group("G").connector(...))`.

use super::{App, Connector, ConnectorGroup, Inventory, Publishing};
use crate::config::values::{BackendTimeout, ConnectorStatus};

pub struct InventoryBuilder(Inventory);

pub fn inventory() -> InventoryBuilder {
    InventoryBuilder(Inventory::default())
}

impl InventoryBuilder {
    pub fn group(mut self, group: ConnectorGroup) -> Self {
        self.0.groups.push(group);
        self
    }

    pub fn app(mut self, app: App) -> Self {
        self.0.apps.push(app);
        self
    }

    pub fn build(self) -> Inventory {
        self.0
    }
}

pub fn group(name: &str) -> ConnectorGroup {
    ConnectorGroup {
        name: name.to_string(),
        id: String::new(),
        region: String::new(),
        is_default: None,
        connectors: Vec::new(),
    }
}

impl ConnectorGroup {
    pub fn connector(mut self, connector: Connector) -> Self {
        self.connectors.push(connector);
        self
    }
}

/// An active connector.
pub fn connector(machine_name: &str) -> Connector {
    Connector {
        machine_name: machine_name.to_string(),
        id: String::new(),
        external_ip: String::new(),
        version: String::new(),
        status: ConnectorStatus::Active,
    }
}

impl Connector {
    pub fn inactive(mut self) -> Self {
        self.status = ConnectorStatus::Inactive;
        self
    }
}

/// An app without a group, on a Default timeout.
pub fn app(name: &str) -> App {
    App {
        name: name.into(),
        id: String::new(),
        connector_group: None,
        internal_url: format!("https://{name}.corp.example/"),
        external_url: None,
        backend_timeout: BackendTimeout::Default,
        backend_certificate_validation: true,
        translate_host_header: true,
        application_type: String::new(),
        pre_authenticated: None,
        publishing: Publishing::WebApp,
        kerberos_spn: None,
        custom_domain_certificate: None,
        segments: None,
        web_segments: None,
    }
}

impl App {
    pub fn in_group(mut self, group: &str) -> Self {
        self.connector_group = Some(group.into());
        self
    }
}
