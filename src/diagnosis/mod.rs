//! The walk for people: one document per round that says, for this host and each app, every
//! step's state (passed, failed, not reached, not evaluated), the evidence, and for the failing
//! step the remedy with its Microsoft documentation and our runbook. `diagnose --output json`
//! and `/api/v1/diagnosis` serve it as JSON (schema: docs/diagnosis.schema.json); `diagnose`
//! prints it like the flowchart.

mod notes;
pub mod web_segments;

use std::fmt::Write;

use serde::Serialize;

use crate::store::Snapshot;
use crate::verdict::AppWalk;
use crate::walk::{Outcome, Step, StepResults};

#[derive(Debug, Serialize)]
pub struct Diagnosis {
    pub generated_at: String,
    pub exporter: ExporterInfo,
    pub host: HostInfo,
    /// No app fails a step, and neither does this host.
    pub healthy: bool,
    /// Steps 3-6, judged once for this host and shared by every app.
    pub host_steps: Vec<StepView>,
    /// The connector host's own checks, each with the step it explains.
    pub host_checks: Vec<HostCheckView>,
    pub apps: Vec<AppDiagnosis>,
}

/// One of the connector host's own checks (src/host).
#[derive(Debug, Clone, Serialize)]
pub struct HostCheckView {
    pub check: &'static str,
    pub title: &'static str,
    pub step: u8,
    pub step_name: &'static str,
    /// `pass`, `warning`, `fail` or `not_evaluated`.
    pub state: &'static str,
    /// A failure's or warning's evidence, why the check is not evaluated here, or what a pass
    /// saw where the check says (the version check's releases and updater).
    pub evidence: Option<String>,
    pub remedy: Option<String>,
    pub runbook: String,
    /// What the check measured, each figure or why it was not read (capacity only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readings: Option<String>,
}

fn host_checks(snapshot: &Snapshot, runbooks: &str) -> Vec<HostCheckView> {
    use crate::host::Verdict;
    snapshot
        .host
        .checks()
        .into_iter()
        .map(|c| {
            let (state, evidence, remedy) = match c.verdict {
                Verdict::Pass => ("pass", c.note, None),
                Verdict::Warning { evidence } => ("warning", Some(evidence), None),
                Verdict::Fail { evidence, remedy } => ("fail", Some(evidence), Some(remedy)),
                Verdict::NotEvaluated { reason } => ("not_evaluated", Some(reason), None),
            };
            HostCheckView {
                check: c.check.label(),
                title: c.check.title(),
                step: c.check.step().number(),
                step_name: c.check.step().name(),
                state,
                evidence,
                remedy,
                runbook: c.check.runbook(runbooks),
                readings: match c.check {
                    crate::host::CheckKind::Capacity => {
                        snapshot.host.capacity.as_ref().map(|c| c.summary())
                    }
                    _ => None,
                },
            }
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct ExporterInfo {
    pub version: &'static str,
    pub revision: &'static str,
}

#[derive(Debug, Serialize)]
pub struct HostInfo {
    pub machine_name: String,
    pub config: String,
}

#[derive(Debug, Serialize)]
pub struct AppDiagnosis {
    pub connector_group: String,
    pub app: String,
    pub failing_step: Option<u8>,
    pub failing_step_name: Option<&'static str>,
    pub steps: Vec<StepView>,
    /// A wildcard web app judged by its Graph segments: each segment host's last answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<web_segments::SegmentView>,
    /// Its segments not requested, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segments_not_requested: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pass,
    Fail,
    /// After the failing step: the walk stops before it (its measurement is in `result`).
    NotReached,
    /// Not measured here (not applicable on this host, or not probed yet).
    NotEvaluated,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub step: u8,
    pub step_name: &'static str,
    pub title: &'static str,
    pub state: State,
    /// What was measured, whatever the walk says: `pass`, `fail`, or absent.
    pub result: Option<State>,
    pub evidence: Option<String>,
    /// Only on the failing step.
    pub remedy: Option<String>,
    pub doc_url: &'static str,
    pub runbook: String,
}

/// Builds the document from a snapshot, for every app or only `app`; `runbooks` as in
/// [`crate::walk::runbook_url`].
pub fn build(
    snapshot: &Snapshot,
    machine_name: String,
    config: String,
    app: Option<&str>,
    runbooks: &str,
) -> Diagnosis {
    let chosen = |walk: &&AppWalk| app.is_none_or(|name| &*walk.app == name);
    let mut doc = head(snapshot, machine_name, config, runbooks, chosen);
    doc.apps = snapshot
        .walks
        .apps
        .iter()
        .filter(chosen)
        .map(|walk| app_view(snapshot, walk, runbooks))
        .collect();
    doc
}

/// The document without its apps (`apps` empty), for the apps of `snapshot` that `chosen`
/// keeps: what is said once, before the apps are listed one by one with [`app_view`] (the
/// web server sends them that way, never holding the whole).
pub fn head(
    snapshot: &Snapshot,
    machine_name: String,
    config: String,
    runbooks: &str,
    chosen: impl Fn(&&AppWalk) -> bool,
) -> Diagnosis {
    let host_steps = views(
        &snapshot.walks.host,
        [
            Step::PortTest,
            Step::RequiredEndpoints,
            Step::ForwardProxy,
            Step::ProxyConsistency,
        ]
        .as_slice(),
        runbooks,
        |step| notes::pass_note(step, snapshot, "", None),
    );
    let host_fails = host_steps.iter().any(|s| s.state == State::Fail);
    let apps_fail = snapshot
        .walks
        .apps
        .iter()
        .filter(chosen)
        .any(|w| w.failure.is_some());
    Diagnosis {
        generated_at: now_rfc3339(),
        exporter: ExporterInfo {
            version: crate::release::VERSION,
            revision: crate::release::REVISION,
        },
        host: HostInfo {
            machine_name,
            config,
        },
        healthy: !host_fails && !apps_fail,
        host_steps,
        host_checks: host_checks(snapshot, runbooks),
        apps: Vec::new(),
    }
}

/// One app's part of the document.
pub fn app_view(snapshot: &Snapshot, walk: &AppWalk, runbooks: &str) -> AppDiagnosis {
    AppDiagnosis {
        connector_group: walk.connector_group.to_string(),
        app: walk.app.to_string(),
        failing_step: walk.failure.as_ref().map(|f| f.step.number()),
        failing_step_name: walk.failure.as_ref().map(|f| f.step.name()),
        steps: views(&walk.steps, &Step::ALL, runbooks, |step| {
            // A Private Access app's step 8: each segment address:port, as it answered.
            if let (Step::InternalNetwork, Some(report)) = (step, &walk.segments) {
                return Some(report.detail().join("; "));
            }
            notes::pass_note(
                step,
                snapshot,
                &walk.connector_group,
                walk.backend.as_deref(),
            )
        }),
        segments: web_segments::views(walk.backend.as_deref()),
        segments_not_requested: web_segments::not_requested(walk.backend.as_deref()),
    }
}

/// Each step's state along the walk of `results`; `note` gives a passing step's evidence,
/// `runbooks` where the runbooks are.
fn views(
    results: &StepResults,
    steps: &[Step],
    runbooks: &str,
    note: impl Fn(Step) -> Option<String>,
) -> Vec<StepView> {
    let failing = crate::walk::walk(results);
    steps
        .iter()
        .map(|&step| {
            let info = step.info();
            let result = results.get(step).and_then(|o| match o {
                Outcome::Pass => Some(State::Pass),
                Outcome::Fail(_) => Some(State::Fail),
                Outcome::NotEvaluated(_) => None,
            });
            let state = match (&failing, result) {
                (Some(f), _) if step > f.step => State::NotReached,
                (_, None) => State::NotEvaluated,
                (_, Some(state)) => state,
            };
            // A failure's evidence, why no probe could judge the step, or what a pass saw.
            let evidence = match results.get(step) {
                Some(Outcome::Fail(found)) => Some(found.evidence.clone()),
                Some(Outcome::NotEvaluated(unjudged)) => Some(unjudged.reason.to_string()),
                Some(Outcome::Pass) => note(step),
                None => None,
            };
            let remedy = failing
                .as_ref()
                .filter(|f| f.step == step)
                .map(|f| f.remedy().to_string());
            StepView {
                step: step.number(),
                step_name: info.name,
                title: info.title,
                state,
                result,
                evidence,
                remedy,
                doc_url: info.doc_url,
                runbook: crate::walk::runbook_url(runbooks, step),
            }
        })
        .collect()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Terminal colours, only when printing to a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Colours(pub bool);

impl Colours {
    fn paint(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The document printed like the flowchart.
pub fn render_text(d: &Diagnosis, colours: Colours) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "appproxy_exporter {} diagnose, {}",
        d.exporter.version, d.generated_at
    );
    let _ = writeln!(
        out,
        "host {}, configuration {}",
        shown(&d.host.machine_name),
        shown(&d.host.config)
    );
    if d.apps.is_empty() {
        let _ = writeln!(
            out,
            "\nThis host (steps 3-6; no app to walk: configure inventory.static or inventory.graph)"
        );
        render_steps(&mut out, &d.host_steps, colours);
    }
    let mut group: Option<&str> = None;
    for app in &d.apps {
        if group != Some(app.connector_group.as_str()) {
            let name = if app.connector_group.is_empty() {
                "(no connector group)"
            } else {
                &shown(&app.connector_group)
            };
            let _ = writeln!(out, "\nConnector group {name}");
            group = Some(&app.connector_group);
        }
        let verdict = match (app.failing_step, app.failing_step_name) {
            (Some(n), Some(name)) => colours.paint("1;31", &format!("fails at step {n} ({name})")),
            _ => colours.paint("1;32", "every evaluated step passes"),
        };
        let _ = writeln!(out, "  App {}: {verdict}", shown(&app.app));
        render_steps(&mut out, &app.steps, colours);
        web_segments::text(&mut out, &app.segments, &app.segments_not_requested);
    }
    let _ = writeln!(out, "\nThis connector host (steps 2, 4, 7)");
    for c in &d.host_checks {
        let mark = match c.state {
            "pass" => colours.paint("32", "✓"),
            "warning" => colours.paint("33", "!"),
            "fail" => colours.paint("1;31", "✗"),
            _ => colours.paint("2", "-"),
        };
        let _ = writeln!(
            out,
            "    {mark} {:<12} step {:>2} {:<22} {}",
            c.check, c.step, c.step_name, c.title
        );
        let label = match c.state {
            "not_evaluated" => "why:     ",
            _ => "evidence:",
        };
        if let Some(evidence) = &c.evidence {
            let _ = writeln!(out, "         {label} {evidence}");
        }
        if let Some(readings) = &c.readings {
            let _ = writeln!(out, "         readings: {readings}");
        }
        if let Some(remedy) = &c.remedy {
            let _ = writeln!(out, "         remedy:   {remedy}");
            let whereabouts = if c.runbook.starts_with('/') {
                " on the exporter's web address"
            } else {
                ""
            };
            let _ = writeln!(out, "         runbook:  {}{whereabouts}", c.runbook);
        }
    }
    let summary = if d.healthy {
        colours.paint("32", "healthy")
    } else {
        colours.paint("31", "something fails")
    };
    let _ = writeln!(out, "\n{summary}");
    out
}

fn render_steps(out: &mut String, steps: &[StepView], colours: Colours) {
    for s in steps {
        let (mark, note) = match s.state {
            State::Pass => (colours.paint("32", "✓"), String::new()),
            State::Fail => (colours.paint("1;31", "✗"), String::new()),
            State::NotReached => (
                colours.paint("2", "·"),
                colours.paint("2", "  (not reached)"),
            ),
            State::NotEvaluated => (
                colours.paint("2", "-"),
                colours.paint("2", "  (not evaluated here)"),
            ),
        };
        let _ = writeln!(
            out,
            "    {mark} {:>2} {:<26} {}{note}",
            s.step, s.step_name, s.title
        );
        match (s.state, s.result, &s.evidence) {
            (State::NotEvaluated, _, Some(reason)) => {
                let _ = writeln!(out, "         why:      {}", shown(reason));
            }
            (State::Pass, _, Some(seen)) => {
                let _ = writeln!(
                    out,
                    "{}",
                    colours.paint("2", &format!("         seen:     {}", shown(seen)))
                );
            }
            // Past the failing step, what fails too: fixing the first may not be the end.
            (State::NotReached, Some(State::Fail), Some(evidence)) => {
                let _ = writeln!(out, "         also fails: {}", shown(evidence));
            }
            _ => {}
        }
        if s.state == State::Fail {
            if let Some(evidence) = &s.evidence {
                let _ = writeln!(out, "         evidence: {}", shown(evidence));
            }
            if let Some(remedy) = &s.remedy {
                let _ = writeln!(out, "         remedy:   {}", shown(remedy));
            }
            let _ = writeln!(out, "         docs:     {}", s.doc_url);
            // A path (no --web.external-url) is relative to wherever the exporter is served.
            let whereabouts = if s.runbook.starts_with('/') {
                " on the exporter's web address"
            } else {
                ""
            };
            let _ = writeln!(out, "         runbook:  {}{whereabouts}", s.runbook);
        }
    }
}

/// Text from outside (names from the tenant, answers of servers) as a terminal can show it:
/// control characters and bidi overrides escaped, so none can move the cursor, recolour the
/// screen, forge a line or reverse a name ([`crate::text::printable`]).
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    crate::text::printable(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Walks;

    fn walk(results: &[(Step, Outcome)]) -> AppWalk {
        let mut steps = StepResults::default();
        for (step, outcome) in results {
            steps.set(*step, outcome.clone());
        }
        AppWalk {
            connector_group: "Default".into(),
            app: "intranet".into(),
            failure: crate::walk::walk(&steps),
            steps,
            backend: None,
            backend_timeout: None,
            segments: None,
        }
    }

    #[test]
    fn steps_after_the_failing_one_are_not_reached_and_keep_their_measurement() {
        let snapshot = Snapshot {
            complete: true,
            walks: Walks {
                apps: vec![walk(&[
                    (Step::ConnectorGroupAssigned, Outcome::Pass),
                    (Step::PortTest, Outcome::fail("port 443 is closed")),
                    (Step::InternalUrl, Outcome::Pass),
                ])],
                ..Walks::default()
            },
            ..Snapshot::default()
        };
        let d = build(
            &snapshot,
            "CONN-01".into(),
            "f.yml".into(),
            None,
            "https://mon.example/appproxy/runbooks",
        );
        let steps = &d.apps[0].steps;
        assert_eq!(
            steps[2].runbook,
            "https://mon.example/appproxy/runbooks/port_test"
        );
        assert_eq!(steps[0].state, State::Pass);
        assert_eq!(steps[1].state, State::NotEvaluated);
        assert_eq!(steps[2].state, State::Fail);
        assert_eq!(steps[2].evidence.as_deref(), Some("port 443 is closed"));
        assert!(steps[2].remedy.is_some());
        assert_eq!(steps[6].state, State::NotReached);
        assert_eq!(steps[6].result, Some(State::Pass));
        assert_eq!(d.apps[0].failing_step, Some(3));
        assert!(!d.healthy);
        let text = render_text(&d, Colours(false));
        assert!(
            text.contains("App intranet: fails at step 3 (port_test)"),
            "{text}"
        );
        assert!(text.contains("evidence: port 443 is closed"), "{text}");
        assert!(!text.contains('\x1b'), "no colours off a terminal");
    }

    #[test]
    fn a_passing_version_check_says_what_it_saw_and_a_warning_its_evidence() {
        use crate::host::HostHealth;
        use crate::host::releases::ReleaseList;
        use crate::host::version::{self, UpdaterActivity};
        use crate::platform::file_version::FileVersion;
        let shown = |version: [u32; 4]| {
            let snapshot = Snapshot {
                complete: true,
                host: std::sync::Arc::new(HostHealth {
                    version: Some(version::judge(
                        FileVersion(version),
                        &ReleaseList::builtin(),
                        &[],
                        UpdaterActivity::default(),
                    )),
                    ..HostHealth::default()
                }),
                ..Snapshot::default()
            };
            let d = build(
                &snapshot,
                "CONN-01".into(),
                "f.yml".into(),
                None,
                "/runbooks",
            );
            let check = d.host_checks.into_iter().find(|c| c.check == "version");
            let check = check.unwrap();
            (check.state, check.evidence.unwrap_or_default())
        };
        let (state, evidence) = shown([1, 5, 4522, 0]);
        assert_eq!(state, "pass");
        assert!(
            evidence.contains("this connector is 1.5.4522.0"),
            "{evidence}"
        );
        let (state, evidence) = shown([1, 5, 3925, 0]);
        assert_eq!(state, "warning");
        assert!(evidence.contains("older than 1.5.4522.0"), "{evidence}");
    }

    /// App and group names come from the tenant, evidence from servers: none may drive the
    /// terminal (an escape sequence) or forge a line of the report (a newline).
    #[test]
    fn names_and_evidence_cannot_drive_the_terminal() {
        let mut bad = walk(&[
            (Step::ConnectorGroupAssigned, Outcome::Pass),
            (Step::PortTest, Outcome::fail("closed\n    ✓  3 port_test")),
        ]);
        bad.app = "pay\x1b[2J\x1b[32mroll".into();
        bad.connector_group = "Group\r\nConnector group Fake".into();
        let snapshot = Snapshot {
            complete: true,
            walks: Walks {
                apps: vec![bad],
                ..Walks::default()
            },
            ..Snapshot::default()
        };
        let d = build(
            &snapshot,
            "CONN\x07".into(),
            "f.yml".into(),
            None,
            "/runbooks",
        );
        let text = render_text(&d, Colours(false));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("App pay\\u{1b}[2J\\u{1b}[32mroll:"), "{text}");
        assert!(
            text.contains("Connector group Group\\r\\nConnector group Fake\n"),
            "{text}"
        );
        assert!(
            text.contains("evidence: closed\\n    ✓  3 port_test\n"),
            "{text}"
        );
        assert!(text.contains("host CONN\\u{7},"), "{text}");
    }

    #[test]
    fn a_step_no_probe_could_judge_is_not_evaluated_and_says_why() {
        let snapshot = Snapshot {
            complete: true,
            walks: Walks {
                apps: vec![walk(&[
                    (Step::ConnectorGroupAssigned, Outcome::Pass),
                    (
                        Step::InternalUrl,
                        Outcome::not_evaluated("the internal URL is a wildcard"),
                    ),
                ])],
                ..Walks::default()
            },
            ..Snapshot::default()
        };
        let d = build(
            &snapshot,
            "CONN-01".into(),
            "f.yml".into(),
            None,
            "/runbooks",
        );
        let seven = &d.apps[0].steps[6];
        assert_eq!(seven.state, State::NotEvaluated);
        assert_eq!(seven.result, None, "not evaluated is never a pass");
        assert_eq!(
            seven.evidence.as_deref(),
            Some("the internal URL is a wildcard")
        );
        assert!(d.healthy);
        let text = render_text(&d, Colours(false));
        assert!(
            text.contains("why:      the internal URL is a wildcard"),
            "{text}"
        );
    }

    #[test]
    fn passing_steps_say_what_they_saw_and_later_failures_are_listed() {
        let snapshot = Snapshot {
            complete: true,
            walks: Walks {
                apps: vec![walk(&[
                    (Step::ConnectorGroupAssigned, Outcome::Pass),
                    (Step::PortTest, Outcome::fail("port 443 is closed")),
                    (Step::InternalNetwork, Outcome::fail("intranet:443 refused")),
                ])],
                ..Walks::default()
            },
            ..Snapshot::default()
        };
        let d = build(
            &snapshot,
            "CONN-01".into(),
            "f.yml".into(),
            None,
            "/runbooks",
        );
        assert_eq!(
            d.apps[0].steps[0].evidence.as_deref(),
            Some("assigned to Default")
        );
        let text = render_text(&d, Colours(false));
        assert!(text.contains("seen:     assigned to Default"), "{text}");
        assert!(text.contains("also fails: intranet:443 refused"), "{text}");
    }

    #[test]
    fn the_app_filter_keeps_one_app() {
        let snapshot = Snapshot {
            complete: true,
            walks: Walks {
                apps: vec![
                    walk(&[]),
                    AppWalk {
                        app: "other".into(),
                        ..walk(&[])
                    },
                ],
                ..Walks::default()
            },
            ..Snapshot::default()
        };
        let d = build(
            &snapshot,
            "h".into(),
            "c".into(),
            Some("other"),
            "/runbooks",
        );
        assert_eq!(d.apps.len(), 1);
        assert!(d.healthy);
    }
}
