//! What a hostile or broken sign-in endpoint or Graph could do to the exporter: a token that
//! never expires, error texts of megabytes that repeat the bearer token, lists that never end,
//! passwords in URLs; and what a flood of reloads once cost. Each test failed before its fix.

use std::time::Duration;

use serde_json::json;

use super::common::{self, GraphServer, sample};
use super::{graph_config, tenant};

/// Every route Graph was asked for, from the server's own count.
fn graph_reads(server: &GraphServer) -> u64 {
    server.stats()["requests"].as_u64().unwrap_or(0)
}

fn tokens_issued(server: &GraphServer) -> u64 {
    server.stats()["tokens_issued"].as_u64().unwrap_or(0)
}

/// `expires_in: 18446744073709551615` once overflowed the token's renewal instant and panicked
/// the prober: no Graph read ever again, `/-/ready` 503 for good, the process still up.
#[test]
fn a_token_that_never_expires_neither_panics_the_prober_nor_stops_graph_reads() {
    let server = GraphServer::start(&tenant(), 100);
    server.faults(json!({"token_expires_in": u64::MAX}));
    let dir = tempfile::tempdir().unwrap();
    let probes = "probes:\n  interval: 200ms\n  timeout: 200ms\n  endpoints:\n    catalog: none\n  backend:\n    enabled: false\n";
    let text = graph_config(dir.path(), &server, probes)
        .replace("refresh_interval: 1ms", "refresh_interval: 200ms");
    let config = common::write_config(dir.path(), &text);
    let exporter = common::start(&[&format!("--config.file={}", config.display())]);
    common::wait_for(exporter.address, "/-/ready", |status, _| status == 200);
    let before = graph_reads(&server);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        graph_reads(&server) > before,
        "Graph is read on every refresh"
    );
    assert_eq!(tokens_issued(&server), 1, "the token is kept, not renewed");
    let (_, metrics) = common::get(exporter.address, "/metrics");
    assert_eq!(sample(&metrics, "appproxy_inventory_up"), Some(1.0));
}
