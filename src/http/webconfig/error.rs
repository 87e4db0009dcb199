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
    #[error("{name}: rate_limit: {source}")]
    RateLimit {
        name: String,
        source: RateLimitError,
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
    #[error("missing one of {inline} or {file}")]
    Missing {
        inline: &'static str,
        file: &'static str,
    },
    #[error("{inline} and {file} are both set: use one")]
    BothSet {
        inline: &'static str,
        file: &'static str,
    },
    #[error("{what} {}: {source}", .path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: ReadError,
    },
    #[error("{at}: {source}")]
    Pem {
        at: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0}: no certificate in it")]
    NoCertificate(String),
    #[error("{at}: {source}")]
    ClientCa { at: String, source: rustls::Error },
    #[error("the cipher suites and TLS versions do not go together: {0}")]
    Versions(rustls::Error),
    #[error(
        "client_ca or client_ca_file is set but client_auth_type does not ask for client certificates"
    )]
    UnusedClientCa,
    #[error("client_auth_type {0} needs client_ca_file or client_ca")]
    NoClientCa(String),
    #[error("{0}")]
    ClientVerifier(rustls::server::VerifierBuilderError),
    #[error(
        "client_auth_type {0} takes a client certificate without checking it against a CA, which proves nothing about the client: use RequireAndVerifyClientCert with client_ca_file"
    )]
    Unverified(String),
    #[error(
        "client_auth_type {0:?} is not known: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
    )]
    ClientAuthType(String),
    #[error(
        "client_allowed_sans is an empty list: no client could connect (remove it, or list the SANs)"
    )]
    NoSans,
    #[error(
        "client_allowed_sans needs client_auth_type RequireAndVerifyClientCert (a client without a verified certificate has no SAN to match); it is {0}"
    )]
    SansWithout(String),
    #[error("certificate and key: {0}")]
    CertificateAndKey(rustls::Error),
    #[error("cipher suite {0} is not offered here: only the ECDHE AEAD suites are (rustls)")]
    NotOffered(String),
    #[error("unknown cipher: {0}")]
    UnknownCipher(String),
    #[error("curve_preferences is an empty list: no key exchange would be left")]
    NoCurves,
    #[error("curve {0} is not offered here: X25519, CurveP256 and CurveP384 are (rustls)")]
    CurveNotOffered(String),
    #[error("unknown curve {0:?} (X25519, CurveP256, CurveP384)")]
    UnknownCurve(String),
    #[error("unknown TLS version {0:?} (TLS10, TLS11, TLS12, TLS13)")]
    UnknownVersion(String),
    #[error("min_version is above max_version")]
    VersionsReversed,
    #[error(
        "max_version {0}: only TLS 1.2 and 1.3 are spoken here (rustls), so no version would be left"
    )]
    NoVersionLeft(String),
}

/// What is wrong with `rate_limit`.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error(
        "interval {0:?}: not a duration (a number and a unit: 100ms, 1s, 1.5m; 0 turns the limit off)"
    )]
    Interval(String),
    #[error(
        "interval {0}: a bare number needs a unit (100ms, 1s); only 0 goes without, and turns the limit off"
    )]
    NoUnit(i64),
    #[error("interval {0:?}: a negative interval means nothing")]
    Negative(String),
    #[error("burst {0}: with an interval, burst must be 1 or more, or no request would ever pass")]
    Burst(i64),
}
