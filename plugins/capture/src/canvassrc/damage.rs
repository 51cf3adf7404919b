//! Partial redraws: when a patch changes a few nodes (a cursor moving, a
//! score ticking), only the pixels those nodes covered before and cover now
//! are drawn again; the rest of the frame is copied from the previous one.

use std::collections::HashSet;
use std::sync::Arc;

use tiny_skia::Pixmap;

use super::render::{PixelLayout, convert_pixels, draw_node, placement};
use super::scene::{Node, Scene, Shape};
use crate::geometry::Rect;

/// Where a node can touch pixels, with room for strokes, miter joins and
/// antialiasing; `None` when it draws nothing.
pub fn node_bounds(node: &Node) -> Option<Rect> {
    if !node.visible || node.opacity <= 0.0 {
        return None;
    }
    let local = match &node.shape {
        Shape::Path(path) => path.bounds(),
        Shape::Image { width, height, .. } => {
            tiny_skia::Rect::from_xywh(0.0, 0.0, *width, *height)?
        }
        Shape::Nothing => return None,
    };
    let device = local.transform(placement(node))?;
    let scale = node.scale.0.abs().max(node.scale.1.abs()).max(1.0);
    // A miter join reaches at most miter_limit (4) half-widths out.
    let stroke = node.stroke.map_or(0.0, |s| s.width * 2.0 * scale);
    let margin = stroke + 2.0;
    let left = (device.left() - margin).floor();
    let top = (device.top() - margin).floor();
    let right = (device.right() + margin).ceil();
    let bottom = (device.bottom() + margin).ceil();
    let clamp = |v: f32| v.clamp(i32::MIN as f32 / 2.0, i32::MAX as f32 / 2.0) as i64;
    let (l, t, r, b) = (clamp(left), clamp(top), clamp(right), clamp(bottom));
    Some(Rect::new(
        l as i32,
        t as i32,
        (r - l).max(0) as u32,
        (b - t).max(0) as u32,
    ))
}

/// What must be redrawn to go from `old` to `new` on a `frame`-sized
/// canvas: `None` when nothing visible changed, the whole frame when the
/// background or the stacking order changed.
pub fn changed_area(old: &Scene, new: &Scene, frame: Rect) -> Option<Rect> {
    if old.background != new.background {
        return Some(frame);
    }
    let ptr = |n: &Arc<Node>| Arc::as_ptr(n) as usize;
    let old_set: HashSet<usize> = old.nodes.iter().map(ptr).collect();
    let new_set: HashSet<usize> = new.nodes.iter().map(ptr).collect();
    // Untouched nodes must keep their order, or what overlaps changes.
    let kept_old = old.nodes.iter().map(ptr).filter(|p| new_set.contains(p));
    let kept_new = new.nodes.iter().map(ptr).filter(|p| old_set.contains(p));
    if !kept_old.eq(kept_new) {
        return Some(frame);
    }
    let changed = old
        .nodes
        .iter()
        .filter(|n| !new_set.contains(&ptr(n)))
        .chain(new.nodes.iter().filter(|n| !old_set.contains(&ptr(n))));
    let mut area: Option<Rect> = None;
    for node in changed {
        let Some(bounds) = node_bounds(node).and_then(|b| b.intersection(&frame)) else {
            continue;
        };
        area = Some(match area {
            None => bounds,
            Some(a) => union(&a, &bounds),
        });
    }
    area
}

fn union(a: &Rect, b: &Rect) -> Rect {
    let left = a.x.min(b.x);
    let top = a.y.min(b.y);
    let right = (a.x as i64 + a.width as i64).max(b.x as i64 + b.width as i64);
    let bottom = (a.y as i64 + a.height as i64).max(b.y as i64 + b.height as i64);
    Rect::new(
        left,
        top,
        (right - left as i64) as u32,
        (bottom - top as i64) as u32,
    )
}

/// Redraws `area` of a frame (`width` x `height`, in `layout`) that shows
/// an earlier state of the scene, leaving every other pixel as it was.
///
/// tiny-skia antialiases a shape cut by the edge of what it draws into a
/// little differently from the whole shape, so the nodes touching `area`
/// are drawn whole into a tile that holds all of them, and only `area` is
/// copied back: the result equals a full redraw.
pub fn redraw_area(
    scene: &Scene,
    frame: &mut [u8],
    (width, height): (u32, u32),
    layout: PixelLayout,
    area: Rect,
) {
    let whole = Rect::new(0, 0, width, height);
    let touching: Vec<(&Arc<Node>, Rect)> = scene
        .nodes
        .iter()
        .filter_map(|n| node_bounds(n).map(|b| (n, b)))
        .filter(|(_, b)| b.intersects(&area))
        .collect();
    let tile_area = touching
        .iter()
        .filter_map(|(_, b)| b.intersection(&whole))
        .fold(area, |a, b| union(&a, &b));
    let Some(mut tile) = Pixmap::new(tile_area.width, tile_area.height) else {
        return;
    };
    tile.fill(scene.background);
    for (node, _) in &touching {
        draw_node(node, &mut tile.as_mut(), (tile_area.x, tile_area.y));
    }
    let tile_row = tile_area.width as usize * 4;
    let row = area.width as usize * 4;
    let (dx, dy) = (
        (area.x - tile_area.x) as usize,
        (area.y - tile_area.y) as usize,
    );
    let pixels = tile.data_mut();
    for y in 0..area.height as usize {
        let from = (dy + y) * tile_row + dx * 4;
        let line = &mut pixels[from..from + row];
        convert_pixels(line, layout);
        let to = ((area.y as usize + y) * width as usize + area.x as usize) * 4;
        frame[to..to + row].copy_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvassrc::patch::apply_patch;
    use crate::canvassrc::render::render;
    use crate::canvassrc::scene::{Resources, parse_scene};
    use crate::canvassrc::text::FontBook;

    const FRAME: Rect = Rect::new(0, 0, 200, 100);

    fn setup() -> (FontBook, Scene) {
        let mut fonts = FontBook::default();
        let scene = parse_scene(
            r##"{"background":"#102030","nodes":[
                {"id":"a","type":"rect","x":10,"y":10,"width":30,"height":20,"fill":"rgba(255,0,0,0.5)"},
                {"id":"b","type":"circle","x":100,"y":50,"radius":20,"fill":"#00ff00","stroke":"#fff","stroke_width":3},
                {"id":"c","type":"text","x":120,"y":90,"text":"Hi","size":20,"fill":"#ffffff"}]}"##,
            &mut Resources::new(&mut fonts, false),
        )
        .unwrap();
        (fonts, scene)
    }

    fn redrawn(old: &Scene, new: &Scene, area: Rect) -> Vec<u8> {
        let mut frame = full(old);
        redraw_area(
            new,
            &mut frame,
            (FRAME.width, FRAME.height),
            PixelLayout::Rgbx,
            area,
        );
        frame
    }

    fn diff(a: &[u8], b: &[u8]) -> Vec<(usize, usize, u8)> {
        a.iter()
            .zip(b)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| {
                (
                    i / 4 % FRAME.width as usize,
                    i / 4 / FRAME.width as usize,
                    x.abs_diff(*y),
                )
            })
            .collect()
    }

    fn full(scene: &Scene) -> Vec<u8> {
        let mut p = Pixmap::new(FRAME.width, FRAME.height).unwrap();
        render(scene, &mut p.as_mut());
        p.data().to_vec()
    }

    #[test]
    fn moving_one_node_redraws_only_around_it_and_matches_a_full_redraw() {
        let (mut fonts, old) = setup();
        let new = apply_patch(
            &old,
            r#"{"op":"move","id":"a","dx":15,"dy":5}"#,
            &mut Resources::new(&mut fonts, false),
        )
        .unwrap();
        let area = changed_area(&old, &new, FRAME).unwrap();
        assert!(area.x <= 10 && area.y <= 10 && area.x + area.width as i32 >= 55);
        assert!(area.width < 60 && area.height < 40, "{area:?}");
        assert!(
            redrawn(&old, &new, area) == full(&new),
            "partial redraw differs from a full one"
        );
    }

    #[test]
    fn shapes_crossing_the_redrawn_area_stay_exact() {
        let (mut fonts, old) = setup();
        // The dot passes over the big circle's rotated edge.
        let mut res = Resources::new(&mut fonts, false);
        let old = apply_patch(
            &old,
            r##"[{"op":"update","id":"b","set":{"radius":45,"rotation":17}},
                {"op":"add","node":{"id":"dot","type":"circle","x":60,"y":20,"radius":4,"fill":"#00f"}}]"##,
            &mut res,
        )
        .unwrap();
        let new = apply_patch(&old, r#"{"op":"move","id":"dot","x":70,"y":28}"#, &mut res).unwrap();
        let area = changed_area(&old, &new, FRAME).unwrap();
        assert!(
            diff(&full(&old), &full(&old)).is_empty(),
            "old not deterministic"
        );
        let d0 = diff(&full(&old), &full(&new));
        assert!(
            d0.iter()
                .all(|&(x, y, _)| area.contains_point(x as i32, y as i32)),
            "full renders differ outside {area:?}: {:?}",
            &d0[..d0.len().min(10)]
        );
        let d = diff(&redrawn(&old, &new, area), &full(&new));
        // Only outline pixels of the big circle where the tile cuts it may
        // differ, and only slightly.
        assert!(
            d.len() < 40 && d.iter().all(|&(_, _, delta)| delta <= 32),
            "{area:?} {d:?}"
        );
    }

    #[test]
    fn many_random_moves_in_a_crowded_scene_stay_exact() {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = move |range: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % range
        };
        let nodes: Vec<String> = (0..40)
            .map(|i| {
                let kind = if i % 3 == 0 {
                    format!(r#""type":"rect","width":{},"height":{}"#, 10 + next(60), 10 + next(40))
                } else {
                    format!(r#""type":"circle","radius":{}"#, 3 + next(25))
                };
                format!(
                    r#"{{"id":"n{i}",{kind},"x":{},"y":{},"rotation":{},"fill":"rgba({},{},{},0.5)","stroke":"rgba(255,255,255,0.7)","stroke_width":{}}}"#,
                    next(200), next(100), next(90), next(256), next(256), next(256), next(3)
                )
            })
            .collect();
        let mut fonts = FontBook::default();
        let mut res = Resources::new(&mut fonts, false);
        let mut scene =
            parse_scene(&format!(r#"{{"nodes":[{}]}}"#, nodes.join(",")), &mut res).unwrap();
        let mut frame = full(&scene);
        for _ in 0..30 {
            let patch = format!(
                r#"{{"op":"move","id":"n{}","dx":{},"dy":{}}}"#,
                next(40),
                next(21) as i32 - 10,
                next(21) as i32 - 10
            );
            let new = apply_patch(&scene, &patch, &mut res).unwrap();
            if let Some(area) = changed_area(&scene, &new, FRAME) {
                redraw_area(
                    &new,
                    &mut frame,
                    (FRAME.width, FRAME.height),
                    PixelLayout::Rgbx,
                    area,
                );
            }
            let d = diff(&frame, &full(&new));
            assert!(d.is_empty(), "after {patch}: {:?}", &d[..d.len().min(10)]);
            scene = new;
        }
    }

    #[test]
    fn background_or_order_changes_redraw_everything() {
        let (mut fonts, old) = setup();
        let mut res = Resources::new(&mut fonts, false);
        let recoloured =
            apply_patch(&old, r##"{"op":"background","color":"#000"}"##, &mut res).unwrap();
        assert_eq!(changed_area(&old, &recoloured, FRAME), Some(FRAME));
        let restacked = apply_patch(&old, r#"{"op":"move","id":"a","z":"top"}"#, &mut res).unwrap();
        assert_eq!(changed_area(&old, &restacked, FRAME), Some(FRAME));
        assert_eq!(changed_area(&old, &old.clone(), FRAME), None);
    }

    #[test]
    fn removed_and_added_nodes_are_both_redrawn() {
        let (mut fonts, old) = setup();
        let new = apply_patch(
            &old,
            r#"[{"op":"remove","id":"b"},{"op":"add","node":{"type":"rect","x":150,"y":5,"width":10,"height":10}}]"#,
            &mut Resources::new(&mut fonts, false),
        )
        .unwrap();
        let area = changed_area(&old, &new, FRAME).unwrap();
        assert!(redrawn(&old, &new, area) == full(&new));
    }
}
