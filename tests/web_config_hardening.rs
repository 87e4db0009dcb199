//! The web config under attack or mid-write: a file rewritten without its users, and a flood
//! of wrong passwords. Each test failed before its fix.

mod common;

use std::sync::Arc;
use std::time::Duration;

use appproxy_exporter::config;
use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::http::webconfig::WebConfigFile;
use appproxy_exporter::http::{self, WebOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use tower::ServiceExt;

fn users(dir: &std::path::Path, password: &str, cost: u32) -> std::path::PathBuf {
    let hash = bcrypt::hash(password, cost).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    web
}

/// A file that says nothing of users (a comment a tool writes first, or only
/// `http_server_config:`) once turned basic auth off at the next request: every rewrite by a
/// configuration manager opened the exporter for a moment. Dropping authentication needs a
/// restart; the change is refused and logged. An emptied file (a write in progress) was
/// refused already, and still is.
#[test]
fn a_web_config_rewritten_without_its_users_keeps_basic_auth_on() {
    let dir = tempfile::tempdir().unwrap();
    let web = users(dir.path(), "s3cret", 4);
    let config = common::write_config(dir.path(), common::THREE_APPS);
    let exporter = common::start(&[
        &format!("--config.file={}", config.display()),
        &format!("--web.config.file={}", web.display()),
    ]);
    assert_eq!(common::get(exporter.address, "/metrics").0, 401);
    for text in [
        "",
        "# managed by configuration management; do not edit\n",
        "http_server_config:\n",
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    ] {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&web, text).unwrap();
        assert_eq!(
            common::get(exporter.address, "/metrics").0,
            401,
            "still locked after {text:?}"
        );
    }
    let refusals: Vec<String> = exporter
        .log
        .iter()
        .take(50)
        .filter(|line| line.contains("not applied"))
        .take(2)
        .collect();
    assert!(
        refusals.len() == 2
            && refusals[0].contains("empty")
            && refusals[1].contains("basic auth cannot be turned off"),
        "the log says each change is not applied, and why: {refusals:#?}"
    );
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Wrong passwords cost a bcrypt check each, and were checked before the request limit
/// counted them: a flood of them was never answered 503 however long its checks queued.
/// Now a request waiting for its check holds its slot like any other.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_being_checked_holds_a_request_slot() {
    let dir = tempfile::tempdir().unwrap();
    let web = users(dir.path(), "s3cret", 12);
    let path = common::write_config(dir.path(), common::THREE_APPS);
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    let options = WebOptions {
        max_requests: 1,
        web_config: Some(Arc::new(WebConfigFile::open(&web).unwrap())),
        ..WebOptions::default()
    };
    let router = http::router_with(Arc::clone(&exporter), &options);
    let request = |authorization: String| {
        Request::builder()
            .uri("/config")
            .header("authorization", authorization)
            .body(Body::empty())
            .unwrap()
    };
    let checking = tokio::spawn(
        router
            .clone()
            .oneshot(request(basic("prometheus", "guess"))),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = router
        .clone()
        .oneshot(request(basic("prometheus", "another-guess")))
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    let first = checking.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
}
