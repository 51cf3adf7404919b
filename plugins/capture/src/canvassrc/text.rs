//! Text as vector paths: glyph outlines from ab_glyph, laid out on a
//! baseline and turned into one tiny-skia path per text node, so text is
//! antialiased, transformed and coloured exactly like any other shape.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, OnceLock};

use ab_glyph::{Font, FontArc, OutlineCurve};
use tiny_skia::{Path, PathBuilder};

pub const DEFAULT_FONT: &str = "DejaVu Sans";

const FONT_DIRS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// Fonts loaded so far, by the name a scene used for them.
#[derive(Default)]
pub struct FontBook {
    loaded: HashMap<String, FontArc>,
}

impl FontBook {
    /// A font by family-style name as in the file name ("DejaVu Sans",
    /// "DejaVu Sans Bold", "DejaVuSansMono") looked up in the system font
    /// folders, or by file path when `allow_files`.
    pub fn font(&mut self, name: &str, allow_files: bool) -> Result<FontArc, String> {
        if let Some(font) = self.loaded.get(name) {
            return Ok(font.clone());
        }
        let path = if name.contains('/') {
            if !allow_files {
                return Err(format!(
                    "font {name:?}: font files are not allowed here; use a font name such as {DEFAULT_FONT:?}"
                ));
            }
            PathBuf::from(name)
        } else {
            find_system_font(name).ok_or_else(|| {
                format!(
                    "font {name:?} not found in {}; installed e.g. {DEFAULT_FONT:?} \
                     (Debian package fonts-dejavu-core)",
                    FONT_DIRS.join(", ")
                )
            })?
        };
        let data = std::fs::read(&path).map_err(|e| format!("font {}: {e}", path.display()))?;
        let font = FontArc::try_from_vec(data)
            .map_err(|_| format!("font {}: not a TrueType/OpenType font", path.display()))?;
        self.loaded.insert(name.to_owned(), font.clone());
        Ok(font)
    }
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Index of every font file under the system folders, by normalised stem.
fn system_fonts() -> &'static HashMap<String, PathBuf> {
    static INDEX: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        let mut folders: Vec<PathBuf> = FONT_DIRS.iter().map(PathBuf::from).collect();
        while let Some(folder) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    folders.push(path);
                } else if has_font_extension(&path)
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                {
                    index.entry(normalize(stem)).or_insert(path);
                }
            }
        }
        index
    })
}

fn has_font_extension(path: &FsPath) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "ttf" | "otf"))
}

fn find_system_font(name: &str) -> Option<PathBuf> {
    let wanted = normalize(name);
    let fonts = system_fonts();
    fonts
        .get(&wanted)
        .or_else(|| fonts.get(&format!("{wanted}regular")))
        .or_else(|| fonts.get(&format!("{wanted}book")))
        .cloned()
}

/// A laid-out text: its outline path (origin at the first baseline's
/// anchor) and its box relative to that origin.
pub struct TextShape {
    pub path: Option<Arc<Path>>,
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

/// Lays `text` out at `size` pixels per em; lines are split on '\n' and
/// `line_height` em apart; `align` places each line's start, middle or end
/// on x = 0.
pub fn layout(font: &FontArc, text: &str, size: f32, align: Align, line_height: f32) -> TextShape {
    let units = font.units_per_em().unwrap_or(1000.0);
    let scale = size / units;
    let ascent = font.ascent_unscaled() * scale;
    let descent = font.descent_unscaled() * scale;
    let mut builder = PathBuilder::new();
    let mut widest = 0.0f32;
    let mut left_most = f32::MAX;
    let lines: Vec<&str> = text.split('\n').collect();
    for (line_no, line) in lines.iter().enumerate() {
        let baseline = line_no as f32 * size * line_height;
        let glyphs: Vec<_> = line.chars().map(|c| font.glyph_id(c)).collect();
        let mut advances = Vec::with_capacity(glyphs.len());
        let mut width = 0.0;
        for (i, &glyph) in glyphs.iter().enumerate() {
            if i > 0 {
                width += font.kern_unscaled(glyphs[i - 1], glyph) * scale;
            }
            advances.push(width);
            width += font.h_advance_unscaled(glyph) * scale;
        }
        let start = match align {
            Align::Left => 0.0,
            Align::Center => -width / 2.0,
            Align::Right => -width,
        };
        widest = widest.max(width);
        left_most = left_most.min(start);
        for (&glyph, &offset) in glyphs.iter().zip(&advances) {
            if let Some(outline) = font.outline(glyph) {
                // Font units point up; the canvas' y axis points down.
                let at =
                    |p: ab_glyph::Point| (start + offset + p.x * scale, baseline - p.y * scale);
                append_outline(&mut builder, &outline.curves, at);
            }
        }
    }
    let line_count = lines.len() as f32;
    TextShape {
        path: builder.finish().map(Arc::new),
        left: if left_most == f32::MAX {
            0.0
        } else {
            left_most
        },
        top: -ascent,
        width: widest,
        height: ascent - descent + (line_count - 1.0) * size * line_height,
    }
}

fn append_outline(
    builder: &mut PathBuilder,
    curves: &[OutlineCurve],
    at: impl Fn(ab_glyph::Point) -> (f32, f32),
) {
    let mut pen: Option<(f32, f32)> = None;
    for curve in curves {
        let first = match curve {
            OutlineCurve::Line(p, _)
            | OutlineCurve::Quad(p, _, _)
            | OutlineCurve::Cubic(p, _, _, _) => at(*p),
        };
        // ab_glyph gives segments only: a segment that does not continue
        // from the pen starts a new contour.
        if pen != Some(first) {
            if pen.is_some() {
                builder.close();
            }
            builder.move_to(first.0, first.1);
        }
        let end = match curve {
            OutlineCurve::Line(_, p1) => {
                let p1 = at(*p1);
                builder.line_to(p1.0, p1.1);
                p1
            }
            OutlineCurve::Quad(_, c, p2) => {
                let (c, p2) = (at(*c), at(*p2));
                builder.quad_to(c.0, c.1, p2.0, p2.1);
                p2
            }
            OutlineCurve::Cubic(_, c1, c2, p3) => {
                let (c1, c2, p3) = (at(*c1), at(*c2), at(*p3));
                builder.cubic_to(c1.0, c1.1, c2.0, c2.1, p3.0, p3.1);
                p3
            }
        };
        pen = Some(end);
    }
    if pen.is_some() {
        builder.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_font_is_found_and_text_has_a_box() {
        let mut book = FontBook::default();
        let font = book
            .font(DEFAULT_FONT, false)
            .expect("fonts-dejavu-core missing");
        let shape = layout(&font, "Hello", 40.0, Align::Left, 1.2);
        let bounds = shape.path.unwrap().bounds();
        assert!(
            bounds.width() > 60.0 && bounds.width() < 140.0,
            "{bounds:?}"
        );
        // Capitals reach about 0.73 em above the baseline, nothing far below.
        assert!(bounds.top() < -25.0 && bounds.bottom() <= 1.0, "{bounds:?}");
        assert!(shape.top < bounds.top());
    }

    #[test]
    fn alignment_moves_the_line() {
        let mut book = FontBook::default();
        let font = book.font("DejaVuSans", false).unwrap();
        let centred = layout(&font, "abc", 20.0, Align::Center, 1.2);
        let right = layout(&font, "abc", 20.0, Align::Right, 1.2);
        assert!((centred.left + centred.width / 2.0).abs() < 0.01);
        assert!((right.left + right.width).abs() < 0.01);
    }

    #[test]
    fn unknown_fonts_and_files_are_refused_clearly() {
        let mut book = FontBook::default();
        assert!(
            book.font("No Such Font", true)
                .unwrap_err()
                .contains("not found")
        );
        let err = book
            .font("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", false)
            .unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
    }
}
