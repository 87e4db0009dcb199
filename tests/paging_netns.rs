//! The page reaches the on-call person once and right, in fleets as users build them: connector
//! hosts in two sites with the target labels a fleet adds, a real exporter on each, a real
//! Prometheus (an HA pair in one case) with the rules of alerts/appproxy.rules.yml, the
//! Alertmanager configuration of deploy/alertmanager/alertmanager.yml in a real Alertmanager, and
//! its two receivers recorded by a webhook (tests/paging/webhook.py). For each case it asserts
//! which notifications reach the pager and which reach tickets, alert by alert, and prints them
//! as a person receives them.
//!
//! Time runs 30 times faster than in production: every `for`, `keep_firing_for` and range of the
//! rule file is divided by 30 (five minutes become ten seconds), the exporters probe every second
//! and Prometheus scrapes and evaluates every second. Alertmanager's configuration is the shipped
//! one, but for the receivers' URLs, so its 30 s group_wait is real.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Lab, Running, launch, launch_until, write_config};
use serde_json::{Value, json};

/// A minute of the rules is this many seconds here.
const SECONDS_PER_MINUTE: u64 = 2;

fn spec() -> Value {
    json!({
        "hosts": {
            "tenant.bootstrap.msappproxy.test": "127.0.0.11",
            "dropped.bootstrap.msappproxy.test": "127.0.0.13",
            "crl.digicert.test": "127.0.0.21",
            "ok.backend.test": "127.0.0.51", "error.backend.test": "127.0.0.54",
            "legacy.backend.test": "127.0.0.55"
        },
        "servers": [
            {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.13", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "dropped.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.21", "port": 80, "kind": "http"},
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.54", "port": 80, "kind": "http", "status": 503},
            {"ip": "127.0.0.55", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "legacy.backend.test", "max_tls": "1.1"}
        ]
    })
}

/// A connector host of a case's fleet.
#[derive(Clone, Copy)]
struct Host {
    name: &'static str,
    site: &'static str,
    region: &'static str,
    /// Its only service endpoint is dropped by the firewall: ports test and endpoints fail.
    blocked: bool,
    /// payroll's backend answers 503 from this host.
    payroll_down: bool,
    /// payroll's backend speaks only TLS 1.0/1.1 (which this Linux host cannot judge at
    /// step 7: a Windows connector's SChannel may still speak it).
    payroll_legacy_tls: bool,
}

const fn host(name: &'static str, site: &'static str, region: &'static str) -> Host {
    Host {
        name,
        site,
        region,
        blocked: false,
        payroll_down: false,
        payroll_legacy_tls: false,
    }
}

/// Two hosts in Amsterdam, one in New York: the connectors of group Default.
const FLEET: [Host; 3] = [
    host("conn-ams-01", "ams", "eu"),
    host("conn-ams-02", "ams", "eu"),
    host("conn-nyc-01", "nyc", "us"),
];

struct Case {
    name: &'static str,
    hosts: Vec<Host>,
    /// Graph's word (here the static inventory's) on the group's connectors.
    connectors_active: bool,
    /// Prometheus servers evaluating the rules, each with its own `replica` external label.
    replicas: usize,
    /// The host whose exporter stops a few seconds in.
    stops: Option<&'static str>,
    /// What each receiver gets: one entry per notification, its alerts as `key`s.
    pager: Vec<Vec<&'static str>>,
    tickets: Vec<Vec<&'static str>>,
}

fn fleet(change: impl Fn(&mut Host)) -> Vec<Host> {
    let mut hosts = FLEET.to_vec();
    hosts.iter_mut().for_each(change);
    hosts
}

fn cases() -> Vec<Case> {
    let base = |name| Case {
        name,
        hosts: FLEET.to_vec(),
        connectors_active: true,
        replicas: 1,
        stops: None,
        pager: Vec::new(),
        tickets: Vec::new(),
    };
    vec![
        Case {
            ..base("a healthy fleet pages nobody and opens no ticket")
        },
        Case {
            hosts: fleet(|h| h.blocked = h.name == "conn-ams-01"),
            tickets: vec![
                vec!["AppProxyPortBlocked conn-ams-01 port=443"],
                vec![
                    "AppProxyRequiredEndpointUnreachable conn-ams-01 port=443 host=dropped.bootstrap.msappproxy.test",
                ],
            ],
            ..base(
                "one host fails a host-level step: tickets for it, its apps' tickets quiet, no page",
            )
        },
        Case {
            hosts: fleet(|h| h.blocked = true),
            pager: vec![vec![
                "AppProxyConnectorGroupStepFailing Default step=port_test",
                "AppProxyConnectorGroupStepFailing Default step=required_endpoints",
            ]],
            tickets: vec![
                vec![
                    "AppProxyPortBlocked conn-ams-01 port=443",
                    "AppProxyPortBlocked conn-ams-02 port=443",
                    "AppProxyPortBlocked conn-nyc-01 port=443",
                ],
                vec![
                    "AppProxyRequiredEndpointUnreachable conn-ams-01 port=443 host=dropped.bootstrap.msappproxy.test",
                    "AppProxyRequiredEndpointUnreachable conn-ams-02 port=443 host=dropped.bootstrap.msappproxy.test",
                    "AppProxyRequiredEndpointUnreachable conn-nyc-01 port=443 host=dropped.bootstrap.msappproxy.test",
                ],
            ],
            ..base("every host fails a host-level step: one page for the group, no page per app")
        },
        Case {
            hosts: fleet(|h| h.payroll_down = h.site == "ams"),
            tickets: vec![vec![
                "AppProxyBackendDown conn-ams-01 payroll",
                "AppProxyBackendDown conn-ams-02 payroll",
            ]],
            ..base("one of two sites fails an app: a ticket per failing host, no page")
        },
        Case {
            hosts: fleet(|h| h.payroll_down = true),
            pager: vec![vec!["AppProxyBackendDown payroll"]],
            ..base("every host in both sites fails an app: one page for the app")
        },
        Case {
            connectors_active: false,
            pager: vec![vec!["AppProxyNoActiveConnector Default"]],
            ..base(
                "a group loses its last active connector: one page, its apps' and hosts' step 2 quiet",
            )
        },
        Case {
            stops: Some("conn-nyc-01"),
            tickets: vec![vec!["AppProxyExporterDown conn-nyc-01"]],
            ..base("an exporter goes down: a ticket for its host, no page")
        },
        Case {
            hosts: fleet(|h| h.payroll_down = true),
            replicas: 2,
            pager: vec![vec!["AppProxyBackendDown payroll"]],
            ..base("two HA Prometheus replicas send the same alerts: one page, one alert in it")
        },
        Case {
            hosts: fleet(|h| h.payroll_legacy_tls = true),
            replicas: 2,
            tickets: vec![vec!["AppProxyBackendLegacyTls payroll"]],
            ..base(
                "an app whose backend speaks only TLS 1.0/1.1, from both sites and two replicas: one ticket, no page",
            )
        },
    ]
}

/// The rule file with time scaled down: `for`, `keep_firing_for` and every `[range]` divided by 30.
fn scaled_rules(out: &Path) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/alerts/appproxy.rules.yml"
    ))
    .unwrap();
    let mut rules: Value = serde_saphyr::from_str(&text).unwrap();
    let mut scaled = 0;
    for group in rules["groups"].as_array_mut().unwrap() {
        for rule in group["rules"].as_array_mut().unwrap() {
            for key in ["for", "keep_firing_for"] {
                if let Some(duration) = rule[key].as_str() {
                    rule[key] = json!(scale(duration));
                    scaled += 1;
                }
            }
            let expr = rule["expr"].as_str().unwrap().to_string();
            rule["expr"] = json!(scale_ranges(&expr));
        }
    }
    assert!(scaled > 40, "only {scaled} durations in the rule file");
    // JSON is YAML: Prometheus reads it as a rule file.
    std::fs::write(out, rules.to_string()).unwrap();
}

/// `5m` -> `10s`.
fn scale(duration: &str) -> String {
    let (number, unit) = duration.split_at(duration.len() - 1);
    let minutes: u64 = number.parse().unwrap();
    let minutes = match unit {
        "m" => minutes,
        "h" => minutes * 60,
        _ => panic!("a duration of the rules that is not in minutes or hours: {duration}"),
    };
    format!("{}s", minutes * SECONDS_PER_MINUTE)
}

fn scale_ranges(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').unwrap() + open;
        out.push_str(&rest[..=open]);
        out.push_str(&scale(&rest[open + 1..close]));
        out.push(']');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

const DIRECT: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"/></system.net></configuration>";

fn exporter_config(dir: &Path, case: &Case, host: &Host) -> String {
    std::fs::write(dir.join("connector.exe.config"), DIRECT).unwrap();
    std::fs::write(dir.join("updater.exe.config"), DIRECT).unwrap();
    let status = if case.connectors_active {
        "active"
    } else {
        "inactive"
    };
    let connectors: Vec<String> = case
        .hosts
        .iter()
        .map(|h| format!("{{machine_name: {}, status: {status}}}", h.name))
        .collect();
    let service = if host.blocked { "dropped" } else { "tenant" };
    let payroll = match (host.payroll_down, host.payroll_legacy_tls) {
        (true, _) => "http://error.backend.test/",
        (false, true) => "https://legacy.backend.test/",
        (false, false) => "http://ok.backend.test/",
    };
    format!(
        "inventory:
  refresh_interval: 2s
  static:
    connector_groups:
      - {{name: Default, connectors: [{connectors}]}}
    apps:
      - {{name: payroll, connector_group: Default, internal_url: \"{payroll}\"}}
      - {{name: intranet, connector_group: Default, internal_url: \"http://ok.backend.test/\"}}
connector:
  machine_name: {name}
  groups: auto
  service_config: {dir}/connector.exe.config
  updater_config: {dir}/updater.exe.config
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    replace:
      - {{host: {service}.bootstrap.msappproxy.test, port: 443, purpose: service}}
      - {{host: crl.digicert.test, port: 80, purpose: certificates}}
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
",
        connectors = connectors.join(", "),
        name = host.name,
        dir = dir.display()
    )
}

/// The running parts of one case, stopped when dropped.
struct World {
    exporters: BTreeMap<&'static str, Running>,
    /// Exporter address (as `instance`) to host name, for reading the alerts.
    names: BTreeMap<String, &'static str>,
    _servers: Vec<Running>,
    alertmanager: String,
    notifications: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start(lab: &Lab, index: usize, case: &Case, rules: &Path) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut exporters = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut targets: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for (n, host) in case.hosts.iter().enumerate() {
        let home = dir.path().join(host.name);
        std::fs::create_dir(&home).unwrap();
        let config = write_config(&home, &exporter_config(&home, case, host));
        // Each host at an address of its own, so `instance` (the address without the port, as
        // deploy/prometheus/prometheus.yml relabels it) tells them apart.
        let address = format!("127.0.2.{}", index * 10 + n + 1);
        let mut command = lab.netns.command("env");
        command
            .arg(format!("SSL_CERT_FILE={}", lab.ca_bundle))
            .arg(env!("CARGO_BIN_EXE_appproxy_exporter"))
            .arg(format!("--web.listen-address={address}:9869"))
            .arg(format!("--config.file={}", config.display()));
        exporters.insert(host.name, launch(command));
        names.insert(address.clone(), host.name);
        targets
            .entry((host.site, host.region))
            .or_default()
            .push(format!("{address}:9869"));
    }
    let port = 19100 + index * 10;
    let mut servers = Vec::new();

    let notifications = dir.path().join("notifications.jsonl");
    let mut webhook = lab.netns.command("python3");
    webhook
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/paging/webhook.py"
        ))
        .arg(format!("--listen=127.0.0.1:{}", port + 9))
        .arg(format!("--out={}", notifications.display()));
    servers.push(launch_until(webhook, "listening"));

    let alertmanager = format!("127.0.0.1:{}", port + 8);
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(&am_config, alertmanager_config(port + 9)).unwrap();
    let mut am = lab.netns.command("prometheus-alertmanager");
    am.arg(format!("--config.file={}", am_config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am-data").display()
        ))
        .arg(format!("--web.listen-address={alertmanager}"))
        .arg("--cluster.listen-address=");
    servers.push(launch_until(am, "Listening"));

    for replica in 0..case.replicas {
        let name = ["prometheus-a", "prometheus-b"][replica];
        let file = dir.path().join(format!("{name}.yml"));
        std::fs::write(
            &file,
            prometheus_config(name, rules, &alertmanager, &targets).to_string(),
        )
        .unwrap();
        let mut prometheus = lab.netns.command("prometheus");
        prometheus
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join(format!("{name}-data")).display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", port + replica));
        servers.push(launch_until(prometheus, "Server is ready"));
    }
    World {
        exporters,
        names,
        _servers: servers,
        alertmanager,
        notifications,
        _dir: dir,
    }
}

/// deploy/alertmanager/alertmanager.yml as shipped, its receivers' URLs on the local webhook.
fn alertmanager_config(webhook: usize) -> String {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/alertmanager/alertmanager.yml"
    ))
    .unwrap();
    let mut config: Value = serde_saphyr::from_str(&shipped).unwrap();
    for receiver in config["receivers"].as_array_mut().unwrap() {
        let name = receiver["name"].as_str().unwrap().to_string();
        for hook in receiver["webhook_configs"].as_array_mut().unwrap() {
            hook["url"] = json!(format!("http://127.0.0.1:{webhook}/{name}"));
        }
    }
    config.to_string()
}

/// deploy/prometheus/prometheus.yml with this case's targets, rules, Alertmanager and intervals.
fn prometheus_config(
    replica: &str,
    rules: &Path,
    alertmanager: &str,
    targets: &BTreeMap<(&str, &str), Vec<String>>,
) -> Value {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/prometheus.yml"
    ))
    .unwrap();
    let mut config: Value = serde_saphyr::from_str(&shipped).unwrap();
    config["global"]["scrape_interval"] = json!("1s");
    config["global"]["evaluation_interval"] = json!("1s");
    config["global"]["external_labels"]["replica"] = json!(replica);
    config["rule_files"] = json!([rules]);
    config["alerting"]["alertmanagers"][0]["static_configs"] = json!([{"targets": [alertmanager]}]);
    let job = &mut config["scrape_configs"][0];
    job["scrape_interval"] = json!("1s");
    job["scrape_timeout"] = json!("1s");
    job["static_configs"] = targets
        .iter()
        .map(|((site, region), addresses)| {
            json!({"targets": addresses, "labels": {"site": site, "region": region}})
        })
        .collect();
    config
}

/// An alert as this test names it: its name, the host (by name), then what it is about.
fn key(labels: &Value, names: &BTreeMap<String, &'static str>) -> String {
    let label = |l: &str| labels[l].as_str().unwrap_or("");
    let mut parts = vec![label("alertname").to_string()];
    if let Some(name) = names.get(label("instance")) {
        parts.push((*name).to_string());
    }
    for about in ["connector_group", "app"] {
        if !label(about).is_empty() && (about == "app" || label("app").is_empty()) {
            parts.push(label(about).to_string());
        }
    }
    if label("alertname") == "AppProxyConnectorGroupStepFailing" {
        parts.push(format!("step={}", label("step_name")));
    }
    for detail in ["port", "host"] {
        if !label(detail).is_empty() {
            parts.push(format!("{detail}={}", label(detail)));
        }
    }
    parts.join(" ")
}

/// The notifications each receiver got so far, each as the sorted keys of its alerts.
fn received(world: &World) -> (BTreeMap<String, Vec<Vec<String>>>, Vec<String>) {
    let text = std::fs::read_to_string(&world.notifications).unwrap_or_default();
    let mut by_receiver: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut shown = Vec::new();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let notification = &record["notification"];
        let receiver = notification["receiver"].as_str().unwrap_or("?").to_string();
        let mut alerts: Vec<String> = notification["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| key(&a["labels"], &world.names))
            .collect();
        alerts.sort();
        shown.push(format!(
            "    to {receiver} ({}):\n{}",
            notification["status"].as_str().unwrap_or(""),
            notification["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!(
                    "      [{}] {}\n        {}\n        {}",
                    a["labels"]["severity"].as_str().unwrap_or(""),
                    key(&a["labels"], &world.names),
                    a["annotations"]["description"].as_str().unwrap_or(""),
                    a["annotations"]["runbook_url"].as_str().unwrap_or("")
                ))
                .collect::<Vec<_>>()
                .join("\n")
        ));
        by_receiver.entry(receiver).or_default().push(alerts);
    }
    for notifications in by_receiver.values_mut() {
        notifications.sort();
    }
    (by_receiver, shown)
}

/// Alertmanager's alerts: (key, state), the inhibited ones `suppressed`.
fn alertmanager_state(lab: &Lab, world: &World) -> BTreeSet<(String, String)> {
    let output = lab
        .netns
        .command("curl")
        .args(["-s", "-m", "5"])
        .arg(format!("http://{}/api/v2/alerts", world.alertmanager))
        .output()
        .unwrap();
    let alerts: Value = serde_json::from_slice(&output.stdout).unwrap_or(json!([]));
    alerts
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .map(|a| {
                    (
                        key(&a["labels"], &world.names),
                        a["status"]["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How many alerts the Prometheus on `port` has sent to Alertmanager.
fn sent(lab: &Lab, port: usize) -> f64 {
    let output = lab
        .netns
        .command("curl")
        .args(["-s", "-m", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("prometheus_notifications_sent_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Outcome {
    report: String,
    wrong: Option<String>,
}

fn run(lab: &Lab, index: usize, case: &Case, rules: &Path) -> Outcome {
    let mut world = start(lab, index, case, rules);
    let started = Instant::now();
    let expected: BTreeMap<String, Vec<Vec<String>>> =
        [("pager", &case.pager), ("tickets", &case.tickets)]
            .into_iter()
            .filter(|(_, n)| !n.is_empty())
            .map(|(receiver, notifications)| {
                let mut notifications: Vec<Vec<String>> = notifications
                    .iter()
                    .map(|alerts| {
                        let mut alerts: Vec<String> =
                            alerts.iter().map(|a| a.to_string()).collect();
                        alerts.sort();
                        alerts
                    })
                    .collect();
                notifications.sort();
                (receiver.to_string(), notifications)
            })
            .collect();
    let mut stopped = false;
    // Every alert fires within a minute (scaled: a `for` of ten minutes is 20 s) and is notified
    // 30 s later (group_wait); then nothing more may come.
    let settle = Duration::from_secs(90);
    let deadline = Duration::from_secs(150);
    let (got, shown) = loop {
        if let (Some(name), false) = (case.stops, stopped) {
            if started.elapsed() > Duration::from_secs(8) {
                // Its last scrapes were good; from now on Prometheus finds nothing there.
                world.exporters.remove(name);
                stopped = true;
            }
        }
        let (got, shown) = received(&world);
        let elapsed = started.elapsed();
        if (got == expected && elapsed >= settle) || elapsed >= deadline {
            break (got, shown);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let state = alertmanager_state(lab, &world);
    // Each replica of an HA pair sent its own copies: Alertmanager made them one.
    let silent: Vec<usize> = (0..case.replicas)
        .filter(|replica| sent(lab, 19100 + index * 10 + replica) == 0.0)
        .collect();
    let notified: BTreeSet<&String> = got.values().flatten().flatten().collect();
    let unsent: Vec<&(String, String)> = state
        .iter()
        .filter(|(key, state)| state == "active" && !notified.contains(key))
        .collect();
    let suppressed: Vec<&String> = state
        .iter()
        .filter(|(_, state)| state == "suppressed")
        .map(|(key, _)| key)
        .collect();
    let mut report = format!("\n## {}\n", case.name);
    if shown.is_empty() {
        report.push_str("    no notification\n");
    }
    for notification in &shown {
        report.push_str(notification);
        report.push('\n');
    }
    report.push_str(&format!("    inhibited in Alertmanager: {suppressed:?}\n"));
    let wrong = if !silent.is_empty() && !case.pager.is_empty() {
        Some(format!(
            "{}: Prometheus replica(s) {silent:?} sent Alertmanager nothing",
            case.name
        ))
    } else if got != expected {
        Some(format!(
            "{}: expected {expected:#?}\ngot {got:#?}",
            case.name
        ))
    } else if !unsent.is_empty() {
        Some(format!(
            "{}: alerts active in Alertmanager that no receiver got: {unsent:?}",
            case.name
        ))
    } else {
        None
    };
    Outcome { report, wrong }
}

#[test]
fn the_page_reaches_the_on_call_person_once_and_right_in_every_fleet_case() {
    let lab = Lab::up(&spec());
    // The only service endpoint of a blocked host is dropped: its port test and endpoints fail.
    lab.firewall(&["-p tcp -d 127.0.0.13 --dport 443 -j DROP"]);
    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_dir.path().join("appproxy.rules.json");
    scaled_rules(&rules);
    let cases = cases();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(index, case)| {
                let (lab, rules) = (&lab, &rules);
                scope.spawn(move || run(lab, index, case, rules))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("# What reached the pager and tickets, case by case");
    for outcome in &outcomes {
        println!("{}", outcome.report);
    }
    let wrong: Vec<&String> = outcomes.iter().filter_map(|o| o.wrong.as_ref()).collect();
    assert!(
        wrong.is_empty(),
        "{}",
        wrong
            .iter()
            .map(|w| w.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
