//! An app's segments as Graph lists them, kept as Graph wrote them: a Private Access app's
//! (`ipApplicationSegment`: what the connector is asked to reach for it) and a wildcard web
//! app's (`webApplicationSegment`: the concrete internal and external URLs published under
//! its wildcard). What can be probed of them, and how, is the backend's business
//! (`backend::segments` for step 8, `backend::wildcard` for steps 7-10).

use serde::Serialize;

use super::graph::{IpApplicationSegment, WebApplicationSegment};
use crate::config::values::redact_url;

/// One segment: a destination (a host name, an IP address, a range `a-b` or a CIDR block, or
/// a DNS suffix), its ports (`"22"`, `"8000-8080"`) and its protocol (`tcp`, `udp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub destination_host: String,
    /// Graph's `destinationType` as given (`fqdn`, `ipAddress`, `ipRange`, `ipRangeCidr`,
    /// `dnsSuffix`, or a value Graph adds later); empty when Graph gave none.
    pub destination_type: String,
    pub ports: Vec<String>,
    /// `tcp`, `udp`, or what Graph gave; empty when it gave none.
    pub protocol: String,
}

/// The segments of a Private Access app, or why they could not be read (that app alone: the
/// rest of the inventory loads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum PrivateAccessSegments {
    Read(Vec<Segment>),
    Unreadable(String),
}

impl From<&IpApplicationSegment> for Segment {
    fn from(s: &IpApplicationSegment) -> Segment {
        Segment {
            destination_host: s.destination_host.clone().unwrap_or_default().trim().into(),
            destination_type: s.destination_type.clone().unwrap_or_default(),
            ports: s.ports.clone().unwrap_or_default(),
            protocol: s.protocol.clone().unwrap_or_default(),
        }
    }
}

/// One of a wildcard web app's segments: its internal URL (what steps 7-10 request), its
/// external URL, both as Graph gave them (a password in either redacted), empty when missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebSegment {
    pub internal_url: String,
    pub external_url: String,
}

/// The segments of a wildcard web app, or why they could not be read (that app alone: the
/// rest of the inventory loads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum WebSegments {
    Read(Vec<WebSegment>),
    Unreadable(String),
}

impl From<&WebApplicationSegment> for WebSegment {
    fn from(s: &WebApplicationSegment) -> WebSegment {
        let url = |u: &Option<String>| redact_url(u.as_deref().unwrap_or_default().trim());
        WebSegment {
            internal_url: url(&s.internal_url),
            external_url: url(&s.external_url),
        }
    }
}

/// Whether an internal URL's host is a wildcard (`https://*.corp.example/`): such an app names
/// no host to request, and its segments are read for one.
pub fn is_wildcard_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.starts_with("*.")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wildcard_host_is_a_wildcard_url() {
        assert!(is_wildcard_url("https://*.hr.corp.example/"));
        assert!(is_wildcard_url("http://*.corp.example:8080/start"));
        for concrete in [
            "https://hr.corp.example/",
            "https://contoso.com/*",
            "not a url",
            "",
        ] {
            assert!(!is_wildcard_url(concrete), "{concrete}");
        }
    }

    #[test]
    fn a_segment_keeps_its_urls_with_a_password_redacted() {
        let read = WebSegment::from(&WebApplicationSegment {
            internal_url: Some(" https://user:pw@payroll.corp.example/ ".into()),
            external_url: None,
            ..WebApplicationSegment::default()
        });
        assert!(!read.internal_url.contains("pw"), "{}", read.internal_url);
        assert!(read.internal_url.contains("payroll.corp.example"));
        assert_eq!(read.external_url, "");
    }
}
