//! Patches from remote peers: ownership of nodes, and the image limits.

use base64::Engine as _;

use super::*;
use crate::canvassrc::scene::{ImageLimits, parse_scene};
use crate::canvassrc::text::FontBook;

const BASE: &str = r#"{"nodes":[{"id":"logo","type":"rect","width":10,"height":10}]}"#;

fn base() -> Scene {
    parse_scene(BASE, &mut Resources::new(&mut FontBook::default(), false)).unwrap()
}

fn from(scene: &Scene, author: Author, json: &str) -> Result<Scene, CanvasError> {
    apply_patch_from(
        scene,
        json,
        &mut Resources::new(&mut FontBook::default(), false),
        author,
    )
}

fn refusal(result: Result<Scene, CanvasError>) -> (&'static str, String) {
    let err = result.unwrap_err();
    (err.code(), err.to_string())
}

const ALICE: Author = Author::Peer("alice");
const BOB: Author = Author::Peer("bob");

#[test]
fn a_peer_owns_what_it_adds_and_nothing_else() {
    let s = from(
        &base(),
        ALICE,
        r#"{"op":"put","node":{"id":"cursor-a","type":"circle","radius":4}}"#,
    )
    .unwrap();
    assert_eq!(s.nodes[1].owner.as_deref(), Some("alice"));
    // Its own: moved, updated, put over; ownership stays.
    let s = from(&s, ALICE, r#"{"op":"move","id":"cursor-a","x":5,"y":6}"#).unwrap();
    let s = from(
        &s,
        ALICE,
        r#"{"op":"update","id":"cursor-a","set":{"radius":6}}"#,
    )
    .unwrap();
    let s = from(
        &s,
        ALICE,
        r#"{"op":"put","node":{"id":"cursor-a","type":"circle","radius":2}}"#,
    )
    .unwrap();
    assert_eq!(s.nodes[1].owner.as_deref(), Some("alice"));

    // Someone else's or the pipeline's: refused by name, nothing changed.
    for patch in [
        r#"{"op":"remove","id":"cursor-a"}"#,
        r#"{"op":"move","id":"cursor-a","dx":1,"dy":1}"#,
        r#"{"op":"update","id":"cursor-a","set":{"fill":"red"}}"#,
        r#"{"op":"put","node":{"id":"cursor-a","type":"circle","radius":9}}"#,
    ] {
        let (code, message) = refusal(from(&s, BOB, patch));
        assert_eq!(code, "not-owner", "{patch}: {message}");
        assert!(message.contains("belongs to peer \"alice\""), "{message}");
    }
    let (code, message) = refusal(from(&s, ALICE, r#"{"op":"remove","id":"logo"}"#));
    assert_eq!(code, "not-owner");
    assert!(
        message.contains("node \"logo\" belongs to the pipeline"),
        "{message}"
    );
    // All or nothing: a patch with one refused operation changes nothing.
    let (code, _) = refusal(from(
        &s,
        BOB,
        r#"[{"op":"add","node":{"id":"b","type":"circle","radius":1}},{"op":"remove","id":"logo"}]"#,
    ));
    assert_eq!(code, "not-owner");
    // The pipeline may do anything.
    let s = from(&s, Author::Pipeline, r#"{"op":"remove","id":"cursor-a"}"#).unwrap();
    assert_eq!(s.nodes.len(), 1);
}

#[test]
fn a_peer_clears_only_its_own_and_cannot_change_the_whole_canvas() {
    let s = from(
        &base(),
        ALICE,
        r#"{"op":"add","node":{"id":"a","type":"circle","radius":1}}"#,
    )
    .unwrap();
    let s = from(
        &s,
        BOB,
        r#"{"op":"add","node":{"id":"b","type":"circle","radius":1}}"#,
    )
    .unwrap();
    let s = from(&s, ALICE, r#"{"op":"clear"}"#).unwrap();
    let ids: Vec<_> = s.nodes.iter().map(|n| n.id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["logo", "b"]);
    for patch in [
        r##"{"op":"background","color":"#ff0000"}"##,
        r#"{"op":"replace","scene":{"nodes":[]}}"#,
    ] {
        let (code, message) = refusal(from(&s, BOB, patch));
        assert_eq!(code, "not-allowed", "{message}");
        assert!(message.contains("only the pipeline may"), "{message}");
    }
}

#[test]
fn one_peer_cannot_fill_the_scene() {
    let mut s = base();
    for i in 0..MAX_NODES_PER_PEER {
        let patch = format!(r#"{{"op":"add","node":{{"id":"n{i}","type":"circle","radius":1}}}}"#);
        s = from(&s, ALICE, &patch).unwrap();
    }
    let more = r#"{"op":"add","node":{"id":"more","type":"circle","radius":1}}"#;
    let (code, message) = refusal(from(&s, ALICE, more));
    assert_eq!(code, "too-many-nodes");
    assert!(message.contains("already has 100 nodes"), "{message}");
    assert!(from(&s, BOB, more).is_ok());
}

fn png_url(width: u32, height: u32) -> String {
    let png = tiny_skia::Pixmap::new(width, height)
        .unwrap()
        .encode_png()
        .unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

fn with_limits(scene: &Scene, json: &str, images: ImageLimits) -> Result<Scene, CanvasError> {
    let mut fonts = FontBook::default();
    let mut resources = Resources::new(&mut fonts, false).with_images(images);
    apply_patch_from(scene, json, &mut resources, ALICE)
}

#[test]
fn images_are_held_to_their_side_and_the_scenes_budget() {
    let limits = ImageLimits {
        max_side: 64,
        max_total_bytes: 20_000,
    };
    let image = |id: &str, w: u32, h: u32| {
        format!(
            r#"{{"op":"add","node":{{"id":"{id}","type":"image","src":"{}"}}}}"#,
            png_url(w, h)
        )
    };
    let (code, message) = refusal(with_limits(&base(), &image("big", 65, 8), limits));
    assert_eq!(code, "image-too-large");
    assert!(
        message.contains("image is 65x8; at most 64 pixels a side"),
        "{message}"
    );

    // 64x64 is 16 KiB decoded: one fits in 20,000 bytes, a second does not.
    let s = with_limits(&base(), &image("one", 64, 64), limits).unwrap();
    assert_eq!(s.image_bytes(), 64 * 64 * 4);
    let (code, message) = refusal(with_limits(&s, &image("two", 64, 64), limits));
    assert_eq!(code, "image-budget-exceeded");
    assert!(message.contains("max-image-bytes"), "{message}");
    // Two in one patch count together.
    let both = format!("[{},{}]", image("x", 60, 60), image("y", 60, 60));
    assert_eq!(
        refusal(with_limits(&base(), &both, limits)).0,
        "image-budget-exceeded"
    );
    // Removing the first frees its share.
    let s = from(&s, ALICE, r#"{"op":"remove","id":"one"}"#).unwrap();
    assert!(with_limits(&s, &image("two", 64, 64), limits).is_ok());
}

#[test]
fn a_header_that_lies_is_refused() {
    // A 2x2 PNG whose header says 1x1 (CRC fixed up or not, the decoder
    // or the size check refuses it).
    let png = tiny_skia::Pixmap::new(2, 2).unwrap().encode_png().unwrap();
    let mut lying = png.clone();
    lying[16..20].copy_from_slice(&1u32.to_be_bytes());
    lying[20..24].copy_from_slice(&1u32.to_be_bytes());
    let url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&lying)
    );
    let patch = format!(r#"{{"op":"add","node":{{"type":"image","src":"{url}"}}}}"#);
    assert!(from(&base(), ALICE, &patch).is_err());
}
