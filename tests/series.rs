//! What `/metrics` costs Prometheus: the series per walked app by default (every connector
//! host of a group reports every app of it, so each one is paid for many times over), and the
//! exposition served compressed to a client that asks for gzip, as Prometheus always does.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{sample, wait_for, write_config};

/// The default series of an app that loads, one whose backend answers 500, and one that
/// hangs past its timeout, each with an external URL: at most 12 each (issue: 10,000 apps on
/// one host under 64 MiB), 13 for the one that fails with an answer (its status code beside
/// its failure), and every one a dashboard or an alert reads (docs/performance.md).
#[test]
fn a_walked_app_has_at_most_twelve_series_by_default() {
    let (fine, broken, hanging) = (
        common::backend(200),
        common::backend(500),
        common::backend(0),
    );
    let dir = tempfile::tempdir().unwrap();
    let app = |name: &str, at: SocketAddr| {
        format!(
            "      - {{name: {name}, connector_group: Default, internal_url: \"http://{at}/\", external_url: \"http://{fine}/{name}\"}}\n"
        )
    };
    let config = write_config(
        dir.path(),
        &format!(
            "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
{}{}{}probes:
  interval: 1s
  timeout: 500ms
  endpoints:
    catalog: none
  backend:
    interval: 200ms
    timeouts: {{default: 1s, long: 2s}}
",
            app("fine", fine),
            app("broken", broken),
            app("hanging", hanging)
        ),
    );
    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    let metrics = wait_for(exporter.address, "/metrics", |_, body| {
        [("fine", 0.0), ("broken", 7.0), ("hanging", 9.0)]
            .iter()
            .all(|(app, step)| {
                let series = format!(
                    "appproxy_flow_failing_step{{app=\"{app}\",connector_group=\"Default\"}}"
                );
                sample(body, &series) == Some(*step)
            })
    });
    for app in ["fine", "broken", "hanging"] {
        let label = format!("app=\"{app}\"");
        let series: Vec<&str> = metrics
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&label))
            .collect();
        // A failing answer's status code stays (it is what a dashboard's status panel shows
        // during an outage), beside the failure it belongs to.
        let most = if app == "broken" { 13 } else { 12 };
        assert!(
            series.len() <= most,
            "{app} has {} series:\n{}",
            series.len(),
            series.join("\n")
        );
        // What the dashboards and alerts read is there.
        for name in [
            "appproxy_flow_failing_step{",
            "appproxy_app_info{",
            "appproxy_backend_up{",
            "appproxy_backend_latency_ratio{",
            "appproxy_backend_request_duration_seconds_count{",
            "appproxy_external_up{",
        ] {
            assert!(
                series.iter().any(|l| l.starts_with(name)),
                "{app} lacks {name}"
            );
        }
    }
    // The histogram's buckets are the app's risk and timeout: 0.8 s and 1 s here.
    let bucket = r#"appproxy_backend_request_duration_seconds_bucket{app="fine",connector_group="Default",le="0.8"}"#;
    assert!(
        sample(&metrics, bucket).is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    let failure = r#"appproxy_backend_failure_info{app="broken",code="500",connector_group="Default",phase="http"}"#;
    assert_eq!(sample(&metrics, failure), Some(1.0));
    let status = r#"appproxy_backend_http_status_code{app="broken",connector_group="Default"}"#;
    assert_eq!(
        sample(&metrics, status),
        Some(500.0),
        "a failing answer's status stays"
    );
    let hanging = r#"appproxy_backend_http_status_code{app="hanging",connector_group="Default"}"#;
    assert_eq!(sample(&metrics, hanging), None, "no answer, no status");
}

/// `/metrics` with and without `Accept-Encoding: gzip`: the same text, the first compressed
/// as one gzip member that a standard decoder reads whole (the exporter's own series, built
/// per scrape, close the member the snapshot's families open).
#[test]
fn metrics_are_served_gzip_to_who_asks_and_as_text_to_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), common::THREE_APPS);
    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    wait_for(exporter.address, "/-/ready", |status, _| status == 200);

    let (head, body) = raw_get(exporter.address, "Accept-Encoding: gzip, deflate\r\n");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut text)
        .expect("one whole gzip member");
    let (plain_head, plain) = raw_get(exporter.address, "");
    assert!(!plain_head.contains("content-encoding"), "{plain_head}");
    let plain = String::from_utf8(plain).unwrap();
    // The snapshot's families are compressed; the scrape's own few series (about 3.5 KB, most
    // of what three apps make) close the member stored as they are.
    assert!(
        body.len() * 3 < plain.len() * 2,
        "compressed: {} of {}",
        body.len(),
        plain.len()
    );
    // The same series; values of the process's own series move between the two scrapes.
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("process_"))
            .map(|l| {
                l.rsplit_once(' ')
                    .map_or(l, |(series, _)| series)
                    .to_string()
            })
            .collect()
    };
    assert_eq!(names(&text), names(&plain));
    assert!(text.contains("appproxy_exporter_build_info{"));
    assert!(text.contains("appproxy_flow_failing_step{app=\"payroll\""));
    // gzip refused with a quality of 0 gets text.
    let (refused, _) = raw_get(exporter.address, "Accept-Encoding: gzip;q=0, identity\r\n");
    assert!(!refused.contains("content-encoding"), "{refused}");
}

/// An HTTP/1.1 GET of /metrics with `extra` headers: (head, body), the body de-chunked.
fn raw_get(address: SocketAddr, extra: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).to_lowercase();
    let mut rest = &all[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return (head, rest.to_vec());
    }
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap(), 16).unwrap();
        rest = &rest[end + 2..];
        if size == 0 {
            return (head, body);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
