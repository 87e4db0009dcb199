//! What can be wrong with a web config file, in the words exporter-toolkit's users know: each
//! message names the file and the key, and never a password or a key's contents.

use std::path::PathBuf;

use crate::platform::file::ReadError;

/// Why a web config is not used: at start-up the exporter stops (exit 2); while running, the
/// settings in force stay.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{name}: cannot read the web config: {source}")]
    Read { name: String, source: ReadError },
    #[error("{name}{at}: {message}")]
    Yaml {
        name: String,
        /// `:line:column`, when known.
        at: String,
        message: String,
    },
    #[error(
        "{name}: basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\"`)"
    )]
    NotBcrypt { name: String, user: String },
    #[error("{name}: tls_server_config: {source}")]
    Tls {
        name: String,
        source: TlsConfigError,
    },
    #[error("{name}: http_server_config.headers: {source}")]
    Header { name: String, source: HeaderError },
    #[error(
        "the web config file is empty now; an empty file does not turn TLS or basic auth off while running (restart to do that)"
    )]
    EmptiedWhileRunning,
    #[error(
        "the web config no longer has basic_auth_users; basic auth cannot be turned off while running (restart to do that)"
    )]
    AuthRemovedWhileRunning,
    #[error(
        "the web config no longer has tls_server_config; TLS cannot be turned off while running (restart to do that)"
    )]
    TlsRemovedWhileRunning,
    #[error(
        "the web config has tls_server_config now; TLS cannot be turned on while running (restart to do that)"
    )]
    TlsAddedWhileRunning,
}

/// A response header that cannot be configured as given.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("HTTP header {name:?} can not be configured (the ones that can: {allowed})")]
    NotAllowed { name: String, allowed: String },
    #[error("{name}: expected one of {expected:?}, got {value:?}")]
    NotOneOf {
        name: String,
        expected: &'static [&'static str],
        value: String,
    },
    #[error("{name}: the value holds characters a header cannot carry (a line break, say)")]
    BadValue { name: String },
    #[error("{name:?} is not a header name")]
    BadName { name: String },
}

/// What is wrong with `tls_server_config`.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cert_file and key_file are required")]
    CertAndKeyRequired,
    #[error("{what} {}: {source}", .path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: ReadError,
    },
    #[error("{what} {}: {source}", .path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("cert_file {}: no certificate in it", .0.display())]
    NoCertificate(PathBuf),
    #[error("client_ca_file {}: {source}", .path.display())]
    ClientCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the cipher suites and TLS versions do not go together: {0}")]
    Versions(rustls::Error),
    #[error("client_ca_file is set but client_auth_type does not ask for client certificates")]
    UnusedClientCa,
    #[error("client_auth_type {0} needs client_ca_file")]
    NoClientCa(String),
    #[error("{0}")]
    ClientVerifier(rustls::server::VerifierBuilderError),
    #[error(
        "client_auth_type {0:?} is not supported: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
    )]
    ClientAuthType(String),
    #[error("certificate and key: {0}")]
    CertificateAndKey(rustls::Error),
    #[error("cipher suite {0} is not offered here: only the ECDHE AEAD suites are (rustls)")]
    NotOffered(String),
    #[error("unknown cipher: {0}")]
    UnknownCipher(String),
    #[error("unknown TLS version {0:?} (TLS10, TLS11, TLS12, TLS13)")]
    UnknownVersion(String),
    #[error("min_version is above max_version")]
    VersionsReversed,
}
