//! The real binary over real sockets: what a user who runs `appproxy_exporter` sees.

mod common;

use common::*;
use std::process::Command;

fn failing_step(metrics: &str, group: &str, app: &str) -> Option<f64> {
    sample(
        metrics,
        &format!("appproxy_flow_failing_step{{app=\"{app}\",connector_group=\"{group}\"}}"),
    )
}

#[test]
fn healthy_orphan_and_inactive_group_apps_fail_steps_0_1_and_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), THREE_APPS);
    let exporter = start(&[&format!("--config.file={}", config.display())]);
    wait_for(exporter.address, "/-/ready", |status, _| status == 200);
    let (status, metrics) = get(exporter.address, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(failing_step(&metrics, "Default", "intranet"), Some(0.0));
    assert_eq!(failing_step(&metrics, "", "orphan"), Some(1.0));
    assert_eq!(failing_step(&metrics, "Dormant", "payroll"), Some(2.0));
}

#[cfg(unix)]
#[test]
fn sighup_with_a_broken_file_keeps_the_old_config_and_then_takes_a_fixed_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), THREE_APPS);
    let exporter = start(&[&format!("--config.file={}", config.display())]);
    wait_for(exporter.address, "/-/ready", |status, _| status == 200);

    std::fs::write(&config, "probes:\n  interval: soon\n").unwrap();
    let hup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
    };
    assert!(hup(exporter.child.id()).success());
    let metrics = wait_for(exporter.address, "/metrics", |_, body| {
        sample(body, "appproxy_exporter_config_last_reload_successful") == Some(0.0)
    });
    assert_eq!(failing_step(&metrics, "Dormant", "payroll"), Some(2.0));

    let fixed = THREE_APPS.replace("status: inactive", "status: active");
    std::fs::write(&config, fixed).unwrap();
    assert!(hup(exporter.child.id()).success());
    let metrics = wait_for(exporter.address, "/metrics", |_, body| {
        failing_step(body, "Dormant", "payroll") == Some(0.0)
    });
    assert_eq!(
        sample(&metrics, "appproxy_exporter_config_last_reload_successful"),
        Some(1.0)
    );
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_exporter_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), THREE_APPS);
    let mut exporter = start(&[&format!("--config.file={}", config.display())]);
    wait_for(exporter.address, "/-/healthy", |status, _| status == 200);
    let pid = exporter.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = exporter.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// Built-in defaults probe Microsoft's endpoints: here on a host with no network at all.
#[test]
fn without_a_config_file_it_serves_on_builtin_defaults() {
    let netns = Netns::new();
    let exporter = start_in(&netns, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while netns.get(exporter.address, "/-/ready").0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (_, metrics) = netns.get(exporter.address, "/metrics");
    assert_eq!(sample(&metrics, "appproxy_inventory_up"), Some(1.0));
    assert!(metrics.contains("appproxy_exporter_build_info{"));
    assert_eq!(
        sample(&metrics, r#"appproxy_port_open{port="80"}"#),
        Some(0.0),
        "no network, no port 80"
    );
    assert_eq!(
        sample(&metrics, r#"appproxy_port_open{port="443"}"#),
        None,
        "without tenant_id the only service endpoint on 443 is a stand-in, which proves nothing when it does not resolve"
    );
    assert!(metrics.contains(r#"appproxy_endpoint_up{host="login.microsoftonline.com",port="443",purpose="registration",route="direct"} 0"#));
    let (_, config) = netns.get(exporter.address, "/config");
    assert!(
        config.starts_with("# source: built-in defaults"),
        "{config}"
    );
}

#[test]
fn check_config_exits_0_when_valid_and_2_with_the_position_when_not() {
    let run = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
            .args(["check-config", &format!("--config.file={file}")])
            .output()
            .unwrap()
    };
    let valid = run("tests/fixtures/config/valid/contract_example.yml");
    assert_eq!(valid.status.code(), Some(0));
    let invalid = run("tests/fixtures/config/invalid/bad_duration.yml");
    assert_eq!(invalid.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        stderr.contains("bad_duration.yml:2:13: probes.interval: invalid duration"),
        "{stderr}"
    );
}

#[test]
fn serving_with_an_invalid_file_exits_2_and_says_why() {
    let output = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args([
            "--config.file=tests/fixtures/config/invalid/unknown_cloud.yml",
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown variant `azure`"));
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args([
            "--log.format=json",
            "--web.listen-address=127.0.0.1:0",
            "--config.file=tests/fixtures/config/valid/three_apps.yml",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let read = BufReader::new(child.stderr.take().unwrap()).read_line(&mut first);
    let _ = child.kill();
    let _ = child.wait();
    read.unwrap();
    let line: serde_json::Value = serde_json::from_str(&first).expect("a JSON log line");
    assert_eq!(line["level"], "INFO", "{first}");
    assert_eq!(line["message"], "starting appproxy_exporter", "{first}");
}
