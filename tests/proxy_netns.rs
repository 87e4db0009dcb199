//! Steps 5 and 6 end to end: the connector's and updater's real `.exe.config` files, a real
//! tinyproxy in a network namespace (allowed, port-restricted, asking for authentication,
//! stopped), and iptables blocking the direct route.

mod common;

use common::{Lab, Running, sample, write_config};
use serde_json::{Value, json};

fn spec(proxy: Value) -> Value {
    json!({
        "hosts": {"tenant.bootstrap.msappproxy.test": "127.0.0.11", "crl.digicert.test": "127.0.0.21"},
        "servers": [
            {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.21", "port": 80, "kind": "http"}
        ],
        "proxy": proxy
    })
}

fn allowed_proxy() -> Value {
    json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80]})
}

const BLOCK_DIRECT: [&str; 2] = [
    "-p tcp --dport 443 -m owner --uid-owner 0 -j DROP",
    "-p tcp --dport 80 -m owner --uid-owner 0 -j DROP",
];

fn proxy_file(address: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<configuration>\n  <system.net>\n    <defaultProxy>\n      <proxy proxyaddress=\"{address}\" bypassonlocal=\"True\" />\n    </defaultProxy>\n  </system.net>\n</configuration>\n"
    )
}

const DIRECT_FILE: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<configuration>\n  <system.net>\n    <defaultProxy enabled=\"false\"></defaultProxy>\n  </system.net>\n</configuration>\n";

/// Starts the exporter in `lab` with these connector and updater files.
fn start(
    lab: &Lab,
    dir: &std::path::Path,
    connector: &str,
    updater: &str,
    winhttp: &str,
) -> Running {
    let connector_file = dir.join("ApplicationProxyConnectorService.exe.config");
    let updater_file = dir.join("ApplicationProxyConnectorUpdaterService.exe.config");
    std::fs::write(&connector_file, connector).unwrap();
    std::fs::write(&updater_file, updater).unwrap();
    let config = format!(
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
      - name: intranet
        connector_group: Default
        internal_url: https://intranet.corp.test/
connector:
  service_config: {}
  updater_config: {}
  machine_config: {}
  winhttp_proxy: {winhttp}
probes:
  interval: 1s
  timeout: 1s
  backend:
    enabled: false
  endpoints:
    replace:
      - {{host: tenant.bootstrap.msappproxy.test, port: 443, purpose: service}}
      - {{host: crl.digicert.test, port: 80, purpose: certificates}}
",
        connector_file.display(),
        updater_file.display(),
        dir.join("machine.config").display()
    );
    lab.start(&write_config(dir, &config))
}

fn failing_step(m: &str) -> Option<f64> {
    sample(
        m,
        r#"appproxy_flow_failing_step{app="intranet",connector_group="Default"}"#,
    )
}

/// Steps 5 and 6 are judged once for the host: their series has no group or app.
fn step_ok(m: &str, step: u8, name: &str) -> Option<f64> {
    sample(
        m,
        &format!(
            "appproxy_flow_step_ok{{app=\"\",connector_group=\"\",step=\"{step}\",step_name=\"{name}\"}}"
        ),
    )
}

const PROXY: &str = "http://127.0.0.1:3128";

#[test]
fn a_healthy_proxied_setup_passes_with_both_services_on_the_proxy() {
    let lab = Lab::up(&spec(allowed_proxy()));
    lab.firewall(&BLOCK_DIRECT);
    let dir = tempfile::tempdir().unwrap();
    // Healthy means WinHTTP's proxy too: certificate chains are checked through it.
    let exporter = start(
        &lab,
        dir.path(),
        &proxy_file(PROXY),
        &proxy_file(PROXY),
        PROXY,
    );
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(0.0), "{m}");
    let connector_file = dir
        .path()
        .join("ApplicationProxyConnectorService.exe.config");
    assert_eq!(
        sample(
            &m,
            &format!(
                r#"appproxy_connector_config_valid{{connector_service="connector",file="{}"}}"#,
                connector_file.display()
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_info{connector_service="connector",proxy_url="http://127.0.0.1:3128",source="config_file"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_info{connector_service="updater",proxy_url="http://127.0.0.1:3128",source="config_file"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_up{proxy_url="http://127.0.0.1:3128"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_connect_status_code{proxy_url="http://127.0.0.1:3128"}"#
        ),
        Some(200.0)
    );
    assert_eq!(sample(&m, "appproxy_forward_proxy_consistent"), Some(1.0));
    assert_eq!(step_ok(&m, 5, "forward_proxy"), Some(1.0));
    assert_eq!(step_ok(&m, 6, "proxy_consistency"), Some(1.0));
}

#[test]
fn a_stopped_proxy_fails_step_5_while_direct_still_works() {
    let lab = Lab::up(&spec(allowed_proxy()));
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        &lab,
        dir.path(),
        &proxy_file(PROXY),
        &proxy_file(PROXY),
        "direct",
    );
    lab.wait_for_metrics(&exporter, |m| failing_step(m) == Some(0.0));
    lab.proxy(false);
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m) == Some(5.0));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_up{proxy_url="http://127.0.0.1:3128"}"#
        ),
        Some(0.0)
    );
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(page.contains("it is unreachable: refused"), "{page}");
    lab.proxy(true);
    lab.wait_for_metrics(&exporter, |m| failing_step(m) == Some(0.0));
}

#[test]
fn a_proxy_asking_for_authentication_fails_step_5_with_407() {
    let lab = Lab::up(&spec(
        json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80], "basic_auth": "user:pass"}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        &lab,
        dir.path(),
        &proxy_file(PROXY),
        &proxy_file(PROXY),
        "direct",
    );
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(5.0));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_connect_status_code{proxy_url="http://127.0.0.1:3128"}"#
        ),
        Some(407.0)
    );
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(page.contains("asks for authentication (407)"), "{page}");
    assert!(
        page.contains("without authentication"),
        "the remedy: {page}"
    );
}

#[test]
fn when_the_only_way_out_is_a_proxy_asking_for_authentication_step_3_names_the_proxy_not_a_closed_port()
 {
    let lab = Lab::up(&spec(
        json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80], "basic_auth": "user:pass"}),
    ));
    lab.firewall(&BLOCK_DIRECT);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        &lab,
        dir.path(),
        &proxy_file(PROXY),
        &proxy_file(PROXY),
        "direct",
    );
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(3.0), "{m}");
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(!page.contains("port 443 is closed"), "{page}");
    assert!(
        page.contains("the proxy http://127.0.0.1:3128 refuses the tunnel (407, it asks for authentication): see step 5"),
        "{page}"
    );
}

#[test]
fn a_proxy_refusing_connect_to_443_fails_step_5_with_403() {
    let lab = Lab::up(&spec(
        json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [80]}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        &lab,
        dir.path(),
        &proxy_file(PROXY),
        &proxy_file(PROXY),
        "direct",
    );
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(5.0));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_connect_status_code{proxy_url="http://127.0.0.1:3128"}"#
        ),
        Some(403.0)
    );
    assert!(
        lab.netns
            .get(exporter.address, "/")
            .1
            .contains("refuses CONNECT (403)")
    );
}

#[test]
fn connector_and_updater_disagreeing_fail_step_6_naming_both_files() {
    let lab = Lab::up(&spec(allowed_proxy()));
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(&lab, dir.path(), &proxy_file(PROXY), DIRECT_FILE, "direct");
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(6.0));
    assert_eq!(sample(&m, "appproxy_forward_proxy_consistent"), Some(0.0));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_forward_proxy_info{connector_service="updater",proxy_url="direct",source="config_file"}"#
        ),
        Some(1.0)
    );
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(
        page.contains("ApplicationProxyConnectorUpdaterService.exe.config"),
        "{page}"
    );
    assert!(page.contains("the updater uses direct"), "{page}");
}

#[test]
fn a_direct_connector_behind_a_blocked_firewall_fails_step_6_when_the_proxy_works() {
    let lab = Lab::up(&spec(allowed_proxy()));
    lab.firewall(&BLOCK_DIRECT);
    let dir = tempfile::tempdir().unwrap();
    // Both services go direct; the machine's WinHTTP proxy is the one that gets out.
    let exporter = start(&lab, dir.path(), DIRECT_FILE, DIRECT_FILE, PROXY);
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(
        failing_step(&m),
        Some(6.0),
        "steps 3-4 pass through the proxy"
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_endpoint_up{host="tenant.bootstrap.msappproxy.test",port="443",purpose="service",route="direct"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_endpoint_up{host="tenant.bootstrap.msappproxy.test",port="443",purpose="service",route="proxy"}"#
        ),
        Some(1.0)
    );
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(page.contains("the connector goes direct"), "{page}");
    assert!(page.contains("reachable only through the proxy"), "{page}");
    assert!(
        page.contains("proxyaddress"),
        "the remedy says what to set: {page}"
    );
}

/// Both services on the proxy, but WinHTTP set to go direct where only the proxy gets out:
/// the connector's certificate chain checks (system context, WinHTTP's route) cannot reach the
/// CRL host, which Microsoft's troubleshoot-connectors.md documents as "Failed to validate
/// chain of certificate", fixed with `netsh winhttp set proxy`.
#[test]
fn certificate_endpoints_unreachable_by_winhttps_route_fail_step_6() {
    let lab = Lab::up(&spec(allowed_proxy()));
    lab.firewall(&BLOCK_DIRECT);
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(
        &lab,
        dir.path(),
        &proxy_file(PROXY),
        &proxy_file(PROXY),
        "direct",
    );
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(6.0), "{m}");
    assert_eq!(step_ok(&m, 5, "forward_proxy"), Some(1.0));
    assert_eq!(sample(&m, "appproxy_forward_proxy_consistent"), Some(0.0));
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(
        page.contains("checked in the system context, which goes direct")
            && page.contains("crl.digicert.test:80"),
        "{page}"
    );
    assert!(page.contains("netsh winhttp set proxy"), "{page}");
}

#[test]
fn a_malformed_connector_file_is_a_finding_and_the_walk_goes_on() {
    let lab = Lab::up(&spec(allowed_proxy()));
    let dir = tempfile::tempdir().unwrap();
    let broken = "<?xml version=\"1.0\"?>\n<configuration>\n  <system.net>\n    <defaultProxy enabled=\"false\">\n  </system.net>\n</configuration>\n";
    let mut exporter = start(&lab, dir.path(), broken, DIRECT_FILE, "direct");
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(5.0));
    assert_eq!(
        step_ok(&m, 3, "port_test"),
        Some(1.0),
        "the other steps are still measured"
    );
    let connector_file = dir
        .path()
        .join("ApplicationProxyConnectorService.exe.config");
    assert_eq!(
        sample(
            &m,
            &format!(
                r#"appproxy_connector_config_valid{{connector_service="connector",file="{}"}}"#,
                connector_file.display()
            )
        ),
        Some(0.0)
    );
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(page.contains("is not valid: line 5, column"), "{page}");
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    let log: Vec<String> = exporter.log.iter().collect();
    let errors: Vec<&String> = log.iter().filter(|l| l.contains("level=error")).collect();
    assert_eq!(errors.len(), 1, "logged once, not every round: {errors:#?}");
    assert!(
        errors[0].contains(&connector_file.display().to_string()) && errors[0].contains("line 5"),
        "{}",
        errors[0]
    );
}
