//! Steps 1-2 from Microsoft Graph (beta): the tenant's connector groups, their connectors and
//! applications, and each application's `onPremisesPublishing`, read under
//! `/onPremisesPublishingProfiles/applicationProxy`. One refresh reads everything or fails
//! whole, so a partial answer never replaces the last good inventory.

pub mod auth;
pub mod client;
pub mod login;
mod model;
mod names;
pub mod transport;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};

pub use client::{GraphError, RetryPolicy};
pub use model::{
    IpApplicationSegment, OnPremisesPublishing, VerifiedCustomDomainCertificatesMetadata,
    WebApplicationSegment,
};
pub use transport::GraphMetrics;

use super::{
    App, Connector, ConnectorGroup, CustomDomainCertificate, Inventory, PrivateAccessSegments,
    Publishing, Segment, WebSegment, WebSegments,
};
use crate::config::values::{BackendTimeout, ConnectorStatus, redact_url};
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
            .filter(|g| g.is_application_proxy() && g.id.is_some())
            .collect();
        let connectors: Vec<model::Connector> = client
            .list("connectors", &format!("{PROFILE}/connectors"))
            .await?;

        // Members and applications of every group, a bounded number at a time.
        let per_group: Vec<(Vec<model::Connector>, Vec<model::Application>)> = stream::iter(
            groups
                .iter()
                .filter_map(|g| g.id.clone())
                .collect::<Vec<_>>(),
        )
        // Owned ids: borrowed ones make this future too hard to prove `Send` for `spawn`.
        .map(|id: String| async move {
            let id = segment(&id);
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

        let details = self.details(&per_group).await?;
        let segments = self.segments(&per_group, &details).await?;
        let mut inventory = assemble(&groups, &connectors, per_group, &details);
        for app in &mut inventory.apps {
            if let Some(read) = segments.private.get(&app.id) {
                app.segments = Some(std::sync::Arc::new(read.clone()));
            }
            if let Some(read) = segments.wildcard.get(&app.id) {
                app.web_segments = Some(std::sync::Arc::new(read.clone()));
            }
        }
        Ok(inventory)
    }

    /// The segments of every Private Access app (`applicationType` `nonwebapp` or
    /// `quickaccessapp`), for step 8, and of every wildcard web app (an internal URL such as
    /// `https://*.corp.example/`), for steps 7-10: in batches as the per-app reads are, only
    /// for those apps, so a tenant pays one request inside a batch per such app. One app whose
    /// segments Graph refuses (or answers in a shape not documented) has them unreadable, with
    /// why; the rest of the inventory loads. A 404 is an app without a segment configuration.
    async fn segments(
        &self,
        per_group: &[(Vec<model::Connector>, Vec<model::Application>)],
        details: &HashMap<String, model::Application>,
    ) -> Result<Segments, GraphError> {
        let (mut private, mut wildcard) = (Vec::new(), Vec::new());
        for listed in per_group.iter().flat_map(|(_, apps)| apps) {
            let Some(id) = listed.id.as_deref() else {
                continue;
            };
            let Some(publishing) = details
                .get(id)
                .and_then(|a| a.on_premises_publishing.as_ref())
                .or(listed.on_premises_publishing.as_ref())
            else {
                continue;
            };
            if super::is_private_access(publishing) {
                private.push(id);
            } else if super::is_wildcard_url(publishing.internal_url.as_deref().unwrap_or("")) {
                wildcard.push(id);
            }
        }
        let private = self
            .read_segments::<IpApplicationSegment>(private, IP_SEGMENTS_PATH, SEGMENTS_ENDPOINT)
            .await?
            .into_iter()
            .map(|(id, read)| {
                let read = match read {
                    Ok(items) => PrivateAccessSegments::Read(items.iter().map(Segment::from).collect()),
                    Err(why) => {
                        tracing::warn!(app_id = id, problem = %why, "cannot read a Private Access app's segments; its step 8 is not evaluated");
                        PrivateAccessSegments::Unreadable(why)
                    }
                };
                (id, read)
            })
            .collect();
        let wildcard = self
            .read_segments::<WebApplicationSegment>(
                wildcard,
                WEB_SEGMENTS_PATH,
                WEB_SEGMENTS_ENDPOINT,
            )
            .await?
            .into_iter()
            .map(|(id, read)| {
                let read = match read {
                    Ok(items) => WebSegments::Read(items.iter().map(WebSegment::from).collect()),
                    Err(why) => {
                        tracing::warn!(app_id = id, problem = %why, "cannot read a wildcard app's segments; only probes.backend.wildcard_hosts can name its hosts");
                        WebSegments::Unreadable(why)
                    }
                };
                (id, read)
            })
            .collect();
        Ok(Segments { private, wildcard })
    }

    /// The segment list under `applications/{id}/{path}` of each app in `ids`, in lenient
    /// batches ([`GraphClient::batch_each`]), each followed through its `@odata.nextLink`. A
    /// 404 is an empty list; a refusal is that app's error.
    async fn read_segments<T: serde::de::DeserializeOwned>(
        &self,
        mut ids: Vec<&str>,
        path: &str,
        endpoint: &'static str,
    ) -> Result<Vec<(String, Result<Vec<T>, String>)>, GraphError> {
        ids.sort_unstable();
        ids.dedup();
        let paths: Vec<String> = ids
            .iter()
            .map(|id| format!("applications/{}/{path}", segment(id)))
            .collect();
        let read: Vec<Result<Option<model::Page<T>>, String>> =
            self.client.batch_each(endpoint, &paths).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, answer) in ids.into_iter().zip(read) {
            let items = match answer {
                Ok(None) => Ok(Vec::new()),
                Ok(Some(page)) => {
                    let mut items = page.value;
                    if let Some(link) = page.next_link {
                        items.extend(self.client.list_from_link::<T>(endpoint, &link).await?);
                    }
                    Ok(items)
                }
                Err(why) => Err(why),
            };
            out.push((id.to_string(), items));
        }
        Ok(out)
    }

    /// Each listed app's name and publishing settings, read in batches where the list did not
    /// carry both. Graph documents the group's application list with `onPremisesPublishing` and
    /// without `displayName`; tenants are reported to leave `onPremisesPublishing` out of it.
    async fn details(
        &self,
        per_group: &[(Vec<model::Connector>, Vec<model::Application>)],
    ) -> Result<HashMap<String, model::Application>, GraphError> {
        let mut ids: Vec<&str> = per_group
            .iter()
            .flat_map(|(_, apps)| apps)
            .filter(|a| a.display_name.is_none() || a.on_premises_publishing.is_none())
            .filter_map(|a| a.id.as_deref())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let paths: Vec<String> = ids
            .iter()
            .map(|id| format!("applications/{}?$select={APP_SELECT}", segment(id)))
            .collect();
        let read: Vec<Option<model::Application>> =
            self.client.batch("applications", &paths).await?;
        Ok(ids
            .into_iter()
            .zip(read)
            .filter_map(|(id, app)| Some((id.to_string(), app?)))
            .collect())
    }
}

/// A Private Access app's segments, under `applications/{id}/` (Graph beta,
/// api/onpremisespublishingprofile-list-applicationsegments.md).
const IP_SEGMENTS_PATH: &str = "onPremisesPublishing/segmentsConfiguration/microsoft.graph.ipSegmentConfiguration/applicationSegments";

/// The `graph_endpoint` label of the Private Access segment reads.
const SEGMENTS_ENDPOINT: &str = "applications/applicationSegments";

/// A wildcard web app's segments, under `applications/{id}/` (Graph beta,
/// api/websegmentconfiguration-list-applicationsegments.md).
const WEB_SEGMENTS_PATH: &str = "onPremisesPublishing/segmentsConfiguration/microsoft.graph.webSegmentConfiguration/applicationSegments";

/// The `graph_endpoint` label of the wildcard segment reads.
const WEB_SEGMENTS_ENDPOINT: &str = "applications/webApplicationSegments";

/// The segments read in one refresh, by app id.
struct Segments {
    private: HashMap<String, PrivateAccessSegments>,
    wildcard: HashMap<String, WebSegments>,
}

/// What the per-app read asks for. Graph returns only these (no `id`: it is not selected).
const APP_SELECT: &str = "displayName,onPremisesPublishing";

/// An id as one path segment: Graph's ids are GUIDs, but nothing a server sends reaches a URL
/// unescaped.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An HTTP client for Graph and the sign-in endpoint. Proxies come from the usual
/// `HTTPS_PROXY`/`NO_PROXY` variables only, never from the platform's settings.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    crate::net::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        // A redirect would carry the client secret (token endpoint) or the bearer token (Graph)
        // to wherever it points: none is followed.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("appproxy_exporter/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Builds the inventory from Graph's objects. An app the per-app read no longer found (404:
/// deleted since it was listed) is left out; one without an id cannot be read and is left out too.
fn assemble(
    groups: &[model::ConnectorGroup],
    connectors: &[model::Connector],
    per_group: Vec<(Vec<model::Connector>, Vec<model::Application>)>,
    details: &HashMap<String, model::Application>,
) -> Inventory {
    let by_id: HashMap<&str, &model::Connector> = connectors
        .iter()
        .filter_map(|c| Some((c.id.as_deref()?, c)))
        .collect();
    let mut inventory = Inventory::default();
    // Each app as read, with its display name: labels are given once every app is known.
    let mut read_apps: Vec<(String, App)> = Vec::new();
    for (group, (members, apps)) in groups.iter().zip(per_group) {
        let id = group.id.clone().unwrap_or_default();
        let name = group.name.clone().unwrap_or_else(|| id.clone());
        let connectors = members
            .iter()
            // The full list may know more about a member than the membership list does.
            .map(|m| {
                let full = m.id.as_deref().and_then(|id| by_id.get(id));
                connector(full.copied().unwrap_or(m))
            })
            .collect();
        // One allocation of the group's name for all of its apps.
        let group_name: std::sync::Arc<str> = name.as_str().into();
        inventory.groups.push(ConnectorGroup {
            name: name.clone(),
            id,
            region: group.region.clone().unwrap_or_default(),
            is_default: group.is_default,
            connectors,
        });
        for listed in apps {
            let Some(id) = listed.id.clone() else {
                continue;
            };
            let read = details.get(&id);
            let complete = listed.display_name.is_some() && listed.on_premises_publishing.is_some();
            if read.is_none() && !complete {
                continue;
            }
            let display = read
                .and_then(|a| a.display_name.clone())
                .or(listed.display_name)
                .unwrap_or_else(|| id.clone());
            let publishing = read
                .and_then(|a| a.on_premises_publishing.clone())
                .or(listed.on_premises_publishing);
            read_apps.push((
                display,
                App {
                    id,
                    connector_group: Some(std::sync::Arc::clone(&group_name)),
                    ..app(publishing)
                },
            ));
        }
    }
    let keys: Vec<(&str, &str)> = read_apps
        .iter()
        .map(|(display, app)| (display.as_str(), app.id.as_str()))
        .collect();
    let labels = names::labels(&keys);
    inventory.apps = read_apps
        .into_iter()
        .zip(labels)
        .map(|((_, app), label)| App {
            name: label.into(),
            ..app
        })
        .collect();
    inventory
}

/// An app's settings from its `onPremisesPublishing` (absent: none at all, so no web app).
fn app(publishing: Option<model::OnPremisesPublishing>) -> App {
    let publishing_kind = Publishing::of(publishing.as_ref());
    let p = publishing.unwrap_or_default();
    App {
        name: "".into(),
        id: String::new(),
        connector_group: None,
        // Redacted as a static app's are: a password here would reach the labels.
        internal_url: redact_url(&p.internal_url.unwrap_or_default()),
        external_url: p
            .external_url
            .filter(|u| !u.is_empty())
            .map(|u| redact_url(&u)),
        backend_timeout: p
            .application_server_timeout
            .as_deref()
            .and_then(BackendTimeout::parse)
            .unwrap_or_default(),
        // Graph: true for new apps, false for existing ones; unknown is taken as on.
        backend_certificate_validation: p.is_backend_certificate_validation_enabled.unwrap_or(true),
        // Graph documents the default as true (the portal's "Translate URLs in headers: Yes").
        translate_host_header: p.is_translate_host_header_enabled.unwrap_or(true),
        application_type: p.application_type.unwrap_or_default(),
        pre_authenticated: p
            .external_authentication_type
            .as_deref()
            .map(|t| t.eq_ignore_ascii_case("aadPreAuthentication")),
        publishing: publishing_kind,
        kerberos_spn: p
            .single_sign_on_settings
            .as_ref()
            .and_then(model::SingleSignOnSettings::kerberos_spn),
        custom_domain_certificate: CustomDomainCertificate::from_graph(
            p.verified_custom_domain_certificates_metadata.as_ref(),
        )
        .map(std::sync::Arc::new),
        segments: None,
        web_segments: None,
    }
}

fn connector(c: &model::Connector) -> Connector {
    let active = c
        .status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("active"));
    Connector {
        machine_name: c.machine_name.clone().unwrap_or_default(),
        id: c.id.clone().unwrap_or_default(),
        external_ip: c.external_ip.clone().unwrap_or_default(),
        version: c.version.clone().unwrap_or_default(),
        status: if active {
            ConnectorStatus::Active
        } else {
            ConnectorStatus::Inactive
        },
    }
}

/// What to tell the operator when Graph refuses access: which permission or role is missing,
/// and that app-only access may not be supported at all.
pub fn advice(error: &GraphError) -> Option<&'static str> {
    match error {
        // As documented today (docs/graph.md, "Permissions"): the connector and connector
        // group pages list delegated Directory.ReadWrite.All only and application permissions
        // as not supported; the role note names the least privileged roles.
        GraphError::Forbidden { .. } => Some(
            "Microsoft Graph documents the App Proxy connector and connector group APIs with delegated Directory.ReadWrite.All only, \
             for a user holding the Application Administrator or Global Secure Access Administrator role; application (app-only) permissions are documented as not supported. \
             Set inventory.graph.auth to device_code, grant the app registration the delegated Directory.ReadWrite.All permission with admin consent, \
             and run `appproxy_exporter login` as such a user (docs/graph.md, Permissions)",
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
    use std::collections::HashSet;

    /// The inventory Graph's listed apps make, in one group (`apps` as (display name, id)).
    fn names_of(apps: &[(&str, &str)]) -> Vec<String> {
        let group = model::ConnectorGroup {
            id: Some("g1".into()),
            name: Some("Default".into()),
            is_default: None,
            region: None,
            connector_group_type: None,
        };
        let listed = apps
            .iter()
            .map(|(name, id)| model::Application {
                id: Some((*id).into()),
                display_name: Some((*name).into()),
                on_premises_publishing: Some(OnPremisesPublishing::default()),
            })
            .collect();
        let inventory = assemble(&[group], &[], vec![(vec![], listed)], &HashMap::new());
        inventory.apps.iter().map(|a| a.name.to_string()).collect()
    }

    /// "x [abcdefgh]" is a display name like any other: once it was taken by one app, a second
    /// "x" whose id starts with abcdefgh got the same label, the failed claim ignored, and the
    /// two apps' series and backend answers were one.
    #[test]
    fn a_display_name_that_looks_like_a_suffix_never_shares_a_label() {
        let names = names_of(&[
            ("x [abcdefgh]", "11111111-0000"),
            ("x", "22222222-0000"),
            ("x", "abcdefgh-0000"),
        ]);
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), 3, "{names:?}");
        assert_eq!(names[0], "x [abcdefgh]", "a name no other app has is kept");
    }

    fn display_names() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "x",
            "x [abcdefgh]",
            "x [abcdefgh-1]",
            "x [22222222]",
            "x [abcdefgh-1] [abcdefgh]",
            "y",
            "x ",
            "X",
        ])
    }

    fn ids() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "abcdefgh-1",
            "abcdefgh-2",
            "abcdefgh",
            "abcdefgh-1-1",
            "22222222-0",
            "zz",
            "",
        ])
    }

    proptest::proptest! {
        /// Whatever names and ids Graph gives, in whatever order: every app has a label of its
        /// own, the same one in any order, and a display name no other app has is kept.
        #[test]
        fn labels_are_unique_whatever_graph_names_the_apps(
            apps in proptest::collection::vec((display_names(), ids()), 0..12)
        ) {
            let names = names_of(&apps);
            let unique: HashSet<&String> = names.iter().collect();
            proptest::prop_assert_eq!(unique.len(), names.len(), "{:?} gave {:?}", apps, names);
            let mut forward: Vec<_> = apps.iter().zip(&names).collect();
            let reversed_apps: Vec<_> = apps.iter().rev().copied().collect();
            let reversed_names = names_of(&reversed_apps);
            let mut backward: Vec<_> = reversed_apps.iter().zip(&reversed_names).collect();
            forward.sort();
            backward.sort();
            proptest::prop_assert_eq!(forward, backward);
            for ((display, _), name) in apps.iter().zip(&names) {
                if apps.iter().filter(|(d, _)| d == display).count() == 1 {
                    proptest::prop_assert_eq!(display, name);
                }
            }
        }
    }

    #[test]
    fn an_app_whose_host_header_is_not_translated_keeps_it_and_others_translate_it() {
        // onPremisesPublishing resource type: isTranslateHostHeaderEnabled, default true.
        let read =
            |json: &str| app(Some(serde_json::from_str(json).unwrap())).translate_host_header;
        assert!(!read(
            r#"{"internalUrl": "https://sp.corp/", "isTranslateHostHeaderEnabled": false}"#
        ));
        assert!(read(
            r#"{"internalUrl": "https://sp.corp/", "isTranslateHostHeaderEnabled": true}"#
        ));
        assert!(
            read(r#"{"internalUrl": "https://sp.corp/"}"#),
            "absent is Graph's default"
        );
    }

    #[test]
    fn connector_status_other_than_active_counts_as_inactive() {
        let mut c = model::Connector {
            id: Some("c".into()),
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
