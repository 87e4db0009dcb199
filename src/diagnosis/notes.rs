//! The short evidence of a passing step, for people reading `diagnose` and the page: which
//! route got out, which proxy, how fast the app answered. Made from the round's measurements;
//! verdicts are not decided here.

use crate::backend::AppBackend;
use crate::proxy::{Finding, Service};
use crate::store::Snapshot;
use crate::walk::Step;

/// What a passing step saw, when there is something short to say.
pub fn pass_note(
    step: Step,
    snapshot: &Snapshot,
    group: &str,
    backend: Option<&AppBackend>,
) -> Option<String> {
    match step {
        Step::ConnectorGroupAssigned => Some(format!("assigned to {group}")),
        Step::ConnectorInstalled => snapshot.inventory.inventory.group(group).map(|g| {
            format!(
                "{} of {} connector(s) active",
                g.active_connectors(),
                g.connectors.len()
            )
        }),
        Step::PortTest | Step::RequiredEndpoints => routes(snapshot, step == Step::PortTest),
        Step::ForwardProxy | Step::ProxyConsistency => proxies(snapshot),
        Step::InternalUrl => backend.and_then(|b| {
            let status = b.last.status?;
            Some(format!(
                "HTTP {status}{}",
                b.last
                    .via
                    .as_deref()
                    .map(|p| format!(" through the backend proxy {p}"))
                    .unwrap_or_default()
            ))
        }),
        Step::InternalNetwork => backend.map(|b| {
            let connect: f64 = b
                .last
                .phases
                .iter()
                .filter(|(p, _)| p.label() == "resolve" || p.label() == "connect")
                .map(|(_, s)| s)
                .sum();
            format!("resolved and connected in {connect:.3} s")
        }),
        Step::BackendTimeout => backend.map(|b| {
            format!(
                "median latency {:.2} s of the last {}, {:.0}% of the {:.0} s timeout",
                b.median(),
                b.recent.len(),
                100.0 * b.median() / b.threshold.as_secs_f64(),
                b.threshold.as_secs_f64()
            )
        }),
        Step::EscalateAppFlow => backend.and_then(|b| b.external.as_ref()).and_then(|e| {
            let status = e.outcome.status?;
            Some(match &e.custom_domain {
                Some(c) => format!("the external URL answered {status}; {}", c.note()),
                None => format!("the external URL answered {status}"),
            })
        }),
    }
}

/// How the endpoints got out: directly, or only through the proxy.
fn routes(snapshot: &Snapshot, ports_only: bool) -> Option<String> {
    let results: Vec<_> = snapshot
        .endpoints
        .results
        .iter()
        .filter(|r| r.judged() && r.up())
        .collect();
    if results.is_empty() {
        return None;
    }
    let direct = results
        .iter()
        .filter(|r| {
            r.routes
                .iter()
                .any(|x| x.route.label() == "direct" && x.up())
        })
        .count();
    let proxied = results.len() - direct;
    if ports_only {
        let open: Vec<String> = snapshot
            .endpoints
            .port_open
            .iter()
            .filter(|(_, open)| **open)
            .map(|(port, _)| port.to_string())
            .collect();
        return Some(format!("port {} open", open.join(" and ")));
    }
    Some(match proxied {
        0 => format!("{direct} endpoint(s) reachable directly"),
        _ => format!("{direct} endpoint(s) reachable directly, {proxied} only through the proxy"),
    })
}

/// Which proxy each service uses.
fn proxies(snapshot: &Snapshot) -> Option<String> {
    let of = |service: Service| {
        snapshot
            .proxy
            .services
            .iter()
            .find_map(|(s, finding)| match finding {
                Finding::Known { choice, .. } if *s == service => Some(choice.proxy_url()),
                _ => None,
            })
    };
    match (of(Service::Connector), of(Service::Updater)) {
        (Some(c), Some(u)) if c == u => Some(format!("connector and updater: {c}")),
        (Some(c), Some(u)) => Some(format!("connector: {c}, updater: {u}")),
        (Some(c), None) => Some(format!("connector: {c}")),
        _ => None,
    }
}
