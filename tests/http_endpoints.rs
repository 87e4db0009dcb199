//! The HTTP endpoints, called in-process through the router (no socket), with the prober's
//! rounds driven by the test so each state is exact.

mod common;

use std::sync::Arc;

use appproxy_exporter::config;
use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::{http, prober};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::{THREE_APPS, sample, write_config};

async fn call(exporter: &Arc<Exporter>, method: &str, path: &str) -> (StatusCode, String) {
    let router = http::router(Arc::clone(exporter), "/metrics");
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Built-in defaults, except that no endpoint is probed: tests never reach out.
fn no_outbound_probes() -> config::Loaded {
    let text = "probes:\n  endpoints:\n    catalog: none\n";
    let (settings, warnings) = config::parse(text, "test.yml").unwrap();
    config::Loaded {
        settings,
        file: None,
        warnings,
    }
}

/// One probe round with a fresh prober, published.
async fn round(exporter: &Arc<Exporter>) -> appproxy_exporter::store::Snapshot {
    prober::Prober::new(Arc::clone(exporter)).round().await
}

async fn exporter_after_one_round(dir: &std::path::Path, text: &str) -> Arc<Exporter> {
    let path = write_config(dir, text);
    let exporter = Exporter::new(config::load(Some(&path)).unwrap());
    let snapshot = round(&exporter).await;
    exporter.publish(snapshot);
    exporter
}

#[tokio::test]
async fn ready_and_inventory_metrics_wait_for_the_first_round() {
    let exporter = Exporter::new(no_outbound_probes());
    let (status, body) = call(&exporter, "GET", "/-/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("first probe round"), "{body}");
    let (_, metrics) = call(&exporter, "GET", "/metrics").await;
    assert!(
        metrics.contains("appproxy_exporter_build_info{"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("appproxy_inventory_up"),
        "no inventory verdict before a round: {metrics}"
    );
    exporter.publish(round(&exporter).await);
    assert_eq!(call(&exporter, "GET", "/-/ready").await.0, StatusCode::OK);
    let (_, metrics) = call(&exporter, "GET", "/metrics").await;
    assert_eq!(sample(&metrics, "appproxy_inventory_up"), Some(1.0));
    assert_eq!(call(&exporter, "GET", "/-/healthy").await.0, StatusCode::OK);
}

/// A background task that panicked is down until it starts again, and `/-/ready` says so:
/// a prober that died once left readiness at 200 over metrics that no longer moved.
#[tokio::test]
async fn ready_names_a_task_that_panicked_until_it_runs_again() {
    let exporter = Exporter::new(no_outbound_probes());
    exporter.publish(round(&exporter).await);
    assert_eq!(call(&exporter, "GET", "/-/ready").await.0, StatusCode::OK);
    let supervisor = tokio::spawn(exporter.tasks.supervise("prober", || async {
        panic!("a test panic");
    }));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, body) = call(&exporter, "GET", "/-/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("prober task stopped with a panic"), "{body}");
    let (_, metrics) = call(&exporter, "GET", "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "appproxy_exporter_task_panics_total{task=\"prober\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    supervisor.abort();
}

#[tokio::test]
async fn reload_with_a_broken_file_answers_500_and_keeps_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_after_one_round(dir.path(), THREE_APPS).await;
    write_config(dir.path(), "inventory:\n  static:\n    apps: [{name: x}]\n");

    let (status, body) = call(&exporter, "POST", "/-/reload").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.contains(
            "appproxy_exporter.yml:3:13: inventory.static.apps[0]: missing field `internal_url`"
        ),
        "{body}"
    );

    exporter.publish(round(&exporter).await);
    let (_, metrics) = call(&exporter, "GET", "/metrics").await;
    assert_eq!(
        sample(&metrics, "appproxy_exporter_config_last_reload_successful"),
        Some(0.0)
    );
    let payroll = "appproxy_flow_failing_step{app=\"payroll\",connector_group=\"Dormant\"}";
    assert_eq!(
        sample(&metrics, payroll),
        Some(2.0),
        "the old config's apps are still walked"
    );
}

#[tokio::test]
async fn reload_with_a_good_file_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_after_one_round(dir.path(), THREE_APPS).await;
    write_config(
        dir.path(),
        &THREE_APPS.replace("name: orphan", "name: renamed"),
    );
    let (status, _) = call(&exporter, "POST", "/-/reload").await;
    assert_eq!(status, StatusCode::OK);
    exporter.publish(round(&exporter).await);
    let (_, metrics) = call(&exporter, "GET", "/metrics").await;
    assert!(metrics.contains("app=\"renamed\""));
    assert!(!metrics.contains("app=\"orphan\""));
    assert_eq!(
        sample(&metrics, "appproxy_exporter_config_last_reload_successful"),
        Some(1.0)
    );
}

#[tokio::test]
async fn reload_only_answers_post() {
    let exporter = Exporter::new(no_outbound_probes());
    assert_eq!(
        call(&exporter, "GET", "/-/reload").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&exporter, "GET", "/probe").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn step_ok_series_exist_only_for_evaluated_steps() {
    let dir = tempfile::tempdir().unwrap();
    let every_step = format!("{THREE_APPS}metrics:\n  per_step_series: true\n");
    let exporter = exporter_after_one_round(dir.path(), &every_step).await;
    let (_, metrics) = call(&exporter, "GET", "/metrics").await;
    let step = |app: &str, group: &str, n: u8, name: &str| {
        sample(
            &metrics,
            &format!(
                "appproxy_flow_step_ok{{app=\"{app}\",connector_group=\"{group}\",step=\"{n}\",step_name=\"{name}\"}}"
            ),
        )
    };
    assert_eq!(
        step("intranet", "Default", 2, "connector_installed"),
        Some(1.0)
    );
    assert_eq!(step("orphan", "", 1, "connector_group_assigned"), Some(0.0));
    assert_eq!(
        step("orphan", "", 2, "connector_installed"),
        None,
        "step 2 needs a group"
    );
    assert_eq!(
        step("payroll", "Dormant", 2, "connector_installed"),
        Some(0.0)
    );
    let info = "appproxy_flow_failing_step_info{app=\"payroll\",connector_group=\"Dormant\",step=\"2\",step_name=\"connector_installed\"}";
    assert_eq!(sample(&metrics, info), Some(1.0));
    assert!(!metrics.contains("appproxy_flow_failing_step_info{app=\"intranet\""));
    assert_eq!(
        sample(
            &metrics,
            "appproxy_connector_group_active_connectors{connector_group=\"Dormant\"}"
        ),
        Some(0.0)
    );
}

/// By default a step judged once per group is served once per group, not per app; per app
/// only the walk's result (and, for apps whose backend is requested, steps 7-10's series).
#[tokio::test]
async fn by_default_step_2_is_served_per_group_and_the_walk_per_app() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_after_one_round(dir.path(), THREE_APPS).await;
    let (_, metrics) = call(&exporter, "GET", "/metrics").await;
    let group_step = |group: &str| {
        sample(
            &metrics,
            &format!(
                "appproxy_flow_step_ok{{app=\"\",connector_group=\"{group}\",step=\"2\",step_name=\"connector_installed\"}}"
            ),
        )
    };
    assert_eq!(group_step("Default"), Some(1.0));
    assert_eq!(group_step("Dormant"), Some(0.0));
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("appproxy_flow_step_ok{app=\"intranet\"")),
        "no per-app step matrix by default"
    );
    for (app, group, step) in [
        ("intranet", "Default", 0.0),
        ("orphan", "", 1.0),
        ("payroll", "Dormant", 2.0),
    ] {
        let series =
            format!("appproxy_flow_failing_step{{app=\"{app}\",connector_group=\"{group}\"}}");
        assert_eq!(sample(&metrics, &series), Some(step), "{app}");
    }
}

#[tokio::test]
async fn landing_page_links_every_endpoint_and_shows_the_failing_step() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_after_one_round(dir.path(), THREE_APPS).await;
    let (status, page) = call(&exporter, "GET", "/").await;
    assert_eq!(status, StatusCode::OK);
    for link in [
        "href=\"/metrics\"",
        "href=\"/config\"",
        "href=\"/-/healthy\"",
        "href=\"/-/ready\"",
        "href=\"/api/v1/diagnosis\"",
    ] {
        assert!(page.contains(link), "missing {link}");
    }
    assert!(page.contains("fails at step 2: Install the connector and assign a group"));
    assert!(page.contains(
        r#"<li class="step fail failing" data-step="2" data-step-name="connector_installed""#
    ));
    assert!(page.contains(r#"href="/runbooks/connector_installed""#));
    assert!(
        page.contains("no connector of group &quot;Dormant&quot; is active (CONN-02 inactive)")
    );
}

#[tokio::test]
async fn the_diagnosis_api_serves_the_walk_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_after_one_round(dir.path(), THREE_APPS).await;
    let (status, body) = call(&exporter, "GET", "/api/v1/diagnosis").await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["healthy"], false);
    let payroll = doc["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "payroll")
        .unwrap();
    assert_eq!(payroll["failing_step"], 2);
    assert_eq!(payroll["steps"][1]["state"], "fail");
    assert_eq!(payroll["steps"][2]["state"], "not_reached");
}

#[tokio::test]
async fn config_page_shows_effective_settings_without_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("{THREE_APPS}connector:\n  proxy: http://svc:hunter2@proxy.corp.example:3128\n");
    let exporter = exporter_after_one_round(dir.path(), &text).await;
    let (_, body) = call(&exporter, "GET", "/config").await;
    assert!(!body.contains("hunter2"), "{body}");
    assert!(
        body.contains("proxy: http://svc:REDACTED@proxy.corp.example:3128/"),
        "{body}"
    );
    assert!(
        body.contains("timeout_risk_ratio: 0.8"),
        "defaults are filled in: {body}"
    );
}

#[tokio::test]
async fn every_steps_runbook_is_served_and_unknown_ones_are_404() {
    let exporter = Exporter::new(no_outbound_probes());
    let (status, index) = call(&exporter, "GET", "/runbooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(index.contains(r#"href="/runbooks/backend_timeout""#));
    let (status, page) = call(&exporter, "GET", "/runbooks/port_test").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<h1>Step 3: Run a port test on the connector server"),
        "{page}"
    );
    assert_eq!(
        call(&exporter, "GET", "/runbooks/nope").await.0,
        StatusCode::NOT_FOUND
    );
}
