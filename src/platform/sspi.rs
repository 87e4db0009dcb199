//! Binding to a domain controller's LDAP as this machine's account: SASL GSSAPI, which ldap3
//! does through SSPI's Negotiate on Windows, with the process' own credentials (the machine
//! account when the exporter runs as Network Service or Local System). Elsewhere there are
//! no such credentials, and the bind says so.

/// Why the bind did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SspiError {
    #[error("Negotiate bind as this machine: {0}")]
    Bind(ldap3::LdapError),
    #[error("binding as the machine account needs Windows")]
    NotWindows,
}

/// Binds `ldap`, connected to `host`, as this machine.
#[cfg(windows)]
pub async fn bind_as_machine(ldap: &mut ldap3::Ldap, host: &str) -> Result<(), SspiError> {
    ldap.sasl_gssapi_bind(host)
        .await
        .and_then(|r| r.success())
        .map(drop)
        .map_err(SspiError::Bind)
}

#[cfg(not(windows))]
pub async fn bind_as_machine(_ldap: &mut ldap3::Ldap, _host: &str) -> Result<(), SspiError> {
    Err(SspiError::NotWindows)
}
