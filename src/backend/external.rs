//! Step 10 of the flowchart, `escalate_app_flow`: when an app has an external URL, request it
//! as a user would, and judge only what that can show. A passthrough app's front end answers
//! with the app itself: 2xx, 3xx, 401 or 403 is up. A pre-authenticated app's front end sends
//! every anonymous user to Microsoft sign-in, whatever the connector's state: that it does so
//! shows the front end is up and nothing more, so step 10 is not evaluated. App Proxy's own
//! error pages name what failed, and are mapped to that step: "Backend Timeout" to step 9, a
//! gateway timeout (no connector answered) to step 2, the rest to step 10.

use url::Url;

use super::http;
use crate::walk::{Outcome, Step};

/// Phrases of App Proxy's error pages, which can come with any status, and the step each
/// names; compared without regard to letter case, the specific ones first.
pub const ERROR_PAGES: [(&str, Step); 6] = [
    ("backend timeout", Step::BackendTimeout),
    ("the connector timed out", Step::BackendTimeout),
    ("gatewaytimeout", Step::ConnectorInstalled),
    ("gateway timeout", Step::ConnectorInstalled),
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
    /// A failure, and the step it belongs to.
    Fails { step: Step, evidence: String },
}

/// What the external URL answered.
#[derive(Debug, Clone)]
pub struct External {
    pub outcome: http::Outcome,
    pub verdict: Verdict,
}

impl External {
    /// Judges the answer to `url`; `pre_authenticated` is Graph's `externalAuthenticationType`
    /// when known.
    pub fn judge(url: &str, outcome: http::Outcome, pre_authenticated: Option<bool>) -> External {
        let verdict = verdict(url, &outcome, pre_authenticated);
        External { outcome, verdict }
    }

    /// Something answered for the app from outside (`appproxy_external_up`).
    pub fn reachable(&self) -> bool {
        !matches!(self.verdict, Verdict::Fails { .. })
    }

    /// What the answer says for the walk: step 10, or the step an error page names.
    pub fn steps(&self) -> Vec<(Step, Outcome)> {
        match &self.verdict {
            Verdict::Up => vec![(Step::EscalateAppFlow, Outcome::Pass)],
            Verdict::SignIn => vec![(
                Step::EscalateAppFlow,
                Outcome::not_evaluated(
                    "the external URL redirects to Microsoft sign-in (pre-authentication): the front end is up, and what happens after sign-in cannot be judged without signing in",
                ),
            )],
            Verdict::Fails { step, evidence } if *step == Step::EscalateAppFlow => {
                vec![(*step, Outcome::fail(evidence.clone()))]
            }
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
        }
    }

    fn judge(status: u16, body: &str, location: Option<&str>, pre: Option<bool>) -> Verdict {
        External::judge("https://app/", outcome(status, body, location), pre).verdict
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
        let external = External::judge("https://app/", outcome(302, "", sign_in), None);
        let steps = external.steps();
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
        let external = External::judge("https://app/", failed, None);
        let steps: Vec<Step> = external.steps().iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, [Step::BackendTimeout, Step::EscalateAppFlow]);
        assert!(!external.reachable());
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
