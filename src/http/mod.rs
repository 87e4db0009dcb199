//! The HTTP side: `/`, the metrics path, `/-/healthy`, `/-/ready`, `POST /-/reload` and
//! `/config`. [`router`] builds the routes apart from any socket so tests can call it directly;
//! every handler only reads state the prober keeps.

pub mod listener;
mod page;
mod runbooks;
pub mod webconfig;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use prometheus::Registry;

use crate::config;
use crate::exporter::Exporter;

#[derive(Clone)]
struct AppState {
    exporter: Arc<Exporter>,
    registry: Registry,
    telemetry_path: Arc<str>,
}

/// All routes; `telemetry_path` is `--web.telemetry-path`.
pub fn router(exporter: Arc<Exporter>, registry: Registry, telemetry_path: &str) -> Router {
    let state = AppState {
        exporter,
        registry,
        telemetry_path: Arc::from(telemetry_path),
    };
    Router::new()
        .route("/", get(landing))
        .route(telemetry_path, get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/config", get(config_page))
        .route("/api/v1/diagnosis", get(diagnosis_json))
        .route("/runbooks", get(runbook_index))
        .route("/runbooks/{step_name}", get(runbook))
        .with_state(state)
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Puts every route behind the web config's basic auth and adds its response headers.
pub fn with_web_config(router: Router, web: Arc<webconfig::WebConfigFile>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(web, guard))
}

async fn guard(
    State(web): State<Arc<webconfig::WebConfigFile>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let config = web.current();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut response = if config.authorized(authorization) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Basic"),
                (header::CONTENT_TYPE, TEXT),
            ],
            "Unauthorized\n",
        )
            .into_response()
    };
    for (name, value) in &config.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name.as_str()),
            axum::http::HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    let snapshot = state.exporter.store.latest();
    let doc = snapshot.complete.then(|| {
        let config = state.exporter.config().to_string();
        crate::diagnosis::build(&snapshot, state.exporter.machine_name(), config, None)
    });
    Html(page::render(&page::PageContext {
        diagnosis: doc.as_ref(),
        telemetry_path: &state.telemetry_path,
    }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    // The snapshot's families were rendered when it was published; only the exporter's own
    // and process metrics are encoded now.
    let rendered = state.exporter.store.exposition();
    match crate::metrics::encode(&state.registry) {
        Ok(live) => {
            let chunks: [Result<Bytes, std::convert::Infallible>; 2] =
                [Ok(rendered), Ok(Bytes::from(live))];
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "encoding metrics failed");
            let body = format!("encoding metrics failed: {error}\n");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, TEXT)],
                body,
            )
                .into_response()
        }
    }
}

async fn healthy() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, TEXT)], "Healthy\n")
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.exporter.store.latest().complete {
        (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], "Ready\n")
    } else {
        let body = "Not ready: the first probe round has not finished\n";
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            body,
        )
    }
}

async fn reload(State(state): State<AppState>) -> impl IntoResponse {
    let exporter = Arc::clone(&state.exporter);
    // Reading the file is blocking I/O; keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || exporter.reload()).await;
    match result {
        Ok(Ok(())) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, TEXT)],
            "configuration reloaded\n".to_string(),
        ),
        Ok(Err(error)) => {
            let body =
                format!("reload failed, the previous configuration stays in force:\n{error}\n");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, TEXT)],
                body,
            )
        }
        Err(error) => {
            let body = format!("reload failed: {error}\n");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, TEXT)],
                body,
            )
        }
    }
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
    let config = state.exporter.config().to_string();
    let doc = crate::diagnosis::build(&snapshot, state.exporter.machine_name(), config, None);
    axum::Json(doc).into_response()
}

async fn runbook_index() -> Html<String> {
    Html(runbooks::index())
}

async fn runbook(axum::extract::Path(step_name): axum::extract::Path<String>) -> Response {
    match runbooks::page(&step_name) {
        Some(page) => Html(page).into_response(),
        None => {
            let body = format!("no runbook for {step_name:?}: see /runbooks\n");
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
