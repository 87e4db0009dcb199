//! The Service Control Manager: whether each of a few services is installed on this host, and
//! in which state. Elsewhere there is no Service Control Manager ([`ServicesError::Unavailable`]).

use serde::Serialize;

use super::Unavailable;

/// One service's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Running,
    /// Installed, in another state (stopped, starting, paused ...).
    NotRunning(String),
    Missing,
}

/// Why the services were not asked about.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[cfg(windows)]
    #[error(transparent)]
    Connect(windows_service::Error),
}

/// The state of each service in `names`, in that order.
#[cfg(windows)]
pub fn query(names: &[&str]) -> Result<Vec<ServiceState>, ServicesError> {
    use windows_service::service::{ServiceAccess, ServiceState as Win};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(ServicesError::Connect)?;
    Ok(names
        .iter()
        .map(
            |name| match manager.open_service(name, ServiceAccess::QUERY_STATUS) {
                Err(_) => ServiceState::Missing,
                Ok(service) => match service.query_status() {
                    Ok(status) if status.current_state == Win::Running => ServiceState::Running,
                    Ok(status) => ServiceState::NotRunning(format!("{:?}", status.current_state)),
                    Err(error) => ServiceState::NotRunning(format!("unknown ({error})")),
                },
            },
        )
        .collect())
}

#[cfg(not(windows))]
pub fn query(_names: &[&str]) -> Result<Vec<ServiceState>, ServicesError> {
    Err(Unavailable::NotWindows.into())
}

/// The process id of the first of `names` that is running (the connector's service name is
/// the same in both of its releases, but its executable is not), from
/// `QueryServiceStatusEx`'s `SERVICE_STATUS_PROCESS`; `None` when none of them runs.
#[cfg(windows)]
pub fn running_process_id(names: &[&str]) -> Result<Option<u32>, ServicesError> {
    use windows_service::service::{ServiceAccess, ServiceState as Win};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(ServicesError::Connect)?;
    Ok(names.iter().find_map(|name| {
        let status = manager
            .open_service(name, ServiceAccess::QUERY_STATUS)
            .ok()?
            .query_status()
            .ok()?;
        // A service that is not running has no process (its id is 0).
        (status.current_state == Win::Running)
            .then_some(status.process_id)
            .flatten()
            .filter(|pid| *pid != 0)
    }))
}

#[cfg(not(windows))]
pub fn running_process_id(_names: &[&str]) -> Result<Option<u32>, ServicesError> {
    Err(Unavailable::NotWindows.into())
}
