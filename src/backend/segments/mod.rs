//! Step 8 (`internal_network`) for Private Access apps: can this connector host reach the
//! app's segments (Graph's `ipApplicationSegment`s)? Each TCP address:port of the app's
//! [`plan`] is resolved and connected to as step 8 connects to a web app's backend, within
//! `probes.timeout`. UDP is not evaluated: it has no handshake, so nothing proves a segment
//! reachable. Steps 7 and 9 are not evaluated for these apps (no page to load, no response
//! time to hold against App Proxy's backend timeout); see docs/backend.md, "Private Access apps".

pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};

use crate::config::SegmentSettings;
use crate::inventory::PrivateAccessSegments;
use crate::net::{self, Failure};
use crate::walk::{Judge, Outcome, Step, StepResults};
use plan::{Destination, Plan, ProbeTarget};

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub target: ProbeTarget,
    /// `Err`: did not resolve, was refused, unreachable or timed out.
    pub result: Result<(), Failure>,
}

/// What this host found of one Private Access app's segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentReport {
    pub probes: Vec<Probed>,
    /// What was not probed, with why (UDP, DNS suffixes, wildcards, odd values, the bound).
    pub not_probed: Vec<String>,
    /// Graph's segments could not be read for the app: why.
    pub unreadable: Option<String>,
}

impl SegmentReport {
    /// The probes that failed.
    pub fn failed(&self) -> impl Iterator<Item = &Probed> {
        self.probes.iter().filter(|p| p.result.is_err())
    }

    /// One line per probe and per part not probed: the per-segment detail shown on the page
    /// and by `diagnose`.
    pub fn detail(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .probes
            .iter()
            .map(|p| {
                let at = format!("{}:{}", p.target.destination, p.target.port);
                match &p.result {
                    Ok(()) => format!("{at} connected ({})", p.target.segment),
                    Err(why) => format!("{at} {why} ({})", p.target.segment),
                }
            })
            .collect();
        lines.extend(self.not_probed.iter().cloned());
        lines.extend(self.unreadable.iter().cloned());
        lines
    }
}

/// Probes every planned address:port, at most `concurrency` at once.
pub async fn probe(plan: Plan, timeout: Duration, concurrency: usize) -> SegmentReport {
    let probes = stream::iter(plan.targets)
        .map(|target| async move {
            let result = connect(&target, timeout).await;
            Probed { target, result }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    SegmentReport {
        probes,
        not_probed: plan.not_probed,
        unreadable: None,
    }
}

/// Probes the plans of many apps together, at most `concurrency` probes at once in all, so
/// that one app's dropped segments hold up no other app's beyond the bound.
pub async fn probe_apps(
    plans: Vec<(crate::walk::AppKey, Plan, Option<String>)>,
    timeout: Duration,
    concurrency: usize,
) -> Reports {
    let mut reports: Vec<SegmentReport> = Vec::with_capacity(plans.len());
    let mut work = Vec::new();
    let mut keys = Vec::with_capacity(plans.len());
    for (index, (key, plan, unreadable)) in plans.into_iter().enumerate() {
        keys.push(key);
        reports.push(SegmentReport {
            probes: Vec::new(),
            not_probed: plan.not_probed,
            unreadable,
        });
        work.extend(plan.targets.into_iter().map(|t| (index, t)));
    }
    let done: Vec<(usize, Probed)> = stream::iter(work)
        .map(|(index, target)| async move {
            let result = connect(&target, timeout).await;
            (index, Probed { target, result })
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    for (index, probed) in done {
        reports[index].probes.push(probed);
    }
    keys.into_iter()
        .zip(reports)
        .map(|(key, report)| (key, Arc::new(report)))
        .collect()
}

/// Resolve (a name) and connect, within `timeout` for the whole: a drop is a timeout.
async fn connect(target: &ProbeTarget, timeout: Duration) -> Result<(), Failure> {
    let dial = async {
        let addresses = match &target.destination {
            Destination::Name(name) => net::resolve(name, target.port).await?,
            Destination::Address(ip) => vec![std::net::SocketAddr::new(*ip, target.port)],
        };
        net::connect(&addresses).await.map(drop)
    };
    match tokio::time::timeout(timeout, dial).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Dropped(net::Phase::Connect)),
    }
}

/// Why an app's segments could not be planned: unreadable in Graph.
pub fn unreadable(segments: &PrivateAccessSegments) -> Option<String> {
    match segments {
        PrivateAccessSegments::Unreadable(why) => Some(format!(
            "Graph's segments of this app could not be read: {why}"
        )),
        PrivateAccessSegments::Read(_) => None,
    }
}

/// Plans an app's segments with the settings in force.
pub fn plan_of(segments: &PrivateAccessSegments, settings: &SegmentSettings) -> Plan {
    match segments {
        PrivateAccessSegments::Read(list) => plan::plan(list, settings),
        PrivateAccessSegments::Unreadable(_) => Plan::default(),
    }
}

/// Why steps 7 and 9 are not evaluated for a Private Access app.
pub const NO_PAGE: &str = "a Private Access app has no internal page to load: its segments are probed at step 8 (internal_network) instead";
pub const NO_TIMEOUT: &str = "a Private Access app's traffic is not HTTP, so App Proxy's backend timeout does not apply: only step 8 (internal_network) is judged from its segments";
pub const NO_FRONT_END: &str = "a Private Access app has no external URL to request: it is reached through the Global Secure Access client";

/// Step 8 of a Private Access app from what its segments showed; steps 7, 9 and 10 not
/// evaluated, with why.
#[derive(Debug, Clone, Copy)]
pub struct Segments<'a> {
    /// `None`: not probed (yet, or `probes.segments.enabled: false`), with `why`.
    pub report: Option<&'a SegmentReport>,
    pub why_unprobed: &'static str,
}

impl Judge for Segments<'_> {
    const STEPS: &'static [Step] = &[
        Step::InternalUrl,
        Step::InternalNetwork,
        Step::BackendTimeout,
        Step::EscalateAppFlow,
    ];

    fn judge(&self) -> StepResults {
        let mut results = StepResults::default();
        results.set(Step::InternalUrl, Outcome::not_evaluated(NO_PAGE));
        results.set(Step::BackendTimeout, Outcome::not_evaluated(NO_TIMEOUT));
        results.set(Step::EscalateAppFlow, Outcome::not_evaluated(NO_FRONT_END));
        let outcome = match self.report {
            Some(report) => internal_network(report),
            None => Outcome::not_evaluated(self.why_unprobed),
        };
        results.set(Step::InternalNetwork, outcome);
        results
    }
}

/// Step 8 of a Private Access app: every host name and single address must connect on every
/// configured TCP port; a range or CIDR block passes when one of its sampled addresses
/// connects (a range names where traffic may go, not hosts that must all answer, so an empty
/// address there is no failure), and is not judged when none does.
pub fn internal_network(report: &SegmentReport) -> Outcome {
    let failed: Vec<&Probed> = report
        .failed()
        .filter(|p| !p.target.sampled_from_range)
        .collect();
    let exact = report
        .probes
        .iter()
        .filter(|p| !p.target.sampled_from_range)
        .count();
    if !failed.is_empty() {
        let listed: Vec<String> = failed
            .iter()
            .map(|p| {
                format!(
                    "{}:{} {}",
                    p.target.destination,
                    p.target.port,
                    p.result
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            })
            .collect();
        return Outcome::fail(format!(
            "{} of {exact} segment address:port pairs this host must reach do not connect: {}",
            failed.len(),
            listed.join("; ")
        ));
    }
    let mut ranges: Vec<&str> = report
        .probes
        .iter()
        .filter(|p| p.target.sampled_from_range)
        .map(|p| &*p.target.segment)
        .collect();
    ranges.dedup();
    let reached_range = ranges.iter().any(|segment| {
        report
            .probes
            .iter()
            .any(|p| &*p.target.segment == *segment && p.result.is_ok())
    });
    if exact > 0 || reached_range {
        return Outcome::Pass;
    }
    let mut why: Vec<String> = Vec::new();
    if let Some(unreadable) = &report.unreadable {
        why.push(unreadable.clone());
    }
    if !ranges.is_empty() {
        why.push(format!(
            "no sampled address of {} accepted a connection; a range names where traffic may go, not hosts that must answer, so that is not judged a failure (list the hosts as fqdn or ipAddress segments to have them judged)",
            ranges.join(", ")
        ));
    }
    why.extend(report.not_probed.iter().cloned());
    if why.is_empty() {
        why.push("the app has no segments to probe".into());
    }
    Outcome::not_evaluated(format!("nothing this host could judge: {}", why.join("; ")))
}

/// Every Private Access app's report, shared by the snapshots of a round.
pub type Reports = std::collections::HashMap<crate::walk::AppKey, Arc<SegmentReport>>;

#[cfg(test)]
mod tests;
