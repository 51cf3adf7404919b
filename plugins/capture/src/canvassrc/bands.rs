//! Full redraws on several cores: the frame is cut into horizontal bands of
//! about equal work, drawn at the same time, one thread each.
//!
//! tiny-skia antialiases a shape that is cut by the edge of what it draws
//! into differently from the whole shape: cutting shapes at a band's edge
//! left seams (up to 140/255 on the first rows below the cut), and even a
//! few rows of margin above and below a band left differences of up to
//! 20/255 inside it. So a band is drawn into rows that hold every node
//! tiny-skia draws and that crosses its edges whole (up to [`MAX_REACH`]
//! rows beyond it), and only its own rows are kept. Every node is then
//! rasterized from the same frame-space outline as in a single full render,
//! moved by whole pixels (exact in f32), so the bands put together equal
//! that render pixel for pixel. Only a node reaching further than
//! `MAX_REACH` rows past a band's edge (a shape taller than ~2 bands) is
//! cut; it can then differ by a few levels on some outline pixels, where no
//! seam shows. Plain rectangles and circles (see `primitive`) come out the
//! same however they are cut, so bands draw only their own rows of them.

use std::ops::Range;

use tiny_skia::PixmapMut;

use super::damage::node_bounds;
use super::render::{PixelLayout, convert_pixels, draw_node, drawn_exactly_in_pieces, render};
use super::scene::Scene;
use crate::geometry::Rect;

/// How far beyond its own rows a band draws, to hold the nodes crossing
/// its edges whole.
pub const MAX_REACH: u32 = 256;

/// Below this many rows per band, splitting costs more than it saves.
const MIN_BAND_ROWS: u32 = 64;

/// At most this many bands, whatever the number of cores.
const MAX_BANDS: usize = 8;

/// Draws full frames in bands, one thread per band, reusing its memory
/// from frame to frame.
pub struct BandRenderer {
    bands: usize,
    /// Rows drawn by every band but the first (which draws into the frame).
    scratch: Vec<Vec<u8>>,
}

impl Default for BandRenderer {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores)
    }
}

/// One band: the rows it keeps, and the rows it draws to keep them exact.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Band {
    keep: Range<u32>,
    draw: Range<u32>,
}

impl BandRenderer {
    /// A renderer using up to `bands` threads.
    pub fn new(bands: usize) -> Self {
        Self {
            bands: bands.clamp(1, MAX_BANDS),
            scratch: Vec::new(),
        }
    }

    /// Draws `scene` over the whole of `frame` (`width` x `height`, 4
    /// bytes a pixel, rows packed) and converts it to `layout`.
    pub fn render(
        &mut self,
        scene: &Scene,
        frame: &mut [u8],
        (width, height): (u32, u32),
        layout: PixelLayout,
    ) {
        let row = width as usize * 4;
        let frame = &mut frame[..row * height as usize];
        let bounds = extents(scene, width, height);
        let bands = plan(&bounds, width, height, self.bands);
        if bands.len() < 2 {
            if let Some(mut target) = PixmapMut::from_bytes(frame, width, height) {
                render(scene, &mut target);
            }
            convert_pixels(frame, layout);
            return;
        }
        if self.scratch.len() < bands.len() - 1 {
            self.scratch.resize_with(bands.len() - 1, Vec::new);
        }

        let (first, others) = bands.split_first().unwrap();
        std::thread::scope(|scope| {
            for (band, scratch) in others.iter().zip(self.scratch.iter_mut()) {
                let bounds = &bounds;
                scope.spawn(move || {
                    let rows = band.draw.len();
                    scratch.resize(rows * row, 0);
                    draw_band(scene, bounds, band, &mut scratch[..], width);
                    let from = (band.keep.start - band.draw.start) as usize * row;
                    convert_pixels(&mut scratch[from..from + band.keep.len() * row], layout);
                });
            }
            // The first band draws straight into the frame; rows it draws
            // beyond its own are overwritten below.
            let drawn = &mut frame[..first.draw.end as usize * row];
            draw_band(scene, &bounds, first, drawn, width);
            convert_pixels(&mut frame[..first.keep.end as usize * row], layout);
        });
        for (band, scratch) in others.iter().zip(&self.scratch) {
            let from = (band.keep.start - band.draw.start) as usize * row;
            let len = band.keep.len() * row;
            frame[band.keep.start as usize * row..][..len].copy_from_slice(&scratch[from..][..len]);
        }
    }
}

/// Where a node draws inside the frame.
#[derive(Debug, Clone, Copy)]
struct Extent {
    area: Rect,
    /// Whether it must be drawn whole to come out exact.
    whole: bool,
}

fn extents(scene: &Scene, width: u32, height: u32) -> Vec<Option<Extent>> {
    let frame = Rect::new(0, 0, width, height);
    scene
        .nodes
        .iter()
        .map(|n| {
            let area = node_bounds(n)?.intersection(&frame)?;
            Some(Extent {
                area,
                whole: !drawn_exactly_in_pieces(n),
            })
        })
        .collect()
}

/// Draws the nodes touching `band.keep` into `pixels`, which hold the
/// frame's rows `band.draw`.
fn draw_band(scene: &Scene, bounds: &[Option<Extent>], band: &Band, pixels: &mut [u8], width: u32) {
    let Some(mut target) = PixmapMut::from_bytes(pixels, width, band.draw.len() as u32) else {
        return;
    };
    target.fill(scene.background);
    let origin = (0, band.draw.start as i32);
    for (node, bounds) in scene.nodes.iter().zip(bounds) {
        if bounds.is_some_and(|b| {
            rows_of(&b.area).start < band.keep.end && rows_of(&b.area).end > band.keep.start
        }) {
            draw_node(node, &mut target, origin);
        }
    }
}

fn rows_of(bounds: &Rect) -> Range<u32> {
    // `bounds` lie inside the frame, so they are not negative.
    bounds.y as u32..bounds.y as u32 + bounds.height
}

/// Cuts `height` rows into up to `bands` bands of about equal work: the
/// background costs each row a little, every node its width on each of
/// its rows.
fn plan(bounds: &[Option<Extent>], width: u32, height: u32, bands: usize) -> Vec<Band> {
    let bands = bands.min((height / MIN_BAND_ROWS) as usize).max(1);
    if bands == 1 {
        return vec![Band {
            keep: 0..height,
            draw: 0..height,
        }];
    }
    // Work per row, as differences from the row above.
    let mut steps = vec![0i64; height as usize + 1];
    let fill_cost = (width / 4).max(1) as i64;
    steps[0] += fill_cost;
    for b in bounds.iter().flatten() {
        let rows = rows_of(&b.area);
        steps[rows.start as usize] += b.area.width as i64;
        steps[rows.end as usize] -= b.area.width as i64;
    }
    let mut work = Vec::with_capacity(height as usize);
    let mut level = 0i64;
    let mut total = 0i64;
    for step in &steps[..height as usize] {
        level += step;
        total += level;
        work.push(total);
    }
    // Cut where the running total passes each share, keeping every band
    // at least MIN_BAND_ROWS tall.
    let mut cuts = vec![0u32];
    for k in 1..bands {
        let share = total * k as i64 / bands as i64;
        let at = work.partition_point(|&w| w < share) as u32;
        let lowest = cuts.last().unwrap() + MIN_BAND_ROWS;
        let highest = height - MIN_BAND_ROWS * (bands - k) as u32;
        cuts.push(at.clamp(lowest, highest.max(lowest)));
    }
    cuts.push(height);
    cuts.dedup();
    settle_cuts(&mut cuts, bounds, fill_cost);

    cuts.windows(2)
        .map(|w| {
            let keep = w[0]..w[1];
            let mut draw = keep.clone();
            for b in bounds.iter().flatten().filter(|b| b.whole) {
                let rows = rows_of(&b.area);
                if rows.start < keep.end && rows.end > keep.start {
                    draw.start = draw.start.min(rows.start);
                    draw.end = draw.end.max(rows.end);
                }
            }
            draw.start = draw.start.max(keep.start.saturating_sub(MAX_REACH));
            draw.end = draw.end.min(keep.end + MAX_REACH).min(height);
            Band { keep, draw }
        })
        .collect()
}

/// What drawing the band that keeps `keep` costs: its rows of background
/// and every node touching them (whole when it must be drawn whole).
fn band_work(bounds: &[Option<Extent>], keep: &Range<u32>, fill_cost: i64) -> i64 {
    let nodes: i64 = bounds
        .iter()
        .flatten()
        .map(|b| {
            let rows = rows_of(&b.area);
            let drawn = if b.whole {
                rows.clone()
            } else {
                rows.start.max(keep.start)..rows.end.min(keep.end)
            };
            let touching = rows.start < keep.end && rows.end > keep.start;
            if touching {
                b.area.width as i64 * drawn.len() as i64
            } else {
                0
            }
        })
        .sum();
    nodes + fill_cost * keep.len() as i64
}

/// Moves each cut, within a quarter of a band, to where the slower of the
/// two bands beside it is fastest: a cut through few nodes draws few of
/// them twice, which the even split by rows does not see.
fn settle_cuts(cuts: &mut [u32], bounds: &[Option<Extent>], fill_cost: i64) {
    if cuts.len() < 3 {
        return;
    }
    let reach = (cuts[cuts.len() - 1] / (cuts.len() as u32 - 1) / 4).max(1);
    for k in 1..cuts.len() - 1 {
        let (above, below) = (cuts[k - 1], cuts[k + 1]);
        let lowest = (above + MIN_BAND_ROWS).max(cuts[k].saturating_sub(reach));
        let highest = below.saturating_sub(MIN_BAND_ROWS).min(cuts[k] + reach);
        let cost = |y: u32| {
            band_work(bounds, &(above..y), fill_cost).max(band_work(bounds, &(y..below), fill_cost))
        };
        if let Some(best) = (lowest..=highest).step_by(2).min_by_key(|&y| cost(y)) {
            cuts[k] = best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvassrc::scene::{Resources, parse_scene};
    use crate::canvassrc::text::FontBook;
    use tiny_skia::Pixmap;

    /// A crowded scene: half-transparent rectangles (some turned), circles
    /// with and without outlines, lines, text; some shapes cross the
    /// frame's edges.
    fn crowded(seed: u32, width: u32, height: u32) -> String {
        let mut seed = seed;
        let mut next = move |range: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % range.max(1)
        };
        let mut nodes = Vec::new();
        for i in 0..250 {
            let colour = format!(
                "rgba({},{},{},0.{})",
                next(256),
                next(256),
                next(256),
                1 + next(9)
            );
            let (x, y) = (next(width + 80) as i32 - 40, next(height + 80) as i32 - 40);
            let frac = next(100);
            nodes.push(match i % 6 {
                0 | 1 => format!(
                    r#"{{"type":"rect","x":{x}.{frac},"y":{y},"width":{},"height":{},"rotation":{},"fill":"{colour}"}}"#,
                    10 + next(200),
                    10 + next(160),
                    if i % 2 == 0 { 0 } else { next(90) }
                ),
                2 => format!(
                    r#"{{"type":"circle","x":{x}.{frac},"y":{y}.{},"radius":{},"fill":"{colour}","stroke":"rgba(255,255,255,0.7)","stroke_width":{}}}"#,
                    next(100),
                    3 + next(70),
                    1 + next(4)
                ),
                3 => format!(
                    r#"{{"type":"line","x":{x},"y":{y},"points":[[0,0],[{},{}],[{},{}]],"stroke":"{colour}","stroke_width":{},"line_join":"round"}}"#,
                    next(300),
                    next(200),
                    next(100),
                    next(300),
                    1 + next(6)
                ),
                4 => format!(
                    r#"{{"type":"text","x":{x},"y":{y},"text":"Band {i}","size":{},"fill":"{colour}"}}"#,
                    10 + next(60)
                ),
                _ => format!(
                    r#"{{"type":"circle","x":{x}.{frac},"y":{y},"radius":{},"fill":"{colour}"}}"#,
                    3 + next(120)
                ),
            });
        }
        format!(
            r##"{{"background":"#102030","nodes":[{}]}}"##,
            nodes.join(",")
        )
    }

    fn scene(json: &str) -> Scene {
        let mut fonts = FontBook::default();
        parse_scene(json, &mut Resources::new(&mut fonts, false)).unwrap()
    }

    fn single(scene: &Scene, width: u32, height: u32) -> Vec<u8> {
        let mut pixmap = Pixmap::new(width, height).unwrap();
        render(scene, &mut pixmap.as_mut());
        pixmap.data().to_vec()
    }

    fn banded(scene: &Scene, width: u32, height: u32, bands: usize) -> Vec<u8> {
        let mut frame = vec![0u8; (width * height * 4) as usize];
        BandRenderer::new(bands).render(scene, &mut frame, (width, height), PixelLayout::Rgbx);
        frame
    }

    #[test]
    fn bands_put_together_equal_a_single_render() {
        let (width, height) = (640, 480);
        for seed in [0x2545_f491, 0x9e37_79b9, 0xdead_beef, 7] {
            let scene = scene(&crowded(seed, width, height));
            let whole = single(&scene, width, height);
            for bands in [2, 3, 5, 8] {
                let planned = plan(&extents(&scene, width, height), width, height, bands);
                assert_eq!(planned.len(), bands.min(7), "{planned:?}");
                let out = banded(&scene, width, height, bands);
                let differing: Vec<usize> =
                    (0..out.len()).filter(|&i| out[i] != whole[i]).collect();
                assert!(
                    differing.is_empty(),
                    "seed {seed:#x}, {bands} bands {planned:?}: {} bytes differ, first at pixel ({}, {})",
                    differing.len(),
                    differing[0] / 4 % width as usize,
                    differing[0] / 4 / width as usize
                );
            }
        }
    }

    #[test]
    fn bands_share_the_work_and_hold_the_shapes_crossing_them() {
        // Everything in the top half: the cut goes there too. Rounded
        // corners and a stretched circle are drawn by tiny-skia, whole.
        let scene = scene(
            r##"{"nodes":[{"type":"rect","x":0,"y":0,"width":400,"height":200,"radius":4,"fill":"#f00"},
                          {"type":"circle","x":200,"y":190,"radius":30,"scale":[1,1.1],"fill":"#0f0"}]}"##,
        );
        let bounds = extents(&scene, 400, 600);
        assert!(bounds.iter().flatten().all(|b| b.whole));
        let bands = plan(&bounds, 400, 600, 2);
        assert_eq!(bands.len(), 2);
        let cut = bands[0].keep.end;
        // Not halfway down: where the work is. And not through the big
        // rectangle, which would then be drawn twice, but through the
        // small circle below it.
        assert!((202..=220).contains(&cut), "{bands:?}");
        assert_eq!(bands[1].keep, cut..600);
        for band in &bands {
            for rows in bounds.iter().flatten().map(|b| rows_of(&b.area)) {
                if rows.start < band.keep.end && rows.end > band.keep.start {
                    assert!(
                        band.draw.start <= rows.start && band.draw.end >= rows.end,
                        "{band:?} cuts a node on rows {rows:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn plain_shapes_are_drawn_only_in_their_bands_rows() {
        let scene = scene(
            r##"{"nodes":[{"type":"rect","x":10,"y":10,"width":380,"height":500,"fill":"#f00","stroke":"#fff","stroke_width":3},
                          {"type":"circle","x":200,"y":300,"radius":250,"fill":"#0f0"}]}"##,
        );
        let bounds = extents(&scene, 400, 600);
        assert!(bounds.iter().flatten().all(|b| !b.whole));
        for band in plan(&bounds, 400, 600, 3) {
            assert_eq!(band.draw, band.keep);
        }
        assert!(banded(&scene, 400, 600, 3) == single(&scene, 400, 600));
    }

    #[test]
    fn layouts_are_converted_in_every_band() {
        let scene = scene(&crowded(3, 320, 256));
        let mut expected = single(&scene, 320, 256);
        convert_pixels(&mut expected, PixelLayout::Bgra);
        let mut frame = vec![0u8; 320 * 256 * 4];
        BandRenderer::new(4).render(&scene, &mut frame, (320, 256), PixelLayout::Bgra);
        assert!(frame == expected);
    }
}
