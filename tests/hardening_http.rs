//! The web server against clients that take what it sends and never read it, or hold every
//! connection it has: what a request may hold is bounded whatever the client does, and one
//! client cannot keep another out. Each test ran against the binary before its fix and failed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Running, wait_for, write_config};

/// A static inventory of `apps` apps in one group with an active connector; nothing is probed,
/// so the page and the diagnosis are as large as `apps` makes them and no larger.
fn many_apps(dir: &Path, apps: usize) -> std::path::PathBuf {
    let mut text = String::from(
        "probes:\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\nconnector:\n  machine_name: monitoring-01\n  proxy: direct\ninventory:\n  static:\n    connector_groups:\n      - name: Default\n        connectors:\n          - machine_name: monitoring-01\n            status: active\n    apps:\n",
    );
    for i in 0..apps {
        text.push_str(&format!(
            "      - name: app-{i:05}\n        connector_group: Default\n        internal_url: https://app-{i:05}.corp.example/\n"
        ));
    }
    write_config(dir, &text)
}

fn start_with(dir: &Path, apps: usize, args: &[&str]) -> Running {
    let config = many_apps(dir, apps);
    let mut all = vec![format!("--config.file={}", config.display())];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let exporter = common::start(&all);
    wait_for(exporter.address, "/-/ready", |status, _| status == 200);
    exporter
}

/// The process's peak resident memory so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A connection from `source` (any address of 127.0.0.0/8) with a receive buffer of a few
/// KiB, so what the exporter sends piles up on its side, as with a client far away or one
/// that never reads.
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(to).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

fn send_get(stream: &mut TcpStream, path: &str) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
}

/// The status of the answer waiting on `stream`, reading no more than its first line.
fn status_of(stream: &mut TcpStream) -> u16 {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    String::from_utf8_lossy(&head[..got])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sixty clients ask for the page and the diagnosis of 2,000 apps and read nothing. Each
/// request once built the whole document (megabytes of HTML or JSON) and held it until the
/// client read it: RSS grew by hundreds of MiB, for anyone who can open a socket.
#[test]
fn sixty_clients_that_never_read_the_page_or_the_diagnosis_hold_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_with(dir.path(), 2_000, &[]);
    let pid = exporter.child.id();
    // One full read of each first: what serving them costs once is not what is measured.
    assert_eq!(common::get(exporter.address, "/api/v1/diagnosis").0, 200);
    assert_eq!(common::get(exporter.address, "/").0, 200);
    let before = peak_rss_kib(pid);

    let mut clients: Vec<TcpStream> = (0..60)
        .map(|i| {
            let mut stream = connect_from("127.0.0.1", exporter.address);
            send_get(
                &mut stream,
                if i % 2 == 0 { "/" } else { "/api/v1/diagnosis" },
            );
            stream
        })
        .collect();
    let mut grown = 0;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_secs(1));
        grown = grown.max(peak_rss_kib(pid).saturating_sub(before));
        assert!(
            grown < 32 * 1024,
            "peak RSS grew by {} MiB while 60 clients did not read",
            grown / 1024
        );
    }
    eprintln!("peak RSS grew by {} KiB", grown);
    // Every client was answered (the document, or 503 when too many are being sent).
    for stream in &mut clients {
        let status = status_of(stream);
        assert!(status == 200 || status == 503, "answered {status}");
    }
    assert_eq!(common::get(exporter.address, "/-/healthy").0, 200);
}

/// One client opens twice as many connections as the exporter takes, asks each for the
/// diagnosis and never reads it. Every connection slot was its own, for as long as it liked:
/// a health check from another address waited in the kernel's queue and timed out.
#[test]
fn one_client_holding_every_connection_does_not_starve_another_clients_health_check() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_with(dir.path(), 2_000, &["--web.max-connections=20"]);
    let _held: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut stream = connect_from("127.0.0.1", exporter.address);
            // The exporter may already have closed one past its places (the kernel accepted
            // it; the exporter closes it at once): the write then fails, as it should.
            let _ = write!(
                stream,
                "GET /api/v1/diagnosis HTTP/1.1\r\nHost: test\r\n\r\n"
            );
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    let started = Instant::now();
    let mut health = connect_from("127.0.0.2", exporter.address);
    send_get(&mut health, "/-/healthy");
    let status = status_of(&mut health);
    assert_eq!(
        status,
        200,
        "the health check from another address got {status} after {:?}",
        started.elapsed()
    );
}
