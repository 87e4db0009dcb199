//! Step 8 for Private Access apps end to end: Graph (the Graph-shaped server) lists the apps'
//! segments, and segment hosts in a network namespace answer, refuse (iptables REJECT) and
//! drop (iptables DROP) on the configured ports; a /31 range has one address that answers.

mod common;

use common::{Lab, sample, write_config};
use serde_json::json;

fn segment(host: &str, kind: &str, ports: &[&str], protocol: &str) -> serde_json::Value {
    // The shape of Microsoft's example answers (fixtures/ipapplicationsegment-get.json).
    json!({"destinationHost": host, "destinationType": kind, "port": 0, "ports": ports,
           "protocol": protocol, "id": format!("seg-{host}")})
}

fn private_app(id: &str, name: &str, segments: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "displayName": name, "connectorGroupId": "g1",
           "onPremisesPublishing": {"applicationType": "nonwebapp", "isOnPremPublishingEnabled": true,
                                    "internalUrl": format!("api://{id}/")},
           "ipApplicationSegments": segments})
}

#[test]
fn segment_hosts_that_answer_refuse_and_drop_decide_step_8() {
    let lab = Lab::up(&json!({
        "hosts": {"answer.segment.test": "127.0.0.81", "refuse.segment.test": "127.0.0.82",
                  "drop.segment.test": "127.0.0.83"},
        "servers": [
            {"ip": "127.0.0.81", "port": 22, "kind": "tcp"},
            {"ip": "127.0.0.81", "port": 3389, "kind": "tcp"},
            {"ip": "127.0.0.82", "port": 22, "kind": "tcp"},
            {"ip": "127.0.0.83", "port": 22, "kind": "tcp"},
            {"ip": "127.0.0.84", "port": 443, "kind": "tcp"}
        ],
        "proxy": null
    }));
    lab.firewall(&[
        "-p tcp -d 127.0.0.82 --dport 22 -j REJECT --reject-with tcp-reset",
        "-p tcp -d 127.0.0.83 --dport 22 -j DROP",
    ]);
    let tenant = json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": "s3cret",
        "groups": [{"id": "g1", "name": "Default", "isDefault": true, "connectorGroupType": "applicationProxy"}],
        "connectors": [{"id": "c1", "machineName": "CONN-01", "status": "active", "memberOf": ["g1"]}],
        "applications": [
            private_app("a1", "pa-healthy", json!([
                segment("answer.segment.test", "fqdn", &["22-22", "3389-3389"], "tcp"),
                // 127.0.0.84 answers, 127.0.0.85 refuses: a range passes on one answer.
                segment("127.0.0.84/31", "ipRangeCidr", &["443"], "tcp")
            ])),
            private_app("a2", "pa-broken", json!([
                segment("answer.segment.test", "fqdn", &["22-22"], "tcp"),
                segment("refuse.segment.test", "fqdn", &["22-22"], "tcp"),
                segment("127.0.0.83", "ipAddress", &["22"], "tcp")
            ])),
            private_app("a3", "pa-udp", json!([segment("answer.segment.test", "fqdn", &["53"], "udp")]))
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
  segments:
    max_addresses: 4
    max_ports: 4
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
        value(m, "appproxy_segment_targets", "pa-broken").is_some()
            && value(m, "appproxy_segment_targets", "pa-healthy").is_some()
    });
    assert_eq!(
        value(&m, "appproxy_flow_failing_step", "pa-healthy"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_segment_targets", "pa-healthy"),
        Some(4.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_segment_failed_targets", "pa-healthy"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_flow_failing_step", "pa-broken"),
        Some(8.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_segment_targets", "pa-broken"),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_segment_failed_targets", "pa-broken"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "appproxy_flow_failing_step", "pa-udp"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(value(&m, "appproxy_segment_targets", "pa-udp"), None, "{m}");
    assert!(
        m.contains(r#"appproxy_flow_failing_step_info{app="pa-broken",connector_group="Default",step="8",step_name="internal_network"} 1"#),
        "{m}"
    );

    let (state, evidence) = lab.diagnosed(&exporter, "pa-broken", 8);
    assert_eq!(state, "fail");
    assert!(
        evidence.contains("2 of 3 segment address:port pairs"),
        "{evidence}"
    );
    assert!(
        evidence.contains("refuse.segment.test:22 refused"),
        "{evidence}"
    );
    assert!(evidence.contains("127.0.0.83:22 timed out"), "{evidence}");
    assert!(!evidence.contains("answer.segment.test"), "{evidence}");
    let (state, evidence) = lab.diagnosed(&exporter, "pa-healthy", 8);
    assert_eq!(state, "pass");
    assert!(
        evidence.contains("answer.segment.test:3389 connected"),
        "{evidence}"
    );
    assert!(evidence.contains("127.0.0.85:443 refused"), "{evidence}");
    for (app, step) in [("pa-healthy", 7), ("pa-healthy", 9), ("pa-udp", 8)] {
        let (state, evidence) = lab.diagnosed(&exporter, app, step);
        assert_eq!(state, "not_evaluated", "{app} step {step}: {evidence}");
    }
    let (_, evidence) = lab.diagnosed(&exporter, "pa-udp", 8);
    assert!(
        evidence.contains("UDP not evaluated: UDP has no handshake"),
        "{evidence}"
    );
}
