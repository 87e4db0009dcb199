//! Microsoft's "Debug Application Proxy connector issues" flowchart as data: the ten steps with
//! their numbers, label names, titles, remedies and documentation links, and [`walk`], the one
//! function that decides which step an app's walk stops at. No other module decides verdicts;
//! the probe modules only report each step's outcome and evidence.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};

/// A step of the flowchart, numbered as in Microsoft's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ConnectorGroupAssigned = 1,
    ConnectorInstalled = 2,
    PortTest = 3,
    RequiredEndpoints = 4,
    ForwardProxy = 5,
    ProxyConsistency = 6,
    InternalUrl = 7,
    InternalNetwork = 8,
    BackendTimeout = 9,
    EscalateAppFlow = 10,
}

/// What the flowchart says about one step.
#[derive(Debug)]
pub struct StepInfo {
    pub step: Step,
    /// The `step_name` label value; fixed by the contract.
    pub name: &'static str,
    pub title: &'static str,
    pub remedy: &'static str,
    pub doc_url: &'static str,
}

/// Microsoft's App Proxy documentation.
macro_rules! doc {
    ($page:literal) => {
        concat!(
            "https://learn.microsoft.com/entra/identity/app-proxy/",
            $page
        )
    };
}

/// Microsoft's private network connector documentation, where the connector pages moved when
/// the connector was renamed (entra-docs' redirections; tests/fixtures/endpoints/FACTS.md).
macro_rules! connector_doc {
    ($page:literal) => {
        concat!(
            "https://learn.microsoft.com/entra/global-secure-access/",
            $page
        )
    };
}

/// The ten steps in order. `STEPS[n - 1]` is step n.
pub const STEPS: [StepInfo; 10] = [
    StepInfo {
        step: Step::ConnectorGroupAssigned,
        name: "connector_group_assigned",
        title: "Find the connector group assigned to the app",
        remedy: "Assign the application to a connector group that exists (Entra admin center > Enterprise applications > the app > Application proxy > Connector Group).",
        doc_url: connector_doc!(
            "concept-connector-groups#assignment-of-applications-to-your-connector-groups"
        ),
    },
    StepInfo {
        step: Step::ConnectorInstalled,
        name: "connector_installed",
        title: "Install the connector and assign a group",
        remedy: "Install and register a connector in this group, or move an active connector into it; on the connector host, start the WAPCSvc and WAPCUpdaterSvc services.",
        doc_url: connector_doc!("how-to-configure-connectors#install-and-register-a-connector"),
    },
    StepInfo {
        step: Step::PortTest,
        name: "port_test",
        title: "Run a port test on the connector server",
        remedy: "Open outbound TCP 443 (service) and 80 (certificate revocation) from the connector server, for the Network Service account too if the firewall filters by user.",
        doc_url: connector_doc!("how-to-configure-connectors#open-ports"),
    },
    StepInfo {
        step: Step::RequiredEndpoints,
        name: "required_endpoints",
        title: "Configure the domains and ports",
        remedy: "Allow the listed Microsoft domains on their ports in the firewall or proxy allow-list, and make sure they resolve in DNS.",
        doc_url: connector_doc!("how-to-configure-connectors#allow-access-to-urls"),
    },
    StepInfo {
        step: Step::ForwardProxy,
        name: "forward_proxy",
        title: "Check if a back-end proxy is in use",
        remedy: "Make the forward proxy reachable, allow CONNECT to ports 443 and 80 without authentication, and exempt the connector's traffic from TLS inspection.",
        doc_url: doc!(
            "application-proxy-configure-connectors-with-proxy-servers#troubleshoot-connector-proxy-problems-and-service-connectivity-issues"
        ),
    },
    StepInfo {
        step: Step::ProxyConsistency,
        name: "proxy_consistency",
        title: "Update the connector and updater to use the back-end proxy",
        remedy: "Give the connector's and the updater's .exe.config files the same <defaultProxy> setting, pointing at the route that works, then restart both services.",
        doc_url: doc!("application-proxy-configure-connectors-with-proxy-servers"),
    },
    StepInfo {
        step: Step::InternalUrl,
        name: "internal_url",
        title: "Load the app's internal URL on the connector server",
        remedy: "Fix the backend application or the internal URL configured for the app: from the connector server it must answer with a page (a 401/403 sign-in challenge is fine).",
        doc_url: connector_doc!("troubleshoot-connectors"),
    },
    StepInfo {
        step: Step::InternalNetwork,
        name: "internal_network",
        title: "Check internal network connectivity",
        remedy: "Fix DNS, routing or the firewall between the connector server and the backend host; the connector event logs show the same failures.",
        doc_url: connector_doc!("concept-connectors#logs"),
    },
    StepInfo {
        step: Step::BackendTimeout,
        name: "backend_timeout",
        title: "Lengthen the time-out value on the back end",
        remedy: "For a Default app, set Backend Application Timeout to Long (180 s) in the app's Application proxy settings; for a Long app the backend must answer faster: 180 s is the ceiling.",
        doc_url: doc!(
            "application-proxy-add-on-premises-application#add-an-on-premises-app-to-microsoft-entra-id"
        ),
    },
    StepInfo {
        step: Step::EscalateAppFlow,
        name: "escalate_app_flow",
        title: "If issues persist, review the app and SSO debugging flows",
        remedy: "Every connector-side check passes but the app still fails from outside: follow Microsoft's application and single sign-on debugging flow.",
        doc_url: doc!("application-proxy-debug-apps"),
    },
];

impl Step {
    pub const ALL: [Step; 10] = [
        Step::ConnectorGroupAssigned,
        Step::ConnectorInstalled,
        Step::PortTest,
        Step::RequiredEndpoints,
        Step::ForwardProxy,
        Step::ProxyConsistency,
        Step::InternalUrl,
        Step::InternalNetwork,
        Step::BackendTimeout,
        Step::EscalateAppFlow,
    ];

    pub fn number(self) -> u8 {
        self as u8
    }

    /// The step's place in [`Step::ALL`] and in [`STEPS`].
    fn index(self) -> usize {
        usize::from(self.number()) - 1
    }

    pub fn info(self) -> &'static StepInfo {
        &STEPS[usize::from(self.number()) - 1]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }
}

/// A step's result: a word, or a reference to what was found. A host-level outcome (steps 3-6)
/// is the same for every app, so each app's copy is a reference, not another string.
///
/// A step with no outcome at all was not evaluated for a reason nobody needs
/// to read (not probed yet); one that no probe could judge says why with [`Outcome::NotEvaluated`].
/// Neither is ever a pass: the walk goes past them, and they have no `appproxy_flow_step_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail(Arc<Failed>),
    NotEvaluated(Arc<Unjudged>),
}

/// What a failing step found. A remedy or reason that is the same text for every app is
/// borrowed, not copied into each of thousands of apps' outcomes.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub evidence: String,
    /// What to change where, when the step knows better than its general remedy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Cow<'static, str>>,
}

/// Why nothing could judge the step here (a wildcard URL, an app that is no web app).
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Unjudged {
    pub reason: Cow<'static, str>,
}

impl Outcome {
    pub fn fail(evidence: impl Into<String>) -> Self {
        Self::Fail(Arc::new(Failed {
            evidence: evidence.into(),
            remedy: None,
        }))
    }

    /// A failure with a remedy specific to what was found (which file, which setting).
    pub fn fail_with_remedy(
        evidence: impl Into<String>,
        remedy: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Fail(Arc::new(Failed {
            evidence: evidence.into(),
            remedy: Some(remedy.into()),
        }))
    }

    pub fn not_evaluated(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::NotEvaluated(Arc::new(Unjudged {
            reason: reason.into(),
        }))
    }

    pub fn passed(&self) -> bool {
        matches!(self, Self::Pass)
    }

    /// Pass or fail: a probe judged the step.
    pub fn evaluated(&self) -> bool {
        !matches!(self, Self::NotEvaluated(_))
    }

    /// What a failure found; `None` unless the step failed.
    pub fn evidence(&self) -> Option<&str> {
        match self {
            Self::Fail(failed) => Some(&failed.evidence),
            Self::Pass | Self::NotEvaluated(_) => None,
        }
    }

    /// Why no probe could judge the step; `None` unless it was not evaluated.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::NotEvaluated(unjudged) => Some(&unjudged.reason),
            Self::Pass | Self::Fail(_) => None,
        }
    }
}

/// The outcomes known for one app, by step: a slot per step, in flowchart order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepResults([Option<Outcome>; 10]);

impl StepResults {
    pub fn set(&mut self, step: Step, outcome: Outcome) {
        self.0[step.index()] = Some(outcome);
    }

    pub fn get(&self, step: Step) -> Option<&Outcome> {
        self.0[step.index()].as_ref()
    }

    /// Evaluated steps in flowchart order.
    pub fn iter(&self) -> impl Iterator<Item = (Step, &Outcome)> {
        Step::ALL
            .iter()
            .zip(&self.0)
            .filter_map(|(step, outcome)| Some((*step, outcome.as_ref()?)))
    }
}

/// A map from step name to outcome, as the diagnosis API has always shown it.
impl Serialize for StepResults {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (step, outcome) in self.iter() {
            map.serialize_entry(&step, outcome)?;
        }
        map.end()
    }
}

/// Where a walk stopped and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    found: Arc<Failed>,
}

impl Failure {
    pub fn evidence(&self) -> &str {
        &self.found.evidence
    }

    /// The specific remedy, when the step found one; otherwise the step's general remedy.
    pub fn remedy(&self) -> &str {
        self.found
            .remedy
            .as_deref()
            .unwrap_or(self.step.info().remedy)
    }
}

impl Serialize for Failure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut failure = serializer.serialize_struct("Failure", 3)?;
        failure.serialize_field("step", &self.step)?;
        failure.serialize_field("evidence", self.evidence())?;
        failure.serialize_field("remedy", self.remedy())?;
        failure.end()
    }
}

/// Walks the chart in order and stops at the first failing step. Steps without an outcome were
/// not evaluated (for example the Windows service check on Linux) and are walked past: only
/// evidence of a failure stops the walk. `None` means every evaluated step passed.
pub fn walk(results: &StepResults) -> Option<Failure> {
    Step::ALL.iter().find_map(|step| match results.get(*step) {
        Some(Outcome::Fail(found)) => Some(Failure {
            step: *step,
            found: Arc::clone(found),
        }),
        Some(Outcome::Pass | Outcome::NotEvaluated(_)) | None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(outcomes: &[(Step, Outcome)]) -> StepResults {
        let mut results = StepResults::default();
        for (step, outcome) in outcomes {
            results.set(*step, outcome.clone());
        }
        results
    }

    #[test]
    fn steps_are_numbered_one_to_ten_in_table_order() {
        for (index, info) in STEPS.iter().enumerate() {
            assert_eq!(usize::from(info.step.number()), index + 1);
            assert_eq!(info.step.info().name, info.name);
            assert!(info.doc_url.starts_with("https://learn.microsoft.com/"));
        }
    }

    #[test]
    fn no_step_links_to_a_page_or_anchor_microsoft_moved() {
        // Redirected or removed when the connector became the private network connector.
        let moved = [
            "app-proxy/application-proxy-connector-groups",
            "app-proxy/application-proxy-debug-connectors",
            "app-proxy/application-proxy-connectors",
            "application-proxy-add-on-premises-application#prepare-your-on-premises-environment",
            "application-proxy-add-on-premises-application#install-and-register-a-connector",
        ];
        for info in &STEPS {
            for gone in moved {
                assert!(
                    !info.doc_url.contains(gone),
                    "{} links to {}",
                    info.name,
                    info.doc_url
                );
            }
        }
    }

    #[test]
    fn step_names_match_the_contract() {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "connector_group_assigned",
                "connector_installed",
                "port_test",
                "required_endpoints",
                "forward_proxy",
                "proxy_consistency",
                "internal_url",
                "internal_network",
                "backend_timeout",
                "escalate_app_flow"
            ]
        );
    }

    #[test]
    fn nothing_evaluated_means_no_failing_step() {
        assert_eq!(walk(&StepResults::default()), None);
    }

    #[test]
    fn every_step_passing_means_no_failing_step() {
        let all: Vec<_> = Step::ALL.iter().map(|s| (*s, Outcome::Pass)).collect();
        assert_eq!(walk(&results(&all)), None);
    }

    #[test]
    fn the_walk_stops_at_the_only_failing_step() {
        for failing in Step::ALL {
            let outcomes: Vec<_> = Step::ALL
                .iter()
                .map(|s| {
                    (
                        *s,
                        if *s == failing {
                            Outcome::fail("why")
                        } else {
                            Outcome::Pass
                        },
                    )
                })
                .collect();
            let failure = walk(&results(&outcomes)).unwrap();
            assert_eq!(failure.step, failing);
            assert_eq!(failure.evidence(), "why");
        }
    }

    #[test]
    fn the_earliest_of_several_failures_is_reported() {
        let r = results(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::PortTest, Outcome::fail("443 closed")),
            (Step::InternalNetwork, Outcome::fail("refused")),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::PortTest);
        assert_eq!(walk(&r).unwrap().evidence(), "443 closed");
    }

    #[test]
    fn a_specific_remedy_replaces_the_general_one() {
        let r = results(&[(
            Step::ForwardProxy,
            Outcome::fail_with_remedy("407", "allow CONNECT without authentication"),
        )]);
        assert_eq!(
            walk(&r).unwrap().remedy(),
            "allow CONNECT without authentication"
        );
        let r = results(&[(Step::ForwardProxy, Outcome::fail("407"))]);
        assert_eq!(walk(&r).unwrap().remedy(), Step::ForwardProxy.info().remedy);
    }

    #[test]
    fn steps_not_evaluated_are_walked_past() {
        let r = results(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::BackendTimeout, Outcome::fail("slow")),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::BackendTimeout);
    }

    #[test]
    fn a_step_no_probe_could_judge_is_walked_past_never_failed() {
        let r = results(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::InternalUrl, Outcome::not_evaluated("wildcard")),
            (Step::BackendTimeout, Outcome::fail("slow")),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::BackendTimeout);
        let r = results(&[(Step::InternalUrl, Outcome::not_evaluated("wildcard"))]);
        assert_eq!(walk(&r), None);
    }

    #[test]
    fn a_later_pass_does_not_hide_an_earlier_failure() {
        let r = results(&[
            (Step::EscalateAppFlow, Outcome::Pass),
            (
                Step::ConnectorInstalled,
                Outcome::fail("no active connector"),
            ),
        ]);
        assert_eq!(walk(&r).unwrap().step, Step::ConnectorInstalled);
    }
}
