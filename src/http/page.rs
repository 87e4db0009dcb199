//! The live page at `/`: per connector group and app, the ten-step chart with each step
//! green (passed), red (failed), outlined (where the walk stops) or grey (not reached, not
//! evaluated), and under it the failing step's evidence, remedy, Microsoft documentation and
//! runbook. Self-contained (no script, no fetch), it reloads itself; it reads on a phone too.
//! Failing apps come first, a page of them at a time ([`Listing`]); the page is written in
//! three parts (head, one card per app, tail) so that it is sent as it is written.

use std::fmt::Write;

use super::paths::WebPaths;
use crate::diagnosis::{AppDiagnosis, Diagnosis, HostCheckView, State, StepView};

/// What the page says besides its apps: the document's head (no apps in it) and the links.
pub struct PageContext<'a> {
    pub diagnosis: Option<&'a Diagnosis>,
    pub telemetry_path: &'a str,
    pub paths: &'a WebPaths,
}

const STYLE: &str = r#"
:root{--pass:#2e7d32;--pass-bg:#e8f5e9;--fail:#c62828;--fail-bg:#ffebee;--grey:#757575;--grey-bg:#f5f5f5}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#212121;background:#fafafa;line-height:1.4}
header{background:#263238;color:#fff;padding:.8rem 1rem}
header h1{margin:0;font-size:1.25rem}
header p{margin:.2rem 0 0;font-size:.85rem;color:#cfd8dc}
nav a{color:#80cbc4;margin-right:1rem}
main{padding:1rem;max-width:90rem;margin:auto}
.summary{font-size:1.05rem;margin:.2rem 0 1rem}
.summary .bad{color:var(--fail);font-weight:600}.summary .good{color:var(--pass);font-weight:600}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
article{background:#fff;border:1px solid #e0e0e0;border-left:6px solid var(--pass);border-radius:6px;padding:.8rem;margin:.8rem 0}
article.failing{border-left-color:var(--fail)}
article h3{margin:0 0 .6rem;font-size:1rem}
article h3 .verdict{font-weight:normal;color:var(--grey)}
article.failing h3 .verdict{color:var(--fail);font-weight:600}
ol.chart{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(5,1fr);gap:.4rem}
ol.chart li{border-radius:4px;padding:.35rem .45rem;font-size:.8rem;border:1px solid transparent;min-height:3.4rem}
ol.chart li .n{font-weight:700;margin-right:.3rem}
li.pass{background:var(--pass-bg);border-color:#a5d6a7}
li.fail{background:var(--fail-bg);border-color:#ef9a9a}
li.failing{background:var(--fail);color:#fff;border:3px solid #7f0000;font-weight:600}
li.not-reached,li.not-evaluated{background:var(--grey-bg);color:var(--grey)}
li.not-evaluated{border-style:dashed;border-color:#ccc}
li.fail.not-reached{background:var(--fail-bg);color:#b71c1c;opacity:.7}
.failure{margin-top:.7rem;padding:.6rem;background:var(--fail-bg);border-radius:4px;font-size:.9rem}
.failure dt{font-weight:600;margin-top:.3rem}.failure dd{margin:0 0 .2rem}
dl.not-evaluated{margin-top:.5rem;font-size:.85rem;color:var(--grey)}dl.not-evaluated dt{font-weight:600}dl.not-evaluated dd{margin:0 0 .2rem}
ul.host-checks{list-style:none;padding:0;margin:0;display:grid;gap:.4rem}
ul.host-checks li{border-radius:4px;padding:.45rem .6rem;font-size:.85rem;border:1px solid transparent}
li.warning{background:#fff8e1;border-color:#ffe082}
.legend{font-size:.8rem;color:var(--grey);margin-top:1.5rem}
.legend span{display:inline-block;padding:0 .4rem;margin-right:.4rem;border-radius:3px}
.pages{font-size:.9rem;color:var(--grey)}
@media (max-width:40rem){main{padding:.5rem}ol.chart{grid-template-columns:1fr 1fr}}
"#;

/// Which apps a page shows: failing apps first, `limit` a page (a person has no use for 25
/// MB of HTML at 10,000 apps, and the exporter none for sending it).
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    /// Apps walked, and how many of them fail.
    pub total: usize,
    pub failing: usize,
    /// The page shown (1-based), of how many, with how many apps a page at most.
    pub page: usize,
    pub pages: usize,
    pub limit: usize,
    /// The position of the first app shown (0-based) among all, failing first.
    pub first: usize,
    pub shown: usize,
}

/// The page up to its first app: header, summary and the pages' links.
pub fn head(ctx: &PageContext<'_>, listing: &Listing) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="15">
<title>appproxy_exporter: App Proxy connector flowchart</title>
<style>{STYLE}</style></head><body>
<header><h1>App Proxy connector flowchart</h1>
<p>appproxy_exporter {version}{host} · follows Microsoft's <a style="color:#80cbc4" href="https://learn.microsoft.com/entra/global-secure-access/troubleshoot-connectors">connector troubleshooting flowchart</a> · refreshes every 15 s</p>
<nav><a href="{metrics}">Metrics</a><a href="{diagnosis}">Diagnosis (JSON)</a><a href="{config}">Configuration</a><a href="{healthy}">Health</a><a href="{ready}">Readiness</a></nav>
</header><main>
"#,
        version = crate::release::VERSION,
        host = ctx.diagnosis.map_or(String::new(), |d| format!(
            " · host {} · configuration {} · {}",
            escape(&d.host.machine_name),
            escape(&d.host.config),
            escape(&d.generated_at)
        )),
        metrics = escape(&ctx.paths.link(ctx.telemetry_path)),
        diagnosis = escape(&ctx.paths.link("/api/v1/diagnosis")),
        config = escape(&ctx.paths.link("/config")),
        healthy = escape(&ctx.paths.link("/-/healthy")),
        ready = escape(&ctx.paths.link("/-/ready")),
    );
    let Some(d) = ctx.diagnosis else {
        html.push_str("<p class=\"summary\">The first probe round has not finished yet.</p>");
        return html;
    };
    let summary = if d.healthy {
        "<span class=\"good\">every evaluated step passes</span>".to_string()
    } else if listing.total == 0 {
        "<span class=\"bad\">this host fails a step</span>".to_string()
    } else {
        format!(
            "<span class=\"bad\">{} of {} apps fail a step</span>",
            listing.failing, listing.total
        )
    };
    let _ = write!(
        html,
        "<p class=\"summary\">{} app(s) walked from this host: {summary}.</p>",
        listing.total
    );
    if listing.total == 0 {
        html.push_str("<p>No app to walk: configure <code>inventory.static</code> or <code>inventory.graph</code>. This host's own checks:</p>");
        render_card(&mut html, "This host", None, &d.host_steps);
    } else {
        render_pages(&mut html, ctx, listing);
    }
    html
}

/// "Apps 101-200 of 10,000, failing first", with links to the pages before and after.
fn render_pages(html: &mut String, ctx: &PageContext<'_>, listing: &Listing) {
    if listing.pages <= 1 {
        return;
    }
    let link = |page: usize, text: &str| {
        format!(
            r#"<a href="{}?page={page}&amp;limit={}">{text}</a>"#,
            escape(&ctx.paths.link("/")),
            listing.limit
        )
    };
    let _ = write!(
        html,
        r#"<p class="pages">Apps {}-{} of {}, failing first (page {} of {})"#,
        listing.first + 1,
        listing.first + listing.shown,
        listing.total,
        listing.page,
        listing.pages
    );
    if listing.page > 1 {
        let _ = write!(html, " · {}", link(listing.page - 1, "‹ previous"));
    }
    if listing.page < listing.pages {
        let _ = write!(html, " · {}", link(listing.page + 1, "next ›"));
    }
    html.push_str("</p>");
}

/// One app's card, under its connector group's heading when `group` (the group of the card
/// before) is another.
pub fn app(html: &mut String, app: &AppDiagnosis, group: &mut Option<String>) {
    if group.as_deref() != Some(app.connector_group.as_str()) {
        let title = if app.connector_group.is_empty() {
            "(no connector group)"
        } else {
            &app.connector_group
        };
        let _ = write!(html, "<h2>Connector group {}</h2>", escape(title));
        *group = Some(app.connector_group.clone());
    }
    render_card(html, &app.app, Some(app), &app.steps);
}

/// A wildcard web app judged by its Graph segments: each segment host's last answer, and the
/// segments not requested with why, under its card.
fn render_segments(html: &mut String, app: &AppDiagnosis) {
    use crate::diagnosis::web_segments::{answer, mark};
    if app.segments.is_empty() && app.segments_not_requested.is_empty() {
        return;
    }
    html.push_str(r#"<dl class="segments"><dt>Segments (steps 7-9 judge every one)</dt>"#);
    for s in &app.segments {
        let class = if s.up { "pass" } else { "fail" };
        let _ = write!(
            html,
            r#"<dd class="{class}">{} {}: {}</dd>"#,
            mark(s),
            escape(&s.url),
            escape(&answer(s))
        );
    }
    for why in &app.segments_not_requested {
        let _ = write!(html, "<dd>- {}</dd>", escape(why));
    }
    html.push_str("</dl>");
}

/// The page after its last app: the pages' links again, the host's own checks, the legend.
pub fn tail(ctx: &PageContext<'_>, listing: &Listing) -> String {
    let mut html = String::with_capacity(8 * 1024);
    if let Some(d) = ctx.diagnosis {
        render_pages(&mut html, ctx, listing);
        render_host_checks(&mut html, &d.host_checks);
    }
    html.push_str(
        r#"<p class="legend"><span class="pass" style="background:var(--pass-bg)">passed</span><span style="background:var(--fail);color:#fff">where the walk stops</span><span style="background:var(--fail-bg)">failed (later)</span><span style="background:var(--grey-bg)">not reached / not evaluated</span></p>
</main></body></html>
"#,
    );
    html
}

/// The connector host's own checks: each with its state, the step it explains, and its
/// evidence, remedy or the reason it is not evaluated here.
fn render_host_checks(html: &mut String, checks: &[HostCheckView]) {
    html.push_str(r#"<h2>This connector host</h2><ul class="host-checks">"#);
    for c in checks {
        let class = match c.state {
            "pass" => "step pass",
            "fail" => "step fail failing",
            "warning" => "step warning",
            _ => "step not-evaluated",
        };
        let _ = write!(
            html,
            r#"<li class="{class}" data-check="{check}" data-state="{state}"><b>{title}</b> · step {step} ({step_name}) · {state_text}"#,
            check = c.check,
            state = c.state,
            title = escape(c.title),
            step = c.step,
            step_name = c.step_name,
            state_text = c.state.replace('_', " "),
        );
        if let Some(evidence) = &c.evidence {
            let _ = write!(html, "<br>{}", escape(evidence));
        }
        if let Some(readings) = &c.readings {
            let _ = write!(html, r#"<br><small>{}</small>"#, escape(readings));
        }
        if let Some(remedy) = &c.remedy {
            let _ = write!(
                html,
                r#"<br><b>What to do:</b> {} (<a href="{}">runbook</a>)"#,
                escape(remedy),
                escape(&c.runbook)
            );
        }
        html.push_str("</li>");
    }
    html.push_str("</ul>\n");
}

fn render_card(html: &mut String, name: &str, app: Option<&AppDiagnosis>, steps: &[StepView]) {
    let failing = steps.iter().find(|s| s.state == State::Fail);
    let class = if failing.is_some() {
        "app failing"
    } else {
        "app healthy"
    };
    let verdict = match failing {
        Some(s) => format!("fails at step {}: {}", s.step, escape(s.title)),
        None => "every evaluated step passes".into(),
    };
    let id = app.map_or("host".to_string(), |a| format!("app-{}", slug(&a.app)));
    let _ = write!(
        html,
        r#"<article class="{class}" id="{id}" data-app="{name}"><h3>{name} <span class="verdict">{verdict}</span></h3><ol class="chart">"#,
        name = escape(name)
    );
    for s in steps {
        // A step past the failing one keeps its measured colour, lighter.
        let class = match s.state {
            State::Pass => "step pass",
            State::Fail => "step fail failing",
            State::NotReached if s.result == Some(State::Fail) => "step fail not-reached",
            State::NotReached => "step not-reached",
            State::NotEvaluated => "step not-evaluated",
        };
        let current = if s.state == State::Fail {
            r#" aria-current="step""#
        } else {
            ""
        };
        let _ = write!(
            html,
            r#"<li class="{class}" data-step="{n}" data-step-name="{name}" title="{name}"{current}><span class="n">{n}</span>{title}</li>"#,
            n = s.step,
            name = s.step_name,
            title = escape(s.title),
        );
    }
    html.push_str("</ol>");
    render_not_evaluated(html, steps);
    if let Some(s) = failing {
        let _ = write!(
            html,
            r#"<dl class="failure"><dt>Evidence</dt><dd>{}</dd>"#,
            escape(s.evidence.as_deref().unwrap_or(""))
        );
        if let Some(remedy) = &s.remedy {
            let _ = write!(html, "<dt>What to do</dt><dd>{}</dd>", escape(remedy));
        }
        let _ = write!(
            html,
            r#"<dt>Read more</dt><dd><a href="{}">our runbook for step {}</a> · <a href="{}">Microsoft's documentation</a></dd></dl>"#,
            escape(&s.runbook),
            s.step,
            escape(s.doc_url)
        );
    }
    if let Some(app) = app {
        render_segments(html, app);
    }
    html.push_str("</article>\n");
}

/// Says why the grey steps that carry a reason could not be judged, once per reason
/// ("steps 7-10: the internal URL is a wildcard ...").
fn render_not_evaluated(html: &mut String, steps: &[StepView]) {
    let mut reasons: Vec<(Vec<u8>, &str)> = Vec::new();
    for s in steps.iter().filter(|s| s.state == State::NotEvaluated) {
        let Some(reason) = s.evidence.as_deref() else {
            continue;
        };
        match reasons.iter_mut().find(|(_, r)| *r == reason) {
            Some((numbers, _)) => numbers.push(s.step),
            None => reasons.push((vec![s.step], reason)),
        }
    }
    if reasons.is_empty() {
        return;
    }
    html.push_str(r#"<dl class="not-evaluated">"#);
    for (numbers, reason) in reasons {
        let contiguous = numbers.windows(2).all(|w| w[1] == w[0] + 1);
        let label = match numbers.as_slice() {
            [one] => format!("Step {one} not evaluated"),
            [first, .., last] if contiguous => format!("Steps {first}-{last} not evaluated"),
            _ => {
                let list: Vec<String> = numbers.iter().map(u8::to_string).collect();
                format!("Steps {} not evaluated", list.join(", "))
            }
        };
        let _ = write!(html, "<dt>{label}</dt><dd>{}</dd>", escape(reason));
    }
    html.push_str("</dl>");
}

/// A name usable in an element id.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
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
