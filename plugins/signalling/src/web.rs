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

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("watch.html", "text/html; charset=utf-8"),
    asset!("publish.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("peer.js", "text/javascript; charset=utf-8"),
    asset!("stats.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("analysis.js", "text/javascript; charset=utf-8"),
    asset!("index.js", "text/javascript; charset=utf-8"),
    asset!("watch.js", "text/javascript; charset=utf-8"),
    asset!("publish.js", "text/javascript; charset=utf-8"),
    asset!("cursors.js", "text/javascript; charset=utf-8"),
    asset!("whip.js", "text/javascript; charset=utf-8"),
    asset!("whep.js", "text/javascript; charset=utf-8"),
    asset!("play.html", "text/html; charset=utf-8"),
    asset!("play.js", "text/javascript; charset=utf-8"),
];

/// Pages by their address without extension, so links read `/watch?room=…`.
fn asset_for(path: &str) -> &str {
    match path {
        "" => "index.html",
        "watch" | "cursors" => "watch.html",
        "publish" => "publish.html",
        "play" => "play.html",
        other => other,
    }
}

fn serve(path: &str) -> Response {
    let path = asset_for(path);
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
