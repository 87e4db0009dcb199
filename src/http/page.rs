//! The landing page at `/`: links to every endpoint and, per connector group, each app's walk
//! through the ten steps (green pass, red fail, grey not evaluated) with the failing step's
//! evidence and remedy. Self-contained: no scripts or fetches, it reloads itself.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::flow::{Outcome, STEPS, Step};
use crate::store::{AppWalk, Snapshot};

pub struct PageContext<'a> {
    pub snapshot: &'a Snapshot,
    pub telemetry_path: &'a str,
    pub config_source: String,
    pub machine_name: String,
}

pub fn render(ctx: &PageContext<'_>) -> String {
    let mut html = String::with_capacity(8192);
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>appproxy_exporter</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1rem;max-width:80rem;color:#222}}
table{{border-collapse:collapse;margin:.5rem 0 1.5rem}} td,th{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}}
td.step{{text-align:center;min-width:1.6rem;font-weight:bold}}
.pass{{background:#c8e6c9}} .fail{{background:#ef9a9a}} .none{{background:#eee;color:#999}}
.muted{{color:#666}} nav a{{margin-right:1rem}}
</style></head><body>
<h1>appproxy_exporter <span class="muted">{version}</span></h1>
<nav><a href="{metrics}">Metrics</a><a href="/config">Configuration</a><a href="/-/healthy">Health</a><a href="/-/ready">Readiness</a></nav>
<p class="muted">Configuration: {source}. This host: {machine}. The walk follows Microsoft's
<a href="https://learn.microsoft.com/entra/identity/app-proxy/application-proxy-debug-connectors">connector troubleshooting flowchart</a>.</p>
"#,
        version = env!("CARGO_PKG_VERSION"),
        metrics = escape(ctx.telemetry_path),
        source = escape(&ctx.config_source),
        machine = escape(&ctx.machine_name),
    );
    if !ctx.snapshot.complete {
        html.push_str("<p>The first probe round has not finished yet.</p>");
    } else if ctx.snapshot.walks.is_empty() {
        html.push_str("<p>No applications to walk: configure <code>inventory.static</code> or <code>inventory.graph</code>.</p>");
    }
    let mut by_group: BTreeMap<&str, Vec<&AppWalk>> = BTreeMap::new();
    for walk in &ctx.snapshot.walks {
        by_group
            .entry(&walk.connector_group)
            .or_default()
            .push(walk);
    }
    for (group, walks) in by_group {
        let title = if group.is_empty() {
            "(no connector group)"
        } else {
            group
        };
        let _ = write!(html, "<h2>{}</h2>\n<table><tr><th>App</th>", escape(title));
        for info in &STEPS {
            let _ = write!(
                html,
                r#"<th title="{}">{}</th>"#,
                escape(info.title),
                info.step.number()
            );
        }
        html.push_str("<th>Where the walk stops</th></tr>\n");
        for walk in walks {
            render_walk(&mut html, walk);
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    html
}

fn render_walk(html: &mut String, walk: &AppWalk) {
    let _ = write!(html, "<tr><td>{}</td>", escape(&walk.app));
    for step in Step::ALL {
        let (class, mark) = match walk.steps.get(step) {
            Some(Outcome::Pass) => ("pass", "✓"),
            Some(Outcome::Fail { .. }) => ("fail", "✗"),
            None => ("none", "·"),
        };
        let _ = write!(
            html,
            r#"<td class="step {class}" title="{}">{mark}</td>"#,
            step.name()
        );
    }
    match &walk.failure {
        None => html.push_str("<td>every evaluated step passes</td>"),
        Some(failure) => {
            let info = failure.step.info();
            let _ = write!(
                html,
                r#"<td><b>Step {}: {}</b><br>{}<br><i>{}</i> <a href="{}">Microsoft docs</a></td>"#,
                info.step.number(),
                escape(info.title),
                escape(&failure.evidence),
                escape(&failure.remedy),
                escape(info.doc_url),
            );
        }
    }
    html.push_str("</tr>\n");
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
