//! Step 2's local part, on Windows: are the connector's services (`WAPCSvc`) and its updater
//! (`WAPCUpdaterSvc`) installed and running on this host? Both must run. Elsewhere there is no
//! such service to ask, and the check is not evaluated.

use serde::Serialize;

use crate::walk::{Judge, Outcome, Step, StepResults};

/// The Windows service names, the same before and after the 2024 rename.
pub const SERVICES: [(&str, &str); 2] = [("connector", "WAPCSvc"), ("updater", "WAPCUpdaterSvc")];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Running,
    /// Installed, in another state (stopped, starting, paused ...).
    NotRunning(String),
    Missing,
}

/// Each service's state, by label (`connector`, `updater`); `None` off Windows.
pub fn services() -> Option<Vec<(&'static str, ServiceState)>> {
    query()
}

#[cfg(windows)]
fn query() -> Option<Vec<(&'static str, ServiceState)>> {
    use windows_service::service::{ServiceAccess, ServiceState as Win};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    let manager = match ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
    {
        Ok(manager) => manager,
        Err(error) => {
            tracing::warn!(%error, "cannot ask the Service Control Manager about the connector's services");
            return None;
        }
    };
    Some(
        SERVICES
            .iter()
            .map(|(label, name)| {
                let state = match manager.open_service(name, ServiceAccess::QUERY_STATUS) {
                    Err(_) => ServiceState::Missing,
                    Ok(service) => match service.query_status() {
                        Ok(status) if status.current_state == Win::Running => ServiceState::Running,
                        Ok(status) => {
                            ServiceState::NotRunning(format!("{:?}", status.current_state))
                        }
                        Err(error) => ServiceState::NotRunning(format!("unknown ({error})")),
                    },
                };
                (*label, state)
            })
            .collect(),
    )
}

#[cfg(not(windows))]
fn query() -> Option<Vec<(&'static str, ServiceState)>> {
    None
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
