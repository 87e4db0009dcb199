//! The connector's registration errors, which it writes to the Windows Application log under
//! an event source of its own rather than to its Admin log: Microsoft's "Troubleshoot problems
//! installing the private network connector" (entra-docs,
//! `docs/global-secure-access/troubleshoot-connectors.md`, "Connector errors": `Windows
//! Logs\Application (filter by Source = "Microsoft Entra private network connector")`), and
//! before the 2024 rename "Troubleshoot Application Proxy problems and error messages"
//! (`Get-EventLog application -source "Microsoft AAD Application Proxy Connector"`). The
//! pages document the messages, not their event ids, so an event is attributed to a step by
//! the start of its message, and to step 2 (`connector_installed`) when it matches none: a
//! connector that failed to register is not installed as far as the service knows.

use crate::walk::Step;

/// The event sources (the `Provider/@Name` of the rendered event) the connector's
/// registration writes under, new name first.
pub const SOURCES: [&str; 2] = [
    "Microsoft Entra private network connector",
    "Microsoft AAD Application Proxy Connector",
];

/// A registration error Microsoft documents, by how its message starts.
#[derive(Debug)]
pub struct Documented {
    /// The message's start, as the table quotes it (compared without regard to letter case).
    pub starts: &'static str,
    pub step: Step,
    /// What it means, after Microsoft's "recommended steps", shortened.
    pub meaning: &'static str,
}

/// The "Connector errors" table of troubleshoot-connectors.md, in its order. The registration
/// failures whose recommended step is a network check are the port test's; the configuration
/// download is the proxy's (the page: "occurs if you have the connector installed behind a
/// proxy").
pub const DOCUMENTED: [Documented; 5] = [
    Documented {
        starts: "Connector registration failed: Make sure you are an Application Administrator",
        step: Step::ConnectorInstalled,
        meaning: "registration denied: the account that registered the connector is not at least an Application Administrator of the tenant",
    },
    Documented {
        starts: "Connector registration failed",
        step: Step::ConnectorInstalled,
        meaning: "connector registration failed: the sign-in was closed or refused (AADSTS50059: an account outside the tenant's domains), or the network failed during registration",
    },
    Documented {
        starts: "Failed to retrieve the current execution policy",
        step: Step::ConnectorInstalled,
        meaning: "the installation could not run PowerShell: the execution policy is disabled by Group Policy",
    },
    Documented {
        starts: "Connector failed to download the configuration",
        step: Step::ForwardProxy,
        meaning: "the connector's client certificate expired because it could not reach the service (behind a proxy)",
    },
    Documented {
        starts: "The connector was unable to connect to the service due to networking issues",
        step: Step::PortTest,
        meaning: "the connector cannot connect to the service: a firewall blocks the required ports or URLs",
    },
];

/// Whether an event of the Application log is the connector's (by its source).
pub fn is_connector_source(provider: &str) -> bool {
    SOURCES.iter().any(|s| s.eq_ignore_ascii_case(provider))
}

/// The documented error a message is, if any: the first row whose start it has.
pub fn documented(message: Option<&str>) -> Option<&'static Documented> {
    let message = message?.trim_start();
    DOCUMENTED.iter().find(|d| {
        message
            .get(..d.starts.len())
            .is_some_and(|m| m.eq_ignore_ascii_case(d.starts))
    })
}

/// The step a registration event explains: its documented row's, else step 2.
pub fn step_of(message: Option<&str>) -> Step {
    documented(message).map_or(Step::ConnectorInstalled, |d| d.step)
}
