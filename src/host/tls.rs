//! TLS prerequisites (step 4): the connector talks to the service over TLS 1.2 only (since
//! 1.5.1526.0), and Microsoft's "How to configure connectors" page lists the registry values a
//! connector host must have: SCHANNEL's TLS 1.2 `Client` and `Server` keys with
//! `DisabledByDefault`=0 and `Enabled`=1, and .NET's `SchUseStrongCrypto`=1 (its script also
//! sets `SystemDefaultTlsVersions`=1).
//!
//! A value that is absent means the Windows default, and on Windows Server 2016 and later (the
//! connector's minimum) TLS 1.2 is on by default; .NET 4.6 and later use strong cryptography by
//! default for apps targeting them (the connector needs .NET 4.7.1). So only a value that
//! switches TLS 1.2 off fails: a fresh, healthy host has none of these values at all. Only the
//! settings the connector's outbound connections depend on fail step 4 (the TLS 1.2 client
//! side, 64-bit .NET); the others are reported.

use serde::Serialize;

use super::Verdict;
use crate::platform::registry::{Hive, Registry};

const CLIENT: &str =
    r"SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client";
const SERVER: &str =
    r"SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Server";
const DOTNET: &str = r"SOFTWARE\Microsoft\.NETFramework\v4.0.30319";
const DOTNET_32: &str = r"SOFTWARE\WOW6432Node\Microsoft\.NETFramework\v4.0.30319";

/// One prerequisite: registry values and what each must not be.
#[derive(Debug)]
pub struct Prerequisite {
    /// The `prerequisite` label.
    pub name: &'static str,
    /// (key, value, the value that breaks it).
    pub values: &'static [(&'static str, &'static str, u32)],
    /// Whether the connector's own connections break without it (fails step 4).
    pub required: bool,
}

pub const PREREQUISITES: [Prerequisite; 5] = [
    Prerequisite {
        name: "schannel_tls12_client",
        values: &[(CLIENT, "Enabled", 0), (CLIENT, "DisabledByDefault", 1)],
        required: true,
    },
    Prerequisite {
        name: "schannel_tls12_server",
        values: &[(SERVER, "Enabled", 0), (SERVER, "DisabledByDefault", 1)],
        required: false,
    },
    Prerequisite {
        name: "dotnet_strong_crypto",
        values: &[(DOTNET, "SchUseStrongCrypto", 0)],
        required: true,
    },
    Prerequisite {
        name: "dotnet_strong_crypto_32bit",
        values: &[(DOTNET_32, "SchUseStrongCrypto", 0)],
        required: false,
    },
    Prerequisite {
        name: "dotnet_system_default_tls_versions",
        values: &[(DOTNET, "SystemDefaultTlsVersions", 0)],
        required: false,
    },
];

#[derive(Debug, Clone, Serialize)]
pub struct TlsState {
    pub verdict: Verdict,
    /// Each prerequisite by name: met (explicitly or by the Windows default) or not.
    pub met: Vec<(&'static str, bool)>,
}

/// Step 4's TLS check on this host, from the registry.
pub fn check_tls() -> TlsState {
    match Registry::open() {
        Ok(registry) => judge(|key, value| registry.dword(Hive::LocalMachine, key, value)),
        Err(why) => TlsState {
            verdict: Verdict::not_evaluated(why.to_string()),
            met: Vec::new(),
        },
    }
}

/// The verdict from a way to read a DWORD under HKLM (`Ok(None)`: not set).
pub fn judge<E: std::fmt::Display>(
    read: impl Fn(&str, &str) -> Result<Option<u32>, E>,
) -> TlsState {
    let mut met = Vec::new();
    let mut broken = Vec::new();
    let mut unreadable = Vec::new();
    for p in &PREREQUISITES {
        let mut ok = true;
        for (key, value, bad) in p.values {
            match read(key, value) {
                Ok(Some(v)) if v == *bad => {
                    ok = false;
                    if p.required {
                        broken.push(format!("HKLM\\{key}\\{value} is {v}"));
                    }
                }
                Ok(_) => {}
                Err(error) => unreadable.push(error.to_string()),
            }
        }
        met.push((p.name, ok));
    }
    let verdict = if !broken.is_empty() {
        Verdict::fail(
            format!(
                "TLS 1.2 is switched off for the connector: {}",
                broken.join("; ")
            ),
            "Set SCHANNEL\\Protocols\\TLS 1.2\\Client DisabledByDefault=0 and Enabled=1 and .NETFramework\\v4.0.30319 SchUseStrongCrypto=1 under HKLM (or delete the values that switch them off), then restart the server.",
        )
    } else if !unreadable.is_empty() {
        Verdict::not_evaluated(format!(
            "registry values unreadable: {}",
            unreadable.join("; ")
        ))
    } else {
        Verdict::Pass
    };
    TlsState { verdict, met }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn registry(
        values: &[(&str, &str, u32)],
    ) -> impl Fn(&str, &str) -> Result<Option<u32>, std::convert::Infallible> {
        let map: HashMap<(String, String), u32> = values
            .iter()
            .map(|(k, v, d)| ((k.to_string(), v.to_string()), *d))
            .collect();
        move |key, value| Ok(map.get(&(key.to_string(), value.to_string())).copied())
    }

    #[test]
    fn a_host_with_none_of_the_values_uses_the_windows_defaults_and_passes() {
        let state = judge(registry(&[]));
        assert_eq!(state.verdict, Verdict::Pass);
        assert!(state.met.iter().all(|(_, ok)| *ok));
        assert_eq!(state.met.len(), PREREQUISITES.len());
    }

    #[test]
    fn the_values_microsoft_lists_pass() {
        let client = CLIENT;
        let state = judge(registry(&[
            (client, "Enabled", 1),
            (client, "DisabledByDefault", 0),
            (DOTNET, "SchUseStrongCrypto", 1),
        ]));
        assert_eq!(state.verdict, Verdict::Pass);
    }

    #[test]
    fn tls_12_switched_off_for_clients_fails_step_4_naming_the_value() {
        let client = CLIENT;
        let state = judge(registry(&[(client, "Enabled", 0)]));
        let Verdict::Fail { evidence, remedy } = state.verdict else {
            panic!()
        };
        assert!(
            evidence.contains(r"TLS 1.2\Client\Enabled is 0"),
            "{evidence}"
        );
        assert!(remedy.contains("SchUseStrongCrypto=1"), "{remedy}");
        assert!(state.met.contains(&("schannel_tls12_client", false)));
    }

    #[test]
    fn strong_crypto_switched_off_fails_and_the_32_bit_view_only_reports() {
        let state = judge(registry(&[(DOTNET, "SchUseStrongCrypto", 0)]));
        assert!(matches!(state.verdict, Verdict::Fail { .. }));
        let state = judge(registry(&[(DOTNET_32, "SchUseStrongCrypto", 0)]));
        assert_eq!(state.verdict, Verdict::Pass);
        assert!(state.met.contains(&("dotnet_strong_crypto_32bit", false)));
    }

    #[test]
    fn a_value_that_cannot_be_read_leaves_the_check_not_evaluated_naming_it() {
        use crate::platform::registry::{Hive, RegistryError};
        let state = judge(|key: &str, value: &str| {
            if value == "SchUseStrongCrypto" {
                return Err(RegistryError::Value {
                    hive: Hive::LocalMachine,
                    path: key.to_string(),
                    name: value.to_string(),
                    source: std::io::ErrorKind::PermissionDenied.into(),
                });
            }
            Ok(None)
        });
        let Verdict::NotEvaluated { reason } = state.verdict else {
            panic!("{:?}", state.verdict)
        };
        assert!(
            reason.starts_with(r"registry values unreadable: HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319\SchUseStrongCrypto: "),
            "{reason}"
        );
    }

    #[test]
    fn the_server_side_switched_off_is_reported_but_does_not_fail_the_connector() {
        let server = SERVER;
        let state = judge(registry(&[(server, "DisabledByDefault", 1)]));
        assert_eq!(state.verdict, Verdict::Pass);
        assert!(state.met.contains(&("schannel_tls12_server", false)));
    }
}
