//! A wildcard web app judged by its Graph segments: each segment host's last answer to steps
//! 7-9's request, and the segments not requested with why, for the page and `diagnose`. The
//! steps themselves are judged in `backend` (`wildcard::merge`); this only shows the detail.

use std::fmt::Write as _;

use serde::Serialize;

use crate::backend::AppBackend;
use crate::text::printable;

/// One segment host as it answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentView {
    /// The segment's internal URL as requested.
    pub url: String,
    /// The page loaded from this host.
    pub up: bool,
    /// The final answer's status, when there was one.
    pub status: Option<u16>,
    /// Seconds to the final answer's head, or to the failure.
    pub seconds: f64,
    /// What failed, in words; `None` when the page loaded.
    pub failure: Option<String>,
}

/// Every segment of `backend`'s app, as it answered (empty for an app not judged by segments).
pub fn views(backend: Option<&AppBackend>) -> Vec<SegmentView> {
    let Some(b) = backend else {
        return Vec::new();
    };
    b.segments
        .iter()
        .map(|s| SegmentView {
            url: s.url.clone(),
            up: s.outcome.failure.is_none(),
            status: s.outcome.status,
            seconds: s.outcome.seconds,
            failure: s.outcome.failure.as_ref().map(|f| f.detail.clone()),
        })
        .collect()
}

/// The segments not requested, with why.
pub fn not_requested(backend: Option<&AppBackend>) -> Vec<String> {
    backend.map_or_else(Vec::new, |b| b.segments_not_requested.clone())
}

/// One line per segment, as `diagnose` prints it under the app's steps (text from servers
/// made printable, as every line of `diagnose` is).
pub fn text(out: &mut String, segments: &[SegmentView], not_requested: &[String]) {
    if segments.is_empty() && not_requested.is_empty() {
        return;
    }
    let _ = writeln!(out, "         segments (steps 7-9 judge every one):");
    for s in segments {
        let _ = writeln!(
            out,
            "           {} {}: {}",
            mark(s),
            printable(&s.url),
            printable(&answer(s))
        );
    }
    for why in not_requested {
        let _ = writeln!(out, "           - {}", printable(why));
    }
}

/// `✓` for a page that loaded, `✗` otherwise.
pub fn mark(s: &SegmentView) -> &'static str {
    if s.up { "✓" } else { "✗" }
}

/// What the segment's host answered, in words.
pub fn answer(s: &SegmentView) -> String {
    match (&s.failure, s.status) {
        (Some(why), _) => why.clone(),
        (None, Some(status)) => format!("HTTP {status} in {:.3} s", s.seconds),
        (None, None) => format!("answered in {:.3} s", s.seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnose_lists_every_segment_with_its_answer_and_what_was_not_requested() {
        let segments = [
            SegmentView {
                url: "https://ok.corp.example/".into(),
                up: true,
                status: Some(200),
                seconds: 0.0125,
                failure: None,
            },
            SegmentView {
                url: "https://down.corp.example/".into(),
                up: false,
                status: None,
                seconds: 0.001,
                failure: Some("down.corp.example:443 refused the connection\u{1b}[2J".into()),
            },
        ];
        let mut out = String::new();
        text(
            &mut out,
            &segments,
            &["https://*.x.corp.example/ is a wildcard too: not requested".into()],
        );
        assert!(
            out.contains("✓ https://ok.corp.example/: HTTP 200 in 0.013 s"),
            "{out}"
        );
        assert!(
            out.contains("✗ https://down.corp.example/: down.corp.example:443 refused"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'), "escapes are made printable: {out}");
        assert!(out.contains("- https://*.x.corp.example/ is a wildcard too"));
        let mut none = String::new();
        text(&mut none, &[], &[]);
        assert!(none.is_empty());
    }
}
