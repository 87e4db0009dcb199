//! The monitoring content against what the exporter really emits: a real Prometheus (with
//! alerts/appproxy.rules.yml loaded) scrapes two exporters side by side in a network namespace,
//! as two connector hosts of one tenant, first in a healthy scenario, then with every fault at
//! once. Each alerting rule's expression (the page and the ticket of an alert apart) returns
//! series in the fault scenario and none in the healthy one, but for the few listed with why;
//! tenant-wide alerts are raised once for both hosts, host-level ones for the host that fails,
//! per-app ones once where every host fails the app, per host where one does. Every dashboard
//! query (panels, variables, annotations) returns data in at least one scenario. What reaches a
//! person from these alerts, through Alertmanager, is tests/paging_netns.rs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{GraphServer, Lab, Netns, write_config};
use serde_json::{Value, json};

fn spec() -> Value {
    json!({
        "hosts": {
            "tenant.bootstrap.msappproxy.test": "127.0.0.11", "tenant2.bootstrap.msappproxy.test": "127.0.0.12",
            "crl.digicert.test": "127.0.0.21",
            "intercepted.login.test": "127.0.0.31",
            "ok.backend.test": "127.0.0.51", "slow.backend.test": "127.0.0.52", "error.backend.test": "127.0.0.54",
            "legacy.backend.test": "127.0.0.55",
            "ok-contoso.msappproxy.test": "127.0.0.72", "offline-contoso.msappproxy.test": "127.0.0.73"
        },
        "servers": [
            {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.12", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant2.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.21", "port": 80, "kind": "http"},
            {"ip": "127.0.0.31", "port": 443, "kind": "tls", "issuer": "interceptor", "cn": "intercepted.login.test"},
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.52", "port": 80, "kind": "http", "delay": 1.7},
            {"ip": "127.0.0.54", "port": 80, "kind": "http", "status": 503},
            {"ip": "127.0.0.55", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "legacy.backend.test", "max_tls": "1.1"},
            {"ip": "127.0.0.72", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "ok-contoso.msappproxy.test", "status": 302}
        ],
        "proxy": {"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80], "basic_auth": "user:pass"}
    })
}

/// The Graph tenant. In the fault scenario two more apps are on custom domains whose
/// certificates expire in 20 days (a ticket) and in 3 days (a page), as Graph's
/// `verifiedCustomDomainCertificatesMetadata` gives them; Graph answers until the exporters have
/// loaded them, then refuses ([`refuse_graph`]), so the inventory goes stale with them in it.
fn tenant(faulty: bool) -> Value {
    let mut applications = vec![
        json!({"id": "a9", "displayName": "graph-app", "connectorGroupId": "g9",
        "onPremisesPublishing": {"internalUrl": "http://ok.backend.test/", "applicationServerTimeout": "Default"}}),
        // A Private Access app whose one segment (the shape of Microsoft's example answer,
        // tests/graph_server/fixtures/ipapplicationsegment-get.json) answers: step 8 passes.
        json!({"id": "a12", "displayName": "files", "connectorGroupId": "g9",
            "onPremisesPublishing": {"applicationType": "nonwebapp", "isOnPremPublishingEnabled": true, "internalUrl": "api://a12/"},
            "ipApplicationSegments": [{"destinationHost": "ok.backend.test", "destinationType": "fqdn", "port": 0,
                "ports": ["80-80"], "protocol": "tcp", "id": "seg-ok"}]}),
    ];
    if faulty {
        for (id, name, days) in [("a10", "renew-soon", 20), ("a11", "renew-now", 3)] {
            let at = |days: i64| {
                (time::OffsetDateTime::now_utc() + time::Duration::days(days))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            };
            applications.push(json!({"id": id, "displayName": name, "connectorGroupId": "g9",
                "onPremisesPublishing": {"internalUrl": "http://ok.backend.test/", "applicationServerTimeout": "Default",
                    "verifiedCustomDomainCertificatesMetadata": {
                        "subjectName": format!("CN={name}.contoso.test"), "issuerName": "CN=Contoso Issuing CA",
                        "thumbprint": "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
                        "issueDate": at(days - 365), "expiryDate": at(days)}}}));
        }
    }
    json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": "s3cret",
        "groups": [{"id": "g9", "name": "Graph", "isDefault": false, "region": "eur", "connectorGroupType": "applicationProxy"}],
        "connectors": [{"id": "c9", "machineName": "CONN-09", "externalIp": "203.0.113.9", "status": "active", "version": "1.5.3829.0", "memberOf": ["g9"]}],
        "applications": applications,
        "faults": {}
    })
}

/// Once both exporters have loaded the custom-domain apps from Graph, Graph refuses every
/// request from then on (403 Authorization_RequestDenied): the last good inventory stays.
fn refuse_graph(lab: &Lab, graph: &GraphServer, exporters: &[common::Running]) {
    for exporter in exporters {
        lab.wait_for_metrics(exporter, |m| {
            m.contains("appproxy_custom_domain_certificate_expiry_timestamp_seconds{")
        });
    }
    // The server listens inside the namespace: the control request goes from there too.
    let output = lab
        .netns
        .command("curl")
        .args(["-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", "Content-Type: application/json", "--data"])
        .arg(json!({"forbidden": "Authorization_RequestDenied"}).to_string())
        .arg(format!("{}/_control", graph.url.trim_end_matches('/')))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "200",
        "Graph's fault switch"
    );
}

const DIRECT: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"/></system.net></configuration>";
const PROXIED: &str = "<configuration><system.net><defaultProxy><proxy proxyaddress=\"http://127.0.0.1:3128\"/></defaultProxy></system.net></configuration>";
const MALFORMED: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"></system.net></configuration>";

/// The config of connector host `host` (1 or 2). In the fault scenario host 1 fails steps 3-6
/// (its service endpoint is dropped, a registration endpoint is intercepted, its connector uses
/// a proxy that asks for credentials, its updater's file is malformed) while host 2 passes
/// them; both fail the `broken` app, find `slow` close to its timeout, and report the tenant's
/// facts: the `Dormant` group has no active connector, `orphan` no group, Graph refuses. Only
/// host 1 fails the `error` app and finds `sluggish` slow; host 2 reaches both. The external URL
/// of `offline` refuses connections (nothing listens there), so host 2's walk stops at step 10.
/// Both find `legacy`'s backend speaking only TLS 1.0/1.1 (step 7 not evaluated off Windows).
/// Host 2 also exports the per-app step matrix (`metrics.per_step_series`), which some panels
/// read; host 1 exports the default series only.
fn config(dir: &Path, graph_url: &str, faulty: bool, host: u8) -> String {
    let host_faults = faulty && host == 1;
    std::fs::write(dir.join("secret"), "s3cret").unwrap();
    std::fs::write(
        dir.join("connector.exe.config"),
        if host_faults { PROXIED } else { DIRECT },
    )
    .unwrap();
    std::fs::write(
        dir.join("updater.exe.config"),
        if host_faults { MALFORMED } else { DIRECT },
    )
    .unwrap();
    let (service, extra) = if host_faults {
        (
            "tenant.bootstrap.msappproxy.test",
            "\n      - {host: intercepted.login.test, port: 443, purpose: registration}",
        )
    } else {
        ("tenant2.bootstrap.msappproxy.test", "")
    };
    let (error_backend, sluggish_backend) = if host == 1 {
        ("error", "slow")
    } else {
        ("ok", "ok")
    };
    let (groups, apps) = if faulty {
        (
            "      - {name: Default, connectors: [{machine_name: CONN-01, status: active}, {machine_name: CONN-02, status: active}]}\n      - {name: Dormant, connectors: [{machine_name: CONN-09, status: inactive}]}\n".to_string(),
            format!("      - {{name: error, connector_group: Default, internal_url: \"http://{error_backend}.backend.test/\"}}\n      - {{name: sluggish, connector_group: Default, internal_url: \"http://{sluggish_backend}.backend.test/\"}}\n      - {{name: broken, connector_group: Default, internal_url: \"http://error.backend.test/\"}}\n      - {{name: slow, connector_group: Default, internal_url: \"http://slow.backend.test/\"}}\n      - {{name: dormant, connector_group: Dormant, internal_url: \"http://ok.backend.test/\"}}\n      - {{name: orphan, internal_url: \"http://ok.backend.test/\"}}\n      - {{name: offline, connector_group: Default, internal_url: \"http://ok.backend.test/\", external_url: \"https://offline-contoso.msappproxy.test/\"}}\n      - {{name: legacy, connector_group: Default, internal_url: \"https://legacy.backend.test/\"}}\n"),
        )
    } else {
        (
            "      - {name: Default, connectors: [{machine_name: CONN-01, status: active}, {machine_name: CONN-02, status: active}]}\n".to_string(),
            "      - {name: healthy, connector_group: Default, internal_url: \"http://ok.backend.test/\", external_url: \"https://ok-contoso.msappproxy.test/\"}\n      - {name: slow, connector_group: Default, internal_url: \"http://ok.backend.test/\"}\n".to_string(),
        )
    };
    let per_step_series = host == 2;
    format!(
        "tenant_id: t-id
inventory:
  refresh_interval: 2s  # stale after three: 6 s, well above a loaded CI machine's round and scrape
  graph:
    client_id: c-id
    auth: client_secret
    client_secret_file: {dir}/secret
    graph_url: {graph_url}
    login_url: {graph_url}
  static:
    connector_groups:
{groups}    apps:
{apps}connector:
  machine_name: CONN-0{host}
  groups: [all]
  service_config: {dir}/connector.exe.config
  updater_config: {dir}/updater.exe.config
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    replace:
      - {{host: {service}, port: 443, purpose: service}}
      - {{host: crl.digicert.test, port: 80, purpose: certificates}}{extra}
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
metrics:
  per_step_series: {per_step_series}
",
        dir = dir.display()
    )
}

/// A real Prometheus inside the lab, scraping `targets` every second with the rules loaded.
struct Prometheus {
    _child: common::Running,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(netns: &Netns, targets: &[String]) -> Prometheus {
        let targets = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let dir = tempfile::tempdir().unwrap();
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/appproxy.rules.yml");
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{rules}]\nscrape_configs:\n  - job_name: appproxy\n    static_configs: [{{targets: [{targets}]}}]\n"
            ),
        )
        .unwrap();
        let mut command = netns.command("prometheus");
        command
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:19090");
        // Prometheus logs "Server is ready to receive web requests." with logfmt's address=...
        let child = common::launch_until(command, "Server is ready");
        Prometheus {
            _child: child,
            _dir: dir,
        }
    }

    /// An instant query; the series it returns (their label sets).
    fn query(&self, netns: &Netns, expr: &str) -> Vec<Value> {
        let output = netns
            .command("curl")
            .args([
                "-s",
                "-m",
                "10",
                "--data-urlencode",
                &format!("query={expr}"),
                "http://127.0.0.1:19090/api/v1/query",
            ])
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        assert_eq!(answer["status"], "success", "query {expr} failed: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// An alerting rule of the rule file. Rules that share an alert name (the page and the ticket
/// of one alert, the tenant's steps beside the per-app ones) are told apart by `key`: the name
/// with their severity and flow_step, so each of them must fire, not just one per name.
struct Rule {
    name: String,
    key: String,
    group: String,
    expr: String,
}

fn alert_rules() -> Vec<Rule> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/alerts/appproxy.rules.yml"
    ))
    .unwrap();
    let file: Value = serde_saphyr::from_str(&text).unwrap();
    let mut rules: Vec<Rule> = Vec::new();
    for group in file["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue; // a recording rule
            };
            let labels = &rule["labels"];
            rules.push(Rule {
                name: name.to_string(),
                key: format!(
                    "{name} ({}, {})",
                    labels["severity"].as_str().unwrap_or(""),
                    labels["flow_step"].as_str().unwrap_or("")
                ),
                group: group["name"].as_str().unwrap().to_string(),
                expr: rule["expr"].as_str().unwrap().to_string(),
            });
        }
    }
    let keys: BTreeSet<&str> = rules.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), rules.len(), "two rules with one key");
    rules
}

/// Alerts no lab scenario can raise, each tested by promtool instead: a probe round that stops
/// while the exporter still answers (alerts/tests/exporter.rules.test.yml) takes a hung prober
/// and ten minutes.
const NOT_INDUCIBLE: [&str; 1] = ["AppProxyProbesStale"];

/// The rules on the connector host's own health and capacity (groups
/// `appproxy.connector-health`, `appproxy.connector-capacity`): their series come only from a
/// Windows connector host, so on this Linux exporter they never fire (every host check is not
/// evaluated here). Their firing is tested by promtool (alerts/tests/connector-health.rules.test.yml,
/// alerts/tests/capacity.rules.test.yml) and their series by scripts/wine-smoke.
fn is_windows_only(rule: &Rule) -> bool {
    rule.group == "appproxy.connector-health" || rule.group == "appproxy.connector-capacity"
}

/// Series only a Windows connector host exports (names, or the start of names): a dashboard
/// query that reads one has no data on this Linux lab. scripts/wine-smoke checks the version
/// and capacity series on a scrape of the Windows build; the event log's last timestamp comes
/// from the connector's own logs, which Wine has not (its rendering is tested in
/// src/metrics/host.rs).
const WINDOWS_ONLY_SERIES: [&str; 10] = [
    "appproxy_connector_releases_behind",
    "appproxy_connector_file_version_info",
    "appproxy_connector_release_list_info",
    "appproxy_connector_event_last_timestamp_seconds",
    "appproxy_connector_process_",
    "appproxy_host_cpu_",
    "appproxy_host_memory_",
    "appproxy_host_tcp_connections",
    "appproxy_host_ephemeral_ports",
    "appproxy_host_dynamic_port_range",
];

/// Every query of every dashboard: (dashboard, where, expression). Panel targets, the
/// variables' `label_values(selector, label)` as the selector's series, and the annotations.
/// The lab runs for less than any alert's `for:`, so an annotation's firing alerts are looked
/// for among pending ones too.
fn dashboard_exprs() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let board: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut panels: Vec<Value> = board["panels"].as_array().cloned().unwrap_or_default();
        while let Some(panel) = panels.pop() {
            panels.extend(panel["panels"].as_array().cloned().unwrap_or_default());
            for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((
                        name.clone(),
                        panel["title"].as_str().unwrap_or("").to_string(),
                        expr.to_string(),
                    ));
                }
            }
        }
        for variable in board["templating"]["list"].as_array().unwrap() {
            let query = variable["query"]["query"].as_str().unwrap_or("");
            if let Some(args) = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
            {
                let (selector, label) = args.rsplit_once(',').unwrap();
                out.push((
                    name.clone(),
                    format!("variable {}", variable["name"].as_str().unwrap()),
                    format!("count by ({}) ({selector})", label.trim()),
                ));
            }
        }
        for annotation in board["annotations"]["list"].as_array().unwrap() {
            if let Some(expr) = annotation["expr"].as_str() {
                out.push((
                    name.clone(),
                    format!("annotation {}", annotation["name"].as_str().unwrap_or("")),
                    expr.replace(r#"alertstate="firing""#, r#"alertstate=~"firing|pending""#),
                ));
            }
        }
    }
    out
}

/// Grafana's variables as a dashboard user would pick them.
fn substitute(expr: &str, group: &str, app: &str) -> String {
    expr.replace("${__rate_interval}", "15s")
        .replace("$__rate_interval", "15s")
        .replace("$__interval", "5s")
        .replace("$__range", "1m")
        .replace("${job}", ".+")
        .replace("$job", ".+")
        .replace("${instance}", ".+")
        .replace("$instance", ".+")
        .replace("${connector_group}", group)
        .replace("$connector_group", group)
        .replace("${app}", app)
        .replace("$app", app)
}

/// The labels of the alerts (pending or firing) that `selector` picks out of ALERTS.
fn alerts(prometheus: &Prometheus, netns: &Netns, selector: &str) -> Vec<BTreeMap<String, String>> {
    prometheus
        .query(netns, &format!("ALERTS{{{selector}}}"))
        .iter()
        .map(|series| {
            serde_json::from_value::<BTreeMap<String, String>>(series["metric"].clone())
                .unwrap_or_default()
        })
        .collect()
}

/// A fleet check: what must hold, whether it holds now, and what Prometheus has.
struct Check {
    what: &'static str,
    holds: bool,
    found: String,
}

/// What the fleet needs of the alerts in the fault scenario: tenant-wide alerts once for both
/// hosts (no instance label); host-level ones a ticket for the host that fails; per-app ones one
/// page where every host fails the app and a ticket for the host where one of the two does.
fn fleet_checks(prometheus: &Prometheus, netns: &Netns, hosts: &[String]) -> Vec<Check> {
    let instances = |found: &[BTreeMap<String, String>]| -> BTreeSet<String> {
        found
            .iter()
            .filter_map(|a| a.get("instance").cloned())
            .collect()
    };
    let first: BTreeSet<String> = [hosts[0].clone()].into();
    let second: BTreeSet<String> = [hosts[1].clone()].into();
    let silent: BTreeSet<String> = [SILENT_HOST.to_string()].into();
    let mut checks = Vec::new();
    for (what, selector) in [
        (
            "a group without an active connector alerts once",
            r#"alertname="AppProxyNoActiveConnector",connector_group="Dormant""#,
        ),
        (
            "an app without a group alerts once",
            r#"alertname="AppProxyFlowStepFailing",app="orphan""#,
        ),
        (
            "an app of a group without an active connector alerts once for step 2",
            r#"alertname="AppProxyFlowStepFailing",app="dormant""#,
        ),
        (
            "the stale inventory alerts once",
            r#"alertname="AppProxyInventoryStale""#,
        ),
        (
            "a backend that speaks only TLS 1.0/1.1 is one ticket for the fleet",
            r#"alertname="AppProxyBackendLegacyTls",app="legacy""#,
        ),
        (
            "a custom-domain certificate 3 days from expiry pages once for the fleet",
            r#"alertname="AppProxyCustomDomainCertificateExpiring",app="renew-now",severity="critical""#,
        ),
        (
            "a custom-domain certificate 20 days from expiry is one ticket for the fleet",
            r#"alertname="AppProxyCustomDomainCertificateExpiring",app="renew-soon",severity="warning""#,
        ),
    ] {
        let found = alerts(prometheus, netns, selector);
        checks.push(Check {
            what,
            holds: found.len() == 1 && instances(&found).is_empty(),
            found: format!("{found:?}"),
        });
    }
    for (what, selector, expected, severity) in [
        (
            "the exporter that does not answer is down, the others are not",
            r#"alertname="AppProxyExporterDown""#,
            &silent,
            "warning",
        ),
        (
            "a failed reload alerts for that exporter only",
            r#"alertname="AppProxyConfigReloadFailed""#,
            &second,
            "warning",
        ),
        (
            "the port test of one host of two is a ticket for that host only",
            r#"alertname="AppProxyPortBlocked",port="443""#,
            &first,
            "warning",
        ),
        (
            "an app whose backend fails from one host of two is a ticket for that host",
            r#"alertname="AppProxyBackendDown",app="error""#,
            &first,
            "warning",
        ),
        (
            "an app close to its timeout from one host of two is a ticket for that host",
            r#"alertname="AppProxyBackendTimeoutRisk",app="sluggish""#,
            &first,
            "warning",
        ),
        (
            "an app whose walk fails on one host of two is a ticket for that host",
            r#"alertname="AppProxyFlowStepFailing",app="error""#,
            &first,
            "warning",
        ),
    ] {
        let found = alerts(prometheus, netns, selector);
        let holds = &instances(&found) == expected
            && found.len() == expected.len()
            && found
                .iter()
                .all(|a| a.get("severity").map(String::as_str) == Some(severity));
        checks.push(Check {
            what,
            holds,
            found: format!("{found:?}"),
        });
    }
    // What every host fails is one page for the fleet, without any host's labels: per app, or
    // per connector group and step (the walk of `broken` stops at a different step on each host,
    // so it pages once per step).
    for (what, selector, most) in [
        (
            "an app whose backend fails from both hosts pages once",
            r#"alertname="AppProxyBackendDown",app="broken""#,
            1,
        ),
        (
            "an app close to its timeout from both hosts pages once",
            r#"alertname="AppProxyBackendTimeoutRisk",app="slow""#,
            1,
        ),
        (
            "an app whose walk fails on both hosts (at different steps) pages once per step",
            r#"alertname="AppProxyFlowStepFailing",app="broken""#,
            2,
        ),
        (
            "a group whose every host fails step 2 pages once for the group",
            r#"alertname="AppProxyConnectorGroupStepFailing",connector_group="Dormant""#,
            1,
        ),
    ] {
        let found = alerts(prometheus, netns, selector);
        let holds = !found.is_empty()
            && found.len() <= most
            && instances(&found).is_empty()
            && found
                .iter()
                .all(|a| a.get("severity").map(String::as_str) == Some("critical"));
        checks.push(Check {
            what,
            holds,
            found: format!("{found:?}"),
        });
    }
    checks
}

/// A third connector host whose exporter does not answer: nothing listens on port 1.
const SILENT_HOST: &str = "127.0.0.1:1";

struct Scenario {
    /// The keys of the rules whose expression returned series.
    firing: BTreeSet<String>,
    answered: BTreeMap<String, usize>,
    fleet: Vec<Check>,
}

fn run_scenario(lab: &Lab, faulty: bool) -> Scenario {
    let graph = GraphServer::start_in(&lab.netns, &tenant(faulty), 100);
    if faulty {
        lab.firewall(&["-p tcp -d 127.0.0.11 --dport 443 -j DROP"]);
    } else {
        lab.firewall(&[]);
    }
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let files: Vec<_> = (1..=2u8)
        .zip(&dirs)
        .map(|(host, dir)| write_config(dir.path(), &config(dir.path(), &graph.url, faulty, host)))
        .collect();
    let exporters: Vec<_> = files.iter().map(|file| lab.start(file)).collect();
    let hosts: Vec<String> = exporters.iter().map(|e| e.address.to_string()).collect();
    let mut targets = hosts.clone();
    if faulty {
        refuse_graph(lab, &graph, &exporters);
        targets.push(SILENT_HOST.to_string());
        // Host 2's configuration is changed into an invalid one and reloaded: it keeps the old.
        std::fs::write(&files[1], "probes: {interval: soon}\n").unwrap();
        let output = lab
            .netns
            .command("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .arg(format!("http://{}/-/reload", exporters[1].address))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "500",
            "the reload of an invalid file"
        );
    }
    let prometheus = Prometheus::start(&lab.netns, &targets);

    let rules = alert_rules();
    let expected: BTreeSet<&str> = rules
        .iter()
        .filter(|r| !is_windows_only(r) && !NOT_INDUCIBLE.contains(&r.name.as_str()))
        .map(|r| r.key.as_str())
        .collect();
    // Wait until every rule expected in this scenario returns series and the alerts carry the
    // fleet's labels, or long enough for the healthy one.
    let deadline = Instant::now() + Duration::from_secs(if faulty { 60 } else { 12 });
    let (firing, fleet) = loop {
        let firing: BTreeSet<String> = rules
            .iter()
            .filter(|r| !prometheus.query(&lab.netns, &r.expr).is_empty())
            .map(|r| r.key.clone())
            .collect();
        let fleet = if faulty {
            fleet_checks(&prometheus, &lab.netns, &hosts)
        } else {
            Vec::new()
        };
        let done = faulty
            && expected.iter().all(|key| firing.contains(*key))
            && fleet.iter().all(|check| check.holds);
        if done || Instant::now() >= deadline {
            break (firing, fleet);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let mut answered = BTreeMap::new();
    for (board, title, expr) in &dashboard_exprs() {
        let found: usize = [
            ("Default", "slow"),
            ("Default", "healthy"),
            ("Default", "error"),
            ("Graph", "renew-now"),
            ("Graph", "files"),
            ("Default", "legacy"),
            (".*", ".*"),
        ]
        .iter()
        .map(|(group, app)| {
            prometheus
                .query(&lab.netns, &substitute(expr, group, app))
                .len()
        })
        .max()
        .unwrap_or(0);
        answered.insert(format!("{board} / {title} / {expr}"), found);
    }
    Scenario {
        firing,
        answered,
        fleet,
    }
}

#[test]
fn every_alert_fires_in_its_scenario_only_once_per_fleet_or_host_and_every_dashboard_query_has_data()
 {
    let lab = Lab::up(&spec());
    let healthy = run_scenario(&lab, false);
    assert!(
        healthy.firing.is_empty(),
        "alerts whose expression returns series while healthy: {:?}",
        healthy.firing
    );

    let fault = run_scenario(&lab, true);
    let rules = alert_rules();
    let windows_only: BTreeSet<&str> = rules
        .iter()
        .filter(|r| is_windows_only(r))
        .map(|r| r.key.as_str())
        .collect();
    assert!(
        !windows_only.is_empty(),
        "the connector-health group is gone"
    );
    let false_alarms: Vec<&&str> = windows_only
        .iter()
        .filter(|key| fault.firing.contains(**key))
        .collect();
    assert!(
        false_alarms.is_empty(),
        "host-health alerts firing where no host check is evaluated: {false_alarms:?}"
    );
    for name in NOT_INDUCIBLE {
        assert!(
            rules.iter().any(|r| r.name == name),
            "{name} is listed as not inducible but is not in the rule file"
        );
    }
    let missing: Vec<&str> = rules
        .iter()
        .filter(|r| !is_windows_only(r) && !NOT_INDUCIBLE.contains(&r.name.as_str()))
        .map(|r| r.key.as_str())
        .filter(|key| !fault.firing.contains(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "rules whose expression returns nothing in the fault scenario: {missing:?}"
    );
    let wrong: Vec<String> = fault
        .fleet
        .iter()
        .filter(|check| !check.holds)
        .map(|check| format!("{}: found {}", check.what, check.found))
        .collect();
    assert!(wrong.is_empty(), "fleet semantics:\n{}", wrong.join("\n"));

    let empty: Vec<&String> = healthy
        .answered
        .iter()
        .filter(|(key, n)| **n == 0 && fault.answered.get(*key).copied().unwrap_or(0) == 0)
        .filter(|(key, _)| {
            !WINDOWS_ONLY_SERIES
                .iter()
                .any(|series| key.contains(series))
        })
        .map(|(key, _)| key)
        .collect();
    assert!(!healthy.answered.is_empty(), "no dashboard queries found");
    assert!(
        empty.is_empty(),
        "dashboard queries with no data in any scenario:\n{}",
        empty
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
