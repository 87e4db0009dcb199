//! Step 10 of the flowchart, `escalate_app_flow`: when an app has an external URL, request it
//! as a user would, and judge only what that can show. A passthrough app's front end answers
//! with the app itself: 2xx, 3xx, 401 or 403 is up. A pre-authenticated app's front end sends
//! every anonymous user to Microsoft sign-in, whatever the connector's state: that it does so
//! shows the front end is up and nothing more, so step 10 is not evaluated. An external host
//! that resolves, from this host, to an internal address (a custom domain behind split-brain
//! DNS) is not App Proxy at all: step 10 is not evaluated either.
//!
//! App Proxy's own error pages ("This corporate app can't be accessed") name what failed by
//! their status code, as application-proxy-sign-in-bad-gateway-timeout-error.md documents them:
//! "Backend Timeout" is step 9; a gateway time-out (App Proxy reached no working connector:
//! none in the group, or the ports closed) is step 2; a bad gateway (the connector that took
//! the request cannot reach the backend) names steps 7-8, which this host's own request
//! judges: where it loads the page, the failing connector is another of the group, and step 10
//! fails saying so; anything else is step 10.
//!
//! For an app on a custom domain, the same request's handshake shows whether the external URL
//! presents the certificate uploaded to App Proxy ([`super::custom_domain`]): another one fails
//! step 10 where the page answered or sent the user to sign-in.

use url::Url;

use super::custom_domain::{self, CertificateCheck, CustomDomain, Handshake};
use super::http;
use crate::inventory::CustomDomainCertificate;
use crate::walk::{Outcome, Step};

/// Phrases of App Proxy's error pages, which can come with any status, and the step each
/// names; compared without regard to letter case, the specific ones (its status codes) first.
pub const ERROR_PAGES: [(&str, Step); 9] = [
    ("backend timeout", Step::BackendTimeout),
    ("the connector timed out", Step::BackendTimeout),
    ("gatewaytimeout", Step::ConnectorInstalled),
    ("gateway timeout", Step::ConnectorInstalled),
    ("gateway time-out", Step::ConnectorInstalled),
    ("badgateway", Step::InternalUrl),
    ("bad gateway", Step::InternalUrl),
    (
        "this corporate app can't be accessed",
        Step::EscalateAppFlow,
    ),
    (
        "we can't access this corporate application",
        Step::EscalateAppFlow,
    ),
];

/// Microsoft's sign-in hosts, per cloud, that a pre-authenticating front end redirects to.
const SIGN_IN_HOSTS: [&str; 5] = [
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

/// What the external URL showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The front end answered with the app: step 10 passes.
    Up,
    /// The front end sent an anonymous user to Microsoft sign-in: up, and nothing more known.
    SignIn,
    /// The external host resolves here to an internal address: not App Proxy (split-brain DNS).
    Internal { address: std::net::IpAddr },
    /// A failure, and the step it belongs to.
    Fails { step: Step, evidence: String },
}

/// What the external URL answered.
#[derive(Debug, Clone)]
pub struct External {
    pub outcome: http::Outcome,
    pub verdict: Verdict,
    /// The custom-domain certificate's check, for an app Graph describes one for.
    pub custom_domain: Option<CustomDomain>,
}

impl External {
    /// Judges the answer to `url`; `pre_authenticated` is Graph's `externalAuthenticationType`
    /// when known, `internal` the address the app's internal URL was reached at, `here` the
    /// address the external host resolves to on this host.
    pub fn judge(
        url: &str,
        outcome: http::Outcome,
        pre_authenticated: Option<bool>,
        internal: Option<std::net::IpAddr>,
        here: Option<std::net::IpAddr>,
    ) -> External {
        let verdict = match here {
            Some(address) if is_internal(address) || Some(address) == internal => {
                Verdict::Internal { address }
            }
            _ => verdict(url, &outcome, pre_authenticated),
        };
        External {
            outcome,
            verdict,
            custom_domain: None,
        }
    }

    /// Adds the check of the app's custom-domain certificate (`None`: Graph describes none, so
    /// there is nothing to show) against what this answer's handshake presented.
    pub fn with_custom_domain(
        mut self,
        url: &str,
        expected: Option<&std::sync::Arc<CustomDomainCertificate>>,
    ) -> External {
        let Some(expected) = expected else {
            return self;
        };
        let check = match &self.verdict {
            Verdict::Internal { address } => CertificateCheck::NotEvaluated {
                reason: format!(
                    "the external URL's host resolves on this host to {address}, an internal address: what it presents here is not App Proxy's"
                ),
            },
            _ => CertificateCheck::of(
                Some(expected),
                Handshake {
                    https: url.starts_with("https:"),
                    presented: self.outcome.certificate.as_deref(),
                    failure: self.outcome.failure.as_ref().map(|f| f.detail.as_str()),
                    through_proxy: self.outcome.via.is_some(),
                },
            ),
        };
        self.custom_domain = Some(CustomDomain {
            expected: std::sync::Arc::clone(expected),
            check,
        });
        // The check says all there is to say of it; the answer is kept for every app.
        self.outcome.certificate = None;
        self
    }

    /// The custom-domain certificate's mismatch, when the external URL presents another one.
    fn mismatch(&self) -> Option<Outcome> {
        match &self.custom_domain.as_ref()?.check {
            CertificateCheck::Mismatch { evidence } => Some(Outcome::fail_with_remedy(
                evidence.clone(),
                custom_domain::REMEDY,
            )),
            _ => None,
        }
    }

    /// Something answered for the app from outside (`appproxy_external_up`).
    pub fn reachable(&self) -> bool {
        !matches!(self.verdict, Verdict::Fails { .. })
    }

    /// What the answer says for the walk: step 10, or the step an error page names. A bad
    /// gateway names steps 7-8, which this host's own request judges (`loaded`: it loaded the
    /// page): where it did, another connector of the group cannot reach the backend, and step
    /// 10 fails saying so; where it did not, steps 7-8 fail from it already.
    pub fn steps(&self, loaded: bool) -> Vec<(Step, Outcome)> {
        // The front end answered, but with a certificate that is not the app's.
        if matches!(self.verdict, Verdict::Up | Verdict::SignIn)
            && let Some(mismatch) = self.mismatch()
        {
            return vec![(Step::EscalateAppFlow, mismatch)];
        }
        match &self.verdict {
            Verdict::Up => vec![(Step::EscalateAppFlow, Outcome::Pass)],
            Verdict::SignIn => {
                let why = "the external URL redirects to Microsoft sign-in (pre-authentication): the front end is up, and what happens after sign-in cannot be judged without signing in";
                let outcome = match &self.custom_domain {
                    Some(c) => Outcome::not_evaluated(format!("{why}; {}", c.note())),
                    None => Outcome::not_evaluated(why),
                };
                vec![(Step::EscalateAppFlow, outcome)]
            }
            Verdict::Internal { address } => vec![(
                Step::EscalateAppFlow,
                Outcome::not_evaluated(format!(
                    "the external URL's host resolves on this host to {address}, an internal address (split-brain DNS for a custom domain): a request from here never passes through App Proxy, so what users outside get cannot be judged from this host"
                )),
            )],
            Verdict::Fails { step, evidence } if *step == Step::EscalateAppFlow => {
                vec![(*step, Outcome::fail(evidence.clone()))]
            }
            Verdict::Fails { step, evidence } if *step == Step::InternalUrl && loaded => vec![(
                Step::EscalateAppFlow,
                Outcome::fail_with_remedy(
                    format!(
                        "{evidence}: the connector that took the request cannot reach the backend (steps 7-8), and this host can"
                    ),
                    "Another connector of the app's group cannot reach the backend: walk steps 7 and 8 on the group's other connector hosts (their exporters' pages), or take the failing connector out of the group.",
                ),
            )],
            Verdict::Fails { step, evidence } => vec![
                (*step, Outcome::fail(evidence.clone())),
                (
                    Step::EscalateAppFlow,
                    Outcome::not_evaluated(format!(
                        "App Proxy's error page names step {} ({})",
                        step.number(),
                        step.name()
                    )),
                ),
            ],
        }
    }
}

/// Not an address of the internet, where App Proxy's front ends are: private (RFC 1918), shared
/// (RFC 6598), link-local, or IPv6 unique-local or link-local.
fn is_internal(address: std::net::IpAddr) -> bool {
    match address {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

fn verdict(url: &str, outcome: &http::Outcome, pre_authenticated: Option<bool>) -> Verdict {
    // App Proxy's error pages come with any status, a 5xx included: they are read first.
    // Microsoft's pages may use a typographic apostrophe.
    let body = outcome.body_start.to_lowercase().replace('\u{2019}', "'");
    if let (Some(status), Some((marker, step))) = (
        outcome.status,
        ERROR_PAGES.iter().find(|(m, _)| body.contains(m)),
    ) {
        return Verdict::Fails {
            step: *step,
            evidence: format!(
                "the external URL {url} answered {status} with App Proxy's error page ({marker:?})"
            ),
        };
    }
    if let Some(failure) = &outcome.failure {
        return Verdict::Fails {
            step: Step::EscalateAppFlow,
            evidence: format!("the external URL {url} fails: {failure}"),
        };
    }
    let Some(status) = outcome.status else {
        return Verdict::Fails {
            step: Step::EscalateAppFlow,
            evidence: format!("the external URL {url} did not answer"),
        };
    };
    if (300..400).contains(&status) && redirects_to_sign_in(outcome.location.as_deref()) {
        return Verdict::SignIn;
    }
    if pre_authenticated == Some(true) && (300..400).contains(&status) {
        // Pre-authentication redirects somewhere of Microsoft's (a custom sign-in domain too).
        return Verdict::SignIn;
    }
    if (200..400).contains(&status) || status == 401 || status == 403 {
        Verdict::Up
    } else {
        Verdict::Fails {
            step: Step::EscalateAppFlow,
            evidence: format!("the external URL {url} answered {status}"),
        }
    }
}

fn redirects_to_sign_in(location: Option<&str>) -> bool {
    location
        .and_then(|l| Url::parse(l).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| SIGN_IN_HOSTS.contains(&host.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, body: &str, location: Option<&str>) -> http::Outcome {
        http::Outcome {
            phases: Vec::new(),
            seconds: 0.1,
            status: Some(status),
            failure: None,
            body_start: body.into(),
            location: location.map(String::from),
            via: None,
            address: None,
            certificate: None,
            tls_version: None,
        }
    }

    fn judge(status: u16, body: &str, location: Option<&str>, pre: Option<bool>) -> Verdict {
        External::judge(
            "https://app/",
            outcome(status, body, location),
            pre,
            None,
            None,
        )
        .verdict
    }

    #[test]
    fn a_passthrough_app_answering_or_challenging_is_up() {
        for status in [200, 302, 401, 403] {
            assert_eq!(
                judge(status, "", None, Some(false)),
                Verdict::Up,
                "{status}"
            );
        }
    }

    #[test]
    fn a_redirect_to_microsoft_sign_in_is_up_and_nothing_more() {
        let sign_in = Some("https://login.microsoftonline.com/tenant/oauth2/authorize?client_id=x");
        assert_eq!(judge(302, "", sign_in, None), Verdict::SignIn);
        assert_eq!(
            judge(302, "", Some("https://sso.contoso.com/"), Some(true)),
            Verdict::SignIn
        );
        let external = External::judge("https://app/", outcome(302, "", sign_in), None, None, None);
        let steps = external.steps(true);
        assert!(matches!(
            &steps[0],
            (Step::EscalateAppFlow, Outcome::NotEvaluated(_))
        ));
        assert!(external.reachable());
    }

    #[test]
    fn app_proxy_error_pages_go_to_the_step_they_name() {
        let timeout = "<html><h1>This corporate app can't be accessed.</h1>Backend Timeout</html>";
        assert!(matches!(
            judge(504, timeout, None, None),
            Verdict::Fails {
                step: Step::BackendTimeout,
                ..
            }
        ));
        let gateway = "<p>Error Code: GatewayTimeout</p>";
        assert!(matches!(
            judge(504, gateway, None, None),
            Verdict::Fails {
                step: Step::ConnectorInstalled,
                ..
            }
        ));
        let other = "We can\u{2019}t access this corporate application";
        assert!(matches!(
            judge(200, other, None, None),
            Verdict::Fails {
                step: Step::EscalateAppFlow,
                ..
            }
        ));
        let mut failed = outcome(504, timeout, None);
        failed.failure = Some(http::HttpFailure {
            phase: http::FailurePhase::Http,
            detail: "app:443 answered HTTP 504".into(),
        });
        let external = External::judge("https://app/", failed, None, None, None);
        let steps: Vec<Step> = external.steps(true).iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, [Step::BackendTimeout, Step::EscalateAppFlow]);
        assert!(!external.reachable());
    }

    /// application-proxy-sign-in-bad-gateway-timeout-error.md: the page's status code says
    /// what failed. "Gateway time-out": App Proxy reached no working connector (step 2). "Bad
    /// gateway": the connector that took the request cannot reach the backend (steps 7-8).
    #[test]
    fn the_status_code_on_app_proxys_page_names_its_steps() {
        let page = |code: &str| {
            format!("<h1>This corporate app can't be accessed.</h1><p>Status Code: {code}</p>")
        };
        let step = |body: &str| match judge(200, body, None, None) {
            Verdict::Fails { step, .. } => step,
            other => panic!("{other:?}"),
        };
        assert_eq!(step(&page("Gateway time-out")), Step::ConnectorInstalled);
        assert_eq!(step(&page("Bad gateway")), Step::InternalUrl);
        assert_eq!(step(&page("Forbidden")), Step::EscalateAppFlow);
    }

    #[test]
    fn a_bad_gateway_where_this_host_loads_the_page_fails_step_10_naming_the_other_connectors() {
        let body = "<h1>This corporate app can't be accessed.</h1><p>Status Code: Bad gateway</p>";
        let external = External::judge("https://app/", outcome(502, body, None), None, None, None);
        // This host's own request loaded the page: another connector cannot reach it.
        let steps = external.steps(true);
        assert_eq!(steps.len(), 1);
        let (step, outcome) = &steps[0];
        assert_eq!(*step, Step::EscalateAppFlow);
        let evidence = outcome.evidence().unwrap_or_default();
        assert!(evidence.contains("steps 7-8"), "{evidence}");
        // This host's own request failed too: steps 7-8 say so, App Proxy's page agrees.
        let steps: Vec<Step> = external.steps(false).iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, [Step::InternalUrl, Step::EscalateAppFlow]);
    }

    #[test]
    fn an_external_host_resolving_here_to_an_internal_address_is_not_app_proxy() {
        let answer = outcome(200, "intranet", None);
        let judge = |internal: Option<&str>, here: &str| {
            External::judge(
                "https://intranet.contoso.com/",
                answer.clone(),
                None,
                internal.and_then(|a| a.parse().ok()),
                here.parse().ok(),
            )
        };
        for here in [
            "10.1.2.3",
            "172.20.0.9",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
        ] {
            let external = judge(None, here);
            assert!(
                matches!(external.verdict, Verdict::Internal { .. }),
                "{here}"
            );
            let steps = external.steps(true);
            assert!(matches!(
                steps[0],
                (Step::EscalateAppFlow, Outcome::NotEvaluated(_))
            ));
        }
        // Where the internal URL itself was reached (the lab's loopback, say).
        let same = judge(Some("127.0.0.51"), "127.0.0.51");
        assert!(matches!(same.verdict, Verdict::Internal { .. }));
        // An address of the internet is App Proxy's: judged.
        assert_eq!(
            judge(Some("127.0.0.51"), "20.190.160.1").verdict,
            Verdict::Up
        );
    }

    fn uploaded() -> std::sync::Arc<CustomDomainCertificate> {
        std::sync::Arc::new(CustomDomainCertificate {
            subject: "CN=apps.contoso.com".into(),
            issuer: "CN=Contoso CA".into(),
            thumbprint: "3EAB12CD3EAB12CD3EAB12CD3EAB12CD3EAB12CD".into(),
            expiry_date: "2027-03-01T00:00:00Z".into(),
            expires_at: Some(1_803_859_200),
        })
    }

    /// The external URL's answer, its handshake having presented `thumbprint`.
    fn presenting(status: u16, location: Option<&str>, thumbprint: &str) -> External {
        let mut answer = outcome(status, "", location);
        answer.certificate = Some(Box::new(crate::net::tls::PresentedCertificate {
            thumbprint: thumbprint.into(),
            subject: "CN=apps.contoso.com".into(),
            issuer_common_name: Some("Contoso CA".into()),
        }));
        External::judge("https://apps.contoso.com/", answer, None, None, None)
            .with_custom_domain("https://apps.contoso.com/", Some(&uploaded()))
    }

    #[test]
    fn a_front_end_presenting_another_certificate_fails_step_10_even_when_it_answers() {
        let other = "00112233445566778899aabbccddeeff00112233";
        let sign_in = Some("https://login.microsoftonline.com/t/oauth2/authorize");
        for external in [
            presenting(200, None, other),
            presenting(302, sign_in, other),
        ] {
            let steps = external.steps(true);
            let [(Step::EscalateAppFlow, Outcome::Fail(found))] = steps.as_slice() else {
                panic!("{steps:?}")
            };
            assert!(found.evidence.contains(other), "{}", found.evidence);
            assert!(
                found
                    .remedy
                    .as_deref()
                    .unwrap_or_default()
                    .contains("CNAME")
            );
            assert!(external.reachable(), "the front end did answer");
        }
    }

    #[test]
    fn the_uploaded_certificate_passes_nothing_by_itself_and_is_told_beside_step_10() {
        let same = "3eab12cd3eab12cd3eab12cd3eab12cd3eab12cd";
        assert_eq!(
            presenting(200, None, same).steps(true),
            [(Step::EscalateAppFlow, Outcome::Pass)]
        );
        // A pre-authenticated front end stays not evaluated; the match is said in its reason.
        let sign_in = Some("https://login.microsoftonline.com/t/oauth2/authorize");
        let steps = presenting(302, sign_in, same).steps(true);
        let [(Step::EscalateAppFlow, Outcome::NotEvaluated(why))] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert!(
            why.reason
                .contains("presents the custom-domain certificate"),
            "{}",
            why.reason
        );
    }

    #[test]
    fn split_brain_dns_leaves_the_certificate_unchecked() {
        let mut answer = outcome(200, "", None);
        answer.certificate = Some(Box::new(crate::net::tls::PresentedCertificate {
            thumbprint: "00112233445566778899aabbccddeeff00112233".into(),
            subject: "CN=intranet".into(),
            issuer_common_name: None,
        }));
        let external = External::judge(
            "https://apps.contoso.com/",
            answer,
            None,
            None,
            "10.1.2.3".parse().ok(),
        )
        .with_custom_domain("https://apps.contoso.com/", Some(&uploaded()));
        assert!(matches!(
            external.custom_domain.as_ref().map(|c| &c.check),
            Some(CertificateCheck::NotEvaluated { .. })
        ));
        assert!(matches!(
            external.steps(true)[0],
            (Step::EscalateAppFlow, Outcome::NotEvaluated(_))
        ));
    }

    #[test]
    fn other_client_errors_fail_step_10() {
        assert!(matches!(
            judge(404, "", None, None),
            Verdict::Fails {
                step: Step::EscalateAppFlow,
                ..
            }
        ));
    }
}
