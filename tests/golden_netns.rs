//! Every output of the walk, byte for byte, against files recorded before the walk was moved
//! out of the scheduler (tests/golden/): `/metrics`, the page at `/`, `/api/v1/diagnosis` and
//! `diagnose` (JSON and text), for two lab scenarios that together fail every step: one host
//! whose connector cannot get out (steps 3-6), one whose apps fail on their own (1, 2, 7-10).
//! Only what a clock decides is masked before comparing: timestamps, durations, latency shares,
//! counters of requests made so far, and the build's revision.
//!
//! `APPPROXY_GOLDEN=update cargo test --test golden_netns` writes the files anew; the diff of
//! tests/golden/ is then the change in behaviour, to be named in the CHANGELOG.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Lab, Running, write_config};
use regex::Regex;
use serde_json::{Value, json};

fn spec() -> Value {
    json!({
        "hosts": {
            "tenant.bootstrap.msappproxy.test": "127.0.0.11",
            "dropped.bootstrap.msappproxy.test": "127.0.0.13",
            "crl.digicert.test": "127.0.0.21",
            "intercepted.login.test": "127.0.0.31",
            "ok.backend.test": "127.0.0.51", "slow.backend.test": "127.0.0.52", "error.backend.test": "127.0.0.54",
            "broken-contoso.msappproxy.test": "127.0.0.71", "ok-contoso.msappproxy.test": "127.0.0.72"
        },
        "servers": [
            {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.13", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "dropped.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.21", "port": 80, "kind": "http"},
            {"ip": "127.0.0.31", "port": 443, "kind": "tls", "issuer": "interceptor", "cn": "intercepted.login.test"},
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.52", "port": 80, "kind": "http", "delay": 1.75},
            {"ip": "127.0.0.54", "port": 80, "kind": "http", "status": 503},
            {"ip": "127.0.0.71", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "broken-contoso.msappproxy.test",
             "status": 502, "body": "<html><h1>This corporate app can't be accessed.</h1></html>"},
            {"ip": "127.0.0.72", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "ok-contoso.msappproxy.test",
             "status": 302, "headers": {"Location": "https://login.microsoftonline.com/"}}
        ],
        "proxy": {"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80], "basic_auth": "user:pass"}
    })
}

const DIRECT: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"/></system.net></configuration>";
const PROXIED: &str = "<configuration><system.net><defaultProxy><proxy proxyaddress=\"http://127.0.0.1:3128\"/></defaultProxy></system.net></configuration>";
const MALFORMED: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"></system.net></configuration>";

struct Scenario {
    name: &'static str,
    connector: &'static str,
    updater: &'static str,
    endpoints: &'static str,
    apps: &'static str,
}

const SCENARIOS: [Scenario; 2] = [
    Scenario {
        name: "host-faults",
        connector: PROXIED,
        updater: MALFORMED,
        endpoints: "      - {host: dropped.bootstrap.msappproxy.test, port: 443, purpose: service}
      - {host: crl.digicert.test, port: 80, purpose: certificates}
      - {host: intercepted.login.test, port: 443, purpose: registration}
",
        apps: "      - {name: intranet, connector_group: Default, internal_url: \"http://ok.backend.test/\"}
      - {name: timesheets, connector_group: Default, internal_url: \"http://error.backend.test/\"}
",
    },
    Scenario {
        name: "app-faults",
        connector: DIRECT,
        updater: DIRECT,
        endpoints: "      - {host: tenant.bootstrap.msappproxy.test, port: 443, purpose: service}
      - {host: crl.digicert.test, port: 80, purpose: certificates}
",
        apps: "      - {name: healthy, connector_group: Default, internal_url: \"http://ok.backend.test/\", external_url: \"https://ok-contoso.msappproxy.test/\"}
      - {name: orphan, internal_url: \"http://ok.backend.test/\"}
      - {name: dormant, connector_group: Dormant, internal_url: \"http://ok.backend.test/\"}
      - {name: error, connector_group: Default, internal_url: \"http://error.backend.test/\"}
      - {name: missing, connector_group: Default, internal_url: \"http://missing.backend.test/\"}
      - {name: slow, connector_group: Default, internal_url: \"http://slow.backend.test/\"}
      - {name: broken-external, connector_group: Default, internal_url: \"http://ok.backend.test/\", external_url: \"https://broken-contoso.msappproxy.test/\"}
      - {name: wildcard, connector_group: Default, internal_url: \"http://*.backend.test/\"}
",
    },
];

fn config(dir: &Path, scenario: &Scenario) -> PathBuf {
    let connector = dir.join("connector.exe.config");
    let updater = dir.join("updater.exe.config");
    std::fs::write(&connector, scenario.connector).unwrap();
    std::fs::write(&updater, scenario.updater).unwrap();
    write_config(
        dir,
        &format!(
            "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
      - name: Dormant
        connectors: [{{machine_name: CONN-02, status: inactive}}]
    apps:
{apps}connector:
  machine_name: CONN-01
  groups: [all]
  service_config: {connector}
  updater_config: {updater}
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    replace:
{endpoints}  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
metrics:
  per_step_series: true
",
            apps = scenario.apps,
            endpoints = scenario.endpoints,
            connector = connector.display(),
            updater = updater.display(),
        ),
    )
}

/// The exporter in the lab, once every app's walk has its backend's answers.
fn serve(lab: &Lab, config: &Path) -> Running {
    let exporter = lab.start(config);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, metrics) = lab.netns.get(exporter.address, "/metrics");
        // Three requests of the slow app: its median is what step 9 judges.
        let slow_answers = metrics
            .lines()
            .find(|l| l.starts_with("appproxy_backend_request_duration_seconds_count{app=\"slow\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        let ready = metrics.contains("appproxy_backend_up{")
            && !metrics.contains("not probed yet")
            && slow_answers.is_none_or(|n| n >= 3.0);
        if ready {
            // A few more answers of every app, so each one's latest states are settled.
            std::thread::sleep(Duration::from_secs(2));
            return exporter;
        }
        assert!(Instant::now() < deadline, "no settled round:\n{metrics}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What a clock decides, masked; everything else as the exporter wrote it.
struct Mask {
    rules: Vec<(Regex, &'static str)>,
}

impl Mask {
    fn new(revision: &str) -> Mask {
        let rules = [
            (regex::escape(revision), "<revision>"),
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2}| UTC)?"
                    .to_string(),
                "<time>",
            ),
            (
                r"\b\d+(\.\d+)?(e-?\d+)? ?(ms|µs|s)\b".to_string(),
                "<duration>",
            ),
            (r"\b\d+(\.\d+)?%".to_string(), "<share>"),
        ];
        Mask {
            rules: rules
                .into_iter()
                .map(|(pattern, with)| (Regex::new(&pattern).unwrap(), with))
                .collect(),
        }
    }

    fn text(&self, text: &str) -> String {
        self.rules.iter().fold(text.to_string(), |t, (re, with)| {
            re.replace_all(&t, *with).into_owned()
        })
    }

    /// A sample whose value a clock decides (durations, timestamps, latency shares, counts
    /// of requests made so far, the process) keeps its series but not its value.
    fn metrics(&self, exposition: &str) -> String {
        let timed =
            Regex::new(r"^(process_|appproxy_\w*(seconds|ratio|_total|_count|_sum|_bucket)\b)")
                .unwrap();
        exposition
            .lines()
            .map(|line| {
                if !line.starts_with('#') && timed.is_match(line) {
                    match line.rsplit_once(' ') {
                        Some((series, _)) => format!("{} <value>", self.text(series)),
                        None => line.to_string(),
                    }
                } else {
                    self.text(line)
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    fn json(&self, value: &Value) -> String {
        fn walk(mask: &Mask, value: &Value) -> Value {
            match value {
                Value::String(s) => Value::String(mask.text(s)),
                Value::Array(items) => Value::Array(items.iter().map(|v| walk(mask, v)).collect()),
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), walk(mask, v)))
                        .collect(),
                ),
                other => other.clone(),
            }
        }
        serde_json::to_string_pretty(&walk(self, value)).unwrap() + "\n"
    }
}

fn diagnose(lab: &Lab, config: &Path, json: bool) -> String {
    let mut command = lab.netns.command("env");
    command
        .arg(format!("SSL_CERT_FILE={}", lab.ca_bundle))
        .arg(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .arg("diagnose")
        .arg(format!("--config.file={}", config.display()));
    if json {
        command.args(["--output", "json"]);
    }
    let output = command.output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn revision() -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    Regex::new(r"revision: ?([0-9a-f]+(-dirty)?)")
        .unwrap()
        .captures(&text)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no revision in --version: {text}"))
}

/// The outputs of one scenario: (file name, masked text).
fn outputs(lab: &Lab, scenario: &Scenario, mask: &Mask) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), scenario);
    // The config's and the connector files' paths are part of the outputs; masked, the same
    // on every run.
    let shown = config.display().to_string();
    let home = dir.path().display().to_string();
    let mask_path = |text: String| text.replace(&shown, "<config>").replace(&home, "<dir>");
    let exporter = serve(lab, &config);
    let (_, metrics) = lab.netns.get(exporter.address, "/metrics");
    let (_, page) = lab.netns.get(exporter.address, "/");
    let (_, api) = lab.netns.get(exporter.address, "/api/v1/diagnosis");
    drop(exporter);
    let diagnosis_json = diagnose(lab, &config, true);
    let diagnosis_text = diagnose(lab, &config, false);
    let parse = |text: &str| -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    vec![
        ("metrics.txt", mask_path(mask.metrics(&metrics))),
        ("page.html", mask_path(mask.text(&page))),
        ("api-diagnosis.json", mask_path(mask.json(&parse(&api)))),
        (
            "diagnose.json",
            mask_path(mask.json(&parse(&diagnosis_json))),
        ),
        ("diagnose.txt", mask_path(mask.text(&diagnosis_text))),
    ]
    .into_iter()
    .map(|(file, text)| (format!("{}/{file}", scenario.name), text))
    .collect()
}

#[test]
fn every_output_of_the_walk_is_what_it_was_for_the_same_evidence() {
    let lab = Lab::up(&spec());
    lab.firewall(&["-p tcp -d 127.0.0.13 --dport 443 -j DROP"]);
    let mask = Mask::new(&revision());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var("APPPROXY_GOLDEN").as_deref() == Ok("update");
    let mut differ = Vec::new();
    for scenario in &SCENARIOS {
        for (file, text) in outputs(&lab, scenario, &mask) {
            let path = golden.join(&file);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let recorded = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if recorded != text {
                let actual = path.with_extension("actual");
                std::fs::write(&actual, &text).unwrap();
                differ.push(format!("diff {} {}", path.display(), actual.display()));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "outputs differ from tests/golden (see with):\n{}",
        differ.join("\n")
    );
}
