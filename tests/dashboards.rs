//! The dashboards follow the rules users of Grafana dashboards expect (dashboard-linter's):
//! fixed uids, a datasource variable used by every panel, job/instance variables in every
//! selector, a title, description and unit on every panel, counters only inside rates over
//! `$__rate_interval`, and only metrics the exporter serves. They are rendered from the mixin
//! (mixin/dashboards/); these tests hold what it renders to a fleet's needs: steps 7-10 worst
//! first, only failing apps at a thousand apps, firing alerts as annotations, and links that do
//! not lead to a scrape address.

use serde_json::Value;

fn dashboards() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn panels(board: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    let mut stack: Vec<Value> = board["panels"].as_array().cloned().unwrap_or_default();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().cloned().unwrap_or_default());
        all.push(panel);
    }
    all
}

/// Metric names the exporter serves, from the README's table.
fn served_metrics() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| {
            l.strip_prefix("| `appproxy_")?
                .split('`')
                .next()
                .map(|m| format!("appproxy_{m}"))
        })
        .collect()
}

#[test]
fn there_are_an_overview_and_an_app_dashboard_with_fixed_uids() {
    let uids: Vec<String> = dashboards()
        .iter()
        .map(|(_, b)| b["uid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(uids, ["appproxy-app", "appproxy-overview"]);
}

#[test]
fn every_dashboard_has_the_variables_users_expect() {
    for (name, board) in dashboards() {
        let vars: Vec<&str> = board["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            vars,
            ["datasource", "job", "instance", "connector_group", "app"],
            "{name}"
        );
        let first = &board["templating"]["list"][0];
        assert_eq!(
            (first["type"].as_str(), first["query"].as_str()),
            (Some("datasource"), Some("prometheus")),
            "{name}"
        );
        assert!(board["schemaVersion"].as_u64().unwrap() >= 36, "{name}");
    }
}

#[test]
fn every_panel_is_titled_described_given_a_unit_and_the_datasource_variable() {
    let mut problems = Vec::new();
    for (name, board) in dashboards() {
        for panel in panels(&board) {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap_or("");
            let mut need = |ok: bool, what: &str| {
                if !ok {
                    problems.push(format!("{name} / {title:?}: {what}"));
                }
            };
            need(!title.is_empty(), "no title");
            need(
                panel["description"].as_str().is_some_and(|d| d.len() > 10),
                "no description",
            );
            need(
                panel["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
                "no unit",
            );
            need(
                panel["datasource"]["uid"] == "${datasource}",
                "not on the datasource variable",
            );
            for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                let expr = target["expr"].as_str().unwrap_or("");
                need(
                    expr.contains("job=~\"$job\"") && expr.contains("instance=~\"$instance\""),
                    "a selector without job/instance",
                );
                // A counter's name ends in `_total` (a gauge may hold it inside, as
                // `appproxy_host_memory_total_bytes` does).
                let counter = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| word.starts_with("appproxy_") && word.ends_with("_total"));
                if counter {
                    need(
                        expr.contains("rate(") && expr.contains("[$__rate_interval]"),
                        "a counter outside rate(...[$__rate_interval])",
                    );
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dashboards_use_only_metrics_the_exporter_serves() {
    let served = served_metrics();
    assert!(served.len() > 30, "the README's metric table was not found");
    let mut unknown = Vec::new();
    for (name, board) in dashboards() {
        for panel in panels(&board) {
            for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                let expr = target["expr"].as_str().unwrap_or("");
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    let base = word
                        .trim_end_matches("_bucket")
                        .trim_end_matches("_count")
                        .trim_end_matches("_sum");
                    if word.starts_with("appproxy_") && !served.iter().any(|m| m == base) {
                        unknown.push(format!("{name}: {word}"));
                    }
                }
            }
        }
    }
    assert!(unknown.is_empty(), "{unknown:?}");
}

#[test]
fn the_walk_timeline_maps_every_step_number_to_its_name() {
    let (_, overview) = dashboards()
        .into_iter()
        .find(|(n, _)| n == "appproxy-overview.json")
        .unwrap();
    let timeline = panels(&overview)
        .into_iter()
        .find(|p| {
            p["type"] == "state-timeline"
                && p["targets"]
                    .to_string()
                    .contains("appproxy_flow_failing_step{")
        })
        .expect("a state timeline of the failing step");
    let mappings = timeline["fieldConfig"]["defaults"]["mappings"].to_string();
    for name in [
        "connector_group_assigned",
        "port_test",
        "backend_timeout",
        "escalate_app_flow",
    ] {
        assert!(mappings.contains(name), "{name} not mapped: {mappings}");
    }
}

fn overview() -> Value {
    dashboards()
        .into_iter()
        .find(|(n, _)| n == "appproxy-overview.json")
        .unwrap()
        .1
}

fn exprs(panel: &Value) -> Vec<String> {
    panel["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect()
}

#[test]
fn firing_alerts_show_as_annotations_on_every_dashboard() {
    for (name, board) in dashboards() {
        let annotations = board["annotations"]["list"].to_string();
        assert!(
            annotations.contains(r#"ALERTS{alertname=~\"AppProxy.*\",alertstate=\"firing\""#),
            "{name}: {annotations}"
        );
    }
}

#[test]
fn no_link_leads_to_a_scrape_address() {
    for (name, board) in dashboards() {
        let text = board.to_string();
        for bad in ["fields.instance}", "labels.instance}", "http://${"] {
            assert!(!text.contains(bad), "{name} links through {bad}");
        }
    }
}

#[test]
fn the_overview_shows_steps_7_to_10_worst_first_and_the_apps_closest_to_their_timeout() {
    let panels = panels(&overview());
    let limited = |metric: &str| {
        panels.iter().any(|p| {
            p["type"] == "table"
                && exprs(p)
                    .iter()
                    .any(|e| e.contains(metric) && (e.contains("topk(") || e.contains("bottomk(")))
        })
    };
    for metric in [
        "appproxy_backend_up{",
        "appproxy_backend_latency_ratio:",
        "appproxy_external_up{",
        "appproxy_flow_failing_step_info{",
    ] {
        assert!(limited(metric), "no worst-first table of {metric}");
    }
    assert!(panels.iter().any(|p| {
        p["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Closest to their timeout"))
    }));
}

#[test]
fn per_app_panels_of_the_overview_list_only_apps_that_failed_in_the_range() {
    // At 1,000 apps a timeline of every app is unreadable: a per-app series is drawn only for
    // the apps picked by a topk/bottomk over the range, or counted, or kept to failures.
    for panel in panels(&overview()) {
        for expr in exprs(&panel) {
            let per_app = [
                "appproxy_flow_failing_step{",
                "appproxy_backend_latency_ratio{",
            ]
            .iter()
            .any(|m| expr.starts_with(m));
            if per_app && panel["type"] != "stat" {
                assert!(
                    expr.contains("[$__range] @ end()") && expr.contains("topk("),
                    "{}: {expr}",
                    panel["title"]
                );
            }
        }
    }
}
