//! Draws a scene into a frame with tiny-skia, antialiased, in node order.

use std::sync::OnceLock;

use tiny_skia::{
    Color, FillRule, FilterQuality, Paint, Path, PathStroker, PixmapMut, PixmapPaint, Transform,
};

use super::primitive::{self, Edges, Primitive};
use super::scene::{Form, Node, Scene, Shape};

/// The packed 4-byte layouts canvassrc can output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// tiny-skia's own layout; needs no conversion.
    Rgbx,
    /// Straight (not premultiplied) alpha, as GStreamer expects.
    Rgba,
    Bgrx,
    Bgra,
}

/// Draws every visible node over the background, in one piece.
pub fn render(scene: &Scene, target: &mut PixmapMut) {
    target.fill(scene.background);
    for node in &scene.nodes {
        draw_node(node, target, (0, 0));
    }
}

/// Where a node's local coordinates land: moved to (x, y), turned by
/// `rotation` degrees about that point, then scaled.
pub(super) fn placement(node: &Node) -> Transform {
    Transform::from_translate(node.x, node.y)
        .pre_rotate(node.rotation)
        .pre_scale(node.scale.0, node.scale.1)
}

fn paint(color: Color, opacity: f32) -> Paint<'static> {
    let mut color = color;
    color.apply_opacity(opacity);
    let mut paint = Paint::default();
    paint.set_color(color);
    paint.anti_alias = true;
    paint
}

/// A path node's outlines in frame coordinates, built on its first draw
/// and kept with the node (nodes never change; a patch makes new ones).
/// Frames after the first neither transform nor stroke paths again, and
/// every part of a frame drawn apart (bands, partial redraws) starts from
/// the very same numbers, which is what keeps those parts pixel-exact.
#[derive(Default)]
pub struct DeviceCache(OnceLock<DeviceShape>);

struct DeviceShape {
    fill: Option<DeviceFill>,
    stroke: Option<DeviceStroke>,
}

enum DeviceFill {
    Path(Path),
    /// A plain rectangle or circle, not turned: drawn by `primitive`.
    Primitive(Primitive),
}

enum DeviceStroke {
    /// The stroke's outline, to be filled.
    Outline(Path),
    /// The outline of a plain rectangle or circle, not turned.
    Primitive(Primitive),
    /// At most a pixel wide: drawn as a hairline along the path, with its
    /// alpha scaled by `coverage` (the stroke's width on screen).
    Hairline {
        path: Path,
        cap: tiny_skia::LineCap,
        coverage: f32,
    },
}

/// Mirrors what `PixmapMut::fill_path` and `stroke_path` compute before
/// they rasterize, so that drawing the cached outlines gives exactly the
/// pixels those calls give.
fn device_shape(node: &Node, path: &Path) -> DeviceShape {
    let transform = placement(node);
    let fill = node.fill.and_then(|_| match fill_primitive(node) {
        Some(shape) => Some(DeviceFill::Primitive(shape)),
        None => in_device_range(path.clone().transform(transform)).map(DeviceFill::Path),
    });
    let stroke = node.stroke.filter(|s| s.width > 0.0).and_then(|s| {
        let style = tiny_skia::Stroke {
            width: s.width,
            line_cap: s.cap,
            line_join: s.join,
            ..tiny_skia::Stroke::default()
        };
        if let Some(coverage) = hairline_coverage(s.width, transform) {
            // Thin strokes keep tiny-skia's hairlines.
            return in_device_range(path.clone().transform(transform)).map(|path| {
                DeviceStroke::Hairline {
                    path,
                    cap: s.cap,
                    coverage,
                }
            });
        }
        if let Some(shape) = stroke_primitive(node, s) {
            return Some(DeviceStroke::Primitive(shape));
        }
        // A stroke reaching beyond the drawing range is not drawn: skip
        // the stroker's work for it too (a scaled-up wide stroke of a
        // curve costs it dearly).
        let (sx, sy) = (node.scale.0.abs(), node.scale.1.abs());
        if s.width * sx.max(sy) > DEVICE_RANGE {
            return None;
        }
        let res_scale = PathStroker::compute_resolution_scale(&transform);
        in_device_range(
            path.stroke(&style, res_scale)
                .and_then(|outline| outline.transform(transform)),
        )
        .map(DeviceStroke::Outline)
    });
    DeviceShape { fill, stroke }
}

/// How far from the frame's origin, in pixels, a path may reach and still
/// be drawn. tiny-skia rasterizes in fixed point after clipping in `f32`;
/// with coordinates in the millions that clipping loses the precision its
/// scanline fill relies on, and its own assertions fail (found by fuzzing:
/// fuzz/corpus/canvas_scene/regression-*). No frame is this large, so a
/// path that reaches that far is a mistake or an attack: it is not drawn.
const DEVICE_RANGE: f32 = 32_768.0;

fn in_device_range(path: Option<Path>) -> Option<Path> {
    let path = path?;
    let b = path.bounds();
    // Written so that NaN bounds count as out of range.
    let inside = b.left() >= -DEVICE_RANGE
        && b.top() >= -DEVICE_RANGE
        && b.right() <= DEVICE_RANGE
        && b.bottom() <= DEVICE_RANGE;
    inside.then_some(path)
}

/// How much a rectangle or circle that is not turned is stretched along
/// x and y, when `primitive` can draw it.
fn upright_scale(node: &Node) -> Option<(f32, f32)> {
    let (sx, sy) = node.scale;
    let upright = node.rotation.rem_euclid(360.0) == 0.0 && sx > 0.0 && sy > 0.0;
    let simple = match node.form {
        Form::Rect { .. } => true,
        Form::Circle { .. } => sx == sy,
        Form::Other => false,
    };
    (upright && simple).then_some((sx, sy))
}

fn fill_primitive(node: &Node) -> Option<Primitive> {
    let (sx, sy) = upright_scale(node)?;
    match node.form {
        Form::Rect { width, height } => Some(Primitive::Boxed {
            outer: Edges::new(node.x, node.y, node.x + width * sx, node.y + height * sy)?,
            inner: None,
        }),
        Form::Circle { radius } => Some(Primitive::Round {
            cx: node.x,
            cy: node.y,
            outer: radius * sx,
            inner: 0.0,
        }),
        Form::Other => None,
    }
}

/// The outline of a stroke more than a pixel wide (thinner ones are
/// hairlines). Rectangles only with mitred corners, which stay square.
fn stroke_primitive(node: &Node, stroke: super::scene::Stroke) -> Option<Primitive> {
    let (sx, sy) = upright_scale(node)?;
    let (half_x, half_y) = (stroke.width * sx / 2.0, stroke.width * sy / 2.0);
    match node.form {
        Form::Rect { width, height } if stroke.join == tiny_skia::LineJoin::Miter => {
            let (right, bottom) = (node.x + width * sx, node.y + height * sy);
            Some(Primitive::Boxed {
                outer: Edges::new(
                    node.x - half_x,
                    node.y - half_y,
                    right + half_x,
                    bottom + half_y,
                )?,
                inner: Edges::new(
                    node.x + half_x,
                    node.y + half_y,
                    right - half_x,
                    bottom - half_y,
                ),
            })
        }
        Form::Circle { radius } => Some(Primitive::Round {
            cx: node.x,
            cy: node.y,
            outer: radius * sx + half_x,
            inner: (radius * sx - half_x).max(0.0),
        }),
        _ => None,
    }
}

/// Whether every part of the node is drawn by `primitive`, which gives the
/// same pixels whether a shape is drawn whole or in pieces.
pub(super) fn drawn_exactly_in_pieces(node: &Node) -> bool {
    let Shape::Path(path) = &node.shape else {
        return false;
    };
    let device = node.device.0.get_or_init(|| device_shape(node, path));
    let fill_exact = matches!(device.fill, None | Some(DeviceFill::Primitive(_)));
    let stroke_exact = matches!(device.stroke, None | Some(DeviceStroke::Primitive(_)));
    fill_exact && stroke_exact
}

/// tiny-skia's own test (`treat_as_hairline`, antialiased paint): a stroke
/// at most a pixel wide once transformed is drawn as a hairline, that much
/// covering.
fn hairline_coverage(width: f32, mut transform: Transform) -> Option<f32> {
    transform.tx = 0.0;
    transform.ty = 0.0;
    let mut points = [
        tiny_skia::Point::from_xy(width, 0.0),
        tiny_skia::Point::from_xy(0.0, width),
    ];
    transform.map_points(&mut points);
    let fast_len = |p: tiny_skia::Point| {
        let (x, y) = (p.x.abs(), p.y.abs());
        x.max(y) + x.min(y) / 2.0
    };
    let (len0, len1) = (fast_len(points[0]), fast_len(points[1]));
    (len0 <= 1.0 && len1 <= 1.0).then_some((len0 + len1) * 0.5)
}

/// Draws one node into `target`, whose top-left pixel is pixel `origin`
/// of the frame.
///
/// Outlines are moved by whole pixels after they are in frame coordinates:
/// for every point inside `target` that subtraction is exact in f32, so
/// tiny-skia sees the same edges, shifted, as when drawing the whole frame.
pub(super) fn draw_node(node: &Node, target: &mut PixmapMut, origin: (i32, i32)) {
    if !node.visible || node.opacity <= 0.0 {
        return;
    }
    let shift = match origin {
        (0, 0) => Transform::identity(),
        (x, y) => Transform::from_translate(-x as f32, -y as f32),
    };
    match &node.shape {
        Shape::Path(path) => {
            let device = node.device.0.get_or_init(|| device_shape(node, path));
            match (&device.fill, node.fill) {
                (Some(DeviceFill::Path(outline)), Some(fill)) => target.fill_path(
                    outline,
                    &paint(fill, node.opacity),
                    FillRule::Winding,
                    shift,
                    None,
                ),
                (Some(DeviceFill::Primitive(shape)), Some(fill)) => {
                    draw_primitive(shape, fill, node.opacity, target, origin)
                }
                _ => {}
            }
            let Some(stroke) = node.stroke else {
                return;
            };
            let stroke_paint = paint(stroke.color, node.opacity);
            match &device.stroke {
                Some(DeviceStroke::Outline(outline)) => {
                    target.fill_path(outline, &stroke_paint, FillRule::Winding, shift, None)
                }
                Some(DeviceStroke::Primitive(shape)) => {
                    draw_primitive(shape, stroke.color, node.opacity, target, origin)
                }
                Some(DeviceStroke::Hairline {
                    path,
                    cap,
                    coverage,
                }) => {
                    // As `stroke_path` does for a thin stroke (source-over
                    // pre-scales coverage), then a zero width: a hairline.
                    let mut paint = stroke_paint;
                    if *coverage != 1.0 {
                        let scale = (coverage * 256.0) as i32;
                        paint
                            .shader
                            .apply_opacity(((255 * scale) >> 8) as f32 / 255.0);
                    }
                    let style = tiny_skia::Stroke {
                        width: 0.0,
                        line_cap: *cap,
                        ..tiny_skia::Stroke::default()
                    };
                    target.stroke_path(path, &paint, &style, shift, None);
                }
                None => {}
            }
        }
        Shape::Image {
            pixmap,
            width,
            height,
        } => {
            let fit = shift.pre_concat(placement(node)).pre_scale(
                width / pixmap.width() as f32,
                height / pixmap.height() as f32,
            );
            let paint = PixmapPaint {
                opacity: node.opacity,
                quality: FilterQuality::Bilinear,
                ..PixmapPaint::default()
            };
            target.draw_pixmap(0, 0, (**pixmap).as_ref(), &paint, fit, None);
        }
        Shape::Nothing => {}
    }
}

fn draw_primitive(
    shape: &Primitive,
    color: Color,
    opacity: f32,
    target: &mut PixmapMut,
    origin: (i32, i32),
) {
    let mut color = color;
    color.apply_opacity(opacity);
    let size = (target.width(), target.height());
    primitive::draw(
        shape,
        color.premultiply().to_color_u8(),
        target.data_mut(),
        size,
        origin,
    );
}

/// Turns tiny-skia's premultiplied RGBA into `layout`, in place.
pub fn convert_pixels(data: &mut [u8], layout: PixelLayout) {
    match layout {
        PixelLayout::Rgbx => {}
        PixelLayout::Bgrx => data.chunks_exact_mut(4).for_each(|p| p.swap(0, 2)),
        PixelLayout::Rgba => data.chunks_exact_mut(4).for_each(demultiply),
        PixelLayout::Bgra => data.chunks_exact_mut(4).for_each(|p| {
            demultiply(p);
            p.swap(0, 2);
        }),
    }
}

fn demultiply(p: &mut [u8]) {
    let a = p[3] as u32;
    if a != 0 && a != 255 {
        for c in &mut p[..3] {
            *c = ((*c as u32 * 255 + a / 2) / a).min(255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvassrc::scene::{Resources, parse_scene};
    use crate::canvassrc::text::FontBook;
    use tiny_skia::Pixmap;

    fn draw(json: &str, w: u32, h: u32) -> Pixmap {
        let mut fonts = FontBook::default();
        let scene = parse_scene(json, &mut Resources::new(&mut fonts, true)).unwrap();
        let mut pixmap = Pixmap::new(w, h).unwrap();
        render(&scene, &mut pixmap.as_mut());
        pixmap
    }

    fn rgba(p: &Pixmap, x: u32, y: u32) -> [u8; 4] {
        let c = p.pixel(x, y).unwrap();
        [c.red(), c.green(), c.blue(), c.alpha()]
    }

    #[test]
    fn rect_covers_exactly_its_pixels() {
        let p = draw(
            r##"{"background":"#0000ff","nodes":[{"type":"rect","x":10,"y":20,"width":30,"height":40,"fill":"#ff0000"}]}"##,
            100,
            100,
        );
        assert_eq!(rgba(&p, 10, 20), [255, 0, 0, 255]);
        assert_eq!(rgba(&p, 39, 59), [255, 0, 0, 255]);
        assert_eq!(rgba(&p, 9, 20), [0, 0, 255, 255]);
        assert_eq!(rgba(&p, 40, 30), [0, 0, 255, 255]);
        assert_eq!(rgba(&p, 20, 60), [0, 0, 255, 255]);
    }

    #[test]
    fn circle_edges_are_antialiased() {
        let p = draw(
            r##"{"background":"#000000","nodes":[{"type":"circle","x":50,"y":50,"radius":30,"fill":"#ffffff"}]}"##,
            100,
            100,
        );
        assert_eq!(rgba(&p, 50, 50), [255, 255, 255, 255]);
        assert_eq!(rgba(&p, 2, 2), [0, 0, 0, 255]);
        let partial = (0..100)
            .flat_map(|y| (0..100).map(move |x| (x, y)))
            .filter(|&(x, y)| (1..255).contains(&rgba(&p, x, y)[0]))
            .count();
        assert!(
            partial > 50,
            "only {partial} partly covered pixels on the rim"
        );
    }

    #[test]
    fn opacity_blends_with_what_is_below() {
        let p = draw(
            r##"{"background":"#000000","nodes":[{"type":"rect","width":10,"height":10,"fill":"#ffffff","opacity":0.5}]}"##,
            10,
            10,
        );
        let [r, _, _, a] = rgba(&p, 5, 5);
        assert!((126..=129).contains(&r), "{r}");
        assert_eq!(a, 255);
    }

    #[test]
    fn rotation_turns_about_the_node_position() {
        // A 40x4 bar rotated 90 degrees about (50, 10) hangs down from it.
        let p = draw(
            r##"{"nodes":[{"type":"rect","x":50,"y":10,"width":40,"height":4,"rotation":90,"fill":"red"}]}"##,
            100,
            100,
        );
        assert_eq!(rgba(&p, 48, 40), [255, 0, 0, 255]);
        assert_eq!(rgba(&p, 70, 12), [0, 0, 0, 255]);
    }

    #[test]
    fn text_draws_inside_its_box_only() {
        let p = draw(
            r##"{"background":"#000000","nodes":[{"type":"text","x":10,"y":50,"text":"Hello","size":32,"fill":"#ffffff"}]}"##,
            200,
            80,
        );
        let lit = |x0: u32, y0: u32, x1: u32, y1: u32| {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| rgba(&p, x, y)[0] > 0)
                .count()
        };
        assert!(lit(10, 20, 100, 52) > 200);
        assert_eq!(lit(110, 0, 200, 80), 0);
        assert_eq!(lit(0, 55, 200, 80), 0);
    }

    #[test]
    fn stroke_only_shape_is_hollow() {
        let p = draw(
            r##"{"nodes":[{"type":"rect","x":10,"y":10,"width":50,"height":50,"stroke":"lime","stroke_width":4}]}"##,
            80,
            80,
        );
        assert_eq!(rgba(&p, 10, 30), [0, 255, 0, 255]);
        assert_eq!(rgba(&p, 35, 35), [0, 0, 0, 255]);
    }

    #[test]
    fn pixel_layouts() {
        let mut px = [255u8, 0, 0, 255, 64, 0, 0, 128];
        convert_pixels(&mut px, PixelLayout::Bgra);
        assert_eq!(px, [0, 0, 255, 255, 0, 0, 128, 128]);
        let mut px = [10u8, 20, 30, 40];
        convert_pixels(&mut px, PixelLayout::Bgrx);
        assert_eq!(px, [30, 20, 10, 40]);
    }

    /// Inputs the fuzzer found (fuzz/findings/canvas_scene): paths with
    /// coordinates in the millions or billions made tiny-skia's scanline
    /// fill fail its own assertion. They must draw (or not) without panic.
    #[test]
    fn paths_far_outside_the_frame_do_not_break_the_rasterizer() {
        let scenes = [
            r##"[{"type":"path","d":"M0 0 L-1 2 75 4 0 1848495929T47 4 0 0 C 1 2-5 4 5 6 Z","fill":"rgba(1,3.3,0.5)"}]"##,
            r##"[{"type":"path","d":"M0 0 L-1 2 T33399999999999999999999327539395676799 4 0 0 C 1 2-5 2 5 6 Z","fill":"white","stroke":"rgba(1,3.3,0.5)"}]"##,
            r##"[{"type":"path","d":"V0 0 V-1 2 98266963 1 0 C 1 7-4 4 5 6 Z","fill":"white","stroke":"rgba(1,3.3,0.2)","x":43,"y":25,"rotation":80}]"##,
            r##"[{"type":"path","d":"M0 0 L-1 2 7985837 0 L-1998585298 5 1 0 C 3 8-50.2 4 5 6 Z","fill":"white","stroke":"rgba(1,3.3,0.2)","x":32,"y":66,"rotation":30}]"##,
            r##"[{"type":"path","d":"V0 0 V-1 2 98284422 5 1 0 C 1 7-4 4 5 6 Z","fill":"white","stroke":"rgba(1,3.3,0.2)","x":43,"y":25,"rotation":80}]"##,
            r##"[{"type":"path","d":"M0 0 L 10 10 L 0 20 Z","fill":"white","x":30,"y":20,"scale":[3e7,2e9],"rotation":45}]"##,
            r##"[{"type":"line","points":[[0,0],[1e9,3],[-2e9,7]],"stroke":"white","stroke_width":3}]"##,
            r##"[{"type":"line","points":[[0,0],[1e9,3],[-2e9,7]],"stroke":"white","stroke_width":0.5}]"##,
            r##"[{"type":"rect","x":-1e9,"y":3e9,"width":4e9,"height":1e9,"fill":"white","stroke":"red","stroke_width":9}]"##,
            r##"[{"type":"circle","x":-1e9,"y":3,"radius":4e9,"fill":"white","stroke":"red","stroke_width":9,"rotation":3}]"##,
            r##"[{"type":"rect","x":5,"y":5,"width":10,"height":10,"radius":3,"stroke":"white","stroke_width":9000,"scale":1000}]"##,
        ];
        let mut fonts = FontBook::default();
        let mut drawn = 0;
        for json in scenes {
            // A marker drawn after the far shape: the frame still comes out.
            let marker =
                r##",{"type":"rect","x":60,"y":0,"width":4,"height":4,"fill":"#ff0000"}]"##;
            let json = format!("{}{marker}", json.strip_suffix(']').unwrap());
            let mut resources = Resources::new(&mut fonts, true);
            let Ok(scene) = parse_scene(&json, &mut resources) else {
                continue;
            };
            let mut pixmap = Pixmap::new(64, 48).unwrap();
            render(&scene, &mut pixmap.as_mut());
            assert_eq!(rgba(&pixmap, 62, 2), [255, 0, 0, 255], "{json}");
            drawn += 1;
        }
        assert!(drawn >= 8, "only {drawn} of the scenes parsed");
    }
}
