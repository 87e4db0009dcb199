//! Kerberos delegation readiness for apps whose single sign-on is Kerberos (Graph's
//! `singleSignOnSettings`): the connector obtains a ticket for the user from the domain's KDC
//! (Kerberos constrained delegation), so the page still answers (401 Negotiate passes step 7)
//! while sign-in fails. Shown with step 7. Per Microsoft's "Kerberos Constrained Delegation for
//! single sign-on" and "How to configure connectors" pages, this host needs:
//! - the domain's KDC and LDAP reachable: SRV records `_kerberos._tcp.<domain>` and
//!   `_ldap._tcp.dc._msdcs.<domain>`, TCP 88 and 389;
//! - the app's SPN in its computer object's `msDS-AllowedToDelegateTo` with "Use any
//!   authentication protocol" (`userAccountControl` `TRUSTED_TO_AUTH_FOR_DELEGATION`), or,
//!   across domains, the SPN's account allowing this computer through resource-based
//!   delegation (`msDS-AllowedToActOnBehalfOfOtherIdentity`);
//! - on Windows Server 2019 and later (build 17763+), WinHTTP's HTTP/2 off:
//!   `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp`
//!   `EnableDefaultHTTP2`=0.
//!
//! The directory is read over LDAP bound as this machine's account (SSPI Negotiate, which is
//! what the Network Service account authenticates as on the network).

use std::time::Duration;

use serde::Serialize;

use super::Verdict;
use crate::platform::registry::{Hive, Registry, RegistryError};
use crate::platform::sspi::{self, SspiError};
use crate::secret::Secret;

/// `userAccountControl` bit: "Use any authentication protocol" (protocol transition).
pub const TRUSTED_TO_AUTH_FOR_DELEGATION: u32 = 0x0100_0000;

/// Windows Server 2019's build; from it on HTTP/2 must be off in WinHTTP for KCD.
pub const HTTP2_FROM_BUILD: u32 = 17763;

const WINHTTP: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp";

/// An app that signs users in with Kerberos, and the SPN its backend has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KerberosApp {
    pub connector_group: String,
    pub app: String,
    pub spn: String,
}

/// How the exporter binds to LDAP.
pub enum Bind {
    /// Negotiate with this process' credentials: the machine account when it runs as Network
    /// Service or Local System (Windows only).
    MachineAccount,
    /// A simple bind (a directory that allows it; the lab's).
    Simple { dn: String, password: Secret },
}

/// The host-level checks (the `check` label), in order.
pub const HOST_CHECKS: [&str; 6] = [
    "domain_joined",
    "dc_in_dns",
    "kdc_tcp_88",
    "ldap_tcp_389",
    "directory_read",
    "winhttp_http2_disabled",
];

#[derive(Debug, Clone, Serialize)]
pub struct AppDelegation {
    pub app: KerberosApp,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct KerberosState {
    pub verdict: Verdict,
    /// Each host-level check that ran, passed or not.
    pub checks: Vec<(&'static str, bool)>,
    pub apps: Vec<AppDelegation>,
}

/// This host as the domain knows it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The DNS domain this machine is joined to.
    pub domain: Option<String>,
    /// The computer account's `sAMAccountName` (`CONN-01$`).
    pub account: String,
    /// Whether WinHTTP's HTTP/2 is off as KCD needs on this build (`None`: not needed).
    pub http2: Option<Http2>,
}

/// WinHTTP's HTTP/2 on a build where KCD needs it off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http2 {
    Off,
    /// On, or unknown: the evidence says which.
    NotOff(String),
}

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

/// The step 7 readiness of every Kerberos app on this host.
pub async fn check_kerberos(apps: Vec<KerberosApp>, timeout: Duration) -> KerberosState {
    if apps.is_empty() {
        return not_evaluated(
            "no app of this host's connector groups uses Kerberos single sign-on",
            apps,
        );
    }
    let registry = match Registry::open() {
        Ok(registry) => registry,
        Err(why) => return not_evaluated(&why.to_string(), apps),
    };
    let identity = this_host(&registry);
    probe(&identity, apps, timeout, &Bind::MachineAccount).await
}

fn not_evaluated(reason: &str, apps: Vec<KerberosApp>) -> KerberosState {
    KerberosState {
        verdict: Verdict::not_evaluated(reason),
        checks: Vec::new(),
        apps: apps
            .into_iter()
            .map(|app| AppDelegation {
                app,
                verdict: Verdict::not_evaluated(reason),
            })
            .collect(),
    }
}

/// This machine's domain, account and HTTP/2 setting, from the registry.
pub fn this_host(registry: &Registry) -> Identity {
    let read = |path, name| {
        registry
            .string(Hive::LocalMachine, path, name)
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
    };
    let domain = read(
        r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters",
        "Domain",
    );
    // The computer account is the NetBIOS computer name with a `$`.
    let name = read(
        r"SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName",
        "ComputerName",
    )
    .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
    let netbios = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let build = read(
        r"SOFTWARE\Microsoft\Windows NT\CurrentVersion",
        "CurrentBuildNumber",
    )
    .and_then(|b| b.parse().ok());
    Identity {
        domain,
        account: format!("{netbios}$"),
        http2: judge_http2(
            build,
            registry.dword(Hive::LocalMachine, WINHTTP, "EnableDefaultHTTP2"),
        ),
    }
}

/// Whether HTTP/2 is off as KCD needs: only on build 17763 (Windows Server 2019) and later,
/// where it is on unless `EnableDefaultHTTP2` is 0.
pub fn judge_http2(build: Option<u32>, value: Result<Option<u32>, RegistryError>) -> Option<Http2> {
    let build = build?;
    if build < HTTP2_FROM_BUILD {
        return None;
    }
    Some(match value {
        Ok(Some(0)) => Http2::Off,
        Ok(Some(v)) => Http2::NotOff(format!(
            "HKLM\\{WINHTTP}\\EnableDefaultHTTP2 is {v} on build {build}"
        )),
        Ok(None) => Http2::NotOff(format!(
            "HKLM\\{WINHTTP}\\EnableDefaultHTTP2 is not set, so HTTP/2 is on (build {build}, Windows Server 2019 or later)"
        )),
        Err(e) => Http2::NotOff(e.to_string()),
    })
}

const REMEDY_DC: &str = "Let this connector host resolve and reach a domain controller of its domain (DNS SRV records, TCP 88 Kerberos and 389 LDAP); a firewall or IDS between them breaks delegation.";
const REMEDY_HTTP2: &str = "Set HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\WinHttp EnableDefaultHTTP2 (DWORD) to 0 and restart the server: on Windows Server 2019 and later KCD needs HTTP/2 off in WinHTTP.";
const REMEDY_SPN: &str = "In Active Directory Users and Computers, open this connector's computer account > Delegation: select \"Trust this computer for delegation to specified services only\" and \"Use any authentication protocol\", and add the app's SPN (or, across domains, allow the connector on the SPN's account: Set-ADComputer/Set-ADUser -PrincipalsAllowedToDelegateToAccount).";

/// The checks for `identity`, with directory reads bound as `bind`: what [`check_kerberos`]
/// runs on Windows, and the lab runs against a real directory elsewhere.
pub async fn probe(
    identity: &Identity,
    apps: Vec<KerberosApp>,
    timeout: Duration,
    bind: &Bind,
) -> KerberosState {
    let mut checks = Vec::new();
    let host_failure = |checks: Vec<(&'static str, bool)>,
                        evidence: String,
                        remedy: &str,
                        apps: Vec<KerberosApp>| {
        let verdict = Verdict::fail(evidence, remedy);
        KerberosState {
            apps: apps
                .into_iter()
                .map(|app| AppDelegation {
                    app,
                    verdict: verdict.clone(),
                })
                .collect(),
            verdict,
            checks,
        }
    };
    let http2 = identity.http2.clone();
    if let Some(http2) = &http2 {
        checks.push(("winhttp_http2_disabled", *http2 == Http2::Off));
    }
    let Some(domain) = identity.domain.clone() else {
        checks.push(("domain_joined", false));
        return host_failure(
            checks,
            "this connector host is not joined to a domain, so it cannot delegate Kerberos credentials".into(),
            "Join the connector host to the apps' Active Directory domain (or a trusting one).",
            apps,
        );
    };
    checks.push(("domain_joined", true));
    let (kdcs, dcs) = match (
        srv(&format!("_kerberos._tcp.{domain}")).await,
        srv(&format!("_ldap._tcp.dc._msdcs.{domain}")).await,
    ) {
        (Ok(kdcs), Ok(dcs)) if !kdcs.is_empty() && !dcs.is_empty() => (kdcs, dcs),
        (kdcs, dcs) => {
            checks.push(("dc_in_dns", false));
            let why = [kdcs.err(), dcs.err()]
                .into_iter()
                .flatten()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            return host_failure(
                checks,
                format!(
                    "no domain controller of {domain} found in DNS (_kerberos._tcp and _ldap._tcp.dc._msdcs SRV records){}",
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(": {why}")
                    }
                ),
                REMEDY_DC,
                apps,
            );
        }
    };
    checks.push(("dc_in_dns", true));
    let kdc = first_open(&kdcs, timeout).await;
    checks.push(("kdc_tcp_88", kdc.is_some()));
    let dc = first_open(&dcs, timeout).await;
    checks.push(("ldap_tcp_389", dc.is_some()));
    let Some((dc_host, dc_port)) = dc.filter(|_| kdc.is_some()) else {
        let names = |list: &[(String, u16)]| {
            list.iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return host_failure(
            checks,
            format!(
                "the domain controllers of {domain} do not accept TCP connections (KDC: {}; LDAP: {})",
                names(&kdcs),
                names(&dcs)
            ),
            REMEDY_DC,
            apps,
        );
    };
    if let Some(Http2::NotOff(evidence)) = http2 {
        return host_failure(checks, evidence, REMEDY_HTTP2, apps);
    }
    let directory =
        match read_directory(&dc_host, dc_port, &identity.account, &apps, timeout, bind).await {
            Ok(directory) => {
                checks.push(("directory_read", true));
                directory
            }
            Err(error) => {
                checks.push(("directory_read", false));
                let reason = format!(
                    "the delegation settings of {} could not be read from {dc_host}: {error}",
                    identity.account
                );
                let mut state = not_evaluated(&reason, apps);
                state.checks = checks;
                return state;
            }
        };
    let apps: Vec<AppDelegation> = apps
        .into_iter()
        .map(|app| {
            let verdict = judge_app(&identity.account, &directory, &app);
            AppDelegation { app, verdict }
        })
        .collect();
    let verdict = apps
        .iter()
        .find(|a| matches!(a.verdict, Verdict::Fail { .. }))
        .or_else(|| apps.iter().find(|a| a.verdict == Verdict::Pass))
        .or_else(|| apps.first())
        .map_or(Verdict::Pass, |a| a.verdict.clone());
    KerberosState {
        verdict,
        checks,
        apps,
    }
}

/// What the directory says about this computer and the apps' SPNs.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub allowed_to_delegate_to: Vec<String>,
    pub user_account_control: u32,
    /// For each app SPN not in the list: whether its account was found, and whether that
    /// account allows this computer by resource-based delegation.
    pub spn_owners: Vec<(String, Option<bool>)>,
}

/// One app's verdict from the directory.
pub fn judge_app(account: &str, d: &Directory, app: &KerberosApp) -> Verdict {
    if d.allowed_to_delegate_to
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&app.spn))
    {
        return if d.user_account_control & TRUSTED_TO_AUTH_FOR_DELEGATION != 0 {
            Verdict::Pass
        } else {
            Verdict::fail(
                format!(
                    "{account} may delegate to {} but not with \"Use any authentication protocol\", which App Proxy needs (users sign in to Entra ID, not with Kerberos)",
                    app.spn
                ),
                REMEDY_SPN,
            )
        };
    }
    match d
        .spn_owners
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(&app.spn))
        .and_then(|(_, o)| *o)
    {
        Some(true) => Verdict::Pass,
        Some(false) => Verdict::fail(
            format!(
                "{} is not in {account}'s msDS-AllowedToDelegateTo, and the account holding it does not allow {account} by resource-based delegation: the connector cannot get a ticket for it (event 13019/13020)",
                app.spn
            ),
            REMEDY_SPN,
        ),
        None => Verdict::not_evaluated(format!(
            "{} is not in {account}'s msDS-AllowedToDelegateTo and no account of this domain holds it: if it belongs to another domain, resource-based delegation there cannot be read from here",
            app.spn
        )),
    }
}

/// The SRV targets of `name`, by priority then weight.
async fn srv(name: &str) -> Result<Vec<(String, u16)>, DnsError> {
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
async fn first_open(targets: &[(String, u16)], timeout: Duration) -> Option<(String, u16)> {
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

#[cfg(test)]
#[path = "kerberos_tests.rs"]
mod tests;
