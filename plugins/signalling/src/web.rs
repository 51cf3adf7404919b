//! The browser client and pages from `apps/web`, compiled into the binary
//! so that every server, embedded ones included, serves them with no files
//! on disk.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
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
    asset!("ice-restart.js", "text/javascript; charset=utf-8"),
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
    asset!("call.html", "text/html; charset=utf-8"),
    asset!("call.js", "text/javascript; charset=utf-8"),
    // The npm `peerjs` client, unmodified (see build.rs).
    Asset {
        path: "peerjs.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(env!("GST_PEER_PEERJS_CLIENT")),
    },
];

/// Pages by their address without extension, so links read `/watch?room=…`.
fn asset_for(path: &str) -> &str {
    match path {
        "" => "index.html",
        "watch" | "cursors" => "watch.html",
        "publish" => "publish.html",
        "play" => "play.html",
        "call" => "call.html",
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
    // Pages are the fallback rather than a `/{*path}` route, which the
    // router would refuse beside a protocol's `/{param}/...` routes
    // (PeerJS's `/{key}/id`).
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .fallback_service(get(|uri: Uri| async move {
            serve(uri.path().trim_start_matches('/'))
        }))
}
