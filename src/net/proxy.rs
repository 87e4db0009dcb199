//! A forward proxy's address, as every source of proxy settings (the services' files, the
//! registry, the environment) and every route through one name it.

use std::fmt;

/// A proxy, as `host:port` (the form every source can be reduced to).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProxyAddress {
    pub host: String,
    pub port: u16,
}

impl ProxyAddress {
    /// Reads `http://host:port/`, `host:port` or `host` (port 80, as .NET assumes).
    pub fn parse(text: &str) -> Option<ProxyAddress> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let url = url::Url::parse(&with_scheme).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Some(ProxyAddress {
            host,
            port: url.port_or_known_default().unwrap_or(80),
        })
    }
}

impl fmt::Display for ProxyAddress {
    /// The `proxy_url` label form: `http://host:port`, no trailing slash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}
