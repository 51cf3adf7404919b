//! CSS-style colours: `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`,
//! `rgb(r, g, b)`, `rgba(r, g, b, a)` and a few names.

use tiny_skia::Color;

const NAMED: &[(&str, [u8; 4])] = &[
    ("transparent", [0, 0, 0, 0]),
    ("black", [0, 0, 0, 255]),
    ("white", [255, 255, 255, 255]),
    ("red", [255, 0, 0, 255]),
    ("lime", [0, 255, 0, 255]),
    ("green", [0, 128, 0, 255]),
    ("blue", [0, 0, 255, 255]),
    ("yellow", [255, 255, 0, 255]),
    ("cyan", [0, 255, 255, 255]),
    ("aqua", [0, 255, 255, 255]),
    ("magenta", [255, 0, 255, 255]),
    ("fuchsia", [255, 0, 255, 255]),
    ("gray", [128, 128, 128, 255]),
    ("grey", [128, 128, 128, 255]),
    ("silver", [192, 192, 192, 255]),
    ("maroon", [128, 0, 0, 255]),
    ("navy", [0, 0, 128, 255]),
    ("olive", [128, 128, 0, 255]),
    ("purple", [128, 0, 128, 255]),
    ("teal", [0, 128, 128, 255]),
    ("orange", [255, 165, 0, 255]),
];

pub fn parse_color(text: &str) -> Result<Color, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "invalid colour {text:?} (use #rgb, #rrggbb, #rrggbbaa, rgb(r,g,b), \
             rgba(r,g,b,a) or a name such as red)"
        )
    };
    if let Some(hex) = text.strip_prefix('#') {
        let digits: Vec<u8> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let rgba = match digits.len() {
            3 | 4 => {
                let mut v: Vec<u8> = digits.iter().map(|d| d * 17).collect();
                v.resize(4, 255);
                v
            }
            6 | 8 => {
                let mut v: Vec<u8> = digits.chunks(2).map(|p| p[0] * 16 + p[1]).collect();
                v.resize(4, 255);
                v
            }
            _ => return Err(bad()),
        };
        return Ok(Color::from_rgba8(rgba[0], rgba[1], rgba[2], rgba[3]));
    }
    let lower = text.to_ascii_lowercase();
    if let Some(args) = lower
        .strip_prefix("rgba(")
        .or_else(|| lower.strip_prefix("rgb("))
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let parts: Vec<&str> = args.split(',').map(str::trim).collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(bad());
        }
        let channel = |s: &str| -> Result<u8, String> {
            let v: f32 = s.parse().map_err(|_| bad())?;
            if !(0.0..=255.0).contains(&v) {
                return Err(bad());
            }
            Ok(v.round() as u8)
        };
        let alpha = match parts.get(3) {
            Some(a) => {
                let a: f32 = a.parse().map_err(|_| bad())?;
                if !(0.0..=1.0).contains(&a) {
                    return Err(bad());
                }
                (a * 255.0).round() as u8
            }
            None => 255,
        };
        return Ok(Color::from_rgba8(
            channel(parts[0])?,
            channel(parts[1])?,
            channel(parts[2])?,
            alpha,
        ));
    }
    NAMED
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, c)| Color::from_rgba8(c[0], c[1], c[2], c[3]))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgba8(c: Color) -> [u8; 4] {
        let c = c.to_color_u8();
        [c.red(), c.green(), c.blue(), c.alpha()]
    }

    #[test]
    fn hex_forms() {
        assert_eq!(rgba8(parse_color("#f00").unwrap()), [255, 0, 0, 255]);
        assert_eq!(rgba8(parse_color("#00ff0080").unwrap()), [0, 255, 0, 128]);
        assert_eq!(
            rgba8(parse_color(" #336699 ").unwrap()),
            [0x33, 0x66, 0x99, 255]
        );
        assert_eq!(rgba8(parse_color("#0008").unwrap()), [0, 0, 0, 136]);
    }

    #[test]
    fn functional_and_named_forms() {
        assert_eq!(rgba8(parse_color("rgb(1, 2, 3)").unwrap()), [1, 2, 3, 255]);
        assert_eq!(
            rgba8(parse_color("RGBA(10,20,30,0.5)").unwrap()),
            [10, 20, 30, 128]
        );
        assert_eq!(rgba8(parse_color("orange").unwrap()), [255, 165, 0, 255]);
    }

    #[test]
    fn bad_colours_say_what_is_accepted() {
        for bad in [
            "#12",
            "#ggg",
            "rgb(1,2)",
            "rgb(300,0,0)",
            "rgba(0,0,0,2)",
            "blurple",
        ] {
            let err = parse_color(bad).unwrap_err();
            assert!(err.contains("#rrggbb"), "{err}");
        }
    }
}
