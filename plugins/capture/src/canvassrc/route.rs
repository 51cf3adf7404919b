//! Patches from remote peers: `canvassrc patch-source=NAME` applies every
//! message that element (a peersink or peersrc) receives on the data
//! channel `patch-label` as a remote patch — shared cursors, whiteboards,
//! lower thirds driven from a browser, with no application code.
//!
//! Each patch is applied on behalf of the peer that sent it (the signal's
//! peer id): it owns the nodes it adds and may change only those. A
//! refused patch is answered to that peer alone, on the same channel, with
//! `{"type":"canvas-error","code":"not-owner","message":"..."}`.

use gst::glib;
use gst::prelude::*;

/// A connection to the element whose data-channel messages we apply.
pub struct PatchRoute {
    source: glib::WeakRef<gst::Element>,
    handler: Option<glib::SignalHandlerId>,
}

impl PatchRoute {
    /// Finds `name` in the pipeline `canvas` is in and follows its
    /// `data-channel-message` signal.
    pub fn connect(canvas: &gst::Element, name: &str, label: &str) -> Result<PatchRoute, String> {
        let mut top = canvas.clone().upcast::<gst::Object>();
        while let Some(parent) = top.parent() {
            top = parent;
        }
        let source = top
            .downcast_ref::<gst::Bin>()
            .and_then(|bin| bin.by_name(name))
            .ok_or_else(|| format!("patch-source: no element named \"{name}\" in the pipeline"))?;
        if source.find_property("data-channels").is_none() {
            return Err(format!(
                "patch-source: \"{name}\" is a {}, which has no data channels (use a peersink or peersrc)",
                source
                    .factory()
                    .map(|f| f.name().to_string())
                    .unwrap_or_default()
            ));
        }
        let weak_canvas = canvas.downgrade();
        let wanted = label.to_owned();
        let handler = source.connect("data-channel-message", false, move |values| {
            let source = values[0].get::<gst::Element>().ok()?;
            let peer = values[1].get::<String>().unwrap_or_default();
            let label = values[2].get::<String>().unwrap_or_default();
            let text = values[3].get::<Option<String>>().ok().flatten();
            if let (true, Some(text), Some(canvas)) = (label == wanted, text, weak_canvas.upgrade())
            {
                // A refused patch is also reported by the canvas itself
                // (warning, element message); the sender's other patches go on.
                if let Err(super::PatchFailure::Refused(err)) =
                    super::apply_peer_patch(&canvas, &peer, &text)
                {
                    let reply = serde_json::json!({
                        "type": "canvas-error",
                        "code": err.code(),
                        "message": err.to_string(),
                    });
                    let _ = source.emit_by_name::<bool>(
                        "send-string",
                        &[&label, &Some(peer.as_str()), &reply.to_string()],
                    );
                }
            }
            None
        });
        Ok(PatchRoute {
            source: source.downgrade(),
            handler: Some(handler),
        })
    }
}

impl Drop for PatchRoute {
    fn drop(&mut self) {
        if let (Some(source), Some(handler)) = (self.source.upgrade(), self.handler.take()) {
            source.disconnect(handler);
        }
    }
}
