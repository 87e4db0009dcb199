//! Wildcard apps: one App Proxy app can publish every host under a domain
//! (`https://*.corp.example/`). Such a URL names no host to request, so steps 7-10 request the
//! concrete hosts Graph lists as the app's segments (`webApplicationSegment`: each with its own
//! `internalUrl` and `externalUrl`), at most [`MAX_SEGMENT_HOSTS`] of them, each segment's
//! internal URL as Graph writes it. `probes.backend.wildcard_hosts` overrides the segments for
//! its app: that host is requested alone, and the external URL's wildcard gets the same prefix
//! (App Proxy maps `payroll.contoso.com` to `payroll.corp.example` the same way). With neither,
//! steps 7-10 are not evaluated, and say why.
//!
//! An app requested at several segment hosts keeps the series of one app: it is judged by all
//! of them ([`merge`]: a step fails when one segment's host fails it, naming that host), and its
//! one recorded answer ([`combine`]) is the failing segment's of the earliest step, else the
//! slowest's.

use url::Url;

use super::UrlError;
use super::http;
use crate::config::WildcardHost;
use crate::inventory::{App, WebSegments};
use crate::walk::{Outcome, Step, StepResults};

/// At most this many of a wildcard app's segments are requested, each every
/// `probes.backend.interval`; the rest are listed as not requested.
pub const MAX_SEGMENT_HOSTS: usize = 8;

/// The URLs to request for an app: its own, or a wildcard's with a concrete host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    pub internal: String,
    pub external: Option<String>,
}

/// What steps 7-10 request for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requests {
    /// One for an app with a concrete URL or a configured host; one per usable segment (at
    /// most [`MAX_SEGMENT_HOSTS`]) for a wildcard app judged by its segments.
    pub urls: Vec<Urls>,
    /// Whether `urls` are the app's Graph segments (judged together, shown one by one).
    pub from_segments: bool,
    /// The segments not requested, each with why.
    pub not_requested: Vec<String>,
}

/// The app's URLs to request, or why none can be (the reason shown for steps 7-10).
pub fn requests(app: &App, hosts: &[WildcardHost]) -> Result<Requests, UrlError> {
    let Some(suffix) = wildcard_suffix(&app.internal_url) else {
        return Ok(one(Urls {
            internal: app.internal_url.clone(),
            external: app.external_url.clone(),
        }));
    };
    if let Some(configured) = hosts
        .iter()
        .find(|h| *h.app == *app.name || h.app == app.id)
    {
        return configured_host(app, &suffix, configured.host.0.as_str()).map(one);
    }
    let (urls, not_requested) = from_segments(app.web_segments.as_deref());
    if urls.is_empty() {
        let why = match app.web_segments.as_deref() {
            // Graph's wildcard apps always have theirs read (or why not): this one is the
            // static config's, which has no segments.
            None => "the static config gives it no segments".to_string(),
            Some(WebSegments::Unreadable(why)) => format!("its segments could not be read ({why})"),
            Some(WebSegments::Read(_)) if not_requested.is_empty() => {
                "Graph lists no segment for it".to_string()
            }
            Some(WebSegments::Read(_)) => format!(
                "none of its segments has a concrete host ({})",
                not_requested.join("; ")
            ),
        };
        return Err(UrlError::WildcardWithoutHost {
            url: app.internal_url.clone(),
            app: app.name.to_string(),
            why,
        });
    }
    Ok(Requests {
        urls,
        from_segments: true,
        not_requested,
    })
}

fn one(urls: Urls) -> Requests {
    Requests {
        urls: vec![urls],
        from_segments: false,
        not_requested: Vec::new(),
    }
}

/// The segments' URLs to request (concrete http(s) internal URLs, each once, at most
/// [`MAX_SEGMENT_HOSTS`]) and the others with why.
fn from_segments(segments: Option<&WebSegments>) -> (Vec<Urls>, Vec<String>) {
    let Some(WebSegments::Read(segments)) = segments else {
        return (Vec::new(), Vec::new());
    };
    let (mut urls, mut not_requested) = (Vec::<Urls>::new(), Vec::new());
    for segment in segments {
        let internal = segment.internal_url.as_str();
        let problem = match Url::parse(internal) {
            _ if internal.is_empty() => Some("a segment without an internalUrl".to_string()),
            Err(_) => Some(format!("{internal:?} is not a URL")),
            Ok(u) if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() => {
                Some(format!("{internal} is not an http(s) URL with a host"))
            }
            Ok(u) if u.host_str().is_some_and(|h| h.contains('*')) => {
                Some(format!("{internal} is a wildcard too"))
            }
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            not_requested.push(format!("{problem}: not requested"));
        } else if urls.iter().any(|u| u.internal == internal) {
            // The same internal URL under two external ones: requested once.
        } else if urls.len() == MAX_SEGMENT_HOSTS {
            not_requested.push(format!(
                "{internal}: not requested (at most {MAX_SEGMENT_HOSTS} segments an app)"
            ));
        } else {
            urls.push(Urls {
                internal: internal.to_string(),
                external: Some(segment.external_url.clone()).filter(|e| !e.is_empty()),
            });
        }
    }
    (urls, not_requested)
}

/// The app's URLs with the configured host in place of the wildcard.
fn configured_host(app: &App, suffix: &str, host: &str) -> Result<Urls, UrlError> {
    let Some(prefix) = host
        .strip_suffix(suffix)
        .and_then(|p| p.strip_suffix('.'))
        .filter(|p| !p.is_empty())
    else {
        return Err(UrlError::HostNotCovered {
            host: host.to_string(),
            app: app.name.to_string(),
            url: app.internal_url.clone(),
        });
    };
    let internal = with_host(&app.internal_url, host)?;
    let external = match app.external_url.as_deref() {
        Some(external) => match wildcard_suffix(external) {
            Some(external_suffix) => {
                Some(with_host(external, &format!("{prefix}.{external_suffix}"))?)
            }
            None => Some(external.to_string()),
        },
        None => None,
    };
    Ok(Urls { internal, external })
}

/// `corp.example` for `https://*.corp.example/`; `None` for a URL without a wildcard host.
fn wildcard_suffix(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    parsed
        .host_str()?
        .strip_prefix("*.")
        .filter(|rest| !rest.contains('*'))
        .map(str::to_ascii_lowercase)
}

fn with_host(url: &str, host: &str) -> Result<String, UrlError> {
    let mut parsed = Url::parse(url).map_err(|source| UrlError::Unparsable {
        url: url.to_string(),
        source,
    })?;
    parsed
        .set_host(Some(host))
        .map_err(|source| UrlError::HostRejected {
            host: host.to_string(),
            url: url.to_string(),
            source,
        })?;
    Ok(parsed.to_string())
}

/// One segment's answer, kept for the page and `diagnose`.
#[derive(Debug, Clone)]
pub struct SegmentAnswer {
    /// The segment's internal URL as requested.
    pub url: String,
    pub outcome: http::Outcome,
}

/// The earliest step a failed request speaks for: a proxy refusal (5) before a page that did
/// not load (7), before the network (8), before a timeout (9).
fn failure_rank(outcome: &http::Outcome) -> Option<u8> {
    use http::FailurePhase as P;
    Some(match outcome.failure.as_ref()?.phase {
        P::Proxy => 0,
        P::Tls | P::Http => 1,
        P::Resolve | P::Connect => 2,
        P::Timeout => 3,
    })
}

/// The one answer recorded for the app (its `appproxy_backend_*` series and step 9's
/// latency): the failing segment's of the earliest step, else the slowest segment's. `None`
/// when there is no answer.
pub fn combine(answers: &[SegmentAnswer]) -> Option<http::Outcome> {
    let failing = answers
        .iter()
        .filter_map(|a| Some((failure_rank(&a.outcome)?, a)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, a)| a);
    let chosen = failing.or_else(|| {
        answers
            .iter()
            .max_by(|a, b| a.outcome.seconds.total_cmp(&b.outcome.seconds))
    })?;
    Some(chosen.outcome.clone())
}

/// Steps 7-9 of an app judged by its segments, from each segment's own judgement: a step fails
/// when one segment fails it (the evidence names each such segment's host, as its request's
/// failure does); else passes when one passes; else is not evaluated, with the first reason.
pub fn merge(per_segment: &[StepResults]) -> StepResults {
    let mut merged = StepResults::default();
    for step in [
        Step::InternalUrl,
        Step::InternalNetwork,
        Step::BackendTimeout,
    ] {
        let outcomes: Vec<&Outcome> = per_segment.iter().filter_map(|r| r.get(step)).collect();
        let failed: Vec<&Outcome> = outcomes
            .iter()
            .copied()
            .filter(|o| matches!(o, Outcome::Fail(_)))
            .collect();
        let outcome = if let Some(Outcome::Fail(first)) = failed.first() {
            let evidence = failed
                .iter()
                .filter_map(|o| o.evidence())
                .collect::<Vec<_>>()
                .join("; ");
            match &first.remedy {
                Some(remedy) => Outcome::fail_with_remedy(evidence, remedy.clone()),
                None => Outcome::fail(evidence),
            }
        } else if outcomes.iter().any(|o| o.passed()) {
            Outcome::Pass
        } else if let Some(first) = outcomes.first() {
            (*first).clone()
        } else {
            continue;
        };
        merged.set(step, outcome);
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::values::HostName;
    use crate::inventory::WebSegment;
    use crate::inventory::fixtures::app;

    fn wildcard_app() -> App {
        let mut a = app("hr-apps").in_group("Default");
        a.internal_url = "https://*.corp.example:8443/start".into();
        a.external_url = Some("https://*.contoso.com/".into());
        a
    }

    fn with_segments(internal: &[&str]) -> App {
        let mut a = wildcard_app();
        a.web_segments = Some(Arc::new(WebSegments::Read(
            internal
                .iter()
                .enumerate()
                .map(|(i, u)| WebSegment {
                    internal_url: (*u).into(),
                    external_url: format!("https://s{i}.contoso.com/"),
                })
                .collect(),
        )));
        a
    }

    fn host(app: &str, host: &str) -> WildcardHost {
        WildcardHost {
            app: app.into(),
            host: HostName::parse(host).unwrap(),
        }
    }

    fn internal(r: &Requests) -> Vec<&str> {
        r.urls.iter().map(|u| u.internal.as_str()).collect()
    }

    #[test]
    fn a_concrete_url_is_requested_as_it_is() {
        let a = app("intranet");
        let got = requests(&a, &[]).unwrap();
        assert_eq!(internal(&got), [a.internal_url.as_str()]);
        assert!(!got.from_segments);
    }

    #[test]
    fn a_wildcard_without_segments_or_a_configured_host_is_not_requested_and_says_why() {
        let reason = requests(&wildcard_app(), &[]).unwrap_err().to_string();
        assert!(reason.contains("is a wildcard"), "{reason}");
        assert!(
            reason.contains("the static config gives it no segments"),
            "{reason}"
        );
        assert!(reason.contains("probes.backend.wildcard_hosts"), "{reason}");

        let mut none = wildcard_app();
        none.web_segments = Some(Arc::new(WebSegments::Read(Vec::new())));
        let reason = requests(&none, &[]).unwrap_err().to_string();
        assert!(reason.contains("Graph lists no segment for it"), "{reason}");

        let mut unreadable = wildcard_app();
        unreadable.web_segments = Some(Arc::new(WebSegments::Unreadable("HTTP 403".into())));
        let reason = requests(&unreadable, &[]).unwrap_err().to_string();
        assert!(reason.contains("could not be read (HTTP 403)"), "{reason}");

        let reason = requests(&with_segments(&["https://*.hr.corp.example/", ""]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            reason.contains("none of its segments has a concrete host"),
            "{reason}"
        );
        assert!(reason.contains("is a wildcard too"), "{reason}");
        assert!(reason.contains("without an internalUrl"), "{reason}");
    }

    #[test]
    fn a_configured_host_replaces_the_wildcard_in_both_urls() {
        let got = requests(&wildcard_app(), &[host("hr-apps", "payroll.corp.example")]).unwrap();
        assert_eq!(internal(&got), ["https://payroll.corp.example:8443/start"]);
        assert_eq!(
            got.urls[0].external.as_deref(),
            Some("https://payroll.contoso.com/")
        );
    }

    #[test]
    fn a_configured_host_the_wildcard_does_not_cover_is_refused() {
        for other in ["payroll.other.example", "corp.example"] {
            let reason = requests(&wildcard_app(), &[host("hr-apps", other)])
                .unwrap_err()
                .to_string();
            assert!(reason.contains("does not cover"), "{other}: {reason}");
        }
    }

    /// Microsoft's example list answer has segments at https://contoso.com/ and
    /// https://contoso.co/ (tests/graph_server/fixtures/webapplicationsegment-list.json): a
    /// segment's internal URL is requested as Graph writes it, covered by the wildcard or not.
    #[test]
    fn a_wildcard_app_is_requested_at_each_segments_internal_url_with_its_own_external_url() {
        let got = requests(
            &with_segments(&["https://contoso.com/", "https://contoso.co/"]),
            &[],
        )
        .unwrap();
        assert!(got.from_segments);
        assert_eq!(
            internal(&got),
            ["https://contoso.com/", "https://contoso.co/"]
        );
        assert_eq!(
            got.urls[1].external.as_deref(),
            Some("https://s1.contoso.com/")
        );
        assert!(got.not_requested.is_empty());
    }

    #[test]
    fn a_configured_host_overrides_the_segments() {
        let got = requests(
            &with_segments(&["https://contoso.com/"]),
            &[host("hr-apps", "payroll.corp.example")],
        )
        .unwrap();
        assert!(!got.from_segments);
        assert_eq!(internal(&got), ["https://payroll.corp.example:8443/start"]);
    }

    #[test]
    fn segments_past_the_bound_or_unusable_are_listed_as_not_requested() {
        let many: Vec<String> = (0..MAX_SEGMENT_HOSTS + 2)
            .map(|i| format!("https://h{i}.corp.example/"))
            .collect();
        let mut all: Vec<&str> = many.iter().map(String::as_str).collect();
        all.extend(["ftp://files.corp.example/", "https://h0.corp.example/"]);
        let got = requests(&with_segments(&all), &[]).unwrap();
        assert_eq!(got.urls.len(), MAX_SEGMENT_HOSTS);
        assert_eq!(got.not_requested.len(), 3, "{:?}", got.not_requested);
        assert!(got.not_requested[0].contains("at most 8 segments"));
        assert!(got.not_requested[2].contains("not an http(s) URL"));
    }

    fn answer(url: &str, seconds: f64, failure: Option<http::FailurePhase>) -> SegmentAnswer {
        let mut outcome = super::super::tests::backend(
            &[seconds],
            failure,
            crate::config::values::BackendTimeout::Default,
        )
        .last;
        if let Some(f) = &mut outcome.failure {
            f.detail = format!("{url} failed");
        }
        SegmentAnswer {
            url: url.into(),
            outcome,
        }
    }

    #[test]
    fn the_recorded_answer_is_the_earliest_steps_failure_else_the_slowest() {
        use http::FailurePhase as P;
        let all_up = [answer("a", 1.0, None), answer("b", 3.0, None)];
        assert_eq!(combine(&all_up).unwrap().seconds, 3.0);
        let mixed = [
            answer("a", 0.1, Some(P::Connect)),
            answer("b", 2.0, Some(P::Http)),
            answer("c", 9.0, None),
        ];
        let chosen = combine(&mixed).unwrap();
        assert_eq!(chosen.failure.unwrap().detail, "b failed");
        assert!(combine(&[]).is_none());
    }

    #[test]
    fn a_step_fails_when_one_segment_fails_it_naming_each_and_passes_only_on_a_judgement() {
        let fail = |why: &str| Outcome::fail(why.to_string());
        let mut up = StepResults::default();
        up.set(Step::InternalUrl, Outcome::Pass);
        up.set(Step::InternalNetwork, Outcome::Pass);
        let mut refused = StepResults::default();
        refused.set(Step::InternalUrl, Outcome::not_evaluated("network first"));
        refused.set(Step::InternalNetwork, fail("b.corp.example:443 refused"));
        let mut also = StepResults::default();
        also.set(
            Step::InternalNetwork,
            fail("c.corp.example does not resolve"),
        );
        let merged = merge(&[up.clone(), refused.clone(), also]);
        assert!(merged.get(Step::InternalUrl).unwrap().passed());
        assert_eq!(
            merged.get(Step::InternalNetwork).unwrap().evidence(),
            Some("b.corp.example:443 refused; c.corp.example does not resolve")
        );
        assert!(merged.get(Step::BackendTimeout).is_none());
        let merged = merge(&[refused]);
        assert!(!merged.get(Step::InternalUrl).unwrap().evaluated());
        assert!(merge(&[up]).get(Step::InternalNetwork).unwrap().passed());
    }
}
