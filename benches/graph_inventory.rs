//! Benchmark: one Graph inventory refresh of a tenant with 5,000 apps in 50 connector groups
//! (100 connectors), against the Graph-shaped test server on loopback. Reports wall time and
//! the number of HTTP requests per refresh (requests inside a `$batch` are counted apart).
//! Run with `cargo bench --bench graph_inventory`; targets: at most 400 requests, under 5 s.
//! Not a test: nothing here asserts a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use appproxy_exporter::config;
use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::prober::Prober;

const SPEC: &str = "groups=50,apps=5000,connectors=100";
const RUNS: usize = 5;

fn main() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/graph_server/graph_server.py"
    );
    let mut server = Command::new("python3")
        .args([script, "--generate", SPEC, "--page-size", "100"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the Graph-shaped server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening ")
        .expect("server address")
        .to_string();
    let address = url.trim_start_matches("http://").to_string();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "test-secret").unwrap();
    let config_file = dir.path().join("config.yml");
    std::fs::write(
        &config_file,
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
# The inventory alone: no probe of Microsoft's endpoints (never from a benchmark) or backends.
probes:
  endpoints:
    catalog: none
  backend:
    enabled: false
",
            dir.path().join("secret").display()
        ),
    )
    .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut results = Vec::new();
    for _ in 0..RUNS {
        // A fresh exporter each run: every refresh includes signing in, as after a restart.
        let exporter = Exporter::new(config::load(Some(&config_file)).unwrap());
        let mut prober = Prober::new(Arc::clone(&exporter));
        control(&address, r#"{"reset_stats": true}"#);
        let started = Instant::now();
        let snapshot = runtime.block_on(prober.round());
        let seconds = started.elapsed().as_secs_f64();
        assert!(snapshot.inventory.up, "the refresh failed");
        assert_eq!(snapshot.inventory.inventory.apps.len(), 5000);
        let stats: serde_json::Value = serde_json::from_str(&get(&address, "/_stats")).unwrap();
        // Anything but a 200 (a retry, a timeout) would explain a slow run: say so.
        let mut counted = String::new();
        exporter.graph_metrics.write(&mut counted);
        for line in counted.lines() {
            if line.starts_with("appproxy_graph_requests_total") && !line.contains("code=\"200\"") {
                println!("  not 200: {line}");
            }
        }
        results.push((
            seconds,
            stats["requests"].as_u64().unwrap_or(0),
            stats["inner_requests"].as_u64().unwrap_or(0),
        ));
    }
    let _ = server.kill();
    let _ = server.wait();

    let mut times: Vec<f64> = results.iter().map(|r| r.0).collect();
    times.sort_by(f64::total_cmp);
    println!("Graph inventory refresh, {SPEC}, page size 100, {RUNS} runs");
    for (i, (seconds, requests, inner)) in results.iter().enumerate() {
        println!(
            "run {}: {seconds:.3} s, {requests} HTTP requests ({inner} of them inside batches)",
            i + 1
        );
    }
    println!(
        "median {:.3} s, min {:.3} s, max {:.3} s, {} HTTP requests per refresh",
        times[RUNS / 2],
        times[0],
        times[RUNS - 1],
        results[0].1
    );
}

fn request(address: &str, head: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string())
}

fn get(address: &str, path: &str) -> String {
    request(
        address,
        &format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n"),
    )
}

fn control(address: &str, body: &str) {
    let head = format!(
        "POST /_control HTTP/1.0\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(address, &head);
}
