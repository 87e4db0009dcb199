//! Steps 1-2 from Microsoft Graph, against the Graph-shaped test server
//! (`tests/graph_server/`): paging, throttling, refusals, malformed answers, every way of
//! signing in, and this host's own connector.

#[path = "../common/mod.rs"]
mod common;
mod hardening;
mod publishing;
mod wildcard;

use std::sync::Arc;
use std::time::{Duration, Instant};

use appproxy_exporter::config;
use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::http;
use appproxy_exporter::inventory::graph::RetryPolicy;
use appproxy_exporter::prober::Prober;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use common::{GraphServer, sample};

const SECRET: &str = "s3cret-do-not-log";

fn tenant() -> serde_json::Value {
    json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": SECRET,
        "groups": [
            {"id": "g1", "name": "Default", "isDefault": true, "region": "eur", "connectorGroupType": "applicationProxy"},
            {"id": "g2", "name": "Branch", "isDefault": false, "region": "nam", "connectorGroupType": "applicationProxy"},
            {"id": "g3", "name": "Private Access", "isDefault": false, "connectorGroupType": "privateAccess"},
            {"id": "g4", "name": "Empty", "isDefault": false, "region": "aus", "connectorGroupType": "applicationProxy"}
        ],
        "connectors": [
            {"id": "c1", "machineName": "CONN-01.corp.example", "externalIp": "203.0.113.5", "status": "active", "version": "1.5.3829.0", "memberOf": ["g1"]},
            {"id": "c2", "machineName": "CONN-02", "externalIp": "203.0.113.6", "status": "inactive", "memberOf": ["g2"]},
            {"id": "c3", "machineName": "CONN-03", "externalIp": "203.0.113.7", "status": "inactive", "version": "1.5.3829.0", "memberOf": ["g2"]},
            {"id": "c4", "machineName": "GSA-01", "externalIp": "203.0.113.8", "status": "active", "version": "1.5.3829.0", "memberOf": ["g3"]}
        ],
        "applications": [
            {"id": "a1000000-0000-0000-0000-000000000001", "displayName": "intranet", "connectorGroupId": "g1",
             "onPremisesPublishing": {"internalUrl": "https://intranet.corp.example/", "externalUrl": "https://intranet-contoso.msappproxy.net/",
                                      "applicationServerTimeout": "Long", "isBackendCertificateValidationEnabled": true}},
            {"id": "a2000000-0000-0000-0000-000000000002", "displayName": "payroll", "connectorGroupId": "g2",
             "onPremisesPublishing": {"internalUrl": "http://payroll.corp.example:8080/", "externalUrl": "https://payroll-contoso.msappproxy.net/",
                                      "applicationServerTimeout": "default", "isBackendCertificateValidationEnabled": false}},
            {"id": "a3000000-0000-0000-0000-000000000003", "displayName": "wiki", "connectorGroupId": "g4",
             "onPremisesPublishing": {"internalUrl": "https://wiki.corp.example/", "applicationServerTimeout": "default"}},
            {"id": "a4000000-0000-0000-0000-000000000004", "displayName": "private-only", "connectorGroupId": "g3",
             "onPremisesPublishing": {"internalUrl": "https://private.corp.example/"}},
            {"id": "a5000000-0000-0000-0000-000000000005", "displayName": "intranet", "connectorGroupId": "g1",
             "onPremisesPublishing": {"internalUrl": "https://intranet2.corp.example/", "applicationServerTimeout": "DEFAULT"}}
        ],
        "faults": {"empty_pages": true, "unknown_fields": true}
    })
}

/// A config pointing at `server`, signing in with a client secret kept in `dir`.
fn graph_config(dir: &std::path::Path, server: &GraphServer, extra: &str) -> String {
    let secret_file = dir.join("client_secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    format!(
        "tenant_id: t-id
inventory:
  refresh_interval: 1ms
  graph:
    client_id: c-id
    auth: client_secret
    client_secret_file: {}
    graph_url: {url}
    login_url: {url}
connector:
  machine_name: monitoring-01
{extra}{probes}",
        secret_file.display(),
        url = server.url,
        // Steps 1-2 only: tests never probe Microsoft's endpoints.
        probes = if extra.contains("probes:") {
            ""
        } else {
            NO_ENDPOINTS
        },
    )
}

/// Graph's requests take `probes.timeout` as their own: 2 s, where 100 ms once was, since a
/// test machine busy with other tests answered the sign-in late at 100 ms, and the test saw a
/// timeout it did not ask for.
const FAST_ROUNDS: &str = "probes:\n  interval: 2s\n  timeout: 2s\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\n";

const NO_ENDPOINTS: &str =
    "probes:\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\n";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
    }
}

struct Harness {
    exporter: Arc<Exporter>,
    prober: Prober,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(config_text: impl FnOnce(&std::path::Path) -> String) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = common::write_config(dir.path(), &config_text(dir.path()));
        let loaded = config::load(Some(&path)).unwrap();
        let exporter = Exporter::new(loaded);
        let prober = Prober::with_retry(Arc::clone(&exporter), fast_retry());
        Harness {
            exporter,
            prober,
            _dir: dir,
        }
    }

    /// Runs one round, publishes it, and returns the scrape.
    async fn round(&mut self) -> String {
        let snapshot = self.prober.round().await;
        self.exporter.publish(snapshot);
        self.get("/metrics").await
    }

    /// One round that also requests every app's backend, then the scrape.
    async fn round_with_backends(&mut self) -> String {
        let snapshot = self.prober.round_once().await;
        self.exporter.publish(snapshot);
        self.get("/metrics").await
    }

    /// A page of the exporter's web interface, as published last.
    async fn get(&self, path: &str) -> String {
        let router = http::router(Arc::clone(&self.exporter), "/metrics");
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }
}

fn failing_step(metrics: &str, group: &str, app: &str) -> Option<f64> {
    sample(
        metrics,
        &format!("appproxy_flow_failing_step{{app=\"{app}\",connector_group=\"{group}\"}}"),
    )
}

fn graph_requests(metrics: &str, endpoint: &str, code: &str) -> f64 {
    sample(
        metrics,
        &format!("appproxy_graph_requests_total{{code=\"{code}\",graph_endpoint=\"{endpoint}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_group_connector_and_app_is_listed_across_pages_with_the_right_verdicts() {
    let server = GraphServer::start(&tenant(), 2);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;

    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert_eq!(
        sample(
            &m,
            r#"appproxy_connector_group_info{connector_group="Default",group_id="g1",is_default="true",region="eur"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_connector_group_info{connector_group="Empty",group_id="g4",is_default="false",region="aus"}"#
        ),
        Some(1.0)
    );
    assert!(
        !m.contains(r#"connector_group="Private Access""#),
        "groups of other types are skipped"
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_connector_group_active_connectors{connector_group="Branch"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_connector_info{connector_group="Default",connector_id="c1",external_ip="203.0.113.5",machine_name="CONN-01.corp.example",version="1.5.3829.0"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_connector_info{connector_group="Branch",connector_id="c2",external_ip="203.0.113.6",machine_name="CONN-02",version=""}"#
        ),
        Some(1.0),
        "a connector without version"
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_connector_active{connector_group="Branch",machine_name="CONN-03"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"appproxy_app_info{app="intranet",app_id="a1000000-0000-0000-0000-000000000001",application_type="",backend_timeout="long",connector_group="Default",external_url="https://intranet-contoso.msappproxy.net/",internal_url="https://intranet.corp.example/"}"#
        ),
        Some(1.0),
        "onPremisesPublishing read per app, timeout in any letter case"
    );
    assert!(
        m.contains(r#"app="intranet [a5000000]""#),
        "a repeated display name gets a distinct label"
    );

    assert_eq!(failing_step(&m, "Default", "intranet"), Some(0.0));
    assert_eq!(failing_step(&m, "Branch", "payroll"), Some(2.0));
    assert_eq!(failing_step(&m, "Empty", "wiki"), Some(2.0));
    assert_eq!(
        graph_requests(&m, "connectorGroups", "200"),
        4.0,
        "two pages, each after an empty one"
    );
    assert_eq!(
        graph_requests(&m, "applications", "200"),
        4.0,
        "one per App Proxy app, inside a batch"
    );
    assert_eq!(
        graph_requests(&m, "$batch", "200"),
        1.0,
        "four apps fit one batch"
    );
}

/// The labels the Prometheus Operator (and Prometheus itself) set on every target: a series of
/// ours with one of them would have it renamed `exported_<label>` on scrape.
const TARGET_LABELS: [&str; 7] = [
    "endpoint",
    "service",
    "namespace",
    "pod",
    "container",
    "job",
    "instance",
];

#[tokio::test(flavor = "multi_thread")]
async fn no_series_carries_a_label_that_the_prometheus_operator_sets_on_targets() {
    let server = GraphServer::start(&tenant(), 2);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert!(
        graph_requests(&m, "connectorGroups", "200") > 0.0,
        "the Graph series are in this scrape"
    );
    let mut names = std::collections::BTreeSet::new();
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, labels)) = line.split_once('{') else {
            continue;
        };
        // Label values here hold no `="`, so each `name="` starts a label.
        for part in labels.split("\",").chain([labels]) {
            if let Some((name, _)) = part.split_once("=\"") {
                names.insert(name.trim_start_matches(',').to_string());
            }
        }
    }
    assert!(names.contains("graph_endpoint"), "{names:?}");
    let taken: Vec<&String> = names
        .iter()
        .filter(|n| TARGET_LABELS.contains(&n.as_str()))
        .collect();
    assert!(taken.is_empty(), "series with target labels: {taken:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_waits_retry_after_and_the_refresh_still_succeeds() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(
        json!({"throttle": {"path_contains": "connectorGroups", "times": 2, "retry_after": 1}}),
    );
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let started = Instant::now();
    let m = harness.round().await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "each 429 waited its Retry-After of 1 s"
    );
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert_eq!(graph_requests(&m, "connectorGroups", "429"), 2.0);
    assert_eq!(failing_step(&m, "Branch", "payroll"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_back_off_and_retry() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(
        json!({"server_error": {"path_contains": "connectors", "times": 2, "status": 503}}),
    );
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert_eq!(graph_requests(&m, "connectors", "503"), 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_sets_up_to_0_and_keeps_the_last_good_inventory() {
    let server = GraphServer::start(&tenant(), 100);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let good = harness.round().await;
    let last_success = sample(&good, "appproxy_inventory_last_success_timestamp_seconds").unwrap();

    server.faults(json!({"forbidden": "Authorization_RequestDenied"}));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert_eq!(
        sample(&m, "appproxy_inventory_last_success_timestamp_seconds"),
        Some(last_success)
    );
    assert_eq!(
        graph_requests(&m, "connectorGroups", "403"),
        1.0,
        "403 is not retried"
    );
    assert_eq!(
        failing_step(&m, "Branch", "payroll"),
        Some(2.0),
        "the last good inventory is still walked"
    );

    server.faults(json!({"forbidden": null}));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_and_a_repeating_next_link_keep_the_last_good_inventory() {
    let server = GraphServer::start(&tenant(), 1);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    harness.round().await;

    server.faults(json!({"malformed": {"path_contains": "connectors"}}));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert!(m.contains(r#"app="wiki""#));

    server.faults(
        json!({"malformed": null, "repeat_next_link": {"path_contains": "connectorGroups"}}),
    );
    let m = harness.round().await;
    assert_eq!(
        sample(&m, "appproxy_inventory_up"),
        Some(0.0),
        "a looping nextLink is refused, not followed forever"
    );
    assert!(m.contains(r#"app="wiki""#));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_token_gives_up_0_after_one_renewal() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"unauthorized": true}));
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert_eq!(
        graph_requests(&m, "connectorGroups", "401"),
        2.0,
        "one fresh token, then give up"
    );
    assert_eq!(graph_requests(&m, "token", "200"), 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_client_secret_is_reported_without_revealing_it() {
    let server = GraphServer::start(&tenant(), 100);
    let mut harness = Harness::new(|dir| {
        let text = graph_config(dir, &server, "");
        std::fs::write(dir.join("client_secret"), "not-the-secret\n").unwrap();
        text
    });
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert_eq!(graph_requests(&m, "token", "401"), 1.0);
    assert!(!m.contains("not-the-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn static_apps_are_walked_alongside_graph_and_graph_wins_a_name_clash() {
    let server = GraphServer::start(&tenant(), 100);
    let extra = "  groups: [all]
";
    let mut harness = Harness::new(|dir| {
        graph_config(dir, &server, extra).replace(
            "  graph:",
            "  static:
    connector_groups:
      - name: Default
    apps:
      - name: lab
        internal_url: https://lab.corp.example/
      - name: intranet
        connector_group: Default
        internal_url: https://static-intranet.corp.example/
  graph:",
        )
    });
    let m = harness.round().await;
    assert_eq!(
        failing_step(&m, "", "lab"),
        Some(1.0),
        "a static app without a group fails step 1"
    );
    assert_eq!(
        failing_step(&m, "Default", "intranet"),
        Some(0.0),
        "Graph's Default, with its active connector"
    );
    assert!(!m.contains("static-intranet"));
}

#[tokio::test(flavor = "multi_thread")]
async fn this_hosts_inactive_connector_fails_step_2_for_its_group() {
    let server = GraphServer::start(&tenant(), 100);
    let mut harness = Harness::new(|dir| {
        graph_config(dir, &server, "")
            .replace("machine_name: monitoring-01", "machine_name: conn-03")
    });
    let m = harness.round().await;
    let walked: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("appproxy_flow_failing_step{"))
        .collect();
    assert_eq!(
        walked.len(),
        1,
        "groups: auto walks this host's group only: {walked:?}"
    );
    assert_eq!(failing_step(&m, "Branch", "payroll"), Some(2.0));
    let info = r#"appproxy_flow_failing_step_info{app="payroll",connector_group="Branch",step="2",step_name="connector_installed"}"#;
    assert_eq!(sample(&m, info), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn access_tokens_are_cached_and_renewed_before_they_expire() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"token_expires_in": 2}));
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    harness.round().await;
    let m = harness.round().await;
    assert_eq!(
        graph_requests(&m, "token", "200"),
        1.0,
        "the cached token serves the next round"
    );
    // Renewal is due at 80% of the 2 s lifetime, before Graph would refuse it.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let m = harness.round().await;
    assert_eq!(graph_requests(&m, "token", "200"), 2.0);
    assert_eq!(
        graph_requests(&m, "connectorGroups", "401"),
        0.0,
        "never sent an expired token"
    );
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
}

/// A throwaway RSA key and self-signed certificate, made with the openssl command line.
fn make_certificate(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=appproxy-exporter-test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed (scripts/test installs it)");
    assert!(status.success());
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_signs_in_with_a_client_assertion_and_another_key_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(certs.path(), "registered");
    let (_, other_key) = make_certificate(certs.path(), "other");
    let mut tenant = tenant();
    tenant["certificate_pem_file"] = json!(cert.display().to_string());
    let server = GraphServer::start(&tenant, 100);
    let with_key = |key: &std::path::Path| {
        let (cert, key) = (cert.clone(), key.to_path_buf());
        let url = server.url.clone();
        move |_: &std::path::Path| {
            format!(
                "tenant_id: t-id
inventory:
  graph:
    client_id: c-id
    auth: client_certificate
    certificate_file: {}
    private_key_file: {}
    graph_url: {url}
    login_url: {url}
{NO_ENDPOINTS}",
                cert.display(),
                key.display()
            )
        }
    };
    let m = Harness::new(with_key(&key)).round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert_eq!(failing_step(&m, "Default", "intranet"), Some(0.0));

    let m = Harness::new(with_key(&other_key)).round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert_eq!(graph_requests(&m, "token", "401"), 1.0);
}

/// `appproxy_exporter login` with a device-code config against `server`, its token cache at
/// `dir/token.json`: the command's output, and the config's path.
fn login(
    server: &GraphServer,
    dir: &std::path::Path,
) -> (std::process::Output, std::path::PathBuf) {
    let config = common::write_config(
        dir,
        &format!(
            "tenant_id: t-id\ninventory:\n  graph:\n    client_id: c-id\n    auth: device_code\n    token_cache_file: {}\n    graph_url: {url}\n    login_url: {url}\n{NO_ENDPOINTS}",
            dir.join("token.json").display(),
            url = server.url
        ),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args(["login", &format!("--config.file={}", config.display())])
        .output()
        .unwrap();
    (output, config)
}

#[test]
fn login_stores_a_refresh_token_the_exporter_then_uses_and_rotates() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"device_code_pending_polls": 2, "device_code_interval": 1}));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token.json");
    let (output, config) = login(&server, dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("microsoft.com/devicelogin"),
        "the user is told where to sign in: {stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let first = std::fs::read_to_string(&cache).unwrap();
    assert!(
        !stdout.contains(first.split('"').nth(3).unwrap()),
        "the token is not printed"
    );

    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    let metrics = common::wait_for(exporter.address, "/metrics", |_, body| {
        sample(body, "appproxy_inventory_up") == Some(1.0) && body.contains("app=\"intranet\"")
    });
    assert!(
        metrics.contains(r#"appproxy_flow_failing_step{app="payroll",connector_group="Branch"} 2"#)
    );
    assert_ne!(
        std::fs::read_to_string(&cache).unwrap(),
        first,
        "the rotated refresh token was stored"
    );
}

#[test]
fn a_refused_graph_is_logged_once_and_no_secret_or_token_is_ever_shown() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"forbidden": "Authorization_RequestDenied"}));
    let dir = tempfile::tempdir().unwrap();
    let text = graph_config(dir.path(), &server, FAST_ROUNDS);
    let config = common::write_config(dir.path(), &text);
    let mut exporter = common::start(&[
        "--log.level=debug",
        &format!("--config.file={}", config.display()),
    ]);
    let metrics = common::wait_for(exporter.address, "/metrics", |_, body| {
        graph_requests(body, "connectorGroups", "403") >= 5.0
    });
    assert_eq!(sample(&metrics, "appproxy_inventory_up"), Some(0.0));
    let (_, config_page) = common::get(exporter.address, "/config");
    let (_, page) = common::get(exporter.address, "/");
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    // The reader thread ends at the end of the pipe, so this reads every line written.
    let log: Vec<String> = exporter.log.iter().collect();
    let errors: Vec<&String> = log.iter().filter(|l| l.contains("level=error")).collect();
    assert_eq!(
        errors.len(),
        1,
        "one error line per distinct problem: {errors:#?}"
    );
    assert!(
        errors[0].contains("Authorization_RequestDenied"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("delegated Directory.ReadWrite.All")
            && errors[0].contains("Application Administrator")
            && errors[0].contains("appproxy_exporter login"),
        "{}",
        errors[0]
    );
    let everything = format!("{}\n{metrics}\n{config_page}\n{page}", log.join("\n"));
    assert!(!everything.contains(SECRET), "the client secret leaked");
    // The server's access tokens are JWT-shaped: base64 of '{"' starts every one.
    assert!(!everything.contains("eyJ"), "a token leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graph_slower_than_the_timeout_keeps_the_last_good_inventory() {
    let server = GraphServer::start(&tenant(), 100);
    let probes = "probes:\n  interval: 1s\n  timeout: 150ms\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\n";
    let mut harness = Harness::new(|dir| graph_config(dir, &server, probes));
    harness.round().await;
    server.faults(json!({"delay_ms": 600}));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert!(graph_requests(&m, "connectorGroups", "timeout") >= 1.0);
    assert_eq!(failing_step(&m, "Branch", "payroll"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_secret_file_that_appears_later_is_picked_up_without_a_reload() {
    let server = GraphServer::start(&tenant(), 100);
    let dir_path = std::cell::RefCell::new(None);
    let mut harness = Harness::new(|dir| {
        let text = graph_config(dir, &server, "");
        std::fs::remove_file(dir.join("client_secret")).unwrap();
        *dir_path.borrow_mut() = Some(dir.to_path_buf());
        text
    });
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    let dir = dir_path.borrow().clone().unwrap();
    std::fs::write(dir.join("client_secret"), SECRET).unwrap();
    // The next attempt waits for refresh_interval (1ms here).
    tokio::time::sleep(Duration::from_millis(10)).await;
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
}

#[test]
fn the_client_secret_can_come_from_the_environment() {
    let server = GraphServer::start(&tenant(), 100);
    let dir = tempfile::tempdir().unwrap();
    let text = graph_config(dir.path(), &server, "");
    let text: String = text
        .lines()
        .filter(|l| !l.contains("client_secret_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    let config = common::write_config(dir.path(), &text);
    let exporter = common::start_with_env(
        &[&format!("--config.file={}", config.display())],
        &[("APPPROXY_CLIENT_SECRET", SECRET)],
    );
    let metrics = common::wait_for(exporter.address, "/metrics", |_, body| {
        body.contains("appproxy_inventory_up")
    });
    let log: Vec<String> = exporter.log.try_iter().collect();
    assert_eq!(
        sample(&metrics, "appproxy_inventory_up"),
        Some(1.0),
        "{log:#?}"
    );
    assert!(metrics.contains(r#"app="intranet""#));
}

/// A listener that only counts who connects: where a followed redirect would have sent the
/// client secret or the bearer token.
struct Trap {
    url: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

impl Trap {
    fn start() -> Trap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The binary against `server` until its token endpoint has answered `code` twice: the scrape,
/// and every line it logged.
fn run_until_token(server: &GraphServer, secret: Option<&str>, code: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = graph_config(dir.path(), server, FAST_ROUNDS);
    if let Some(secret) = secret {
        std::fs::write(dir.path().join("client_secret"), format!("{secret}\n")).unwrap();
    }
    let config = common::write_config(dir.path(), &text);
    let mut exporter = common::start(&[
        "--log.level=debug",
        &format!("--config.file={}", config.display()),
    ]);
    let metrics = common::wait_for(exporter.address, "/metrics", |_, body| {
        graph_requests(body, "token", code) >= 2.0
    });
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    let log: Vec<String> = exporter.log.iter().collect();
    (metrics, log.join("\n"))
}

#[test]
fn a_sign_in_redirect_is_not_followed_so_the_secret_goes_nowhere_else() {
    let server = GraphServer::start(&tenant(), 100);
    let trap = Trap::start();
    server.faults(json!({"redirect_token": format!("{}/steal", trap.url)}));
    let (metrics, log) = run_until_token(&server, None, "307");
    assert_eq!(sample(&metrics, "appproxy_inventory_up"), Some(0.0));
    assert!(log.contains("which is not followed"), "{log}");
    assert_eq!(
        trap.hits(),
        0,
        "the sign-in form went to the redirect's host"
    );
}

#[test]
fn a_sign_in_error_that_repeats_the_secret_is_logged_without_it() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"echo_secret": true}));
    let (metrics, log) = run_until_token(&server, Some("wrong-and-echoed"), "401");
    assert!(log.contains("AADSTS7000215"), "the error is logged: {log}");
    assert!(log.contains("<redacted>"), "{log}");
    assert!(
        !format!("{metrics}{log}").contains("wrong-and-echoed"),
        "the secret leaked: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graph_redirect_is_not_followed_nor_taken_as_inventory() {
    let server = GraphServer::start(&tenant(), 100);
    let trap = Trap::start();
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let good = harness.round().await;
    assert_eq!(sample(&good, "appproxy_inventory_up"), Some(1.0));
    server.faults(json!({"redirect_graph": trap.url}));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert_eq!(
        trap.hits(),
        0,
        "the bearer token went to the redirect's host"
    );
    // The last good inventory stays: the apps are still walked.
    assert!(failing_step(&m, "Default", "intranet").is_some(), "{m}");
}
