//! The connector's trust certificate (step 2): the client certificate it authenticates to the
//! service with, issued by `connectorregistrationca.msappproxy.net` and renewed automatically.
//! The connector names it in `TrustSettings.xml` under its `%ProgramData%` folder (thumbprint,
//! and `IsInUserStore`: false = the local machine's Personal store, true = Network Service's
//! Personal store), per Microsoft's "Problem installing the application proxy connector" page.
//! When it expires the connector stops ("Connector failed to download the configuration",
//! event 1000) until it is registered again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Verdict;
use crate::platform::certificates::{CertificateStores, Location};
use crate::platform::file::ReadError;

/// A certificate closer to its end than this warns (the alert pages later).
pub const WARN_BEFORE: Duration = Duration::from_secs(21 * 24 * 3600);

/// The most of `TrustSettings.xml` that is read (the file is a few hundred bytes).
const MAX_FILE_BYTES: u64 = 64 * 1024;

const REMEDY_EXPIRED: &str = "Register the connector again to renew its trust certificate: on the connector host run Import-Module MicrosoftEntraPrivateNetworkConnectorPSModule; Register-MicrosoftEntraPrivateNetworkConnector -EnvironmentName AzureCloud (AzureUSGovernment for US Government; connectors before 1.5.3829.0: Import-Module AppProxyPSModule; Register-AppProxyConnector), or reinstall the connector, and let Network Service and Local System reach the internet (through the proxy) so the next renewal succeeds.";

/// What `TrustSettings.xml` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustSettings {
    /// Upper-case hex, 40 digits (SHA-1).
    pub thumbprint: String,
    pub in_user_store: bool,
}

/// The certificate found in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    pub thumbprint: String,
    /// The issuer's common name (the whole name when it has none).
    pub issuer: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// Which store the certificate was read from (the `store` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    LocalMachine,
    NetworkService,
}

impl Store {
    pub fn label(self) -> &'static str {
        match self {
            Store::LocalMachine => "local_machine",
            Store::NetworkService => "network_service",
        }
    }

    /// Network Service's store opens as the current user's, so it is found only when the
    /// exporter runs as Network Service.
    fn location(self) -> Location {
        match self {
            Store::LocalMachine => Location::LocalMachine,
            Store::NetworkService => Location::CurrentUser,
        }
    }
}

/// Why `TrustSettings.xml` says nothing usable; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TrustSettingsError {
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: ReadError },
    #[error("{}: {problem}", .path.display())]
    Invalid {
        path: PathBuf,
        problem: TrustSettingsProblem,
    },
}

/// What is wrong inside `TrustSettings.xml`.
#[derive(Debug, thiserror::Error)]
pub enum TrustSettingsProblem {
    #[error("{0}")]
    Undecodable(&'static str),
    #[error("byte {position}: malformed XML: {source}")]
    Malformed {
        position: u64,
        source: quick_xml::Error,
    },
    #[error("no ConnectorTrustSettingsFile/CloudProxyTrust/Thumbprint element")]
    NoThumbprint,
    #[error("Thumbprint {0:?} is not 40 hexadecimal digits (a SHA-1 thumbprint)")]
    BadThumbprint(String),
    #[error("IsInUserStore {0:?} is neither true nor false")]
    BadIsInUserStore(String),
}

/// Bytes that are not a certificate.
#[derive(Debug, thiserror::Error)]
#[error("not an X.509 certificate: {0}")]
pub struct NotACertificate(String);

#[derive(Debug, Clone, Serialize)]
pub struct CertificateState {
    pub verdict: Verdict,
    /// Present when the certificate was found and read.
    pub certificate: Option<(Certificate, Store)>,
}

/// The places `TrustSettings.xml` is documented at, newest connector name first (Windows paths
/// are case-insensitive): "Microsoft Entra private network connector" is the 2024 rename; the
/// troubleshooting page names both older folders.
pub fn trust_settings_paths() -> Vec<PathBuf> {
    let base =
        PathBuf::from(std::env::var("ProgramData").unwrap_or_else(|_| r"C:\ProgramData".into()))
            .join("Microsoft");
    [
        "Microsoft Entra private network connector",
        "Microsoft AAD private network connector",
        "Microsoft AAD Application Proxy Connector",
    ]
    .iter()
    .map(|folder| base.join(folder).join("Config").join("TrustSettings.xml"))
    .collect()
}

/// Step 2's certificate check on this host. `connector_installed`: whether the connector's
/// service is installed here (`None` off Windows).
pub fn check_certificate(connector_installed: Option<bool>, now: SystemTime) -> CertificateState {
    let not_evaluated = |reason: &str| CertificateState {
        verdict: Verdict::not_evaluated(reason),
        certificate: None,
    };
    let stores = match CertificateStores::open() {
        Ok(stores) => stores,
        Err(why) => return not_evaluated(&why.to_string()),
    };
    let Some(path) = trust_settings_paths().into_iter().find(|p| p.is_file()) else {
        return if connector_installed == Some(true) {
            CertificateState {
                verdict: Verdict::fail(
                    "the connector is installed but has no TrustSettings.xml under %ProgramData%\\Microsoft: it is not registered",
                    REMEDY_EXPIRED,
                ),
                certificate: None,
            }
        } else {
            not_evaluated(
                "no connector on this host: no TrustSettings.xml under %ProgramData%\\Microsoft",
            )
        };
    };
    let settings = match read_trust_settings(&path) {
        Ok(settings) => settings,
        Err(error) => {
            return CertificateState {
                verdict: Verdict::fail(error.to_string(), REMEDY_EXPIRED),
                certificate: None,
            };
        }
    };
    let store = if settings.in_user_store {
        Store::NetworkService
    } else {
        Store::LocalMachine
    };
    match stores.find(&settings.thumbprint, store.location()) {
        Ok(Some(der)) => match describe(&der) {
            Ok(certificate) => judge(certificate, store, now),
            Err(error) => not_evaluated(&format!(
                "the trust certificate {} could not be read: {error}",
                settings.thumbprint
            )),
        },
        Ok(None) if store == Store::NetworkService => not_evaluated(&format!(
            "{} names certificate {} in Network Service's personal store, which only an exporter running as Network Service can open",
            path.display(),
            settings.thumbprint
        )),
        Ok(None) => CertificateState {
            verdict: Verdict::fail(
                format!(
                    "{} names trust certificate {}, which is not in the local machine's Personal store",
                    path.display(),
                    settings.thumbprint
                ),
                REMEDY_EXPIRED,
            ),
            certificate: None,
        },
        Err(error) => not_evaluated(&format!(
            "the {} certificate store could not be opened: {error}",
            store.label()
        )),
    }
}

/// The verdict on a certificate found in the store.
pub fn judge(certificate: Certificate, store: Store, now: SystemTime) -> CertificateState {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let left = certificate.not_after - now;
    let when = format_time(certificate.not_after);
    let verdict = if left <= 0 {
        Verdict::fail(
            format!(
                "the connector's trust certificate {} (issuer {}) expired on {when}: the connector cannot download its configuration",
                certificate.thumbprint, certificate.issuer
            ),
            REMEDY_EXPIRED,
        )
    } else if left < i64::try_from(WARN_BEFORE.as_secs()).unwrap_or(i64::MAX) {
        Verdict::Warning {
            evidence: format!(
                "the connector's trust certificate {} expires on {when}, in {} days, and has not been renewed yet",
                certificate.thumbprint,
                left / 86_400
            ),
        }
    } else {
        Verdict::Pass
    };
    CertificateState {
        verdict,
        certificate: Some((certificate, store)),
    }
}

fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Reads and parses `TrustSettings.xml`; errors name the file.
pub fn read_trust_settings(path: &Path) -> Result<TrustSettings, TrustSettingsError> {
    let invalid = |problem| TrustSettingsError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = crate::platform::file::read_bounded(path, MAX_FILE_BYTES).map_err(|source| {
        TrustSettingsError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let text = crate::text::decode(&bytes)
        .map_err(|message| invalid(TrustSettingsProblem::Undecodable(message)))?;
    parse_trust_settings(&text).map_err(invalid)
}

/// Parses the documented `ConnectorTrustSettingsFile/CloudProxyTrust` element.
pub fn parse_trust_settings(xml: &str) -> Result<TrustSettings, TrustSettingsProblem> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let (mut thumbprint, mut in_user_store) = (None, None);
    loop {
        let position = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                path.push(e.local_name().as_ref().to_string());
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t
                    .xml_content(quick_xml::XmlVersion::Implicit1_0)
                    .trim()
                    .to_string();
                match path.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    [
                        "ConnectorTrustSettingsFile",
                        "CloudProxyTrust",
                        "Thumbprint",
                    ] => thumbprint = Some(text),
                    [
                        "ConnectorTrustSettingsFile",
                        "CloudProxyTrust",
                        "IsInUserStore",
                    ] => in_user_store = Some(text),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(source) => return Err(TrustSettingsProblem::Malformed { position, source }),
        }
    }
    let thumbprint = thumbprint
        .ok_or(TrustSettingsProblem::NoThumbprint)?
        .to_ascii_uppercase();
    if thumbprint.len() != 40 || !thumbprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TrustSettingsProblem::BadThumbprint(thumbprint));
    }
    let in_user_store = match in_user_store
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(TrustSettingsProblem::BadIsInUserStore(other.to_string())),
    };
    Ok(TrustSettings {
        thumbprint,
        in_user_store,
    })
}

/// The thumbprint, issuer and end of validity of a DER certificate.
pub fn describe(der: &[u8]) -> Result<Certificate, NotACertificate> {
    use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|e| NotACertificate(e.to_string()))?;
    let issuer = parsed
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map_or_else(|| parsed.issuer().to_string(), str::to_string);
    let thumbprint = digest(&SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    Ok(Certificate {
        thumbprint,
        issuer,
        not_after: parsed.validity().not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example on Microsoft's "Problem installing the application proxy connector" page.
    const DOCUMENTED: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<ConnectorTrustSettingsFile xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <CloudProxyTrust>
    <Thumbprint>4905CC64B2D81BBED60962ECC5DCF63F643CCD55</Thumbprint>
    <IsInUserStore>false</IsInUserStore>
  </CloudProxyTrust>
</ConnectorTrustSettingsFile>"#;

    #[test]
    fn the_documented_trust_settings_file_names_a_machine_store_certificate() {
        let settings = parse_trust_settings(DOCUMENTED).unwrap();
        assert_eq!(
            settings.thumbprint,
            "4905CC64B2D81BBED60962ECC5DCF63F643CCD55"
        );
        assert!(!settings.in_user_store);
        let user = DOCUMENTED.replace(">false<", ">True<");
        assert!(parse_trust_settings(&user).unwrap().in_user_store);
    }

    #[test]
    fn a_trust_settings_file_without_a_valid_thumbprint_says_what_is_wrong() {
        let error = parse_trust_settings(&DOCUMENTED.replace("4905CC64", "XYZ"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not 40 hexadecimal digits"), "{error}");
        let error = parse_trust_settings("<ConnectorTrustSettingsFile/>")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no ConnectorTrustSettingsFile/CloudProxyTrust/Thumbprint"),
            "{error}"
        );
        let error = parse_trust_settings("<ConnectorTrustSettingsFile><CloudProxyTrust>")
            .unwrap_err()
            .to_string();
        assert!(error.contains("Thumbprint"), "{error}");
        let error = parse_trust_settings("<a><b></a>").unwrap_err().to_string();
        assert!(error.contains("malformed XML"), "{error}");
    }

    fn cert(not_after: i64) -> Certificate {
        Certificate {
            thumbprint: "AB".repeat(20),
            issuer: "connectorregistrationca.msappproxy.net".into(),
            not_after,
        }
    }

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn an_expired_trust_certificate_fails_step_2_with_the_renewal_remedy() {
        let state = judge(cert(1_000), Store::LocalMachine, at(1_001));
        let Verdict::Fail { evidence, remedy } = state.verdict else {
            panic!("{:?}", state.verdict)
        };
        assert!(
            evidence.contains("expired on 1970-01-01T00:16:40Z"),
            "{evidence}"
        );
        assert!(
            remedy.contains(
                "Register-MicrosoftEntraPrivateNetworkConnector -EnvironmentName AzureCloud"
            ),
            "{remedy}"
        );
    }

    #[test]
    fn a_certificate_close_to_its_end_warns_and_one_far_from_it_passes() {
        let day = 86_400;
        let state = judge(cert(20 * day), Store::LocalMachine, at(0));
        assert!(
            matches!(state.verdict, Verdict::Warning { ref evidence } if evidence.contains("in 20 days"))
        );
        let state = judge(cert(22 * day), Store::LocalMachine, at(0));
        assert_eq!(state.verdict, Verdict::Pass);
        assert_eq!(state.certificate.unwrap().0.not_after, 22 * day);
    }

    #[test]
    fn off_windows_the_certificate_is_not_evaluated_and_says_why() {
        if cfg!(windows) {
            return;
        }
        let state = check_certificate(None, SystemTime::now());
        assert_eq!(
            state.verdict,
            Verdict::not_evaluated(crate::platform::NOT_WINDOWS)
        );
    }
}
