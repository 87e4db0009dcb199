//! Shared helpers for the integration tests: config files in temporary directories, the real
//! binary started on a free loopback port, and a minimal HTTP/1.0 client over real sockets.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The config from the acceptance check: one healthy app, one without a group, one in
/// a group whose only connector is inactive.
pub const THREE_APPS: &str = include_str!("../fixtures/config/valid/three_apps.yml");

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("appproxy_exporter.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The exporter binary, running; killed when dropped.
pub struct Running {
    pub child: Child,
    pub address: SocketAddr,
    pub log: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on 127.0.0.1:0 and learns its port from the "listening" log line.
pub fn start(args: &[&str]) -> Running {
    start_with_env(args, &[])
}

/// [`start`] with extra environment variables.
pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"));
    command
        .args(["--web.listen-address=127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied());
    launch(command)
}

/// Spawns `command` (the exporter) and learns its port from the "listening" log line.
pub fn launch(command: Command) -> Running {
    launch_until(command, "listening")
}

/// Spawns `command` and waits for a line of its standard error containing `marker`; the
/// exporter's "listening" line also gives its address.
pub fn launch_until(mut command: Command, marker: &str) -> Running {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Owned by the guard from here on, so a failed start still kills the child.
    let mut running = Running {
        child,
        address: SocketAddr::from(([0, 0, 0, 0], 0)),
        log: rx,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = running
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no line with {marker:?} on standard error"));
        if !line.contains(marker) {
            continue;
        }
        if let Some(rest) = line.split("address=").nth(1) {
            if let Ok(address) = rest.split_whitespace().next().unwrap_or("").parse() {
                running.address = address;
            }
        }
        return running;
    }
}

/// A GET or POST over a fresh connection; returns (status, body).
pub fn request(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: test\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

pub fn get(address: SocketAddr, path: &str) -> (u16, String) {
    request(address, "GET", path)
}

/// Polls until `check` holds for a GET of `path`, or panics with the last body.
pub fn wait_for(address: SocketAddr, path: &str, check: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(address, path);
        if check(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting on {path}: {status}\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the one sample of `series` (name and labels exactly as exposed).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The app's `appproxy_backend_failure_info` sample for `phase` in connector group `Default`:
/// its `code` label (the HTTP status, empty without one) and its value.
pub fn backend_failure(metrics: &str, app: &str, phase: &str) -> Option<(String, f64)> {
    let start = format!("appproxy_backend_failure_info{{app=\"{app}\",code=\"");
    let end = format!("\",connector_group=\"Default\",phase=\"{phase}\"}} ");
    metrics.lines().find_map(|line| {
        let (code, value) = line.strip_prefix(&start)?.split_once(&end)?;
        Some((code.to_string(), value.parse().ok()?))
    })
}

/// A web server on loopback that answers every request `status` with the body `ok`, or, when
/// `status` is 0, reads the request and never answers.
pub fn backend(status: u16) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if line == "\r\n" {
                        if status == 0 {
                            std::thread::sleep(Duration::from_secs(60));
                            return;
                        }
                        let answer =
                            format!("HTTP/1.1 {status} Answer\r\nContent-Length: 2\r\n\r\nok");
                        let _ = reader.get_mut().write_all(answer.as_bytes());
                    }
                    line.clear();
                }
            });
        }
    });
    address
}

/// The Graph-shaped test server (`tests/graph_server/graph_server.py`), running; stopped
/// when dropped.
pub struct GraphServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for GraphServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GraphServer {
    /// Starts the server for `tenant` (the tenant file's JSON), with `page_size` items a page.
    pub fn start(tenant: &serde_json::Value, page_size: usize) -> GraphServer {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenant.json");
        std::fs::write(&file, tenant.to_string()).unwrap();
        let args = vec![
            "--tenant".to_string(),
            file.display().to_string(),
            "--page-size".to_string(),
            page_size.to_string(),
        ];
        Self::spawn(args, dir)
    }

    /// Starts the server on a synthesized tenant (`groups=50,apps=5000,connectors=100`).
    pub fn generate(spec: &str, page_size: usize) -> GraphServer {
        let dir = tempfile::tempdir().unwrap();
        let args = vec![
            "--generate".to_string(),
            spec.to_string(),
            "--page-size".to_string(),
            page_size.to_string(),
        ];
        Self::spawn(args, dir)
    }

    /// Starts the server for `tenant` inside a network namespace (reachable from there only).
    pub fn start_in(netns: &Netns, tenant: &serde_json::Value, page_size: usize) -> GraphServer {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenant.json");
        std::fs::write(&file, tenant.to_string()).unwrap();
        let args = vec![
            "--tenant".to_string(),
            file.display().to_string(),
            "--page-size".to_string(),
            page_size.to_string(),
        ];
        Self::launch(netns.command("python3"), args, dir)
    }

    fn spawn(args: Vec<String>, dir: tempfile::TempDir) -> GraphServer {
        Self::launch(Command::new("python3"), args, dir)
    }

    fn launch(mut command: Command, args: Vec<String>, dir: tempfile::TempDir) -> GraphServer {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/graph_server/graph_server.py"
        );
        let mut child = command
            .arg(script)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the Graph-shaped server");
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        let url = match first.trim().strip_prefix("listening ") {
            Some(url) => url.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the Graph-shaped server did not start: {first:?}");
            }
        };
        GraphServer {
            child,
            url,
            _dir: dir,
        }
    }

    /// Merges `faults` into the server's faults (`null` removes one).
    pub fn faults(&self, faults: serde_json::Value) {
        self.post_json("/_control", &faults);
    }

    pub fn reset_stats(&self) {
        self.post_json("/_control", &serde_json::json!({"reset_stats": true}));
    }

    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = get(self.address(), "/_stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn address(&self) -> SocketAddr {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap()
    }

    fn post_json(&self, path: &str, body: &serde_json::Value) {
        let body = body.to_string();
        let mut stream = TcpStream::connect(self.address()).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.0\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
            "{response}"
        );
    }
}

/// A network namespace with nothing but loopback: a host without any network, so the
/// exporter's built-in defaults can run without reaching anything. Deleted when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("apx-{}-{n}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        assert!(
            ok(&["netns", "add", &name]),
            "cannot create a network namespace (this test needs root and iproute2)"
        );
        assert!(ok(&["-n", &name, "link", "set", "lo", "up"]));
        Netns { name }
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// GET through curl inside the namespace: (status, body).
    pub fn get(&self, address: SocketAddr, path: &str) -> (u16, String) {
        let output = self
            .command("curl")
            .args([
                "-s",
                "-m",
                "10",
                "-w",
                "\n%{http_code}",
                &format!("http://{address}{path}"),
            ])
            .output()
            .expect("curl is installed (scripts/test installs it)");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|out| {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
        // After a lab's own teardown the namespace is gone already; that is fine.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Starts the binary inside `netns` on 127.0.0.1:0.
pub fn start_in(netns: &Netns, args: &[&str]) -> Running {
    let mut command = netns.command(env!("CARGO_BIN_EXE_appproxy_exporter"));
    command
        .args(["--web.listen-address=127.0.0.1:0"])
        .args(args);
    launch(command)
}

/// A lab of `tests/netns/lab.py`: a network namespace with its own hosts file, TLS and HTTP
/// servers on loopback addresses, optionally a real tinyproxy, and iptables to break things.
/// Torn down when dropped.
pub struct Lab {
    pub netns: Netns,
    pub ca_bundle: String,
    pub proxy_url: Option<String>,
}

fn lab_py(args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    let mut child = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns/lab.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs tests/netns/lab.py");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "lab.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

impl Lab {
    /// An app's step as `exporter`'s `/api/v1/diagnosis` shows it: (state, evidence).
    pub fn diagnosed(&self, exporter: &Running, app: &str, step: u64) -> (String, String) {
        let body = self.netns.get(exporter.address, "/api/v1/diagnosis").1;
        let document: serde_json::Value = serde_json::from_str(&body).unwrap();
        let app_steps = &document["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["app"] == app)
            .unwrap_or_else(|| panic!("{app} not in {body}"))["steps"];
        let s = app_steps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step)
            .unwrap();
        (
            s["state"].as_str().unwrap().to_string(),
            s["evidence"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Builds the lab of `spec` (see tests/netns/README.md).
    pub fn up(spec: &serde_json::Value) -> Lab {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("apl-{}-{n}", std::process::id());
        let info = lab_py(
            &["up", "--name", &name, "--spec", "-"],
            Some(&spec.to_string()),
        );
        Lab {
            netns: Netns { name },
            ca_bundle: info["ca_bundle"].as_str().unwrap().to_string(),
            proxy_url: info["proxy_url"].as_str().map(String::from),
        }
    }

    /// Replaces the namespace's outbound firewall rules (`iptables -A OUTPUT <rule>` each).
    pub fn firewall(&self, rules: &[&str]) {
        let rules = serde_json::to_string(rules).unwrap();
        lab_py(
            &["firewall", "--name", &self.netns.name, "--rules", &rules],
            None,
        );
    }

    pub fn proxy(&self, running: bool) {
        let state = if running { "running" } else { "stopped" };
        lab_py(
            &["proxy", "--name", &self.netns.name, "--state", state],
            None,
        );
    }

    /// Starts the exporter inside the lab, trusting the lab's CAs.
    pub fn start(&self, config: &Path) -> Running {
        let mut command = self.netns.command("env");
        command
            .arg(format!("SSL_CERT_FILE={}", self.ca_bundle))
            .arg(env!("CARGO_BIN_EXE_appproxy_exporter"))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!("--config.file={}", config.display()));
        launch(command)
    }

    /// Polls `/metrics` inside the lab until `check` holds; returns that scrape.
    pub fn wait_for_metrics(&self, exporter: &Running, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.netns.get(exporter.address, "/metrics");
            if check(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting; last scrape:\n{body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns/lab.py"))
            .args(["down", "--name", &self.netns.name])
            .output();
    }
}
