//! Steps 7, 8 and 9 of the flowchart, per app: load the internal URL from this host (step 7,
//! `internal_url`: the page loads, a 401/403 sign-in challenge included), tell a network failure
//! (step 8, `internal_network`: resolve, connect, timeout) from an application one, and compare
//! the latency with the app's App Proxy backend timeout (step 9, `backend_timeout`: 85 s
//! Default, 180 s Long). Each app is probed on its own schedule, so one hanging backend delays
//! no other app and no scrape.

pub mod custom_domain;
pub mod external;
pub mod http;
mod schedule;
pub mod segments;
pub mod wildcard;

pub use schedule::Scheduler;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use url::Url;

use crate::config::BackendSettings;
use crate::config::values::BackendTimeout;
use crate::net::ProxyAddress;
use crate::net::tls::TlsVersion;
use crate::walk::AppKey;
use crate::walk::{Judge, Outcome, Step, StepResults};
use http::FailurePhase;

/// How many recent requests step 9 looks at: their median latency decides, so one slow
/// request neither pages nor hides a trend.
pub const RECENT: usize = 3;

/// A request may run this much past the app's timeout, so slow answers are measured rather
/// than cut short at the very value they are compared with.
const DEADLINE_FACTOR: f64 = 1.25;

/// Why an app's URL cannot be requested: the evidence shown for steps 7-10.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the {which} URL {text:?} is not a URL: {source}")]
    NotAUrl {
        which: &'static str,
        text: String,
        source: url::ParseError,
    },
    #[error("the {which} URL {text:?} is not an http(s) URL with a host")]
    NotHttp { which: &'static str, text: String },
    #[error(
        "the internal URL {url} is a wildcard, which names no host to request, and {why}: name one under probes.backend.wildcard_hosts (app {app:?}), or give the app a segment with a concrete internal URL, to evaluate steps 7-10"
    )]
    WildcardWithoutHost {
        url: String,
        app: String,
        /// What the app's segments offered (none, unreadable, none with a concrete host).
        why: String,
    },
    #[error(
        "probes.backend.wildcard_hosts names {host} for app {app:?}, which its internal URL {url} does not cover"
    )]
    HostNotCovered {
        host: String,
        app: String,
        url: String,
    },
    #[error("the URL {url:?} is not a URL: {source}")]
    Unparsable {
        url: String,
        source: url::ParseError,
    },
    #[error("cannot put {host} into {url}: {source}")]
    HostRejected {
        host: String,
        url: String,
        source: url::ParseError,
    },
}

/// What to probe for one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub key: AppKey,
    /// The internal URL, or why it cannot be requested.
    pub url: Result<Url, UrlError>,
    pub verify: bool,
    pub setting: BackendTimeout,
    /// App Proxy's timeout for the app (85 s or 180 s unless configured otherwise).
    pub threshold: Duration,
    /// `probes.backend.timeout_risk_ratio`: the latency histogram has a bucket there.
    pub risk_ratio: f64,
    /// The backend proxy, when the connector sends backend requests through one.
    pub proxy: Option<ProxyAddress>,
    /// Step 10: the external URL, when the app has one and `probes.external.enabled`.
    pub external: Option<Result<Url, UrlError>>,
    /// The connector's outbound proxy: the external URL is on the internet side.
    pub external_proxy: Option<ProxyAddress>,
    /// Graph's `externalAuthenticationType` is `aadPreAuthentication` (step 10), when known.
    pub pre_authenticated: Option<bool>,
    /// The Host header App Proxy sends the backend when it is not the internal URL's: the
    /// external host, for an app whose "Translate URLs in headers" is off.
    pub host_header: Option<String>,
    /// The certificate Graph says App Proxy presents on the app's custom domain: step 10
    /// checks the external URL presents it.
    pub custom_domain_certificate: Option<Arc<crate::inventory::CustomDomainCertificate>>,
    /// A wildcard app judged by its Graph segments: every segment's request, `url` (the first
    /// segment's) among them. Empty for every other app.
    pub segments: Vec<SegmentRequest>,
    /// A wildcard app's segments not requested, each with why (for the page and `diagnose`).
    pub segments_not_requested: Vec<String>,
}

/// One of a wildcard app's segment hosts to request (steps 7-9).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRequest {
    pub url: Result<Url, UrlError>,
    /// As [`Target::host_header`], from the segment's own external URL.
    pub host_header: Option<String>,
    /// The backend proxy for this segment's host (its bypass rules may differ by host).
    pub proxy: Option<ProxyAddress>,
}

impl SegmentRequest {
    pub fn new(
        internal_url: &str,
        host_header: Option<String>,
        proxy: Option<ProxyAddress>,
    ) -> SegmentRequest {
        SegmentRequest {
            url: http_url("internal", internal_url),
            host_header,
            proxy,
        }
    }
}

impl Target {
    pub fn new(
        key: AppKey,
        internal_url: &str,
        verify: bool,
        setting: BackendTimeout,
        settings: &BackendSettings,
        proxy: Option<ProxyAddress>,
    ) -> Target {
        Target {
            key,
            url: http_url("internal", internal_url),
            verify,
            setting,
            threshold: settings.timeouts.for_setting(setting),
            risk_ratio: settings.timeout_risk_ratio,
            proxy,
            external: None,
            external_proxy: None,
            pre_authenticated: None,
            host_header: None,
            custom_domain_certificate: None,
            segments: Vec::new(),
            segments_not_requested: Vec::new(),
        }
    }

    /// Adds step 10's request to the external URL, through `proxy` when the connector uses one.
    pub fn with_external(mut self, external_url: &str, proxy: Option<ProxyAddress>) -> Target {
        self.external = Some(http_url("external", external_url));
        self.external_proxy = proxy;
        self
    }

    fn deadline(&self) -> Duration {
        self.threshold.mul_f64(DEADLINE_FACTOR)
    }
}

fn http_url(which: &'static str, text: &str) -> Result<Url, UrlError> {
    Url::parse(text)
        .map_err(|source| UrlError::NotAUrl {
            which,
            text: text.to_string(),
            source,
        })
        .and_then(|url| match url.scheme() {
            "http" | "https" if url.host_str().is_some() => Ok(url),
            _ => Err(UrlError::NotHttp {
                which,
                text: text.to_string(),
            }),
        })
}

/// The latest requests to one app's backend.
#[derive(Debug, Clone)]
pub struct AppBackend {
    pub last: http::Outcome,
    /// Latencies of the last [`RECENT`] requests, newest last.
    pub recent: VecDeque<f64>,
    pub threshold: Duration,
    pub setting: BackendTimeout,
    /// Every request's latency since the app's timeout last changed.
    pub latency: LatencyHistogram,
    /// The last request to the external URL (step 10), for the apps that have one.
    pub external: Option<Box<external::External>>,
    /// A wildcard app judged by its segments: each segment's last answer (`last` is the one
    /// [`wildcard::combine`] chose). Empty for every other app.
    pub segments: Vec<wildcard::SegmentAnswer>,
    /// A wildcard app's segments not requested, each with why.
    pub segments_not_requested: Vec<String>,
}

impl AppBackend {
    /// The median of the recent latencies.
    pub fn median(&self) -> f64 {
        let mut values: Vec<f64> = self.recent.iter().copied().collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    }

    /// What step 9 judges (`appproxy_backend_latency_ratio`): the median latency of the
    /// recent requests divided by the app's timeout.
    pub fn ratio(&self) -> f64 {
        self.median() / self.threshold.as_secs_f64()
    }

    /// The page loaded (`appproxy_backend_up`).
    pub fn up(&self) -> bool {
        self.last.failure.is_none()
    }
}

/// `appproxy_backend_request_duration_seconds` of one app, with the two bounds step 9's
/// judgement needs: the risk ratio of the app's timeout, and the timeout (68 and 85 s for a
/// Default app, 144 and 180 s for a Long one). Its sum over its count is the mean latency; the
/// share of requests above either bound is what a generic ladder of buckets would only
/// approximate.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    pub bounds: [f64; 2],
    /// Requests at or below each bound.
    pub at_or_below: [u64; 2],
    pub count: u64,
    pub sum: f64,
}

impl LatencyHistogram {
    pub fn new(threshold: Duration, risk_ratio: f64) -> LatencyHistogram {
        let timeout = threshold.as_secs_f64();
        LatencyHistogram {
            bounds: [risk_ratio * timeout, timeout],
            at_or_below: [0; 2],
            count: 0,
            sum: 0.0,
        }
    }

    pub fn observe(&mut self, seconds: f64) {
        for (bound, n) in self.bounds.iter().zip(&mut self.at_or_below) {
            if seconds <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// The cumulative buckets, without `+Inf` (which is the count).
    pub fn buckets(&self) -> [(f64, u64); 2] {
        [
            (self.bounds[0], self.at_or_below[0]),
            (self.bounds[1], self.at_or_below[1]),
        ]
    }
}

/// Steps 7 to 10 for one app from its latest requests (nothing before the first one). Which
/// step a failure belongs to is decided by its phase. An answer that speaks for a step of
/// another family (its backend proxy refused the request, App Proxy's page says no connector
/// answered) is offered as that family's evidence: [`Answers::proxy_refusal`],
/// [`Answers::names_connector_step`].
#[derive(Debug, Clone, Copy)]
pub struct Answers<'a> {
    pub backend: Option<&'a AppBackend>,
    /// `probes.backend.timeout_risk_ratio`.
    pub risk_ratio: f64,
    /// What step 7 is for a backend that offers only TLS 1.0/1.1, which the exporter's TLS
    /// cannot speak but the connector's SChannel may: this host's verdict on SChannel
    /// (`crate::host::HostHealth::legacy_tls_step_7`), failed where SChannel has both off, not
    /// evaluated otherwise; `None` before it is known.
    pub legacy_tls: Option<&'a Outcome>,
}

impl Judge for Answers<'_> {
    const STEPS: &'static [Step] = &[
        Step::InternalUrl,
        Step::InternalNetwork,
        Step::BackendTimeout,
        Step::EscalateAppFlow,
    ];

    fn judge(&self) -> StepResults {
        let mut steps = StepResults::default();
        let Some(b) = self.backend else {
            return steps;
        };
        if b.segments.is_empty() {
            steps = request_steps(b, &b.last, self.legacy_tls);
        } else {
            let per_segment: Vec<StepResults> = b
                .segments
                .iter()
                .map(|s| request_steps(b, &s.outcome, self.legacy_tls))
                .collect();
            steps = wildcard::merge(&per_segment);
        }
        // Latency says something only when the backend answered.
        if b.last.status.is_some() {
            steps.set(Step::BackendTimeout, latency(b, self.risk_ratio));
        }
        if let Some(external) = &b.external {
            // A step of the connectors that App Proxy's page names is offered apart.
            for (step, outcome) in external.steps(b.up()) {
                if step >= Step::InternalUrl {
                    steps.set(step, outcome);
                }
            }
        }
        steps
    }
}

/// Steps 7-9 from one request's answer (the app's, or one segment's), by its failure's phase;
/// `legacy_tls` is what the host's SChannel says of a backend that speaks only TLS 1.0/1.1.
fn request_steps(
    b: &AppBackend,
    answer: &http::Outcome,
    legacy_tls: Option<&Outcome>,
) -> StepResults {
    let failure = answer.failure.as_ref();
    let mut steps = StepResults::default();
    {
        match failure.map(|f| f.phase) {
            None => {
                steps.set(Step::InternalUrl, Outcome::Pass);
                steps.set(Step::InternalNetwork, Outcome::Pass);
            }
            Some(FailurePhase::Resolve | FailurePhase::Connect) => {
                steps.set(
                    Step::InternalUrl,
                    Outcome::not_evaluated(
                        "the page could not be asked for: the network failed first (step 8)",
                    ),
                );
                steps.set(Step::InternalNetwork, network_failure(failure));
            }
            Some(FailurePhase::Tls) if answer.tls_version == Some(TlsVersion::Legacy) => {
                steps.set(Step::InternalUrl, legacy_only(failure, legacy_tls));
                steps.set(Step::InternalNetwork, Outcome::Pass);
            }
            Some(FailurePhase::Tls | FailurePhase::Http) => {
                steps.set(Step::InternalUrl, application_failure(failure));
                steps.set(Step::InternalNetwork, Outcome::Pass);
            }
            Some(FailurePhase::Timeout) => {
                steps.set(
                    Step::InternalUrl,
                    Outcome::not_evaluated(
                        "no final answer came before the deadline: step 9 judges that",
                    ),
                );
                steps.set(Step::InternalNetwork, Outcome::Pass);
                steps.set(Step::BackendTimeout, not_answering(b, failure));
            }
            Some(FailurePhase::Proxy) => {
                let why =
                    "the backend proxy refused the request (step 5): the backend was not asked";
                steps.set(Step::InternalUrl, Outcome::not_evaluated(why));
                steps.set(Step::InternalNetwork, Outcome::not_evaluated(why));
            }
        }
    }
    steps
}

impl Answers<'_> {
    /// What the connector's backend proxy answered when it refused the request (step 5's).
    pub fn proxy_refusal(&self) -> Option<String> {
        let failure = self.backend?.last.failure.as_ref()?;
        (failure.phase == FailurePhase::Proxy).then(|| failure.detail.clone())
    }

    /// What App Proxy's error page on the external URL says when it names a step of the
    /// connectors (step 2: no connector answered).
    pub fn names_connector_step(&self) -> Option<String> {
        match &self.backend?.external.as_deref()?.verdict {
            external::Verdict::Fails { step, evidence } if *step < Step::InternalUrl => {
                Some(evidence.clone())
            }
            _ => None,
        }
    }
}

fn network_failure(failure: Option<&http::HttpFailure>) -> Outcome {
    Outcome::fail(failure.map(|f| f.detail.clone()).unwrap_or_default())
}

fn application_failure(failure: Option<&http::HttpFailure>) -> Outcome {
    Outcome::fail(failure.map(|f| f.detail.clone()).unwrap_or_default())
}

/// Step 7 for a backend that offers only TLS 1.0/1.1: the exporter cannot load the page, so
/// the connector host's SChannel decides (`host`): failed where it has both versions off, not
/// evaluated where it may speak them or where that is unknown; never passed.
fn legacy_only(failure: Option<&http::HttpFailure>, host: Option<&Outcome>) -> Outcome {
    let detail = failure.map(|f| f.detail.as_str()).unwrap_or_default();
    match host {
        Some(Outcome::Fail(failed)) => {
            let evidence = format!("{detail}; {}", failed.evidence);
            match failed.remedy.clone() {
                Some(remedy) => Outcome::fail_with_remedy(evidence, remedy),
                None => Outcome::fail(evidence),
            }
        }
        Some(Outcome::NotEvaluated(unjudged)) => {
            Outcome::not_evaluated(format!("{detail}; {}", unjudged.reason))
        }
        Some(Outcome::Pass) | None => Outcome::not_evaluated(format!(
            "{detail}; whether the connector's SChannel speaks TLS 1.0/1.1 is not known yet: step 7 is not evaluated"
        )),
    }
}

/// Step 9 for an app that connected and never answered.
fn not_answering(b: &AppBackend, failure: Option<&http::HttpFailure>) -> Outcome {
    let detail = failure.map(|f| f.detail.clone()).unwrap_or_default();
    let remedy = match b.setting {
        BackendTimeout::Default => {
            "The app is not answering in time: find why the backend hangs (its logs, its dependencies); if it is merely slow, set its Backend Application Timeout to Long (180 s)."
        }
        BackendTimeout::Long => {
            "The app is not answering in time, even within Long (180 s, the ceiling): find why the backend hangs (its logs, its dependencies)."
        }
    };
    Outcome::fail_with_remedy(detail, remedy)
}

/// Step 9 from the median latency of the recent requests.
fn latency(b: &AppBackend, risk_ratio: f64) -> Outcome {
    let threshold = b.threshold.as_secs_f64();
    let median = b.median();
    let timeout = match b.setting {
        BackendTimeout::Default => "Default",
        BackendTimeout::Long => "Long",
    };
    if median < risk_ratio * threshold {
        return Outcome::Pass;
    }
    let evidence = format!(
        "the median latency of the last {} request(s) is {median:.1} s, {:.0}% of the app's {timeout} backend timeout ({threshold:.0} s); the limit for a warning is {:.0}%",
        b.recent.len(),
        100.0 * median / threshold,
        100.0 * risk_ratio
    );
    let remedy = match b.setting {
        BackendTimeout::Default => {
            "Set the app's Backend Application Timeout to Long (180 s) in its Application proxy settings, and look at why the backend is slow."
        }
        BackendTimeout::Long => {
            "The backend must answer faster: 180 s (Long) is the ceiling and cannot be raised."
        }
    };
    Outcome::fail_with_remedy(evidence, remedy)
}

/// The latest results of every app's requests, shared with the per-app tasks.
#[derive(Debug, Default)]
pub struct BackendStore {
    /// Shared with the snapshots that show them; an answer replaces its app's copy.
    apps: RwLock<HashMap<AppKey, Arc<AppBackend>>>,
    /// When the last answer was recorded.
    last_answer: std::sync::Mutex<Option<std::time::SystemTime>>,
    /// Notified after each request, so the walk is recomposed without waiting for a round.
    pub changed: Notify,
}

impl BackendStore {
    pub fn get(&self, key: &AppKey) -> Option<Arc<AppBackend>> {
        let apps = self
            .apps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        apps.get(key).cloned()
    }

    /// Every app's latest answers, as they are now: a copy of the map, sharing the answers.
    pub fn answers(&self) -> HashMap<AppKey, Arc<AppBackend>> {
        self.apps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// When the last answer of any app was recorded.
    pub fn last_answer(&self) -> Option<std::time::SystemTime> {
        *self
            .last_answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn record(&self, target: &Target, answered: Answered) {
        let Answered {
            internal: outcome,
            external,
            segments,
        } = answered;
        let mut apps = self
            .apps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = apps.entry(target.key.clone()).or_insert_with(|| {
            Arc::new(AppBackend {
                last: outcome.clone(),
                recent: VecDeque::new(),
                threshold: target.threshold,
                setting: target.setting,
                latency: LatencyHistogram::new(target.threshold, target.risk_ratio),
                external: None,
                segments: Vec::new(),
                segments_not_requested: Vec::new(),
            })
        });
        let entry = Arc::make_mut(entry);
        entry.external = external.map(Box::new);
        entry.segments = segments;
        entry.segments_not_requested = target.segments_not_requested.clone();
        let latency = LatencyHistogram::new(target.threshold, target.risk_ratio);
        if entry.setting != target.setting || entry.latency.bounds != latency.bounds {
            // A different timeout makes old latencies incomparable.
            entry.recent.clear();
            entry.setting = target.setting;
            entry.threshold = target.threshold;
            entry.latency = latency;
        }
        entry.recent.push_back(outcome.seconds);
        while entry.recent.len() > RECENT {
            entry.recent.pop_front();
        }
        entry.latency.observe(outcome.seconds);
        entry.last = outcome;
        drop(apps);
        *self
            .last_answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(std::time::SystemTime::now());
    }

    fn retain(&self, keep: impl Fn(&AppKey) -> bool) {
        let mut apps = self
            .apps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        apps.retain(|key, _| keep(key));
    }
}

/// What one turn of an app's requests found.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The internal URL's answer; for a wildcard app judged by its segments, the one
    /// [`wildcard::combine`] chose.
    pub internal: http::Outcome,
    pub external: Option<external::External>,
    /// Each segment's answer, for a wildcard app judged by its segments.
    pub segments: Vec<wildcard::SegmentAnswer>,
}

/// Requests `target`'s internal URL once (each of its segments' at once, for a wildcard app
/// judged by them), then its external URL when it has one.
pub async fn request_both(target: &Target) -> Answered {
    let (internal, segments) = if target.segments.is_empty() {
        (request(target).await, Vec::new())
    } else {
        let segments: Vec<wildcard::SegmentAnswer> =
            futures_util::future::join_all(target.segments.iter().map(|s| async move {
                let mut outcome = match &s.url {
                    Ok(url) => {
                        http::get(
                            url,
                            s.host_header.as_deref(),
                            target.verify,
                            s.proxy.as_ref(),
                            target.deadline(),
                        )
                        .await
                    }
                    Err(problem) => failed(problem),
                };
                outcome.body_start = String::new();
                wildcard::SegmentAnswer {
                    url: s
                        .url
                        .as_ref()
                        .map_or_else(|e| e.to_string(), Url::to_string),
                    outcome,
                }
            }))
            .await;
        // `segments` is not empty here, so `combine` chooses one; the primary URL otherwise.
        let internal = match wildcard::combine(&segments) {
            Some(chosen) => chosen,
            None => request(target).await,
        };
        (internal, segments)
    };
    let external = match &target.external {
        None => None,
        Some(Ok(url)) => {
            // For an app on a custom domain, one request both loads the front end and shows
            // its certificate; the others keep none (thousands of apps' certificates would
            // stay in memory for nothing).
            let proxy = target.external_proxy.as_ref();
            let outcome = match target.custom_domain_certificate {
                Some(_) => http::get_presenting(url, true, proxy, target.deadline()).await,
                None => http::get(url, None, true, proxy, target.deadline()).await,
            };
            // Where the external host leads from here: the address connected to, or, through
            // a proxy (which resolves for itself), the one this host's resolver gives.
            let here = match outcome.address {
                Some(address) => Some(address),
                None => resolved_here(url).await,
            };
            Some(
                external::External::judge(
                    url.as_str(),
                    outcome,
                    target.pre_authenticated,
                    internal.address,
                    here,
                )
                .with_custom_domain(url.as_str(), target.custom_domain_certificate.as_ref()),
            )
        }
        Some(Err(problem)) => Some(external::External {
            outcome: failed(problem),
            verdict: external::Verdict::Fails {
                step: Step::EscalateAppFlow,
                evidence: problem.to_string(),
            },
            custom_domain: None,
        }),
    };
    Answered {
        internal,
        external,
        segments,
    }
}

/// The first address `url`'s host resolves to on this host, if it resolves.
async fn resolved_here(url: &Url) -> Option<std::net::IpAddr> {
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = crate::net::resolve(host, port).await.ok()?;
    addresses.first().map(std::net::SocketAddr::ip)
}

fn failed(problem: &UrlError) -> http::Outcome {
    http::Outcome {
        phases: Vec::new(),
        seconds: 0.0,
        status: None,
        failure: Some(http::HttpFailure {
            phase: http::FailurePhase::Http,
            detail: problem.to_string(),
        }),
        body_start: String::new(),
        location: None,
        address: None,
        via: None,
        certificate: None,
        tls_version: None,
    }
}

/// Requests `target`'s internal URL once. The body's start is not kept: only step 10 reads
/// it, and thousands of apps' pages would otherwise stay in memory.
pub async fn request(target: &Target) -> http::Outcome {
    let mut outcome = request_internal(target).await;
    outcome.body_start = String::new();
    outcome
}

async fn request_internal(target: &Target) -> http::Outcome {
    match &target.url {
        Ok(url) => {
            http::get(
                url,
                target.host_header.as_deref(),
                target.verify,
                target.proxy.as_ref(),
                target.deadline(),
            )
            .await
        }
        Err(problem) => failed(problem),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn backend(
        seconds: &[f64],
        failure: Option<http::FailurePhase>,
        setting: BackendTimeout,
    ) -> AppBackend {
        AppBackend {
            last: http::Outcome {
                phases: Vec::new(),
                seconds: *seconds.last().unwrap(),
                status: failure.is_none().then_some(200),
                failure: failure.map(|phase| http::HttpFailure {
                    phase,
                    detail: "why".into(),
                }),
                body_start: String::new(),
                location: None,
                address: None,
                via: None,
                certificate: None,
                tls_version: None,
            },
            external: None,
            segments: Vec::new(),
            segments_not_requested: Vec::new(),
            recent: seconds.iter().copied().collect(),
            threshold: threshold(setting),
            latency: LatencyHistogram::new(threshold(setting), 0.8),
            setting,
        }
    }

    fn threshold(setting: BackendTimeout) -> Duration {
        Duration::from_secs(if setting == BackendTimeout::Long {
            180
        } else {
            85
        })
    }

    /// Steps 7, 8 and 9 as judged (`None`: no outcome at all).
    fn outcomes(b: &AppBackend) -> [Option<Outcome>; 3] {
        let judged = Answers {
            backend: Some(b),
            risk_ratio: 0.8,
            legacy_tls: None,
        }
        .judge();
        let of = |step: Step| judged.get(step).cloned();
        [
            of(Step::InternalUrl),
            of(Step::InternalNetwork),
            of(Step::BackendTimeout),
        ]
    }

    /// The histogram's two bounds are the ones step 9 judges by: the risk ratio of the app's
    /// timeout and the timeout; a request exactly at a bound is counted below it.
    #[test]
    fn the_latency_histogram_counts_against_the_risk_and_the_timeout() {
        let mut default = LatencyHistogram::new(threshold(BackendTimeout::Default), 0.8);
        let mut long = LatencyHistogram::new(threshold(BackendTimeout::Long), 0.8);
        assert_eq!(default.bounds, [68.0, 85.0]);
        assert_eq!(long.bounds, [144.0, 180.0]);
        for seconds in [0.2, 68.0, 70.0, 90.0] {
            default.observe(seconds);
            long.observe(seconds);
        }
        assert_eq!(default.buckets(), [(68.0, 2), (85.0, 3)]);
        assert_eq!(long.buckets(), [(144.0, 4), (180.0, 4)]);
        assert_eq!((default.count, default.sum), (4, 228.2));
    }

    /// The exported ratio is the one step 9 judges: the median of the recent latencies, so one
    /// slow request neither pages nor hides a trend.
    #[test]
    fn the_latency_ratio_is_the_median_over_the_timeout() {
        let b = backend(&[10.0, 80.0, 20.0], None, BackendTimeout::Default);
        assert!((b.ratio() - 20.0 / 85.0).abs() < 1e-9, "{}", b.ratio());
        let [_, _, nine] = outcomes(&b);
        assert_eq!(nine, Some(Outcome::Pass));
    }

    #[test]
    fn a_fast_page_passes_7_8_and_9() {
        let [seven, eight, nine] =
            outcomes(&backend(&[0.2, 0.3, 0.1], None, BackendTimeout::Default));
        assert_eq!(
            (seven, eight, nine),
            (
                Some(Outcome::Pass),
                Some(Outcome::Pass),
                Some(Outcome::Pass)
            )
        );
    }

    #[test]
    fn a_network_failure_is_step_8_and_leaves_step_7_unjudged() {
        let [seven, eight, _] = outcomes(&backend(
            &[0.1],
            Some(http::FailurePhase::Connect),
            BackendTimeout::Default,
        ));
        assert!(matches!(seven, Some(Outcome::NotEvaluated(_))), "{seven:?}");
        assert!(matches!(eight, Some(Outcome::Fail(_))));
    }

    #[test]
    fn connected_without_an_answer_is_step_9_not_a_network_failure() {
        let [seven, eight, nine] = outcomes(&backend(
            &[106.0],
            Some(http::FailurePhase::Timeout),
            BackendTimeout::Default,
        ));
        assert!(matches!(seven, Some(Outcome::NotEvaluated(_))), "{seven:?}");
        assert_eq!(eight, Some(Outcome::Pass), "the network is fine");
        let Some(Outcome::Fail(found)) = nine else {
            panic!("{nine:?}")
        };
        let remedy = found.remedy.clone();
        assert!(remedy.unwrap().contains("not answering in time"));
    }

    /// A wildcard app judged by its segments: one loads, one answers 503, one refuses. Each
    /// failing step names its own segment's host; the page that loaded is not blamed.
    #[test]
    fn a_wildcard_app_fails_each_step_one_of_its_segments_fails() {
        let answer = |url: &str, failure: Option<http::FailurePhase>| {
            let mut outcome = backend(&[0.1], failure, BackendTimeout::Default).last;
            if let Some(f) = &mut outcome.failure {
                f.detail = format!("{url} failed");
            }
            wildcard::SegmentAnswer {
                url: url.into(),
                outcome,
            }
        };
        let segments = vec![
            answer("up.corp.example", None),
            answer("error.corp.example", Some(http::FailurePhase::Http)),
            answer("refused.corp.example", Some(http::FailurePhase::Connect)),
        ];
        let mut b = backend(&[0.1], None, BackendTimeout::Default);
        b.last = wildcard::combine(&segments).unwrap();
        b.segments = segments;
        assert!(!b.up(), "one segment's failure is the app's");
        let [seven, eight, nine] = outcomes(&b);
        assert_eq!(
            seven.as_ref().and_then(Outcome::evidence),
            Some("error.corp.example failed")
        );
        assert_eq!(
            eight.as_ref().and_then(Outcome::evidence),
            Some("refused.corp.example failed")
        );
        assert!(
            !matches!(nine, Some(Outcome::Fail(_))),
            "quick answers do not fail step 9"
        );
        b.segments.truncate(1);
        b.last = wildcard::combine(&b.segments).unwrap();
        let [seven, eight, _] = outcomes(&b);
        assert_eq!((seven, eight), (Some(Outcome::Pass), Some(Outcome::Pass)));
    }

    #[test]
    fn a_proxys_refusal_is_step_5_and_the_backend_unjudged() {
        let b = backend(
            &[0.1],
            Some(http::FailurePhase::Proxy),
            BackendTimeout::Default,
        );
        let answers = Answers {
            backend: Some(&b),
            risk_ratio: 0.8,
            legacy_tls: None,
        };
        assert_eq!(answers.proxy_refusal().as_deref(), Some("why"));
        assert_eq!(
            answers.judge().get(Step::ForwardProxy),
            None,
            "step 5 is the proxy family's to word"
        );
        let [seven, eight, nine] = outcomes(&b);
        assert!(matches!(seven, Some(Outcome::NotEvaluated(_))));
        assert!(matches!(eight, Some(Outcome::NotEvaluated(_))));
        assert_eq!(nine, None, "no answer, no latency to judge");
    }

    #[test]
    fn an_application_failure_is_step_7_with_the_network_fine() {
        let [seven, eight, _] = outcomes(&backend(
            &[0.1],
            Some(http::FailurePhase::Http),
            BackendTimeout::Default,
        ));
        assert!(matches!(seven, Some(Outcome::Fail(_))));
        assert_eq!(eight, Some(Outcome::Pass));
    }

    /// A backend that offers only TLS 1.0/1.1, as `net::tls` reports it.
    fn legacy_only_backend() -> AppBackend {
        let mut b = backend(
            &[0.1],
            Some(http::FailurePhase::Tls),
            BackendTimeout::Default,
        );
        b.last.tls_version = Some(TlsVersion::Legacy);
        b
    }

    fn step_7(b: &AppBackend, legacy_tls: Option<&Outcome>) -> Option<Outcome> {
        Answers {
            backend: Some(b),
            risk_ratio: 0.8,
            legacy_tls,
        }
        .judge()
        .get(Step::InternalUrl)
        .cloned()
    }

    /// The exporter cannot speak the backend's TLS, the connector's SChannel may: step 7 is
    /// not evaluated, with both reasons, never failed and never passed.
    #[test]
    fn a_legacy_tls_backend_is_not_evaluated_where_schannel_may_speak_it() {
        let b = legacy_only_backend();
        let host = Outcome::not_evaluated("this host's SChannel does (on by default)");
        let Some(Outcome::NotEvaluated(why)) = step_7(&b, Some(&host)) else {
            panic!()
        };
        assert_eq!(why.reason, "why; this host's SChannel does (on by default)");
        let Some(Outcome::NotEvaluated(why)) = step_7(&b, None) else {
            panic!("before the host's settings are read, nothing is failed")
        };
        assert!(why.reason.contains("not known yet"), "{}", why.reason);
        let [_, eight, nine] = outcomes(&b);
        assert_eq!(eight, Some(Outcome::Pass), "the network is fine");
        assert_eq!(nine, None, "no answer, no latency");
    }

    /// Where this host's SChannel has TLS 1.0/1.1 off, the connector cannot reach the backend
    /// either: step 7 fails, the backend's evidence first, with the host's remedy.
    #[test]
    fn a_legacy_tls_backend_fails_step_7_where_schannel_has_them_off() {
        let b = legacy_only_backend();
        let host = Outcome::fail_with_remedy("SChannel has them off", "Enable TLS 1.2");
        let Some(Outcome::Fail(failed)) = step_7(&b, Some(&host)) else {
            panic!()
        };
        assert_eq!(failed.evidence, "why; SChannel has them off");
        assert_eq!(failed.remedy.as_deref(), Some("Enable TLS 1.2"));
    }

    /// Any other TLS failure stays step 7's own, whatever SChannel allows.
    #[test]
    fn another_tls_failure_fails_step_7_whatever_schannel_allows() {
        let b = backend(
            &[0.1],
            Some(http::FailurePhase::Tls),
            BackendTimeout::Default,
        );
        let host = Outcome::not_evaluated("SChannel does");
        assert!(matches!(step_7(&b, Some(&host)), Some(Outcome::Fail(_))));
    }

    #[test]
    fn the_same_latency_fails_a_default_app_and_passes_a_long_one() {
        let [_, _, default] =
            outcomes(&backend(&[70.0, 71.0, 72.0], None, BackendTimeout::Default));
        let [_, _, long] = outcomes(&backend(&[70.0, 71.0, 72.0], None, BackendTimeout::Long));
        let Some(Outcome::Fail(found)) = default else {
            panic!("{default:?}")
        };
        let evidence = &found.evidence;
        let remedy = found.remedy.clone();
        assert!(
            evidence.contains("84% of the app's Default backend timeout (85 s)"),
            "{evidence}"
        );
        assert!(remedy.unwrap().contains("Long"));
        assert_eq!(long, Some(Outcome::Pass));
    }

    #[test]
    fn a_long_app_near_its_ceiling_is_told_to_answer_faster() {
        let [_, _, nine] = outcomes(&backend(&[150.0, 160.0, 170.0], None, BackendTimeout::Long));
        let Some(Outcome::Fail(found)) = nine else {
            panic!()
        };
        let remedy = found.remedy.clone();
        assert!(remedy.unwrap().contains("180 s (Long) is the ceiling"));
    }

    #[test]
    fn one_slow_request_among_three_does_not_decide() {
        let [_, _, nine] = outcomes(&backend(&[0.5, 80.0, 0.4], None, BackendTimeout::Default));
        assert_eq!(nine, Some(Outcome::Pass));
    }

    #[test]
    fn an_internal_url_that_is_no_http_url_fails_step_7() {
        let settings = crate::config::Settings::default().probes.backend;
        let key = AppKey::new("G", "a");
        let target = Target::new(
            key,
            "ftp://files.corp.example/",
            true,
            BackendTimeout::Default,
            &settings,
            None,
        );
        let error = target.url.unwrap_err().to_string();
        assert!(error.contains("not an http(s) URL"), "{error}");
    }
}
