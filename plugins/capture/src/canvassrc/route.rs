//! Patches from remote peers: `canvassrc patch-source=NAME` applies every
//! message that element (a peersink or peersrc) receives on the data
//! channel `patch-label` as a remote patch — shared cursors, whiteboards,
//! lower thirds driven from a browser, with no application code.

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
            let label = values[2].get::<String>().unwrap_or_default();
            let text = values[3].get::<Option<String>>().ok().flatten();
            if let (true, Some(text), Some(canvas)) = (label == wanted, text, weak_canvas.upgrade())
            {
                // A refused patch is reported by the canvas itself (warning,
                // element message); the sender's other patches go on.
                let _ = canvas.emit_by_name::<bool>(super::APPLY_REMOTE_PATCH_SIGNAL, &[&text]);
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
