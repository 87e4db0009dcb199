//! Whether this host's SChannel lets the connector speak TLS 1.0 or 1.1 to a backend, for step 7
//! (`internal_url`). The exporter's own TLS (rustls) speaks only TLS 1.2 and 1.3, so it cannot
//! load a backend that offers only TLS 1.0/1.1; the connector (.NET Framework 4.7.1 or later,
//! which uses SChannel's system defaults) reaches that backend wherever SChannel still
//! negotiates those versions as a client. [`check_legacy_tls`] reads SChannel's client
//! settings, and [`LegacyTls::for_step_7`] says what step 7 is for such a backend: failed where
//! SChannel has both versions off, and otherwise not evaluated (never passed), with why.
//!
//! The settings, from Microsoft's "Transport Layer Security (TLS) registry settings", section
//! "TLS, DTLS, and SSL protocol version settings"
//! (learn.microsoft.com/windows-server/security/tls/tls-registry-settings): DWORD values
//! `Enabled` and `DisabledByDefault` under
//! `HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.x\Client`.
//! - "Enabled": `Enabled` non-zero and `DisabledByDefault` 0; "Schannel SSP may negotiate this
//!   protocol version with a supporting peer."
//! - "Disabled by default": both non-zero; "unless the SSPI caller explicitly requests this
//!   protocol version using the deprecated SCHANNEL_CRED structure, Schannel SSP will not
//!   negotiate this protocol version." The connector asks for the system defaults (Microsoft's
//!   TLS 1.2 script for connector hosts sets `SystemDefaultTlsVersions`=1), so this is off for it.
//! - "Disabled": `Enabled` 0; "Schannel SSP will not negotiate this protocol version regardless
//!   of the settings the SSPI caller may specify."
//!
//! A value that is not set leaves the Windows default, which Microsoft gives per version in
//! "Protocols in TLS/SSL (Schannel SSP)"
//! (learn.microsoft.com/windows/win32/secauthn/protocols-in-tls-ssl--schannel-ssp-): the TLS 1.0
//! client is Enabled on every release from Windows Vista/Server 2008 on, the TLS 1.1 client from
//! Windows 8/Server 2012 on (Disabled on Windows 7/Server 2008 R2). "TLS 1.0 and TLS 1.1 soon to
//! be disabled in Windows" (Windows IT Pro Blog, 2023-08-01) turns both off by default "starting
//! with Windows 11 Insider Preview builds in September 2023 and future Windows OS releases [...]
//! it will not impact any in-market OS versions": Windows Server 2016, 2019 and 2022 keep them
//! on. For later builds (Windows 11 23H2 and 24H2, Windows Server 2025) Microsoft states no
//! default per build, so the default there is unknown, and said to be.

use serde::Serialize;

use crate::platform::registry::{Hive, Registry};
use crate::walk::Outcome;

const PROTOCOLS: &str = r"SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols";
const CURRENT_VERSION: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";

/// The last build whose defaults Microsoft's table and the 2023 announcement settle: Windows 11
/// 22H2 (22621), in market before September 2023, like Windows Server 2022 (20348).
const LAST_DOCUMENTED_BUILD: u32 = 22621;
/// Windows 8 / Windows Server 2012: the TLS 1.1 client is on by default from here.
const TLS11_ON_FROM_BUILD: u32 = 9200;
/// Windows Vista / Windows Server 2008: the first row of Microsoft's table.
const FIRST_DOCUMENTED_BUILD: u32 = 6000;

/// The two versions, as SChannel's keys name them.
const VERSIONS: [&str; 2] = ["TLS 1.0", "TLS 1.1"];

/// What SChannel on this host does with TLS 1.0/1.1 as a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LegacyTls {
    /// At least one of them is negotiated: the connector may reach a legacy-only backend.
    Allowed { evidence: String },
    /// Both are off for clients: the connector cannot reach a legacy-only backend either.
    Off { evidence: String },
    /// Not known here (not Windows, a value that cannot be read, a build whose default
    /// Microsoft does not document), and why.
    Unknown { reason: String },
}

/// One version's client state, with what says so.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    On(String),
    Off(String),
    Unknown(String),
}

/// Reads SChannel's TLS 1.0 and 1.1 client settings and the Windows build on this host.
pub fn check_legacy_tls() -> LegacyTls {
    match Registry::open() {
        Ok(registry) => {
            let build = registry
                .string(Hive::LocalMachine, CURRENT_VERSION, "CurrentBuildNumber")
                .ok()
                .flatten()
                .and_then(|b| b.trim().parse().ok());
            judge(build, |key, value| {
                registry.dword(Hive::LocalMachine, key, value)
            })
        }
        Err(why) => LegacyTls::Unknown {
            reason: format!("this host's SChannel settings cannot be read ({why})"),
        },
    }
}

/// The verdict from the Windows build (`None`: unknown) and a way to read a DWORD under HKLM
/// (`Ok(None)`: not set).
pub fn judge<E: std::fmt::Display>(
    build: Option<u32>,
    read: impl Fn(&str, &str) -> Result<Option<u32>, E>,
) -> LegacyTls {
    let states: Vec<State> = VERSIONS
        .iter()
        .map(|version| {
            let key = format!(r"{PROTOCOLS}\{version}\Client");
            client_state(version, &key, build, &read)
        })
        .collect();
    let said = |pick: fn(&State) -> Option<&String>| -> String {
        states
            .iter()
            .filter_map(pick)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    };
    if states.iter().any(|s| matches!(s, State::On(_))) {
        LegacyTls::Allowed {
            evidence: said(|s| match s {
                State::On(why) => Some(why),
                _ => None,
            }),
        }
    } else if states.iter().all(|s| matches!(s, State::Off(_))) {
        LegacyTls::Off {
            evidence: said(|s| match s {
                State::Off(why) => Some(why),
                _ => None,
            }),
        }
    } else {
        LegacyTls::Unknown {
            reason: said(|s| match s {
                State::Unknown(why) => Some(why),
                _ => None,
            }),
        }
    }
}

/// One version's client state: a value that switches it off decides; both values set to on
/// decide; otherwise the Windows default for `build` does.
fn client_state<E: std::fmt::Display>(
    version: &str,
    key: &str,
    build: Option<u32>,
    read: &impl Fn(&str, &str) -> Result<Option<u32>, E>,
) -> State {
    let enabled = read(key, "Enabled");
    let disabled_by_default = read(key, "DisabledByDefault");
    match (&enabled, &disabled_by_default) {
        (Ok(Some(0)), _) => return State::Off(format!("HKLM\\{key}\\Enabled is 0")),
        (_, Ok(Some(n))) if *n != 0 => {
            return State::Off(format!("HKLM\\{key}\\DisabledByDefault is {n}"));
        }
        (Err(e), _) | (_, Err(e)) => return State::Unknown(e.to_string()),
        (Ok(Some(n)), Ok(Some(0))) => {
            return State::On(format!(
                "HKLM\\{key}\\Enabled is {n} and DisabledByDefault 0"
            ));
        }
        _ => {}
    }
    match (build, build.and_then(|b| default_on(version, b))) {
        (Some(build), Some(true)) => State::On(format!(
            "the {version} client is on by default on Windows build {build} (no SChannel value switches it off)"
        )),
        (Some(build), Some(false)) => State::Off(format!(
            "the {version} client is off by default on Windows build {build}"
        )),
        (Some(build), None) => State::Unknown(format!(
            "Microsoft documents no {version} client default for Windows build {build} (from the Windows releases after September 2023 it is off by default), and no SChannel value sets it"
        )),
        (None, _) => State::Unknown(format!(
            "the Windows build is unknown, so the {version} client default is too, and no SChannel value sets it"
        )),
    }
}

/// The client default of `version` on `build` as Microsoft documents it; `None` where it does
/// not (see the module's sources).
fn default_on(version: &str, build: u32) -> Option<bool> {
    if !(FIRST_DOCUMENTED_BUILD..=LAST_DOCUMENTED_BUILD).contains(&build) {
        return None;
    }
    match version {
        "TLS 1.1" => Some(build >= TLS11_ON_FROM_BUILD),
        _ => Some(true),
    }
}

impl LegacyTls {
    /// What step 7 is for a backend that offers only TLS 1.0/1.1 from this host: failed where
    /// SChannel has both off (the connector cannot reach it either), not evaluated otherwise.
    /// The backend's own evidence goes first (`crate::backend::Answers`).
    pub fn for_step_7(&self) -> Outcome {
        match self {
            LegacyTls::Off { evidence } => Outcome::fail_with_remedy(
                format!(
                    "this connector host's SChannel has TLS 1.0 and 1.1 off for clients ({evidence}), so the connector cannot reach the backend either"
                ),
                "Enable TLS 1.2 (or 1.3) on the backend. Re-enabling TLS 1.0/1.1 under SCHANNEL\\Protocols\\TLS 1.x\\Client on the connector hosts is Microsoft's last resort, until the backend is updated.",
            ),
            LegacyTls::Allowed { evidence } => Outcome::not_evaluated(format!(
                "the exporter's TLS cannot speak it, but this host's SChannel does ({evidence}), so the connector may load the page: step 7 is not evaluated (appproxy_backend_tls_version_info says TLS 1.0/1.1)"
            )),
            LegacyTls::Unknown { reason } => Outcome::not_evaluated(format!(
                "the exporter's TLS cannot speak it, and whether the connector's SChannel does is unknown here ({reason}): step 7 is not evaluated"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const TLS10: &str =
        r"SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.0\Client";
    const TLS11: &str =
        r"SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.1\Client";
    /// Windows Server 2022.
    const SERVER_2022: Option<u32> = Some(20348);
    /// Windows Server 2025 / Windows 11 24H2.
    const SERVER_2025: Option<u32> = Some(26100);

    fn registry(
        values: &[(&str, &str, u32)],
    ) -> impl Fn(&str, &str) -> Result<Option<u32>, std::convert::Infallible> {
        let map: HashMap<(String, String), u32> = values
            .iter()
            .map(|(k, v, d)| ((k.to_string(), v.to_string()), *d))
            .collect();
        move |key, value| Ok(map.get(&(key.to_string(), value.to_string())).copied())
    }

    /// "Protocols in TLS/SSL (Schannel SSP)": the TLS 1.0 and 1.1 clients are "Enabled" on
    /// Windows 10 1607/Server 2016 and the releases after it that were in market in 2023
    /// ("it will not impact any in-market OS versions"): an untouched Server 2022 allows them.
    #[test]
    fn an_untouched_windows_server_2022_allows_tls_10_and_11_by_default() {
        let LegacyTls::Allowed { evidence } = judge(SERVER_2022, registry(&[])) else {
            panic!()
        };
        assert!(
            evidence.contains("TLS 1.0 client is on by default on Windows build 20348"),
            "{evidence}"
        );
    }

    /// "Disabled: Schannel SSP will not negotiate this protocol version regardless of the
    /// settings the SSPI caller may specify" (`Enabled`=0), and "Disabled by default: unless
    /// the SSPI caller explicitly requests this protocol version using the deprecated
    /// SCHANNEL_CRED structure, Schannel SSP will not negotiate" (`DisabledByDefault`=1): both
    /// switched off, the connector cannot reach a legacy-only backend, and step 7 fails.
    #[test]
    fn tls_10_and_11_switched_off_fail_step_7_naming_the_values() {
        let state = judge(
            SERVER_2022,
            registry(&[(TLS10, "Enabled", 0), (TLS11, "DisabledByDefault", 1)]),
        );
        let LegacyTls::Off { evidence } = &state else {
            panic!("{state:?}")
        };
        assert!(
            evidence.contains(r"TLS 1.0\Client\Enabled is 0"),
            "{evidence}"
        );
        assert!(
            evidence.contains(r"TLS 1.1\Client\DisabledByDefault is 1"),
            "{evidence}"
        );
        let Outcome::Fail(failed) = state.for_step_7() else {
            panic!()
        };
        assert!(failed.remedy.as_deref().unwrap().contains("TLS 1.2"));
    }

    /// One version still on is enough for the connector to reach a backend that speaks it; the
    /// exporter cannot tell which of the two the backend offers, so step 7 is not evaluated.
    #[test]
    fn one_legacy_version_left_on_leaves_step_7_not_evaluated() {
        let state = judge(SERVER_2022, registry(&[(TLS10, "Enabled", 0)]));
        let LegacyTls::Allowed { evidence } = &state else {
            panic!("{state:?}")
        };
        assert!(
            evidence.contains("TLS 1.1 client is on by default"),
            "{evidence}"
        );
        assert!(matches!(state.for_step_7(), Outcome::NotEvaluated(_)));
    }

    /// "In order to override a system default and set a supported (D)TLS or SSL protocol
    /// version to the Enabled state, create a DWORD registry value named "Enabled" with a
    /// non-zero value, and a DWORD registry value named "DisabledByDefault" with a value of
    /// zero": set so, it is on whatever the build's default.
    #[test]
    fn values_set_to_enabled_allow_it_on_a_build_whose_default_is_unknown() {
        let state = judge(
            SERVER_2025,
            registry(&[(TLS11, "Enabled", 1), (TLS11, "DisabledByDefault", 0)]),
        );
        assert!(matches!(state, LegacyTls::Allowed { .. }), "{state:?}");
    }

    /// Windows Server 2025 came after Microsoft's announcement that future releases turn both
    /// off by default, but no Microsoft page states its default: unknown, and said to be, so
    /// step 7 is not evaluated rather than failed on a guess.
    #[test]
    fn unset_values_on_a_build_without_a_documented_default_are_unknown() {
        let state = judge(SERVER_2025, registry(&[]));
        let LegacyTls::Unknown { reason } = &state else {
            panic!("{state:?}")
        };
        assert!(
            reason.contains("no TLS 1.0 client default for Windows build 26100"),
            "{reason}"
        );
        let Outcome::NotEvaluated(why) = state.for_step_7() else {
            panic!()
        };
        assert!(why.reason.contains("unknown here"), "{}", why.reason);
        // And with the build unknown too.
        assert!(matches!(
            judge(None, registry(&[])),
            LegacyTls::Unknown { .. }
        ));
    }

    /// Windows 7 / Server 2008 R2: TLS 1.1 client "Disabled" by default, TLS 1.0 "Enabled".
    #[test]
    fn windows_7_defaults_follow_microsofts_table() {
        let state = judge(Some(7601), registry(&[(TLS10, "Enabled", 0)]));
        let LegacyTls::Off { evidence } = &state else {
            panic!("{state:?}")
        };
        assert!(
            evidence.contains("TLS 1.1 client is off by default"),
            "{evidence}"
        );
    }

    #[test]
    fn a_value_that_cannot_be_read_is_unknown_never_off() {
        use crate::platform::registry::RegistryError;
        let state = judge(SERVER_2022, |key: &str, value: &str| {
            if value == "Enabled" {
                return Err(RegistryError::Value {
                    hive: Hive::LocalMachine,
                    path: key.to_string(),
                    name: value.to_string(),
                    source: std::io::ErrorKind::PermissionDenied.into(),
                });
            }
            Ok(None)
        });
        assert!(matches!(state, LegacyTls::Unknown { .. }), "{state:?}");
    }

    /// Off Windows nothing is read: unknown, with the platform's reason.
    #[cfg(not(windows))]
    #[test]
    fn off_windows_the_setting_is_unknown_and_says_why() {
        let LegacyTls::Unknown { reason } = check_legacy_tls() else {
            panic!()
        };
        assert!(reason.contains("not Windows"), "{reason}");
    }
}
