//! `canvassrc`: a live 2D canvas, like `canvas.captureStream()`.
//!
//! ```text
//! gst-launch-1.0 canvassrc scene=overlay.json ! video/x-raw,width=1280,height=720 ! ...
//! ```
//!
//! The scene (JSON, see `docs/capture.md`) is drawn with tiny-skia at the
//! negotiated size; a frame is only redrawn when the scene changed, other
//! ticks repeat the previous frame without copying it.
//!
//! # Changing the scene live
//!
//! From Rust, [`apply_patch`] (local, trusted input: may name image and
//! font files) or [`apply_remote_patch`] (input from remote peers, e.g. a
//! data channel: only inline `data:` images and installed fonts). From any
//! language, the action signals of the same names:
//!
//! ```text
//! let ok: bool = canvassrc.emit_by_name("apply-patch", &[&r#"{"op":"move","id":"dot","x":10,"y":20}"#]);
//! ```
//!
//! A refused patch changes nothing, posts a warning message and an element
//! message named [`PATCH_ERROR_MESSAGE`], and sets the `last-error`
//! property; the stream goes on with the last good scene.

pub mod bands;
mod color;
mod damage;
mod imp;
pub mod patch;
mod pathdata;
mod primitive;
pub mod render;
mod route;
pub mod scene;
pub mod text;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

pub use scene::CanvasError;

glib::wrapper! {
    pub struct CanvasSrc(ObjectSubclass<imp::CanvasSrc>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// Action signal `bool apply-patch(gchararray json)`, trusted input.
pub const APPLY_PATCH_SIGNAL: &str = "apply-patch";
/// Action signal `bool apply-remote-patch(gchararray json)`: no file access.
pub const APPLY_REMOTE_PATCH_SIGNAL: &str = "apply-remote-patch";
/// Action signal `bool apply-peer-patch(gchararray peer_id, gchararray json)`:
/// a remote patch from the peer `peer_id`, which may change only the nodes
/// it added (what `patch-source` uses).
pub const APPLY_PEER_PATCH_SIGNAL: &str = "apply-peer-patch";
/// Element message posted for a refused patch, with a string field `error`.
pub const PATCH_ERROR_MESSAGE: &str = "canvassrc-patch-error";

#[derive(Debug, thiserror::Error)]
pub enum PatchFailure {
    #[error("{0} is not a canvassrc")]
    NotACanvas(String),
    #[error(transparent)]
    Refused(#[from] CanvasError),
}

/// Applies a JSON patch from a local, trusted source (it may load images
/// and fonts from files). The change shows from the next rendered frame.
pub fn apply_patch(element: &impl IsA<gst::Element>, patch_json: &str) -> Result<(), PatchFailure> {
    canvas(element)?
        .imp()
        .apply(patch_json, true, patch::Author::Pipeline)
        .map_err(Into::into)
}

/// Applies a JSON patch received from a remote peer (e.g. over a WebRTC
/// data channel): images must be inline `data:image/png;base64,` URLs and
/// fonts installed ones, so a peer can never make us read a file.
pub fn apply_remote_patch(
    element: &impl IsA<gst::Element>,
    patch_json: &str,
) -> Result<(), PatchFailure> {
    canvas(element)?
        .imp()
        .apply(patch_json, false, patch::Author::Pipeline)
        .map_err(Into::into)
}

/// Applies a JSON patch from the remote peer `peer` (no file access, as
/// [`apply_remote_patch`]); the peer owns the nodes it adds, and a patch
/// that touches another's node, or the whole canvas, is refused with
/// [`CanvasError::code`] `not-owner` or `not-allowed`.
pub fn apply_peer_patch(
    element: &impl IsA<gst::Element>,
    peer: &str,
    patch_json: &str,
) -> Result<(), PatchFailure> {
    canvas(element)?
        .imp()
        .apply(patch_json, false, patch::Author::Peer(peer))
        .map_err(Into::into)
}

fn canvas(element: &impl IsA<gst::Element>) -> Result<&CanvasSrc, PatchFailure> {
    element
        .dynamic_cast_ref::<CanvasSrc>()
        .ok_or_else(|| PatchFailure::NotACanvas(element.as_ref().name().to_string()))
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "canvassrc",
        gst::Rank::NONE,
        CanvasSrc::static_type(),
    )
}
