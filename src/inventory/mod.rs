//! Steps 1 and 2 of the flowchart: which connector groups, connectors and apps exist, whether
//! each app is assigned to a known group (step 1, `connector_group_assigned`) and whether that
//! group has an active connector (step 2, `connector_installed`). The inventory comes from the
//! static config today; Microsoft Graph discovery plugs in beside it.

mod custom_domain;
pub mod graph;
pub mod local;
mod refresh;
mod segments;
mod static_source;

use std::sync::Arc;

use serde::Serialize;

pub use custom_domain::CustomDomainCertificate;
pub use refresh::Refresher;
pub use segments::{PrivateAccessSegments, Segment, WebSegment, WebSegments, is_wildcard_url};
pub use static_source::from_static;

use crate::config::values::{BackendTimeout, ConnectorStatus, GroupSelection};
use crate::walk::{AppKey, Judge, Outcome, Step, StepResults};

/// Which connector this host is and which groups it serves, for step 2's local part.
#[derive(Debug, Clone)]
pub struct ThisHost {
    pub machine: String,
    pub groups: GroupSelection,
}

/// Everything known about the tenant's App Proxy set-up, from whichever sources are configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Inventory {
    pub groups: Vec<ConnectorGroup>,
    pub apps: Vec<App>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorGroup {
    pub name: String,
    /// Graph's id; empty for a group known only from the static config.
    pub id: String,
    /// Graph's region (`nam`, `eur`, ... or a value we do not know yet); empty when unknown.
    pub region: String,
    pub is_default: Option<bool>,
    pub connectors: Vec<Connector>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connector {
    pub machine_name: String,
    pub id: String,
    pub external_ip: String,
    pub version: String,
    pub status: ConnectorStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct App {
    /// Shared with the app's [`AppKey`], and through it with its walk.
    pub name: Arc<str>,
    pub id: String,
    /// The group the app is assigned to, as named; it may not exist.
    pub connector_group: Option<Arc<str>>,
    pub internal_url: String,
    pub external_url: Option<String>,
    pub backend_timeout: BackendTimeout,
    pub backend_certificate_validation: bool,
    /// App Proxy's "Translate URLs in headers": off, the backend gets the external host in
    /// the Host header instead of the internal one.
    pub translate_host_header: bool,
    /// Graph's `onPremisesPublishing.applicationType` as given (`nonwebapp`, ...); empty when
    /// Graph does not say (a web app: Graph documents no value for one) or for static apps.
    pub application_type: String,
    /// Graph's `externalAuthenticationType` is `aadPreAuthentication`; unknown for static apps.
    pub pre_authenticated: Option<bool>,
    pub publishing: Publishing,
    /// The backend's SPN when single sign-on is Kerberos constrained delegation (Graph's
    /// `singleSignOnSettings`); `None` otherwise and for static apps.
    pub kerberos_spn: Option<String>,
    /// The certificate App Proxy presents on the app's custom domain (Graph's
    /// `verifiedCustomDomainCertificatesMetadata`); `None` on the default domain and for
    /// static apps.
    pub custom_domain_certificate: Option<Arc<CustomDomainCertificate>>,
    /// A Private Access app's segments (Graph's `ipApplicationSegment`s), or why they could
    /// not be read; `None` for every other app, static apps included.
    pub segments: Option<Arc<PrivateAccessSegments>>,
    /// A wildcard web app's segments (Graph's `webApplicationSegment`s), or why they could not
    /// be read; `None` for every other app, static apps included.
    pub web_segments: Option<Arc<WebSegments>>,
}

impl App {
    /// The app's key, sharing its names; the group is empty when it has none.
    pub fn key(&self) -> AppKey {
        AppKey {
            connector_group: self.connector_group.clone().unwrap_or_default(),
            app: Arc::clone(&self.name),
        }
    }
}

/// Whether App Proxy publishes the app as a web app. Only those are walked past step 2: Private
/// Access apps and the like use the same connectors (so they count for their group in steps 1
/// and 2) but have no page for steps 7-10 to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Publishing {
    WebApp,
    /// Not a web app published through App Proxy; `reason` says why, for the page and `diagnose`.
    NotWebApp {
        reason: String,
    },
}

/// `applicationType` values that Graph documents, all of them Private Access apps (Graph's
/// onPremisesPublishing resource: "The possible values are `quickaccessapp` and `nonwebapp`").
const NOT_WEB_APPLICATION_TYPES: [&str; 2] = ["nonwebapp", "quickaccessapp"];

/// Whether Graph's `applicationType` names a Private Access app (`nonwebapp`,
/// `quickaccessapp`, in any letter case: ipapplicationsegment-get's example answers
/// `"NonWebApp"`). Their segments are read and probed for step 8.
pub fn is_private_access(p: &graph::OnPremisesPublishing) -> bool {
    p.application_type.as_deref().is_some_and(|t| {
        NOT_WEB_APPLICATION_TYPES
            .iter()
            .any(|n| t.eq_ignore_ascii_case(n))
    })
}

impl Publishing {
    /// From an app's `onPremisesPublishing` as Graph gives it (`None`: Graph gave none). An
    /// `applicationType` Graph has not documented is ignored, as every unknown value is.
    pub fn of(publishing: Option<&graph::OnPremisesPublishing>) -> Publishing {
        let not_web = |reason: String| Publishing::NotWebApp { reason };
        let Some(p) = publishing else {
            return not_web("Graph has no onPremisesPublishing settings for this app: it is not published through App Proxy".into());
        };
        if let Some(kind) = p.application_type.as_deref().filter(|t| {
            NOT_WEB_APPLICATION_TYPES
                .iter()
                .any(|n| t.eq_ignore_ascii_case(n))
        }) {
            return not_web(format!(
                "a Private Access app (applicationType {kind}), not a web app published through App Proxy: it has no internal page to load"
            ));
        }
        if p.is_on_prem_publishing_enabled == Some(false) {
            return not_web(
                "App Proxy publishing is off for this app (isOnPremPublishingEnabled false)".into(),
            );
        }
        if p.internal_url
            .as_deref()
            .is_none_or(|u| u.trim().is_empty())
        {
            return not_web(
                "the app has no internal URL in Graph, so there is no page to load".into(),
            );
        }
        Publishing::WebApp
    }

    pub fn is_web_app(&self) -> bool {
        matches!(self, Publishing::WebApp)
    }
}

impl ConnectorGroup {
    pub fn active_connectors(&self) -> usize {
        self.connectors
            .iter()
            .filter(|c| c.status == ConnectorStatus::Active)
            .count()
    }

    /// Whether `machine` is one of this group's connectors (see [`same_machine`]).
    pub fn has_member(&self, machine: &str) -> bool {
        self.connectors
            .iter()
            .any(|c| same_machine(&c.machine_name, machine))
    }
}

impl Inventory {
    pub fn group(&self, name: &str) -> Option<&ConnectorGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The apps this host walks, per `connector.groups`. Apps without a group, or with a group
    /// that is not listed, are always walked so their step 1 failure is reported. With `auto`,
    /// the groups this machine is a connector of; on a host that is a connector of none (a
    /// monitoring host), every group, so nothing configured goes unwatched.
    pub fn apps_to_walk(&self, selection: &GroupSelection, machine: &str) -> Vec<&App> {
        let auto_groups: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| g.has_member(machine))
            .map(|g| g.name.as_str())
            .collect();
        self.apps
            .iter()
            .filter(|app| {
                let Some(group) = app.connector_group.as_deref() else {
                    return true;
                };
                if self.group(group).is_none() {
                    return true;
                }
                match selection {
                    GroupSelection::All => true,
                    GroupSelection::Named(names) => names.iter().any(|n| n == group),
                    GroupSelection::Auto => auto_groups.is_empty() || auto_groups.contains(&group),
                }
            })
            .collect()
    }

    /// Steps 1 and 2 for one app. Step 2 is only evaluated once step 1 found the group.
    fn judge(&self, app: &App, host: &ThisHost, results: &mut StepResults) {
        let Some(group_name) = app.connector_group.as_deref() else {
            results.set(
                Step::ConnectorGroupAssigned,
                Outcome::fail(format!(
                    "app {:?} is not assigned to a connector group",
                    app.name
                )),
            );
            return;
        };
        let Some(group) = self.group(group_name) else {
            results.set(
                Step::ConnectorGroupAssigned,
                Outcome::fail(format!(
                    "app {:?} is assigned to connector group {group_name:?}, which is not in the inventory",
                    app.name
                )),
            );
            return;
        };
        results.set(Step::ConnectorGroupAssigned, Outcome::Pass);
        let outcome = match judge_group(group) {
            Outcome::Pass => self.judge_this_host(group, host),
            failed => failed,
        };
        results.set(Step::ConnectorInstalled, outcome);
    }

    /// When this host is a connector (of any group), it must be an active member of the groups
    /// it serves: the ones named in `connector.groups`, and every group it is a member of.
    /// A host that is no connector at all watches from outside and is not judged here.
    fn judge_this_host(&self, group: &ConnectorGroup, host: &ThisHost) -> Outcome {
        if !self.groups.iter().any(|g| g.has_member(&host.machine)) {
            return Outcome::Pass;
        }
        let me = group
            .connectors
            .iter()
            .find(|c| same_machine(&c.machine_name, &host.machine));
        match me {
            Some(c) if c.status == ConnectorStatus::Inactive => Outcome::fail(format!(
                "this host's connector {} is inactive in group {:?}",
                c.machine_name, group.name
            )),
            Some(_) => Outcome::Pass,
            None if matches!(&host.groups, GroupSelection::Named(names) if names.contains(&group.name)) => {
                Outcome::fail(format!(
                    "this host ({}) is a connector, but not of group {:?}, which connector.groups names",
                    host.machine, group.name
                ))
            }
            None => Outcome::Pass,
        }
    }
}

/// Steps 1-2 of one app: its group exists (step 1), and has an active connector, of which this
/// host, when it is a connector, is an active one (step 2). Step 2 is judged only once step 1
/// found the group.
#[derive(Debug, Clone, Copy)]
pub struct AppSteps<'a> {
    pub inventory: &'a Inventory,
    pub app: &'a App,
    pub host: &'a ThisHost,
}

impl Judge for AppSteps<'_> {
    const STEPS: &'static [Step] = &[Step::ConnectorGroupAssigned, Step::ConnectorInstalled];

    fn judge(&self) -> StepResults {
        let mut results = StepResults::default();
        self.inventory.judge(self.app, self.host, &mut results);
        results
    }
}

/// Step 2 for an app whose external URL shows App Proxy's gateway-timeout page: no connector
/// of its group answered for it, whatever the inventory says.
pub fn no_connector_answered(evidence: String) -> Outcome {
    Outcome::fail(evidence)
}

/// Step 2 for a group: it needs at least one connector, and at least one of them active.
fn judge_group(group: &ConnectorGroup) -> Outcome {
    if group.connectors.is_empty() {
        return Outcome::fail(format!("connector group {:?} has no connector", group.name));
    }
    if group.active_connectors() == 0 {
        let names: Vec<String> = group
            .connectors
            .iter()
            .map(|c| format!("{} inactive", c.machine_name))
            .collect();
        return Outcome::fail(format!(
            "no connector of group {:?} is active ({})",
            group.name,
            names.join(", ")
        ));
    }
    Outcome::Pass
}

/// Graph's `machineName` may carry a domain suffix and any letter case; the host name may too.
pub fn same_machine(a: &str, b: &str) -> bool {
    let short = |name: &str| name.split('.').next().unwrap_or(name).to_ascii_lowercase();
    !a.is_empty() && short(a) == short(b)
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    fn walk_from(
        inventory: &Inventory,
        app: &str,
        host: &ThisHost,
    ) -> Option<crate::walk::Failure> {
        let app = inventory.apps.iter().find(|a| &*a.name == app).unwrap();
        let mut results = StepResults::default();
        inventory.judge(app, host, &mut results);
        crate::walk::walk(&results)
    }

    /// Walks from a host that is no connector of the inventory.
    fn walk_of(inventory: &Inventory, app: &str) -> Option<crate::walk::Failure> {
        let outsider = ThisHost {
            machine: "monitoring-01".into(),
            groups: GroupSelection::Auto,
        };
        walk_from(inventory, app, &outsider)
    }

    #[test]
    fn this_hosts_inactive_connector_fails_step_2_for_its_group() {
        let inv = inventory()
            .group(
                group("Default")
                    .connector(connector("CONN-01"))
                    .connector(connector("CONN-02").inactive()),
            )
            .app(app("intranet").in_group("Default"))
            .build();
        let host = ThisHost {
            machine: "conn-02.corp.example".into(),
            groups: GroupSelection::Auto,
        };
        let failure = walk_from(&inv, "intranet", &host).unwrap();
        assert_eq!(failure.step, Step::ConnectorInstalled);
        assert!(
            failure
                .evidence()
                .contains("this host's connector CONN-02 is inactive"),
            "{}",
            failure.evidence()
        );
        let active_host = ThisHost {
            machine: "CONN-01".into(),
            groups: GroupSelection::Auto,
        };
        assert_eq!(walk_from(&inv, "intranet", &active_host), None);
    }

    #[test]
    fn a_connector_host_missing_from_a_group_it_is_told_to_serve_fails_step_2() {
        let inv = inventory()
            .group(group("Default").connector(connector("CONN-01")))
            .group(group("Branch").connector(connector("CONN-09")))
            .app(app("branch-app").in_group("Branch"))
            .build();
        let host = ThisHost {
            machine: "CONN-01".into(),
            groups: GroupSelection::Named(vec!["Default".into(), "Branch".into()]),
        };
        let failure = walk_from(&inv, "branch-app", &host).unwrap();
        assert_eq!(failure.step, Step::ConnectorInstalled);
        assert!(
            failure.evidence().contains("not of group \"Branch\""),
            "{}",
            failure.evidence()
        );
        let all = ThisHost {
            machine: "CONN-01".into(),
            groups: GroupSelection::All,
        };
        assert_eq!(
            walk_from(&inv, "branch-app", &all),
            None,
            "with [all] other groups are watched, not required"
        );
    }

    fn sample() -> Inventory {
        inventory()
            .group(group("Default").connector(connector("CONN-01")))
            .group(group("Dormant").connector(connector("CONN-02").inactive()))
            .group(group("Empty"))
            .app(app("intranet").in_group("Default"))
            .app(app("orphan"))
            .app(app("ghost").in_group("Nowhere"))
            .app(app("payroll").in_group("Dormant"))
            .app(app("wiki").in_group("Empty"))
            .build()
    }

    #[test]
    fn app_in_a_group_with_an_active_connector_passes_steps_1_and_2() {
        assert_eq!(walk_of(&sample(), "intranet"), None);
    }

    #[test]
    fn app_without_a_group_fails_step_1() {
        let failure = walk_of(&sample(), "orphan").unwrap();
        assert_eq!(failure.step, Step::ConnectorGroupAssigned);
        assert!(
            failure.evidence().contains("not assigned"),
            "{}",
            failure.evidence()
        );
    }

    #[test]
    fn app_in_an_unknown_group_fails_step_1() {
        let failure = walk_of(&sample(), "ghost").unwrap();
        assert_eq!(failure.step, Step::ConnectorGroupAssigned);
        assert!(
            failure.evidence().contains("\"Nowhere\""),
            "{}",
            failure.evidence()
        );
    }

    #[test]
    fn app_in_a_group_of_inactive_connectors_fails_step_2() {
        let failure = walk_of(&sample(), "payroll").unwrap();
        assert_eq!(failure.step, Step::ConnectorInstalled);
        assert!(
            failure.evidence().contains("CONN-02 inactive"),
            "{}",
            failure.evidence()
        );
    }

    #[test]
    fn app_in_a_group_without_connectors_fails_step_2() {
        let failure = walk_of(&sample(), "wiki").unwrap();
        assert_eq!(failure.step, Step::ConnectorInstalled);
        assert!(
            failure.evidence().contains("has no connector"),
            "{}",
            failure.evidence()
        );
    }

    #[test]
    fn machine_names_match_without_case_or_domain_suffix() {
        assert!(same_machine("CONN-01.corp.example", "conn-01"));
        assert!(same_machine("conn-01", "CONN-01"));
        assert!(!same_machine("CONN-01", "CONN-010"));
        assert!(!same_machine("", ""));
    }

    #[test]
    fn auto_selection_walks_this_hosts_groups_and_every_app_without_a_group() {
        let inv = sample();
        let names: Vec<&str> = inv
            .apps_to_walk(&GroupSelection::Auto, "conn-01.corp.example")
            .iter()
            .map(|a| &*a.name)
            .collect();
        assert_eq!(names, ["intranet", "orphan", "ghost"]);
    }

    #[test]
    fn auto_selection_on_a_host_that_is_no_connector_walks_every_group() {
        let inv = sample();
        assert_eq!(
            inv.apps_to_walk(&GroupSelection::Auto, "monitoring-01")
                .len(),
            5
        );
    }

    #[test]
    fn named_selection_keeps_listed_groups_and_apps_without_a_group() {
        let inv = sample();
        let selection = GroupSelection::Named(vec!["Dormant".into()]);
        let names: Vec<&str> = inv
            .apps_to_walk(&selection, "x")
            .iter()
            .map(|a| &*a.name)
            .collect();
        assert_eq!(names, ["orphan", "ghost", "payroll"]);
    }
}
