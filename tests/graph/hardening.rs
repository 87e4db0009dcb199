//! What a hostile or broken sign-in endpoint or Graph could do to the exporter: a token that
//! never expires, error texts of megabytes that repeat the bearer token, lists that never end,
//! passwords in URLs; and what a flood of reloads once cost. Each test failed before its fix.

use std::time::Duration;

use serde_json::json;

use super::common::{self, GraphServer, sample};
use super::{Harness, graph_config, login, tenant};

/// Every route Graph was asked for, from the server's own count.
fn graph_reads(server: &GraphServer) -> u64 {
    server.stats()["requests"].as_u64().unwrap_or(0)
}

fn tokens_issued(server: &GraphServer) -> u64 {
    server.stats()["tokens_issued"].as_u64().unwrap_or(0)
}

/// `expires_in: 18446744073709551615` once overflowed the token's renewal instant and panicked
/// the prober: no Graph read ever again, `/-/ready` 503 for good, the process still up.
#[test]
fn a_token_that_never_expires_neither_panics_the_prober_nor_stops_graph_reads() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"token_expires_in": u64::MAX}));
    let dir = tempfile::tempdir().unwrap();
    let probes = "probes:\n  interval: 200ms\n  timeout: 200ms\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\n";
    let text = graph_config(dir.path(), &server, probes)
        .replace("refresh_interval: 1ms", "refresh_interval: 200ms");
    let config = common::write_config(dir.path(), &text);
    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    common::wait_for(exporter.address, "/-/ready", |status, _| status == 200);
    let before = graph_reads(&server);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        graph_reads(&server) > before,
        "Graph is read on every refresh"
    );
    assert_eq!(tokens_issued(&server), 1, "the token is kept, not renewed");
    let (_, metrics) = common::get(exporter.address, "/metrics");
    assert_eq!(sample(&metrics, "appproxy_inventory_up"), Some(1.0));
}

/// A device code that "expires" in u64::MAX seconds once made `login` panic (exit 101), and
/// its message, the sign-in server's own text, was printed raw: a terminal escape or a
/// right-to-left override (U+202E) could make it say something else.
#[test]
fn login_survives_a_device_code_that_never_expires_and_prints_its_message_escaped() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({
        "device_code_expires_in": u64::MAX,
        "device_code_pending_polls": 0,
        "device_code_message": "Open https://microsoft.com/devicelogin \u{1b}[2J\u{202e}exe.gpj",
    }));
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = login(&server, dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("https://microsoft.com/devicelogin"),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{202e}'),
        "printed raw: {stdout:?}"
    );
    assert!(stdout.contains("\\u{202e}"), "shown escaped: {stdout:?}");
}

/// Each reload once started a new Graph source: a new token and a whole read of the tenant,
/// so anyone who could POST /-/reload could make the exporter hammer Graph. A reload that
/// leaves the Graph settings as they were keeps the source, its token and its inventory.
#[tokio::test(flavor = "multi_thread")]
async fn reloads_with_unchanged_graph_settings_keep_the_token_and_the_inventory() {
    let server = GraphServer::start(&tenant(), 100);
    let mut harness = Harness::new(|dir| {
        graph_config(dir, &server, "").replace("refresh_interval: 1ms", "refresh_interval: 1h")
    });
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    server.reset_stats();
    for _ in 0..5 {
        harness.exporter.reload().unwrap();
        let m = harness.round().await;
        assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
        assert!(m.contains("app=\"payroll\""));
    }
    assert_eq!(tokens_issued(&server), 0, "no new token");
    assert_eq!(
        graph_reads(&server),
        0,
        "no new read before the refresh is due"
    );
}

/// Graph's error text is Graph's to choose: one of a megabyte that repeats the request's
/// Authorization header was logged whole, bearer token and all.
#[test]
fn a_graph_error_of_a_megabyte_that_repeats_the_token_is_logged_cut_and_without_it() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"server_error": {
        "path_contains": "connectorGroups", "times": null, "status": 400,
        "message": "echo: $authorization", "message_bytes": 1_000_000,
    }}));
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &graph_config(dir.path(), &server, ""));
    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    let error = loop {
        let line = exporter
            .log
            .recv_timeout(Duration::from_secs(20))
            .expect("the refusal is logged");
        if line.contains("level=error") && line.contains("connectorGroups") {
            break line;
        }
    };
    assert!(error.contains("echo: "), "{error}");
    assert!(error.len() < 4_096, "a log line of {} bytes", error.len());
    assert!(
        !error.contains("eyJ"),
        "the bearer token was logged: {error}"
    );
}

/// A password in an app's internal or external URL on Graph reached the `internal_url` and
/// `external_url` labels of `appproxy_app_info`; a static app's never did.
#[tokio::test(flavor = "multi_thread")]
async fn a_password_in_a_graph_apps_url_never_reaches_a_label() {
    let mut tenant = tenant();
    let publishing = &mut tenant["applications"][0]["onPremisesPublishing"];
    publishing["internalUrl"] = json!("https://svc:hunter2@intranet.corp.example/");
    publishing["externalUrl"] = json!("https://svc:hunter3@intranet-contoso.msappproxy.net/");
    let server = GraphServer::start(&tenant, 100);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert!(m.contains("app=\"intranet\""), "{m}");
    assert!(!m.contains("hunter2") && !m.contains("hunter3"), "{m}");
    assert!(m.contains("svc:REDACTED@intranet.corp.example"), "{m}");
}

/// Graph's lists were bounded per page (32 MiB) and in pages (10,000), not in all: a list
/// that never ends could feed the exporter hundreds of gigabytes. It is refused past a total.
#[tokio::test(flavor = "multi_thread")]
async fn a_graph_list_that_never_ends_is_refused_past_a_total() {
    let server = GraphServer::start(&tenant(), 100);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    harness.round().await;
    server.faults(json!({"huge_pages": {"path_contains": "connectorGroups", "bytes": 8 << 20}}));
    let m = tokio::time::timeout(Duration::from_secs(120), harness.round())
        .await
        .expect("the refresh ends");
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0));
    assert!(
        m.contains("app=\"payroll\""),
        "the last good inventory stays"
    );
}
