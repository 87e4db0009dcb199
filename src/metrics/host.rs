//! The connector host's own health as metric families (src/host): each check's verdict, and
//! what it measured. Labels are bounded: check and prerequisite names are fixed lists, event
//! ids are the documented ones plus `other`, the certificate labels change only on renewal.

use crate::exposition::Family;
use crate::host::{HostHealth, Verdict};

pub struct HostFamilies {
    check_ok: Family,
    check_evaluated: Family,
    certificate_expiry: Family,
    certificate_info: Family,
    events: Family,
    event_last_error: Family,
    event_last_error_id: Family,
    event_last: Family,
    file_version_info: Family,
    releases_behind: Family,
    behind_auto_update: Family,
    release_list_info: Family,
    tls_prerequisite: Family,
    kerberos_check: Family,
    kerberos_delegation: Family,
}

impl HostFamilies {
    pub fn new() -> Self {
        Self {
            check_ok: Family::new(
                "appproxy_host_check_ok",
                "The connector host's own checks (certificate, event_log, version, tls, kerberos): 1 pass (a warning passes), 0 fail; absent where not evaluated. step_name is the flowchart step each explains.",
                &["check", "step_name"],
            ),
            check_evaluated: Family::new(
                "appproxy_host_check_evaluated",
                "1 when the host check could be judged here, 0 when not (not Windows, no connector installed, nothing to check): diagnose and the page say why.",
                &["check"],
            ),
            certificate_expiry: Family::new(
                "appproxy_connector_certificate_expiry_timestamp_seconds",
                "Unix time the connector's trust certificate (named in its TrustSettings.xml) stops being valid.",
                &[],
            ),
            certificate_info: Family::new(
                "appproxy_connector_certificate_info",
                "The connector's trust certificate: its SHA-1 thumbprint, issuer and store (local_machine, network_service).",
                &["thumbprint", "issuer", "store"],
            ),
            events: Family::counter(
                "appproxy_connector_events_total",
                "Events of the connector's and the updater's Admin logs, and the connector's registration errors in the Application log (channel application), read since the exporter started, by event id (the ids Microsoft documents, else other), level and the flowchart step the event explains (by id; registration errors by their documented message).",
                &["channel", "event_id", "level", "step_name"],
            ),
            event_last_error: Family::new(
                "appproxy_connector_event_last_error_timestamp_seconds",
                "Unix time of the last error or critical event read from the log.",
                &["channel"],
            ),
            event_last_error_id: Family::new(
                "appproxy_connector_event_last_error_id",
                "The event id of the last error or critical event read from the log.",
                &["channel"],
            ),
            event_last: Family::new(
                "appproxy_connector_event_last_timestamp_seconds",
                "Unix time of the newest event read from the log (for the updater: its last activity).",
                &["channel"],
            ),
            file_version_info: Family::new(
                "appproxy_connector_file_version_info",
                "The file version of this host's connector service executable, and the newest version Graph reports in its groups (empty when unknown).",
                &["version", "group_highest"],
            ),
            releases_behind: Family::new(
                "appproxy_connector_releases_behind",
                "Published connector releases newer than this host's connector (from the release list: built in, or connector.releases); 0 for a connector newer than the list. Releases offered only on the download page count too: only appproxy_connector_behind_auto_update_release says it stopped updating.",
                &[],
            ),
            behind_auto_update: Family::new(
                "appproxy_connector_behind_auto_update_release",
                "1 when this host's connector is older than the newest release that updates automatically (its updater should have installed it), 0 when not; absent where not evaluated.",
                &[],
            ),
            release_list_info: Family::new(
                "appproxy_connector_release_list_info",
                "The connector release list the version check judged this host's connector against: its newest published release, its newest release that updates automatically, and where it comes from (builtin: Microsoft's release history as the exporter was built; config: connector.releases). Absent where the version check is not evaluated.",
                &["latest", "latest_auto_update", "source"],
            ),
            tls_prerequisite: Family::new(
                "appproxy_host_tls_prerequisite_met",
                "1 when the TLS 1.2 prerequisite holds (set as Microsoft lists it, or left at the Windows default), 0 when a registry value switches it off.",
                &["prerequisite"],
            ),
            kerberos_check: Family::new(
                "appproxy_kerberos_check_ok",
                "Kerberos delegation readiness of this host: domain_joined, dc_in_dns, kdc_tcp_88, ldap_tcp_389, directory_read, authorization_access_group, winhttp_http2_disabled; 1 ok, 0 not.",
                &["check"],
            ),
            kerberos_delegation: Family::new(
                "appproxy_kerberos_delegation_ok",
                "1 when this connector may delegate to the app's SPN as App Proxy needs, 0 when it may not; absent where not evaluated.",
                &["connector_group", "app"],
            ),
        }
    }

    pub fn all(&self) -> [&Family; 15] {
        [
            &self.check_ok,
            &self.check_evaluated,
            &self.certificate_expiry,
            &self.certificate_info,
            &self.events,
            &self.event_last_error,
            &self.event_last_error_id,
            &self.event_last,
            &self.file_version_info,
            &self.releases_behind,
            &self.behind_auto_update,
            &self.release_list_info,
            &self.tls_prerequisite,
            &self.kerberos_check,
            &self.kerberos_delegation,
        ]
    }

    pub fn fill(&self, host: &HostHealth) {
        let one = |ok: bool| if ok { 1.0 } else { 0.0 };
        for check in host.checks() {
            let label = check.check.label();
            self.check_evaluated
                .with_label_values(&[label])
                .set(one(check.verdict.evaluated()));
            if check.verdict.evaluated() {
                let ok = !matches!(check.verdict, Verdict::Fail { .. });
                self.check_ok
                    .with_label_values(&[label, check.check.step().name()])
                    .set(one(ok));
            }
        }
        if let Some((certificate, store)) = host
            .certificate
            .as_ref()
            .and_then(|c| c.certificate.as_ref())
        {
            self.certificate_expiry.set(certificate.not_after as f64);
            self.certificate_info
                .with_label_values(&[&certificate.thumbprint, &certificate.issuer, store.label()])
                .set(1.0);
        }
        for (channel, counts) in host.event_log.iter().flat_map(|e| &e.channels) {
            let channel = channel.label();
            for ((id, level, step), count) in &counts.counts {
                self.events
                    .with_label_values(&[channel, id, level, step.name()])
                    .set(*count as f64);
            }
            if let Some(error) = &counts.last_error {
                self.event_last_error
                    .with_label_values(&[channel])
                    .set(error.time as f64);
                self.event_last_error_id
                    .with_label_values(&[channel])
                    .set(f64::from(error.id));
            }
            if let Some(time) = counts.last_event {
                self.event_last
                    .with_label_values(&[channel])
                    .set(time as f64);
            }
        }
        if let Some(version) = &host.version {
            if let Some(file) = &version.file_version {
                let highest = version.group_highest.as_deref().unwrap_or("");
                self.file_version_info
                    .with_label_values(&[file.as_str(), highest])
                    .set(1.0);
            }
            if let Some(behind) = version.releases_behind {
                self.releases_behind.set(behind as f64);
            }
            if let Some(behind) = version.behind_auto_update {
                self.behind_auto_update.set(one(behind));
            }
            // Only beside a judged version: a host without a connector has no release to
            // compare, and the alert joins this series to the judged one.
            if let Some(latest) = version
                .latest_release
                .as_ref()
                .filter(|_| version.verdict.evaluated())
            {
                let auto = version.latest_auto_update.as_deref().unwrap_or("");
                self.release_list_info
                    .with_label_values(&[latest.as_str(), auto, version.release_list.label()])
                    .set(1.0);
            }
        }
        for (name, met) in host.tls.iter().flat_map(|t| &t.met) {
            self.tls_prerequisite
                .with_label_values(&[*name])
                .set(one(*met));
        }
        if let Some(kerberos) = &host.kerberos {
            for (name, ok) in &kerberos.checks {
                self.kerberos_check
                    .with_label_values(&[*name])
                    .set(one(*ok));
            }
            for app in kerberos.apps.iter().filter(|a| a.verdict.evaluated()) {
                let ok = !matches!(app.verdict, Verdict::Fail { .. });
                self.kerberos_delegation
                    .with_label_values(&[&app.app.connector_group, &app.app.app])
                    .set(one(ok));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::host::certificate::{self, Certificate, Store};
    use crate::host::eventlog::{self, Channel, ChannelCounts};
    use crate::host::tls::TlsState;
    use crate::walk::Step;

    fn render(host: &HostHealth) -> String {
        let families = HostFamilies::new();
        families.fill(host);
        let mut text = String::new();
        for family in families.all() {
            family.write(&mut text);
        }
        text
    }

    #[test]
    fn off_windows_every_check_is_visibly_not_evaluated_and_has_no_ok_series() {
        let text = render(&HostHealth::default());
        assert!(
            text.contains("appproxy_host_check_evaluated{check=\"certificate\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("appproxy_host_check_evaluated{check=\"kerberos\"} 0"),
            "{text}"
        );
        assert!(!text.contains("appproxy_host_check_ok"), "{text}");
    }

    #[test]
    fn a_connector_behind_the_auto_update_release_is_exported_per_host_with_the_list() {
        use crate::host::releases::ReleaseList;
        use crate::host::version::{self, UpdaterActivity};
        use crate::platform::file_version::FileVersion;
        let state = version::judge(
            FileVersion([1, 5, 3925, 0]),
            &ReleaseList::builtin(),
            &["1.5.3925.0".to_string()],
            UpdaterActivity::default(),
        );
        let host = HostHealth {
            version: Some(state),
            ..HostHealth::default()
        };
        let text = render(&host);
        for line in [
            "appproxy_host_check_ok{check=\"version\",step_name=\"connector_installed\"} 1",
            "appproxy_connector_file_version_info{group_highest=\"1.5.3925.0\",version=\"1.5.3925.0\"} 1",
            "appproxy_connector_releases_behind 5",
            "appproxy_connector_behind_auto_update_release 1",
            "appproxy_connector_release_list_info{latest=\"1.5.4892.0\",latest_auto_update=\"1.5.4522.0\",source=\"builtin\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn off_windows_the_version_is_not_evaluated_and_has_no_version_series() {
        use crate::host::releases::ReleaseList;
        use crate::host::version::{UpdaterActivity, VersionState};
        let host = HostHealth {
            version: Some(VersionState::not_evaluated(
                crate::platform::NOT_WINDOWS,
                &ReleaseList::builtin(),
                UpdaterActivity::default(),
            )),
            ..HostHealth::default()
        };
        let text = render(&host);
        assert!(
            text.contains("appproxy_host_check_evaluated{check=\"version\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("appproxy_connector_behind_auto_update_release "),
            "{text}"
        );
        assert!(
            !text.contains("appproxy_connector_releases_behind "),
            "{text}"
        );
        assert!(
            !text.contains("appproxy_connector_release_list_info{"),
            "{text}"
        );
    }

    #[test]
    fn an_expired_certificate_and_counted_events_are_exported() {
        let cert = Certificate {
            thumbprint: "AB".repeat(20),
            issuer: "connectorregistrationca.msappproxy.net".into(),
            not_after: 1_704_067_200,
        };
        let mut counts = ChannelCounts::default();
        counts
            .counts
            .insert(("13019".into(), "error", Step::InternalUrl), 3);
        counts
            .counts
            .insert(("other".into(), "information", Step::ConnectorInstalled), 7);
        counts.last_error = Some(eventlog::LastError {
            id: 13019,
            time: 1_714_640_400,
            step: Step::InternalUrl,
            meaning: None,
        });
        let host = HostHealth {
            certificate: Some(certificate::judge(
                cert,
                Store::LocalMachine,
                std::time::SystemTime::now(),
            )),
            event_log: Some(eventlog::EventLogState {
                verdict: Verdict::Pass,
                channels: BTreeMap::from([(Channel::Connector, counts)]),
            }),
            tls: Some(TlsState {
                verdict: Verdict::Pass,
                met: vec![("schannel_tls12_client", true)],
            }),
            ..HostHealth::default()
        };
        let text = render(&host);
        for line in [
            "appproxy_host_check_ok{check=\"certificate\",step_name=\"connector_installed\"} 0",
            "appproxy_host_check_ok{check=\"tls\",step_name=\"required_endpoints\"} 1",
            "appproxy_connector_certificate_expiry_timestamp_seconds 1704067200",
            "# TYPE appproxy_connector_events_total counter",
            "appproxy_connector_events_total{channel=\"connector\",event_id=\"13019\",level=\"error\",step_name=\"internal_url\"} 3",
            "appproxy_connector_events_total{channel=\"connector\",event_id=\"other\",level=\"information\",step_name=\"connector_installed\"} 7",
            "appproxy_connector_event_last_error_id{channel=\"connector\"} 13019",
            "appproxy_host_tls_prerequisite_met{prerequisite=\"schannel_tls12_client\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
