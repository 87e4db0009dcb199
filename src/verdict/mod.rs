//! The walk decided in one place. [`decide`] takes what one round found, as plain values
//! ([`Evidence`]: the inventory, this host's services, endpoints, proxies and own checks, each
//! app's backend and external answers) and returns [`Walks`]: this host's steps 3-6, each
//! connector group's step 2, and every app's ten steps with where its walk stops. No I/O, no
//! locks, no clock: the prober gathers the evidence, and `/metrics`, the page,
//! `/api/v1/diagnosis` and `diagnose` only read the walks, so they cannot disagree.
//!
//! Each step family judges its own steps from its own evidence (see [`crate::walk::Judge`]);
//! what this module adds is precedence, each rule a function of its own, named for what it
//! says, with its row in the table tests below:
//! - [`host_steps`]: steps 3-6 are the endpoints' and proxies', step 4 failed by a host check
//!   (TLS 1.2 switched off) where every endpoint answers;
//! - [`connector_installed`]: a group's step 2 is the inventory's, failed by this host's
//!   connector services or trust certificate where the inventory passes it;
//! - [`app_steps`]: an app takes steps 1-2 from the inventory and its group, 3-6 from this
//!   host, 7-10 from its own answers, which may also fail an earlier step for it alone (its
//!   backend proxy's refusal, App Proxy's page naming a step); Kerberos delegation that cannot
//!   work fails step 7 where the page loads; a backend that offers only TLS 1.0/1.1 is judged
//!   at step 7 by this host's SChannel (failed where it has them off, else not evaluated); what
//!   no probe can judge is not evaluated, with why;
//! - [`crate::walk::walk`]: the walk stops at the first failing step.
//!
//! The rules read outcomes, not the families' evidence, so each is tested on its own with a
//! row per case (`tests.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::backend::segments::{SegmentReport, Segments};
use crate::backend::{Answers, AppBackend};
use crate::endpoints::EndpointsState;
use crate::host::HostHealth;
use crate::inventory::local::{ServiceState, Services};
use crate::inventory::{self, AppSteps, Inventory, Publishing, ThisHost};
use crate::proxy::{self, ProxyState};
use crate::walk::{self, AppKey, Failure, Outcome, Step, StepResults, judged};

#[cfg(test)]
mod agreement;
#[cfg(test)]
mod tests;

/// What one round found, as plain values: everything the walk is decided from.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub inventory: &'a Inventory,
    /// Which connector this host is, and the groups it serves.
    pub host: &'a ThisHost,
    /// The connector's Windows services on this host; `None` where they are not read.
    pub services: Option<&'a [(&'static str, ServiceState)]>,
    /// Steps 3-4.
    pub endpoints: &'a EndpointsState,
    /// Steps 5-6.
    pub proxy: &'a ProxyState,
    /// The connector host's own checks (steps 2, 4, 7).
    pub host_checks: &'a HostHealth,
    /// Each app's latest backend and external answers, once there are some.
    pub backends: &'a HashMap<AppKey, Arc<AppBackend>>,
    /// The apps whose backend is not requested, with why (steps 7-10 not evaluated).
    pub unprobed: &'a HashMap<AppKey, Outcome>,
    /// Each walked Private Access app's segments as this host reached them (step 8).
    pub segments: &'a crate::backend::segments::Reports,
    /// `probes.segments.enabled`: off, Private Access apps' step 8 is not evaluated.
    pub segments_enabled: bool,
    /// The backend timeout of each app whose internal URL is requested.
    pub timeouts: &'a HashMap<AppKey, Duration>,
    /// `probes.backend.timeout_risk_ratio`.
    pub risk_ratio: f64,
}

/// The walks of one round: this host's, each connector group's, and each app's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Walks {
    /// Steps 3-6 as this host judged them, before any app's own answers: served once.
    pub host: StepResults,
    /// Step 2 per connector group this host walks, as the inventory and this host judge it.
    pub groups: BTreeMap<String, Outcome>,
    pub apps: Vec<AppWalk>,
}

/// One app's walk through the flowchart.
#[derive(Debug, Clone, Serialize)]
pub struct AppWalk {
    /// The group the app is assigned to, or empty when it has none; shared with its [`AppKey`].
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
    pub backend_timeout: Option<Duration>,
    /// A Private Access app's segments as this host reached them (step 8), once probed.
    #[serde(skip)]
    pub segments: Option<Arc<SegmentReport>>,
}

/// Decides every walk of the round.
pub fn decide(evidence: &Evidence<'_>) -> Walks {
    let host = host_steps(
        [judged(evidence.endpoints), judged(evidence.proxy)],
        evidence.host_checks.failure_for(Step::RequiredEndpoints),
    );
    let host_is_connector = evidence
        .inventory
        .groups
        .iter()
        .any(|g| g.has_member(&evidence.host.machine));
    let services = evidence.services.and_then(|states| {
        judged(&Services {
            states,
            host_is_connector,
        })
        .get(Step::ConnectorInstalled)
        .cloned()
    });
    let certificate = evidence.host_checks.failure_for(Step::ConnectorInstalled);
    // Step 7 for any backend that offers only TLS 1.0/1.1: this host's SChannel decides.
    let legacy_tls = evidence.host_checks.legacy_tls_step_7();
    let mut groups: BTreeMap<String, Outcome> = BTreeMap::new();
    let apps = evidence
        .inventory
        .apps_to_walk(&evidence.host.groups, &evidence.host.machine)
        .into_iter()
        .map(|app| {
            let key = app.key();
            let inventory = judged(&AppSteps {
                inventory: evidence.inventory,
                app,
                host: evidence.host,
            });
            // Step 2 is the group's, the same for each of its apps, before their own answers.
            let group = inventory.get(Step::ConnectorInstalled).map(|outcome| {
                groups
                    .entry(key.connector_group.to_string())
                    .or_insert_with(|| {
                        connector_installed(outcome.clone(), services.clone(), certificate.clone())
                    })
                    .clone()
            });
            let backend = evidence.backends.get(&key).cloned();
            let answers = Answers {
                backend: backend.as_deref(),
                risk_ratio: evidence.risk_ratio,
                legacy_tls: Some(&legacy_tls),
            };
            // What the app's answers show about a step of another family, in its words.
            let mut earlier = StepResults::default();
            if let Some(detail) = answers.proxy_refusal() {
                earlier.set(Step::ForwardProxy, proxy::refused_backend_request(detail));
            }
            if let Some(evidence) = answers.names_connector_step() {
                earlier.set(
                    Step::ConnectorInstalled,
                    inventory::no_connector_answered(evidence),
                );
            }
            let segments = evidence.segments.get(&key).cloned();
            let private_access = app.segments.is_some();
            let unjudged = match (&app.publishing, evidence.unprobed.get(&key)) {
                // Steps 3-6 are this host's, as for a web app; 7-10 are the segments'.
                (Publishing::NotWebApp { .. }, _) if private_access => None,
                (Publishing::NotWebApp { reason }, _) => {
                    Some((&Step::ALL[2..], Outcome::not_evaluated(reason.clone())))
                }
                (Publishing::WebApp, reason) => reason.map(|r| (&Step::ALL[6..], r.clone())),
            };
            let answers = if private_access {
                judged(&Segments {
                    report: segments.as_deref(),
                    why_unprobed: if evidence.segments_enabled {
                        "the app's segments have not been probed yet"
                    } else {
                        "probes.segments.enabled is false: the app's segments are not probed"
                    },
                })
            } else {
                judged(&answers)
            };
            let steps = app_steps(AppEvidence {
                inventory,
                group,
                host: &host,
                earlier,
                answers,
                kerberos: evidence
                    .host_checks
                    .kerberos_failure(&key.connector_group, &key.app),
                unjudged,
            });
            AppWalk {
                failure: walk::walk(&steps),
                steps,
                backend_timeout: evidence.timeouts.get(&key).copied(),
                connector_group: key.connector_group,
                app: key.app,
                backend,
                segments,
            }
        })
        .collect();
    Walks { host, groups, apps }
}

/// Steps 3-6 of this host: the endpoints' (3-4) and the proxies' (5-6) outcomes; a host
/// check's failure of step 4 (`tls`: TLS 1.2 or .NET strong cryptography switched off) fails
/// it even where every endpoint answers.
pub fn host_steps(families: [StepResults; 2], tls: Option<Outcome>) -> StepResults {
    let mut steps = StepResults::default();
    for family in families {
        for (step, outcome) in family.iter() {
            steps.set(step, outcome.clone());
        }
    }
    fail_where_passed(&mut steps, Step::RequiredEndpoints, tls);
    steps
}

/// Step 2 of a group as this host sees it: the inventory's (the group has an active connector,
/// this host is an active member of it), failed by this host's connector services or its
/// trust certificate where the inventory passes it. A services outcome that is not a failure
/// (running, or not judged) leaves it as it is.
pub fn connector_installed(
    inventory: Outcome,
    services: Option<Outcome>,
    certificate: Option<Outcome>,
) -> Outcome {
    match (inventory, services, certificate) {
        (Outcome::Pass, Some(failed @ Outcome::Fail(_)), _) => failed,
        (Outcome::Pass, _, Some(failed)) => failed,
        (inventory, _, _) => inventory,
    }
}

/// What decides one app's steps, each from its own family.
#[derive(Debug, Clone)]
pub struct AppEvidence<'a> {
    /// Steps 1-2 as the inventory judges the app.
    pub inventory: StepResults,
    /// Step 2 of its group as this host sees it ([`connector_installed`]); `None` without one.
    pub group: Option<Outcome>,
    /// This host's steps 3-6 ([`host_steps`]).
    pub host: &'a StepResults,
    /// Failures of steps before 7 that the app's own answers show, in their families' words.
    pub earlier: StepResults,
    /// Steps 7-10 from the app's own backend and external answers.
    pub answers: StepResults,
    /// Step 7's failure when the app signs in with Kerberos and this host cannot delegate.
    pub kerberos: Option<Outcome>,
    /// The steps no probe can judge for the app, and why.
    pub unjudged: Option<(&'a [Step], Outcome)>,
}

/// The app's steps, in order of precedence: 1-2 from the inventory and its group; 3-6 from
/// this host; 7-10 from its own answers, which may fail an earlier step for it alone (but
/// never pass one: that is this host's); Kerberos delegation that cannot work fails step 7
/// where the page loads; what no probe can judge is not evaluated, with why.
pub fn app_steps(app: AppEvidence<'_>) -> StepResults {
    let mut steps = app.inventory;
    if let Some(outcome) = app.group {
        steps.set(Step::ConnectorInstalled, outcome);
    }
    for (step, outcome) in app.host.iter() {
        steps.set(step, outcome.clone());
    }
    for (step, outcome) in app.earlier.iter().filter(|(_, o)| !o.passed()) {
        steps.set(step, outcome.clone());
    }
    for (step, outcome) in app.answers.iter() {
        steps.set(step, outcome.clone());
    }
    fail_where_passed(&mut steps, Step::InternalUrl, app.kerberos);
    if let Some((unjudged, reason)) = app.unjudged {
        for step in unjudged {
            steps.set(*step, reason.clone());
        }
    }
    steps
}

/// A failure from a check beside the step's own probes fails the step where those passed or
/// judged nothing; it never replaces a failure they found.
fn fail_where_passed(steps: &mut StepResults, step: Step, failed: Option<Outcome>) {
    if let (None | Some(Outcome::Pass), Some(failed)) = (steps.get(step), failed) {
        steps.set(step, failed);
    }
}
