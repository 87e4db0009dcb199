//! Steps 7, 8 and 9 end to end: real backends in a network namespace (fast, slow near the
//! scaled timeout, slower than it, 503, 401 Negotiate, self-signed TLS, unresolvable, dropped,
//! trickling headers, a huge body, one that never answers), with App Proxy's timeouts scaled
//! down to 2 s (Default) and 4 s (Long) so the test runs in seconds.

mod common;

use common::{Lab, sample, write_config};
use serde_json::json;

fn spec() -> serde_json::Value {
    json!({
        "hosts": {
            "fast.backend.test": "127.0.0.51", "slow.backend.test": "127.0.0.52", "slower.backend.test": "127.0.0.53",
            "error.backend.test": "127.0.0.54", "negotiate.backend.test": "127.0.0.55", "selfsigned.backend.test": "127.0.0.56",
            "dropped.backend.test": "127.0.0.57", "trickle.backend.test": "127.0.0.58", "huge.backend.test": "127.0.0.59",
            "hang.backend.test": "127.0.0.60"
        },
        "servers": [
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.52", "port": 80, "kind": "http", "delay": 1.7},
            {"ip": "127.0.0.53", "port": 80, "kind": "http", "delay": 2.2},
            {"ip": "127.0.0.54", "port": 80, "kind": "http", "status": 503},
            {"ip": "127.0.0.55", "port": 80, "kind": "http", "status": 401, "headers": {"WWW-Authenticate": "Negotiate"}},
            {"ip": "127.0.0.56", "port": 443, "kind": "tls", "issuer": "self-signed", "cn": "selfsigned.backend.test"},
            {"ip": "127.0.0.57", "port": 80, "kind": "http"},
            {"ip": "127.0.0.58", "port": 80, "kind": "http", "trickle": 0.015},
            {"ip": "127.0.0.59", "port": 80, "kind": "http", "body_bytes": 50000000},
            {"ip": "127.0.0.60", "port": 80, "kind": "tcp"}
        ]
    })
}

/// (app, internal URL, timeout, certificate validation)
const APPS: &[(&str, &str, &str, bool)] = &[
    ("fast", "http://fast.backend.test/", "default", true),
    ("slow-default", "http://slow.backend.test/", "default", true),
    ("slow-long", "http://slow.backend.test/", "long", true),
    ("slower", "http://slower.backend.test/", "default", true),
    ("error", "http://error.backend.test/", "default", true),
    (
        "negotiate",
        "http://negotiate.backend.test/",
        "default",
        true,
    ),
    (
        "selfsigned-strict",
        "https://selfsigned.backend.test/",
        "default",
        true,
    ),
    (
        "selfsigned-lax",
        "https://selfsigned.backend.test/",
        "default",
        false,
    ),
    ("missing", "http://missing.backend.test/", "default", true),
    ("dropped", "http://dropped.backend.test/", "default", true),
    ("trickle", "http://trickle.backend.test/", "long", true),
    ("huge", "http://huge.backend.test/", "default", true),
    ("hang", "http://hang.backend.test/", "long", true),
];

fn config() -> String {
    let apps: String = APPS
        .iter()
        .map(|(name, url, timeout, validate)| {
            format!("      - {{name: {name}, connector_group: Default, internal_url: \"{url}\", backend_timeout: {timeout}, backend_certificate_validation: {validate}}}\n")
        })
        .collect();
    format!(
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
{apps}probes:
  interval: 1s
  timeout: 1s
  endpoints:
    catalog: none
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
    timeout_risk_ratio: 0.8
# Every per-app series: the steps and phases below are checked one by one.
metrics:
  per_step_series: true
"
    )
}

fn value(m: &str, metric: &str, app: &str) -> Option<f64> {
    sample(
        m,
        &format!("{metric}{{app=\"{app}\",connector_group=\"Default\"}}"),
    )
}

fn failing(m: &str, app: &str) -> Option<f64> {
    value(m, "appproxy_flow_failing_step", app)
}

/// The value of the app's `appproxy_backend_failure_info` series for `phase`, whatever its
/// `code` (the HTTP status, when there was one; see [`failure_code`]).
fn failure_phase(m: &str, app: &str, phase: &str) -> Option<f64> {
    common::backend_failure(m, app, phase).map(|(_, value)| value)
}

/// The `code` label of the app's failure.
fn failure_code(m: &str, app: &str, phase: &str) -> Option<String> {
    common::backend_failure(m, app, phase).map(|(code, _)| code)
}

const EXPECTED: &[(&str, f64)] = &[
    ("fast", 0.0),
    ("slow-default", 9.0),
    ("slow-long", 0.0),
    ("slower", 9.0),
    ("error", 7.0),
    ("negotiate", 0.0),
    ("selfsigned-strict", 7.0),
    ("selfsigned-lax", 0.0),
    ("missing", 8.0),
    ("dropped", 8.0),
    ("trickle", 0.0),
    ("huge", 0.0),
    // Connected, and no answer: App Proxy's "Backend Timeout", not a network failure.
    ("hang", 9.0),
];

#[test]
fn each_backend_case_gets_its_step_phase_and_evidence() {
    let lab = Lab::up(&spec());
    lab.firewall(&["-p tcp -d 127.0.0.57 --dport 80 -j DROP"]);
    let dir = tempfile::tempdir().unwrap();
    let exporter = lab.start(&write_config(dir.path(), &config()));

    // The fast app keeps being measured while the hanging one waits out its 5 s deadline.
    let m = lab.wait_for_metrics(&exporter, |m| {
        value(m, "appproxy_backend_request_duration_seconds_count", "fast")
            .is_some_and(|n| n >= 3.0)
    });
    assert!(
        value(&m, "appproxy_backend_up", "hang").is_none(),
        "the hanging request is still in flight"
    );

    let m = lab.wait_for_metrics(&exporter, |m| {
        EXPECTED
            .iter()
            .all(|(app, step)| failing(m, app) == Some(*step))
    });

    // Step 7: loads, including the sign-in challenge; 5xx and TLS fail it.
    assert_eq!(
        value(&m, "appproxy_backend_http_status_code", "negotiate"),
        Some(401.0)
    );
    assert_eq!(value(&m, "appproxy_backend_up", "negotiate"), Some(1.0));
    // A failing answer's status stays, beside the failure's code (blackbox_exporter's
    // probe_http_status_code does the same); no answer, no status.
    assert_eq!(
        value(&m, "appproxy_backend_http_status_code", "error"),
        Some(503.0)
    );
    assert_eq!(
        value(&m, "appproxy_backend_http_status_code", "missing"),
        None
    );
    assert_eq!(failure_phase(&m, "error", "http"), Some(1.0));
    assert_eq!(failure_code(&m, "error", "http").as_deref(), Some("503"));
    assert_eq!(failure_code(&m, "missing", "resolve").as_deref(), Some(""));
    assert_eq!(failure_phase(&m, "selfsigned-strict", "tls"), Some(1.0));
    assert_eq!(
        value(&m, "appproxy_backend_up", "selfsigned-lax"),
        Some(1.0)
    );
    // Step 8: the network's failures, told apart; step 9: connected, never answered.
    assert_eq!(failure_phase(&m, "missing", "resolve"), Some(1.0));
    assert_eq!(failure_phase(&m, "dropped", "connect"), Some(1.0));
    assert_eq!(failure_phase(&m, "hang", "timeout"), Some(1.0));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_flow_step_ok{app="hang",connector_group="Default",step="8",step_name="internal_network"}"#
        ),
        Some(1.0),
        "the network is fine"
    );
    // Step 9: the same backend, judged by each app's own timeout.
    assert_eq!(
        value(&m, "appproxy_backend_timeout_seconds", "slow-default"),
        Some(2.0)
    );
    assert_eq!(
        value(&m, "appproxy_backend_timeout_seconds", "slow-long"),
        Some(4.0)
    );
    let slower = value(&m, "appproxy_backend_latency_ratio", "slower").unwrap();
    assert!(
        slower > 1.0,
        "a latency past the timeout is measured, not cut short: {slower}"
    );
    assert_eq!(value(&m, "appproxy_backend_up", "slower"), Some(1.0));
    // Trickled headers count until the head is whole (the latency App Proxy's timeout
    // measures); a huge body is read only up to its bound, timed apart.
    let processing = sample(&m, r#"appproxy_backend_phase_duration_seconds{app="trickle",connector_group="Default",phase="processing"}"#).unwrap();
    assert!(processing > 1.0, "{processing}");
    assert!(value(&m, "appproxy_backend_latency_ratio", "huge").unwrap() < 0.5);
    assert!(m.contains(r#"appproxy_backend_request_duration_seconds_bucket{app="slow-default",connector_group="Default",le="1.6"}"#), "buckets at the scaled 0.8 fraction");

    let page = lab.netns.get(exporter.address, "/").1;
    for words in [
        "HTTP 503",
        "TLS handshake failed",
        "does not resolve",
        "no answer within",
        "App Proxy shows such an app as &quot;Backend Timeout&quot;",
        "Set the app&#39;s Backend Application Timeout to Long",
    ] {
        assert!(page.contains(words), "missing {words:?} in the page");
    }
}

/// With `UseDefaultProxyForBackendRequests`, backend requests go through the connector's proxy:
/// direct to the backend is blocked here, so only that route can load the page.
#[test]
fn backend_requests_can_go_through_the_connectors_proxy() {
    let lab = Lab::up(&json!({
        "hosts": {"fast.backend.test": "127.0.0.51", "tls.backend.test": "127.0.0.61"},
        "servers": [
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.61", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tls.backend.test"}
        ],
        "proxy": {"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80]}
    }));
    lab.firewall(&[
        "-p tcp -d 127.0.0.51 -m owner --uid-owner 0 -j REJECT --reject-with tcp-reset",
        "-p tcp -d 127.0.0.61 -m owner --uid-owner 0 -j REJECT --reject-with tcp-reset",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let connector_file = dir.path().join("connector.exe.config");
    std::fs::write(
        &connector_file,
        "<configuration><system.net><defaultProxy><proxy proxyaddress=\"http://127.0.0.1:3128\"/></defaultProxy></system.net></configuration>",
    )
    .unwrap();
    let text = format!(
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
      - {{name: plain, connector_group: Default, internal_url: \"http://fast.backend.test/\"}}
      - {{name: tls, connector_group: Default, internal_url: \"https://tls.backend.test/\"}}
connector:
  service_config: {}
  updater_config: {}
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
  use_default_proxy_for_backend_requests: true
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    catalog: none
  backend:
    interval: 300ms
",
        connector_file.display(),
        connector_file.display()
    );
    let exporter = lab.start(&write_config(dir.path(), &text));
    let m = lab.wait_for_metrics(&exporter, |m| {
        value(m, "appproxy_backend_up", "plain") == Some(1.0)
            && value(m, "appproxy_backend_up", "tls") == Some(1.0)
    });
    assert_eq!(
        value(&m, "appproxy_backend_http_status_code", "plain"),
        Some(200.0)
    );
    assert_eq!(
        failing(&m, "tls"),
        Some(0.0),
        "TLS through the CONNECT tunnel, validated"
    );
}

/// The connector's bypass rules decide which backend requests skip its proxy, as .NET decides:
/// here the proxy cannot reach the backends (its account is blocked), so only the hosts the
/// rules name, and a name without a dot under `bypassonlocal`, load.
#[test]
fn backend_requests_skip_the_proxy_for_the_hosts_its_bypass_rules_name() {
    let lab = Lab::up(&json!({
        "hosts": {"fast.backend.test": "127.0.0.51", "intranet": "127.0.0.62", "other.backend.test": "127.0.0.63"},
        "servers": [
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.62", "port": 80, "kind": "http"},
            {"ip": "127.0.0.63", "port": 80, "kind": "http"}
        ],
        "proxy": {"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80]}
    }));
    // tinyproxy runs as nobody: it cannot reach the backends; this test's exporter (root) can.
    lab.firewall(&[
        "-p tcp -d 127.0.0.48/28 -m owner --uid-owner nobody -j REJECT --reject-with tcp-reset",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let connector_file = dir.path().join("connector.exe.config");
    std::fs::write(
        &connector_file,
        r#"<configuration><system.net><defaultProxy>
  <proxy proxyaddress="http://127.0.0.1:3128" bypassonlocal="true"/>
  <bypasslist><add address="FAST\.backend\.test"/></bypasslist>
</defaultProxy></system.net></configuration>"#,
    )
    .unwrap();
    let text = format!(
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
      - {{name: listed, connector_group: Default, internal_url: \"http://fast.backend.test/\"}}
      - {{name: local, connector_group: Default, internal_url: \"http://intranet/\"}}
      - {{name: proxied, connector_group: Default, internal_url: \"http://other.backend.test/\"}}
connector:
  service_config: {file}
  updater_config: {file}
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
  use_default_proxy_for_backend_requests: true
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    catalog: none
  backend:
    interval: 300ms
",
        file = connector_file.display()
    );
    let exporter = lab.start(&write_config(dir.path(), &text));
    let m = lab.wait_for_metrics(&exporter, |m| {
        ["listed", "local", "proxied"]
            .iter()
            .all(|app| value(m, "appproxy_backend_up", app).is_some())
    });
    assert_eq!(value(&m, "appproxy_backend_up", "listed"), Some(1.0), "{m}");
    assert_eq!(value(&m, "appproxy_backend_up", "local"), Some(1.0), "{m}");
    assert_eq!(
        value(&m, "appproxy_backend_up", "proxied"),
        Some(0.0),
        "a host no rule names goes through the proxy, which cannot reach it: {m}"
    );
}
