//! What an attacker on the same network, or a bad file, could do to the running binary: a flood
//! of idle sockets, a file that never ends or never answers, a huge value, a path that would
//! make the router panic. Each test ran against the binary before its fix and failed.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Running, launch, sample, wait_for, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_appproxy_exporter");

/// The exporter started under a low open-file soft limit, as a host's default of 1024 would
/// be for a large flood.
fn start_with_soft_limit(limit: u32, args: &[&str]) -> Running {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("ulimit -Sn {limit} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .arg("--web.listen-address=127.0.0.1:0")
        .args(args);
    launch(command)
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// "Max open files" soft and hard limits of a process.
fn file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

/// 400 idle sockets against a limit of 100 connections: the exporter holds at most 100 of
/// them, closes idle ones after the header timeout, and its own probes never run out of
/// descriptors (the flood once made step 7 fail with "Too many open files").
#[test]
fn an_idle_socket_flood_is_capped_and_timed_out_and_probes_go_on() {
    let backend = common::backend(200);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "probes:\n  interval: 1s\n  timeout: 500ms\n  endpoints:\n    catalog: none\ninventory:\n  static:\n    connector_groups:\n      - name: Default\n        connectors:\n          - machine_name: monitoring-01\n            status: active\n    apps:\n      - name: intranet\n        connector_group: Default\n        internal_url: http://{backend}/\nconnector:\n  machine_name: monitoring-01\n"
        ),
    );
    let exporter = start_with_soft_limit(
        256,
        &[
            "--web.max-connections=100",
            &format!("--config.file={}", config.display()),
        ],
    );
    let pid = exporter.child.id();
    let (soft, hard) = file_limits(pid);
    assert_eq!(
        soft, hard,
        "the soft open-file limit is raised to the hard one"
    );
    wait_for(exporter.address, "/-/ready", |status, _| status == 200);
    let before = open_files(pid);

    let flood: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(exporter.address).ok())
        .collect();
    assert!(flood.len() >= 300, "the kernel queued the flood");
    std::thread::sleep(Duration::from_secs(2));
    let during = open_files(pid);
    assert!(
        during <= before + 100 + 20,
        "{during} descriptors open during the flood, {before} before: the connection limit does not hold"
    );

    // The idle connections are closed after the 10 s header timeout, and the queue drains.
    let mut first = flood.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 16];
    let n = first.read(&mut buffer).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "an idle connection is closed without an answer");
    assert!(
        waited < Duration::from_secs(15),
        "an idle connection stayed open for {waited:?}"
    );
    // Probes went on during the flood: the backend answered every round.
    let metrics = wait_for(exporter.address, "/metrics", |status, _| status == 200);
    let up = r#"appproxy_backend_up{app="intranet",connector_group="Default"}"#;
    assert_eq!(sample(&metrics, up), Some(1.0), "{metrics}");
    let walk = r#"appproxy_flow_failing_step{app="intranet",connector_group="Default"}"#;
    assert_eq!(sample(&metrics, walk), Some(0.0), "{metrics}");
}

/// A FIFO named as the connector's config file would block its read forever: it is refused
/// as "not a regular file", the round completes and the exporter becomes ready.
#[test]
fn a_fifo_as_the_connector_config_is_refused_and_the_exporter_gets_ready() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir
        .path()
        .join("ApplicationProxyConnectorService.exe.config");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let config = write_config(
        dir.path(),
        &format!(
            "probes:\n  endpoints:\n    catalog: none\nconnector:\n  service_config: {}\n",
            fifo.display()
        ),
    );
    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    let started = Instant::now();
    wait_for(exporter.address, "/-/ready", |status, _| status == 200);
    assert!(started.elapsed() < Duration::from_secs(15));
    let (_, page) = common::get(exporter.address, "/");
    assert!(page.contains("not a regular file"), "{page}");
}

/// A device or a FIFO as the config file is refused at once, never read without end.
#[test]
fn check_config_refuses_a_device_at_once() {
    let output = Command::new(BIN)
        .args(["check-config", "--config.file=/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("not a regular file"),
        "{stderr}"
    );
}

/// A proxy address of 200 KB in the connector's file (within the file's 1 MiB cap) is refused
/// as longer than any address; one of 1,500 bytes becomes a label of at most 512 bytes and a
/// marker. Neither reaches every scrape whole.
#[test]
fn a_huge_value_from_a_file_is_refused_or_cut_in_labels() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("connector.exe.config");
    let write = |host: &str| {
        std::fs::write(
            &file,
            format!(
                "<configuration><system.net><defaultProxy><proxy proxyaddress=\"http://{host}:8080\" /></defaultProxy></system.net></configuration>"
            ),
        )
        .unwrap();
    };
    write(&"p".repeat(200_000));
    let config = write_config(
        dir.path(),
        &format!(
            "probes:\n  interval: 200ms\n  timeout: 100ms\n  endpoints:\n    catalog: none\nconnector:\n  service_config: {}\n",
            file.display()
        ),
    );
    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    let valid = format!(
        "appproxy_connector_config_valid{{connector_service=\"connector\",file=\"{}\"}}",
        file.display()
    );
    let metrics = wait_for(exporter.address, "/metrics", |_, body| {
        sample(body, &valid) == Some(0.0)
    });
    assert!(metrics.lines().all(|l| l.len() < 2_000));
    let (_, page) = common::get(exporter.address, "/");
    assert!(
        page.contains("bytes long; at most 2048 are read"),
        "the refusal says why"
    );

    write(&"p".repeat(1_500));
    let metrics = wait_for(exporter.address, "/metrics", |_, body| {
        body.contains("appproxy_forward_proxy_info{")
    });
    let longest = metrics.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a line of {longest} bytes");
    assert!(metrics.contains("…[cut]"), "the cut is marked");
}

/// A metrics path with a `:` once made the router panic at start; now it is a usage error.
#[test]
fn a_telemetry_path_the_router_cannot_take_is_a_usage_error() {
    let output = Command::new(BIN)
        .args([
            "--web.listen-address=127.0.0.1:0",
            "--web.telemetry-path=/:x",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("':' is not allowed"), "{stderr}");
}

/// `diagnose --app` with a name no app has lists the names there are: names come from Graph,
/// where anyone who may name an app chooses them, and a terminal escape or a right-to-left
/// override (U+202E) in one was printed raw.
#[test]
fn diagnose_lists_the_app_names_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "probes:\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\ninventory:\n  static:\n    apps:\n      - name: \"evil\\u202Egpj.exe\"\n        internal_url: https://a.corp.example/\n      - name: \"red\\e[31m\"\n        internal_url: https://b.corp.example/\n",
    );
    let output = Command::new(BIN)
        .args([
            "diagnose",
            &format!("--config.file={}", config.display()),
            "--app=nope",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no app named"), "{stderr}");
    assert!(
        !stderr.contains('\u{202e}') && !stderr.contains('\u{1b}'),
        "printed raw: {stderr:?}"
    );
    assert!(stderr.contains("evil\\u{202e}gpj.exe"), "{stderr}");
}
