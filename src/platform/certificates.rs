//! The Windows certificate store: the connector's trust certificate is looked up in a
//! Personal (`My`) store by its SHA-1 thumbprint. Elsewhere there is no store
//! ([`CertificateStores::open`] says why).

use super::{Unavailable, Windows};

/// Which Personal store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    LocalMachine,
    /// The store of the account the exporter runs as: Network Service's only when it runs as
    /// Network Service.
    CurrentUser,
}

/// The certificate stores of this host.
#[derive(Debug, Clone, Copy)]
pub struct CertificateStores {
    windows: Windows,
}

impl CertificateStores {
    /// The stores, or why this host has none.
    pub fn open() -> Result<CertificateStores, Unavailable> {
        Windows::here().map(|windows| CertificateStores { windows })
    }

    /// The DER of the certificate with this thumbprint (hex, any letter case) in the
    /// location's Personal store, if it is there.
    #[cfg(windows)]
    pub fn find(&self, thumbprint: &str, location: Location) -> std::io::Result<Option<Vec<u8>>> {
        let _ = self.windows;
        let opened = match location {
            Location::LocalMachine => schannel::cert_store::CertStore::open_local_machine("My")?,
            Location::CurrentUser => schannel::cert_store::CertStore::open_current_user("My")?,
        };
        for cert in opened.certs() {
            let Ok(sha1) = cert.fingerprint(schannel::cert_context::HashAlgorithm::sha1()) else {
                continue;
            };
            let hex: String = sha1.iter().map(|b| format!("{b:02X}")).collect();
            if hex.eq_ignore_ascii_case(thumbprint) {
                return Ok(Some(cert.to_der().to_vec()));
            }
        }
        Ok(None)
    }

    #[cfg(not(windows))]
    pub fn find(&self, _thumbprint: &str, _location: Location) -> std::io::Result<Option<Vec<u8>>> {
        self.windows.unreachable()
    }
}
