//! canvassrc's scene JSON and patches, as a remote peer sends them: the
//! input is a scene, then patches, separated by lines `%%`. Each patch is
//! applied as if from one of two peers (alternating) and as from the
//! pipeline; the scene is drawn at 64x48 after each. Invariants: no panic;
//! a refused patch leaves the scene as it was; the image budget holds;
//! a peer never changes or removes another peer's or the pipeline's node.

use gstpeercapture::canvassrc::patch::{Author, apply_patch_from};
use gstpeercapture::canvassrc::render::render;
use gstpeercapture::canvassrc::scene::{ImageLimits, Resources, Scene, parse_scene};
use gstpeercapture::canvassrc::text::FontBook;

use std::cell::RefCell;

thread_local! {
    /// Fonts load once; the frame is reused.
    static FONTS: RefCell<FontBook> = RefCell::new(FontBook::default());
    static PIXMAP: RefCell<tiny_skia::Pixmap> = RefCell::new(tiny_skia::Pixmap::new(64, 48).unwrap());
}

const LIMITS: ImageLimits = ImageLimits {
    max_side: 256,
    max_total_bytes: 1 << 20,
};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        FONTS.with_borrow_mut(|fonts| PIXMAP.with_borrow_mut(|pixmap| check(text, fonts, pixmap)));
    });
}

fn check(text: &str, fonts: &mut FontBook, pixmap: &mut tiny_skia::Pixmap) {
    let limits = LIMITS;
    {
        let mut parts = text.split("\n%%\n");
        let first = parts.next().unwrap_or_default();
        let mut resources = Resources::new(fonts, false).with_images(limits);
        let mut scene = parse_scene(first, &mut resources).unwrap_or_else(|_| Scene::default());
        assert!(scene.image_bytes() <= limits.max_total_bytes);
        for (index, patch) in parts.take(8).enumerate() {
            let author = match index % 3 {
                0 => Author::Peer("alice"),
                1 => Author::Peer("bob"),
                _ => Author::Pipeline,
            };
            let before: Vec<_> = scene
                .nodes
                .iter()
                .map(|n| (n.id.clone(), n.owner.clone()))
                .collect();
            match apply_patch_from(&scene, patch, &mut resources, author) {
                Ok(next) => {
                    if let Author::Peer(peer) = author {
                        // Every node of someone else's still there, unchanged.
                        for node in scene
                            .nodes
                            .iter()
                            .filter(|n| n.owner.as_deref() != Some(peer))
                        {
                            assert!(
                                next.nodes.iter().any(|m| std::sync::Arc::ptr_eq(m, node)),
                                "{peer} changed {:?} of {:?}",
                                node.id,
                                node.owner
                            );
                        }
                        for node in &next.nodes {
                            let old = scene.nodes.iter().any(|m| std::sync::Arc::ptr_eq(m, node));
                            assert!(
                                old || node.owner.as_deref() == Some(peer),
                                "{peer} made a node for {:?}",
                                node.owner
                            );
                        }
                    }
                    assert!(next.image_bytes() <= limits.max_total_bytes);
                    scene = next;
                }
                Err(err) => {
                    assert!(!err.to_string().is_empty());
                    assert!(!err.code().is_empty());
                    let after: Vec<_> = scene
                        .nodes
                        .iter()
                        .map(|n| (n.id.clone(), n.owner.clone()))
                        .collect();
                    assert_eq!(before, after);
                }
            }
            render(&scene, &mut pixmap.as_mut());
        }
    }
}
