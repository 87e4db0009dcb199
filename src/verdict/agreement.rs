//! The outputs agree because they read one walk: random evidence of every family goes through
//! [`decide`], then into `/metrics` (rendered with every per-app step) and into the diagnosis
//! document (`/api/v1/diagnosis`, `diagnose`, the page); on every step of this host, of every
//! group and of every app, both say the same: passed, failed, or nothing (not evaluated), and
//! the same step where the walk stops.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::backend::http::FailurePhase;
use crate::config::values::{BackendTimeout, GroupSelection};
use crate::diagnosis::{self, State};
use crate::host::Verdict;
use crate::host::certificate::CertificateState;
use crate::host::kerberos::{AppDelegation, KerberosApp, KerberosState};
use crate::host::legacy_tls::LegacyTls;
use crate::host::tls::TlsState;
use crate::inventory::fixtures::{app, connector, group, inventory};
use crate::store::{InventoryState, Snapshot};

/// A step's outcome as either output tells it: pass, fail, or nothing.
type Said = Option<bool>;

fn outcome(said: u8, what: &str) -> Option<Outcome> {
    match said % 3 {
        0 => None,
        1 => Some(Outcome::Pass),
        _ => Some(Outcome::fail(format!("{what} fails"))),
    }
}

fn verdict(said: u8) -> Verdict {
    match said % 3 {
        0 => Verdict::not_evaluated("not read"),
        1 => Verdict::Pass,
        _ => Verdict::fail("broken", "fix it"),
    }
}

/// What one generated app is: its group (0-2 of the three groups, 3 one the inventory does not
/// have, 4 none), whether it is a web app, its backend's answer (0 none yet, 1 loaded, 2-6 a
/// failure phase, 7 a backend that offers only TLS 1.0/1.1), whether it is not requested,
/// whether Kerberos fails for it.
#[derive(Debug, Clone)]
struct AppCase {
    group: u8,
    web: bool,
    answer: u8,
    unprobed: bool,
    kerberos: u8,
}

fn app_case() -> impl Strategy<Value = AppCase> {
    (0u8..5, any::<bool>(), 0u8..8, any::<bool>(), 0u8..3).prop_map(
        |(group, web, answer, unprobed, kerberos)| AppCase {
            group,
            web,
            answer,
            unprobed,
            kerberos,
        },
    )
}

/// Everything one round can find, in small numbers.
#[derive(Debug, Clone)]
struct Round {
    /// Per group: (connectors, how many of them active, this host one of them).
    groups: [(u8, u8, bool); 3],
    services: u8,
    host_steps: [u8; 4],
    certificate: u8,
    tls: u8,
    /// This host's SChannel for TLS 1.0/1.1: allowed, off, unknown, not read yet.
    legacy_tls: u8,
    apps: Vec<AppCase>,
}

fn round() -> impl Strategy<Value = Round> {
    (
        prop::array::uniform3((0u8..3, 0u8..3, any::<bool>())),
        0u8..4,
        prop::array::uniform4(0u8..3),
        0u8..3,
        0u8..3,
        0u8..4,
        prop::collection::vec(app_case(), 1..8),
    )
        .prop_map(
            |(groups, services, host_steps, certificate, tls, legacy_tls, apps)| Round {
                groups,
                services,
                host_steps,
                certificate,
                tls,
                legacy_tls,
                apps,
            },
        )
}

const GROUPS: [&str; 3] = ["Default", "Branch", "Lab"];

/// The snapshot a round gives, its walks decided by [`decide`].
fn snapshot(round: &Round) -> Snapshot {
    let mut builder = inventory();
    for (n, (connectors, active, mine)) in round.groups.iter().enumerate() {
        let mut g = group(GROUPS[n]);
        for c in 0..*connectors {
            let name = if *mine && c == 0 {
                "CONN-01".to_string()
            } else {
                format!("CONN-{n}{c}")
            };
            let machine = connector(&name);
            g = g.connector(if c < *active {
                machine
            } else {
                machine.inactive()
            });
        }
        builder = builder.group(g);
    }
    for (n, case) in round.apps.iter().enumerate() {
        let mut a = app(&format!("app {n}"));
        a = match case.group {
            0..=2 => a.in_group(GROUPS[usize::from(case.group)]),
            3 => a.in_group("Ghost"),
            _ => a,
        };
        if !case.web {
            a.publishing = Publishing::NotWebApp {
                reason: "a Private Access app".into(),
            };
        }
        builder = builder.app(a);
    }
    let inventory = builder.build();
    let host = ThisHost {
        machine: "CONN-01".into(),
        groups: GroupSelection::All,
    };
    let services = match round.services {
        0 => None,
        1 => Some(vec![
            ("connector", ServiceState::Running),
            ("updater", ServiceState::Running),
        ]),
        2 => Some(vec![
            ("connector", ServiceState::NotRunning("Stopped".into())),
            ("updater", ServiceState::Running),
        ]),
        _ => Some(vec![
            ("connector", ServiceState::Missing),
            ("updater", ServiceState::Missing),
        ]),
    };
    let [port, required, forward, consistency] = round.host_steps;
    let endpoints = EndpointsState {
        port_test: outcome(port, "the port test"),
        required: outcome(required, "an endpoint"),
        ..EndpointsState::default()
    };
    let proxy = ProxyState {
        forward_proxy: outcome(forward, "the proxy"),
        consistency: outcome(consistency, "the proxy settings"),
        ..ProxyState::default()
    };
    let mut backends = HashMap::new();
    let mut unprobed = HashMap::new();
    let mut timeouts = HashMap::new();
    let mut delegations = Vec::new();
    for (case, a) in round.apps.iter().zip(&inventory.apps) {
        let key = a.key();
        let phase = match case.answer {
            0 | 1 => None,
            2 => Some(FailurePhase::Resolve),
            3 => Some(FailurePhase::Connect),
            4 => Some(FailurePhase::Http),
            5 => Some(FailurePhase::Timeout),
            6 => Some(FailurePhase::Proxy),
            _ => Some(FailurePhase::Tls),
        };
        if case.answer > 0 {
            let seconds = [if phase.is_none() { 0.2 } else { 80.0 }];
            let mut backend =
                crate::backend::tests::backend(&seconds, phase, BackendTimeout::Default);
            if case.answer == 7 {
                backend.last.tls_version = Some(crate::net::tls::TlsVersion::Legacy);
            }
            backends.insert(key.clone(), Arc::new(backend));
        }
        if case.unprobed {
            unprobed.insert(key.clone(), Outcome::not_evaluated("a wildcard URL"));
        } else {
            timeouts.insert(key.clone(), Duration::from_secs(85));
        }
        if case.kerberos > 0 {
            delegations.push(AppDelegation {
                app: KerberosApp {
                    connector_group: key.connector_group.to_string(),
                    app: key.app.to_string(),
                    spn: "HTTP/app".into(),
                },
                verdict: verdict(case.kerberos),
            });
        }
    }
    let host_checks = HostHealth {
        certificate: Some(CertificateState {
            verdict: verdict(round.certificate),
            certificate: None,
        }),
        tls: Some(TlsState {
            verdict: verdict(round.tls),
            met: Vec::new(),
        }),
        kerberos: Some(KerberosState {
            verdict: Verdict::Pass,
            checks: Vec::new(),
            apps: delegations,
        }),
        legacy_tls: match round.legacy_tls {
            0 => Some(LegacyTls::Allowed {
                evidence: "on by default".into(),
            }),
            1 => Some(LegacyTls::Off {
                evidence: "Enabled is 0".into(),
            }),
            2 => Some(LegacyTls::Unknown {
                reason: "not Windows".into(),
            }),
            _ => None,
        },
        ..HostHealth::default()
    };
    let walks = decide(&Evidence {
        inventory: &inventory,
        host: &host,
        services: services.as_deref(),
        endpoints: &endpoints,
        proxy: &proxy,
        host_checks: &host_checks,
        backends: &backends,
        unprobed: &unprobed,
        segments: &crate::backend::segments::Reports::new(),
        segments_enabled: true,
        timeouts: &timeouts,
        risk_ratio: 0.8,
    });
    Snapshot {
        complete: true,
        inventory: Arc::new(InventoryState {
            inventory: Arc::new(inventory),
            up: true,
            last_success: None,
        }),
        endpoints: Arc::new(endpoints),
        proxy: Arc::new(proxy),
        local_services: services,
        host: Arc::new(host_checks),
        walks,
        ..Snapshot::default()
    }
}

/// `/metrics` as a scrape reads it, every per-app step included: each sample's value by its
/// family and labels.
fn metrics(snapshot: &Snapshot) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut settings = crate::config::Settings::default();
    settings.metrics.per_step_series = true;
    let member = crate::metrics::render_snapshot(snapshot, &settings);
    let text: String = member
        .text_with_tail("")
        .map(|chunk| String::from_utf8_lossy(&chunk.unwrap()).into_owned())
        .collect();
    let label = regex::Regex::new(r#"(\w+)="((?:[^"\\]|\\.)*)""#).unwrap();
    text.lines()
        .filter(|l| l.starts_with("appproxy_flow_"))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let labels = label
                .captures_iter(labels)
                .map(|c| {
                    (
                        c[1].to_string(),
                        c[2].replace("\\\"", "\"").replace("\\\\", "\\"),
                    )
                })
                .collect();
            ((name.to_string(), labels), value.parse().unwrap())
        })
        .collect()
}

fn step_ok(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    group: &str,
    app: &str,
    step: u8,
) -> Said {
    samples
        .iter()
        .find(|((name, labels), _)| {
            name == "appproxy_flow_step_ok"
                && labels.get("connector_group").map_or("", String::as_str) == group
                && labels.get("app").map_or("", String::as_str) == app
                && labels["step"] == step.to_string()
        })
        .map(|(_, value)| *value == 1.0)
}

fn said(state: Option<State>) -> Said {
    match state {
        Some(State::Pass) => Some(true),
        Some(State::Fail) => Some(false),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_diagnosis_and_metrics_agree_on_every_step_of_the_host_every_group_and_every_app(
        round in round()
    ) {
        let snapshot = snapshot(&round);
        let samples = metrics(&snapshot);
        let doc = diagnosis::build(&snapshot, "CONN-01".into(), "c.yml".into(), None, "/runbooks");

        // This host's steps 3-6.
        for view in &doc.host_steps {
            prop_assert_eq!(step_ok(&samples, "", "", view.step), said(view.result), "host step {}", view.step);
        }
        // Every app: each step, and where its walk stops.
        prop_assert_eq!(doc.apps.len(), snapshot.walks.apps.len());
        for app in &doc.apps {
            for view in &app.steps {
                prop_assert_eq!(
                    step_ok(&samples, &app.connector_group, &app.app, view.step),
                    said(view.result),
                    "{} step {}", app.app, view.step
                );
            }
            let failing = samples
                .iter()
                .find(|((name, labels), _)| {
                    name == "appproxy_flow_failing_step"
                        && labels["connector_group"] == app.connector_group
                        && labels["app"] == app.app
                })
                .map(|(_, value)| *value as u8);
            prop_assert_eq!(failing, Some(app.failing_step.unwrap_or(0)), "{}", app.app);
            let info = samples.keys().find(|(name, labels)| {
                name == "appproxy_flow_failing_step_info"
                    && labels["connector_group"] == app.connector_group
                    && labels["app"] == app.app
            });
            prop_assert_eq!(
                info.map(|(_, labels)| labels["step"].clone()),
                app.failing_step.map(|s| s.to_string())
            );
        }
        // Every group: its step 2 is the step 2 of each of its apps, unless an app's own
        // answers fail it for that app alone (none here: no external answers are generated).
        let groups: Vec<&String> = snapshot.walks.groups.keys().collect();
        for group in groups {
            let of_group = step_ok(&samples, group, "", 2);
            for app in doc.apps.iter().filter(|a| &a.connector_group == group) {
                let view = app.steps.iter().find(|v| v.step == 2).unwrap();
                prop_assert_eq!(of_group, said(view.result), "group {} app {}", group, app.app);
            }
        }
    }
}
