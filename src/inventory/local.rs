//! Step 2's local part, on Windows: are the connector's services (`WAPCSvc`) and its updater
//! (`WAPCUpdaterSvc`) installed and running on this host? Both must run. The Service Control
//! Manager is asked through [`crate::platform::services`]; elsewhere there is no such service
//! to ask, and the check is not evaluated.

pub use crate::platform::services::ServiceState;
use crate::platform::services::{self, ServicesError};
use crate::walk::{Judge, Outcome, Step, StepResults};

/// The Windows service names, the same before and after the 2024 rename.
pub const SERVICES: [(&str, &str); 2] = [("connector", "WAPCSvc"), ("updater", "WAPCUpdaterSvc")];

/// Each service's state, by label (`connector`, `updater`); `None` off Windows, or when the
/// Service Control Manager cannot be asked (logged).
pub fn services() -> Option<Vec<(&'static str, ServiceState)>> {
    let names: Vec<&str> = SERVICES.iter().map(|(_, name)| *name).collect();
    match services::query(&names) {
        Ok(states) => Some(
            SERVICES
                .iter()
                .map(|(label, _)| *label)
                .zip(states)
                .collect(),
        ),
        Err(error) => {
            // Off Windows there is nothing to ask, which is no news.
            if !matches!(error, ServicesError::Unavailable(_)) {
                tracing::warn!(%error, "cannot ask the Service Control Manager about the connector's services");
            }
            None
        }
    }
}

/// Step 2 from the connector's services on this host. A host where the connector is not
/// installed is judged only when the inventory says it is a connector: otherwise it watches
/// from outside.
#[derive(Debug, Clone, Copy)]
pub struct Services<'a> {
    pub states: &'a [(&'static str, ServiceState)],
    pub host_is_connector: bool,
}

impl Judge for Services<'_> {
    const STEPS: &'static [Step] = &[Step::ConnectorInstalled];

    fn judge(&self) -> StepResults {
        let mut results = StepResults::default();
        if let Some(outcome) = judge(self.states, self.host_is_connector) {
            results.set(Step::ConnectorInstalled, outcome);
        }
        results
    }
}

fn judge(states: &[(&'static str, ServiceState)], host_is_connector: bool) -> Option<Outcome> {
    let name = |label: &str| {
        SERVICES
            .iter()
            .find(|(l, _)| *l == label)
            .map_or("?", |(_, n)| n)
    };
    let installed = states.iter().any(|(_, s)| *s != ServiceState::Missing);
    if !installed && !host_is_connector {
        return None;
    }
    let problems: Vec<String> = states
        .iter()
        .filter_map(|(label, state)| match state {
            ServiceState::Running => None,
            ServiceState::NotRunning(how) => {
                Some(format!("the {label} service {} is {how}", name(label)))
            }
            ServiceState::Missing => Some(format!(
                "the {label} service {} is not installed on this host",
                name(label)
            )),
        })
        .collect();
    Some(if problems.is_empty() {
        Outcome::Pass
    } else {
        Outcome::fail_with_remedy(
            problems.join("; "),
            "Start the connector's services on this host (Start-Service WAPCSvc, WAPCUpdaterSvc), or reinstall the connector; the event logs under Applications and Services Logs > Microsoft > Microsoft Entra private network (AadApplicationProxy before the 2024 rename) say why they stopped.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_running_passes() {
        let states = [
            ("connector", ServiceState::Running),
            ("updater", ServiceState::Running),
        ];
        assert_eq!(judge(&states, true), Some(Outcome::Pass));
    }

    #[test]
    fn a_stopped_updater_fails_and_says_which() {
        let states = [
            ("connector", ServiceState::Running),
            ("updater", ServiceState::NotRunning("Stopped".into())),
        ];
        let Some(Outcome::Fail(found)) = judge(&states, true) else {
            panic!()
        };
        let evidence = &found.evidence;
        assert_eq!(evidence, "the updater service WAPCUpdaterSvc is Stopped");
    }

    #[test]
    fn a_host_without_the_connector_is_judged_only_if_the_inventory_says_it_is_one() {
        let states = [
            ("connector", ServiceState::Missing),
            ("updater", ServiceState::Missing),
        ];
        assert_eq!(judge(&states, false), None);
        assert!(matches!(judge(&states, true), Some(Outcome::Fail(_))));
    }
}
