//! What the connector's updater did, which says why a connector is behind: whether its service
//! (`WAPCUpdaterSvc`, the same name before and after the 2024 rename) runs, from the Service
//! Control Manager (asked by the prober), and when its Admin log
//! (`Microsoft-AadApplicationProxy-Updater/Admin` or `Microsoft-Microsoft Entra private
//! network-Updater/Admin`, read by [`super::super::eventlog`]) last recorded anything. Both are
//! read elsewhere in the round; this only puts them into words. Off Windows, or where neither
//! exists, each part is not evaluated and says why.
//!
//! Microsoft's release history: "As long as the private network connector updater service is
//! running, your connectors may update with this connector release automatically. If you don't
//! see the connector updater service on your server, you need to reinstall your connector
//! manually to get updates."

use serde::Serialize;

use crate::host::Verdict;
use crate::host::eventlog::{Channel, EventLogState};
use crate::platform::services::ServiceState;

/// The updater service's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpdaterService {
    Running,
    NotRunning { status: String },
    Missing,
    NotEvaluated { reason: String },
}

/// The newest event of the updater's Admin log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpdaterLog {
    /// Unix seconds of the newest event read.
    LastEvent {
        time: i64,
    },
    /// The log was read, and held nothing new since the exporter began reading it (after a
    /// restart, from its saved bookmark: events before it are not read again).
    NothingRead,
    NotEvaluated {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdaterActivity {
    pub service: UpdaterService,
    pub log: UpdaterLog,
}

impl Default for UpdaterActivity {
    fn default() -> Self {
        let reason = || "not read yet".to_string();
        UpdaterActivity {
            service: UpdaterService::NotEvaluated { reason: reason() },
            log: UpdaterLog::NotEvaluated { reason: reason() },
        }
    }
}

/// The updater's activity from this round's services (`None`: the Service Control Manager was
/// not asked) and event log.
pub fn updater_activity(
    services: Option<&[(&'static str, ServiceState)]>,
    event_log: &EventLogState,
) -> UpdaterActivity {
    let service = match services {
        None => UpdaterService::NotEvaluated {
            reason: match crate::platform::Windows::here() {
                Err(why) => why.to_string(),
                Ok(_) => {
                    "the Service Control Manager could not be asked (the exporter's log says why)"
                        .into()
                }
            },
        },
        Some(states) => match states.iter().find(|(label, _)| *label == "updater") {
            None | Some((_, ServiceState::Missing)) => UpdaterService::Missing,
            Some((_, ServiceState::Running)) => UpdaterService::Running,
            Some((_, ServiceState::NotRunning(status))) => UpdaterService::NotRunning {
                status: status.clone(),
            },
        },
    };
    let log = match (
        event_log.channels.get(&Channel::Updater),
        &event_log.verdict,
    ) {
        (Some(counts), _) => match counts.last_event {
            Some(time) => UpdaterLog::LastEvent { time },
            None => UpdaterLog::NothingRead,
        },
        (None, Verdict::NotEvaluated { reason }) => UpdaterLog::NotEvaluated {
            reason: reason.clone(),
        },
        (None, _) => UpdaterLog::NotEvaluated {
            reason: "this host has no updater Admin log (neither name exists)".into(),
        },
    };
    UpdaterActivity { service, log }
}

impl UpdaterActivity {
    /// What the updater did, in a sentence for the version check's evidence.
    pub fn sentence(&self) -> String {
        let service = match &self.service {
            UpdaterService::Running => "The updater service (WAPCUpdaterSvc) runs".to_string(),
            UpdaterService::NotRunning { status } => format!(
                "The updater service (WAPCUpdaterSvc) is {status}: start it and set it to start automatically, or the connector never updates"
            ),
            UpdaterService::Missing => "There is no updater service (WAPCUpdaterSvc) on this host: reinstall the connector from the Microsoft Entra admin center to get updates".to_string(),
            UpdaterService::NotEvaluated { reason } => {
                format!("Whether the updater service (WAPCUpdaterSvc) runs is not known here: {reason}")
            }
        };
        let log = match &self.log {
            UpdaterLog::LastEvent { time } => {
                format!("its Admin log last recorded activity at {}", rfc3339(*time))
            }
            UpdaterLog::NothingRead => {
                "its Admin log has recorded nothing since the exporter began reading it".to_string()
            }
            UpdaterLog::NotEvaluated { reason } => {
                format!("its Admin log was not read: {reason}")
            }
        };
        format!("{service}; {log}.")
    }

    /// Unix seconds of the updater's last recorded activity, when known.
    pub fn last_activity(&self) -> Option<i64> {
        match self.log {
            UpdaterLog::LastEvent { time } => Some(time),
            _ => None,
        }
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("unix time {unix}"))
}
