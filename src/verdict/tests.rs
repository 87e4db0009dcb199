//! One row per precedence rule of the walk: what each rule is given, and what it decides.

use super::*;

fn fail(evidence: &str) -> Outcome {
    Outcome::fail(evidence)
}

fn not_evaluated(reason: &'static str) -> Outcome {
    Outcome::not_evaluated(reason)
}

fn results(outcomes: &[(Step, Outcome)]) -> StepResults {
    let mut results = StepResults::default();
    for (step, outcome) in outcomes {
        results.set(*step, outcome.clone());
    }
    results
}

fn evidence(outcome: Option<&Outcome>) -> Option<&str> {
    match outcome? {
        Outcome::Fail(found) => Some(&found.evidence),
        Outcome::NotEvaluated(unjudged) => Some(&unjudged.reason),
        Outcome::Pass => Some("pass"),
    }
}

#[test]
fn connector_installed_rules() {
    // (the inventory's step 2, this host's services, its trust certificate) -> step 2
    let rows: [(Outcome, Option<Outcome>, Option<Outcome>, &str); 7] = [
        (Outcome::Pass, None, None, "pass"),
        (Outcome::Pass, Some(Outcome::Pass), None, "pass"),
        (
            Outcome::Pass,
            Some(fail("WAPCSvc stopped")),
            None,
            "WAPCSvc stopped",
        ),
        (
            Outcome::Pass,
            None,
            Some(fail("certificate expired")),
            "certificate expired",
        ),
        // The services are named before the certificate: the service is what to start.
        (
            Outcome::Pass,
            Some(fail("WAPCSvc stopped")),
            Some(fail("certificate expired")),
            "WAPCSvc stopped",
        ),
        // The inventory's failure stands: no active connector says more than a stopped one.
        (
            fail("no active connector"),
            Some(fail("WAPCSvc stopped")),
            Some(fail("certificate expired")),
            "no active connector",
        ),
        // A services outcome that judged nothing leaves the inventory's pass.
        (
            Outcome::Pass,
            Some(not_evaluated("not Windows")),
            None,
            "pass",
        ),
    ];
    for (inventory, services, certificate, expected) in rows {
        let row = format!("{inventory:?} {services:?} {certificate:?}");
        let decided = connector_installed(inventory, services, certificate);
        assert_eq!(evidence(Some(&decided)), Some(expected), "{row}");
    }
}

#[test]
fn host_steps_rules() {
    let proxies = results(&[(Step::ProxyConsistency, Outcome::Pass)]);
    let tls = fail("TLS 1.2 off");
    // (step 4 from the endpoints, the TLS host check's failure) -> step 4
    let rows: [(Option<Outcome>, Option<Outcome>, Option<&str>); 5] = [
        (Some(Outcome::Pass), None, Some("pass")),
        (Some(Outcome::Pass), Some(tls.clone()), Some("TLS 1.2 off")),
        // Nothing tested step 4, and TLS is off: it fails.
        (None, Some(tls.clone()), Some("TLS 1.2 off")),
        // The endpoints' own failure is what to fix first: it stays.
        (
            Some(fail("login unreachable")),
            Some(tls),
            Some("login unreachable"),
        ),
        (None, None, None),
    ];
    for (required, tls, expected) in rows {
        let mut endpoints = results(&[(Step::PortTest, Outcome::Pass)]);
        if let Some(required) = required {
            endpoints.set(Step::RequiredEndpoints, required);
        }
        let steps = host_steps([endpoints, proxies.clone()], tls);
        assert_eq!(evidence(steps.get(Step::RequiredEndpoints)), expected);
        // Steps the probes did not judge stay unjudged: never a pass.
        assert_eq!(steps.get(Step::ForwardProxy), None);
        assert_eq!(steps.get(Step::PortTest), Some(&Outcome::Pass));
    }
}

/// An app's evidence: steps 1-2 passed, this host passing 3-6, the given answers.
fn app<'a>(host: &'a StepResults, answers: Vec<(Step, Outcome)>) -> AppEvidence<'a> {
    AppEvidence {
        inventory: results(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::ConnectorInstalled, Outcome::Pass),
        ]),
        group: Some(Outcome::Pass),
        host,
        earlier: StepResults::default(),
        answers: results(&answers),
        kerberos: None,
        unjudged: None,
    }
}

fn passing_host() -> StepResults {
    results(&[
        (Step::PortTest, Outcome::Pass),
        (Step::RequiredEndpoints, Outcome::Pass),
        (Step::ForwardProxy, Outcome::Pass),
        (Step::ProxyConsistency, Outcome::Pass),
    ])
}

fn loaded() -> Vec<(Step, Outcome)> {
    vec![
        (Step::InternalUrl, Outcome::Pass),
        (Step::InternalNetwork, Outcome::Pass),
        (Step::BackendTimeout, Outcome::Pass),
    ]
}

#[test]
fn app_steps_rules() {
    let host = passing_host();
    let failing_host = results(&[
        (Step::PortTest, fail("443 closed")),
        (Step::ForwardProxy, Outcome::Pass),
    ]);
    let refused = results(&[(Step::ForwardProxy, fail("backend proxy 407"))]);
    let named_pass = results(&[
        (Step::PortTest, Outcome::Pass),
        (Step::ConnectorInstalled, Outcome::Pass),
    ]);
    type Row<'a> = (
        &'static str,
        AppEvidence<'a>,
        Step,
        Option<&'static str>,
        Option<u8>,
    );
    let rows: Vec<Row<'_>> = vec![
        (
            "every step passes",
            app(&host, loaded()),
            Step::InternalUrl,
            Some("pass"),
            None,
        ),
        (
            "the group's step 2 is the app's",
            AppEvidence {
                group: Some(fail("WAPCSvc stopped")),
                ..app(&host, loaded())
            },
            Step::ConnectorInstalled,
            Some("WAPCSvc stopped"),
            Some(2),
        ),
        (
            "without a group the inventory's step 1 stands and step 2 is not judged",
            AppEvidence {
                inventory: results(&[(Step::ConnectorGroupAssigned, fail("no group"))]),
                group: None,
                ..app(&host, loaded())
            },
            Step::ConnectorInstalled,
            None,
            Some(1),
        ),
        (
            "the host's steps 3-6 are the app's",
            app(&failing_host, loaded()),
            Step::PortTest,
            Some("443 closed"),
            Some(3),
        ),
        (
            "a host step nothing judged stays unjudged for the app",
            app(&failing_host, loaded()),
            Step::RequiredEndpoints,
            None,
            Some(3),
        ),
        (
            "an answer fails an earlier step for the app alone (the backend proxy refused)",
            AppEvidence {
                earlier: refused,
                ..app(&host, loaded())
            },
            Step::ForwardProxy,
            Some("backend proxy 407"),
            Some(5),
        ),
        (
            "an answer never passes an earlier step the host failed",
            AppEvidence {
                earlier: named_pass.clone(),
                ..app(&failing_host, loaded())
            },
            Step::PortTest,
            Some("443 closed"),
            Some(3),
        ),
        (
            "an answer never passes an earlier step the group failed",
            AppEvidence {
                group: Some(fail("no active connector")),
                earlier: named_pass,
                ..app(&host, loaded())
            },
            Step::ConnectorInstalled,
            Some("no active connector"),
            Some(2),
        ),
        (
            "Kerberos delegation that cannot work fails step 7 where the page loads",
            AppEvidence {
                kerberos: Some(fail("SPN not delegated")),
                ..app(&host, loaded())
            },
            Step::InternalUrl,
            Some("SPN not delegated"),
            Some(7),
        ),
        (
            "the page's own failure stays before Kerberos'",
            AppEvidence {
                kerberos: Some(fail("SPN not delegated")),
                ..app(
                    &host,
                    vec![
                        (Step::InternalUrl, fail("HTTP 503")),
                        (Step::InternalNetwork, Outcome::Pass),
                    ],
                )
            },
            Step::InternalUrl,
            Some("HTTP 503"),
            Some(7),
        ),
        (
            "Kerberos fails step 7 where nothing was asked yet",
            AppEvidence {
                kerberos: Some(fail("SPN not delegated")),
                ..app(&host, Vec::new())
            },
            Step::InternalUrl,
            Some("SPN not delegated"),
            Some(7),
        ),
        (
            "steps no probe can judge are not evaluated, with why, whatever was measured",
            AppEvidence {
                unjudged: Some((&Step::ALL[6..], not_evaluated("wildcard URL"))),
                kerberos: Some(fail("SPN not delegated")),
                ..app(&host, vec![(Step::InternalUrl, fail("HTTP 503"))])
            },
            Step::InternalUrl,
            Some("wildcard URL"),
            None,
        ),
        (
            "an app that is no web app is walked to step 2 only",
            AppEvidence {
                unjudged: Some((&Step::ALL[2..], not_evaluated("Private Access app"))),
                ..app(&failing_host, loaded())
            },
            Step::PortTest,
            Some("Private Access app"),
            None,
        ),
    ];
    for (why, app, step, expected, stops_at) in rows {
        let steps = app_steps(app);
        assert_eq!(evidence(steps.get(step)), expected, "{why}");
        assert_eq!(
            walk::walk(&steps).map(|f| f.step.number()),
            stops_at,
            "{why}"
        );
    }
}

/// Every family sets only its own steps: the walk can trust `judged` to drop nothing.
#[test]
fn every_family_judges_its_own_steps_only() {
    use crate::backend::Answers;
    use crate::inventory::fixtures::{app, connector, group, inventory};
    use crate::inventory::local::{ServiceState, Services};
    use crate::walk::Judge;

    fn own<J: Judge>(family: &J) -> usize {
        let judged = family.judge();
        for (step, _) in judged.iter() {
            assert!(
                J::STEPS.contains(&step),
                "{step:?} set by a family that does not own it"
            );
        }
        judged.iter().count()
    }
    let inventory = inventory()
        .group(group("G").connector(connector("CONN-01")))
        .app(app("a").in_group("G"))
        .build();
    let host = ThisHost {
        machine: "CONN-01".into(),
        groups: crate::config::values::GroupSelection::Auto,
    };
    assert_eq!(
        own(&AppSteps {
            inventory: &inventory,
            app: &inventory.apps[0],
            host: &host
        }),
        2
    );
    let states = [("connector", ServiceState::NotRunning("Stopped".into()))];
    assert_eq!(
        own(&Services {
            states: &states,
            host_is_connector: true
        }),
        1
    );
    let endpoints = EndpointsState {
        port_test: Some(Outcome::Pass),
        required: Some(fail("x")),
        ..EndpointsState::default()
    };
    assert_eq!(own(&endpoints), 2);
    let proxies = ProxyState {
        forward_proxy: Some(Outcome::Pass),
        consistency: Some(Outcome::Pass),
        ..ProxyState::default()
    };
    assert_eq!(own(&proxies), 2);
    let backend = crate::backend::tests::backend(
        &[0.1],
        Some(crate::backend::http::FailurePhase::Proxy),
        crate::config::values::BackendTimeout::Default,
    );
    let answers = Answers {
        backend: Some(&backend),
        risk_ratio: 0.8,
        legacy_tls: None,
    };
    assert_eq!(
        own(&answers),
        2,
        "7 and 8 not evaluated; step 5 is offered apart"
    );
    assert!(answers.proxy_refusal().is_some());
}
