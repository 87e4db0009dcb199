//! The web flags Prometheus' own exporters have: `--web.route-prefix` and `--web.external-url`
//! (routes, page links and runbook links), `--web.max-requests`, repeated
//! `--web.listen-address`, `--web.systemd-socket` (with a socket passed the way systemd passes
//! it, by Debian's `systemd-socket-activate`) and `--version`.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::http::paths::{WebPaths, parse_external_url};
use appproxy_exporter::http::{self, WebOptions};
use appproxy_exporter::{config, prober};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::{THREE_APPS, write_config};

/// Probes nothing outside this machine.
const NOTHING_OUTSIDE: &str = "probes:\n  interval: 60s\n  endpoints:\n    catalog: none\n  external:\n    enabled: false\n  backend:\n    enabled: false\n";

async fn exporter_after_one_round(dir: &std::path::Path) -> Arc<Exporter> {
    let path = write_config(dir, THREE_APPS);
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    let snapshot = prober::Prober::new(Arc::clone(&exporter)).round().await;
    exporter.publish(snapshot);
    exporter
}

async fn get_path(router: &axum::Router, path: &str) -> (StatusCode, Option<String>, String) {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap_or("").to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        location,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn router_with_paths(exporter: &Arc<Exporter>, paths: WebPaths) -> axum::Router {
    let options = WebOptions {
        telemetry_path: "/metrics".into(),
        paths,
        ..WebOptions::default()
    };
    http::router_with(Arc::clone(exporter), &options)
}

#[tokio::test]
async fn with_an_external_url_every_route_lives_under_its_path_and_runbook_links_are_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_after_one_round(dir.path()).await;
    let external = parse_external_url("https://monitoring.example/appproxy/").unwrap();
    let router = router_with_paths(&exporter, WebPaths::new(Some(&external), None));

    for path in [
        "/appproxy/",
        "/appproxy",
        "/appproxy/metrics",
        "/appproxy/-/healthy",
        "/appproxy/-/ready",
        "/appproxy/config",
        "/appproxy/api/v1/diagnosis",
        "/appproxy/runbooks",
        "/appproxy/runbooks/port_test",
    ] {
        let (status, _, _) = get_path(&router, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    for path in ["/metrics", "/runbooks/port_test", "/config", "/-/healthy"] {
        let (status, _, _) = get_path(&router, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} outside the prefix");
    }
    let (status, location, _) = get_path(&router, "/").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location.as_deref(), Some("/appproxy/"));

    let (_, _, page) = get_path(&router, "/appproxy/").await;
    for link in [
        r#"href="/appproxy/metrics""#,
        r#"href="/appproxy/config""#,
        r#"href="/appproxy/-/healthy""#,
        r#"href="/appproxy/api/v1/diagnosis""#,
        r#"href="https://monitoring.example/appproxy/runbooks/connector_installed""#,
    ] {
        assert!(page.contains(link), "the page lacks {link}");
    }
    let (_, _, json) = get_path(&router, "/appproxy/api/v1/diagnosis").await;
    assert!(
        json.contains(
            r#""runbook":"https://monitoring.example/appproxy/runbooks/connector_installed""#
        ),
        "{json}"
    );
    let (_, _, runbook) = get_path(&router, "/appproxy/runbooks/port_test").await;
    assert!(
        runbook.contains(r#"href="/appproxy/runbooks""#),
        "{runbook}"
    );
}

#[tokio::test]
async fn a_route_prefix_of_its_own_serves_there_while_links_follow_the_external_url() {
    // A reverse proxy publishes https://monitoring.example/appproxy/ and strips the prefix.
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_after_one_round(dir.path()).await;
    let external = parse_external_url("https://monitoring.example/appproxy/").unwrap();
    let router = router_with_paths(&exporter, WebPaths::new(Some(&external), Some("/")));
    let (status, _, page) = get_path(&router, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"href="/appproxy/metrics""#), "{page}");
    let (status, _, _) = get_path(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
}

/// A request that stays in flight until `release` is notified; `started` counts them.
async fn slow(started: Arc<AtomicUsize>, release: Arc<tokio::sync::Semaphore>) -> &'static str {
    started.fetch_add(1, Ordering::SeqCst);
    let _ = release.acquire().await;
    "done"
}

#[tokio::test]
async fn requests_beyond_max_requests_are_answered_503_until_one_finishes() {
    let started = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let router =
        axum::Router::new().route("/slow", get(move || slow(Arc::clone(&s), Arc::clone(&r))));
    let router = http::with_request_limit(router, 2);

    let first = tokio::spawn(get_owned(router.clone()));
    let second = tokio::spawn(get_owned(router.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the two requests did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _, body) = get_path(&router, "/slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "Limit of concurrent requests reached (2), try again later.\n"
    );
    assert_eq!(started.load(Ordering::SeqCst), 2, "the refused one ran");

    // One finishes: the next is served.
    release.add_permits(1);
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    release.add_permits(2);
    assert_eq!(get_path(&router, "/slow").await.0, StatusCode::OK);
    assert_eq!(second.await.unwrap(), StatusCode::OK);
}

/// A slot is the request's until its answer is sent, not only until the handler returns: an
/// answer a client does not read held no slot once, so a few slow readers could hold any
/// amount of memory and time behind a limit that never said no. The health check needs none.
#[tokio::test]
async fn a_request_keeps_its_slot_until_its_answer_is_sent() {
    let chunks = || {
        let parts = (0..3).map(|_| Ok::<_, std::convert::Infallible>(vec![b'x'; 1024]));
        Body::from_stream(futures_util::stream::iter(parts))
    };
    let router = axum::Router::new()
        .route("/big", get(move || async move { chunks() }))
        .route("/-/healthy", get(|| async { "Healthy" }));
    let router = http::with_request_limit(router, 1);

    let request = || Request::builder().uri("/big").body(Body::empty()).unwrap();
    let unread = router.clone().oneshot(request()).await.unwrap();
    assert_eq!(unread.status(), StatusCode::OK);
    assert_eq!(
        get_path(&router, "/big").await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "the first answer is not sent yet: its slot is still taken"
    );
    assert_eq!(get_path(&router, "/-/healthy").await.0, StatusCode::OK);
    let body = unread.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 3 * 1024);
    assert_eq!(get_path(&router, "/big").await.0, StatusCode::OK);
}

async fn get_owned(router: axum::Router) -> StatusCode {
    get_path(&router, "/slow").await.0
}

#[test]
fn zero_max_requests_means_no_limit() {
    let router = axum::Router::new().route("/", get(|| async { "ok" }));
    // The same router comes back: nothing wraps it.
    let limited = http::with_request_limit(router, 0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, _, body) = runtime.block_on(get_path(&limited, "/"));
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_listen_address_serves() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), NOTHING_OUTSIDE);
    let (one, two) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"));
    command.args([
        format!("--config.file={}", config.display()),
        format!("--web.listen-address=127.0.0.1:{one}"),
        format!("--web.listen-address=127.0.0.1:{two}"),
    ]);
    let running = common::launch(command);
    for port in [one, two] {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let (status, body) = common::request(address, "GET", "/-/healthy");
        assert_eq!((status, body.as_str()), (200, "Healthy\n"), "port {port}");
    }
    drop(running);
}

#[test]
fn systemd_socket_serves_on_the_socket_systemd_passes() {
    // Debian's systemd package; scripts/test installs it where it is missing.
    let activate = "/usr/bin/systemd-socket-activate";
    assert!(
        std::path::Path::new(activate).exists(),
        "{activate} is missing: apt-get install systemd"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), NOTHING_OUTSIDE);
    let port = free_port();
    // It binds the socket, then runs the exporter with LISTEN_FDS=1 and LISTEN_PID set, the
    // way systemd starts a service from a .socket unit (sd_listen_fds(3)).
    let mut child = Command::new(activate)
        .args([
            format!("--listen=127.0.0.1:{port}"),
            env!("CARGO_BIN_EXE_appproxy_exporter").to_string(),
            "--web.systemd-socket".into(),
            format!("--config.file={}", config.display()),
            // Would fail if it were bound: the passed socket holds the port.
            format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        if std::net::TcpStream::connect(address).is_ok() {
            break common::request(address, "GET", "/metrics");
        }
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(result.0, 200, "{}", result.1);
    assert!(
        result.1.contains("appproxy_exporter_build_info{"),
        "{}",
        result.1
    );
}

#[test]
fn systemd_socket_without_a_socket_exits_2_and_says_why() {
    let output = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args(["--web.systemd-socket"])
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--web.systemd-socket: no socket was passed"),
        "{stderr}"
    );
}

#[test]
fn version_prints_version_revision_compiler_and_platform() {
    let output = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(&format!(
        "appproxy_exporter, version {} (revision: ",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(
        lines[1].starts_with("  rustc version:    rustc 1."),
        "{text}"
    );
    assert_eq!(
        lines[2],
        format!(
            "  platform:         {}/{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    );
}

#[test]
fn diagnose_prints_absolute_runbook_links_under_the_external_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), THREE_APPS);
    let output = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args([
            "diagnose".to_string(),
            format!("--config.file={}", config.display()),
            "--web.external-url=http://conn-01.corp.example:9869/".into(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains("runbook:  http://conn-01.corp.example:9869/runbooks/connector_installed\n"),
        "{text}"
    );
}
