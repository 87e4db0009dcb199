//! Steps 1-2 from Microsoft Graph (beta): the tenant's connector groups, their connectors and
//! applications, and each application's `onPremisesPublishing`, read under
//! `/onPremisesPublishingProfiles/applicationProxy`. One refresh reads everything or fails
//! whole, so a partial answer never replaces the last good inventory.

pub mod auth;
pub mod client;
pub mod login;
mod model;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};

pub use client::{GraphError, GraphMetrics, RetryPolicy};

use super::{App, Connector, ConnectorGroup, Inventory};
use crate::config::values::{BackendTimeout, ConnectorStatus};
use crate::config::{GraphSettings, Settings};
use auth::{AuthError, TokenProvider};
use client::GraphClient;

const PROFILE: &str = "onPremisesPublishingProfiles/applicationProxy";

/// How many Graph requests one refresh keeps in flight.
const CONCURRENCY: usize = 16;

/// Reads the App Proxy inventory from Graph.
pub struct GraphSource {
    client: GraphClient,
}

impl GraphSource {
    /// Prepares the client and reads the credentials the settings name.
    pub fn new(
        settings: &Settings,
        graph: &GraphSettings,
        metrics: GraphMetrics,
        retry: RetryPolicy,
    ) -> Result<Self, AuthError> {
        let tenant = settings.tenant_id.as_deref().unwrap_or_default();
        let http = http_client(settings.probes.timeout)
            .map_err(|e| AuthError::Transport(e.to_string()))?;
        let tokens = TokenProvider::new(http.clone(), graph, tenant, metrics.clone())?;
        Ok(Self {
            client: GraphClient::new(http, &graph.graph_url.0, tokens, metrics, retry),
        })
    }

    /// One whole read of the inventory.
    pub async fn fetch(&self) -> Result<Inventory, GraphError> {
        let client = &self.client;
        let groups: Vec<model::ConnectorGroup> = client
            .list("connectorGroups", &format!("{PROFILE}/connectorGroups"))
            .await?;
        let groups: Vec<_> = groups
            .into_iter()
            .filter(|g| g.is_application_proxy())
            .collect();
        let connectors: Vec<model::Connector> = client
            .list("connectors", &format!("{PROFILE}/connectors"))
            .await?;

        // Members and applications of every group, a bounded number at a time.
        let per_group: Vec<(Vec<model::Connector>, Vec<model::Application>)> =
            stream::iter(groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>())
                // Owned ids: borrowed ones make this future too hard to prove `Send` for `spawn`.
                .map(|id: String| async move {
                    let members_path = format!("{PROFILE}/connectorGroups/{id}/members");
                    let apps_path = format!("{PROFILE}/connectorGroups/{id}/applications");
                    tokio::try_join!(
                        client.list("connectorGroups/members", &members_path),
                        client.list("connectorGroups/applications", &apps_path)
                    )
                })
                .buffered(CONCURRENCY)
                .try_collect()
                .await?;

        // List calls leave `onPremisesPublishing` out: read it per app.
        let app_ids: HashSet<String> = per_group
            .iter()
            .flat_map(|(_, apps)| apps.iter().map(|a| a.id.clone()))
            .collect();
        let publishing: HashMap<String, model::OnPremisesPublishing> = stream::iter(app_ids)
            .map(|id: String| async move {
                let app: model::Application = client
                    .one(
                        "applications",
                        &format!("applications/{id}?$select=onPremisesPublishing"),
                    )
                    .await?;
                Ok::<_, GraphError>((id, app.on_premises_publishing.unwrap_or_default()))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;

        Ok(assemble(&groups, &connectors, per_group, &publishing))
    }
}

/// An HTTP client for Graph and the sign-in endpoint. Proxies come from the usual
/// `HTTPS_PROXY`/`NO_PROXY` variables only, never from the platform's settings.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("appproxy_exporter/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Builds the inventory from Graph's objects.
fn assemble(
    groups: &[model::ConnectorGroup],
    connectors: &[model::Connector],
    per_group: Vec<(Vec<model::Connector>, Vec<model::Application>)>,
    publishing: &HashMap<String, model::OnPremisesPublishing>,
) -> Inventory {
    let by_id: HashMap<&str, &model::Connector> =
        connectors.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut inventory = Inventory::default();
    let mut app_names = UniqueNames::default();
    for (group, (members, apps)) in groups.iter().zip(per_group) {
        let name = group.name.clone().unwrap_or_else(|| group.id.clone());
        let connectors = members
            .iter()
            // The full list may know more about a member than the membership list does.
            .map(|m| connector(by_id.get(m.id.as_str()).copied().unwrap_or(m)))
            .collect();
        inventory.groups.push(ConnectorGroup {
            name: name.clone(),
            id: group.id.clone(),
            region: group.region.clone().unwrap_or_default(),
            is_default: group.is_default,
            connectors,
        });
        for app in apps {
            let publishing = publishing.get(&app.id).cloned().unwrap_or_default();
            let display = app.display_name.clone().unwrap_or_else(|| app.id.clone());
            inventory.apps.push(App {
                name: app_names.claim(&display, &app.id),
                id: app.id.clone(),
                connector_group: Some(name.clone()),
                internal_url: publishing.internal_url.unwrap_or_default(),
                external_url: publishing.external_url,
                backend_timeout: publishing
                    .application_server_timeout
                    .as_deref()
                    .and_then(BackendTimeout::parse)
                    .unwrap_or_default(),
                backend_certificate_validation: publishing
                    .is_backend_certificate_validation_enabled
                    .unwrap_or(true),
            });
        }
    }
    inventory
}

fn connector(c: &model::Connector) -> Connector {
    let active = c
        .status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("active"));
    Connector {
        machine_name: c.machine_name.clone().unwrap_or_default(),
        id: c.id.clone(),
        external_ip: c.external_ip.clone().unwrap_or_default(),
        version: c.version.clone().unwrap_or_default(),
        status: if active {
            ConnectorStatus::Active
        } else {
            ConnectorStatus::Inactive
        },
    }
}

/// Display names are not unique in Entra ID, but the `app` label must be: a repeated name gets
/// the start of the app's id appended.
#[derive(Default)]
struct UniqueNames(HashSet<String>);

impl UniqueNames {
    fn claim(&mut self, name: &str, id: &str) -> String {
        if self.0.insert(name.to_string()) {
            return name.to_string();
        }
        let short: String = id.chars().take(8).collect();
        let unique = format!("{name} [{short}]");
        self.0.insert(unique.clone());
        unique
    }
}

/// What to tell the operator when Graph refuses access: which permission or role is missing,
/// and that app-only access may not be supported at all.
pub fn advice(error: &GraphError) -> Option<&'static str> {
    match error {
        GraphError::Forbidden { .. } => Some(
            "reading App Proxy connectors needs Directory.Read.All (delegated, by a user with the Application Administrator role) or Directory.ReadWrite.All; \
             Microsoft documents application permissions as not supported for these endpoints, so if app-only access is refused, \
             set inventory.graph.auth to device_code and run `appproxy_exporter login`",
        ),
        GraphError::Unauthorized { .. } => Some(
            "the access token was refused: check tenant_id, client_id and that the app registration exists in this tenant; with device_code, run `appproxy_exporter login` again",
        ),
        GraphError::Auth(AuthError::Refused { .. }) => Some(
            "the sign-in endpoint refused the credentials: check client_id, the client secret or certificate, and that it has not expired",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_display_names_get_distinct_labels() {
        let mut names = UniqueNames::default();
        assert_eq!(names.claim("Intranet", "aaaaaaaa-1111"), "Intranet");
        assert_eq!(
            names.claim("Intranet", "bbbbbbbb-2222"),
            "Intranet [bbbbbbbb]"
        );
    }

    #[test]
    fn connector_status_other_than_active_counts_as_inactive() {
        let mut c = model::Connector {
            id: "c".into(),
            machine_name: Some("CONN-01".into()),
            external_ip: None,
            status: Some("Active".into()),
            version: None,
        };
        assert_eq!(connector(&c).status, ConnectorStatus::Active);
        c.status = Some("unknownFutureValue".into());
        assert_eq!(connector(&c).status, ConnectorStatus::Inactive);
        c.status = None;
        assert_eq!(connector(&c).status, ConnectorStatus::Inactive);
    }
}
