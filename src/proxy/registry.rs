//! What the Windows registry says about proxies. WinINet's per-account "Internet Options"
//! (`DefaultConnectionSettings`, what .NET's system default proxy is for a service) and
//! WinHTTP's setting (`WinHttpSettings`, written by `netsh winhttp set proxy`) share one binary
//! layout, read by [`ConnectionSettings::parse`]. Also the connector's
//! `UseDefaultProxyForBackendRequests`. Read through [`crate::platform::registry`]; off
//! Windows none of it exists, and the config stands in.

use super::bypass::Bypass;
use crate::net::ProxyAddress;
use crate::platform::registry::{Hive, Registry};

/// Where WinHTTP and the machine-wide WinINet settings live, under HKLM.
pub const CONNECTIONS_KEY: &str =
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections";
pub const WINHTTP_VALUE: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections\WinHttpSettings";
/// The per-user key, under `HKU\{account SID}`.
const USER_CONNECTIONS_KEY: &str =
    r"Software\Microsoft\Windows\CurrentVersion\Internet Settings\Connections";
/// The "Make proxy settings per-machine (rather than per-user)" policy: `ProxySettingsPerUser`
/// 0 here makes every account use the HKLM settings (the proxy page of Microsoft's connector
/// documentation asks for it with `UseDefaultProxyForBackendRequests`).
const PER_MACHINE_POLICY_KEY: &str =
    r"SOFTWARE\Policies\Microsoft\Windows\CurrentVersion\Internet Settings";

/// The connector's registry key, before and after the 2024 rename.
pub const CONNECTOR_KEYS: [&str; 2] = [
    r"SOFTWARE\Microsoft\Microsoft Entra private network connector",
    r"SOFTWARE\Microsoft\Microsoft AAD App Proxy Connector",
];

/// `INTERNET_PER_CONN_FLAGS` bits of the layout.
const PROXY_TYPE_PROXY: u32 = 0x2;
const PROXY_TYPE_AUTO_PROXY_URL: u32 = 0x4;
const PROXY_TYPE_AUTO_DETECT: u32 = 0x8;

/// One value in the shared layout: little-endian DWORDs version, counter and flags, then the
/// proxy, the bypass list and (WinINet) the automatic configuration script URL, each as a DWORD
/// length and that many ASCII bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionSettings {
    pub flags: u32,
    pub proxy: String,
    pub bypass: String,
    pub script: String,
}

impl ConnectionSettings {
    /// `None` when the value is too short for its own lengths.
    pub fn parse(blob: &[u8]) -> Option<ConnectionSettings> {
        let dword = |at: usize| {
            blob.get(at..at.checked_add(4)?)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let text = |at: usize| -> Option<(String, usize)> {
            let length = usize::try_from(dword(at)?).ok()?;
            let start = at + 4;
            let bytes = blob.get(start..start.checked_add(length)?)?;
            Some((String::from_utf8_lossy(bytes).into_owned(), start + length))
        };
        let flags = dword(8)?;
        let (proxy, at) = text(12)?;
        // WinHTTP values may end after the proxy when no bypass list was given.
        let (bypass, at) = text(at).unwrap_or_default();
        let (script, _) = if at == 0 {
            (String::new(), 0)
        } else {
            text(at).unwrap_or_default()
        };
        Some(ConnectionSettings {
            flags,
            proxy,
            bypass,
            script,
        })
    }

    /// The manual proxy, when one is set and turned on.
    pub fn proxy(&self) -> Option<ProxyAddress> {
        if self.flags & PROXY_TYPE_PROXY == 0 {
            return None;
        }
        ProxyAddress::parse(pick(&self.proxy)?)
    }

    pub fn bypass(&self) -> Bypass {
        Bypass::wininet(&self.bypass)
    }

    /// How the proxy is chosen automatically, when it is: WinINet tries automatic detection
    /// (WPAD) first, then the configuration script, and the manual proxy only when both find
    /// nothing, so either one makes the proxy a run-time decision.
    pub fn automatic(&self) -> Option<String> {
        if self.flags & PROXY_TYPE_AUTO_DETECT != 0 {
            return Some("automatic detection (WPAD)".into());
        }
        if self.flags & PROXY_TYPE_AUTO_PROXY_URL != 0 {
            let shown: String = self.script.chars().take(200).collect();
            return Some(format!("the automatic configuration script {shown}"));
        }
        None
    }
}

/// Reads `WinHttpSettings`: `Some(None)` is "direct"; `None` is a value that cannot be read.
pub fn parse_settings(blob: &[u8]) -> Option<Option<ProxyAddress>> {
    ConnectionSettings::parse(blob).map(|s| s.proxy())
}

/// `netsh winhttp set proxy` and the Internet Options accept `host:port` or per-scheme lists
/// such as `http=p1:80;https=p2:8443`; the connector's traffic is HTTPS.
fn pick(list: &str) -> Option<&str> {
    let entries: Vec<&str> = list
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let scheme = |name: &str| {
        entries
            .iter()
            .find_map(|e| e.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    };
    scheme("https")
        .or_else(|| scheme("http"))
        .or_else(|| entries.iter().copied().find(|e| !e.contains('=')))
}

/// A service account's WinINet settings as the registry holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WinInet {
    Set {
        settings: ConnectionSettings,
        /// The registry value they came from, for the evidence.
        value: String,
    },
    /// Nothing saved for the account: WinINet's defaults apply, which detect automatically.
    Unset { value: String },
}

/// The WinINet settings that apply to the account with SID `sid`: the machine's when the
/// per-machine policy is set, the account's own otherwise. `None` off Windows.
pub fn wininet(sid: &str) -> Option<WinInet> {
    let registry = Registry::open().ok()?;
    let per_machine = matches!(
        registry.dword(
            Hive::LocalMachine,
            PER_MACHINE_POLICY_KEY,
            "ProxySettingsPerUser"
        ),
        Ok(Some(0))
    );
    let (hive, path) = if per_machine {
        (Hive::LocalMachine, CONNECTIONS_KEY.to_string())
    } else {
        (Hive::Users, format!(r"{sid}\{USER_CONNECTIONS_KEY}"))
    };
    let value = format!(r"{}\{path}\DefaultConnectionSettings", hive.name());
    // A value that cannot be read is as good as none: WinINet then uses its defaults too.
    Some(
        match registry.binary(hive, &path, "DefaultConnectionSettings") {
            Ok(Some(raw)) => match ConnectionSettings::parse(&raw) {
                Some(settings) => WinInet::Set { settings, value },
                None => {
                    tracing::warn!(value = %value, "a WinINet proxy setting cannot be read; taking WinINet's defaults");
                    WinInet::Unset { value }
                }
            },
            Ok(None) | Err(_) => WinInet::Unset { value },
        },
    )
}

/// The WinHTTP proxy from the registry: `None` off Windows or when nothing is set there.
pub fn winhttp() -> Option<ConnectionSettings> {
    winhttp_setting().ok().flatten()
}

/// The WinHTTP setting from the registry: `Ok(None)` when nothing is set there (WinHTTP goes
/// direct, `netsh winhttp show proxy` says "Direct access"), `Err` with why when it cannot be
/// known (off Windows, a value that cannot be read or parsed).
pub fn winhttp_setting() -> Result<Option<ConnectionSettings>, String> {
    let registry = Registry::open().map_err(|e| e.to_string())?;
    match registry.binary(Hive::LocalMachine, CONNECTIONS_KEY, "WinHttpSettings") {
        Ok(None) => Ok(None),
        Ok(Some(value)) => ConnectionSettings::parse(&value)
            .map(Some)
            .ok_or_else(|| format!("{WINHTTP_VALUE} is shorter than its own lengths")),
        Err(error) => Err(format!("{WINHTTP_VALUE}: {error}")),
    }
}

/// `UseDefaultProxyForBackendRequests` from the connector's key: `None` off Windows or unset.
pub fn use_default_proxy_for_backend_requests() -> Option<bool> {
    let registry = Registry::open().ok()?;
    CONNECTOR_KEYS.iter().find_map(|path| {
        let value = registry
            .dword(
                Hive::LocalMachine,
                path,
                "UseDefaultProxyForBackendRequests",
            )
            .ok()??;
        Some(value == 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value as `netsh winhttp set proxy` or the Internet Options dialog writes it.
    pub(crate) fn blob(flags: u32, proxy: &str, bypass: &str, script: Option<&str>) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(0x46u32.to_le_bytes());
        bytes.extend(7u32.to_le_bytes());
        bytes.extend(flags.to_le_bytes());
        for text in [Some(proxy), Some(bypass), script].into_iter().flatten() {
            bytes.extend((text.len() as u32).to_le_bytes());
            bytes.extend(text.as_bytes());
        }
        bytes
    }

    #[test]
    fn a_set_proxy_is_read() {
        let found = parse_settings(&blob(3, "proxy.corp.example:8080", "<local>", None));
        assert_eq!(
            found.flatten().unwrap().to_string(),
            "http://proxy.corp.example:8080"
        );
    }

    #[test]
    fn per_scheme_lists_use_the_https_entry() {
        let found = parse_settings(&blob(
            3,
            "http=p1.corp.example:80;https=p2.corp.example:8443",
            "",
            None,
        ));
        assert_eq!(
            found.flatten().unwrap().to_string(),
            "http://p2.corp.example:8443"
        );
    }

    #[test]
    fn direct_access_is_direct() {
        assert_eq!(parse_settings(&blob(1, "", "", None)), Some(None));
    }

    #[test]
    fn a_truncated_value_is_unreadable() {
        assert_eq!(parse_settings(&[0x28, 0, 0, 0, 1]), None);
        assert_eq!(parse_settings(&blob(3, "proxy:8080", "", None)[..20]), None);
    }

    #[test]
    fn automatic_detection_and_a_script_make_the_proxy_a_run_time_choice() {
        let wpad = ConnectionSettings::parse(&blob(0x9, "", "", Some(""))).unwrap();
        assert_eq!(
            wpad.automatic().as_deref(),
            Some("automatic detection (WPAD)")
        );
        let pac = ConnectionSettings::parse(&blob(
            0x5,
            "",
            "",
            Some("http://pac.corp.example/proxy.pac"),
        ))
        .unwrap();
        assert!(
            pac.automatic()
                .unwrap()
                .contains("http://pac.corp.example/proxy.pac")
        );
        let manual =
            ConnectionSettings::parse(&blob(0x3, "p:3128", "*.corp.example;<local>", Some("")))
                .unwrap();
        assert_eq!(manual.automatic(), None);
        assert_eq!(manual.proxy().unwrap().to_string(), "http://p:3128");
        assert_eq!(manual.bypass, "*.corp.example;<local>");
    }
}
