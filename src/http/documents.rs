//! The two large answers, the page at `/` and `/api/v1/diagnosis`, sent as they are written:
//! a chunk of apps at a time, read from the snapshot they describe, so an answer holds a
//! chunk and a reference to the snapshot, never a copy of the whole (25 MB of HTML and 39 MB
//! of JSON per request at 10,000 apps, held for as long as the client did not read). At most
//! [`AT_ONCE`] are being sent at once: each holds the snapshot it began with, and snapshots
//! are replaced up to once a second.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::page::{self, Listing, PageContext};
use super::paths::WebPaths;
use crate::diagnosis;
use crate::store::Snapshot;
use crate::verdict::AppWalk;

/// The most pages and diagnoses being sent at once; more are answered 503 at once.
pub const AT_ONCE: usize = 4;

/// About how much is written before it is handed to the connection.
const CHUNK: usize = 32 * 1024;

/// Apps a page shows by default, and at most (`?limit=`).
pub const PAGE_APPS: usize = 100;
pub const PAGE_APPS_MAX: usize = 1000;

/// What a document needs besides the snapshot.
pub struct Context {
    pub machine_name: String,
    pub config: String,
    pub runbooks: String,
    pub telemetry_path: Arc<str>,
    pub paths: Arc<WebPaths>,
}

/// A turn to send a document, or the 503 that says there is none.
pub fn turn(turns: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, Box<Response>> {
    Arc::clone(turns).try_acquire_owned().map_err(|_| {
        let body = format!(
            "{AT_ONCE} pages or diagnoses are being sent already; try again in a moment.\n"
        );
        Box::new(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::RETRY_AFTER, "1"),
                ],
                body,
            )
                .into_response(),
        )
    })
}

/// `/api/v1/diagnosis`: the same JSON as `diagnose --output json` (compact), written app by
/// app.
pub fn diagnosis(snapshot: Arc<Snapshot>, context: Context, turn: OwnedSemaphorePermit) -> Body {
    let head = diagnosis::head(
        &snapshot,
        context.machine_name,
        context.config,
        &context.runbooks,
        |_| true,
    );
    // `apps` is the document's last field: its `[]}` is where the apps go.
    let head = match serde_json::to_vec(&head) {
        Ok(mut json) if json.ends_with(b"[]}") => {
            json.truncate(json.len() - 2);
            json
        }
        _ => return failed("the diagnosis could not be written as JSON"),
    };
    let mut next = 0;
    let mut started = false;
    chunked(turn, move |out| {
        if !started {
            out.extend_from_slice(&head);
            started = true;
        }
        while next < snapshot.walks.apps.len() && out.len() < CHUNK {
            if next > 0 {
                out.push(b',');
            }
            let view =
                diagnosis::app_view(&snapshot, &snapshot.walks.apps[next], &context.runbooks);
            serde_json::to_writer(&mut *out, &view).map_err(std::io::Error::other)?;
            next += 1;
        }
        if next < snapshot.walks.apps.len() {
            return Ok(false);
        }
        out.extend_from_slice(b"]}");
        Ok(true)
    })
}

/// Which page of apps `/` shows, failing apps first: `page` (1-based) of `limit` apps.
pub fn listing(
    walks: &[AppWalk],
    page: Option<usize>,
    limit: Option<usize>,
) -> (Listing, Vec<usize>) {
    let limit = limit.unwrap_or(PAGE_APPS).clamp(1, PAGE_APPS_MAX);
    let mut order: Vec<usize> = (0..walks.len()).collect();
    let key = |w: &AppWalk| {
        (
            w.failure.is_none(),
            w.connector_group.clone(),
            w.app.clone(),
        )
    };
    order.sort_by_cached_key(|&i| key(&walks[i]));
    let failing = walks.iter().filter(|w| w.failure.is_some()).count();
    let pages = walks.len().div_ceil(limit).max(1);
    let page = page.unwrap_or(1).clamp(1, pages);
    let first = (page - 1) * limit;
    let shown: Vec<usize> = order.into_iter().skip(first).take(limit).collect();
    let listing = Listing {
        total: walks.len(),
        failing,
        page,
        pages,
        limit,
        first,
        shown: shown.len(),
    };
    (listing, shown)
}

/// `/`: a page of apps (see [`listing`]), written card by card.
pub fn page(
    snapshot: Arc<Snapshot>,
    context: Context,
    page: Option<usize>,
    limit: Option<usize>,
    turn: OwnedSemaphorePermit,
) -> Body {
    let (listing, shown) = listing(&snapshot.walks.apps, page, limit);
    let head = snapshot.complete.then(|| {
        diagnosis::head(
            &snapshot,
            context.machine_name.clone(),
            context.config.clone(),
            &context.runbooks,
            |_| true,
        )
    });
    let mut next = 0;
    let mut group = None;
    let mut started = false;
    chunked(turn, move |out| {
        let ctx = PageContext {
            diagnosis: head.as_ref(),
            telemetry_path: &context.telemetry_path,
            paths: &context.paths,
        };
        let mut html = String::new();
        if !started {
            html = page::head(&ctx, &listing);
            started = true;
        }
        while next < shown.len() && html.len() < CHUNK && head.is_some() {
            let walk = &snapshot.walks.apps[shown[next]];
            page::app(
                &mut html,
                &diagnosis::app_view(&snapshot, walk, &context.runbooks),
                &mut group,
            );
            next += 1;
        }
        let done = next >= shown.len() || head.is_none();
        if done {
            html.push_str(&page::tail(&ctx, &listing));
        }
        out.extend_from_slice(html.as_bytes());
        Ok(done)
    })
}

/// A body written by `fill`, a chunk each time the connection takes one: `fill` appends to the
/// chunk and says whether it wrote the end. `turn` goes with the body.
fn chunked(
    turn: OwnedSemaphorePermit,
    mut fill: impl FnMut(&mut Vec<u8>) -> std::io::Result<bool> + Send + 'static,
) -> Body {
    let mut turn = Some(turn);
    let chunks = std::iter::from_fn(move || {
        turn.as_ref()?;
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 4);
        match fill(&mut out) {
            Ok(done) => {
                if done {
                    turn = None;
                }
                Some(Ok(Bytes::from(out)))
            }
            Err(error) => {
                tracing::error!(%error, "writing a page or a diagnosis failed");
                turn = None;
                Some(Err(error))
            }
        }
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}

fn failed(why: &'static str) -> Body {
    tracing::error!(why, "writing a page or a diagnosis failed");
    Body::from_stream(futures_util::stream::iter([Err::<Bytes, _>(
        std::io::Error::other(why),
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(group: &str, app: &str, failing: bool) -> AppWalk {
        let mut steps = crate::walk::StepResults::default();
        if failing {
            steps.set(
                crate::walk::Step::ConnectorGroupAssigned,
                crate::walk::Outcome::fail("no group"),
            );
        }
        AppWalk {
            connector_group: group.into(),
            app: app.into(),
            failure: crate::walk::walk(&steps),
            steps,
            backend: None,
            backend_timeout: None,
            segments: None,
        }
    }

    #[test]
    fn failing_apps_come_first_a_page_at_a_time() {
        let walks = vec![
            walk("B", "b1", false),
            walk("A", "a1", true),
            walk("A", "a2", false),
            walk("B", "b2", true),
        ];
        let (first, shown) = listing(&walks, Some(1), Some(3));
        assert_eq!((first.total, first.failing, first.pages), (4, 2, 2));
        let names: Vec<&str> = shown.iter().map(|&i| &*walks[i].app).collect();
        assert_eq!(names, ["a1", "b2", "a2"]);
        let (last, shown) = listing(&walks, Some(9), Some(3));
        assert_eq!((last.page, last.first, shown.len()), (2, 3, 1));
        let (one, _) = listing(&walks, None, Some(0));
        assert_eq!(one.limit, 1, "at least one app a page");
    }
}
