//! Microsoft's published list of the endpoints a connector must reach, per cloud, as data.
//! A wildcard cannot be probed, so each one has a concrete representative host, chosen and
//! documented here (docs/endpoints.md); `probes.endpoints.extra` adds hosts of your own and
//! `replace` substitutes the whole list.

use crate::config::values::{Catalog, Cloud, EndpointPurpose};
use crate::config::{Endpoint, EndpointSettings};

use EndpointPurpose::{Certificates, Registration, Service};

/// One row of the catalog. `{tenant}` in a host is replaced by the tenant id; rows that need
/// it are left out when no `tenant_id` is configured.
struct Row {
    host: &'static str,
    port: u16,
    purpose: EndpointPurpose,
    /// The wildcard of Microsoft's list this host stands for, if any.
    stands_for: Option<&'static str>,
}

const fn row(host: &'static str, port: u16, purpose: EndpointPurpose) -> Row {
    Row {
        host,
        port,
        purpose,
        stands_for: None,
    }
}

const fn wildcard(
    stands_for: &'static str,
    host: &'static str,
    port: u16,
    purpose: EndpointPurpose,
) -> Row {
    Row {
        host,
        port,
        purpose,
        stands_for: Some(stands_for),
    }
}

/// Public cloud: "Prepare your on-premises environment" in Microsoft's App Proxy tutorial.
const PUBLIC: &[Row] = &[
    // Connector to the cloud service.
    wildcard(
        "*.msappproxy.net",
        "{tenant}.bootstrap.msappproxy.net",
        443,
        Service,
    ),
    wildcard(
        "*.servicebus.windows.net",
        "servicebus.windows.net",
        443,
        Service,
    ),
    // Certificate revocation (CRL/OCSP), plain HTTP.
    row("crl3.digicert.com", 80, Certificates),
    row("crl4.digicert.com", 80, Certificates),
    row("ocsp.digicert.com", 80, Certificates),
    row("crl.microsoft.com", 80, Certificates),
    row("oneocsp.microsoft.com", 80, Certificates),
    row("ocsp.msocsp.com", 80, Certificates),
    // Registration and sign-in.
    row("login.windows.net", 443, Registration),
    row("secure.aadcdn.microsoftonline-p.com", 443, Registration),
    wildcard(
        "*.microsoftonline.com",
        "login.microsoftonline.com",
        443,
        Registration,
    ),
    wildcard(
        "*.microsoftonline-p.com",
        "login.microsoftonline-p.com",
        443,
        Registration,
    ),
    wildcard("*.msauth.net", "aadcdn.msauth.net", 443, Registration),
    wildcard(
        "*.msauthimages.net",
        "aadcdn.msauthimages.net",
        443,
        Registration,
    ),
    wildcard("*.msecnd.net", "aadcdn.msecnd.net", 443, Registration),
    wildcard("*.msftauth.net", "aadcdn.msftauth.net", 443, Registration),
    wildcard(
        "*.msftauthimages.net",
        "aadcdn.msftauthimages.net",
        443,
        Registration,
    ),
    wildcard(
        "*.phonefactor.net",
        "pfd.phonefactor.net",
        443,
        Registration,
    ),
    row("enterpriseregistration.windows.net", 443, Registration),
    row("management.azure.com", 443, Registration),
    row("policykeyservice.dc.ad.msft.net", 443, Registration),
    row("ctldl.windowsupdate.com", 443, Registration),
    row("ctldl.windowsupdate.com", 80, Registration),
    // www.microsoft.com/pkiops: the host is what a port test can reach.
    row("www.microsoft.com", 443, Registration),
    row("www.microsoft.com", 80, Registration),
];

/// US Government: Microsoft's list for Azure Government.
const USGOV: &[Row] = &[
    wildcard(
        "*.msappproxy.us",
        "{tenant}.bootstrap.msappproxy.us",
        443,
        Service,
    ),
    wildcard(
        "*.servicebus.usgovcloudapi.net",
        "servicebus.usgovcloudapi.net",
        443,
        Service,
    ),
    row("mscrl.microsoft.us", 80, Certificates),
    row("crl.microsoft.us", 80, Certificates),
    row("ocsp.msocsp.us", 80, Certificates),
    row("www.microsoft.us", 80, Certificates),
    row("login.windows.us", 443, Registration),
    wildcard(
        "*.microsoftonline.us",
        "login.microsoftonline.us",
        443,
        Registration,
    ),
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
                    skipped.push(row.stands_for.unwrap_or(row.host));
                    None
                }
            }
            .map(|host| Endpoint {
                host,
                port: row.port,
                purpose: row.purpose,
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

    #[test]
    fn replace_substitutes_and_extra_adds() {
        let own = Endpoint {
            host: "proxy-check.corp.example".into(),
            port: 443,
            purpose: Service,
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
