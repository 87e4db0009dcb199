//! Everything the exporter reads from the machine it runs on, behind one wall: one file per
//! kind of read, as windows_exporter keeps one folder per collector. Files ([`file`], the one
//! bounded read with a deadline), the registry ([`registry`], the one registry reader), the
//! services through the Service Control Manager ([`services`]), the certificate store
//! ([`certificates`]), the event log ([`event_log`]), the machine account's LDAP bind through
//! SSPI ([`sspi`]), executables' file versions ([`file_version`]), a process's own figures
//! (this one's and the connector service's: [`process`]), the host's CPU and memory
//! ([`system`]), its TCP connections ([`tcp`]), the backend certificate verifier ([`trust`]),
//! and the deadline every batch of these reads runs under ([`deadline`]).
//!
//! Every `cfg(windows)` of the library is in this folder. Each Windows read has a stand-in
//! elsewhere that reads nothing and says why ([`Unavailable`]), so a check built on it is "not
//! evaluated" with that reason, never passed. The checks that judge what was read live in
//! `host` and `proxy`, free of `cfg`. This folder depends on nothing else in the crate.

pub mod certificates;
pub mod deadline;
pub mod event_log;
pub mod file;
pub mod file_version;
pub mod process;
pub mod registry;
pub mod services;
pub mod sspi;
pub mod system;
pub mod tcp;
pub mod trust;

/// Why a Windows-only check is not evaluated on this platform.
pub const NOT_WINDOWS: &str = "this host is not Windows: the connector runs on Windows Server";

/// Why a kind of read is not possible on this host: what a stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("{NOT_WINDOWS}")]
    NotWindows,
}

/// This host, when it is Windows: every Windows reader holds one, so none can be made
/// elsewhere. Off Windows the type has no value, and a stand-in's methods, which must exist
/// for the code that calls them to compile, can never run.
#[derive(Debug, Clone, Copy)]
pub struct Windows(#[cfg(windows)] (), #[cfg(not(windows))] Never);

#[cfg(not(windows))]
#[derive(Debug, Clone, Copy)]
enum Never {}

impl Windows {
    /// This host, or why it is not Windows.
    #[cfg(windows)]
    pub fn here() -> Result<Windows, Unavailable> {
        Ok(Windows(()))
    }

    #[cfg(not(windows))]
    pub fn here() -> Result<Windows, Unavailable> {
        Err(Unavailable::NotWindows)
    }

    /// What a stand-in's method body is: there is no `Windows` to call it with.
    #[cfg(not(windows))]
    fn unreachable(self) -> ! {
        match self.0 {}
    }
}

/// What the stand-ins say; on Windows the readers are exercised by scripts/wine-smoke.
#[cfg(all(test, not(windows)))]
mod tests {
    use super::*;

    /// Off Windows every Windows reader refuses to be opened, with the reason the checks show;
    /// none pretends to have read nothing wrong.
    #[test]
    fn off_windows_every_windows_reader_says_why_it_read_nothing() {
        let not_windows = Unavailable::NotWindows;
        assert_eq!(not_windows.to_string(), NOT_WINDOWS);
        assert_eq!(registry::Registry::open().err(), Some(not_windows));
        assert_eq!(
            certificates::CertificateStores::open().err(),
            Some(not_windows)
        );
        assert_eq!(event_log::EventLog::open().err(), Some(not_windows));
        assert_eq!(file_version::FileVersions::here().err(), Some(not_windows));
        assert_eq!(process::ProcessFigures::here().err(), Some(not_windows));
        assert_eq!(system::SystemFigures::here().err(), Some(not_windows));
        assert_eq!(tcp::TcpTable::here().err(), Some(not_windows));
        assert!(matches!(
            services::running_process_id(&["WAPCSvc"]),
            Err(services::ServicesError::Unavailable(
                Unavailable::NotWindows
            ))
        ));
        assert!(matches!(
            services::query(&["WAPCSvc"]),
            Err(services::ServicesError::Unavailable(
                Unavailable::NotWindows
            ))
        ));
        let log = event_log::install_log(
            "appproxy_exporter",
            tracing::level_filters::LevelFilter::INFO,
        );
        assert!(matches!(log, Err(event_log::LogError::Unavailable(_))));
    }
}
