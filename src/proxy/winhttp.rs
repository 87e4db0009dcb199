//! What the Windows registry says about proxies: the WinHTTP proxy (`netsh winhttp set proxy`
//! writes the binary value `WinHttpSettings`) and the connector's
//! `UseDefaultProxyForBackendRequests`. Off Windows both come from the config instead.

use super::sources::ProxyAddress;

/// Where `netsh winhttp` keeps its setting, under HKLM.
pub const SETTINGS_KEY: &str =
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections";
pub const SETTINGS_VALUE: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections\WinHttpSettings";

/// The connector's registry key, before and after the 2024 rename.
pub const CONNECTOR_KEYS: [&str; 2] = [
    r"SOFTWARE\Microsoft\Microsoft Entra private network connector",
    r"SOFTWARE\Microsoft\Microsoft AAD App Proxy Connector",
];

/// Decodes `WinHttpSettings`: a little-endian header (version, counter, flags), then the proxy
/// and the bypass list as length-prefixed ASCII strings. Flag 0x2 means a proxy is set.
/// `Some(None)` is "direct"; `None` is a value that cannot be read.
pub fn parse_settings(blob: &[u8]) -> Option<Option<ProxyAddress>> {
    let dword = |at: usize| {
        blob.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let flags = dword(8)?;
    let length = usize::try_from(dword(12)?).ok()?;
    let proxy = blob.get(16..16 + length)?;
    if flags & 0x2 == 0 || length == 0 {
        return Some(None);
    }
    let text = String::from_utf8_lossy(proxy);
    Some(ProxyAddress::parse(pick(&text)?))
}

/// `netsh winhttp set proxy` accepts `host:port` or per-scheme lists such as
/// `http=p1:80;https=p2:8443`; the connector's traffic is HTTPS.
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

/// The WinHTTP proxy from the registry: `None` off Windows or when nothing is set there.
#[cfg(windows)]
pub fn from_registry() -> Option<Option<ProxyAddress>> {
    use winreg::RegKey;
    use winreg::enums::HKEY_LOCAL_MACHINE;
    let key = RegKey::predef(HKEY_LOCAL_MACHINE)
        .open_subkey(SETTINGS_KEY)
        .ok()?;
    let value = key.get_raw_value("WinHttpSettings").ok()?;
    parse_settings(&value.bytes)
}

#[cfg(not(windows))]
pub fn from_registry() -> Option<Option<ProxyAddress>> {
    None
}

/// `UseDefaultProxyForBackendRequests` from the connector's key: `None` off Windows or unset.
#[cfg(windows)]
pub fn use_default_proxy_for_backend_requests() -> Option<bool> {
    use winreg::RegKey;
    use winreg::enums::HKEY_LOCAL_MACHINE;
    let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    CONNECTOR_KEYS.iter().find_map(|path| {
        let key = hklm.open_subkey(path).ok()?;
        let value: u32 = key.get_value("UseDefaultProxyForBackendRequests").ok()?;
        Some(value == 1)
    })
}

#[cfg(not(windows))]
pub fn use_default_proxy_for_backend_requests() -> Option<bool> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value as `netsh winhttp set proxy` writes it.
    fn blob(flags: u32, proxy: &str, bypass: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(0x28u32.to_le_bytes());
        bytes.extend(7u32.to_le_bytes());
        bytes.extend(flags.to_le_bytes());
        bytes.extend((proxy.len() as u32).to_le_bytes());
        bytes.extend(proxy.as_bytes());
        bytes.extend((bypass.len() as u32).to_le_bytes());
        bytes.extend(bypass.as_bytes());
        bytes
    }

    #[test]
    fn a_set_proxy_is_read() {
        let found = parse_settings(&blob(3, "proxy.corp.example:8080", "<local>"));
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
        ));
        assert_eq!(
            found.flatten().unwrap().to_string(),
            "http://p2.corp.example:8443"
        );
    }

    #[test]
    fn direct_access_is_direct() {
        assert_eq!(parse_settings(&blob(1, "", "")), Some(None));
    }

    #[test]
    fn a_truncated_value_is_unreadable() {
        assert_eq!(parse_settings(&[0x28, 0, 0, 0, 1]), None);
        assert_eq!(parse_settings(&blob(3, "proxy:8080", "")[..20]), None);
    }
}
