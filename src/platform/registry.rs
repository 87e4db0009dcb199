//! The one registry reader: values under `HKEY_LOCAL_MACHINE` (TLS and .NET settings, the
//! WinHTTP proxy, the connector's key, this machine's domain and name) and `HKEY_USERS` (a
//! service account's Internet Options), read through the registry API on Windows. A missing
//! key or value is `Ok(None)`: Windows then uses its default, and the caller says which. Off
//! Windows there is no registry ([`Registry::open`] says why).

use super::{Unavailable, Windows};

/// The root a path is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hive {
    LocalMachine,
    /// Each account's settings, under its SID.
    Users,
}

impl Hive {
    /// As `reg.exe` and the evidence name it.
    pub fn name(self) -> &'static str {
        match self {
            Hive::LocalMachine => "HKLM",
            Hive::Users => "HKU",
        }
    }
}

/// A key or value that exists but cannot be read (access denied, another type).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}\\{path}: {source}", .hive.name())]
    Key {
        hive: Hive,
        path: String,
        source: std::io::Error,
    },
    #[error("{}\\{path}\\{name}: {source}", .hive.name())]
    Value {
        hive: Hive,
        path: String,
        name: String,
        source: std::io::Error,
    },
}

/// This host's registry.
#[derive(Debug, Clone, Copy)]
pub struct Registry {
    windows: Windows,
}

impl Registry {
    /// The registry, or why this host has none.
    pub fn open() -> Result<Registry, Unavailable> {
        Windows::here().map(|windows| Registry { windows })
    }

    /// A REG_DWORD value.
    pub fn dword(&self, hive: Hive, path: &str, name: &str) -> Result<Option<u32>, RegistryError> {
        self.value(hive, path, name)
    }

    /// A REG_SZ value.
    pub fn string(
        &self,
        hive: Hive,
        path: &str,
        name: &str,
    ) -> Result<Option<String>, RegistryError> {
        self.value(hive, path, name)
    }

    /// A value's bytes as stored, whatever its type (REG_BINARY settings blobs).
    #[cfg(windows)]
    pub fn binary(
        &self,
        hive: Hive,
        path: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let Some(key) = self.key(hive, path)? else {
            return Ok(None);
        };
        match key.get_raw_value(name) {
            Ok(value) => Ok(Some(value.bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(value_error(hive, path, name, source)),
        }
    }

    #[cfg(not(windows))]
    pub fn binary(
        &self,
        _hive: Hive,
        _path: &str,
        _name: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        self.windows.unreachable()
    }

    #[cfg(windows)]
    fn value<T: winreg::types::FromRegValue>(
        &self,
        hive: Hive,
        path: &str,
        name: &str,
    ) -> Result<Option<T>, RegistryError> {
        let Some(key) = self.key(hive, path)? else {
            return Ok(None);
        };
        match key.get_value::<T, _>(name) {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(value_error(hive, path, name, source)),
        }
    }

    #[cfg(not(windows))]
    fn value<T>(&self, _hive: Hive, _path: &str, _name: &str) -> Result<Option<T>, RegistryError> {
        self.windows.unreachable()
    }

    #[cfg(windows)]
    fn key(&self, hive: Hive, path: &str) -> Result<Option<winreg::RegKey>, RegistryError> {
        use winreg::RegKey;
        use winreg::enums::{HKEY_LOCAL_MACHINE, HKEY_USERS, KEY_READ};
        let _ = self.windows;
        let root = match hive {
            Hive::LocalMachine => RegKey::predef(HKEY_LOCAL_MACHINE),
            Hive::Users => RegKey::predef(HKEY_USERS),
        };
        match root.open_subkey_with_flags(path, KEY_READ) {
            Ok(key) => Ok(Some(key)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RegistryError::Key {
                hive,
                path: path.to_string(),
                source,
            }),
        }
    }
}

#[cfg(windows)]
fn value_error(hive: Hive, path: &str, name: &str, source: std::io::Error) -> RegistryError {
    RegistryError::Value {
        hive,
        path: path.to_string(),
        name: name.to_string(),
        source,
    }
}
