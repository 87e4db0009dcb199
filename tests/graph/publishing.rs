//! Apps as Graph publishes them: Private Access apps and apps whose publishing is off count for
//! their group but are walked to step 2 only; a wildcard app is requested only at a host the
//! config names; per-app settings come in JSON batches, each inner answer judged on its own.

use super::*;

fn publishing_tenant() -> serde_json::Value {
    let web = |url: &str| json!({"internalUrl": url, "externalUrl": "https://x-contoso.msappproxy.net/", "applicationServerTimeout": "default"});
    json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": SECRET,
        "groups": [
            {"id": "g1", "name": "Default", "isDefault": true, "connectorGroupType": "applicationProxy"},
            {"id": "g2", "name": "Dormant", "isDefault": false, "connectorGroupType": "applicationProxy"}
        ],
        "connectors": [
            {"id": "c1", "machineName": "CONN-01", "status": "active", "memberOf": ["g1"]},
            {"id": "c2", "machineName": "CONN-02", "status": "inactive", "memberOf": ["g2"]}
        ],
        "applications": [
            {"id": "p1", "displayName": "intranet", "connectorGroupId": "g1", "onPremisesPublishing": web("http://127.0.0.1:1/")},
            {"id": "p2", "displayName": "private-files", "connectorGroupId": "g1",
             "onPremisesPublishing": {"internalUrl": "http://127.0.0.1:1/", "applicationType": "nonwebapp", "isOnPremPublishingEnabled": true}},
            {"id": "p3", "displayName": "quick-access", "connectorGroupId": "g2",
             "onPremisesPublishing": {"applicationType": "quickaccessapp", "internalUrl": null}},
            {"id": "p4", "displayName": "retired", "connectorGroupId": "g1",
             "onPremisesPublishing": {"internalUrl": "http://127.0.0.1:1/", "isOnPremPublishingEnabled": false}},
            {"id": "p5", "displayName": "no-url", "connectorGroupId": "g1",
             "onPremisesPublishing": {"internalUrl": "", "applicationServerTimeout": null}},
            {"id": "p6", "displayName": "hr-apps", "connectorGroupId": "g1",
             "onPremisesPublishing": {"internalUrl": "http://*.corp.example:1/", "externalUrl": "https://*.contoso.com/"}},
            {"id": "p7", "displayName": "finance", "connectorGroupId": "g1",
             "onPremisesPublishing": {"internalUrl": "http://*.finance.example:1/", "externalUrl": "https://*.contoso.com/"}}
        ]
    })
}

const WITH_BACKENDS: &str = "probes:
  timeout: 2s
  endpoints:
    catalog: none
  external:
    enabled: false
  backend:
    wildcard_hosts:
      - app: finance
        host: reports.finance.example
";

fn step_ok(metrics: &str, app: &str, step: u8) -> bool {
    metrics.lines().any(|l| {
        l.starts_with("appproxy_flow_step_ok{")
            && l.contains(&format!(r#"app="{app}""#))
            && l.contains(&format!(r#"step="{step}""#))
    })
}

/// The diagnosis of one app's step, as `/api/v1/diagnosis` shows it.
fn diagnosed_step(diagnosis: &serde_json::Value, app: &str, step: u64) -> serde_json::Value {
    let app = diagnosis["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == app)
        .unwrap_or_else(|| panic!("{app} is not in the diagnosis"));
    app["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn private_access_and_unpublished_apps_count_for_their_group_and_never_fail_without_evidence()
{
    let server = GraphServer::start(&publishing_tenant(), 100);
    let every_step = format!("{WITH_BACKENDS}metrics:\n  per_step_series: true\n");
    let mut harness = Harness::new(|dir| graph_config(dir, &server, &every_step));
    let m = harness.round_with_backends().await;

    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert_eq!(
        failing_step(&m, "Default", "intranet"),
        Some(8.0),
        "the web app's refused backend proves the backends were requested"
    );
    for app in ["private-files", "retired", "no-url"] {
        assert_eq!(failing_step(&m, "Default", app), Some(0.0), "{app}");
        for step in 3..=10 {
            assert!(
                !step_ok(&m, app, step),
                "{app} has no verdict on step {step}"
            );
        }
        assert!(step_ok(&m, app, 2), "{app} counts for its group in step 2");
    }
    assert_eq!(
        failing_step(&m, "Dormant", "quick-access"),
        Some(2.0),
        "a Private Access app still needs an active connector in its group"
    );
    assert!(
        m.lines().any(|l| l.starts_with("appproxy_app_info{")
            && l.contains(r#"app="private-files""#)
            && l.contains(r#"application_type="nonwebapp""#)),
        "appproxy_app_info carries the type"
    );

    let diagnosis: serde_json::Value =
        serde_json::from_str(&harness.get("/api/v1/diagnosis").await).unwrap();
    // A Private Access app is judged at step 8 on its segments (issue 29); it has no internal
    // page for step 7, and this tenant's app has no segments, so step 8 says so too.
    let seven = diagnosed_step(&diagnosis, "private-files", 7);
    assert_eq!(seven["state"], "not_evaluated");
    assert!(
        seven["evidence"]
            .as_str()
            .unwrap()
            .contains("a Private Access app has no internal page to load"),
        "{seven}"
    );
    let eight = diagnosed_step(&diagnosis, "private-files", 8);
    assert_eq!(eight["state"], "not_evaluated", "{eight}");
    let retired = diagnosed_step(&diagnosis, "retired", 9);
    assert!(
        retired["evidence"]
            .as_str()
            .unwrap()
            .contains("isOnPremPublishingEnabled false"),
        "{retired}"
    );
    let page = harness.get("/").await;
    assert!(
        page.contains("Steps 3-10 not evaluated"),
        "the page says why"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_app_is_requested_only_at_the_host_the_config_names() {
    let server = GraphServer::start(&publishing_tenant(), 100);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, WITH_BACKENDS));
    let m = harness.round_with_backends().await;

    assert_eq!(failing_step(&m, "Default", "hr-apps"), Some(0.0));
    for step in 7..=10 {
        assert!(
            !step_ok(&m, "hr-apps", step),
            "step {step} is not evaluated"
        );
    }
    assert_eq!(
        failing_step(&m, "Default", "finance"),
        Some(8.0),
        "the configured host is requested (and refused here)"
    );
    let diagnosis: serde_json::Value =
        serde_json::from_str(&harness.get("/api/v1/diagnosis").await).unwrap();
    let hr = diagnosed_step(&diagnosis, "hr-apps", 7);
    assert_eq!(hr["state"], "not_evaluated");
    assert!(
        hr["evidence"]
            .as_str()
            .unwrap()
            .contains("is a wildcard, which names no host to request"),
        "{hr}"
    );
    let finance = diagnosed_step(&diagnosis, "finance", 8);
    assert!(
        finance["evidence"]
            .as_str()
            .unwrap()
            .contains("reports.finance.example"),
        "{finance}"
    );
    let page = harness.get("/").await;
    assert!(
        page.contains("Steps 7-10 not evaluated"),
        "the page says why"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inventory_loads_from_application_lists_as_tenants_report_them() {
    // Tenants are reported to leave onPremisesPublishing out of the group's application list:
    // the names come from the list, the settings from the batched per-app read.
    let server = GraphServer::start(&tenant(), 2);
    server.faults(json!({"applications_list": "reported"}));
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert!(m.contains(r#"internal_url="https://intranet.corp.example/""#));
    assert_eq!(failing_step(&m, "Branch", "payroll"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_request_inside_a_batch_waits_its_retry_after() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(
        json!({"throttle": {"path_contains": "/applications/a2", "times": 1, "retry_after": 1}}),
    );
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let started = Instant::now();
    let m = harness.round().await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert_eq!(graph_requests(&m, "applications", "429"), 1.0);
    assert!(m.contains(r#"internal_url="http://payroll.corp.example:8080/""#));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_gone_since_it_was_listed_is_left_out_and_the_rest_loads() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(
        json!({"server_error": {"path_contains": "/applications/a3", "times": 1,
                                          "status": 404, "code": "Request_ResourceNotFound"}}),
    );
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    assert!(!m.contains(r#"app="wiki""#), "the vanished app is dropped");
    assert!(m.contains(r#"app="payroll""#));
    assert_eq!(graph_requests(&m, "applications", "404"), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_answer_that_does_not_match_its_requests_keeps_the_last_good_inventory() {
    let server = GraphServer::start(&tenant(), 100);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let good = harness.round().await;
    assert_eq!(sample(&good, "appproxy_inventory_up"), Some(1.0));
    for bad in [
        "missing_id",
        "duplicate_id",
        "unknown_id",
        "non_json_body",
        "extra_answer",
        "dropped_answer",
    ] {
        server.faults(json!({ "batch_bad": bad }));
        let m = harness.round().await;
        assert_eq!(sample(&m, "appproxy_inventory_up"), Some(0.0), "{bad}");
        assert!(
            m.contains(r#"app="wiki""#),
            "{bad}: the last good inventory"
        );
    }
    server.faults(json!({ "batch_bad": null }));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_costs_one_batch_per_twenty_apps() {
    let (groups, apps): (u64, u64) = (5, 210);
    let server = GraphServer::generate(&format!("groups={groups},apps={apps},connectors=10"), 100);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "test-secret").unwrap();
    let mut harness = Harness::new(|_| {
        format!(
            "tenant_id: 00000000-0000-0000-0000-0000000000aa
inventory:
  graph:
    client_id: 00000000-0000-0000-0000-0000000000cc
    auth: client_secret
    client_secret_file: {}
    graph_url: {url}
    login_url: {url}
connector:
  machine_name: monitoring-01
{NO_ENDPOINTS}",
            secret.display(),
            url = server.url
        )
    });
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0));
    let stats = server.stats();
    // token, groups, connectors, then per group its members and apps (42 apps: one page each),
    // then the apps in batches of 20.
    let expected = 1 + 1 + 1 + 2 * groups + apps.div_ceil(20);
    assert_eq!(stats["requests"].as_u64(), Some(expected), "{stats}");
    assert_eq!(stats["inner_requests"].as_u64(), Some(apps), "{stats}");
}

/// A tenant made of Microsoft's own examples (tests/graph_server/fixtures/SOURCES.md): the
/// connector group and connectors of the App Proxy API tutorial, and an app whose
/// `onPremisesPublishing` is the one that tutorial sets.
fn documented_tenant() -> serde_json::Value {
    let fixture = |name: &str| -> serde_json::Value {
        let path = format!(
            "{}/tests/graph_server/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut group = fixture("connectorgroup-create-tutorial.json");
    group.as_object_mut().unwrap().remove("@odata.context");
    let group_id = group["id"].clone();
    let connectors: Vec<serde_json::Value> = fixture("connector-list-tutorial.json")["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["memberOf"] = json!([group_id]);
            c
        })
        .collect();
    let publishing =
        fixture("application-onpremisespublishing-patch-request-tutorial.json")["onPremisesPublishing"].clone();
    json!({
        "tenant_id": "5c3a0000-0000-0000-0000-000000000001", "client_id": "9f2b0000-0000-0000-0000-000000000002",
        "client_secret": SECRET,
        "groups": [group],
        "connectors": connectors,
        "applications": [{"id": "b5d2d6b4-0000-0000-0000-000000000003", "displayName": "Contoso IWA App",
                          "connectorGroupId": group_id, "onPremisesPublishing": publishing}]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readmes_graph_example_loads_a_tenant_built_from_microsofts_examples() {
    let server = GraphServer::start(&documented_tenant(), 100);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|s| s.split("```yaml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .unwrap()
        .to_string();
    let mut harness = Harness::new(|dir| {
        let secret = dir.join("client_secret");
        std::fs::write(&secret, SECRET).unwrap();
        let edits = [
            (
                "3f2c...",
                "5c3a0000-0000-0000-0000-000000000001".to_string(),
            ),
            (
                "8e1d...",
                "9f2b0000-0000-0000-0000-000000000002".to_string(),
            ),
            (
                "/etc/appproxy_exporter/client_secret",
                secret.display().to_string(),
            ),
            (
                "# graph_url, login_url ",
                format!(
                    "graph_url: {url}\n    login_url: {url}\n    # ",
                    url = server.url
                ),
            ),
            // Tests never probe Microsoft's endpoints nor the example's backends.
            ("catalog: builtin", "catalog: none".to_string()),
            (
                "enabled: true             # steps 7-9",
                "enabled: false  # steps 7-9".to_string(),
            ),
        ];
        edits.iter().fold(example.clone(), |text, (from, to)| {
            assert!(
                text.contains(from),
                "the README's example no longer has {from:?}"
            );
            text.replace(from, to)
        })
    });
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0), "{m}");
    assert_eq!(
        sample(
            &m,
            r#"appproxy_connector_group_active_connectors{connector_group="IWA Demo Connector Group"}"#
        ),
        Some(2.0)
    );
    assert!(
        m.contains(r#"internal_url="https://contosoiwaapp.com""#),
        "{m}"
    );
    assert_eq!(
        failing_step(&m, "IWA Demo Connector Group", "Contoso IWA App"),
        Some(0.0)
    );
    assert_eq!(
        failing_step(&m, "Default", "intranet"),
        Some(0.0),
        "the example's static app is walked beside Graph's"
    );
}

/// Custom-domain certificates as Graph describes them (resources/
/// verifiedcustomdomaincertificatesmetadata.md): an app on a custom domain with real values,
/// Microsoft's example answer as documented (every property a placeholder, `"datetime-value"`
/// for the dates), an app on the default domain with `null`, and one without the property.
/// All of them load; only the date that is a date becomes a series.
#[tokio::test(flavor = "multi_thread")]
async fn custom_domain_certificates_load_and_only_a_real_expiry_is_exported() {
    let documented: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/graph_server/fixtures/connectorgroup-list-applications.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut placeholder = documented["value"][0]["onPremisesPublishing"].clone();
    placeholder["internalUrl"] = json!("https://wiki.corp.example/");
    let tenant = json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": SECRET,
        "groups": [{"id": "g1", "name": "Default", "isDefault": true, "connectorGroupType": "applicationProxy"}],
        "connectors": [{"id": "c1", "machineName": "CONN-01", "status": "active", "memberOf": ["g1"]}],
        "applications": [
            {"id": "d1", "displayName": "portal", "connectorGroupId": "g1", "onPremisesPublishing": {
                "internalUrl": "https://portal.corp.example/", "externalUrl": "https://portal.contoso.com/",
                "verifiedCustomDomainCertificatesMetadata": {
                    "thumbprint": "3EAB12CD3EAB12CD3EAB12CD3EAB12CD3EAB12CD",
                    "subjectName": "CN=portal.contoso.com", "issuerName": "CN=Contoso Issuing CA, O=Contoso, C=US",
                    "issueDate": "2026-03-01T00:00:00Z", "expiryDate": "2027-03-01T12:30:00Z"}}},
            {"id": "d2", "displayName": "documented", "connectorGroupId": "g1", "onPremisesPublishing": placeholder},
            {"id": "d3", "displayName": "default-domain", "connectorGroupId": "g1", "onPremisesPublishing": {
                "internalUrl": "https://intranet.corp.example/", "externalUrl": "https://intranet-contoso.msappproxy.net/",
                "verifiedCustomDomainCertificatesMetadata": null}},
            {"id": "d4", "displayName": "older", "connectorGroupId": "g1", "onPremisesPublishing": {
                "internalUrl": "https://older.corp.example/"}}
        ]
    });
    let server = GraphServer::start(&tenant, 100);
    let mut harness = Harness::new(|dir| graph_config(dir, &server, ""));
    let m = harness.round().await;
    assert_eq!(sample(&m, "appproxy_inventory_up"), Some(1.0), "{m}");
    let expiry = |app: &str| {
        sample(
            &m,
            &format!(
                "appproxy_custom_domain_certificate_expiry_timestamp_seconds{{app=\"{app}\",connector_group=\"Default\"}}"
            ),
        )
    };
    assert_eq!(expiry("portal"), Some(1_803_904_200.0), "{m}");
    for app in ["documented", "default-domain", "older"] {
        assert_eq!(expiry(app), None, "{app}");
        assert!(m.contains(&format!(r#"app="{app}""#)), "{app} loads: {m}");
    }
}
