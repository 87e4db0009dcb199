//! `POST /-/reload`: re-read the config file, as SIGHUP does. It is on by default, as the
//! product's contract has it (`--web.enable-lifecycle=false` turns it off, Prometheus' flag;
//! SIGHUP always works). What keeps it from being a lever: reloads that change nothing of how
//! Graph is read keep its source, token and inventory; reloads asked for together share one
//! reading of the file ([`crate::exporter::Exporter::reload`]); and a request a browser sends
//! for a page of another site is refused, by what the browser says of it (`Sec-Fetch-Site`,
//! `Origin`). Such a "simple" POST (a form, or `text/plain`) needs no CORS preflight, so
//! without this check any page the operator opens could make the exporter reload.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::exporter::Exporter;

const TEXT: &str = "text/plain; charset=utf-8";

/// What the reload route needs to judge a request.
pub struct ReloadRoute {
    pub enabled: bool,
    /// The origin of `--web.external-url` (`https://mon.example`), also our own.
    pub external_origin: Option<String>,
}

pub async fn reload(exporter: Arc<Exporter>, route: &ReloadRoute, headers: &HeaderMap) -> Response {
    let answer =
        |status, body: String| (status, [(header::CONTENT_TYPE, TEXT)], body).into_response();
    if !route.enabled {
        // Prometheus' own words for the same refusal.
        return answer(
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled.\n".to_string(),
        );
    }
    if let Some(why) = cross_site(headers, route.external_origin.as_deref()) {
        tracing::warn!(why = %why, "POST /-/reload refused: a cross-site request");
        return answer(
            StatusCode::FORBIDDEN,
            format!(
                "reload refused: a cross-site request ({why}); reload from the exporter's own pages, with a tool that sends no Origin (curl), or with SIGHUP\n"
            ),
        );
    }
    // Reading the file is blocking I/O; keep it off the async workers.
    match tokio::task::spawn_blocking(move || exporter.reload()).await {
        Ok(Ok(())) => answer(StatusCode::OK, "configuration reloaded\n".to_string()),
        Ok(Err(error)) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed, the previous configuration stays in force:\n{error}\n"),
        ),
        Err(error) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed: {error}\n"),
        ),
    }
}

/// Why the request comes from another site's page, if it does. Browsers say so in
/// `Sec-Fetch-Site` (Fetch Metadata), and send `Origin` with every POST; tools send neither.
/// `same-site` is refused too: another port or subdomain of this host is another origin.
fn cross_site(headers: &HeaderMap, external_origin: Option<&str>) -> Option<String> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)"))
    };
    if let Some(site) = text("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Some(format!("Sec-Fetch-Site: {site}"));
        }
    }
    let origin = text("origin")?;
    let host = text("host").unwrap_or("");
    if same_origin(origin, host) || external_origin.is_some_and(|own| own == origin) {
        return None;
    }
    Some(format!(
        "Origin {:?} is not this exporter's",
        crate::secret::cut(origin, 100)
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names the host and port the request was sent to.
fn same_origin(origin: &str, host: &str) -> bool {
    let Ok(origin) = url::Url::parse(origin) else {
        return false; // "null", from a sandboxed page or a file: never ours.
    };
    let (Some(origin_host), Some(origin_port)) =
        (origin.host_str(), origin.port_or_known_default())
    else {
        return false;
    };
    let Ok(sent_to) = url::Url::parse(&format!("{}://{host}", origin.scheme())) else {
        return false;
    };
    sent_to
        .host_str()
        .is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
        && sent_to.port_or_known_default() == Some(origin_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_same_host_and_port_is_the_same_origin_whatever_the_spelling() {
        assert!(same_origin("http://conn-01:9869", "CONN-01:9869"));
        assert!(same_origin("https://conn-01", "conn-01:443"));
        assert!(same_origin("http://[::1]:9869", "[::1]:9869"));
        assert!(!same_origin("http://conn-01:9870", "conn-01:9869"));
        assert!(!same_origin("http://evil.example", "conn-01"));
        assert!(!same_origin("null", "conn-01"));
    }

    #[test]
    fn the_external_urls_origin_is_ours_behind_a_proxy() {
        let proxied = headers(&[
            ("host", "127.0.0.1:9869"),
            ("origin", "https://mon.example"),
        ]);
        assert!(cross_site(&proxied, Some("https://mon.example")).is_none());
        assert!(cross_site(&proxied, None).is_some());
    }
}
