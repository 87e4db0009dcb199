//! Wildcard apps: one App Proxy app can publish every host under a domain
//! (`https://*.corp.example/`). Such a URL names no host to request, so steps 7-10 are not
//! evaluated for the app unless `probes.backend.wildcard_hosts` names a concrete host that the
//! wildcard covers; then that host is requested, and the external URL's wildcard gets the same
//! prefix (App Proxy maps `payroll.contoso.com` to `payroll.corp.example` the same way).

use url::Url;

use super::UrlError;
use crate::config::WildcardHost;
use crate::inventory::App;

/// The URLs to request for an app: its own, or a wildcard's with the configured host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    pub internal: String,
    pub external: Option<String>,
}

/// The app's URLs to request, or why none can be (the reason shown for steps 7-10).
pub fn urls(app: &App, hosts: &[WildcardHost]) -> Result<Urls, UrlError> {
    let Some(suffix) = wildcard_suffix(&app.internal_url) else {
        return Ok(Urls {
            internal: app.internal_url.clone(),
            external: app.external_url.clone(),
        });
    };
    let Some(configured) = hosts
        .iter()
        .find(|h| *h.app == *app.name || h.app == app.id)
    else {
        return Err(UrlError::WildcardWithoutHost {
            url: app.internal_url.clone(),
            app: app.name.to_string(),
        });
    };
    let host = configured.host.0.as_str();
    let Some(prefix) = host
        .strip_suffix(suffix.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::HostName;
    use crate::inventory::fixtures::app;

    fn wildcard_app() -> App {
        let mut a = app("hr-apps").in_group("Default");
        a.internal_url = "https://*.corp.example:8443/start".into();
        a.external_url = Some("https://*.contoso.com/".into());
        a
    }

    fn host(app: &str, host: &str) -> WildcardHost {
        WildcardHost {
            app: app.into(),
            host: HostName::parse(host).unwrap(),
        }
    }

    #[test]
    fn a_concrete_url_is_requested_as_it_is() {
        let a = app("intranet");
        assert_eq!(urls(&a, &[]).unwrap().internal, a.internal_url);
    }

    #[test]
    fn a_wildcard_without_a_configured_host_is_not_requested_and_says_what_to_set() {
        let reason = urls(&wildcard_app(), &[]).unwrap_err().to_string();
        assert!(reason.contains("is a wildcard"), "{reason}");
        assert!(reason.contains("probes.backend.wildcard_hosts"), "{reason}");
    }

    #[test]
    fn a_configured_host_replaces_the_wildcard_in_both_urls() {
        let got = urls(&wildcard_app(), &[host("hr-apps", "payroll.corp.example")]).unwrap();
        assert_eq!(got.internal, "https://payroll.corp.example:8443/start");
        assert_eq!(
            got.external.as_deref(),
            Some("https://payroll.contoso.com/")
        );
    }

    #[test]
    fn a_configured_host_the_wildcard_does_not_cover_is_refused() {
        for other in ["payroll.other.example", "corp.example"] {
            let reason = urls(&wildcard_app(), &[host("hr-apps", other)])
                .unwrap_err()
                .to_string();
            assert!(reason.contains("does not cover"), "{other}: {reason}");
        }
    }
}
