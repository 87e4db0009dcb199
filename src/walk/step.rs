//! The flowchart as data: Microsoft's ten steps with their numbers, `step_name` label values,
//! titles, remedies, documentation links, and the runbook each links to.

use serde::Serialize;

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
    pub(super) fn index(self) -> usize {
        usize::from(self.number()) - 1
    }

    pub fn info(self) -> &'static StepInfo {
        &STEPS[usize::from(self.number()) - 1]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }
}

/// The runbook of a step, as the exporter serves it; `runbooks` is where the runbooks are
/// (`/runbooks`, or an absolute URL under `--web.external-url`).
pub fn runbook_url(runbooks: &str, step: Step) -> String {
    format!("{runbooks}/{}", step.name())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
