//! The walk for people, end to end: for each fault scenario of the other end-to-end tests,
//! `diagnose` names the same failing step as `/metrics`, its JSON validates against
//! docs/diagnosis.schema.json, and headless Chromium shows that step highlighted on `/`
//! (screenshots kept in target/test-artifacts/).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{Lab, sample, write_config};
use serde_json::{Value, json};

fn spec(proxy: Value) -> Value {
    json!({
        "hosts": {
            "tenant.bootstrap.msappproxy.test": "127.0.0.11", "crl.digicert.test": "127.0.0.21",
            "ok.backend.test": "127.0.0.51", "slow.backend.test": "127.0.0.52", "error.backend.test": "127.0.0.54",
            "broken-contoso.msappproxy.test": "127.0.0.71", "ok-contoso.msappproxy.test": "127.0.0.72"
        },
        "servers": [
            {"ip": "127.0.0.11", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "tenant.bootstrap.msappproxy.test"},
            {"ip": "127.0.0.21", "port": 80, "kind": "http"},
            {"ip": "127.0.0.51", "port": 80, "kind": "http"},
            {"ip": "127.0.0.52", "port": 80, "kind": "http", "delay": 1.7},
            {"ip": "127.0.0.54", "port": 80, "kind": "http", "status": 503},
            {"ip": "127.0.0.71", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "broken-contoso.msappproxy.test",
             "status": 502, "body": "<html><h1>This corporate app can't be accessed.</h1></html>"},
            {"ip": "127.0.0.72", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "ok-contoso.msappproxy.test",
             "status": 302, "headers": {"Location": "https://login.microsoftonline.com/"}}
        ],
        "proxy": proxy
    })
}

/// (app, group, internal URL, external URL)
const APPS: &[(&str, &str, &str, &str)] = &[
    (
        "healthy",
        "Default",
        "http://ok.backend.test/",
        "https://ok-contoso.msappproxy.test/",
    ),
    ("orphan", "", "http://ok.backend.test/", ""),
    ("dormant", "Dormant", "http://ok.backend.test/", ""),
    ("error", "Default", "http://error.backend.test/", ""),
    ("missing", "Default", "http://missing.backend.test/", ""),
    ("slow", "Default", "http://slow.backend.test/", ""),
    (
        "broken-external",
        "Default",
        "http://ok.backend.test/",
        "https://broken-contoso.msappproxy.test/",
    ),
];

fn config(dir: &Path, extra_endpoint: &str, connector_file: &str, updater_file: &str) -> String {
    let apps: String = APPS
        .iter()
        .map(|(name, group, internal, external)| {
            let group = if group.is_empty() {
                String::new()
            } else {
                format!(", connector_group: {group}")
            };
            let external = if external.is_empty() {
                String::new()
            } else {
                format!(", external_url: \"{external}\"")
            };
            format!("      - {{name: {name}{group}, internal_url: \"{internal}\"{external}}}\n")
        })
        .collect();
    let connector = dir.join("connector.exe.config");
    let updater = dir.join("updater.exe.config");
    std::fs::write(&connector, connector_file).unwrap();
    std::fs::write(&updater, updater_file).unwrap();
    format!(
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
      - name: Dormant
        connectors: [{{machine_name: CONN-02, status: inactive}}]
    apps:
{apps}connector:
  groups: [all]
  service_config: {}
  updater_config: {}
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    replace:
      - {{host: tenant.bootstrap.msappproxy.test, port: 443, purpose: service}}
      - {{host: crl.digicert.test, port: 80, purpose: certificates}}{extra_endpoint}
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
",
        connector.display(),
        updater.display()
    )
}

const DIRECT: &str =
    "<configuration><system.net><defaultProxy enabled=\"false\"/></system.net></configuration>";
const PROXIED: &str = "<configuration><system.net><defaultProxy><proxy proxyaddress=\"http://127.0.0.1:3128\"/></defaultProxy></system.net></configuration>";

fn metric_steps(m: &str) -> BTreeMap<String, u8> {
    APPS.iter()
        .filter_map(|(app, group, _, _)| {
            let step = sample(
                m,
                &format!("appproxy_flow_failing_step{{app=\"{app}\",connector_group=\"{group}\"}}"),
            )?;
            Some((app.to_string(), step as u8))
        })
        .collect()
}

/// Runs `diagnose --output json` inside the lab; returns (exit code, document).
fn diagnose(lab: &Lab, config: &Path) -> (i32, Value) {
    let output = lab
        .netns
        .command("env")
        .arg(format!("SSL_CERT_FILE={}", lab.ca_bundle))
        .arg(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args([
            "diagnose",
            "--output",
            "json",
            &format!("--config.file={}", config.display()),
        ])
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "diagnose printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), doc)
}

fn validate_against_schema(doc: &Value) {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnosis.schema.json");
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(json.load(sys.stdin))\n";
    // Debian's interpreter, which has python3-jsonschema (scripts/test installs it).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script, schema])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), doc.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the diagnosis does not match its schema: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Loads `/` in headless Chromium inside the lab: (the rendered DOM, screenshot saved).
fn chromium(lab: &Lab, address: std::net::SocketAddr, name: &str, window: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let url = format!("http://{address}/");
    let run = |extra: &[String]| {
        let output = lab
            .netns
            .command("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
            ])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={window}"))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium is installed (scripts/test installs it)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let shot = artifacts.join(format!("flowchart-{name}.png"));
    run(&[format!("--screenshot={}", shot.display())]);
    assert!(
        shot.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
    run(&["--dump-dom".to_string()])
}

/// For each app card in the rendered page, the step highlighted as where the walk stops.
fn highlighted(dom: &str) -> BTreeMap<String, u8> {
    dom.split("<article")
        .skip(1)
        .filter_map(|card| {
            let app = card
                .split("data-app=\"")
                .nth(1)?
                .split('"')
                .next()?
                .to_string();
            let step = card
                .split("<li class=\"step fail failing\" data-step=\"")
                .nth(1)
                .map_or(0, |rest| rest.split('"').next().unwrap().parse().unwrap());
            Some((app, step))
        })
        .collect()
}

/// What a scenario changes: an extra required endpoint, and the connector's and updater's files.
struct Setup<'a>(&'a str, &'a str, &'a str);

fn scenario(
    lab: &Lab,
    name: &str,
    setup: Setup<'_>,
    expected: &BTreeMap<String, u8>,
    browse: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config(dir.path(), setup.0, setup.1, setup.2));
    let exporter = lab.start(&config);
    let m = lab.wait_for_metrics(&exporter, |m| &metric_steps(m) == expected);
    let from_metrics = metric_steps(&m);

    let (code, doc) = diagnose(lab, &config);
    validate_against_schema(&doc);
    let from_diagnose: BTreeMap<String, u8> = doc["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["app"].as_str().unwrap().to_string(),
                a["failing_step"].as_u64().unwrap_or(0) as u8,
            )
        })
        .collect();
    assert_eq!(
        from_diagnose, from_metrics,
        "{name}: diagnose and /metrics disagree"
    );
    assert_eq!(
        code,
        if expected.values().all(|s| *s == 0) {
            0
        } else {
            3
        },
        "{name}: exit code"
    );

    if browse {
        let dom = chromium(lab, exporter.address, name, "1280,2400");
        assert_eq!(
            highlighted(&dom),
            from_metrics,
            "{name}: the page highlights other steps"
        );
        chromium(lab, exporter.address, &format!("{name}-phone"), "390,2400");
    }
}

fn expected(pairs: &[(&str, u8)]) -> BTreeMap<String, u8> {
    pairs.iter().map(|(a, s)| (a.to_string(), *s)).collect()
}

#[test]
fn diagnose_metrics_and_the_page_agree_in_every_scenario() {
    let lab = Lab::up(&spec(
        json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80]}),
    ));
    let per_app = expected(&[
        ("healthy", 0),
        ("orphan", 1),
        ("dormant", 2),
        ("error", 7),
        ("missing", 8),
        ("slow", 9),
        ("broken-external", 10),
    ]);
    scenario(&lab, "per-app", Setup("", DIRECT, DIRECT), &per_app, true);

    let host_step = |step: u8| {
        let mut e = per_app.clone();
        for (app, s) in e.iter_mut() {
            if app != "orphan" && app != "dormant" {
                *s = step;
            }
        }
        e
    };
    lab.firewall(&["-p tcp -d 127.0.0.11 --dport 443 -j DROP"]);
    scenario(
        &lab,
        "port-443-dropped",
        Setup("", DIRECT, DIRECT),
        &host_step(3),
        true,
    );
    lab.firewall(&[]);

    let unresolvable = "\n      - {host: missing.login.test, port: 443, purpose: registration}";
    scenario(
        &lab,
        "unresolvable",
        Setup(unresolvable, DIRECT, DIRECT),
        &host_step(4),
        false,
    );
    scenario(
        &lab,
        "mismatch",
        Setup("", PROXIED, DIRECT),
        &host_step(6),
        false,
    );

    let auth = Lab::up(&spec(
        json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80], "basic_auth": "user:pass"}),
    ));
    scenario(
        &auth,
        "proxy-407",
        Setup("", PROXIED, PROXIED),
        &host_step(5),
        false,
    );
}
