//! The runbooks of docs/runbooks/, built into the binary and served at `/runbooks/{step_name}`,
//! so the page, `diagnose` and alert annotations can link to them wherever the exporter runs.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, html};

use super::page::escape;
use super::paths::WebPaths;
use crate::walk::Step;

/// Each step's runbook, in step order.
const RUNBOOKS: [&str; 10] = [
    include_str!("../../docs/runbooks/connector_group_assigned.md"),
    include_str!("../../docs/runbooks/connector_installed.md"),
    include_str!("../../docs/runbooks/port_test.md"),
    include_str!("../../docs/runbooks/required_endpoints.md"),
    include_str!("../../docs/runbooks/forward_proxy.md"),
    include_str!("../../docs/runbooks/proxy_consistency.md"),
    include_str!("../../docs/runbooks/internal_url.md"),
    include_str!("../../docs/runbooks/internal_network.md"),
    include_str!("../../docs/runbooks/backend_timeout.md"),
    include_str!("../../docs/runbooks/escalate_app_flow.md"),
];

/// The runbook of alerts on the exporter itself, which is no step of the flowchart.
const EXPORTER: &str = include_str!("../../docs/runbooks/exporter.md");

/// The runbook of the step named `name` (or of the exporter itself: `exporter`), as a page.
pub fn page(name: &str, paths: &WebPaths) -> Option<String> {
    let (title, markdown) = if name == "exporter" {
        ("The exporter itself".to_string(), EXPORTER)
    } else {
        let step = Step::ALL.into_iter().find(|s| s.name() == name)?;
        (
            format!("Step {}: {}", step.number(), step.info().title),
            RUNBOOKS[usize::from(step.number()) - 1],
        )
    };
    // Links between runbooks point at the files; here they point at the served pages.
    let events = Parser::new(markdown).map(|event| match event {
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let dest_url = served_link(&dest_url).map_or(dest_url, |path| paths.link(&path).into());
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            })
        }
        other => other,
    });
    let mut body = String::new();
    html::push_html(&mut body, with_heading_ids(events.collect()).into_iter());
    Some(wrap(&title, &body, paths))
}

/// Gives every section heading the id GitHub gives it (lower case, spaces to `-`, other punctuation
/// dropped), so links such as alerts' `#host-check-certificate` work on the files and on the
/// served pages alike.
fn with_heading_ids(mut events: Vec<Event<'_>>) -> Vec<Event<'_>> {
    for i in 0..events.len() {
        // Sections only: the page's title needs no anchor.
        if !matches!(&events[i], Event::Start(Tag::Heading { id: None, level, .. }) if *level != HeadingLevel::H1)
        {
            continue;
        }
        let mut text = String::new();
        for event in &events[i + 1..] {
            match event {
                Event::Text(t) | Event::Code(t) => text.push_str(t),
                Event::End(_) => break,
                _ => {}
            }
        }
        let slug: String = text
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        if let Event::Start(Tag::Heading { id, .. }) = &mut events[i] {
            *id = Some(slug.into());
        }
    }
    events
}

/// `port_test.md` (or `./port_test.md#x`) to `/runbooks/port_test` (`#x`).
fn served_link(dest: &str) -> Option<String> {
    let dest = dest.trim_start_matches("./");
    let (file, section) = dest
        .split_once('#')
        .map_or((dest, None), |(f, s)| (f, Some(s)));
    let name = file.strip_suffix(".md")?;
    (name == "exporter" || Step::ALL.iter().any(|s| s.name() == name)).then(|| match section {
        Some(section) => format!("/runbooks/{name}#{section}"),
        None => format!("/runbooks/{name}"),
    })
}

/// The list of every runbook.
pub fn index(paths: &WebPaths) -> String {
    let items: String = Step::ALL
        .iter()
        .map(|s| {
            format!(
                r#"<li><a href="{}">Step {}: {}</a></li>"#,
                escape(&paths.link(&format!("/runbooks/{}", s.name()))),
                s.number(),
                escape(s.info().title)
            )
        })
        .collect();
    wrap(
        "Runbooks",
        &format!(
            r#"<h1>Runbooks</h1><ol>{items}</ol><p><a href="{}">The exporter itself</a></p>"#,
            escape(&paths.link("/runbooks/exporter"))
        ),
        paths,
    )
}

fn wrap(title: &str, body: &str, paths: &WebPaths) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · appproxy_exporter</title>
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:auto;padding:1rem;line-height:1.5;color:#212121}}
code,pre{{background:#f5f5f5;border-radius:3px}}pre{{padding:.6rem;overflow-x:auto}}code{{padding:0 .2rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.3rem .5rem}}nav a{{margin-right:1rem}}</style></head>
<body><nav><a href="{home}">Flowchart</a><a href="{index}">Runbooks</a></nav>
{body}</body></html>
"#,
        escape(title),
        home = escape(&paths.link("/")),
        index = escape(&paths.link("/runbooks")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_a_runbook_titled_with_its_number_and_name() {
        for step in Step::ALL {
            let markdown = RUNBOOKS[usize::from(step.number()) - 1];
            let first = markdown.lines().next().unwrap_or("");
            assert!(
                first.starts_with(&format!("# Step {}:", step.number())),
                "{first}"
            );
            assert!(first.contains(step.name()), "{first}");
            assert!(page(step.name(), &WebPaths::default()).is_some());
        }
        assert!(page("no_such_step", &WebPaths::default()).is_none());
    }

    #[test]
    fn every_host_check_links_a_section_its_runbook_has() {
        for check in crate::host::CheckKind::ALL {
            let link = check.runbook("/runbooks");
            let (path, anchor) = link.split_once('#').unwrap();
            let page = page(path.trim_start_matches("/runbooks/"), &WebPaths::default()).unwrap();
            assert!(page.contains(&format!("id=\"{anchor}\"")), "{link}");
        }
    }

    #[test]
    fn every_runbook_link_of_the_alert_rules_is_served_with_its_section() {
        // The rules as the mixin renders them with its default pattern (this repository's
        // docs/runbooks/%s.md): a user who points the pattern at an exporter's /runbooks/%s
        // gets the same names and sections served.
        let rules = include_str!("../../alerts/appproxy.rules.yml");
        let mut checked = 0;
        for line in rules.lines().filter(|l| l.contains("runbook_url:")) {
            let (_, link) = line.split_once("/runbooks/").unwrap();
            let link = link.trim_end_matches('"');
            if link.contains("{{") {
                continue; // named by a label at alert time: a step name
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let name = file.strip_suffix(".md").unwrap_or(file);
            let page = page(name, &WebPaths::default());
            assert!(page.is_some(), "no runbook {name}");
            if !anchor.is_empty() {
                assert!(
                    page.unwrap().contains(&format!("id=\"{anchor}\"")),
                    "{link}"
                );
            }
            checked += 1;
        }
        assert!(checked > 20, "only {checked} runbook links found");
    }

    #[test]
    fn links_between_runbooks_point_at_the_served_pages() {
        assert_eq!(
            served_link("port_test.md").as_deref(),
            Some("/runbooks/port_test")
        );
        // A link to a section keeps it.
        assert_eq!(
            served_link("./forward_proxy.md#what-to-do").as_deref(),
            Some("/runbooks/forward_proxy#what-to-do")
        );
        assert_eq!(
            served_link("exporter.md#appproxyexporterdown").as_deref(),
            Some("/runbooks/exporter#appproxyexporterdown")
        );
        assert_eq!(served_link("../deployment.md"), None);
        assert_eq!(served_link("https://learn.microsoft.com/x.md"), None);
    }

    #[test]
    fn under_a_prefix_every_runbook_link_carries_it() {
        let paths = WebPaths::new(None, Some("/appproxy"));
        let index = index(&paths);
        assert!(
            index.contains(r#"href="/appproxy/runbooks/port_test""#),
            "{index}"
        );
        assert!(index.contains(r#"href="/appproxy/""#), "{index}");
        assert!(!index.contains(r#"href="/runbooks"#), "{index}");
        let page = page("port_test", &paths).unwrap_or_default();
        assert!(!page.contains(r#"href="/runbooks"#), "{page}");
    }
}
