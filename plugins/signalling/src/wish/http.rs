//! The HTTP side of WHIP and WHEP: axum handlers that pick the headers and
//! body out of a request, run it through the [`WishAdapter`] of their kind
//! in the hub, and turn its [`HttpResponse`] into HTTP, with CORS so a page
//! on another origin can publish or play. Every rule lives in the state
//! machine.
//!
//! Routes, for `kind` = whip or whep:
//! - `POST /{kind}/{room}`: WHIP publishes into the room, WHEP plays its
//!   first producer;
//! - `POST /whep/{room}/{producer}`: plays that producer;
//! - `PATCH`, `DELETE /{kind}/{room}/{resource}`: the session's resource
//!   (the `Location` of the 201);
//! - `OPTIONS` on both: CORS preflight, `Accept-Post`, ICE servers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{options, post};
use tokio::sync::oneshot;

use super::{Endpoint, Kind, Request, WishAdapter};
use crate::adapter::{HttpResponse, RequestId};
use crate::request_rate::{RateLimit, RequestRate};
use crate::server::Hub;

#[derive(Clone)]
struct Shell {
    hub: Arc<Hub>,
    kind: Kind,
    /// POSTs by address (the listener puts the peer's address in each
    /// request's extensions).
    session_requests: Arc<Mutex<RequestRate>>,
}

/// The peer's address, as the listener records it on every request.
type Remote = Option<Extension<ConnectInfo<SocketAddr>>>;

pub fn router(hub: Arc<Hub>, kind: Kind) -> Router {
    let (limit, rate) = hub.with_adapter::<WishAdapter, _>(
        |a| a.kind() == kind,
        |adapter| {
            adapter.map_or((60 * 1024, RateLimit::default()), |a| {
                (a.config().max_body_bytes, a.config().session_requests)
            })
        },
    );
    let shell = Shell {
        hub,
        kind,
        session_requests: Arc::new(Mutex::new(RequestRate::new(rate))),
    };
    let base = format!("/{}", kind.path());
    let router = Router::new().route(
        &format!("{base}/{{room}}"),
        post(create).options(options_endpoint),
    );
    let router = match kind {
        // The second segment is a resource for PATCH and DELETE, and for
        // WHEP's POST the producer to play.
        Kind::Whep => router.route(
            &format!("{base}/{{room}}/{{name}}"),
            post(create_for_producer)
                .patch(trickle)
                .delete(teardown)
                .options(options_both),
        ),
        Kind::Whip => router.route(
            &format!("{base}/{{room}}/{{name}}"),
            axum::routing::patch(trickle)
                .delete(teardown)
                .merge(options(options_resource)),
        ),
    };
    router.layer(DefaultBodyLimit::max(limit)).with_state(shell)
}

async fn create(
    State(shell): State<Shell>,
    remote: Remote,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    post_offer(shell, remote, room, None, headers, body).await
}

async fn create_for_producer(
    State(shell): State<Shell>,
    remote: Remote,
    Path((room, producer)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    post_offer(shell, remote, room, Some(producer), headers, body).await
}

async fn post_offer(
    shell: Shell,
    remote: Remote,
    room: String,
    producer: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(Extension(ConnectInfo(remote))) = remote {
        let admitted = shell
            .session_requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .admit(remote.ip(), Instant::now());
        if let Err(wait) = admitted {
            tracing::debug!(%remote, protocol = shell.kind.path(), "session request rate exceeded");
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u32;
            let mut response = HttpResponse::text(
                StatusCode::TOO_MANY_REQUESTS.as_u16(),
                &format!(
                    "rate-limited: too many new sessions from this address; retry after {seconds} s"
                ),
            );
            response.retry_after = Some(seconds);
            return convert(response);
        }
    }
    let body = match text(body) {
        Ok(body) => body,
        Err((status, reason)) => return plain(status, &reason),
    };
    let started = Instant::now();
    let kind = shell.kind;
    let (request, response) = shell.hub.request::<WishAdapter>(
        |a| a.kind() == kind,
        |adapter, core, id, conn, out| {
            let picked = picked(&headers, id, &body);
            let endpoint = Endpoint {
                room: &room,
                producer: producer.as_deref(),
            };
            adapter.post(Instant::now(), core, picked, endpoint, conn, out);
        },
    );
    // If the client goes away while the answer is being made, the peer it
    // would have been must not linger in the room.
    let mut pending = Pending {
        hub: shell.hub.clone(),
        request,
        armed: true,
    };
    let response = response.await;
    pending.armed = false;
    if let Ok(response) = &response {
        tracing::info!(
            protocol = kind.path(),
            room,
            status = response.status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "offer posted"
        );
    }
    finish(response)
}

async fn trickle(
    State(shell): State<Shell>,
    Path((room, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match text(body) {
        Ok(body) => body,
        Err((status, reason)) => return plain(status, &reason),
    };
    let kind = shell.kind;
    let (_, response) = shell.hub.request::<WishAdapter>(
        |a| a.kind() == kind,
        |adapter, core, id, _, out| {
            let request = picked(&headers, id, &body);
            adapter.patch(Instant::now(), core, request, &room, &resource, out);
        },
    );
    finish(response.await)
}

async fn teardown(
    State(shell): State<Shell>,
    Path((room, resource)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let kind = shell.kind;
    let (_, response) = shell.hub.request::<WishAdapter>(
        |a| a.kind() == kind,
        |adapter, core, id, _, out| {
            let request = picked(&headers, id, "");
            adapter.delete(Instant::now(), core, request, &room, &resource, out);
        },
    );
    finish(response.await)
}

/// CORS preflight for the POST, and ICE server discovery (RFC 9725 §4.6).
async fn options_endpoint(State(shell): State<Shell>) -> Response {
    preflight(&shell, "POST, OPTIONS", true)
}

async fn options_resource(State(shell): State<Shell>) -> Response {
    preflight(&shell, "PATCH, DELETE, OPTIONS", false)
}

/// WHEP's `/{room}/{name}` is both an endpoint (a producer) and a resource.
async fn options_both(State(shell): State<Shell>) -> Response {
    preflight(&shell, "POST, PATCH, DELETE, OPTIONS", true)
}

fn preflight(shell: &Shell, methods: &'static str, endpoint: bool) -> Response {
    let kind = shell.kind;
    let links = shell.hub.with_adapter::<WishAdapter, _>(
        |a| a.kind() == kind,
        |adapter| adapter.map(WishAdapter::links).unwrap_or_default(),
    );
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
    if endpoint {
        headers.insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static("application/sdp"),
        );
        for link in links {
            if let Ok(value) = HeaderValue::from_str(&link) {
                headers.append(header::LINK, value);
            }
        }
    }
    response
}

/// Any origin may publish or play: the bearer token and the secret
/// resource URL, not the origin, protect the sessions (and a browser sends
/// no cookie here).
fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Patch, Retry-After"),
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
        if_match: value(header::IF_MATCH),
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
                "{} (at most the configured body limit)",
                rejection.body_text()
            ),
        )),
    }
}

fn finish(response: Result<HttpResponse, oneshot::error::RecvError>) -> Response {
    match response {
        Ok(response) => convert(response),
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the server is stopping"),
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    convert(HttpResponse::text(status.as_u16(), text))
}

fn convert(response: HttpResponse) -> Response {
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
    }
    if response.accept_patch {
        headers.insert(
            HeaderName::from_static("accept-patch"),
            HeaderValue::from_static("application/trickle-ice-sdpfrag"),
        );
    }
    if let Some(etag) = response.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(seconds) = response.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    for link in response.links {
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.append(header::LINK, value);
        }
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
            self.hub.abandoned(self.request);
        }
    }
}
