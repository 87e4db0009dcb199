//! How a backend's certificate chain is verified during the handshake (step 7), as the
//! connector's Windows does: on Windows with the platform verifier (the machine's trust store,
//! missing intermediates fetched). Elsewhere no store is read here: webpki checks the chain
//! against the roots the caller already read (the platform's, honouring `SSL_CERT_FILE`), the
//! nearest equivalent, so a backend is still judged.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;

/// The Windows verifier could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the Windows certificate verifier: {0}")]
pub struct TrustError(rustls::Error);

/// A client configuration that verifies backend chains; `roots` is used off Windows.
#[cfg(windows)]
pub fn backend_config(_roots: &Arc<WebPkiServerVerifier>) -> Result<ClientConfig, TrustError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    Ok(ClientConfig::builder()
        .with_platform_verifier()
        .map_err(TrustError)?
        .with_no_client_auth())
}

#[cfg(not(windows))]
pub fn backend_config(roots: &Arc<WebPkiServerVerifier>) -> Result<ClientConfig, TrustError> {
    Ok(ClientConfig::builder()
        .with_webpki_verifier(Arc::clone(roots))
        .with_no_client_auth())
}
