//! Which requests skip the proxy, as the two Windows stacks decide it. The connector's backend
//! requests go through its proxy only with `UseDefaultProxyForBackendRequests`, and then not to
//! the hosts its bypass rules name:
//! - .NET (`<proxy bypassonlocal="true">` and `<bypasslist><add address="..."/>`): loopback is
//!   always bypassed; `bypassonlocal` bypasses local hosts (an IP of this host's loopback, or a
//!   name without a dot); each `address` is a regular expression, matched case-insensitively
//!   anywhere in `scheme://host`, with `:port` when the port is not the scheme's default
//!   (.NET Framework's `WebProxy.IsBypassed` and `IsMatchInBypassList`);
//! - WinINet (the Internet Options "Exceptions"): `;`-separated patterns where `*` is any text,
//!   matched against the host, and `<local>` for names without a dot.

use regex::{Regex, RegexBuilder};
use url::Url;

/// The bypass rules of one proxy setting.
#[derive(Debug, Clone, Default)]
pub struct Bypass {
    on_local: bool,
    /// .NET's regular expressions.
    patterns: Vec<Regex>,
    /// WinINet's wildcard patterns, lower case.
    wildcards: Vec<String>,
}

impl PartialEq for Bypass {
    fn eq(&self, other: &Self) -> bool {
        let sources = |b: &Bypass| {
            b.patterns
                .iter()
                .map(|r| r.as_str().to_string())
                .collect::<Vec<_>>()
        };
        self.on_local == other.on_local
            && self.wildcards == other.wildcards
            && sources(self) == sources(other)
    }
}

impl Eq for Bypass {}

/// A `<bypasslist>` address that is not a usable regular expression (the first 80 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("<bypasslist> address \"{0}\" is not a regular expression .NET and the exporter can use")]
pub struct BypassError(String);

/// The longest bypass expression compiled; .NET has no limit, but a config file is small.
const MAX_PATTERN: usize = 1024;

impl Bypass {
    /// .NET's rules; an expression that is not a valid regular expression is an error naming it.
    pub fn dotnet(on_local: bool, list: &[String]) -> Result<Bypass, BypassError> {
        let patterns = list
            .iter()
            .map(|source| {
                RegexBuilder::new(source)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .ok()
                    .filter(|_| source.len() <= MAX_PATTERN)
                    .ok_or_else(|| BypassError(source.chars().take(80).collect()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Bypass {
            on_local,
            patterns,
            wildcards: Vec::new(),
        })
    }

    /// WinINet's exception list (`*.corp.example;10.*;<local>`).
    pub fn wininet(list: &str) -> Bypass {
        let mut bypass = Bypass::default();
        for entry in list
            .split([';', ' ', '\t', '\r', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if entry.eq_ignore_ascii_case("<local>") {
                bypass.on_local = true;
            } else {
                bypass.wildcards.push(entry.to_ascii_lowercase());
            }
        }
        bypass
    }

    /// Whether a request to `url` goes around the proxy.
    pub fn bypasses(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if is_loopback(&host) || (self.on_local && !host.contains('.') && !host.contains(':')) {
            return true;
        }
        let scheme_host = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        self.patterns.iter().any(|r| r.is_match(&scheme_host))
            || self.wildcards.iter().any(|w| {
                let pattern = w
                    .strip_prefix("http://")
                    .or_else(|| w.strip_prefix("https://"))
                    .unwrap_or(w);
                wildcard_match(pattern, &host)
            })
    }

    pub fn is_empty(&self) -> bool {
        !self.on_local && self.patterns.is_empty() && self.wildcards.is_empty()
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn dotnet_bypasses_loopback_always_and_dotless_names_on_local() {
        let none = Bypass::dotnet(false, &[]).unwrap();
        assert!(none.bypasses(&url("http://127.0.0.1:8080/")));
        assert!(!none.bypasses(&url("http://intranet/")));
        let local = Bypass::dotnet(true, &[]).unwrap();
        assert!(local.bypasses(&url("http://intranet/")));
        assert!(!local.bypasses(&url("http://intranet.corp.example/")));
    }

    #[test]
    fn dotnet_expressions_match_anywhere_in_scheme_host_and_port_ignoring_case() {
        let list = [
            r"intranet\.corp\.example".to_string(),
            r"^https://10\.0\.".to_string(),
        ];
        let b = Bypass::dotnet(false, &list).unwrap();
        assert!(b.bypasses(&url("https://INTRANET.corp.example/path")));
        assert!(b.bypasses(&url("https://10.0.1.2:8443/")));
        assert!(
            !b.bypasses(&url("http://10.0.1.2/")),
            "the expression names https"
        );
        let port = Bypass::dotnet(false, &[r"wiki\.corp\.example:8080$".into()]).unwrap();
        assert!(port.bypasses(&url("http://wiki.corp.example:8080/")));
        assert!(!port.bypasses(&url("http://wiki.corp.example/")));
    }

    #[test]
    fn a_bypass_address_that_is_no_regular_expression_is_named() {
        let error = Bypass::dotnet(false, &["(unclosed".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"(unclosed\""), "{error}");
    }

    #[test]
    fn wininet_exceptions_are_wildcards_on_the_host_and_local_means_no_dot() {
        let b = Bypass::wininet("*.corp.example; 10.*;<local>");
        assert!(b.bypasses(&url("https://wiki.corp.example/")));
        assert!(b.bypasses(&url("http://10.1.2.3:8080/")));
        assert!(b.bypasses(&url("http://intranet/")));
        assert!(!b.bypasses(&url("https://corp.example.evil.test/")));
        assert!(!b.bypasses(&url("https://www.contoso.com/")));
        assert!(Bypass::wininet("").is_empty());
    }
}
