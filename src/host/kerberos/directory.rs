//! The domain as this host sees it for Kerberos delegation: the domain controllers found in
//! DNS (SRV records), whether they accept connections, and what the directory says about this
//! computer's delegation and the apps' SPNs, read over LDAP. The verdicts are in the parent.

use std::time::Duration;

use super::{Bind, Directory, KerberosApp};
use crate::platform::sspi::{self, SspiError};

/// Why the directory was not read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{url}: {source}")]
    Connect {
        url: String,
        source: ldap3::LdapError,
    },
    #[error("bind: {0}")]
    Bind(ldap3::LdapError),
    #[error(transparent)]
    MachineBind(#[from] SspiError),
    #[error("search {filter}: {source}")]
    Search {
        filter: String,
        source: ldap3::LdapError,
    },
    #[error("the directory's root names no defaultNamingContext")]
    NoNamingContext,
    #[error("no computer account {account} under {base}")]
    NoComputerAccount { account: String, base: String },
}

/// Why the domain's SRV records are unknown.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("no DNS configuration: {0}")]
    NoConfiguration(hickory_resolver::ResolveError),
    #[error("{name}: {source}")]
    Lookup {
        name: String,
        source: hickory_resolver::ResolveError,
    },
}

/// The SRV targets of `name`, by priority then weight.
pub(super) async fn srv(name: &str) -> Result<Vec<(String, u16)>, DnsError> {
    let resolver = hickory_resolver::TokioResolver::builder_tokio()
        .map_err(DnsError::NoConfiguration)?
        .build();
    let answer = resolver
        .srv_lookup(name)
        .await
        .map_err(|source| DnsError::Lookup {
            name: name.to_string(),
            source,
        })?;
    let mut records: Vec<_> = answer
        .iter()
        .map(|r| {
            (
                r.priority(),
                std::cmp::Reverse(r.weight()),
                r.target().to_utf8().trim_end_matches('.').to_string(),
                r.port(),
            )
        })
        .collect();
    records.sort();
    Ok(records
        .into_iter()
        .map(|(_, _, host, port)| (host, port))
        .collect())
}

/// The first target that accepts a TCP connection.
pub(super) async fn first_open(
    targets: &[(String, u16)],
    timeout: Duration,
) -> Option<(String, u16)> {
    for (host, port) in targets {
        let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
        if let Ok(Ok(_)) = tokio::time::timeout(timeout, connect).await {
            return Some((host.clone(), *port));
        }
    }
    None
}

/// Reads this computer's delegation settings and, for SPNs it may not delegate to, the
/// accounts holding them.
pub async fn read_directory(
    host: &str,
    port: u16,
    account: &str,
    apps: &[KerberosApp],
    timeout: Duration,
    bind: &Bind,
) -> Result<Directory, DirectoryError> {
    use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
    let settings = LdapConnSettings::new().set_conn_timeout(timeout);
    let url = format!("ldap://{host}:{port}");
    let (connection, mut ldap) =
        LdapConnAsync::with_settings(settings, &url)
            .await
            .map_err(|source| DirectoryError::Connect {
                url: url.clone(),
                source,
            })?;
    ldap3::drive!(connection);
    ldap.with_timeout(timeout);
    match bind {
        Bind::Simple { dn, password } => {
            ldap.simple_bind(dn, password.expose())
                .await
                .and_then(|r| r.success())
                .map_err(DirectoryError::Bind)?;
        }
        Bind::MachineAccount => sspi::bind_as_machine(&mut ldap, host).await?,
    }
    let search =
        |ldap: &mut ldap3::Ldap, base: String, scope, filter: String, attrs: Vec<&'static str>| {
            let mut ldap = ldap.clone();
            async move {
                ldap.with_timeout(timeout);
                let (entries, _) = ldap
                    .search(&base, scope, &filter, attrs)
                    .await
                    .and_then(|r| r.success())
                    .map_err(|source| DirectoryError::Search {
                        filter: filter.clone(),
                        source,
                    })?;
                Ok::<_, DirectoryError>(
                    entries
                        .into_iter()
                        .map(SearchEntry::construct)
                        .collect::<Vec<_>>(),
                )
            }
        };
    let root = search(
        &mut ldap,
        String::new(),
        Scope::Base,
        "(objectClass=*)".into(),
        vec!["defaultNamingContext"],
    )
    .await?;
    let base = root
        .first()
        .and_then(|e| e.attrs.get("defaultNamingContext"))
        .and_then(|v| v.first())
        .cloned()
        .ok_or(DirectoryError::NoNamingContext)?;
    let filter = format!(
        "(&(objectClass=computer)(sAMAccountName={}))",
        ldap_escape(account)
    );
    let me = search(
        &mut ldap,
        base.clone(),
        Scope::Subtree,
        filter,
        vec![
            "msDS-AllowedToDelegateTo",
            "userAccountControl",
            "objectSid",
        ],
    )
    .await?;
    let me = me
        .into_iter()
        .next()
        .ok_or_else(|| DirectoryError::NoComputerAccount {
            account: account.to_string(),
            base: base.clone(),
        })?;
    let values = |e: &SearchEntry, name: &str| -> Vec<Vec<u8>> {
        let text = e
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().map(|s| s.as_bytes().to_vec()));
        let binary = e
            .bin_attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().cloned());
        text.chain(binary).collect()
    };
    let text = |e: &SearchEntry, name: &str| {
        values(e, name)
            .into_iter()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .collect::<Vec<_>>()
    };
    let mut directory = Directory {
        allowed_to_delegate_to: text(&me, "msDS-AllowedToDelegateTo"),
        user_account_control: text(&me, "userAccountControl")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        spn_owners: Vec::new(),
    };
    let sid = values(&me, "objectSid")
        .into_iter()
        .next()
        .unwrap_or_default();
    for app in apps {
        if directory
            .allowed_to_delegate_to
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&app.spn))
        {
            continue;
        }
        let filter = format!("(servicePrincipalName={})", ldap_escape(&app.spn));
        let owners = search(
            &mut ldap,
            base.clone(),
            Scope::Subtree,
            filter,
            vec!["msDS-AllowedToActOnBehalfOfOtherIdentity"],
        )
        .await?;
        let owner = owners.first().map(|o| {
            values(o, "msDS-AllowedToActOnBehalfOfOtherIdentity")
                .iter()
                .any(|sd| allows_sid(sd, &sid))
        });
        directory.spn_owners.push((app.spn.clone(), owner));
    }
    let _ = ldap.unbind().await;
    Ok(directory)
}

/// Whether a self-relative security descriptor (MS-DTYP 2.4.6) has an access-allowed ACE
/// (type 0, 2.4.4.2) for `sid` in its DACL: how resource-based delegation lists the accounts
/// allowed to delegate to this one.
pub fn allows_sid(descriptor: &[u8], sid: &[u8]) -> bool {
    let u16_at = |at: usize| {
        descriptor
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |at: usize| {
        descriptor
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(dacl) = u32_at(16).filter(|d| *d != 0) else {
        return false;
    };
    let Some(count) = u16_at(dacl + 4) else {
        return false;
    };
    let mut ace = dacl + 8;
    for _ in 0..count {
        let (Some(kind), Some(size)) = (descriptor.get(ace), u16_at(ace + 2)) else {
            return false;
        };
        if *kind == 0
            && size >= 8
            && descriptor.get(ace + 8..ace + size) == Some(sid)
            && !sid.is_empty()
        {
            return true;
        }
        if size == 0 {
            return false;
        }
        ace += size;
    }
    false
}
