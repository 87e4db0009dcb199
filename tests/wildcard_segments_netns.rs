//! Steps 7-10 of a wildcard web app end to end: Graph (the Graph-shaped server) lists the
//! app's `webApplicationSegment`s, in the shape of Microsoft's example answer
//! (tests/graph_server/fixtures/webapplicationsegment-list.json), and the segment hosts in a
//! network namespace answer or refuse (iptables REJECT). The app is judged by all of them.

mod common;

use common::{Lab, sample, write_config};
use serde_json::json;

fn web_segment(id: &str, internal: &str, external: &str) -> serde_json::Value {
    json!({"externalUrl": external, "internalUrl": internal, "alternateUrl": "", "id": id})
}

fn wildcard_app(id: &str, name: &str, segments: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "displayName": name, "connectorGroupId": "g1",
           "onPremisesPublishing": {"internalUrl": "http://*.hr.test/",
                                    "externalUrl": "https://*.hr-contoso.msappproxy.net/",
                                    "applicationServerTimeout": "default",
                                    "isOnPremPublishingEnabled": true},
           "webApplicationSegments": segments})
}

#[test]
fn a_wildcard_apps_segment_hosts_that_answer_and_refuse_decide_its_steps_7_to_9() {
    let lab = Lab::up(&json!({
        "hosts": {"payroll.hr.test": "127.0.0.91", "refused.hr.test": "127.0.0.92"},
        "servers": [
            {"ip": "127.0.0.91", "port": 80, "kind": "http"},
            {"ip": "127.0.0.92", "port": 80, "kind": "http"}
        ],
        "proxy": null
    }));
    lab.firewall(&["-p tcp -d 127.0.0.92 --dport 80 -j REJECT --reject-with tcp-reset"]);
    let tenant = json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": "s3cret",
        "groups": [{"id": "g1", "name": "Default", "isDefault": true, "connectorGroupType": "applicationProxy"}],
        "connectors": [{"id": "c1", "machineName": "CONN-01", "status": "active", "memberOf": ["g1"]}],
        "applications": [
            wildcard_app("w1", "hr-healthy", json!([
                web_segment("s1", "http://payroll.hr.test/", "https://payroll.hr-contoso.msappproxy.net/")
            ])),
            wildcard_app("w2", "hr-broken", json!([
                web_segment("s2", "http://payroll.hr.test/", "https://payroll.hr-contoso.msappproxy.net/"),
                web_segment("s3", "http://refused.hr.test/", "https://refused.hr-contoso.msappproxy.net/")
            ])),
            wildcard_app("w3", "hr-none", json!([]))
        ]
    });
    let graph = common::GraphServer::start_in(&lab.netns, &tenant, 100);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client_secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let config = format!(
        "tenant_id: t-id
inventory:
  refresh_interval: 1m
  graph:
    client_id: c-id
    auth: client_secret
    client_secret_file: {secret}
    graph_url: {url}
    login_url: {url}
connector:
  machine_name: CONN-01
  proxy: direct
probes:
  interval: 2s
  timeout: 1s
  endpoints:
    catalog: none
  external:
    enabled: false
  backend:
    interval: 1s
",
        secret = secret.display(),
        url = graph.url,
    );
    let exporter = lab.start(&write_config(dir.path(), &config));
    let value = |m: &str, metric: &str, app: &str| {
        sample(
            m,
            &format!("{metric}{{app=\"{app}\",connector_group=\"Default\"}}"),
        )
    };
    let m = lab.wait_for_metrics(&exporter, |m| {
        value(m, "appproxy_backend_up", "hr-broken").is_some()
            && value(m, "appproxy_backend_up", "hr-healthy").is_some()
    });
    assert_eq!(
        value(&m, "appproxy_flow_failing_step", "hr-healthy"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_backend_up", "hr-healthy"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_flow_failing_step", "hr-broken"),
        Some(8.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_backend_up", "hr-broken"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        m.lines()
            .filter(|l| l.contains(r#"app="hr-broken""#) && l.starts_with("appproxy_backend_up"))
            .count(),
        1,
        "one app's series, whatever its segments"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("appproxy_backend_failure_info{")
                && l.contains(r#"app="hr-broken""#)
                && l.contains(r#"phase="connect""#)),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_flow_failing_step", "hr-none"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_backend_up", "hr-none"),
        None,
        "not evaluated: no series"
    );

    let body = lab.netns.get(exporter.address, "/api/v1/diagnosis").1;
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    let app = |name: &str| {
        document["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["app"] == name)
            .unwrap_or_else(|| panic!("{name} not in {body}"))
            .clone()
    };
    let step = |a: &serde_json::Value, n: u64| {
        a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == n)
            .unwrap()
            .clone()
    };
    let broken = app("hr-broken");
    let evidence = step(&broken, 8)["evidence"].as_str().unwrap().to_string();
    assert!(evidence.contains("refused.hr.test"), "{evidence}");
    assert!(
        !evidence.contains("payroll.hr.test"),
        "the healthy host is not blamed: {evidence}"
    );
    assert_eq!(step(&broken, 7)["state"], "pass", "payroll's page loaded");
    let shown: Vec<(String, bool)> = broken["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["url"].as_str().unwrap().to_string(),
                s["up"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("http://payroll.hr.test/".to_string(), true),
            ("http://refused.hr.test/".to_string(), false)
        ]
    );
    let none = step(&app("hr-none"), 7);
    assert_eq!(none["state"], "not_evaluated");
    assert!(
        none["evidence"]
            .as_str()
            .unwrap()
            .contains("Graph lists no segment"),
        "{none}"
    );
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(
        page.contains("Segments (steps 7-9 judge every one)"),
        "the page lists them"
    );
    assert!(page.contains("http://refused.hr.test/"));
}
