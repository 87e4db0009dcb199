//! Step 10 of the flowchart, `escalate_app_flow`: when an app has an external URL, request it
//! as a user would. If every connector-side step passes but the external URL still fails (5xx,
//! App Proxy's own error page, a timeout), the problem is past the connector: the app and SSO
//! debugging flow takes over.

use super::http;

/// Phrases of App Proxy's error pages, which can come with any status. Compared without
/// regard to letter case.
pub const ERROR_PAGE_MARKERS: [&str; 5] = [
    "this corporate app can't be accessed",
    "we can't access this corporate application",
    "backend timeout",
    "the connector timed out",
    "gateway timeout",
];

/// What the external URL answered.
#[derive(Debug, Clone)]
pub struct External {
    pub outcome: http::Outcome,
    /// Why it does not count as reachable; `None` when it does.
    pub problem: Option<String>,
}

impl External {
    /// A 2xx or 3xx (App Proxy redirects to sign-in) or 401/403 is reachable, unless the body
    /// is one of App Proxy's error pages.
    pub fn judge(url: &str, outcome: http::Outcome) -> External {
        // Microsoft's pages may use a typographic apostrophe.
        let body = outcome.body_start.to_lowercase().replace('\u{2019}', "'");
        let marker = ERROR_PAGE_MARKERS.iter().find(|m| body.contains(*m));
        let problem = match (&outcome.failure, outcome.status, marker) {
            (Some(failure), _, _) => Some(format!("the external URL {url} fails: {failure}")),
            (None, Some(status), Some(marker)) => Some(format!(
                "the external URL {url} answered {status} with App Proxy's error page ({marker:?})"
            )),
            (None, Some(status), None)
                if !(200..400).contains(&status) && status != 401 && status != 403 =>
            {
                Some(format!("the external URL {url} answered {status}"))
            }
            _ => None,
        };
        External { outcome, problem }
    }

    pub fn reachable(&self) -> bool {
        self.problem.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, body: &str) -> http::Outcome {
        http::Outcome {
            phases: Vec::new(),
            seconds: 0.1,
            status: Some(status),
            failure: None,
            body_start: body.into(),
        }
    }

    #[test]
    fn sign_in_redirects_and_challenges_are_reachable() {
        for status in [200, 302, 401, 403] {
            assert!(
                External::judge("https://app/", outcome(status, "")).reachable(),
                "{status}"
            );
        }
    }

    #[test]
    fn app_proxy_error_pages_are_not_reachable_whatever_the_status() {
        let page = "<html><h1>This corporate app can't be accessed.</h1>Backend Timeout</html>";
        let external = External::judge("https://app/", outcome(200, page));
        assert!(external.problem.unwrap().contains("App Proxy's error page"));
    }

    #[test]
    fn a_typographic_apostrophe_matches_too() {
        let page = "We can\u{2019}t access this corporate application";
        assert!(!External::judge("https://app/", outcome(200, page)).reachable());
    }

    #[test]
    fn other_client_errors_are_not_reachable() {
        assert!(!External::judge("https://app/", outcome(404, "")).reachable());
    }
}
