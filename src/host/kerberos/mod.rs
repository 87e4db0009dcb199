//! Kerberos delegation readiness for apps whose single sign-on is Kerberos (Graph's
//! `singleSignOnSettings`): the connector obtains a ticket for the user from the domain's KDC
//! (Kerberos constrained delegation), so the page still answers (401 Negotiate passes step 7)
//! while sign-in fails. Shown with step 7. Per Microsoft's "Kerberos Constrained Delegation for
//! single sign-on" and "How to configure connectors" pages, this host needs:
//! - the domain's KDC and LDAP reachable: SRV records `_kerberos._tcp.<domain>` and
//!   `_ldap._tcp.dc._msdcs.<domain>`, TCP 88 and 389;
//! - the app's SPN in its computer object's `msDS-AllowedToDelegateTo` with "Use any
//!   authentication protocol" (`userAccountControl` `TRUSTED_TO_AUTH_FOR_DELEGATION`), or,
//!   across domains, the SPN's account allowing this computer, or a group it is in (its
//!   `tokenGroups`, which the domain controller computes transitively), through resource-based
//!   delegation (`msDS-AllowedToActOnBehalfOfOtherIdentity`, read in [`descriptor`]);
//! - the app's SPN held by one account only ("Troubleshoot Kerberos constrained delegation":
//!   "Verify that there's only one instance of the SPN"): a duplicate fails the app;
//! - read access to users' `tokenGroupsGlobalAndUniversal` (a prerequisite on the Kerberos
//!   page, "might have been impacted by security hardening"), which membership of the Windows
//!   Authorization Access Group grants (Microsoft KB 947124: missing membership makes KCD
//!   answer 403 Forbidden). Its absence warns rather than fails: another grant may give the
//!   access, and the exporter cannot see every user's ACL;
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
use crate::secret::Secret;

pub mod descriptor;
mod directory;
mod judge;

pub use descriptor::allows_sid;
pub use directory::{DirectoryError, DnsError, read_directory};
use directory::{first_open, srv};
use judge::authorization_access_group_warning;
pub use judge::{Directory, Group, SpnAccount, SpnOwners, judge_app};

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
pub const HOST_CHECKS: [&str; 7] = [
    "domain_joined",
    "dc_in_dns",
    "kdc_tcp_88",
    "ldap_tcp_389",
    "directory_read",
    "authorization_access_group",
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
    let group_warning = match directory.in_authorization_access_group() {
        Some(true) => {
            checks.push(("authorization_access_group", true));
            None
        }
        Some(false) => {
            checks.push(("authorization_access_group", false));
            Some(authorization_access_group_warning(&identity.account))
        }
        // Its groups could not be read: no verdict on membership (the check is absent).
        None => None,
    };
    let apps: Vec<AppDelegation> = apps
        .into_iter()
        .map(|app| {
            let verdict = match (
                judge_app(&identity.account, &directory, &app),
                &group_warning,
            ) {
                (Verdict::Pass, Some(evidence)) => Verdict::Warning {
                    evidence: evidence.clone(),
                },
                (verdict, _) => verdict,
            };
            AppDelegation { app, verdict }
        })
        .collect();
    let verdict = apps
        .iter()
        .find(|a| matches!(a.verdict, Verdict::Fail { .. }))
        .or_else(|| {
            apps.iter()
                .find(|a| matches!(a.verdict, Verdict::Warning { .. }))
        })
        .or_else(|| apps.iter().find(|a| a.verdict == Verdict::Pass))
        .or_else(|| apps.first())
        .map_or(Verdict::Pass, |a| a.verdict.clone());
    KerberosState {
        verdict,
        checks,
        apps,
    }
}

#[cfg(test)]
mod tests;
