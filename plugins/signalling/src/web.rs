//! The browser client and pages from `apps/web`, compiled into the binary
//! so that every server, embedded ones included, serves them with no files
//! on disk.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::server::Hub;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../../apps/web/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[asset!("index.html", "text/html; charset=utf-8")];

fn serve(path: &str) -> Response {
    match ASSETS.iter().find(|asset| asset.path == path) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no page \"/{path}\"\n")).into_response(),
    }
}

pub fn router(_hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route(
            "/{*path}",
            get(|Path(path): Path<String>| async move { serve(&path) }),
        )
}
