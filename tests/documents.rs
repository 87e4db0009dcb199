//! The page and the diagnosis as the web server sends them, a chunk of apps at a time: the
//! same document `diagnose` builds whole, a page of apps failing first, and no more of them
//! being sent at once than the exporter allows.

mod common;

use std::sync::Arc;

use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::{config, diagnosis, http, prober};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::write_config;

/// `apps` apps, every other one in a group that does not exist (failing step 1).
fn apps(apps: usize) -> String {
    let mut text = String::from(
        "probes:\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\nconnector:\n  machine_name: monitoring-01\n  proxy: direct\ninventory:\n  static:\n    connector_groups:\n      - name: Default\n        connectors:\n          - machine_name: monitoring-01\n            status: active\n    apps:\n",
    );
    for i in 0..apps {
        let group = if i % 2 == 0 { "Default" } else { "Gone" };
        text.push_str(&format!(
            "      - name: app-{i:04}\n        connector_group: {group}\n        internal_url: https://app-{i:04}.corp.example/\n"
        ));
    }
    text
}

async fn exporter_with(dir: &std::path::Path, text: &str) -> Arc<Exporter> {
    let path = write_config(dir, text);
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    let snapshot = prober::Prober::new(Arc::clone(&exporter)).round().await;
    exporter.publish(snapshot);
    exporter
}

fn router(exporter: &Arc<Exporter>) -> axum::Router {
    http::router(Arc::clone(exporter), "/metrics")
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sent app by app, the JSON is the document `diagnose --output json` prints, all of it.
#[tokio::test]
async fn the_diagnosis_sent_in_chunks_is_the_whole_document() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_with(dir.path(), &apps(600)).await;
    let (status, body) = get(&router(&exporter), "/api/v1/diagnosis").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.len() > 256 * 1024, "large enough to take many chunks");
    let mut sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    let built = diagnosis::build(
        &exporter.store.latest(),
        exporter.machine_name(),
        exporter.config().to_string(),
        None,
        "/runbooks",
    );
    let mut built = serde_json::to_value(&built).unwrap();
    for doc in [&mut sent, &mut built] {
        doc["generated_at"] = serde_json::Value::Null;
    }
    assert_eq!(sent, built);
}

/// The page shows 100 apps by default, failing ones first, with links to the other pages;
/// `?page=` and `?limit=` choose which.
#[tokio::test]
async fn the_page_shows_a_page_of_apps_failing_first() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_with(dir.path(), &apps(250)).await;
    let router = router(&exporter);
    let cards = |page: &str| page.matches("<article class=\"app").count();
    let (status, page) = get(&router, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cards(&page), 100);
    assert!(page.contains("125 of 250 apps fail a step"), "{page}");
    assert!(page.contains("Apps 1-100 of 250, failing first (page 1 of 3)"));
    assert!(page.contains(r#"href="/?page=2&amp;limit=100">next ›</a>"#));
    assert!(!page.contains("data-app=\"app-0000\""), "a passing app");
    assert!(page.contains("data-app=\"app-0001\""), "a failing one");
    assert!(page.ends_with("</html>\n"));

    let (_, last) = get(&router, "/?page=3&limit=100").await;
    assert_eq!(cards(&last), 50);
    assert!(last.contains("data-app=\"app-0248\""));
    assert!(last.contains("‹ previous"));
    let (_, all) = get(&router, "/?limit=1000").await;
    assert_eq!(cards(&all), 250);
    let (status, _) = get(&router, "/?limit=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Four documents being sent at once is the most: a fifth is answered 503 until one ends.
#[tokio::test]
async fn no_more_documents_are_sent_at_once_than_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_with(dir.path(), &apps(10)).await;
    let router = router(&exporter);
    let request = |path: &str| Request::builder().uri(path).body(Body::empty()).unwrap();
    let mut unread = Vec::new();
    for path in ["/", "/api/v1/diagnosis", "/", "/api/v1/diagnosis"] {
        let response = router.clone().oneshot(request(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        unread.push(response);
    }
    let (status, body) = get(&router, "/api/v1/diagnosis").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("being sent already"), "{body}");
    assert_eq!(get(&router, "/metrics").await.0, StatusCode::OK);
    let first = unread.remove(0);
    first.into_body().collect().await.unwrap();
    assert_eq!(get(&router, "/").await.0, StatusCode::OK);
}
