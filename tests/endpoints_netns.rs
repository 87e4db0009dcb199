//! Steps 3 and 4 end to end, in a network namespace: real TLS servers, real iptables rules,
//! a real tinyproxy. Each fault shows the right metrics and verdict, and clears when removed.

mod common;

use common::{Lab, sample, write_config};
use serde_json::json;

fn spec(proxy: bool) -> serde_json::Value {
    json!({
        "hosts": {
            "tenant.bootstrap.msappproxy.test": "127.0.0.11",
            "relay.servicebus.test": "127.0.0.12",
            "crl.digicert.test": "127.0.0.21",
            "login.test": "127.0.0.31",
            "intercepted.login.test": "127.0.0.32",
            "selfsigned.login.test": "127.0.0.33"
        },
        "servers": [
            {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.12", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "relay.servicebus.test"},
            {"ip": "127.0.0.21", "port": 80, "kind": "http"},
            {"ip": "127.0.0.31", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "login.test"},
            {"ip": "127.0.0.32", "port": 443, "kind": "tls", "issuer": "interceptor", "cn": "intercepted.login.test"},
            {"ip": "127.0.0.33", "port": 443, "kind": "tls", "issuer": "self-signed", "cn": "selfsigned.login.test"}
        ],
        "proxy": if proxy { json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80]}) } else { json!(null) }
    })
}

const HEALTHY_ENDPOINTS: &str = "
      - {host: tenant.bootstrap.msappproxy.test, port: 443, purpose: service}
      - {host: relay.servicebus.test, port: 443, purpose: service}
      - {host: crl.digicert.test, port: 80, purpose: certificates}
      - {host: login.test, port: 443, purpose: registration}";

/// One healthy app, and the endpoints given.
fn config(proxy: &str, endpoints: &str) -> String {
    format!(
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
  proxy: {proxy}
probes:
  interval: 1s
  timeout: 1s
  backend:
    enabled: false
  endpoints:
    replace:{endpoints}
"
    )
}

fn failing_step(m: &str) -> Option<f64> {
    sample(
        m,
        r#"appproxy_flow_failing_step{app="intranet",connector_group="Default"}"#,
    )
}

fn port_open(m: &str, port: u16) -> Option<f64> {
    sample(m, &format!("appproxy_port_open{{port=\"{port}\"}}"))
}

fn up(m: &str, host: &str, port: u16, purpose: &str, route: &str) -> Option<f64> {
    sample(
        m,
        &format!(
            "appproxy_endpoint_up{{host=\"{host}\",port=\"{port}\",purpose=\"{purpose}\",route=\"{route}\"}}"
        ),
    )
}

/// The failing step's evidence, from the `/` page's walk (HTML-escaped text).
fn evidence(lab: &Lab, exporter: &common::Running) -> String {
    lab.netns.get(exporter.address, "/").1
}

#[test]
fn a_healthy_path_passes_then_dropped_443_fails_step_3_and_clears() {
    let lab = Lab::up(&spec(false));
    let dir = tempfile::tempdir().unwrap();
    let exporter = lab.start(&write_config(
        dir.path(),
        &config("direct", HEALTHY_ENDPOINTS),
    ));

    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(0.0), "{m}");
    assert_eq!(port_open(&m, 443), Some(1.0));
    assert_eq!(port_open(&m, 80), Some(1.0));
    assert_eq!(
        up(&m, "login.test", 443, "registration", "direct"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_endpoint_tls_intercepted{host="login.test"}"#
        ),
        Some(0.0)
    );
    assert!(m.contains(r#"appproxy_endpoint_duration_seconds{host="login.test",phase="tls",port="443",purpose="registration",route="direct"}"#));

    lab.firewall(&[
        "-p tcp -d 127.0.0.11 --dport 443 -j DROP",
        "-p tcp -d 127.0.0.12 --dport 443 -j DROP",
    ]);
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m) == Some(3.0));
    assert_eq!(port_open(&m, 443), Some(0.0));
    assert_eq!(port_open(&m, 80), Some(1.0));
    let page = evidence(&lab, &exporter);
    assert!(page.contains("port 443 is closed"), "{page}");
    assert!(page.contains("timed out (dropped by a firewall)"), "{page}");

    lab.firewall(&[]);
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m) == Some(0.0));
    assert_eq!(port_open(&m, 443), Some(1.0));
}

#[test]
fn rejected_80_fails_the_port_test_as_refused() {
    let lab = Lab::up(&spec(false));
    lab.firewall(&["-p tcp --dport 80 -j REJECT --reject-with tcp-reset"]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = lab.start(&write_config(
        dir.path(),
        &config("direct", HEALTHY_ENDPOINTS),
    ));
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(3.0));
    assert_eq!(port_open(&m, 80), Some(0.0));
    assert_eq!(port_open(&m, 443), Some(1.0));
    let page = evidence(&lab, &exporter);
    assert!(page.contains("port 80 is closed"), "{page}");
    assert!(page.contains("crl.digicert.test direct: refused"), "{page}");
}

#[test]
fn an_unresolvable_domain_fails_step_4_and_says_so() {
    let lab = Lab::up(&spec(false));
    let dir = tempfile::tempdir().unwrap();
    let endpoints = format!(
        "{HEALTHY_ENDPOINTS}\n      - {{host: missing.login.test, port: 443, purpose: registration}}"
    );
    let exporter = lab.start(&write_config(dir.path(), &config("direct", &endpoints)));
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(4.0));
    assert_eq!(port_open(&m, 443), Some(1.0), "the port test still passes");
    assert_eq!(
        up(&m, "missing.login.test", 443, "registration", "direct"),
        Some(0.0)
    );
    let page = evidence(&lab, &exporter);
    assert!(page.contains("1 of 5 required endpoints fail: missing.login.test:443 (registration) direct: does not resolve"), "{page}");
}

#[test]
fn a_chain_from_another_issuer_is_tls_interception_and_fails_step_4() {
    let lab = Lab::up(&spec(false));
    let dir = tempfile::tempdir().unwrap();
    let endpoints = format!(
        "{HEALTHY_ENDPOINTS}\n      - {{host: intercepted.login.test, port: 443, purpose: registration}}\n      - {{host: selfsigned.login.test, port: 443, purpose: registration}}"
    );
    let exporter = lab.start(&write_config(dir.path(), &config("direct", &endpoints)));
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());
    assert_eq!(failing_step(&m), Some(4.0));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_endpoint_tls_intercepted{host="intercepted.login.test"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_endpoint_tls_intercepted{host="selfsigned.login.test"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_endpoint_tls_intercepted{host="login.test"}"#
        ),
        Some(0.0)
    );
    let page = evidence(&lab, &exporter);
    assert!(
        page.contains(
            "TLS intercepted: the certificate is issued by &quot;Contoso TLS Inspection&quot;"
        ),
        "{page}"
    );
}

#[test]
fn with_direct_egress_blocked_the_proxy_route_keeps_steps_3_and_4_passing() {
    let lab = Lab::up(&spec(true));
    // Root (the exporter) may not leave directly; tinyproxy runs as nobody and may.
    lab.firewall(&[
        "-p tcp --dport 443 -m owner --uid-owner 0 -j DROP",
        "-p tcp --dport 80 -m owner --uid-owner 0 -j DROP",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let proxy = lab.proxy_url.clone().unwrap();
    let endpoints = format!(
        "{HEALTHY_ENDPOINTS}\n      - {{host: intercepted.login.test, port: 443, purpose: registration}}"
    );
    let exporter = lab.start(&write_config(dir.path(), &config(&proxy, &endpoints)));
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m).is_some());

    assert_eq!(
        up(&m, "login.test", 443, "registration", "direct"),
        Some(0.0)
    );
    assert_eq!(
        up(&m, "login.test", 443, "registration", "proxy"),
        Some(1.0)
    );
    assert_eq!(
        up(&m, "crl.digicert.test", 80, "certificates", "proxy"),
        Some(1.0)
    );
    assert_eq!(port_open(&m, 443), Some(1.0));
    assert_eq!(port_open(&m, 80), Some(1.0));
    assert!(m.contains(r#"phase="proxy_connect",port="443",purpose="service",route="proxy"}"#));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_endpoint_tls_intercepted{host="intercepted.login.test"}"#
        ),
        Some(1.0),
        "the chain is judged through the tunnel too"
    );
    assert_eq!(
        failing_step(&m),
        Some(4.0),
        "only the intercepted endpoint fails"
    );

    lab.proxy(false);
    let m = lab.wait_for_metrics(&exporter, |m| failing_step(m) == Some(3.0));
    assert_eq!(
        up(&m, "login.test", 443, "registration", "proxy"),
        Some(0.0)
    );
}
