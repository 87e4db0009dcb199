//! Steps 3 and 4 of the flowchart, from this host: the port test (step 3, `port_test`: do the
//! core service endpoints accept TCP on 443 and the certificate endpoints on 80?) and the
//! required domains (step 4, `required_endpoints`: does every endpoint of the catalog resolve,
//! connect and present a genuine TLS chain?). Each endpoint is probed directly and, when a
//! forward proxy is in use, through it; it passes when one route works. Whether the connector
//! is configured for the route that works is steps 5 and 6.

pub mod catalog;
pub mod probe;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::Serialize;

pub use probe::{Failure, Phase, Route, RouteResult};

use crate::config::Endpoint;
use crate::config::values::EndpointPurpose;
use crate::walk::{Judge, Outcome, Step, StepResults};

/// One endpoint's results, one per route.
#[derive(Debug, Clone)]
pub struct EndpointResult {
    pub endpoint: Endpoint,
    pub routes: Vec<RouteResult>,
}

impl EndpointResult {
    /// Reachable by at least one route.
    pub fn up(&self) -> bool {
        self.routes.iter().any(RouteResult::up)
    }

    fn connected(&self) -> bool {
        self.routes.iter().any(|r| r.connected)
    }

    /// Whether this result says anything about the path. A stand-in host (`reachable_only`)
    /// that no route resolved proves nothing: the real names of its wildcard are others. A
    /// proxy's error answer about it (not 407 or 403, which are policy) proves nothing either.
    pub fn judged(&self) -> bool {
        if self.endpoint.reachable_only.is_none() {
            return true;
        }
        self.routes.iter().any(|r| match &r.failure {
            None => r.connected,
            Some(Failure::Unresolvable(_)) => false,
            Some(Failure::ProxyStatus(code)) => matches!(code, 403 | 407),
            Some(_) => true,
        })
    }

    /// `direct: refused; proxy: the proxy answered 403 to CONNECT`
    pub fn why(&self) -> String {
        let parts: Vec<String> = self
            .routes
            .iter()
            .filter_map(|r| {
                r.failure
                    .as_ref()
                    .map(|f| format!("{}: {f}", r.route.label()))
            })
            .collect();
        parts.join("; ")
    }
}

/// Everything steps 3 and 4 found in one round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EndpointsState {
    #[serde(skip)]
    pub results: Vec<EndpointResult>,
    /// The port test: 443 and 80, when there were endpoints to test them with.
    pub port_open: BTreeMap<u16, bool>,
    pub port_test: Option<Outcome>,
    pub required: Option<Outcome>,
    /// Said at start-up and on `/config` when the catalog could not be had whole.
    pub note: Option<String>,
}

impl Judge for EndpointsState {
    const STEPS: &'static [Step] = &[Step::PortTest, Step::RequiredEndpoints];

    fn judge(&self) -> StepResults {
        let mut results = StepResults::default();
        for (step, outcome) in [
            (Step::PortTest, &self.port_test),
            (Step::RequiredEndpoints, &self.required),
        ] {
            if let Some(outcome) = outcome {
                results.set(step, outcome.clone());
            }
        }
        results
    }
}

/// The routes a probe takes: always direct, and through `proxy` (the forward proxy in use, or
/// the one this host could use) when there is one.
pub fn routes(proxy: Option<&crate::net::ProxyAddress>) -> Vec<Route> {
    let mut routes = vec![Route::Direct];
    if let Some(proxy) = proxy {
        routes.push(Route::Proxy {
            host: proxy.host.clone(),
            port: proxy.port,
        });
    }
    routes
}

/// Probes every endpoint by every route, at most `concurrency` at once.
pub async fn probe_all(
    list: &[Endpoint],
    routes: &[Route],
    timeout: Duration,
    concurrency: usize,
    expected_issuers: &[String],
) -> Vec<EndpointResult> {
    let mut results: Vec<EndpointResult> = list
        .iter()
        .map(|endpoint| EndpointResult {
            endpoint: endpoint.clone(),
            routes: Vec::with_capacity(routes.len()),
        })
        .collect();
    // Each answer goes straight to its endpoint: at thousands of endpoints a list of the
    // answers in the order they came would be a second copy of the round.
    let pairs: Vec<(usize, Route)> = (0..list.len())
        .flat_map(|i| routes.iter().map(move |r| (i, r.clone())))
        .collect();
    stream::iter(pairs)
        .map(|(i, route)| async move {
            (
                i,
                probe::probe(&list[i], &route, timeout, expected_issuers).await,
            )
        })
        .buffer_unordered(concurrency.max(1))
        .for_each(|(i, result)| {
            results[i].routes.push(result);
            std::future::ready(())
        })
        .await;
    for result in &mut results {
        result.routes.sort_by_key(|r| r.route.label());
    }
    results
}

/// How many failing endpoints the evidence names before it says "and N more".
const NAMED: usize = 5;

/// Steps 3 and 4 from the probe results. A step with nothing it could judge is not evaluated,
/// and says why (`note` tells why the catalog is short, when it is).
pub fn judge(results: Vec<EndpointResult>, note: Option<String>) -> EndpointsState {
    let judged: Vec<&EndpointResult> = results.iter().filter(|r| r.judged()).collect();
    let mut port_open = BTreeMap::new();
    let mut closed = Vec::new();
    let mut through_step_5 = false;
    for (port, purpose) in [
        (443, EndpointPurpose::Service),
        (80, EndpointPurpose::Certificates),
    ] {
        let tested: Vec<&EndpointResult> = judged
            .iter()
            .copied()
            .filter(|r| r.endpoint.port == port && r.endpoint.purpose == purpose)
            .collect();
        if tested.is_empty() {
            continue;
        }
        let open = tested.iter().any(|r| r.connected());
        port_open.insert(port, open);
        if open {
            continue;
        }
        // Direct is closed and the proxy turned the tunnel down: that is the proxy's answer
        // (step 5), not a closed port.
        let refusals: Vec<(u16, &Route)> = tested
            .iter()
            .flat_map(|r| &r.routes)
            .filter_map(|x| match x.failure {
                Some(Failure::ProxyStatus(code)) => Some((code, &x.route)),
                _ => None,
            })
            .collect();
        if let Some((
            code,
            Route::Proxy {
                host,
                port: proxy_port,
            },
        )) = refusals.first()
        {
            through_step_5 = true;
            closed.push(format!(
                "port {port} cannot be reached: not directly ({}), and the proxy http://{host}:{proxy_port} refuses the tunnel ({code}{}): see step 5 (forward_proxy)",
                tested
                    .iter()
                    .flat_map(|r| &r.routes)
                    .find(|x| x.route == Route::Direct)
                    .and_then(|x| x.failure.as_ref())
                    .map_or_else(|| "no direct route".to_string(), ToString::to_string),
                if *code == 407 { ", it asks for authentication" } else { "" }
            ));
            continue;
        }
        let reasons: Vec<String> = tested
            .iter()
            .take(NAMED)
            .map(|r| format!("{} {}", r.endpoint.host, r.why()))
            .collect();
        closed.push(format!(
            "port {port} is closed: no {} endpoint accepts a TCP connection ({})",
            purpose_name(purpose),
            reasons.join(", ")
        ));
    }
    let short = |what: &str| match &note {
        Some(note) => format!("{what}: {note}"),
        None => format!(
            "{what}: the endpoint list is empty (probes.endpoints.catalog: none, or a replace list without them); add endpoints with probes.endpoints.extra"
        ),
    };
    let port_test = if port_open.is_empty() {
        Outcome::not_evaluated(short(
            "no service endpoint on 443 and no certificate endpoint on 80 could be tested",
        ))
    } else if closed.is_empty() {
        Outcome::Pass
    } else if through_step_5 {
        Outcome::fail_with_remedy(
            closed.join("; "),
            "The only way out on this port is the forward proxy, and it refuses: fix the proxy as step 5 says (allow CONNECT without authentication), or open the port directly.",
        )
    } else {
        Outcome::fail(closed.join("; "))
    };

    let failing: Vec<&EndpointResult> = judged.iter().copied().filter(|r| !r.up()).collect();
    let required = if judged.is_empty() {
        Outcome::not_evaluated(short("no required endpoint could be tested"))
    } else if failing.is_empty() {
        Outcome::Pass
    } else {
        let mut named: Vec<String> = failing
            .iter()
            .take(NAMED)
            .map(|r| {
                format!(
                    "{}:{} ({}) {}",
                    r.endpoint.host,
                    r.endpoint.port,
                    purpose_name(r.endpoint.purpose),
                    r.why()
                )
            })
            .collect();
        if failing.len() > NAMED {
            named.push(format!("and {} more", failing.len() - NAMED));
        }
        Outcome::fail(format!(
            "{} of {} required endpoints fail: {}",
            failing.len(),
            judged.len(),
            named.join("; ")
        ))
    };
    EndpointsState {
        results,
        port_open,
        port_test: Some(port_test),
        required: Some(required),
        note,
    }
}

pub fn purpose_name(purpose: EndpointPurpose) -> &'static str {
    match purpose {
        EndpointPurpose::Service => "service",
        EndpointPurpose::Certificates => "certificates",
        EndpointPurpose::Registration => "registration",
    }
}

/// Logs each endpoint's failure when it starts, changes or clears, not every round.
#[derive(Default)]
pub struct ChangeLog(HashMap<(String, u16, &'static str), String>);

impl ChangeLog {
    pub fn record(&mut self, results: &[EndpointResult]) {
        for result in results {
            for route in &result.routes {
                let key = (
                    result.endpoint.host.clone(),
                    result.endpoint.port,
                    route.route.label(),
                );
                let now = route.failure.as_ref().map(ToString::to_string);
                let before = self.0.get(&key);
                match (&now, before) {
                    (Some(failure), Some(previous)) if failure == previous => {}
                    (Some(failure), _) => {
                        tracing::warn!(host = %key.0, port = key.1, route = key.2, purpose = purpose_name(result.endpoint.purpose), failure = %failure, "required endpoint fails");
                        self.0.insert(key, failure.clone());
                    }
                    (None, Some(_)) => {
                        tracing::info!(host = %key.0, port = key.1, route = key.2, "required endpoint reachable again");
                        self.0.remove(&key);
                    }
                    (None, None) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(
        host: &str,
        port: u16,
        purpose: EndpointPurpose,
        failure: Option<Failure>,
    ) -> EndpointResult {
        EndpointResult {
            endpoint: Endpoint {
                host: host.into(),
                port,
                purpose,
                reachable_only: None,
            },
            routes: vec![RouteResult {
                route: Route::Direct,
                connected: !matches!(
                    failure,
                    Some(Failure::Refused | Failure::Dropped(_) | Failure::Unresolvable(_))
                ),
                failure,
                phases: Vec::new(),
                intercepted: None,
                proxy_status: None,
                family: None,
            }],
        }
    }

    #[test]
    fn a_healthy_network_passes_both_steps() {
        let state = judge(
            vec![
                result("svc", 443, EndpointPurpose::Service, None),
                result("crl", 80, EndpointPurpose::Certificates, None),
            ],
            None,
        );
        assert_eq!(state.port_open, BTreeMap::from([(80, true), (443, true)]));
        assert_eq!(state.port_test, Some(Outcome::Pass));
        assert_eq!(state.required, Some(Outcome::Pass));
    }

    #[test]
    fn a_dropped_443_fails_the_port_test_and_says_how() {
        let state = judge(
            vec![
                result(
                    "svc",
                    443,
                    EndpointPurpose::Service,
                    Some(Failure::Dropped(Phase::Connect)),
                ),
                result("crl", 80, EndpointPurpose::Certificates, None),
            ],
            None,
        );
        assert!(!state.port_open[&443]);
        let Some(Outcome::Fail(found)) = state.port_test else {
            panic!()
        };
        let evidence = &found.evidence;
        assert!(evidence.contains("port 443 is closed"), "{evidence}");
        assert!(
            evidence.contains("timed out (dropped by a firewall)"),
            "{evidence}"
        );
    }

    #[test]
    fn an_intercepted_endpoint_fails_step_4_but_not_the_port_test() {
        let state = judge(
            vec![
                result(
                    "svc",
                    443,
                    EndpointPurpose::Service,
                    Some(Failure::Intercepted("Contoso".into())),
                ),
                result("crl", 80, EndpointPurpose::Certificates, None),
            ],
            None,
        );
        assert_eq!(state.port_test, Some(Outcome::Pass));
        let Some(Outcome::Fail(found)) = state.required else {
            panic!()
        };
        let evidence = &found.evidence;
        assert!(
            evidence.starts_with(
                "1 of 2 required endpoints fail: svc:443 (service) direct: TLS intercepted"
            ),
            "{evidence}"
        );
    }

    #[test]
    fn without_endpoints_neither_step_is_evaluated_and_both_say_why() {
        let china = "Microsoft publishes no required-endpoint list for the China cloud";
        let state = judge(Vec::new(), Some(china.into()));
        for outcome in [&state.port_test, &state.required] {
            let Some(Outcome::NotEvaluated(unjudged)) = outcome else {
                panic!("{outcome:?}")
            };
            let reason = &unjudged.reason;
            assert!(reason.contains(china), "{reason}");
        }
        let state = judge(Vec::new(), None);
        let Some(Outcome::NotEvaluated(unjudged)) = state.required else {
            panic!()
        };
        let reason = &unjudged.reason;
        assert!(reason.contains("probes.endpoints.extra"), "{reason}");
    }

    fn stand_in(failure: Option<Failure>) -> EndpointResult {
        let mut r = result(
            "servicebus.windows.net",
            443,
            EndpointPurpose::Service,
            failure,
        );
        r.endpoint.reachable_only = Some("no documented host");
        r
    }

    #[test]
    fn a_stand_in_that_does_not_resolve_proves_nothing_and_fails_nothing() {
        let state = judge(
            vec![
                stand_in(Some(Failure::Unresolvable("NXDOMAIN".into()))),
                result("crl", 80, EndpointPurpose::Certificates, None),
            ],
            None,
        );
        assert_eq!(state.required, Some(Outcome::Pass));
        assert_eq!(
            state.port_open,
            BTreeMap::from([(80, true)]),
            "443 is not evaluated"
        );
        let state = judge(vec![stand_in(Some(Failure::Refused))], None);
        assert!(
            matches!(state.required, Some(Outcome::Fail(_))),
            "a stand-in that resolves and is refused is a real failure"
        );
    }

    #[test]
    fn a_proxy_asking_for_authentication_is_named_as_the_reason_a_port_is_unreachable() {
        let mut r = result("svc", 443, EndpointPurpose::Service, Some(Failure::Refused));
        r.routes.push(RouteResult {
            route: Route::Proxy {
                host: "proxy".into(),
                port: 3128,
            },
            connected: false,
            failure: Some(Failure::ProxyStatus(407)),
            phases: Vec::new(),
            intercepted: None,
            proxy_status: Some(407),
            family: None,
        });
        let state = judge(vec![r], None);
        let Some(Outcome::Fail(found)) = state.port_test else {
            panic!()
        };
        let evidence = &found.evidence;
        let remedy = found.remedy.clone();
        assert!(!evidence.contains("is closed"), "{evidence}");
        assert!(
            evidence.contains("the proxy http://proxy:3128 refuses the tunnel (407, it asks for authentication): see step 5"),
            "{evidence}"
        );
        assert!(remedy.unwrap().contains("step 5"));
    }

    #[test]
    fn an_endpoint_reachable_through_the_proxy_only_passes() {
        let mut r = result("svc", 443, EndpointPurpose::Service, Some(Failure::Refused));
        r.routes.push(RouteResult {
            route: Route::Proxy {
                host: "proxy".into(),
                port: 3128,
            },
            connected: true,
            failure: None,
            phases: Vec::new(),
            intercepted: Some(false),
            proxy_status: Some(200),
            family: None,
        });
        assert!(r.up());
        let state = judge(vec![r], None);
        assert_eq!(state.port_test, Some(Outcome::Pass));
        assert_eq!(state.required, Some(Outcome::Pass));
    }
}
