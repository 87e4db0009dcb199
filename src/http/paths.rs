//! Where the routes live and how links to them are written, the Prometheus way:
//! `--web.route-prefix` is where every route is served (by default the path of
//! `--web.external-url`), links on the page use the external URL's path (a reverse proxy may
//! strip a prefix that users still see), and runbook links are absolute URLs under the external
//! URL when it is set, so that they work from an alert or a terminal.

use url::Url;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebPaths {
    /// Where the routes are served: empty (the root) or `/prefix`, never a trailing slash.
    route_prefix: String,
    /// What links on the page start with: the external URL's path, else the route prefix.
    link_prefix: String,
    /// The external URL without its trailing slash, when set.
    external: Option<String>,
}

impl WebPaths {
    pub fn new(external_url: Option<&Url>, route_prefix: Option<&str>) -> WebPaths {
        let external_path = external_url.map(|url| trim(url.path()));
        let route_prefix = match (route_prefix, &external_path) {
            (Some(prefix), _) => trim(prefix),
            (None, Some(path)) => path.clone(),
            (None, None) => String::new(),
        };
        WebPaths {
            link_prefix: external_path.unwrap_or_else(|| route_prefix.clone()),
            route_prefix,
            external: external_url.map(|url| url.as_str().trim_end_matches('/').to_string()),
        }
    }

    /// Where the routes are served: empty or `/prefix`.
    pub fn route_prefix(&self) -> &str {
        &self.route_prefix
    }

    /// The route of `path` (which starts with `/`).
    pub fn route(&self, path: &str) -> String {
        format!("{}{path}", self.route_prefix)
    }

    /// A link to `path` (which starts with `/`) for a page the exporter serves.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.link_prefix)
    }

    /// The origin of the external URL (`https://mon.example`), when it is set: pages served
    /// behind a reverse proxy post from it.
    pub fn external_origin(&self) -> Option<String> {
        let url = Url::parse(self.external.as_deref()?).ok()?;
        Some(url.origin().ascii_serialization())
    }

    /// What runbook links start with: `https://host/prefix/runbooks` with an external URL,
    /// else the path `/prefix/runbooks`.
    pub fn runbooks(&self) -> String {
        match &self.external {
            Some(external) => format!("{external}/runbooks"),
            None => self.link("/runbooks"),
        }
    }
}

/// `/a/b/` and `a/b` to `/a/b`; `/` to the empty prefix.
fn trim(path: &str) -> String {
    let path = path.trim_matches('/');
    if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    }
}

/// What `--web.external-url`, `--web.route-prefix` and `--web.telemetry-path` refuse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebFlagError {
    #[error("{text:?}: the URL may not contain {bad:?}")]
    UrlCharacter { text: String, bad: char },
    #[error("{text:?}: {source}: {URL_HINT}")]
    Url {
        text: String,
        source: url::ParseError,
    },
    #[error("{text:?} is not an absolute http(s) URL: {URL_HINT}")]
    NotAbsolute { text: String },
    #[error("{text:?} has a query or fragment: {URL_HINT}")]
    QueryOrFragment { text: String },
    #[error("{text:?}: the path may not contain {bad:?}")]
    PathCharacter { text: String, bad: char },
    #[error("{text:?}: the path may not contain ..")]
    DotDot { text: String },
    #[error("must start with / and name a path, such as /metrics")]
    NotAPath,
    #[error("{0} is another endpoint of the exporter")]
    Reserved(String),
    #[error("{0:?} is not allowed: use letters, digits and / - _ . ~ only, such as /metrics")]
    TelemetryCharacter(char),
}

const URL_HINT: &str =
    "use an absolute http:// or https:// URL such as https://monitoring.example/appproxy/";

/// `--web.external-url`: an absolute http(s) URL with a host, without query or fragment.
pub fn parse_external_url(text: &str) -> Result<Url, WebFlagError> {
    let owned = || text.to_string();
    // Checked before parsing, which would percent-encode them.
    if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(WebFlagError::UrlCharacter { text: owned(), bad });
    }
    let url = Url::parse(text).map_err(|source| WebFlagError::Url {
        text: owned(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(WebFlagError::NotAbsolute { text: owned() });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(WebFlagError::QueryOrFragment { text: owned() });
    }
    check_path(url.path(), text)?;
    Ok(url)
}

/// `--web.route-prefix`: a plain path; `/` (or empty) is the root.
pub fn parse_route_prefix(text: &str) -> Result<String, WebFlagError> {
    check_path(text, text)?;
    Ok(text.to_string())
}

/// `path` (of the flag's value `text`) holds nothing a route or a link cannot.
fn check_path(path: &str, text: &str) -> Result<(), WebFlagError> {
    if let Some(bad) = path
        .chars()
        .find(|c| matches!(c, '{' | '}' | '*' | '?' | '#' | '%' | ' ' | ':') || c.is_control())
    {
        return Err(WebFlagError::PathCharacter {
            text: text.to_string(),
            bad,
        });
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err(WebFlagError::DotDot {
            text: text.to_string(),
        });
    }
    Ok(())
}

/// `--web.telemetry-path`: a plain absolute path that no other endpoint uses.
pub fn parse_telemetry_path(text: &str) -> Result<String, WebFlagError> {
    let reserved = [
        "/",
        "/config",
        "/-/healthy",
        "/-/ready",
        "/-/reload",
        "/runbooks",
        "/api/v1/diagnosis",
    ];
    if !text.starts_with('/') || text.len() < 2 {
        return Err(WebFlagError::NotAPath);
    }
    // A segment starting with `:` is a capture in axum's old syntax, which it refuses with a
    // panic: no `:` at all.
    if reserved.contains(&text) {
        return Err(WebFlagError::Reserved(text.to_string()));
    }
    if let Some(c) = text
        .chars()
        .find(|c| matches!(c, '{' | '}' | '*' | '?' | '#' | ':') || c.is_whitespace())
    {
        return Err(WebFlagError::TelemetryCharacter(c));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        parse_external_url(text).unwrap()
    }

    #[test]
    fn without_flags_routes_and_links_are_at_the_root() {
        let paths = WebPaths::new(None, None);
        assert_eq!(paths.route("/metrics"), "/metrics");
        assert_eq!(paths.link("/config"), "/config");
        assert_eq!(paths.runbooks(), "/runbooks");
    }

    #[test]
    fn the_external_urls_path_is_the_route_prefix_and_runbooks_are_absolute() {
        let paths = WebPaths::new(Some(&url("https://mon.example/appproxy/")), None);
        assert_eq!(paths.route_prefix(), "/appproxy");
        assert_eq!(paths.route("/metrics"), "/appproxy/metrics");
        assert_eq!(paths.link("/config"), "/appproxy/config");
        assert_eq!(paths.runbooks(), "https://mon.example/appproxy/runbooks");
    }

    #[test]
    fn a_route_prefix_of_its_own_serves_elsewhere_but_links_follow_the_external_url() {
        // A reverse proxy that strips /appproxy before passing requests on.
        let paths = WebPaths::new(Some(&url("https://mon.example/appproxy")), Some("/"));
        assert_eq!(paths.route("/metrics"), "/metrics");
        assert_eq!(paths.link("/metrics"), "/appproxy/metrics");
        assert_eq!(paths.runbooks(), "https://mon.example/appproxy/runbooks");

        let paths = WebPaths::new(None, Some("exporter/"));
        assert_eq!(paths.route("/metrics"), "/exporter/metrics");
        assert_eq!(paths.runbooks(), "/exporter/runbooks");
    }

    #[test]
    fn an_external_url_at_the_root_keeps_routes_at_the_root() {
        let paths = WebPaths::new(Some(&url("http://conn-01.corp.example:9869")), None);
        assert_eq!(paths.route_prefix(), "");
        assert_eq!(
            paths.runbooks(),
            "http://conn-01.corp.example:9869/runbooks"
        );
    }

    #[test]
    fn external_urls_that_cannot_be_linked_to_are_refused_with_the_reason() {
        for (bad, reason) in [
            ("conn-01:9869", "not an absolute http(s) URL"),
            ("ftp://conn-01/", "not an absolute http(s) URL"),
            ("https://conn-01/?a=1", "query or fragment"),
            ("/appproxy", "relative URL without a base"),
            ("https://conn-01/a b", "may not contain ' '"),
        ] {
            let error = parse_external_url(bad).unwrap_err().to_string();
            assert!(error.contains(reason), "{bad}: {error}");
            assert!(error.contains(bad), "{bad}: {error}");
        }
        for bad in ["/a{b}", "/a/../b", "/a?b"] {
            assert!(parse_route_prefix(bad).is_err(), "{bad}");
        }
    }
}
