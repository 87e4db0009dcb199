//! The domain as this host sees it for Kerberos delegation: the domain controllers found in
//! DNS (SRV records), whether they accept connections, and what the directory says about this
//! computer's delegation and the apps' SPNs, read over LDAP. The verdicts are in the parent.

use std::time::Duration;

use super::descriptor::ldap_filter_value;
use super::{Bind, Directory, Group, KerberosApp, SpnAccount, SpnOwners};
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
    let text = |e: &SearchEntry, name: &str| {
        values(e, name)
            .into_iter()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .collect::<Vec<_>>()
    };
    let groups = match me.dn.is_empty() {
        true => None,
        false => token_groups(&mut ldap, &me.dn, timeout).await,
    };
    let mut directory = Directory {
        allowed_to_delegate_to: text(&me, "msDS-AllowedToDelegateTo"),
        user_account_control: text(&me, "userAccountControl")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        sid: values(&me, "objectSid")
            .into_iter()
            .next()
            .unwrap_or_default(),
        groups: None,
        spn_owners: Vec::new(),
    };
    if let Some(groups) = groups {
        directory.groups = Some(name_groups(&mut ldap, &base, groups, timeout).await);
    }
    for app in apps {
        if directory
            .spn_owners
            .iter()
            .any(|o| o.spn.eq_ignore_ascii_case(&app.spn))
        {
            continue;
        }
        // Every account holding the SPN in this domain: more than one is a duplicate SPN.
        let filter = format!("(servicePrincipalName={})", ldap_escape(&app.spn));
        let owners = search(
            &mut ldap,
            base.clone(),
            Scope::Subtree,
            filter,
            vec!["sAMAccountName", "msDS-AllowedToActOnBehalfOfOtherIdentity"],
        )
        .await?;
        let accounts = owners
            .iter()
            .map(|o| SpnAccount {
                name: text(o, "sAMAccountName")
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| o.dn.clone()),
                descriptors: values(o, "msDS-AllowedToActOnBehalfOfOtherIdentity"),
            })
            .collect();
        directory.spn_owners.push(SpnOwners {
            spn: app.spn.clone(),
            accounts,
        });
    }
    let _ = ldap.unbind().await;
    Ok(directory)
}

/// The computer's group SIDs from its `tokenGroups`, which the domain controller computes
/// transitively (nested groups, the primary group, BUILTIN groups such as the Windows
/// Authorization Access Group) and returns only to a base search of the object. `None` when
/// it cannot be read (the bound account may not, or the directory does not compute it).
async fn token_groups(ldap: &mut ldap3::Ldap, dn: &str, timeout: Duration) -> Option<Vec<Vec<u8>>> {
    use ldap3::{Scope, SearchEntry};
    let mut ldap = ldap.clone();
    ldap.with_timeout(timeout);
    let (entries, _) = ldap
        .search(dn, Scope::Base, "(objectClass=*)", vec!["tokenGroups"])
        .await
        .and_then(|r| r.success())
        .map_err(|error| tracing::info!(%error, "tokenGroups of the connector computer not read"))
        .ok()?;
    let entry = SearchEntry::construct(entries.into_iter().next()?);
    let groups = values(&entry, "tokenGroups");
    // Every computer is at least in its primary group (Domain Computers): none means unread.
    (!groups.is_empty()).then_some(groups)
}

/// Each group SID with the group's `sAMAccountName` where the domain has it (BUILTIN groups
/// live in `CN=Builtin` of the domain), for the evidence; a SID not found keeps no name.
async fn name_groups(
    ldap: &mut ldap3::Ldap,
    base: &str,
    groups: Vec<Vec<u8>>,
    timeout: Duration,
) -> Vec<Group> {
    use ldap3::{Scope, SearchEntry};
    let filter = format!(
        "(|{})",
        groups
            .iter()
            .map(|g| format!("(objectSid={})", ldap_filter_value(g)))
            .collect::<String>()
    );
    let mut ldap = ldap.clone();
    ldap.with_timeout(timeout);
    let found: Vec<SearchEntry> = ldap
        .search(
            base,
            Scope::Subtree,
            &filter,
            vec!["sAMAccountName", "objectSid"],
        )
        .await
        .and_then(|r| r.success())
        .map(|(entries, _)| entries.into_iter().map(SearchEntry::construct).collect())
        .unwrap_or_default();
    groups
        .into_iter()
        .map(|sid| {
            let name = found
                .iter()
                .find(|e| values(e, "objectSid").contains(&sid))
                .and_then(|e| values(e, "sAMAccountName").into_iter().next())
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            Group { sid, name }
        })
        .collect()
}

/// An attribute's values as bytes, whichever way the LDAP client kept them: as text when they
/// happen to be valid UTF-8 (a binary SID often is), else as bytes.
fn values(e: &ldap3::SearchEntry, name: &str) -> Vec<Vec<u8>> {
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
}
