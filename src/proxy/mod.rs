//! Steps 5 and 6 of the flowchart, from this host: is a forward ("back-end") proxy in use, and
//! does it work (step 5, `forward_proxy`: reachable, accepts CONNECT without authentication,
//! does not inspect TLS)? Do the connector and the updater agree, and is the connector set for
//! the route that works (step 6, `proxy_consistency`), and can the system context, which checks
//! certificate chains through WinHTTP's setting, reach the certificate endpoints? The proxy each
//! service uses is read from its own config files (`sources`), as .NET would.

pub mod bypass;
pub mod dotnet;
pub mod registry;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::net::ProxyAddress;
pub use sources::{Choice, FileProblem, Finding, Service, Source, SystemRoute};

use crate::config::values::EndpointPurpose;
use crate::config::values::ProxySetting;
use crate::config::{ConnectorSettings, Endpoint};
use crate::endpoints::{EndpointResult, EndpointsState, Failure, Route, RouteResult, probe};
use crate::walk::{Failed, Judge, Outcome, Step, StepResults};

/// One proxy in use, probed.
#[derive(Debug, Clone)]
pub struct ProxyProbe {
    pub proxy: ProxyAddress,
    pub result: RouteResult,
}

impl ProxyProbe {
    /// Reachable and CONNECT accepted (`appproxy_forward_proxy_up`).
    pub fn up(&self) -> bool {
        self.result.connected
    }
}

/// What steps 5 and 6 found in one round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyState {
    #[serde(skip)]
    pub services: Vec<(Service, Finding)>,
    #[serde(skip)]
    pub probes: Vec<ProxyProbe>,
    pub forward_proxy: Option<Outcome>,
    pub consistency: Option<Outcome>,
    /// `appproxy_forward_proxy_consistent`, when it could be judged.
    pub consistent: Option<bool>,
}

impl Judge for ProxyState {
    const STEPS: &'static [Step] = &[Step::ForwardProxy, Step::ProxyConsistency];

    fn judge(&self) -> StepResults {
        let mut results = StepResults::default();
        for (step, outcome) in [
            (Step::ForwardProxy, &self.forward_proxy),
            (Step::ProxyConsistency, &self.consistency),
        ] {
            if let Some(outcome) = outcome {
                results.set(step, outcome.clone());
            }
        }
        results
    }
}

/// Step 5 for one app whose backend requests go through a proxy that refused this one (407,
/// 403): the connector's backend proxy, not the backend, answered.
pub fn refused_backend_request(detail: String) -> Outcome {
    Outcome::fail_with_remedy(
        detail,
        "Let the connector's backend requests through the proxy without authentication, or bypass it for this host (<bypasslist> in the connector's .exe.config), or turn UseDefaultProxyForBackendRequests off.",
    )
}

/// Reads what each service is configured to use.
pub fn read(settings: &ConnectorSettings) -> Vec<(Service, Finding)> {
    [Service::Connector, Service::Updater]
        .into_iter()
        .map(|service| (service, sources::resolve(service, settings)))
        .collect()
}

fn choice_of(services: &[(Service, Finding)], service: Service) -> Option<&Choice> {
    services.iter().find_map(|(s, finding)| match finding {
        Finding::Known { choice, .. } if *s == service => Some(choice),
        _ => None,
    })
}

/// The proxy the endpoint probes also try (`route="proxy"`): the connector's, else the
/// updater's, else WinHTTP's, so "direct is blocked but the proxy works" can be seen.
pub fn candidate(
    services: &[(Service, Finding)],
    settings: &ConnectorSettings,
) -> Option<ProxyAddress> {
    let configured = [Service::Connector, Service::Updater]
        .into_iter()
        .find_map(|s| choice_of(services, s).and_then(|c| c.proxy.clone()));
    // Only when the files decide: a proxy set in the config is the one to test.
    let from_files = settings.proxy == ProxySetting::Auto
        && services
            .iter()
            .any(|(_, f)| !matches!(f, Finding::NotInstalled));
    configured.or_else(|| {
        from_files
            .then(|| sources::winhttp(settings).and_then(|c| c.proxy))
            .flatten()
    })
}

/// Probes every distinct proxy the services use: TCP, CONNECT to `target`, TLS through it.
pub async fn probe_proxies(
    services: &[(Service, Finding)],
    target: Option<&Endpoint>,
    timeout: Duration,
    expected_issuers: &[String],
) -> Vec<ProxyProbe> {
    let mut proxies: Vec<ProxyAddress> = services
        .iter()
        .filter_map(|(_, f)| match f {
            Finding::Known { choice, .. } => choice.proxy.clone(),
            _ => None,
        })
        .collect();
    proxies.sort();
    proxies.dedup();
    let Some(target) = target else {
        return Vec::new();
    };
    let probes = proxies.into_iter().map(|proxy| async move {
        let route = Route::Proxy {
            host: proxy.host.clone(),
            port: proxy.port,
        };
        let result = probe::probe(target, &route, timeout, expected_issuers).await;
        ProxyProbe { proxy, result }
    });
    futures_util::future::join_all(probes).await
}

/// The certificate endpoints as the system context reaches them, for step 6.
#[derive(Debug, Clone)]
pub struct CertificateChecks {
    pub system: SystemRoute,
    /// The certificate endpoints by the system's route, when it is none of the routes the
    /// endpoint probes took (a WinHTTP proxy other than the services'); else those probes
    /// tell.
    pub results: Vec<EndpointResult>,
}

impl CertificateChecks {
    /// The route a known system route takes.
    fn route(&self) -> Option<Route> {
        match &self.system {
            SystemRoute::Known { proxy: None, .. } => Some(Route::Direct),
            SystemRoute::Known {
                proxy: Some(proxy), ..
            } => Some(Route::Proxy {
                host: proxy.host.clone(),
                port: proxy.port,
            }),
            SystemRoute::Unknown(_) => None,
        }
    }
}

/// Probes the certificate endpoints of `list` by the system's route when the endpoint probes'
/// `routes` do not include it already.
pub async fn probe_certificate_route(
    system: SystemRoute,
    list: &[Endpoint],
    routes: &[Route],
    timeout: Duration,
    concurrency: usize,
    expected_issuers: &[String],
) -> CertificateChecks {
    let mut checks = CertificateChecks {
        system,
        results: Vec::new(),
    };
    let Some(route) = checks.route().filter(|r| !routes.contains(r)) else {
        return checks;
    };
    let certificate_endpoints: Vec<Endpoint> = list
        .iter()
        .filter(|e| e.purpose == EndpointPurpose::Certificates)
        .cloned()
        .collect();
    checks.results = crate::endpoints::probe_all(
        &certificate_endpoints,
        &[route],
        timeout,
        concurrency,
        expected_issuers,
    )
    .await;
    checks
}

/// Steps 5 and 6 from the findings, the proxy probes, the endpoint probes and the certificate
/// endpoints by the system's route.
pub fn judge(
    services: Vec<(Service, Finding)>,
    probes: Vec<ProxyProbe>,
    endpoints: &EndpointsState,
    certificates: &CertificateChecks,
) -> ProxyState {
    let connector = services
        .iter()
        .find(|(s, _)| *s == Service::Connector)
        .map(|(_, f)| f);
    let updater = services
        .iter()
        .find(|(s, _)| *s == Service::Updater)
        .map(|(_, f)| f);
    let forward_proxy = judge_forward_proxy(connector, updater, &probes);
    let (consistency, consistent) = match judge_consistency(connector, updater, endpoints) {
        (Some(Outcome::Pass), Some(true)) => match judge_certificate_route(certificates, endpoints)
        {
            Some(failed) => (Some(failed), Some(false)),
            None => (Some(Outcome::Pass), Some(true)),
        },
        other => other,
    };
    ProxyState {
        services,
        probes,
        forward_proxy,
        consistency,
        consistent,
    }
}

/// Step 5: a proxy in use must be reachable, accept CONNECT and leave TLS alone.
fn judge_forward_proxy(
    connector: Option<&Finding>,
    updater: Option<&Finding>,
    probes: &[ProxyProbe],
) -> Option<Outcome> {
    if let Some(Finding::Broken(problem)) = connector {
        let remedy = match problem {
            FileProblem::Malformed { path, problem } => format!(
                "Fix the XML of {} at line {}, column {} (the connector service cannot start with it either), then restart WAPCSvc.",
                path.display(),
                problem.line,
                problem.column
            ),
            FileProblem::Unreadable { path, .. } => format!(
                "Make {} readable, or set connector.service_config to its real path.",
                path.display()
            ),
        };
        return Some(Outcome::fail_with_remedy(
            format!("the connector's proxy setting cannot be read: {problem}"),
            remedy,
        ));
    }
    let users: Vec<(Service, &Choice)> =
        [(Service::Connector, connector), (Service::Updater, updater)]
            .into_iter()
            .filter_map(|(s, f)| match f {
                Some(Finding::Known { choice, .. }) => Some((s, choice)),
                _ => None,
            })
            .collect();
    let mut unprobed = Vec::new();
    for (service, choice) in &users {
        let Some(proxy) = &choice.proxy else { continue };
        let Some(probe) = probes.iter().find(|p| &p.proxy == proxy) else {
            unprobed.push(proxy.to_string());
            continue;
        };
        let Some(failure) = &probe.result.failure else {
            continue;
        };
        let who = format!("the {} uses {proxy} ({})", service.label(), choice.origin);
        let (what, remedy) = match failure {
            Failure::ProxyStatus(407) => (
                "it asks for authentication (407), which the connector cannot give".to_string(),
                format!(
                    "Let the connector's traffic through {proxy} without authentication, or bypass the proxy with <defaultProxy enabled=\"false\"/> in the {} config file.",
                    service.label()
                ),
            ),
            Failure::ProxyStatus(code) => (
                format!("it refuses CONNECT ({code})"),
                format!("Allow CONNECT to ports 443 and 80 of the Microsoft endpoints on {proxy}."),
            ),
            Failure::Intercepted(issuer) => (
                format!("it intercepts TLS (the certificate is issued by {issuer:?})"),
                format!(
                    "Exempt the connector's traffic from TLS inspection on {proxy}: the connector's client certificate does not survive it."
                ),
            ),
            Failure::Untrusted(_) | Failure::Tls(_) => (
                format!("TLS through it fails: {failure}"),
                format!(
                    "Check {proxy}: it must pass TLS to the Microsoft endpoints through unchanged."
                ),
            ),
            other => (
                format!("it is unreachable: {other}"),
                format!(
                    "Make {proxy} reachable from this host, or change <defaultProxy> in the {} config file.",
                    service.label()
                ),
            ),
        };
        return Some(Outcome::fail_with_remedy(format!("{who}: {what}"), remedy));
    }
    // Nothing failed; but a pass needs every proxy in use to have been tried.
    if let Some(reason) = unknown_choice(connector, updater) {
        return Some(Outcome::not_evaluated(reason));
    }
    if !unprobed.is_empty() {
        return Some(Outcome::not_evaluated(format!(
            "no probe went through {}: the endpoint list has no endpoint on port 443 to open a CONNECT tunnel to (probes.endpoints.catalog none, a replace list without one, or the China cloud); add one with probes.endpoints.extra",
            unprobed.join(" and ")
        )));
    }
    if users.is_empty() {
        return Some(Outcome::not_evaluated(NOT_INSTALLED));
    }
    Some(Outcome::Pass)
}

const NOT_INSTALLED: &str = "neither the connector nor its updater is installed on this host (no .exe.config at the standard paths): set connector.service_config and updater_config to their files, or connector.proxy for a host without a connector";

/// Why a service's proxy cannot be evaluated: WPAD or a script picks it at run time, or its
/// files could not be read in time.
fn unknown_choice(connector: Option<&Finding>, updater: Option<&Finding>) -> Option<String> {
    [(Service::Connector, connector), (Service::Updater, updater)]
        .into_iter()
        .find_map(|(service, finding)| match finding {
            Some(Finding::Unread { why }) => Some(format!("the {}'s {why}", service.label())),
            Some(Finding::Automatic { file, how }) => Some(format!(
                "the {}'s proxy is chosen at run time by {how}{}; which proxy that picks cannot be evaluated from here: set it explicitly with <defaultProxy><proxy proxyaddress=\"http://PROXY:PORT\"/></defaultProxy>, or <defaultProxy enabled=\"false\"/> for direct, in its .exe.config",
                service.label(),
                file.as_ref()
                    .map(|f| format!(" (its {} names no proxy)", f.display()))
                    .unwrap_or_default()
            )),
            _ => None,
        })
}

/// Step 6: connector and updater agree, and the connector is set for the route that works.
fn judge_consistency(
    connector: Option<&Finding>,
    updater: Option<&Finding>,
    endpoints: &EndpointsState,
) -> (Option<Outcome>, Option<bool>) {
    if let Some(reason) = unknown_choice(connector, updater) {
        return (Some(Outcome::not_evaluated(reason)), None);
    }
    let Some(Finding::Known {
        choice: c,
        file: c_file,
    }) = connector
    else {
        let reason = match connector {
            Some(Finding::Broken(problem)) => {
                format!("the connector's proxy setting cannot be read (step 5): {problem}")
            }
            _ => NOT_INSTALLED.to_string(),
        };
        return (Some(Outcome::not_evaluated(reason)), None);
    };
    if let Some(Finding::Broken(problem)) = updater {
        let outcome = Outcome::fail_with_remedy(
            format!("the updater's proxy setting cannot be read: {problem}"),
            "Fix the updater's .exe.config so it can read the same <defaultProxy> as the connector, then restart WAPCUpdaterSvc.",
        );
        return (Some(outcome), Some(false));
    }
    if let Some(Finding::Known {
        choice: u,
        file: u_file,
    }) = updater
    {
        if u.proxy != c.proxy {
            let file = |f: &Option<std::path::PathBuf>| {
                f.as_ref()
                    .map_or("its config".to_string(), |p| p.display().to_string())
            };
            let outcome = Outcome::fail_with_remedy(
                format!(
                    "the connector uses {} ({}) but the updater uses {} ({})",
                    c.proxy_url(),
                    c.origin,
                    u.proxy_url(),
                    u.origin
                ),
                format!(
                    "Give {} and {} the same <defaultProxy> setting, then restart WAPCSvc and WAPCUpdaterSvc.",
                    file(c_file),
                    file(u_file)
                ),
            );
            return (Some(outcome), Some(false));
        }
    }
    // Endpoints that work by another route but not by the connector's.
    let configured = if c.proxy.is_some() { "proxy" } else { "direct" };
    let stranded: Vec<String> = endpoints
        .results
        .iter()
        .filter(|r| {
            let by = |label: &str| {
                r.routes
                    .iter()
                    .find(|x| x.route.label() == label)
                    .map(RouteResult::up)
            };
            by(configured) == Some(false)
                && r.routes
                    .iter()
                    .any(|x| x.route.label() != configured && x.up())
        })
        .map(|r| format!("{}:{}", r.endpoint.host, r.endpoint.port))
        .collect();
    if stranded.is_empty() {
        return (Some(Outcome::Pass), Some(true));
    }
    let other = if configured == "direct" {
        "through the proxy"
    } else {
        "directly"
    };
    let file = c_file
        .as_ref()
        .map_or("the connector's config".to_string(), |p| {
            p.display().to_string()
        });
    let remedy = if configured == "direct" {
        format!(
            "Set <defaultProxy><proxy proxyaddress=\"http://PROXY:PORT\"/></defaultProxy> in {file} (the proxy that works), then restart WAPCSvc."
        )
    } else {
        format!(
            "Set <defaultProxy enabled=\"false\"/> in {file} to go direct, or fix the proxy, then restart WAPCSvc."
        )
    };
    let outcome = Outcome::fail_with_remedy(
        format!(
            "the connector goes {} ({}), but {} endpoint(s) are reachable only {other}: {}",
            if configured == "direct" {
                "direct".to_string()
            } else {
                format!("through {}", c.proxy_url())
            },
            c.origin,
            stranded.len(),
            stranded.join(", ")
        ),
        remedy,
    );
    (Some(outcome), Some(false))
}

/// Step 6's last question: do the certificate endpoints that the connector's own route reaches
/// also get out by the system context's route? A failure when some do not; `None` when they
/// do, or when the system's route is unknown (nothing to judge by: the rest of step 6 stands).
fn judge_certificate_route(
    checks: &CertificateChecks,
    endpoints: &EndpointsState,
) -> Option<Outcome> {
    let SystemRoute::Known { proxy, origin } = &checks.system else {
        return None;
    };
    let system = checks.route()?;
    let by = |result: &EndpointResult, route: &Route| {
        result
            .routes
            .iter()
            .find(|r| &r.route == route)
            .map(RouteResult::up)
    };
    let blocked: Vec<String> = endpoints
        .results
        .iter()
        .filter(|r| r.endpoint.purpose == EndpointPurpose::Certificates && r.up())
        .filter(|r| {
            let system_up = by(r, &system).or_else(|| {
                checks
                    .results
                    .iter()
                    .find(|c| c.endpoint == r.endpoint)
                    .and_then(|c| by(c, &system))
            });
            system_up == Some(false)
        })
        .map(|r| format!("{}:{}", r.endpoint.host, r.endpoint.port))
        .collect();
    if blocked.is_empty() {
        return None;
    }
    let way = match proxy {
        Some(proxy) => format!("through {proxy}"),
        None => "direct".to_string(),
    };
    let remedy = match proxy {
        None => "Give the system context the connector's proxy: `netsh winhttp set proxy proxy-server=\"PROXY:PORT\" bypass-list=\"<local>\"` (or `netsh winhttp import proxy source=ie`), then restart WAPCSvc; or open port 80 to these hosts from the connector server.".to_string(),
        Some(proxy) => format!(
            "Let {proxy} reach these hosts on port 80, or set WinHTTP's proxy to the one that works (`netsh winhttp set proxy`), or `netsh winhttp reset proxy` to go direct; then restart WAPCSvc."
        ),
    };
    Some(Outcome::fail_with_remedy(
        format!(
            "certificate chains are checked in the system context, which goes {way} ({origin}), and that way {} certificate endpoint(s) are unreachable though the connector's own route reaches them: {}; the connector then fails with \"Failed to validate chain of certificate\"",
            blocked.len(),
            blocked.join(", ")
        ),
        remedy,
    ))
}

/// Logs what steps 5 and 6 find when it changes, not every round.
#[derive(Default)]
pub struct ChangeLog {
    files: Vec<String>,
    verdicts: [Option<Arc<Failed>>; 2],
}

impl ChangeLog {
    pub fn record(&mut self, state: &ProxyState) {
        let files: Vec<String> = state
            .services
            .iter()
            .filter_map(|(service, f)| match f {
                Finding::Broken(problem) => Some(format!("{}: {problem}", service.label())),
                _ => None,
            })
            .collect();
        for problem in files.iter().filter(|p| !self.files.contains(p)) {
            tracing::error!(problem = %problem, "a connector config file cannot be used");
        }
        self.files = files;
        for (slot, (step, outcome)) in self.verdicts.iter_mut().zip([
            ("forward_proxy", &state.forward_proxy),
            ("proxy_consistency", &state.consistency),
        ]) {
            let now = match outcome {
                Some(Outcome::Fail(found)) => Some(Arc::clone(found)),
                _ => None,
            };
            if now != *slot {
                match &now {
                    Some(found) => {
                        tracing::warn!(step, evidence = %found.evidence, "forward proxy check fails")
                    }
                    None if slot.is_some() => {
                        tracing::info!(step, "forward proxy check passes again")
                    }
                    None => {}
                }
                *slot = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn proxy() -> ProxyAddress {
        ProxyAddress::parse("http://proxy.corp.example:3128").unwrap()
    }

    fn known(proxy: Option<ProxyAddress>, file: &str) -> Finding {
        Finding::Known {
            file: Some(PathBuf::from(file)),
            choice: Choice {
                proxy,
                source: Source::ConfigFile,
                origin: format!("{file}: <defaultProxy>"),
                bypass: Default::default(),
            },
        }
    }

    fn probed(failure: Option<Failure>, status: Option<u16>) -> ProxyProbe {
        ProxyProbe {
            proxy: proxy(),
            result: RouteResult {
                route: Route::Proxy {
                    host: "proxy.corp.example".into(),
                    port: 3128,
                },
                connected: status == Some(200),
                failure,
                phases: Vec::new(),
                intercepted: None,
                proxy_status: status,
                family: None,
            },
        }
    }

    fn endpoint(direct_up: bool, proxy_up: bool) -> EndpointsState {
        let route = |route: Route, up: bool| RouteResult {
            route,
            connected: up,
            failure: (!up).then_some(Failure::Refused),
            phases: Vec::new(),
            intercepted: None,
            proxy_status: None,
            family: None,
        };
        EndpointsState {
            results: vec![EndpointResult {
                endpoint: Endpoint {
                    host: "svc".into(),
                    port: 443,
                    purpose: EndpointPurpose::Service,
                    reachable_only: None,
                },
                routes: vec![
                    route(Route::Direct, direct_up),
                    route(
                        Route::Proxy {
                            host: "proxy.corp.example".into(),
                            port: 3128,
                        },
                        proxy_up,
                    ),
                ],
            }],
            ..EndpointsState::default()
        }
    }

    fn verdicts(
        connector: Finding,
        updater: Finding,
        probes: Vec<ProxyProbe>,
        endpoints: &EndpointsState,
    ) -> ProxyState {
        judge(
            vec![(Service::Connector, connector), (Service::Updater, updater)],
            probes,
            endpoints,
            &CertificateChecks {
                system: SystemRoute::Unknown("not read in this test".into()),
                results: Vec::new(),
            },
        )
    }

    fn evidence(outcome: &Option<Outcome>) -> (String, String) {
        match outcome {
            Some(Outcome::Fail(found)) => (
                found.evidence.clone(),
                found.remedy.as_deref().unwrap_or_default().to_string(),
            ),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_working_proxy_used_by_both_passes_5_and_6() {
        let state = verdicts(
            known(Some(proxy()), "c.config"),
            known(Some(proxy()), "u.config"),
            vec![probed(None, Some(200))],
            &endpoint(false, true),
        );
        assert_eq!(state.forward_proxy, Some(Outcome::Pass));
        assert_eq!(state.consistency, Some(Outcome::Pass));
        assert_eq!(state.consistent, Some(true));
    }

    #[test]
    fn a_proxy_asking_for_authentication_fails_step_5_with_a_remedy() {
        let state = verdicts(
            known(Some(proxy()), "c.config"),
            known(Some(proxy()), "u.config"),
            vec![probed(Some(Failure::ProxyStatus(407)), Some(407))],
            &endpoint(false, false),
        );
        let (evidence, remedy) = evidence(&state.forward_proxy);
        assert!(
            evidence.contains("asks for authentication (407)"),
            "{evidence}"
        );
        assert!(
            evidence.contains("c.config"),
            "names where the setting came from: {evidence}"
        );
        assert!(remedy.contains("without authentication"), "{remedy}");
    }

    #[test]
    fn refused_connect_unreachable_and_interception_each_fail_step_5() {
        for (failure, status, words) in [
            (
                Failure::ProxyStatus(403),
                Some(403),
                "refuses CONNECT (403)",
            ),
            (Failure::Refused, None, "unreachable"),
            (
                Failure::Intercepted("Contoso".into()),
                Some(200),
                "intercepts TLS",
            ),
        ] {
            let state = verdicts(
                known(Some(proxy()), "c.config"),
                known(Some(proxy()), "u.config"),
                vec![probed(Some(failure), status)],
                &endpoint(false, false),
            );
            let (evidence, _) = evidence(&state.forward_proxy);
            assert!(evidence.contains(words), "{evidence}");
        }
    }

    #[test]
    fn no_proxy_in_use_passes_step_5() {
        let state = verdicts(
            known(None, "c.config"),
            known(None, "u.config"),
            Vec::new(),
            &endpoint(true, false),
        );
        assert_eq!(state.forward_proxy, Some(Outcome::Pass));
        assert_eq!(state.consistency, Some(Outcome::Pass));
    }

    fn reason(outcome: &Option<Outcome>) -> &str {
        match outcome {
            Some(Outcome::NotEvaluated(unjudged)) => &unjudged.reason,
            other => panic!("expected not evaluated, got {other:?}"),
        }
    }

    #[test]
    fn a_service_that_is_not_installed_is_not_evaluated_and_says_so() {
        let state = verdicts(
            Finding::NotInstalled,
            Finding::NotInstalled,
            Vec::new(),
            &endpoint(true, true),
        );
        assert!(
            reason(&state.forward_proxy)
                .contains("neither the connector nor its updater is installed")
        );
        assert!(
            reason(&state.consistency)
                .contains("neither the connector nor its updater is installed")
        );
        assert_eq!(state.consistent, None);
    }

    #[test]
    fn a_proxy_no_probe_went_through_is_not_evaluated_never_passed() {
        // No endpoint on 443 to CONNECT to: a replace list, catalog none, the China cloud.
        let state = verdicts(
            known(Some(proxy()), "c.config"),
            known(Some(proxy()), "u.config"),
            Vec::new(),
            &endpoint(true, true),
        );
        let why = reason(&state.forward_proxy);
        assert!(
            why.contains("no probe went through http://proxy.corp.example:3128"),
            "{why}"
        );
    }

    #[test]
    fn a_proxy_chosen_by_wpad_is_not_evaluated_for_steps_5_and_6() {
        let automatic = Finding::Automatic {
            file: Some(PathBuf::from("c.config")),
            how: "automatic detection (WPAD), set in the Internet Options of Network Service"
                .into(),
        };
        let state = verdicts(
            automatic,
            known(None, "u.config"),
            Vec::new(),
            &endpoint(true, true),
        );
        for outcome in [&state.forward_proxy, &state.consistency] {
            let why = reason(outcome);
            assert!(
                why.contains(
                    "the connector's proxy is chosen at run time by automatic detection (WPAD)"
                ),
                "{why}"
            );
            assert!(why.contains("cannot be evaluated from here"), "{why}");
        }
        assert_eq!(state.consistent, None);
    }

    #[test]
    fn connector_and_updater_on_different_proxies_fail_step_6_naming_both_files() {
        let state = verdicts(
            known(Some(proxy()), "c.config"),
            known(None, "u.config"),
            vec![probed(None, Some(200))],
            &endpoint(true, true),
        );
        let (evidence, remedy) = evidence(&state.consistency);
        assert!(
            evidence.contains("the connector uses http://proxy.corp.example:3128")
                && evidence.contains("the updater uses direct"),
            "{evidence}"
        );
        assert!(
            remedy.contains("c.config") && remedy.contains("u.config"),
            "{remedy}"
        );
        assert_eq!(state.consistent, Some(false));
    }

    #[test]
    fn a_direct_connector_where_only_the_proxy_works_fails_step_6() {
        let state = verdicts(
            known(None, "c.config"),
            known(None, "u.config"),
            Vec::new(),
            &endpoint(false, true),
        );
        let (evidence, remedy) = evidence(&state.consistency);
        assert!(
            evidence.contains("the connector goes direct")
                && evidence.contains("reachable only through the proxy: svc:443"),
            "{evidence}"
        );
        assert!(
            remedy.contains("proxyaddress") && remedy.contains("c.config"),
            "{remedy}"
        );
    }

    /// A certificate endpoint (port 80) with its direct and proxy routes.
    fn certificate_endpoint(direct_up: bool, proxy_up: bool) -> EndpointsState {
        let mut state = endpoint(direct_up, proxy_up);
        state.results[0].endpoint = Endpoint {
            host: "crl".into(),
            port: 80,
            purpose: EndpointPurpose::Certificates,
            reachable_only: None,
        };
        state
    }

    fn with_system(
        connector: Option<ProxyAddress>,
        system: SystemRoute,
        endpoints: &EndpointsState,
        results: Vec<EndpointResult>,
    ) -> ProxyState {
        judge(
            vec![
                (Service::Connector, known(connector.clone(), "c.config")),
                (Service::Updater, known(connector, "u.config")),
            ],
            vec![probed(None, Some(200))],
            endpoints,
            &CertificateChecks { system, results },
        )
    }

    /// troubleshoot-connectors.md: the connector checks certificate chains in the system
    /// context, through WinHTTP's proxy; a connector on a proxy whose system goes direct, where
    /// only the proxy gets out, fails with "Failed to validate chain of certificate".
    #[test]
    fn certificate_endpoints_the_system_context_cannot_reach_fail_step_6() {
        let direct_system = SystemRoute::Known {
            proxy: None,
            origin: "no WinHTTP proxy is set".into(),
        };
        let state = with_system(
            Some(proxy()),
            direct_system.clone(),
            &certificate_endpoint(false, true),
            Vec::new(),
        );
        let (evidence, remedy) = evidence(&state.consistency);
        assert!(
            evidence.contains("system context, which goes direct (no WinHTTP proxy is set)")
                && evidence.contains("crl:80"),
            "{evidence}"
        );
        assert!(remedy.contains("netsh winhttp set proxy"), "{remedy}");
        assert_eq!(state.consistent, Some(false));

        // Reached directly too: nothing to say.
        let state = with_system(
            Some(proxy()),
            direct_system,
            &certificate_endpoint(true, true),
            Vec::new(),
        );
        assert_eq!(state.consistency, Some(Outcome::Pass));
    }

    #[test]
    fn a_system_route_through_the_connectors_proxy_or_unknown_leaves_step_6_passing() {
        let through_proxy = SystemRoute::Known {
            proxy: Some(proxy()),
            origin: "registry WinHttpSettings".into(),
        };
        let state = with_system(
            Some(proxy()),
            through_proxy,
            &certificate_endpoint(false, true),
            Vec::new(),
        );
        assert_eq!(state.consistency, Some(Outcome::Pass));
        let state = with_system(
            Some(proxy()),
            SystemRoute::Unknown("off Windows".into()),
            &certificate_endpoint(false, true),
            Vec::new(),
        );
        assert_eq!(state.consistency, Some(Outcome::Pass));
    }

    /// A WinHTTP proxy that is neither route of the endpoint probes is probed on its own.
    #[test]
    fn another_winhttp_proxy_is_judged_by_its_own_probes() {
        let other = ProxyAddress::parse("http://winhttp.corp.example:8080").unwrap();
        let system = SystemRoute::Known {
            proxy: Some(other),
            origin: "registry WinHttpSettings".into(),
        };
        let endpoints = certificate_endpoint(true, false);
        let own = |up: bool| EndpointResult {
            endpoint: endpoints.results[0].endpoint.clone(),
            routes: vec![RouteResult {
                route: Route::Proxy {
                    host: "winhttp.corp.example".into(),
                    port: 8080,
                },
                connected: up,
                failure: (!up).then_some(Failure::Refused),
                phases: Vec::new(),
                intercepted: None,
                proxy_status: None,
                family: None,
            }],
        };
        let state = with_system(None, system.clone(), &endpoints, vec![own(false)]);
        let (evidence, remedy) = evidence(&state.consistency);
        assert!(
            evidence.contains("goes through http://winhttp.corp.example:8080"),
            "{evidence}"
        );
        assert!(remedy.contains("netsh winhttp reset proxy"), "{remedy}");
        let state = with_system(None, system, &endpoints, vec![own(true)]);
        assert_eq!(state.consistency, Some(Outcome::Pass));
    }

    #[test]
    fn a_malformed_connector_file_fails_step_5_and_points_at_the_position() {
        let problem = FileProblem::Malformed {
            path: PathBuf::from("c.config"),
            problem: dotnet::XmlProblem {
                line: 5,
                column: 3,
                message: "mismatch".into(),
            },
        };
        let state = verdicts(
            Finding::Broken(problem),
            known(None, "u.config"),
            Vec::new(),
            &endpoint(true, true),
        );
        let (evidence, remedy) = evidence(&state.forward_proxy);
        assert!(
            evidence.contains("c.config is not valid: line 5, column 3"),
            "{evidence}"
        );
        assert!(remedy.contains("line 5, column 3"), "{remedy}");
        assert!(
            reason(&state.consistency).contains("cannot be read (step 5)"),
            "the rest of the walk goes on without a made-up verdict"
        );
    }
}
