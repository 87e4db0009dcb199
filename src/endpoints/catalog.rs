//! Microsoft's published list of the endpoints a connector must reach, per cloud, as data,
//! each row with the name Microsoft lists (`*.msappproxy.net`, `www.microsoft.com/pkiops`) and
//! the host that is probed for it. docs/endpoints.md gives every row with its source page and
//! date; `tests/fixtures/endpoints/` holds the documented tables, and a test checks this
//! catalog against them.
//!
//! A wildcard names no host. Where a concrete host is known that the connector itself contacts
//! and whose certificate the wildcard covers, that host gets the full check (DNS, TCP, TLS); where
//! none is known, a stand-in host is checked for DNS and TCP only (`reachable_only`, with the
//! reason), and a stand-in that does not resolve proves nothing, so it is not evaluated rather
//! than failed. `probes.endpoints.extra` adds hosts of your own, `replace` the whole list.

use crate::config::values::{Catalog, Cloud, EndpointPurpose};
use crate::config::{Endpoint, EndpointSettings};

use EndpointPurpose::{Certificates, Registration, Service};

/// One row of the catalog. `{tenant}` in a host is replaced by the tenant id; rows that need
/// it are left out when no `tenant_id` is configured.
struct Row {
    /// The name as Microsoft's table lists it.
    listed: &'static str,
    host: &'static str,
    port: u16,
    purpose: EndpointPurpose,
    /// `Some(why)`: DNS and TCP only.
    reachable_only: Option<&'static str>,
}

/// A host Microsoft lists by name.
const fn row(host: &'static str, port: u16, purpose: EndpointPurpose) -> Row {
    Row {
        listed: host,
        host,
        port,
        purpose,
        reachable_only: None,
    }
}

/// A listed name probed as `host`, with the full check.
const fn probed_as(
    listed: &'static str,
    host: &'static str,
    port: u16,
    purpose: EndpointPurpose,
) -> Row {
    Row {
        listed,
        host,
        port,
        purpose,
        reachable_only: None,
    }
}

/// A listed wildcard for which no host the connector contacts is documented: `host` stands in
/// for DNS and TCP only.
const fn stand_in(
    listed: &'static str,
    host: &'static str,
    port: u16,
    purpose: EndpointPurpose,
    why: &'static str,
) -> Row {
    Row {
        listed,
        host,
        port,
        purpose,
        reachable_only: Some(why),
    }
}

const NO_CONNECTOR_HOST: &str = "Microsoft documents no host of this wildcard that the connector contacts, so a stand-in is checked for DNS and TCP only (its certificate need not match)";
const SERVICE_BUS: &str = "the connector's Service Bus namespaces are handed out by the service at run time and documented nowhere, so the domain is checked for DNS and TCP only";
/// `{tenant}.bootstrap.msappproxy.net`: the bootstrap endpoint the connector polls every ten
/// minutes (Microsoft's App Proxy support wiki: "The bootstrap endpoint is
/// _TENANTID_.bootstrap.msappproxy.net"); the service certificate is `*.msappproxy.net`
/// (troubleshoot-connectors). docs/endpoints.md has the sources.
const BOOTSTRAP: &str = "{tenant}.bootstrap.msappproxy.net";

/// Public cloud: "Allow access to URLs" of "Configure private network connectors"
/// (learn.microsoft.com/entra/global-secure-access/how-to-configure-connectors, ms.date
/// 02/04/2026), which the App Proxy tutorial now points to.
const PUBLIC: &[Row] = &[
    // Communication between the connector and the Application Proxy cloud service.
    probed_as("*.msappproxy.net", BOOTSTRAP, 443, Service),
    stand_in(
        "*.servicebus.windows.net",
        "servicebus.windows.net",
        443,
        Service,
        SERVICE_BUS,
    ),
    // Certificate revocation (CRL/OCSP), plain HTTP.
    row("crl3.digicert.com", 80, Certificates),
    row("crl4.digicert.com", 80, Certificates),
    row("ocsp.digicert.com", 80, Certificates),
    row("crl.microsoft.com", 80, Certificates),
    row("oneocsp.microsoft.com", 80, Certificates),
    row("ocsp.msocsp.com", 80, Certificates),
    // During and beyond the registration process.
    row("login.windows.net", 443, Registration),
    row("secure.aadcdn.microsoftonline-p.com", 443, Registration),
    // troubleshoot-connectors: "enter https://login.microsoftonline.com. Make sure you can sign in."
    probed_as(
        "*.microsoftonline.com",
        "login.microsoftonline.com",
        443,
        Registration,
    ),
    stand_in(
        "*.microsoftonline-p.com",
        "login.microsoftonline-p.com",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    // The sign-in page's script and style host, as Microsoft lists it for its other agents.
    probed_as("*.msauth.net", "aadcdn.msauth.net", 443, Registration),
    stand_in(
        "*.msauthimages.net",
        "aadcdn.msauthimages.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    stand_in(
        "*.msecnd.net",
        "aadcdn.msecnd.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    probed_as("*.msftauth.net", "aadcdn.msftauth.net", 443, Registration),
    stand_in(
        "*.msftauthimages.net",
        "aadcdn.msftauthimages.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    stand_in(
        "*.phonefactor.net",
        "pfd.phonefactor.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    row("enterpriseregistration.windows.net", 443, Registration),
    row("management.azure.com", 443, Registration),
    row("ctldl.windowsupdate.com", 443, Registration),
    row("ctldl.windowsupdate.com", 80, Registration),
    // www.microsoft.com/pkiops: a URL; the host is what a port test can reach.
    probed_as(
        "www.microsoft.com/pkiops",
        "www.microsoft.com",
        443,
        Registration,
    ),
    probed_as(
        "www.microsoft.com/pkiops",
        "www.microsoft.com",
        80,
        Registration,
    ),
];

/// US Government: "Allow access to URLs" of "Hybrid identity considerations for the Azure
/// Government cloud" (learn.microsoft.com/entra/identity/hybrid/connect/reference-connect-government-cloud,
/// ms.date 04/09/2025). The table has no port column: `:80` hosts are port 80, the rest 443.
const USGOV: &[Row] = &[
    stand_in(
        "*.msappproxy.us",
        "{tenant}.bootstrap.msappproxy.us",
        443,
        Service,
        NO_CONNECTOR_HOST,
    ),
    stand_in(
        "*.servicebus.usgovcloudapi.net",
        "servicebus.usgovcloudapi.net",
        443,
        Service,
        SERVICE_BUS,
    ),
    row("mscrl.microsoft.us", 80, Certificates),
    row("crl.microsoft.us", 80, Certificates),
    row("ocsp.msocsp.us", 80, Certificates),
    row("www.microsoft.us", 80, Certificates),
    row("login.windows.us", 443, Registration),
    row("secure.aadcdn.microsoftonline-p.com", 443, Registration),
    probed_as(
        "*.microsoftonline.us",
        "login.microsoftonline.us",
        443,
        Registration,
    ),
    stand_in(
        "*.microsoftonline-p.us",
        "login.microsoftonline-p.us",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    probed_as("*.msauth.net", "aadcdn.msauth.net", 443, Registration),
    stand_in(
        "*.msauthimages.net",
        "aadcdn.msauthimages.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    stand_in(
        "*.msecnd.net",
        "aadcdn.msecnd.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    probed_as("*.msftauth.net", "aadcdn.msftauth.net", 443, Registration),
    stand_in(
        "*.msftauthimages.net",
        "aadcdn.msftauthimages.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    stand_in(
        "*.phonefactor.net",
        "pfd.phonefactor.net",
        443,
        Registration,
        NO_CONNECTOR_HOST,
    ),
    row("enterpriseregistration.windows.net", 443, Registration),
    row("management.azure.com", 443, Registration),
    row("policykeyservice.dc.ad.msft.net", 443, Registration),
    row("ctldl.windowsupdate.us", 80, Registration),
];

/// The endpoint list in force, and a note when the built-in list cannot be had for the cloud.
pub fn endpoints(
    cloud: Cloud,
    tenant_id: Option<&str>,
    settings: &EndpointSettings,
) -> (Vec<Endpoint>, Option<String>) {
    let (mut list, note) = if !settings.replace.is_empty() {
        (settings.replace.clone(), None)
    } else if settings.catalog == Catalog::None {
        (Vec::new(), None)
    } else {
        builtin(cloud, tenant_id)
    };
    for extra in &settings.extra {
        if !list.contains(extra) {
            list.push(extra.clone());
        }
    }
    (list, note)
}

fn builtin(cloud: Cloud, tenant_id: Option<&str>) -> (Vec<Endpoint>, Option<String>) {
    let rows = match cloud {
        Cloud::Public => PUBLIC,
        Cloud::Usgov => USGOV,
        Cloud::China => {
            return (
                Vec::new(),
                Some(
                    "Microsoft publishes no required-endpoint list for the China cloud; steps 3 and 4 \
                     probe only probes.endpoints.extra (add your own)"
                        .into(),
                ),
            );
        }
    };
    let mut skipped = Vec::new();
    let list = rows
        .iter()
        .filter_map(|row| {
            match (row.host.contains("{tenant}"), tenant_id) {
                (false, _) => Some(row.host.to_string()),
                (true, Some(tenant)) => Some(row.host.replace("{tenant}", tenant)),
                (true, None) => {
                    skipped.push(row.listed);
                    None
                }
            }
            .map(|host| Endpoint {
                host,
                port: row.port,
                purpose: row.purpose,
                reachable_only: row.reachable_only,
            })
        })
        .collect();
    let note = (!skipped.is_empty()).then(|| {
        format!(
            "without tenant_id the tenant-specific representative of {} is not probed; set tenant_id",
            skipped.join(", ")
        )
    });
    (list, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn defaults() -> EndpointSettings {
        Settings::default().probes.endpoints
    }

    #[test]
    fn public_catalog_has_both_ports_for_the_port_test() {
        let (list, note) = endpoints(Cloud::Public, Some("3f2c"), &defaults());
        assert!(note.is_none());
        assert!(
            list.iter()
                .any(|e| e.host == "3f2c.bootstrap.msappproxy.net"
                    && e.port == 443
                    && e.purpose == Service)
        );
        assert!(
            list.iter()
                .any(|e| e.port == 80 && e.purpose == Certificates)
        );
        assert!(
            list.iter()
                .all(|e| !e.host.contains('*') && !e.host.contains('/'))
        );
    }

    #[test]
    fn without_a_tenant_the_tenant_specific_host_is_left_out_and_said_so() {
        let (list, note) = endpoints(Cloud::Public, None, &defaults());
        assert!(list.iter().all(|e| !e.host.contains("{tenant}")));
        assert!(note.unwrap().contains("*.msappproxy.net"));
    }

    #[test]
    fn china_has_no_published_list_and_none_is_invented() {
        let (list, note) = endpoints(Cloud::China, Some("t"), &defaults());
        assert!(list.is_empty());
        assert!(note.unwrap().contains("China"));
    }

    /// `(name as listed, port)` of every row of a documented table saved under
    /// tests/fixtures/endpoints (a `:80` suffix is the port, as the US Government page writes it).
    fn documented(file: &str) -> Vec<(String, u16)> {
        let path = format!(
            "{}/tests/fixtures/endpoints/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut entries = Vec::new();
        for row in doc["rows"].as_array().unwrap() {
            for host in row["hosts"].as_array().unwrap() {
                let host = host.as_str().unwrap();
                match host.strip_suffix(":80") {
                    Some(bare) => entries.push((bare.to_string(), 80)),
                    None => {
                        for port in row["ports"].as_array().unwrap() {
                            let port = port.as_u64().unwrap() as u16;
                            // A row that mixes ports gives the bare hosts 443 (see above).
                            let mixed = row["ports"].as_array().unwrap().len() > 1;
                            if !mixed || port == 443 {
                                entries.push((host.to_string(), port));
                            }
                        }
                    }
                }
            }
        }
        entries.sort();
        entries.dedup();
        entries
    }

    fn listed(rows: &[Row]) -> Vec<(String, u16)> {
        let mut entries: Vec<(String, u16)> = rows
            .iter()
            .map(|r| (r.listed.to_string(), r.port))
            .collect();
        entries.sort();
        entries.dedup();
        entries
    }

    #[test]
    fn the_public_catalog_is_microsofts_current_list_entry_for_entry() {
        assert_eq!(listed(PUBLIC), documented("public.json"));
        assert!(
            PUBLIC
                .iter()
                .all(|r| r.host != "policykeyservice.dc.ad.msft.net"),
            "gone from the current public list"
        );
    }

    #[test]
    fn the_us_government_catalog_is_microsofts_list_entry_for_entry() {
        assert_eq!(listed(USGOV), documented("usgov.json"));
    }

    #[test]
    fn every_wildcard_is_probed_at_a_concrete_host_or_checked_for_reachability_only() {
        for row in PUBLIC.iter().chain(USGOV) {
            assert!(
                !row.host.contains('*') && !row.host.contains('/'),
                "{}",
                row.host
            );
            if row.listed.starts_with("*.") && row.reachable_only.is_none() {
                let domain = &row.listed[1..];
                assert!(
                    row.host.ends_with(domain) && row.host.len() > domain.len(),
                    "{} is not covered by {}",
                    row.host,
                    row.listed
                );
            }
        }
        let bare = PUBLIC
            .iter()
            .find(|r| r.host == "servicebus.windows.net")
            .unwrap();
        assert!(
            bare.reachable_only.is_some(),
            "a wildcard certificate does not cover the bare domain: no TLS name check there"
        );
    }

    #[test]
    fn replace_substitutes_and_extra_adds() {
        let own = Endpoint {
            host: "proxy-check.corp.example".into(),
            port: 443,
            purpose: Service,
            reachable_only: None,
        };
        let mut settings = defaults();
        settings.extra = vec![own.clone()];
        let (list, _) = endpoints(Cloud::Usgov, Some("t"), &settings);
        assert_eq!(list.last(), Some(&own));
        assert_eq!(list.len(), USGOV.len() + 1);
        settings.replace = vec![own.clone()];
        let (list, _) = endpoints(Cloud::Public, Some("t"), &settings);
        assert_eq!(list, vec![own]);
    }
}
