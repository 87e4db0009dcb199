//! What every request passes before its route: the web config's rate limit,
//! `--web.max-requests` and the web config's basic auth, in that order, so that a request waiting for its password's bcrypt check holds a
//! slot like any other and a flood of wrong passwords is answered 503 once the slots are
//! taken. A slot is held until the answer's last byte is handed to the connection, not only
//! until the handler returns: a client that does not read holds its slot, and the limit
//! bounds what unread answers hold. The health and readiness checks take no slot and no token
//! of the rate limit (they cost nothing, and a liveness probe answered 429 would restart a
//! healthy exporter), unless their credentials must be checked with bcrypt.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::{Authenticator, Verdict};
use super::webconfig::WebConfigFile;

const TEXT: &str = "text/plain; charset=utf-8";

/// The limit and the web config that every request passes.
pub struct Gate {
    /// `None`: no limit.
    slots: Option<Arc<Semaphore>>,
    max: usize,
    web: Option<Arc<WebConfigFile>>,
    /// Basic auth's checks and the credentials that passed, for as long as the gate serves.
    auth: Authenticator,
}

impl Gate {
    /// At most `max` requests at once (0: no limit), behind `web`'s basic auth when given.
    pub fn new(max: usize, web: Option<Arc<WebConfigFile>>) -> Gate {
        Gate {
            slots: (max > 0).then(|| Arc::new(Semaphore::new(max))),
            max,
            web,
            auth: Authenticator::new(),
        }
    }

    /// Puts `router` behind the gate; with neither a limit nor a web config, it comes back as
    /// it was.
    pub fn guard(self, router: axum::Router) -> axum::Router {
        if self.slots.is_none() && self.web.is_none() {
            return router;
        }
        router.layer(axum::middleware::from_fn_with_state(Arc::new(self), pass))
    }

    /// A slot, `Ok(None)` when there is no limit, `Err` with the 503 answer when none is free.
    fn slot(&self) -> Result<Option<OwnedSemaphorePermit>, Box<Response>> {
        let Some(slots) = &self.slots else {
            return Ok(None);
        };
        match Arc::clone(slots).try_acquire_owned() {
            Ok(slot) => Ok(Some(slot)),
            Err(_) => {
                let body = format!(
                    "Limit of concurrent requests reached ({}), try again later.\n",
                    self.max
                );
                Err(Box::new(
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::CONTENT_TYPE, TEXT)],
                        body,
                    )
                        .into_response(),
                ))
            }
        }
    }
}

/// The paths that take no slot: `/-/healthy` and `/-/ready`, under any route prefix.
fn free(path: &str) -> bool {
    path.ends_with("/-/healthy") || path.ends_with("/-/ready")
}

async fn pass(
    State(gate): State<Arc<Gate>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let free = free(request.uri().path());
    let config = match &gate.web {
        Some(web) => Some(web.current().await),
        None => None,
    };
    let limit = config.as_ref().and_then(|c| c.rate_limit.as_ref());
    if !free && limit.is_some_and(|limit| !limit.allow()) {
        return too_many(config.as_deref());
    }
    let mut slot = None;
    if !free {
        slot = match gate.slot() {
            Ok(slot) => slot,
            Err(busy) => return *busy,
        };
    }
    let Some(config) = config else {
        return hold(next.run(request).await, slot);
    };
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let allowed = match gate.auth.judge(&config, authorization) {
        Verdict::Allowed => true,
        Verdict::Refused => false,
        Verdict::Unverified(credentials) => {
            // A bcrypt check costs what a request does: it needs a slot, health check or not.
            if slot.is_none() {
                slot = match gate.slot() {
                    Ok(slot) => slot,
                    Err(busy) => return *busy,
                };
            }
            gate.auth.verify(credentials).await
        }
    };
    let mut response = if allowed {
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
        response.headers_mut().insert(name.clone(), value.clone());
    }
    hold(response, slot)
}

/// 429, as exporter-toolkit answers over its rate limit, with the configured headers.
fn too_many(config: Option<&super::webconfig::WebConfig>) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, TEXT)],
        "Too Many Requests\n",
    )
        .into_response();
    for (name, value) in config.map(|c| c.headers.as_slice()).unwrap_or_default() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// The answer, its body holding `slot` until its end is read.
fn hold(response: Response, slot: Option<OwnedSemaphorePermit>) -> Response {
    match slot {
        None => response,
        Some(slot) => response.map(|body| {
            Body::new(Held {
                body,
                slot: Some(slot),
            })
        }),
    }
}

/// A body that gives its slot back when its last frame has been taken, or when it is dropped
/// (the connection closed, or cut at its write deadline).
struct Held {
    body: Body,
    slot: Option<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.slot = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
