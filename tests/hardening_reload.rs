//! `POST /-/reload` as a lever: a web page in the operator's browser posting to it, two
//! reloads that finish out of order, an invalid value that holds a password. Each test failed
//! before its fix.

mod common;

use std::sync::Arc;

use appproxy_exporter::config;
use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::http;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::{THREE_APPS, write_config};

async fn post_reload(exporter: &Arc<Exporter>, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let router = http::router(Arc::clone(exporter), "/metrics");
    let mut request = Request::builder().method("POST").uri("/-/reload");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A static inventory of `apps` apps: a file that takes a while to read.
fn large_config(apps: usize) -> String {
    let mut text = String::from("inventory:\n  static:\n    apps:\n");
    for i in 0..apps {
        text.push_str(&format!(
            "      - name: app-{i}\n        internal_url: https://app-{i}.corp.example/\n"
        ));
    }
    text
}

/// A page on any site can make the operator's browser POST to the exporter (a "simple"
/// request: no preflight, text/plain or a form). The browser says where the page came from
/// (`Origin`, `Sec-Fetch-Site`): such a reload is refused. Tools (curl, promtool) send
/// neither, and the exporter's own origin is fine.
#[tokio::test]
async fn a_reload_posted_by_another_site_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), THREE_APPS);
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    let host = ("host", "conn-01.corp.example:9869");
    for foreign in [
        vec![
            host,
            ("origin", "https://evil.example"),
            ("content-type", "text/plain"),
        ],
        vec![host, ("origin", "null")],
        vec![host, ("origin", "http://conn-01.corp.example:9870")],
        vec![host, ("sec-fetch-site", "cross-site")],
        vec![host, ("sec-fetch-site", "same-site")],
    ] {
        let (status, body) = post_reload(&exporter, &foreign).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{foreign:?}: {body}");
        assert!(body.contains("cross-site"), "{body}");
    }
    for allowed in [
        vec![host],
        vec![host, ("origin", "http://conn-01.corp.example:9869")],
        vec![host, ("sec-fetch-site", "same-origin")],
        vec![host, ("sec-fetch-site", "none")],
    ] {
        let (status, body) = post_reload(&exporter, &allowed).await;
        assert_eq!(status, StatusCode::OK, "{allowed:?}: {body}");
    }
}

/// `--web.enable-lifecycle=false` turns POST /-/reload off, as in Prometheus; SIGHUP stays.
#[tokio::test]
async fn without_the_lifecycle_api_a_reload_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), THREE_APPS);
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    let options = http::WebOptions {
        enable_lifecycle: false,
        ..http::WebOptions::default()
    };
    let router = http::router_with(Arc::clone(&exporter), &options);
    let request = Request::builder()
        .method("POST")
        .uri("/-/reload")
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Lifecycle API is not enabled.\n");
}

/// A reload of a large file and one of a small file that follows it: the one that finished
/// last was applied, so the slow, older file stayed in force though the newer one had loaded.
#[test]
fn a_slow_reload_that_finishes_last_does_not_bring_back_the_older_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), THREE_APPS);
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    write_config(dir.path(), &large_config(20_000));
    let slow = {
        let exporter = Arc::clone(&exporter);
        std::thread::spawn(move || exporter.reload())
    };
    // The slow reload has read its file by now, and parses it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    write_config(dir.path(), THREE_APPS);
    let fast = {
        let exporter = Arc::clone(&exporter);
        std::thread::spawn(move || exporter.reload())
    };
    assert!(fast.join().unwrap().is_ok());
    assert!(slow.join().unwrap().is_ok());
    let apps = exporter
        .config()
        .settings
        .inventory
        .static_inventory
        .as_ref()
        .map_or(0, |s| s.apps.len());
    assert_eq!(apps, 3, "the file as it is now is in force");
}

/// Twenty reloads asked for at once read the file once or twice, not twenty times: each was a
/// whole reading and a new configuration (and, before, a new Graph source) for the asking.
#[test]
fn reloads_asked_for_together_share_one_reading_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &large_config(20_000));
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    let before = exporter.generation();
    let reloads: Vec<_> = (0..20)
        .map(|_| {
            let exporter = Arc::clone(&exporter);
            std::thread::spawn(move || exporter.reload())
        })
        .collect();
    for reload in reloads {
        assert!(reload.join().unwrap().is_ok());
    }
    let readings = exporter.generation() - before;
    assert!(readings <= 2, "{readings} readings for 20 reloads");
}

/// A proxy URL with a password and a bad port: the reload's answer and the log once repeated
/// the value whole, password included.
#[test]
fn a_password_in_an_invalid_value_is_neither_answered_nor_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), THREE_APPS);
    let mut exporter = common::start(&[&format!("--config.file={}", path.display())]);
    write_config(
        dir.path(),
        &format!("{THREE_APPS}connector:\n  proxy: http://svc:hunter2@proxy.corp.example:99999/\n"),
    );
    let (status, body) = common::request(exporter.address, "POST", "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("connector.proxy"), "{body}");
    assert!(!body.contains("hunter2"), "{body}");
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    let log: Vec<String> = exporter.log.iter().collect();
    assert!(log.iter().any(|l| l.contains("reload failed")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("hunter2")), "{log:#?}");
}
