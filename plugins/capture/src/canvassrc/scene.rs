//! The scene model: a background and an ordered list of nodes (first drawn
//! first), parsed from JSON and checked completely up front so that drawing
//! never fails. The format is documented in `docs/capture.md`.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value};
use tiny_skia::{Color, LineCap, LineJoin, Path, PathBuilder, Pixmap, Rect};

use super::color::parse_color;
use super::pathdata::parse_path_data;
use super::render::DeviceCache;
use super::text::{Align, DEFAULT_FONT, FontBook, layout};

pub const MAX_NODES: usize = 10_000;
const MAX_TEXT_CHARS: usize = 10_000;
const MAX_POINTS: usize = 100_000;
const MAX_STROKE_WIDTH: f32 = 10_000.0;
const MAX_IMAGE_BYTES: usize = 32 << 20;
/// Default largest image side, in pixels (`max-image-size`).
pub const DEFAULT_MAX_IMAGE_SIDE: u32 = 4096;
/// Default budget of decoded image bytes for the whole scene (`max-image-bytes`).
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 64 << 20;

pub const NODE_TYPES: &[&str] = &["rect", "circle", "line", "path", "text", "image"];
const COMMON_FIELDS: &[&str] = &[
    "id",
    "type",
    "x",
    "y",
    "rotation",
    "scale",
    "opacity",
    "visible",
    "fill",
    "stroke",
    "stroke_width",
    "line_cap",
    "line_join",
];

fn type_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "rect" => &["width", "height", "radius"],
        "circle" => &["radius"],
        "line" => &["points", "closed"],
        "path" => &["d"],
        "text" => &["text", "size", "font", "align", "line_height"],
        "image" => &["src", "width", "height"],
        _ => &[],
    }
}

/// Why a scene or a patch was refused; the message is meant for users.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CanvasError {
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// Refused for a reason a sender can act on, with a stable code
    /// (`not-owner`, `not-allowed`, `too-many-nodes`, `image-too-large`,
    /// `image-budget-exceeded`).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
}

impl CanvasError {
    /// A stable name for the error, sent back to remote peers.
    pub fn code(&self) -> &'static str {
        match self {
            CanvasError::Json { .. } => "invalid-json",
            CanvasError::Invalid(_) => "invalid-patch",
            CanvasError::Refused { code, .. } => code,
        }
    }

    pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> Self {
        CanvasError::Refused {
            code,
            message: message.into(),
        }
    }

    /// Keeps the code of a refusal noted while building nodes, whose
    /// errors are text (see [`Resources::refusal`]).
    pub(crate) fn with_refusal(self, resources: &mut Resources) -> Self {
        match (resources.refusal.take(), self) {
            (Some(code), CanvasError::Invalid(message)) => CanvasError::Refused { code, message },
            (_, err) => err,
        }
    }
}

/// Limits on the images of a scene, checked from the PNG header before
/// anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest width or height, in pixels.
    pub max_side: u32,
    /// Decoded bytes (4 per pixel) of every image of the scene together.
    pub max_total_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_side: DEFAULT_MAX_IMAGE_SIDE,
            max_total_bytes: DEFAULT_MAX_IMAGE_BYTES,
        }
    }
}

impl From<serde_json::Error> for CanvasError {
    fn from(err: serde_json::Error) -> Self {
        let message = err.to_string();
        // serde_json appends " at line L column C": keep it structured once.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        CanvasError::Json {
            line: err.line(),
            column: err.column(),
            message,
        }
    }
}

/// What building nodes may use.
pub struct Resources<'a> {
    pub fonts: &'a mut FontBook,
    /// Whether images and fonts may be read from files. Off for patches
    /// that come from remote peers.
    pub allow_files: bool,
    pub images: ImageLimits,
    /// Decoded image bytes counted so far against `images.max_total_bytes`:
    /// the scene's images before a patch, plus every image it decodes.
    pub image_bytes: u64,
    /// The code of a refusal met while building a node (an image over a
    /// limit), whose error is text until the caller wraps it.
    pub(crate) refusal: Option<&'static str>,
}

impl<'a> Resources<'a> {
    pub fn new(fonts: &'a mut FontBook, allow_files: bool) -> Self {
        Resources {
            fonts,
            allow_files,
            images: ImageLimits::default(),
            image_bytes: 0,
            refusal: None,
        }
    }

    pub fn with_images(mut self, images: ImageLimits) -> Self {
        self.images = images;
        self
    }
}

#[derive(Clone)]
pub struct Scene {
    pub background: Color,
    pub nodes: Vec<Arc<Node>>,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            background: Color::BLACK,
            nodes: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Scene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scene")
            .field("background", &self.background)
            .field(
                "nodes",
                &self
                    .nodes
                    .iter()
                    .map(|n| (&n.id, n.spec.get("type")))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Scene {
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id.as_deref() == Some(id))
    }

    /// Decoded bytes of the scene's images (a shared image counts per node).
    pub fn image_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.image_bytes()).sum()
    }
}

/// Paths whose geometry is simple enough to be drawn without tiny-skia
/// (see `primitive`), in the node's own coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Form {
    /// From (0, 0) to (width, height), square corners.
    Rect {
        width: f32,
        height: f32,
    },
    /// Centred on (0, 0).
    Circle {
        radius: f32,
    },
    Other,
}

/// A checked node, ready to draw.
pub struct Node {
    pub id: Option<String>,
    /// The remote peer that made the node (`None`: the pipeline's, from
    /// the scene or a local patch); only it may change or remove it.
    pub owner: Option<String>,
    /// The fields as given, kept so that updates can merge into them.
    pub spec: Map<String, Value>,
    pub shape: Shape,
    pub x: f32,
    pub y: f32,
    pub rotation: f32,
    pub scale: (f32, f32),
    pub opacity: f32,
    pub visible: bool,
    pub fill: Option<Color>,
    pub stroke: Option<Stroke>,
    /// What the path is, when it is a plain rectangle or circle.
    pub form: Form,
    /// The outlines in frame coordinates, built when first drawn.
    pub device: DeviceCache,
}

pub enum Shape {
    Path(Arc<Path>),
    Image {
        pixmap: Arc<Pixmap>,
        width: f32,
        height: f32,
    },
    /// Text of only spaces, for example.
    Nothing,
}

#[derive(Clone, Copy)]
pub struct Stroke {
    pub color: Color,
    pub width: f32,
    pub cap: LineCap,
    pub join: LineJoin,
}

pub fn parse_scene(json: &str, resources: &mut Resources) -> Result<Scene, CanvasError> {
    let value: Value = serde_json::from_str(json)?;
    resources.image_bytes = 0;
    scene_from_value(&value, resources).map_err(|e| e.with_refusal(resources))
}

/// A scene is `{"background": colour, "nodes": [...]}` or just the array.
pub fn scene_from_value(value: &Value, resources: &mut Resources) -> Result<Scene, CanvasError> {
    let (background, nodes) = match value {
        Value::Array(nodes) => (None, nodes.as_slice()),
        Value::Object(map) => {
            if let Some(unknown) = map
                .keys()
                .find(|k| !matches!(k.as_str(), "background" | "nodes"))
            {
                return Err(invalid(format!(
                    "unknown scene field {unknown:?} (a scene has \"background\" and \"nodes\")"
                )));
            }
            let nodes = match map.get("nodes") {
                None => &[][..],
                Some(Value::Array(nodes)) => nodes.as_slice(),
                Some(_) => return Err(invalid("scene \"nodes\" must be an array")),
            };
            (map.get("background"), nodes)
        }
        _ => {
            return Err(invalid(
                "a scene is an object {\"background\": ..., \"nodes\": [...]} or an array of nodes",
            ));
        }
    };
    if nodes.len() > MAX_NODES {
        return Err(CanvasError::refused(
            "too-many-nodes",
            format!("a scene holds at most {MAX_NODES} nodes"),
        ));
    }
    let background = match background {
        None => Color::BLACK,
        Some(Value::String(s)) => {
            parse_color(s).map_err(|e| invalid(format!("background: {e}")))?
        }
        Some(_) => return Err(invalid("background must be a colour string")),
    };
    let mut scene = Scene {
        background,
        nodes: Vec::with_capacity(nodes.len()),
    };
    for (index, value) in nodes.iter().enumerate() {
        let Value::Object(spec) = value else {
            return Err(invalid(format!("node {index}: a node is a JSON object")));
        };
        let node = build_node(spec.clone(), resources).map_err(|e| in_node(index, spec, e))?;
        if let Some(id) = &node.id
            && scene.index_of(id).is_some()
        {
            return Err(invalid(format!("node {index}: id {id:?} is used twice")));
        }
        scene.nodes.push(Arc::new(node));
    }
    Ok(scene)
}

fn invalid(message: impl Into<String>) -> CanvasError {
    CanvasError::Invalid(message.into())
}

/// Prefixes an error with which node it is about.
pub fn in_node(index: usize, spec: &Map<String, Value>, err: String) -> CanvasError {
    let id = spec
        .get("id")
        .and_then(Value::as_str)
        .map(|id| format!(" (id {id:?})"))
        .unwrap_or_default();
    invalid(format!("node {index}{id}: {err}"))
}

pub fn build_node(spec: Map<String, Value>, resources: &mut Resources) -> Result<Node, String> {
    let kind = match spec.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err("\"type\" must be a string".into()),
        None => {
            return Err(format!(
                "\"type\" is missing (one of {})",
                NODE_TYPES.join(", ")
            ));
        }
    };
    if !NODE_TYPES.contains(&kind.as_str()) {
        return Err(format!(
            "unknown node type {kind:?}; expected one of {}",
            NODE_TYPES.join(", ")
        ));
    }
    let fields = Fields {
        spec: &spec,
        kind: &kind,
    };
    for key in spec.keys() {
        if !COMMON_FIELDS.contains(&key.as_str()) && !type_fields(&kind).contains(&key.as_str()) {
            return Err(format!(
                "unknown field {key:?} for a {kind}; it takes {}",
                type_fields(&kind).join(", ")
            ));
        }
    }
    let id = match spec.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err("\"id\" must be a string".into()),
    };

    let mut form = Form::Other;
    let shape = match kind.as_str() {
        "rect" => {
            let (w, h) = (fields.positive("width")?, fields.positive("height")?);
            let radius = fields
                .number("radius")?
                .unwrap_or(0.0)
                .clamp(0.0, w.min(h) / 2.0);
            if radius <= 0.0 {
                form = Form::Rect {
                    width: w,
                    height: h,
                };
            }
            Shape::Path(Arc::new(rect_path(w, h, radius)?))
        }
        "circle" => {
            let r = fields.positive("radius")?;
            form = Form::Circle { radius: r };
            Shape::Path(Arc::new(
                PathBuilder::from_circle(0.0, 0.0, r).ok_or("radius is too small")?,
            ))
        }
        "line" => Shape::Path(Arc::new(polyline(&fields)?)),
        "path" => Shape::Path(Arc::new(parse_path_data(
            fields.string("d")?.ok_or("\"d\" is missing")?,
        )?)),
        "text" => text_shape(&fields, resources)?,
        "image" => image_shape(&fields, resources)?,
        _ => unreachable!(),
    };

    let stroke = match fields.color("stroke")? {
        None => None,
        Some(color) => Some(Stroke {
            color,
            width: match fields.number("stroke_width")?.unwrap_or(1.0).max(0.0) {
                // Stroking a curve this wide takes tiny-skia a quarter
                // of a second (found by fuzzing), and draws nothing a
                // frame could show.
                width if width > MAX_STROKE_WIDTH => {
                    return Err(format!(
                        "stroke_width {width} is out of range (at most {MAX_STROKE_WIDTH})"
                    ));
                }
                width => width,
            },
            cap: match fields.string("line_cap")? {
                None | Some("butt") => LineCap::Butt,
                Some("round") => LineCap::Round,
                Some("square") => LineCap::Square,
                Some(other) => {
                    return Err(format!("line_cap {other:?}: use butt, round or square"));
                }
            },
            join: match fields.string("line_join")? {
                None | Some("miter") => LineJoin::Miter,
                Some("round") => LineJoin::Round,
                Some("bevel") => LineJoin::Bevel,
                Some(other) => {
                    return Err(format!("line_join {other:?}: use miter, round or bevel"));
                }
            },
        }),
    };
    // Like SVG, shapes are filled black unless told otherwise; an outline
    // is asked for by giving a stroke alone, and lines are never filled
    // unless a fill is given.
    let fill = match spec.get("fill") {
        Some(_) => fields.color("fill")?,
        None if stroke.is_some() || kind == "line" => None,
        None => Some(Color::BLACK),
    };
    let scale = match spec.get("scale") {
        None => (1.0, 1.0),
        Some(Value::Number(n)) => {
            let s = n.as_f64().unwrap_or(1.0) as f32;
            (s, s)
        }
        Some(Value::Array(pair)) if pair.len() == 2 => (
            pair[0].as_f64().ok_or("scale must hold numbers")? as f32,
            pair[1].as_f64().ok_or("scale must hold numbers")? as f32,
        ),
        Some(_) => return Err("scale is a number or [sx, sy]".into()),
    };
    if !scale.0.is_finite() || !scale.1.is_finite() {
        return Err("scale must be finite".into());
    }

    Ok(Node {
        id,
        owner: None,
        x: fields.number("x")?.unwrap_or(0.0),
        y: fields.number("y")?.unwrap_or(0.0),
        rotation: fields.number("rotation")?.unwrap_or(0.0),
        scale,
        opacity: fields.number("opacity")?.unwrap_or(1.0).clamp(0.0, 1.0),
        visible: match spec.get("visible") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("visible must be true or false".into()),
        },
        fill,
        stroke,
        form,
        shape,
        spec,
        device: DeviceCache::default(),
    })
}

/// Typed access to a node's fields with messages naming the field.
struct Fields<'a> {
    spec: &'a Map<String, Value>,
    kind: &'a str,
}

impl<'a> Fields<'a> {
    fn number(&self, key: &str) -> Result<Option<f32>, String> {
        match self.spec.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN) as f32;
                if v.is_finite() {
                    Ok(Some(v))
                } else {
                    Err(format!("{key} is out of range"))
                }
            }
            Some(other) => Err(format!("{key} must be a number, not {other}")),
        }
    }

    fn positive(&self, key: &str) -> Result<f32, String> {
        match self.number(key)? {
            Some(v) if v > 0.0 => Ok(v),
            Some(v) => Err(format!("{key} must be positive, not {v}")),
            None => Err(format!("a {} needs a number \"{key}\"", self.kind)),
        }
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.spec.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{key} must be a string, not {other}")),
        }
    }

    fn color(&self, key: &str) -> Result<Option<Color>, String> {
        match self.string(key)? {
            None | Some("none") => Ok(None),
            Some(text) => parse_color(text)
                .map(Some)
                .map_err(|e| format!("{key}: {e}")),
        }
    }
}

fn rect_path(w: f32, h: f32, r: f32) -> Result<Path, String> {
    if r <= 0.0 {
        let rect = Rect::from_xywh(0.0, 0.0, w, h).ok_or("width and height are too large")?;
        return Ok(PathBuilder::from_rect(rect));
    }
    // Quarter circles as cubics; 0.5523 puts the control points where a
    // circle's tangents meet at the right distance.
    let k = r * 0.552_284_8;
    let mut pb = PathBuilder::new();
    pb.move_to(r, 0.0);
    pb.line_to(w - r, 0.0);
    pb.cubic_to(w - r + k, 0.0, w, r - k, w, r);
    pb.line_to(w, h - r);
    pb.cubic_to(w, h - r + k, w - r + k, h, w - r, h);
    pb.line_to(r, h);
    pb.cubic_to(r - k, h, 0.0, h - r + k, 0.0, h - r);
    pb.line_to(0.0, r);
    pb.cubic_to(0.0, r - k, r - k, 0.0, r, 0.0);
    pb.close();
    pb.finish()
        .ok_or_else(|| "rounded rectangle is degenerate".into())
}

fn polyline(fields: &Fields) -> Result<Path, String> {
    let Some(Value::Array(points)) = fields.spec.get("points") else {
        return Err("a line needs \"points\": [[x, y], [x, y], ...]".into());
    };
    if points.len() < 2 || points.len() > MAX_POINTS {
        return Err(format!("a line needs 2 to {MAX_POINTS} points"));
    }
    let mut pb = PathBuilder::new();
    for (i, point) in points.iter().enumerate() {
        let xy = point
            .as_array()
            .filter(|p| p.len() == 2)
            .and_then(|p| Some((p[0].as_f64()? as f32, p[1].as_f64()? as f32)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .ok_or_else(|| format!("point {i} must be [x, y]"))?;
        if i == 0 {
            pb.move_to(xy.0, xy.1);
        } else {
            pb.line_to(xy.0, xy.1);
        }
    }
    if matches!(fields.spec.get("closed"), Some(Value::Bool(true))) {
        pb.close();
    }
    pb.finish().ok_or_else(|| "the line draws nothing".into())
}

fn text_shape(fields: &Fields, resources: &mut Resources) -> Result<Shape, String> {
    let text = fields.string("text")?.ok_or("a text needs \"text\"")?;
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("text is longer than {MAX_TEXT_CHARS} characters"));
    }
    let size = fields.number("size")?.unwrap_or(16.0);
    if !(0.0..=2000.0).contains(&size) {
        return Err(format!("size {size} is not between 0 and 2000"));
    }
    let align = match fields.string("align")? {
        None | Some("left") | Some("start") => Align::Left,
        Some("center") | Some("middle") => Align::Center,
        Some("right") | Some("end") => Align::Right,
        Some(other) => return Err(format!("align {other:?}: use left, center or right")),
    };
    let font_name = fields.string("font")?.unwrap_or(DEFAULT_FONT);
    let font = resources.fonts.font(font_name, resources.allow_files)?;
    let line_height = fields.number("line_height")?.unwrap_or(1.2);
    Ok(match layout(&font, text, size, align, line_height).path {
        Some(path) => Shape::Path(path),
        None => Shape::Nothing,
    })
}

fn image_shape(fields: &Fields, resources: &mut Resources) -> Result<Shape, String> {
    let src = fields.string("src")?.ok_or("an image needs \"src\"")?;
    let bytes = if let Some(data) = src.strip_prefix("data:") {
        let (meta, payload) = data.split_once(',').ok_or("data URL without a comma")?;
        if !meta.ends_with(";base64") {
            return Err("image data URLs must be base64 (data:image/png;base64,...)".into());
        }
        if payload.len() > MAX_IMAGE_BYTES * 4 / 3 + 4 {
            return Err(format!(
                "image is larger than {} MiB",
                MAX_IMAGE_BYTES >> 20
            ));
        }
        let payload = payload.trim();
        // The PNG header first (32 base64 characters hold its 24 bytes):
        // the size is checked before the rest is decoded.
        let head = base64::engine::general_purpose::STANDARD
            .decode(payload.get(..32).unwrap_or(payload))
            .map_err(|e| format!("image data URL: {e}"))?;
        check_image_size(&head, resources)?;
        base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|e| format!("image data URL: {e}"))?
    } else {
        if !resources.allow_files {
            return Err(
                "image files are not allowed here; send a data:image/png;base64 URL".into(),
            );
        }
        let meta = std::fs::metadata(src).map_err(|e| format!("image {src:?}: {e}"))?;
        if meta.len() > MAX_IMAGE_BYTES as u64 {
            return Err(format!(
                "image {src:?} is larger than {} MiB",
                MAX_IMAGE_BYTES >> 20
            ));
        }
        std::fs::read(src).map_err(|e| format!("image {src:?}: {e}"))?
    };
    let decoded = check_image_size(&bytes, resources)?;
    let pixmap =
        Pixmap::decode_png(&bytes).map_err(|e| format!("image: cannot decode PNG: {e}"))?;
    // The header said how big; the decoder agrees or the image is refused.
    if pixmap.data().len() as u64 != decoded {
        return Err("image: the PNG header does not match its pixels".into());
    }
    resources.image_bytes += decoded;
    let width = fields.number("width")?.unwrap_or(pixmap.width() as f32);
    let height = fields.number("height")?.unwrap_or(pixmap.height() as f32);
    Ok(Shape::Image {
        pixmap: Arc::new(pixmap),
        width,
        height,
    })
}

/// Reads the size from the PNG header and checks it against the limits:
/// the side, and the decoded bytes against what the scene has left.
fn check_image_size(bytes: &[u8], resources: &mut Resources) -> Result<u64, String> {
    let (w, h) = png_size(bytes).ok_or("image is not a PNG file")?;
    let limits = resources.images;
    if w > limits.max_side || h > limits.max_side {
        resources.refusal = Some("image-too-large");
        return Err(format!(
            "image is {w}x{h}; at most {} pixels a side (max-image-size)",
            limits.max_side
        ));
    }
    let decoded = u64::from(w) * u64::from(h) * 4;
    if resources.image_bytes + decoded > limits.max_total_bytes {
        resources.refusal = Some("image-budget-exceeded");
        return Err(format!(
            "image is {w}x{h} ({} KiB decoded); the scene's images may take {} KiB in all and \
             {} KiB are left (max-image-bytes)",
            decoded >> 10,
            limits.max_total_bytes >> 10,
            limits.max_total_bytes.saturating_sub(resources.image_bytes) >> 10
        ));
    }
    Ok(decoded)
}

impl Node {
    /// Decoded bytes of its image, 0 for other shapes.
    pub fn image_bytes(&self) -> u64 {
        match &self.shape {
            Shape::Image { pixmap, .. } => pixmap.data().len() as u64,
            _ => 0,
        }
    }
}

/// Width and height from the IHDR chunk, read before decoding so that a
/// hostile header cannot make us allocate gigabytes.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Scene, CanvasError> {
        let mut fonts = FontBook::default();
        parse_scene(json, &mut Resources::new(&mut fonts, false))
    }

    fn error(json: &str) -> String {
        parse(json).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_svg() {
        let scene = parse(
            r#"[{"type":"rect","width":1,"height":1},
                {"type":"rect","width":1,"height":1,"stroke":"red"},
                {"type":"line","points":[[0,0],[1,1]]}]"#,
        )
        .unwrap();
        assert_eq!(scene.background, Color::BLACK);
        assert_eq!(scene.nodes[0].fill, Some(Color::BLACK));
        assert_eq!(scene.nodes[1].fill, None);
        assert_eq!(scene.nodes[2].fill, None);
        assert!(scene.nodes[2].stroke.is_none());
    }

    #[test]
    fn errors_name_the_node_and_the_field() {
        assert_eq!(
            error(r#"{"nodes":[{"id":"x","type":"circle"}]}"#),
            "node 0 (id \"x\"): a circle needs a number \"radius\""
        );
        assert!(
            error(r#"[{"type":"rect","width":1,"height":1,"colour":"red"}]"#)
                .contains("unknown field \"colour\" for a rect")
        );
        assert!(
            error(r#"[{"type":"rect","width":-4,"height":1}]"#).contains("width must be positive")
        );
        assert!(
            error(r#"[{"type":"rect","width":"10","height":1}]"#)
                .contains("width must be a number")
        );
        assert!(
            error(r##"[{"type":"circle","radius":1,"fill":"#12"}]"##)
                .contains("fill: invalid colour")
        );
        assert!(
            error(
                r#"[{"id":"a","type":"circle","radius":1},{"id":"a","type":"circle","radius":1}]"#
            )
            .contains("used twice")
        );
        assert!(error(r##"{"nodes":[],"bg":"#000"}"##).contains("unknown scene field \"bg\""));
        assert!(
            error(r#"[{"type":"image","src":"data:image/png;base64,AAAA"}]"#).contains("not a PNG")
        );
        assert!(error("[1, 2").starts_with("invalid JSON at line 1 column 5"));
        assert!(
            error(r#"[{"type":"rect","width":1,"height":1,"stroke":"red","stroke_width":2e9}]"#)
                .contains("stroke_width 2000000000 is out of range (at most 10000)")
        );
    }

    #[test]
    fn png_header_is_checked_before_decoding() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((100_000, 100_000)));
        let url = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        );
        let err = error(&format!(r#"[{{"type":"image","src":"{url}"}}]"#));
        assert!(err.contains("at most 4096 pixels a side"), "{err}");
    }
}
