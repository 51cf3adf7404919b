//! The HTTP side of WHIP: axum handlers that pick the headers and body out
//! of a request, run it through the [`WhipAdapter`](super::WhipAdapter) in
//! the hub, and turn its [`Response`] into HTTP, with CORS so a page on
//! another origin can publish. Every rule lives in the state machine.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::post;

use super::{Request, RequestId, Response, WhipInput};
use crate::server::Hub;

pub fn router(hub: Arc<Hub>) -> Router {
    let limit = hub.whip_config().max_body_bytes;
    Router::new()
        .route("/whip/{room}", post(publish).options(options_endpoint))
        .route(
            "/whip/{room}/{session}",
            axum::routing::patch(trickle)
                .delete(teardown)
                .options(options_session),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(hub)
}

async fn publish(
    State(hub): State<Arc<Hub>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> HttpResponse {
    let body = match text(body) {
        Ok(body) => body,
        Err((status, reason)) => return plain(status, &reason),
    };
    let started = Instant::now();
    let (request, response) = hub.whip_request(|core, id, conn| WhipInput::Post {
        request: picked(&headers, id, &body),
        room: &room,
        conn,
        receivers: core.receivers_in(&room),
    });
    // If the client goes away while a receiver is being found, the
    // publisher it would have been must not linger in the room.
    let mut pending = Pending {
        hub: hub.clone(),
        request,
        armed: true,
    };
    let response = response.await;
    pending.armed = false;
    match response {
        Ok(response) => {
            tracing::info!(
                room,
                status = response.status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "WHIP publish"
            );
            convert(response)
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the server is stopping"),
    }
}

async fn trickle(
    State(hub): State<Arc<Hub>>,
    Path((room, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> HttpResponse {
    let body = match text(body) {
        Ok(body) => body,
        Err((status, reason)) => return plain(status, &reason),
    };
    let (_, response) = hub.whip_request(|_, id, _| WhipInput::Patch {
        request: picked(&headers, id, &body),
        room: &room,
        session: &session,
    });
    finish(response.await)
}

async fn teardown(
    State(hub): State<Arc<Hub>>,
    Path((room, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> HttpResponse {
    let (_, response) = hub.whip_request(|_, id, _| WhipInput::Delete {
        request: picked(&headers, id, ""),
        room: &room,
        session: &session,
    });
    finish(response.await)
}

/// CORS preflight for the POST (RFC 9725 §4.2 also lets OPTIONS carry
/// ICE-server links; this server has no STUN/TURN configuration to give).
async fn options_endpoint() -> HttpResponse {
    preflight("POST, OPTIONS", Some("application/sdp"))
}

async fn options_session() -> HttpResponse {
    preflight("PATCH, DELETE, OPTIONS", None)
}

fn preflight(methods: &'static str, accept_post: Option<&'static str>) -> HttpResponse {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    cors(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    headers.insert(header::ALLOW, HeaderValue::from_static(methods));
    if let Some(accept) = accept_post {
        headers.insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static(accept),
        );
    }
    response
}

/// Any origin may publish: the bearer token, not the origin, is what
/// protects the endpoint (and a browser sends no cookie here).
fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Patch"),
    );
}

fn picked<'a>(headers: &'a HeaderMap, id: RequestId, body: &'a str) -> Request<'a> {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    Request {
        id,
        content_type: value(header::CONTENT_TYPE),
        authorization: value(header::AUTHORIZATION),
        body,
    }
}

fn text(body: Result<Bytes, BytesRejection>) -> Result<String, (StatusCode, String)> {
    match body {
        Ok(bytes) => String::from_utf8(bytes.to_vec())
            .map_err(|_| (StatusCode::BAD_REQUEST, "the body is not UTF-8 text".into())),
        // 413 when over the limit (DefaultBodyLimit), with its reason.
        Err(rejection) => Err((
            rejection.status(),
            format!(
                "{} (at most the configured WHIP body limit)",
                rejection.body_text()
            ),
        )),
    }
}

fn finish(response: Result<Response, tokio::sync::oneshot::error::RecvError>) -> HttpResponse {
    match response {
        Ok(response) => convert(response),
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the server is stopping"),
    }
}

fn plain(status: StatusCode, text: &str) -> HttpResponse {
    convert(Response {
        status: status.as_u16(),
        content_type: Some("text/plain; charset=utf-8"),
        location: None,
        etag: None,
        challenge: false,
        body: format!("{text}\n"),
    })
}

fn convert(response: Response) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut http = (status, response.body).into_response();
    let headers = http.headers_mut();
    cors(headers);
    match response.content_type {
        Some(content_type) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        None => {
            headers.remove(header::CONTENT_TYPE);
        }
    }
    if let Some(location) = response
        .location
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        headers.insert(header::LOCATION, location);
        headers.insert(
            HeaderName::from_static("accept-patch"),
            HeaderValue::from_static("application/trickle-ice-sdpfrag"),
        );
    }
    if let Some(etag) = response.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    if response.challenge {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    http
}

/// Tells the adapter when a POST's client left before its response.
struct Pending {
    hub: Arc<Hub>,
    request: RequestId,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed {
            self.hub.whip_abandoned(self.request);
        }
    }
}
