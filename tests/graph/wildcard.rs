//! Wildcard web apps judged by the segments Graph lists for them (`webApplicationSegment`):
//! read only for wildcard apps, in the same batches as the per-app reads, each segment's
//! internal URL requested for steps 7-10, and `probes.backend.wildcard_hosts` overriding them.

use super::*;

/// Microsoft's example list answer (tests/graph_server/fixtures/webapplicationsegment-list.json,
/// websegmentconfiguration-list-applicationsegments.md; SOURCES.md).
fn documented_segments() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/graph_server/fixtures/webapplicationsegment-list.json"
    );
    let answer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    answer["value"].clone()
}

fn wildcard(id: &str, name: &str, segments: Option<serde_json::Value>) -> serde_json::Value {
    let mut app = json!({"id": id, "displayName": name, "connectorGroupId": "g1",
        "onPremisesPublishing": {"internalUrl": "http://*.corp.example/", "externalUrl": "https://*.contoso.com/",
                                 "applicationServerTimeout": "default"}});
    if let Some(segments) = segments {
        app["webApplicationSegments"] = segments;
    }
    app
}

fn tenant_with(apps: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": SECRET,
        "groups": [{"id": "g1", "name": "Default", "isDefault": true, "connectorGroupType": "applicationProxy"}],
        "connectors": [{"id": "c1", "machineName": "CONN-01", "status": "active", "memberOf": ["g1"]}],
        "applications": apps
    })
}

/// A backend that answers every request `200 OK`, on loopback.
async fn answering_backend() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 2048];
                let _ = socket.read(&mut buffer).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    address
}

const BACKENDS: &str = "probes:
  timeout: 2s
  endpoints:
    catalog: none
  external:
    enabled: false
  backend:
    wildcard_hosts:
      - app: overridden
        host: reports.corp.example
";

fn diagnosed_app<'a>(diagnosis: &'a serde_json::Value, app: &str) -> &'a serde_json::Value {
    diagnosis["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == app)
        .unwrap_or_else(|| panic!("{app} is not in the diagnosis"))
}

fn step(app: &serde_json::Value, number: u64) -> &serde_json::Value {
    app["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == number)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_app_is_requested_at_each_segment_host_and_fails_naming_the_one_that_refuses() {
    let up = answering_backend().await;
    let segments = |hosts: &[String]| {
        json!(hosts
            .iter()
            .map(|h| json!({"internalUrl": h, "externalUrl": "https://x.contoso.com/", "alternateUrl": ""}))
            .collect::<Vec<_>>())
    };
    let healthy = format!("http://{up}/");
    let server = GraphServer::start(
        &tenant_with(vec![
            wildcard(
                "w1",
                "hr-apps",
                Some(segments(&[healthy.clone(), "http://127.0.0.1:1/".into()])),
            ),
            wildcard(
                "w2",
                "all-up",
                Some(segments(std::slice::from_ref(&healthy))),
            ),
            // wildcard_hosts names a host, which is requested instead of the healthy segment:
            // reports.corp.example does not resolve (.example is reserved, RFC 2606).
            wildcard(
                "w3",
                "overridden",
                Some(segments(std::slice::from_ref(&healthy))),
            ),
            wildcard("w4", "neither", Some(json!([]))),
        ]),
        100,
    );
    let mut harness = Harness::new(|dir| graph_config(dir, &server, BACKENDS));
    let m = harness.round_with_backends().await;

    assert_eq!(
        failing_step(&m, "Default", "hr-apps"),
        Some(8.0),
        "one segment refuses: the app fails step 8"
    );
    assert_eq!(failing_step(&m, "Default", "all-up"), Some(0.0), "{m}");
    assert_eq!(
        m.lines()
            .filter(|l| l.starts_with("appproxy_backend_up{") && l.contains(r#"app="hr-apps""#))
            .count(),
        1,
        "a wildcard app keeps the series of one app"
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_backend_up{app="all-up",connector_group="Default"}"#
        ),
        Some(1.0)
    );
    assert_eq!(failing_step(&m, "Default", "neither"), Some(0.0));

    let diagnosis: serde_json::Value =
        serde_json::from_str(&harness.get("/api/v1/diagnosis").await).unwrap();
    let hr = diagnosed_app(&diagnosis, "hr-apps");
    let evidence = step(hr, 8)["evidence"].as_str().unwrap();
    assert!(evidence.contains("127.0.0.1:1"), "{evidence}");
    assert!(
        !evidence.contains(&up.to_string()),
        "the healthy host is not blamed: {evidence}"
    );
    let shown: Vec<(&str, bool)> = hr["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["url"].as_str().unwrap(), s["up"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        shown,
        [(healthy.as_str(), true), ("http://127.0.0.1:1/", false)]
    );

    let overridden = diagnosed_app(&diagnosis, "overridden");
    assert!(overridden.get("segments").is_none(), "{overridden}");
    assert_eq!(
        overridden["failing_step"], 8,
        "reports.corp.example is requested"
    );
    assert!(
        step(overridden, 8)["evidence"]
            .as_str()
            .unwrap()
            .contains("reports.corp.example")
    );

    let neither = step(diagnosed_app(&diagnosis, "neither"), 7);
    assert_eq!(neither["state"], "not_evaluated");
    let why = neither["evidence"].as_str().unwrap();
    assert!(
        why.contains("is a wildcard") && why.contains("Graph lists no segment"),
        "{why}"
    );

    let page = harness.get("/").await;
    assert!(
        page.contains("Segments (steps 7-9 judge every one)"),
        "the page lists them"
    );
    assert!(page.contains("http://127.0.0.1:1/"));
}

/// The documented segments load (their hosts are on the internet, so nothing is requested
/// here: only the inventory is read), and only wildcard apps cost a segment read, one request
/// inside a batch each.
#[tokio::test(flavor = "multi_thread")]
async fn microsofts_documented_segments_load_and_cost_one_batched_request_a_wildcard_app() {
    let mut apps: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            wildcard(
                &format!("w{i}"),
                &format!("wild{i}"),
                Some(documented_segments()),
            )
        })
        .collect();
    apps.push(
        json!({"id": "c1", "displayName": "concrete", "connectorGroupId": "g1",
        "onPremisesPublishing": {"internalUrl": "http://127.0.0.1:1/"}}),
    );
    let server = GraphServer::start(&tenant_with(apps), 100);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    let stats = server.stats();
    assert_eq!(
        stats["by_route"]["applications/webApplicationSegments"].as_u64(),
        Some(3),
        "one segment read a wildcard app, none for the concrete app: {stats}"
    );
    // token, groups, connectors, the group's members and apps, one batch of the four per-app
    // reads (the documented group list has no names), then one batch of the three segment
    // reads: N wildcard apps cost N requests inside ceil(N / 20) batches.
    assert_eq!(
        stats["requests"].as_u64(),
        Some(1 + 1 + 1 + 2 + 1 + 1),
        "{stats}"
    );
    assert_eq!(stats["inner_requests"].as_u64(), Some(4 + 3), "{stats}");
    assert!(
        graph_requests(&m, "applications/webApplicationSegments", "200") >= 3.0,
        "{m}"
    );
}
