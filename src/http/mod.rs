//! The HTTP side: `/`, the metrics path, `/-/healthy`, `/-/ready`, `POST /-/reload` and
//! `/config`, all under the route prefix. [`router`] builds the routes apart from any socket so
//! tests can call it directly; every handler only reads state the prober keeps.

mod auth;
pub mod conn;
mod documents;
mod gate;
pub mod listener;
mod page;
pub mod paths;
mod reload;
mod runbooks;
pub mod server;
pub mod webconfig;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::config;
use crate::exporter::Exporter;
use paths::WebPaths;

#[derive(Clone)]
struct AppState {
    exporter: Arc<Exporter>,
    telemetry_path: Arc<str>,
    paths: Arc<WebPaths>,
    reload: Arc<reload::ReloadRoute>,
    /// Turns to send a page or a diagnosis ([`documents::AT_ONCE`]).
    documents: Arc<tokio::sync::Semaphore>,
}

/// The web flags that shape the routes.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `--web.telemetry-path`.
    pub telemetry_path: String,
    /// `--web.route-prefix` and `--web.external-url`.
    pub paths: WebPaths,
    /// `--web.max-requests`; 0 means no limit.
    pub max_requests: usize,
    /// `--web.config.file`, loaded: basic auth and response headers on every route.
    pub web_config: Option<Arc<webconfig::WebConfigFile>>,
    /// `--web.enable-lifecycle`: whether `POST /-/reload` reloads (on by default).
    pub enable_lifecycle: bool,
}

impl Default for WebOptions {
    fn default() -> WebOptions {
        WebOptions {
            telemetry_path: "/metrics".to_string(),
            paths: WebPaths::default(),
            max_requests: 0,
            web_config: None,
            enable_lifecycle: true,
        }
    }
}

/// All routes at the root, without a request limit; `telemetry_path` is `--web.telemetry-path`.
pub fn router(exporter: Arc<Exporter>, telemetry_path: &str) -> Router {
    let options = WebOptions {
        telemetry_path: telemetry_path.to_string(),
        ..WebOptions::default()
    };
    router_with(exporter, &options)
}

/// All routes, under the route prefix, behind the request limit and the web config's basic
/// auth.
pub fn router_with(exporter: Arc<Exporter>, options: &WebOptions) -> Router {
    let paths = &options.paths;
    let state = AppState {
        exporter,
        telemetry_path: Arc::from(options.telemetry_path.as_str()),
        paths: Arc::new(paths.clone()),
        documents: Arc::new(tokio::sync::Semaphore::new(documents::AT_ONCE)),
        reload: Arc::new(reload::ReloadRoute {
            enabled: options.enable_lifecycle,
            external_origin: paths.external_origin(),
        }),
    };
    let mut router = Router::new()
        .route(&paths.route("/"), get(landing))
        .route(&paths.route(&options.telemetry_path), get(metrics))
        .route(&paths.route("/-/healthy"), get(healthy))
        .route(&paths.route("/-/ready"), get(ready))
        .route(&paths.route("/-/reload"), post(reload_route))
        .route(&paths.route("/config"), get(config_page))
        .route(&paths.route("/api/v1/diagnosis"), get(diagnosis_json))
        .route(&paths.route("/runbooks"), get(runbook_index))
        .route(&paths.route("/runbooks/{step_name}"), get(runbook));
    if !paths.route_prefix().is_empty() {
        // As Prometheus does: the bare prefix is the page too, and the root sends users there.
        let home = paths.link("/");
        router = router.route(paths.route_prefix(), get(landing)).route(
            "/",
            get(move || async move { (StatusCode::FOUND, [(header::LOCATION, home)]) }),
        );
    }
    gate::Gate::new(options.max_requests, options.web_config.clone())
        .guard(router.with_state(state))
}

/// `--web.max-requests`: at most `max` requests served at once (0: no limit), each holding its
/// slot until its answer is sent; further ones are answered 503 at once, as Prometheus'
/// promhttp handler answers beyond its `MaxRequestsInFlight`. `/-/healthy` and `/-/ready`
/// take none.
pub fn with_request_limit(router: Router, max: usize) -> Router {
    gate::Gate::new(max, None).guard(router)
}

const TEXT: &str = "text/plain; charset=utf-8";

/// `/?page=N&limit=M`: the apps' walks, failing apps first, `limit` (default 100, at most
/// 1,000) a page.
#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    page: Option<usize>,
    limit: Option<usize>,
}

async fn landing(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> Response {
    let turn = match documents::turn(&state.documents) {
        Ok(turn) => turn,
        Err(busy) => return *busy,
    };
    let snapshot = state.exporter.store.latest();
    let body = documents::page(
        snapshot,
        document_context(&state),
        query.page,
        query.limit,
        turn,
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn document_context(state: &AppState) -> documents::Context {
    documents::Context {
        machine_name: state.exporter.machine_name(),
        config: state.exporter.config().to_string(),
        runbooks: state.paths.runbooks(),
        telemetry_path: Arc::clone(&state.telemetry_path),
        paths: Arc::clone(&state.paths),
    }
}

/// The Prometheus text format, version 0.0.4 (what Prometheus' own client libraries serve).
const EXPOSITION: &str = "text/plain; version=0.0.4";

/// The snapshot's families come compressed as they were when it was published; only the
/// exporter's own and the process's few series are encoded now, and close the gzip member.
/// Clients that take gzip (Prometheus always does) get it as it is; others get the text.
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let rendered = state.exporter.store.exposition();
    let mut live = String::new();
    let reload = state.exporter.reload_status();
    crate::metrics::write_live(
        &mut live,
        &crate::metrics::Live {
            reload_successful: reload.successful,
            reload_last_success: reload.last_success,
            graph: &state.exporter.graph_metrics,
            tasks: &state.exporter.tasks,
        },
    );
    let vary = (header::VARY, "Accept-Encoding");
    if accepts_gzip(&headers) {
        let chunks = rendered
            .with_tail(&live)
            .map(Ok::<_, std::convert::Infallible>);
        let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
        let headers = [
            (header::CONTENT_TYPE, EXPOSITION),
            (header::CONTENT_ENCODING, "gzip"),
            vary,
        ];
        (headers, body).into_response()
    } else {
        let body = axum::body::Body::from_stream(futures_util::stream::iter(
            rendered.text_with_tail(&live),
        ));
        ([(header::CONTENT_TYPE, EXPOSITION), vary], body).into_response()
    }
}

/// Whether the request's `Accept-Encoding` takes gzip (RFC 9110 section 12.5.3): named, or
/// `*`, with a quality above 0.
fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let quality = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case("gzip") || name == "*") && quality > 0.0
        })
}

async fn healthy() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, TEXT)], "Healthy\n")
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let not_ready = |body: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            body,
        )
    };
    if let Some((task, restart_in)) = state.exporter.tasks.down().first() {
        return not_ready(format!(
            "Not ready: the {task} task stopped with a panic; it starts again in {:.0} s\n",
            restart_in.as_secs_f64().ceil()
        ));
    }
    if state.exporter.store.latest().complete {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, TEXT)],
            "Ready\n".to_string(),
        )
    } else {
        not_ready("Not ready: the first probe round has not finished\n".to_string())
    }
}

async fn reload_route(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    reload::reload(Arc::clone(&state.exporter), &state.reload, &headers).await
}

async fn diagnosis_json(State(state): State<AppState>) -> Response {
    let snapshot = state.exporter.store.latest();
    if !snapshot.complete {
        let body = "Not ready: the first probe round has not finished\n";
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            body,
        )
            .into_response();
    }
    let turn = match documents::turn(&state.documents) {
        Ok(turn) => turn,
        Err(busy) => return *busy,
    };
    let body = documents::diagnosis(snapshot, document_context(&state), turn);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn runbook_index(State(state): State<AppState>) -> Html<String> {
    Html(runbooks::index(&state.paths))
}

async fn runbook(
    State(state): State<AppState>,
    axum::extract::Path(step_name): axum::extract::Path<String>,
) -> Response {
    match runbooks::page(&step_name, &state.paths) {
        Some(page) => Html(page).into_response(),
        None => {
            let body = format!(
                "no runbook for {step_name:?}: see {}\n",
                state.paths.link("/runbooks")
            );
            (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, TEXT)], body).into_response()
        }
    }
}

async fn config_page(State(state): State<AppState>) -> impl IntoResponse {
    let loaded = state.exporter.config();
    let mut body = format!("# source: {loaded}\n");
    if let Some(note) = &state.exporter.store.latest().endpoints.note {
        body.push_str(&format!("# endpoints: {note}\n"));
    }
    body.push_str(&config::to_yaml(&loaded.settings));
    ([(header::CONTENT_TYPE, TEXT)], body)
}
