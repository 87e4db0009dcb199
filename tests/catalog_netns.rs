//! The built-in endpoint catalogs against a healthy network, in a network namespace whose hosts
//! file serves every catalog host on loopback: with Microsoft's names, real TLS servers and the
//! lab's CA in the trust store, a healthy host fails no step in any cloud setting. Stand-ins for
//! wildcards present a wildcard certificate, which does not cover them: they are checked for
//! DNS and TCP only. A dual-stack name whose IPv6 address is black-holed still connects over IPv4.

mod common;

use std::process::Output;

use common::{Lab, write_config};
use serde_json::{Value, json};

const TENANT: &str = "3f2c0000-0000-0000-0000-000000000001";

/// Every host the public and US Government catalogs probe on 443, with the certificate name
/// each presents: its own, or for a stand-in the wildcard it stands for.
const TLS: &[(&str, &str)] = &[
    (
        "3f2c0000-0000-0000-0000-000000000001.bootstrap.msappproxy.net",
        "3f2c0000-0000-0000-0000-000000000001.bootstrap.msappproxy.net",
    ),
    ("servicebus.windows.net", "*.servicebus.windows.net"),
    ("login.windows.net", "login.windows.net"),
    (
        "secure.aadcdn.microsoftonline-p.com",
        "secure.aadcdn.microsoftonline-p.com",
    ),
    ("login.microsoftonline.com", "login.microsoftonline.com"),
    ("login.microsoftonline-p.com", "*.microsoftonline-p.com"),
    ("aadcdn.msauth.net", "aadcdn.msauth.net"),
    ("aadcdn.msauthimages.net", "*.msauthimages.net"),
    ("aadcdn.msecnd.net", "*.msecnd.net"),
    ("aadcdn.msftauth.net", "aadcdn.msftauth.net"),
    ("aadcdn.msftauthimages.net", "*.msftauthimages.net"),
    (
        "enterpriseregistration.windows.net",
        "enterpriseregistration.windows.net",
    ),
    ("management.azure.com", "management.azure.com"),
    ("ctldl.windowsupdate.com", "ctldl.windowsupdate.com"),
    ("www.microsoft.com", "www.microsoft.com"),
    (
        "3f2c0000-0000-0000-0000-000000000001.bootstrap.msappproxy.us",
        "*.bootstrap.msappproxy.us",
    ),
    (
        "servicebus.usgovcloudapi.net",
        "*.servicebus.usgovcloudapi.net",
    ),
    ("login.windows.us", "login.windows.us"),
    ("login.microsoftonline.us", "login.microsoftonline.us"),
    ("login.microsoftonline-p.us", "*.microsoftonline-p.us"),
    (
        "policykeyservice.dc.ad.msft.net",
        "policykeyservice.dc.ad.msft.net",
    ),
];

/// Every host the catalogs probe on 80.
const HTTP: &[&str] = &[
    "crl3.digicert.com",
    "crl4.digicert.com",
    "ocsp.digicert.com",
    "crl.microsoft.com",
    "oneocsp.microsoft.com",
    "ocsp.msocsp.com",
    "ctldl.windowsupdate.com",
    "www.microsoft.com",
    "mscrl.microsoft.us",
    "crl.microsoft.us",
    "ocsp.msocsp.us",
    "www.microsoft.us",
    "ctldl.windowsupdate.us",
];

/// `pfd.phonefactor.net`, a stand-in, is left out of the hosts file on purpose: a stand-in
/// that does not resolve proves nothing and must fail nothing.
fn healthy_internet() -> Value {
    let mut hosts = serde_json::Map::new();
    let mut servers = Vec::new();
    let address = |host: &str, hosts: &mut serde_json::Map<String, Value>| -> String {
        let next = format!("127.0.1.{}", hosts.len() + 1);
        hosts
            .entry(host.to_string())
            .or_insert(json!(next))
            .as_str()
            .unwrap()
            .to_string()
    };
    for (host, cn) in TLS {
        let ip = address(host, &mut hosts);
        servers
            .push(json!({"ip": ip, "port": 443, "kind": "tls", "issuer": "microsoft", "cn": cn}));
    }
    for host in HTTP {
        let ip = address(host, &mut hosts);
        servers.push(json!({"ip": ip, "port": 80, "kind": "http"}));
    }
    hosts.insert("dual.test".into(), json!(["::1", "127.0.2.1"]));
    servers.push(json!({"ip": "127.0.2.1", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "dual.test"}));
    json!({
        "hosts": hosts,
        "servers": servers,
        "proxy": {"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80]}
    })
}

/// One healthy app; the cloud and its catalog as given.
fn config(head: &str, connector_proxy: &str, endpoints: &str) -> String {
    format!(
        "{head}inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
      - name: intranet
        connector_group: Default
        internal_url: https://intranet.corp.test/
connector:
  proxy: {connector_proxy}
probes:
  timeout: 3s
  backend:
    enabled: false
  external:
    enabled: false
{endpoints}"
    )
}

/// `diagnose --output json` inside the lab: (exit code, the document).
fn diagnose(lab: &Lab, config_text: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), config_text);
    let output: Output = lab
        .netns
        .command("env")
        .arg(format!("SSL_CERT_FILE={}", lab.ca_bundle))
        .arg(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args(["diagnose", "--output", "json"])
        .arg(format!("--config.file={}", path.display()))
        .output()
        .unwrap();
    let document = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "diagnose printed no JSON: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), document)
}

fn host_step(document: &Value, step: u64) -> &Value {
    document["host_steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap()
}

#[test]
fn a_healthy_host_fails_no_step_in_any_cloud_setting() {
    let lab = Lab::up(&healthy_internet());
    for (setting, head) in [
        (
            "public with a tenant",
            format!("cloud: public\ntenant_id: {TENANT}\n"),
        ),
        ("public without a tenant", "cloud: public\n".to_string()),
        (
            "US Government",
            format!("cloud: usgov\ntenant_id: {TENANT}\n"),
        ),
        ("China", format!("cloud: china\ntenant_id: {TENANT}\n")),
    ] {
        let (code, document) = diagnose(&lab, &config(&head, "direct", ""));
        assert_eq!(code, 0, "{setting}: {document:#}");
        assert_eq!(document["healthy"], true, "{setting}");
        for step in [3, 4] {
            let s = host_step(&document, step);
            if setting == "China" {
                assert_eq!(s["state"], "not_evaluated", "{setting} step {step}: {s}");
                assert!(s["evidence"].as_str().unwrap().contains("China"), "{s}");
            } else {
                assert_eq!(s["state"], "pass", "{setting} step {step}: {s}");
            }
        }
    }
}

#[test]
fn a_proxy_no_probe_could_go_through_is_not_evaluated_in_china_or_with_a_custom_list() {
    let lab = Lab::up(&healthy_internet());
    let proxy = lab.proxy_url.clone().unwrap();
    let only_port_80 = "  endpoints:\n    replace:\n      - {host: crl3.digicert.com, port: 80, purpose: certificates}\n";
    for (setting, head, endpoints) in [
        ("China", format!("cloud: china\ntenant_id: {TENANT}\n"), ""),
        ("a custom list without 443", String::new(), only_port_80),
    ] {
        let (_, document) = diagnose(&lab, &config(&head, &proxy, endpoints));
        let five = host_step(&document, 5);
        assert_eq!(five["state"], "not_evaluated", "{setting}: {five}");
        assert_eq!(five["result"], Value::Null, "never a pass: {five}");
        assert!(
            five["evidence"]
                .as_str()
                .unwrap()
                .contains("no probe went through http://127.0.0.1:3128"),
            "{setting}: {five}"
        );
    }
    // With the catalog, the proxy is tried, and this one works.
    let head = format!("tenant_id: {TENANT}\n");
    let (_, document) = diagnose(&lab, &config(&head, &proxy, ""));
    assert_eq!(host_step(&document, 5)["state"], "pass", "{document:#}");
}

#[test]
fn a_black_holed_ipv6_address_does_not_hide_a_working_ipv4_one() {
    let lab = Lab::up(&healthy_internet());
    let resolved = lab
        .netns
        .command("getent")
        .args(["ahosts", "dual.test"])
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&resolved.stdout);
    assert!(
        first.starts_with("::1 "),
        "the resolver must offer IPv6 first for this test to mean anything: {first}"
    );
    lab.firewall(&["ip6 -p tcp -d ::1 --dport 443 -j DROP"]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = lab.start(&write_config(
        dir.path(),
        &config(
            "",
            "direct",
            "  endpoints:\n    replace:\n      - {host: dual.test, port: 443, purpose: service}\n",
        ),
    ));
    let family = r#"appproxy_endpoint_family_info{family="ipv4",host="dual.test",port="443",purpose="service",route="direct"} 1"#;
    let m = lab.wait_for_metrics(&exporter, |m| m.contains(family));
    assert_eq!(
        common::sample(
            &m,
            r#"appproxy_endpoint_up{host="dual.test",port="443",purpose="service",route="direct"}"#
        ),
        Some(1.0),
        "IPv4 is raced after the attempt delay instead of waiting out the dropped IPv6 address: {m}"
    );
}
