//! The monitoring content against what the exporter really emits: a real Prometheus (with
//! alerts/appproxy.rules.yml loaded) scrapes the exporter in a network namespace, first in a
//! healthy scenario, then with every fault at once. Each alert's expression returns series in
//! the fault scenario and none in the healthy one; every dashboard query returns data in at
//! least one of them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{GraphServer, Lab, Netns, write_config};
use serde_json::{Value, json};

fn spec() -> Value {
    json!({
        "hosts": {
            "tenant.bootstrap.msappproxy.test": "127.0.0.11", "crl.digicert.test": "127.0.0.21",
            "intercepted.login.test": "127.0.0.31",
            "ok.backend.test": "127.0.0.51", "slow.backend.test": "127.0.0.52", "error.backend.test": "127.0.0.54",
            "ok-contoso.msappproxy.test": "127.0.0.72"
        },
        "servers": [
            {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.21", "port": 80, "kind": "http"},
            {"ip": "127.0.0.31", "port": 443, "kind": "tls", "issuer": "interceptor", "cn": "intercepted.login.test"},
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.52", "port": 80, "kind": "http", "delay": 1.7},
            {"ip": "127.0.0.54", "port": 80, "kind": "http", "status": 503},
            {"ip": "127.0.0.72", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "ok-contoso.msappproxy.test", "status": 302}
        ],
        "proxy": {"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80], "basic_auth": "user:pass"}
    })
}

fn tenant(forbidden: bool) -> Value {
    json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": "s3cret",
        "groups": [{"id": "g9", "name": "Graph", "isDefault": false, "region": "eur", "connectorGroupType": "applicationProxy"}],
        "connectors": [{"id": "c9", "machineName": "CONN-09", "externalIp": "203.0.113.9", "status": "active", "version": "1.5.3829.0", "memberOf": ["g9"]}],
        "applications": [{"id": "a9", "displayName": "graph-app", "connectorGroupId": "g9",
            "onPremisesPublishing": {"internalUrl": "http://ok.backend.test/", "applicationServerTimeout": "Default"}}],
        "faults": if forbidden { json!({"forbidden": "Authorization_RequestDenied"}) } else { json!({}) }
    })
}

const DIRECT: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"/></system.net></configuration>";
const PROXIED: &str = "<configuration><system.net><defaultProxy><proxy proxyaddress=\"http://127.0.0.1:3128\"/></defaultProxy></system.net></configuration>";
const MALFORMED: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"></system.net></configuration>";

fn config(dir: &Path, graph_url: &str, faulty: bool) -> String {
    std::fs::write(dir.join("secret"), "s3cret").unwrap();
    std::fs::write(
        dir.join("connector.exe.config"),
        if faulty { PROXIED } else { DIRECT },
    )
    .unwrap();
    std::fs::write(
        dir.join("updater.exe.config"),
        if faulty { MALFORMED } else { DIRECT },
    )
    .unwrap();
    let (groups, apps, extra) = if faulty {
        (
            "      - {name: Default, connectors: [{machine_name: CONN-01, status: active}]}\n      - {name: Dormant, connectors: [{machine_name: CONN-02, status: inactive}]}\n",
            "      - {name: error, connector_group: Default, internal_url: \"http://error.backend.test/\"}\n      - {name: slow, connector_group: Default, internal_url: \"http://slow.backend.test/\"}\n      - {name: dormant, connector_group: Dormant, internal_url: \"http://ok.backend.test/\"}\n",
            "\n      - {host: intercepted.login.test, port: 443, purpose: registration}",
        )
    } else {
        (
            "      - {name: Default, connectors: [{machine_name: CONN-01, status: active}]}\n",
            "      - {name: healthy, connector_group: Default, internal_url: \"http://ok.backend.test/\", external_url: \"https://ok-contoso.msappproxy.test/\"}\n      - {name: slow, connector_group: Default, internal_url: \"http://ok.backend.test/\"}\n",
            "",
        )
    };
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
      - {{host: tenant.bootstrap.msappproxy.test, port: 443, purpose: service}}
      - {{host: crl.digicert.test, port: 80, purpose: certificates}}{extra}
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
",
        dir = dir.display()
    )
}

/// A real Prometheus inside the lab, scraping `target` every second with the rules loaded.
struct Prometheus {
    _child: common::Running,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(netns: &Netns, target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/appproxy.rules.yml");
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{rules}]\nscrape_configs:\n  - job_name: appproxy\n    static_configs: [{{targets: ['{target}']}}]\n"
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

/// (alert name, expression) from the rule file.
fn alert_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/alerts/appproxy.rules.yml"
    ))
    .unwrap();
    let file: Value = serde_saphyr::from_str(&text).unwrap();
    file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["expr"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The alerts on the connector host's own health (group `appproxy.connector-health`): their
/// series come only from a Windows connector host, so on this Linux exporter they never fire
/// (every host check is not evaluated here). Their firing is tested by promtool
/// (alerts/tests/connector-health.rules.test.yml) and their series by scripts/wine-smoke.
fn windows_only_alerts() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/alerts/appproxy.rules.yml"
    ))
    .unwrap();
    let file: Value = serde_saphyr::from_str(&text).unwrap();
    file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["name"] == "appproxy.connector-health")
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect()
}

/// Every panel target of every dashboard: (dashboard, panel title, expression).
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

fn run_scenario(lab: &Lab, faulty: bool) -> (BTreeSet<String>, BTreeMap<String, usize>) {
    let graph = GraphServer::start_in(&lab.netns, &tenant(faulty), 100);
    if faulty {
        lab.firewall(&["-p tcp -d 127.0.0.11 --dport 443 -j DROP"]);
    } else {
        lab.firewall(&[]);
    }
    let dir = tempfile::tempdir().unwrap();
    let exporter = lab.start(&write_config(
        dir.path(),
        &config(dir.path(), &graph.url, faulty),
    ));
    let prometheus = Prometheus::start(&lab.netns, exporter.address);

    let alerts = alert_exprs();
    let dashboards = dashboard_exprs();
    // Wait until every alert expected in this scenario shows, or long enough for the healthy one.
    let deadline = Instant::now() + Duration::from_secs(if faulty { 40 } else { 12 });
    let firing: BTreeSet<String> = loop {
        let firing: BTreeSet<String> = alerts
            .iter()
            .filter(|(_, expr)| !prometheus.query(&lab.netns, expr).is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        if (faulty && firing.len() == alerts.len()) || Instant::now() >= deadline {
            break firing;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let mut answered = BTreeMap::new();
    for (board, title, expr) in &dashboards {
        let found: usize = [
            ("Default", "slow"),
            ("Default", "healthy"),
            ("Default", "error"),
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
    (firing, answered)
}

#[test]
fn every_alert_fires_in_its_scenario_only_and_every_dashboard_query_has_data() {
    let lab = Lab::up(&spec());
    let (healthy_alerts, healthy_panels) = run_scenario(&lab, false);
    assert!(
        healthy_alerts.is_empty(),
        "alerts whose expression returns series while healthy: {healthy_alerts:?}"
    );

    let (fault_alerts, fault_panels) = run_scenario(&lab, true);
    let windows_only = windows_only_alerts();
    assert!(
        !windows_only.is_empty(),
        "the connector-health group is gone"
    );
    let false_alarms: Vec<&String> = windows_only.intersection(&fault_alerts).collect();
    assert!(
        false_alarms.is_empty(),
        "host-health alerts firing where no host check is evaluated: {false_alarms:?}"
    );
    let all: BTreeSet<String> = alert_exprs()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !windows_only.contains(name))
        .collect();
    let missing: Vec<&String> = all.difference(&fault_alerts).collect();
    assert!(
        missing.is_empty(),
        "alerts whose expression returns nothing in the fault scenario: {missing:?}"
    );

    let empty: Vec<&String> = healthy_panels
        .iter()
        .filter(|(key, n)| **n == 0 && fault_panels.get(*key).copied().unwrap_or(0) == 0)
        .map(|(key, _)| key)
        .collect();
    assert!(!healthy_panels.is_empty(), "no dashboard queries found");
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
