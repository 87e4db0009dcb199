//! The vocabulary of the config file: enums and checked scalars that validate themselves while
//! they are deserialized, so a bad value is reported at its own line and column. The typed
//! settings and the rest of the exporter use these same types.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::platform::file_version::FileVersion;

/// A value the config file (or a flag) cannot hold; the message quotes it, never a password in
/// it (it goes to the log and into the answer of POST /-/reload).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid URL {shown:?}: {source}")]
    Url {
        shown: String,
        source: url::ParseError,
    },
    #[error("invalid URL {shown:?}: the scheme must be http or https, not {scheme:?}")]
    Scheme { shown: String, scheme: String },
    #[error("invalid URL {shown:?}: it has no host")]
    NoHost { shown: String },
    #[error(
        "{shown:?} is not a host name: use letters, digits, hyphens and dots only, such as payroll.corp.example (no wildcard, scheme, port or path)"
    )]
    HostName { shown: String },
    #[error(
        "{shown:?} is not a host name or IP address: give the host alone, such as login.microsoftonline.com, 192.0.2.10 or 2001:db8::10 (no scheme, port, path or brackets)"
    )]
    EndpointHost { shown: String },
    #[error(
        "invalid duration {text:?}: use a number and a unit (ms, s, m, h, d, w, y), such as 30s or 5m"
    )]
    Duration { text: String },
    #[error(
        "{shown:?} is not a connector version: use four whole numbers from 0 to 65535 separated by dots, as Microsoft's release history writes them, such as 1.5.4522.0"
    )]
    ConnectorVersion { shown: String },
}

/// Which Microsoft cloud the tenant lives in: picks Graph/login hosts and the endpoint catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    #[default]
    Public,
    Usgov,
    China,
}

impl Cloud {
    /// Microsoft Graph's host for this cloud.
    pub fn graph_url(self) -> &'static str {
        match self {
            Self::Public => "https://graph.microsoft.com",
            Self::Usgov => "https://graph.microsoft.us",
            Self::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// The Entra ID sign-in host for this cloud.
    pub fn login_url(self) -> &'static str {
        match self {
            Self::Public => "https://login.microsoftonline.com",
            Self::Usgov => "https://login.microsoftonline.us",
            Self::China => "https://login.chinacloudapi.cn",
        }
    }
}

/// How the exporter signs in to Microsoft Graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphAuth {
    ClientSecret,
    ClientCertificate,
    DeviceCode,
}

/// A connector's status as Graph reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorStatus {
    Active,
    Inactive,
}

/// App Proxy's backend timeout setting: Default (85 s) or Long (180 s). Graph writes it in
/// lower case, the portal capitalised, so any letter case is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendTimeout {
    #[default]
    Default,
    Long,
}

impl BackendTimeout {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "default" => Some(Self::Default),
            "long" => Some(Self::Long),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Long => "long",
        }
    }
}

impl<'de> Deserialize<'de> for BackendTimeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown backend_timeout {text:?}, expected default or long (any letter case)"
            ))
        })
    }
}

/// What a required endpoint is for (the catalog's purpose column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointPurpose {
    Service,
    Certificates,
    Registration,
}

/// Whether the built-in endpoint catalog is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Catalog {
    #[default]
    Builtin,
    None,
}

/// Reads a whole number in `min..=max`, with a message that says which range when it is not.
fn whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
    what: &'static str,
    min: u64,
    max: u64,
) -> Result<u64, D::Error> {
    struct Visitor {
        what: &'static str,
        min: u64,
        max: u64,
    }
    impl serde::de::Visitor<'_> for Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} from {} to {}", self.what, self.min, self.max)
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
            if (self.min..=self.max).contains(&n) {
                Ok(n)
            } else {
                Err(E::custom(format!("{n} is out of range: expected {self}")))
            }
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
            Err(E::custom(format!("{n} is out of range: expected {self}")))
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
            Err(E::custom(format!(
                "{text:?} is not a number: expected {self}"
            )))
        }
        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<u64, E> {
            Err(E::custom(format!(
                "{n} is not a whole number: expected {self}"
            )))
        }
    }
    impl fmt::Display for Visitor {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            serde::de::Expected::fmt(self, f)
        }
    }
    deserializer.deserialize_any(Visitor { what, min, max })
}

/// A TCP port, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(deserializer, "a port", 1, 65_535)?;
        Ok(Self(u16::try_from(n).unwrap_or(u16::MAX)))
    }
}

/// How many probes may run at once, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Concurrency(pub u32);

impl<'de> Deserialize<'de> for Concurrency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(deserializer, "a number of probes", 1, 65_535)?;
        Ok(Self(u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

/// `probes.segments.max_addresses`: how many addresses of one IP range or CIDR block of a
/// Private Access segment are probed, 1 to 256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AddressSample(pub u32);

impl<'de> Deserialize<'de> for AddressSample {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(deserializer, "a number of addresses per range", 1, 256)?;
        Ok(Self(u32::try_from(n).unwrap_or(256)))
    }
}

/// `probes.segments.max_ports`: how many ports of one port range of a Private Access segment
/// are probed, 1 to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortSample(pub u32);

impl<'de> Deserialize<'de> for PortSample {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(deserializer, "a number of ports per port range", 1, 64)?;
        Ok(Self(u32::try_from(n).unwrap_or(64)))
    }
}

/// An `http://` or `https://` URL with a host. A password inside it is never printed, not even
/// by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl(pub Url);

impl HttpUrl {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        // The value is quoted in the message, its password never: the message goes to the
        // log and into the answer of POST /-/reload.
        let shown = || redact_url(text);
        let url = Url::parse(text).map_err(|source| ValueError::Url {
            shown: shown(),
            source,
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ValueError::Scheme {
                shown: shown(),
                scheme: url.scheme().to_string(),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ValueError::NoHost { shown: shown() });
        }
        Ok(Self(url))
    }

    /// The URL as text with any password replaced, safe for logs, labels and `/config`.
    pub fn redacted(&self) -> String {
        redact_url(self.0.as_str())
    }
}

/// A URL as text with any password replaced by `REDACTED`, safe for logs, labels and
/// `/config`: the one function for every URL the exporter shows, from the config or from
/// Graph. Text that does not parse as a URL has whatever sits between `scheme://` and an `@`
/// replaced instead.
pub fn redact_url(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("REDACTED"));
                return url.to_string();
            }
            text.to_string()
        }
        Err(_) => crate::secret::redact_url_passwords(text),
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpUrl({})", self.redacted())
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// A DNS host name as a probe asks for it: letters, digits, hyphens and dots, no wildcard, no
/// scheme, port or path (`payroll.corp.example`), at most 253 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostName(pub String);

impl HostName {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let name = text.strip_suffix('.').unwrap_or(text);
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(ValueError::HostName {
                shown: text.chars().take(80).collect(),
            });
        }
        Ok(Self(name.to_ascii_lowercase()))
    }
}

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An endpoint's host: a DNS name as [`HostName`] takes it, or an IP address (IPv6 without
/// brackets, as a resolver gives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHost(pub String);

impl EndpointHost {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        if let Ok(ip) = text.parse::<std::net::IpAddr>() {
            return Ok(Self(ip.to_string()));
        }
        HostName::parse(text)
            .map(|name| Self(name.0))
            .map_err(|_| ValueError::EndpointHost {
                shown: text.chars().take(80).collect(),
            })
    }
}

impl<'de> Deserialize<'de> for EndpointHost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `auto`, or a name or path the user gives (`machine_name`, `service_config`, `updater_config`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AutoOr<T> {
    #[default]
    Auto,
    Value(T),
}

impl<'de, T: From<String>> Deserialize<'de> for AutoOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "auto" => Self::Auto,
            _ => Self::Value(T::from(text)),
        })
    }
}

impl<T: Serialize> Serialize for AutoOr<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => serializer.serialize_str("auto"),
            Self::Value(value) => value.serialize(serializer),
        }
    }
}

/// Which connector groups this host probes: `auto`, `[all]`, or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GroupSelection {
    #[default]
    Auto,
    All,
    Named(Vec<String>),
}

impl<'de> Deserialize<'de> for GroupSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        let invalid = |what: &str| {
            serde::de::Error::custom(format!(
                "{what}: expected auto, [all], or a list of connector group names"
            ))
        };
        match Raw::deserialize(deserializer)? {
            Raw::Word(word) if word == "auto" => Ok(Self::Auto),
            Raw::Word(word) => Err(invalid(&format!("unknown value {word:?}"))),
            Raw::List(names) if names == ["all"] => Ok(Self::All),
            Raw::List(names) if names.iter().any(|n| n == "all") => {
                Err(invalid("`all` cannot be combined with group names"))
            }
            Raw::List(names) if names.is_empty() => Err(invalid("the list is empty")),
            Raw::List(names) => Ok(Self::Named(names)),
        }
    }
}

impl Serialize for GroupSelection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => serializer.serialize_str("auto"),
            Self::All => ["all"].serialize(serializer),
            Self::Named(names) => names.serialize(serializer),
        }
    }
}

/// The forward proxy the probes use: read from the connector's files, none, or a given URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    #[default]
    Auto,
    Direct,
    Url(HttpUrl),
}

impl<'de> Deserialize<'de> for ProxySetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "auto" => Ok(Self::Auto),
            "direct" => Ok(Self::Direct),
            _ => HttpUrl::parse(&text).map(Self::Url).map_err(|e| {
                serde::de::Error::custom(format!("expected auto, direct or a proxy URL: {e}"))
            }),
        }
    }
}

impl Serialize for ProxySetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => serializer.serialize_str("auto"),
            Self::Direct => serializer.serialize_str("direct"),
            Self::Url(url) => url.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_timeout_accepts_any_letter_case() {
        for text in ["long", "Long", "LONG"] {
            assert_eq!(BackendTimeout::parse(text), Some(BackendTimeout::Long));
        }
        assert_eq!(
            BackendTimeout::parse("Default"),
            Some(BackendTimeout::Default)
        );
        assert_eq!(BackendTimeout::parse("longer"), None);
    }

    #[test]
    fn an_endpoint_host_is_a_name_or_an_address_alone() {
        for (text, host) in [
            ("login.microsoftonline.com", "login.microsoftonline.com"),
            ("Proxy.Corp.Example.", "proxy.corp.example"),
            ("192.0.2.10", "192.0.2.10"),
            ("2001:DB8::10", "2001:db8::10"),
        ] {
            assert_eq!(
                EndpointHost::parse(text),
                Ok(EndpointHost(host.into())),
                "{text}"
            );
        }
        for text in [
            "",
            "[::1]",
            "https://x.example/",
            "x.example:443",
            "*.msappproxy.net",
        ] {
            assert!(EndpointHost::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn urls_need_http_scheme_and_host() {
        assert!(HttpUrl::parse("https://intranet.corp.example/").is_ok());
        assert!(HttpUrl::parse("ftp://x.example/").is_err());
        assert!(HttpUrl::parse("intranet").is_err());
        assert!(HttpUrl::parse("http://").is_err());
    }

    #[test]
    fn a_password_is_redacted_from_any_url_text_and_never_quoted_in_an_error() {
        assert_eq!(
            redact_url("https://svc:hunter2@intranet.corp.example/"),
            "https://svc:REDACTED@intranet.corp.example/"
        );
        assert_eq!(
            redact_url("https://intranet.corp.example/a"),
            "https://intranet.corp.example/a",
            "a URL without a password is kept as written"
        );
        assert_eq!(
            redact_url("https://svc:hunter2@*.corp.example:99999/"),
            "https://svc:REDACTED@*.corp.example:99999/"
        );
        let error = HttpUrl::parse("http://svc:hunter2@proxy.corp.example:99999/").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
    }

    #[test]
    fn url_passwords_never_print() {
        let url = HttpUrl::parse("http://user:hunter2@proxy.corp.example:3128").unwrap();
        assert!(!url.to_string().contains("hunter2"));
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            url.redacted(),
            "http://user:REDACTED@proxy.corp.example:3128/"
        );
    }
}

/// A connector release's version as Microsoft's release history writes it: four whole numbers
/// from 0 to 65535 separated by dots (`1.5.4522.0`), the parts of a Windows file version.
/// Stricter than reading Graph's `version`: a release list is typed by a person, and `1.5.4522`
/// is more likely a typo than a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectorVersion(pub FileVersion);

impl ConnectorVersion {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let invalid = || ValueError::ConnectorVersion {
            shown: text.to_string(),
        };
        let mut parts = [0u32; 4];
        let mut count = 0;
        for part in text.split('.') {
            let slot = parts.get_mut(count).ok_or_else(invalid)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            *slot = part.parse::<u16>().map(u32::from).map_err(|_| invalid())?;
            count += 1;
        }
        if count == 4 {
            Ok(Self(FileVersion(parts)))
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for ConnectorVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ConnectorVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConnectorVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ConnectorVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a connector version such as 1.5.4522.0")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                ConnectorVersion::parse(text).map_err(E::custom)
            }
            // YAML reads `1.5` as a number and `1` as an integer: still not a version.
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                self.visit_str(&n.to_string())
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One connector release: its version, and whether Microsoft pushes it to connectors through
/// their updater service ("This version may perform auto-upgrade of your connector" in the
/// release history) or offers it only on the download page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConnectorRelease {
    pub version: ConnectorVersion,
    pub auto_update: bool,
}

/// The connector releases the version check judges against: the list built into the exporter
/// (Microsoft's release history on the day it was written, src/host/releases.rs), or the one
/// in `connector.releases`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Releases {
    #[default]
    Builtin,
    Listed(Vec<ConnectorRelease>),
}

impl Releases {
    pub fn is_builtin(&self) -> bool {
        matches!(self, Releases::Builtin)
    }
}

impl Serialize for Releases {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Releases::Builtin => serializer.serialize_str("builtin"),
            Releases::Listed(list) => list.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn a_release_version_is_four_numbers_of_sixteen_bits() {
        assert_eq!(
            ConnectorVersion::parse("1.5.4522.0"),
            Ok(ConnectorVersion(FileVersion([1, 5, 4522, 0])))
        );
        assert!(ConnectorVersion::parse("65535.0.0.1").is_ok());
        for bad in [
            "",
            "1.5.4522",
            "1.5.4522.0.1",
            "1.5.x.0",
            "1.5..0",
            "1.5.4522.0 ",
            " 1.5.1.0",
            "1.5.65536.0",
            "-1.5.1.0",
            "+1.5.1.0",
            "v1.5.4522.0",
        ] {
            assert!(ConnectorVersion::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        /// Written as the release history writes it, a version reads back as itself, and
        /// versions order as their parts do (not as their text: 1.5.999.0 < 1.5.4522.0).
        #[test]
        fn a_version_reads_back_as_written_and_orders_by_its_parts(
            a in proptest::array::uniform4(proptest::num::u16::ANY),
            b in proptest::array::uniform4(proptest::num::u16::ANY),
        ) {
            let version = |parts: [u16; 4]| {
                let text = parts.map(|p| p.to_string()).join(".");
                ConnectorVersion::parse(&text).map(|v| (v, v.to_string() == text))
            };
            let (va, exact_a) = version(a).unwrap();
            let (vb, exact_b) = version(b).unwrap();
            proptest::prop_assert!(exact_a && exact_b);
            proptest::prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
        }

        /// Whatever is written as a release's version, the config loads exactly when it is a
        /// version, and otherwise says which key is wrong; nothing panics.
        #[test]
        fn any_release_version_in_a_config_loads_or_names_its_key(text in "[0-9a-z.+ -]{0,24}") {
            let file = format!("connector:\n  releases:\n    - version: \"{text}\"\n      auto_update: true\n");
            match (crate::config::parse(&file, "f.yml"), ConnectorVersion::parse(&text)) {
                (Ok(_), Ok(_)) => {}
                (Err(error), Err(_)) => {
                    let message = error.to_string();
                    proptest::prop_assert!(
                        message.contains(": connector.releases[0].version: ") && message.contains("is not a connector version"),
                        "{}", message
                    );
                }
                (loaded, parsed) => proptest::prop_assert!(false, "{:?} against {:?}", loaded.err(), parsed),
            }
        }
    }

    #[test]
    fn release_versions_compare_part_by_part_not_as_text() {
        let v = |s| ConnectorVersion::parse(s).unwrap();
        assert!(v("1.5.4522.0") > v("1.5.999.0"));
        assert!(v("1.5.36.0") < v("1.5.132.0"));
        assert!(v("1.5.3925.1") > v("1.5.3925.0"));
        assert!(v("2.0.0.0") > v("1.5.65535.65535"));
    }
}
