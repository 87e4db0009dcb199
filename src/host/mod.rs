//! The connector host's own health: what breaks a connector before any user complains, read on
//! the host itself. One file per check, each with one function named after it:
//! [`certificate::check_certificate`] (the trust certificate, step 2), [`eventlog`] (the
//! connector's Admin event log, each documented event id mapped to its step),
//! [`version::check_version`] (behind the newest release that updates automatically, with
//! what its updater did; the releases in [`releases`], step 2),
//! [`tls::check_tls`] (TLS 1.2 and .NET strong crypto, step 4),
//! [`legacy_tls::check_legacy_tls`] (whether SChannel still speaks TLS 1.0/1.1, which decides
//! step 7 for a backend that offers nothing newer), [`kerberos::check_kerberos`] (delegation
//! for Kerberos SSO apps, shown with step 7) and [`capacity::CapacityMonitor::check_capacity`]
//! (CPU, memory and ephemeral ports against Microsoft's sizing advice, shown with step 2; it
//! warns, never fails a step).
//!
//! Every check reads Windows through [`crate::platform`] (files under `%ProgramData%`, the
//! registry, the certificate store, the event log API, the domain) and judges what it read
//! here. Elsewhere, or where the connector is not installed, a check is not evaluated and says
//! why (the platform's stand-in gives the reason): never passed.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::platform::deadline::Pending;
use crate::walk::{Outcome, Step};

pub mod capacity;
pub mod certificate;
pub mod eventlog;
pub mod kerberos;
pub mod legacy_tls;
pub mod releases;
pub mod tls;
pub mod version;

/// The checks, in the order the page and `diagnose` show them (the `check` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Certificate,
    EventLog,
    Version,
    Tls,
    Kerberos,
    Capacity,
}

impl CheckKind {
    pub const ALL: [CheckKind; 6] = [
        CheckKind::Certificate,
        CheckKind::EventLog,
        CheckKind::Version,
        CheckKind::Tls,
        CheckKind::Kerberos,
        CheckKind::Capacity,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CheckKind::Certificate => "certificate",
            CheckKind::EventLog => "event_log",
            CheckKind::Version => "version",
            CheckKind::Tls => "tls",
            CheckKind::Kerberos => "kerberos",
            CheckKind::Capacity => "capacity",
        }
    }

    /// The flowchart step the check explains. Capacity is the connector's own health, as
    /// step 2 is (an overloaded connector is one the group cannot count on); it only warns.
    pub fn step(self) -> Step {
        match self {
            CheckKind::Certificate
            | CheckKind::Version
            | CheckKind::EventLog
            | CheckKind::Capacity => Step::ConnectorInstalled,
            CheckKind::Tls => Step::RequiredEndpoints,
            CheckKind::Kerberos => Step::InternalUrl,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            CheckKind::Certificate => "Connector trust certificate",
            CheckKind::EventLog => "Connector Admin event log",
            CheckKind::Version => "Connector version",
            CheckKind::Tls => "TLS 1.2 prerequisites",
            CheckKind::Kerberos => "Kerberos delegation (KCD) readiness",
            CheckKind::Capacity => "Connector host capacity (CPU, memory, ephemeral ports)",
        }
    }

    /// The check's section in its step's runbook; `runbooks` is where the runbooks are (as in
    /// [`crate::walk::runbook_url`]).
    pub fn runbook(self, runbooks: &str) -> String {
        format!(
            "{}#host-check-{}",
            crate::walk::runbook_url(runbooks, self.step()),
            self.label()
        )
    }
}

/// What one check concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Works today, needs attention (a certificate close to expiry, a connector behind).
    Warning {
        evidence: String,
    },
    /// Breaks the check's step for this host.
    Fail {
        evidence: String,
        remedy: String,
    },
    NotEvaluated {
        reason: String,
    },
}

impl Verdict {
    pub fn not_evaluated(reason: impl Into<String>) -> Self {
        Verdict::NotEvaluated {
            reason: reason.into(),
        }
    }

    pub fn fail(evidence: impl Into<String>, remedy: impl Into<String>) -> Self {
        Verdict::Fail {
            evidence: evidence.into(),
            remedy: remedy.into(),
        }
    }

    /// The step outcome it stands for: a warning still passes.
    pub fn outcome(&self) -> Outcome {
        match self {
            Verdict::Pass | Verdict::Warning { .. } => Outcome::Pass,
            Verdict::Fail { evidence, remedy } => {
                Outcome::fail_with_remedy(evidence.clone(), remedy.clone())
            }
            Verdict::NotEvaluated { reason } => Outcome::not_evaluated(reason.clone()),
        }
    }

    pub fn evaluated(&self) -> bool {
        !matches!(self, Verdict::NotEvaluated { .. })
    }
}

/// One check's verdict, with the step it explains.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: CheckKind,
    pub verdict: Verdict,
    /// What a passing check saw, where it has something to say (the version check's releases
    /// and updater).
    pub note: Option<String>,
}

/// Everything the host checks found in one round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostHealth {
    pub certificate: Option<certificate::CertificateState>,
    pub event_log: Option<eventlog::EventLogState>,
    pub version: Option<version::VersionState>,
    pub tls: Option<tls::TlsState>,
    pub kerberos: Option<kerberos::KerberosState>,
    pub capacity: Option<capacity::CapacityState>,
    /// Not a check of its own: it decides step 7 only for a backend that offers only TLS
    /// 1.0/1.1 ([`HostHealth::legacy_tls_step_7`]).
    pub legacy_tls: Option<legacy_tls::LegacyTls>,
}

impl HostHealth {
    /// Each check's verdict, in [`CheckKind::ALL`] order; a check that has not run yet is not
    /// evaluated.
    pub fn checks(&self) -> Vec<Check> {
        let not_run = || Verdict::not_evaluated("not checked yet");
        CheckKind::ALL
            .into_iter()
            .map(|check| {
                let verdict = match check {
                    CheckKind::Certificate => self.certificate.as_ref().map(|s| s.verdict.clone()),
                    CheckKind::EventLog => self.event_log.as_ref().map(|s| s.verdict.clone()),
                    CheckKind::Version => self.version.as_ref().map(|s| s.verdict.clone()),
                    CheckKind::Tls => self.tls.as_ref().map(|s| s.verdict.clone()),
                    CheckKind::Kerberos => self.kerberos.as_ref().map(|s| s.verdict.clone()),
                    CheckKind::Capacity => self.capacity.as_ref().map(|s| s.verdict.clone()),
                }
                .unwrap_or_else(not_run);
                let note = match (check, &verdict) {
                    (CheckKind::Version, Verdict::Pass) => {
                        self.version.as_ref().and_then(|s| s.note.clone())
                    }
                    _ => None,
                };
                Check {
                    check,
                    verdict,
                    note,
                }
            })
            .collect()
    }

    /// The outcome this host's checks give `step` (2 or 4), when one of them fails it.
    /// Kerberos is judged per app ([`HostHealth::kerberos_failure`]).
    pub fn failure_for(&self, step: Step) -> Option<Outcome> {
        self.checks()
            .into_iter()
            .filter(|c| c.check.step() == step && c.check != CheckKind::Kerberos)
            .find(|c| matches!(c.verdict, Verdict::Fail { .. }))
            .map(|c| c.verdict.outcome())
    }

    /// Step 7's outcome for a backend that offers only TLS 1.0/1.1, as this host's SChannel
    /// decides it ([`legacy_tls::LegacyTls::for_step_7`]); before the settings are read, not
    /// evaluated.
    pub fn legacy_tls_step_7(&self) -> Outcome {
        match &self.legacy_tls {
            Some(legacy) => legacy.for_step_7(),
            None => Outcome::not_evaluated(
                "the exporter's TLS cannot speak it, and this host's SChannel settings are not read yet: step 7 is not evaluated",
            ),
        }
    }

    /// Step 7's outcome for an app whose Kerberos delegation cannot work from this host.
    pub fn kerberos_failure(&self, connector_group: &str, app: &str) -> Option<Outcome> {
        self.kerberos
            .as_ref()?
            .apps
            .iter()
            .find(|a| a.app.connector_group == connector_group && a.app.app == app)
            .filter(|a| matches!(a.verdict, Verdict::Fail { .. }))
            .map(|a| a.verdict.outcome())
    }
}

/// What the checks need from the rest of the round.
#[derive(Debug, Clone, Default)]
pub struct HostInput {
    pub service_config: crate::config::values::AutoOr<std::path::PathBuf>,
    /// Whether the connector's service is installed here (`None`: unknown, off Windows).
    pub connector_installed: Option<bool>,
    /// Graph's versions of the connectors in this host's groups.
    pub group_versions: Vec<String>,
    /// The connector releases to judge this host's connector against.
    pub releases: releases::ReleaseList,
    /// This round's states of the connector's services (`connector`, `updater`); `None` where
    /// the Service Control Manager was not asked.
    pub services: Option<Vec<(&'static str, crate::platform::services::ServiceState)>>,
    /// The walked apps that sign in with Kerberos.
    pub kerberos_apps: Vec<kerberos::KerberosApp>,
    pub timeout: std::time::Duration,
    /// How long the round waits for the checks' blocking reads.
    pub read_limit: std::time::Duration,
}

/// The checks that read this host's files, registry, certificate store and event log.
#[derive(Debug, Clone)]
pub struct LocalChecks {
    pub certificate: certificate::CertificateState,
    pub event_log: eventlog::EventLogState,
    pub version: version::VersionState,
    pub tls: tls::TlsState,
    pub capacity: capacity::CapacityState,
    pub legacy_tls: legacy_tls::LegacyTls,
}

impl LocalChecks {
    /// Each check not evaluated, for `reason`.
    fn not_evaluated(reason: &str) -> LocalChecks {
        let verdict = Verdict::not_evaluated(reason);
        LocalChecks {
            certificate: certificate::CertificateState {
                verdict: verdict.clone(),
                certificate: None,
            },
            event_log: eventlog::EventLogState {
                verdict: verdict.clone(),
                channels: Default::default(),
            },
            version: version::VersionState::not_evaluated(
                reason,
                &releases::ReleaseList::builtin(),
                version::UpdaterActivity::default(),
            ),
            tls: tls::TlsState {
                verdict: verdict.clone(),
                met: Vec::new(),
            },
            capacity: capacity::assemble(
                capacity::Reading::not_evaluated(reason),
                capacity::Reading::not_evaluated(reason),
                capacity::Reading::not_evaluated(reason),
                capacity::Reading::not_evaluated(reason),
            )
            .with_verdict(verdict),
            legacy_tls: legacy_tls::LegacyTls::Unknown {
                reason: reason.to_string(),
            },
        }
    }
}

/// Runs every check once: the blocking reads (files, registry, certificate store, event log,
/// the capacity figures) off the async workers and under the round's deadline (a read still
/// running from an earlier round of this `generation` is waited on, not started again), then
/// Kerberos' network checks.
pub async fn check_all(
    input: HostInput,
    event_log: Arc<Mutex<eventlog::EventLogMonitor>>,
    capacity: Arc<Mutex<capacity::CapacityMonitor>>,
    pending: &mut Pending<Option<LocalChecks>>,
    generation: u64,
) -> HostHealth {
    let blocking = input.clone();
    let read = move || {
        // The event log first: the version check tells what the updater's log recorded.
        let event_log = event_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check_event_log();
        let updater = version::updater::updater_activity(blocking.services.as_deref(), &event_log);
        Some(LocalChecks {
            certificate: certificate::check_certificate(
                blocking.connector_installed,
                std::time::SystemTime::now(),
            ),
            version: version::check_version(
                &version::executable_paths(&blocking.service_config),
                &blocking.releases,
                &blocking.group_versions,
                updater,
            ),
            tls: tls::check_tls(),
            legacy_tls: legacy_tls::check_legacy_tls(),
            event_log,
            capacity: capacity
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .check_capacity(),
        })
    };
    let local = match pending.wait(generation, input.read_limit, read).await {
        Ok(local) => local,
        Err(waited) => Some(LocalChecks::not_evaluated(&format!(
            "this host's files and settings were still being read after {} s (a network share or a Windows service that does not answer?); the read goes on, and the next round uses it if it finishes",
            waited.as_secs()
        ))),
    };
    let kerberos = kerberos::check_kerberos(input.kerberos_apps, input.timeout).await;
    match local {
        Some(local) => HostHealth {
            certificate: Some(local.certificate),
            event_log: Some(local.event_log),
            version: Some(local.version),
            tls: Some(local.tls),
            kerberos: Some(kerberos),
            capacity: Some(local.capacity),
            legacy_tls: Some(local.legacy_tls),
        },
        // The read panicked (logged): every check waits for the next round.
        None => HostHealth {
            kerberos: Some(kerberos),
            ..HostHealth::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(check: CheckKind) -> HostHealth {
        let fail = Verdict::fail("why", "fix it");
        let mut host = HostHealth::default();
        match check {
            CheckKind::Certificate => {
                host.certificate = Some(certificate::CertificateState {
                    verdict: fail,
                    certificate: None,
                })
            }
            CheckKind::Tls => {
                host.tls = Some(tls::TlsState {
                    verdict: fail,
                    met: Vec::new(),
                })
            }
            _ => {}
        }
        host
    }

    #[test]
    fn a_failing_certificate_fails_step_2_and_tls_fails_step_4_with_their_remedies() {
        let outcome = failing(CheckKind::Certificate).failure_for(Step::ConnectorInstalled);
        assert_eq!(outcome, Some(Outcome::fail_with_remedy("why", "fix it")));
        assert_eq!(
            failing(CheckKind::Certificate).failure_for(Step::RequiredEndpoints),
            None
        );
        let outcome = failing(CheckKind::Tls).failure_for(Step::RequiredEndpoints);
        assert_eq!(outcome, Some(Outcome::fail_with_remedy("why", "fix it")));
    }

    #[test]
    fn warnings_and_checks_not_run_fail_nothing() {
        let host = HostHealth {
            version: Some(version::VersionState {
                verdict: Verdict::Warning {
                    evidence: "2 releases behind".into(),
                },
                releases_behind: Some(2),
                ..version::VersionState::not_evaluated(
                    "",
                    &releases::ReleaseList::builtin(),
                    version::UpdaterActivity::default(),
                )
            }),
            ..HostHealth::default()
        };
        assert_eq!(host.failure_for(Step::ConnectorInstalled), None);
        assert!(
            host.checks()
                .iter()
                .all(|c| !matches!(c.verdict, Verdict::Fail { .. }))
        );
        assert_eq!(host.checks().len(), CheckKind::ALL.len());
    }

    #[tokio::test]
    async fn host_checks_whose_reads_outlive_the_round_are_not_evaluated_and_say_why() {
        let mut pending = Pending::default();
        // A read of this generation still hangs, as one on a share that does not answer.
        let (_release, hung) = std::sync::mpsc::channel::<()>();
        let started = pending
            .wait(1, std::time::Duration::from_millis(1), move || {
                hung.recv().ok();
                None
            })
            .await;
        assert!(started.is_err());
        let input = HostInput {
            read_limit: std::time::Duration::from_millis(50),
            ..HostInput::default()
        };
        let host = check_all(input, Arc::default(), Arc::default(), &mut pending, 1).await;
        for check in host.checks() {
            if check.check == CheckKind::Kerberos {
                continue;
            }
            assert!(
                matches!(&check.verdict, Verdict::NotEvaluated { reason } if reason.contains("still being read after")),
                "{check:?}"
            );
        }
        assert!(
            pending.is_running(),
            "the hung read is waited on again, not dropped"
        );
    }

    #[test]
    fn kerberos_fails_step_7_only_for_its_own_app() {
        let app = |name: &str| kerberos::KerberosApp {
            connector_group: "Default".into(),
            app: name.into(),
            spn: format!("http/{name}"),
        };
        let host = HostHealth {
            kerberos: Some(kerberos::KerberosState {
                verdict: Verdict::fail("not delegated", "delegate"),
                checks: Vec::new(),
                apps: vec![
                    kerberos::AppDelegation {
                        app: app("payroll"),
                        verdict: Verdict::fail("not delegated", "delegate"),
                    },
                    kerberos::AppDelegation {
                        app: app("intranet"),
                        verdict: Verdict::Pass,
                    },
                ],
            }),
            ..HostHealth::default()
        };
        assert!(host.kerberos_failure("Default", "payroll").is_some());
        assert_eq!(host.kerberos_failure("Default", "intranet"), None);
        assert_eq!(host.kerberos_failure("Other", "payroll"), None);
        assert_eq!(host.failure_for(Step::InternalUrl), None, "judged per app");
    }
}
