//! SVG path data (`d="M 0 0 L 10 10 Z"`) to tiny-skia paths: the M, L, H,
//! V, C, S, Q, T and Z commands, absolute and relative. Arcs (A) are not
//! supported; circles and rounded rectangles have node types of their own.

use tiny_skia::{Path, PathBuilder};

pub fn parse_path_data(d: &str) -> Result<Path, String> {
    let tokens = tokenize(d)?;
    let mut builder = PathBuilder::new();
    let mut i = 0;
    let mut command = None::<char>;
    let (mut cx, mut cy) = (0.0f32, 0.0f32);
    let (mut start_x, mut start_y) = (0.0f32, 0.0f32);
    // Last control point, for the smooth S and T forms.
    let mut last_cubic_ctrl: Option<(f32, f32)> = None;
    let mut last_quad_ctrl: Option<(f32, f32)> = None;

    let number = |i: &mut usize| -> Result<f32, String> {
        match tokens.get(*i) {
            Some(Token::Number(n)) => {
                *i += 1;
                Ok(*n)
            }
            _ => Err(format!("path data {d:?}: a number is missing")),
        }
    };

    while i < tokens.len() {
        if let Token::Command(c) = tokens[i] {
            command = Some(c);
            i += 1;
        }
        let Some(c) = command else {
            return Err(format!(
                "path data {d:?} must start with a command such as M"
            ));
        };
        let relative = c.is_ascii_lowercase();
        let (ox, oy) = if relative { (cx, cy) } else { (0.0, 0.0) };
        let mut next_cubic = None;
        let mut next_quad = None;
        match c.to_ascii_uppercase() {
            'M' => {
                let (x, y) = (number(&mut i)? + ox, number(&mut i)? + oy);
                builder.move_to(x, y);
                (cx, cy, start_x, start_y) = (x, y, x, y);
                // Further coordinate pairs after a moveto are linetos.
                command = Some(if relative { 'l' } else { 'L' });
            }
            'L' => {
                (cx, cy) = (number(&mut i)? + ox, number(&mut i)? + oy);
                builder.line_to(cx, cy);
            }
            'H' => {
                cx = number(&mut i)? + ox;
                builder.line_to(cx, cy);
            }
            'V' => {
                cy = number(&mut i)? + oy;
                builder.line_to(cx, cy);
            }
            'C' => {
                let (x1, y1) = (number(&mut i)? + ox, number(&mut i)? + oy);
                let (x2, y2) = (number(&mut i)? + ox, number(&mut i)? + oy);
                (cx, cy) = (number(&mut i)? + ox, number(&mut i)? + oy);
                builder.cubic_to(x1, y1, x2, y2, cx, cy);
                next_cubic = Some((x2, y2));
            }
            'S' => {
                let (x1, y1) =
                    last_cubic_ctrl.map_or((cx, cy), |(px, py)| (2.0 * cx - px, 2.0 * cy - py));
                let (x2, y2) = (number(&mut i)? + ox, number(&mut i)? + oy);
                (cx, cy) = (number(&mut i)? + ox, number(&mut i)? + oy);
                builder.cubic_to(x1, y1, x2, y2, cx, cy);
                next_cubic = Some((x2, y2));
            }
            'Q' => {
                let (x1, y1) = (number(&mut i)? + ox, number(&mut i)? + oy);
                (cx, cy) = (number(&mut i)? + ox, number(&mut i)? + oy);
                builder.quad_to(x1, y1, cx, cy);
                next_quad = Some((x1, y1));
            }
            'T' => {
                let (x1, y1) =
                    last_quad_ctrl.map_or((cx, cy), |(px, py)| (2.0 * cx - px, 2.0 * cy - py));
                (cx, cy) = (number(&mut i)? + ox, number(&mut i)? + oy);
                builder.quad_to(x1, y1, cx, cy);
                next_quad = Some((x1, y1));
            }
            'Z' => {
                builder.close();
                (cx, cy) = (start_x, start_y);
                // Z takes no numbers: one after it would be read by Z
                // again and again, forever (found by fuzzing).
                if let Some(Token::Number(n)) = tokens.get(i) {
                    return Err(format!(
                        "path data {d:?}: a number ({n}) after Z, which takes none; start the next \
                         part with a command such as M or L"
                    ));
                }
            }
            'A' => {
                return Err(format!(
                    "path data {d:?}: arc commands (A) are not supported; use C curves or a circle node"
                ));
            }
            other => return Err(format!("path data {d:?}: unknown command {other:?}")),
        }
        last_cubic_ctrl = next_cubic;
        last_quad_ctrl = next_quad;
    }
    builder
        .finish()
        .ok_or_else(|| format!("path data {d:?} draws nothing"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Command(char),
    Number(f32),
}

fn tokenize(d: &str) -> Result<Vec<Token>, String> {
    let bytes = d.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_whitespace() || c == ',' {
            i += 1;
        } else if c.is_ascii_alphabetic() && c != 'e' && c != 'E' {
            tokens.push(Token::Command(c));
            i += 1;
        } else if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' {
            let start = i;
            i += 1;
            let mut seen_dot = c == '.';
            while i < bytes.len() {
                let n = bytes[i] as char;
                if n.is_ascii_digit() {
                    i += 1;
                } else if n == '.' && !seen_dot {
                    seen_dot = true;
                    i += 1;
                } else if (n == 'e' || n == 'E')
                    && bytes
                        .get(i + 1)
                        .is_some_and(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+')
                {
                    i += 2;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    break;
                } else {
                    break;
                }
            }
            let text = &d[start..i];
            let value: f32 = text
                .parse()
                .map_err(|_| format!("path data {d:?}: bad number {text:?}"))?;
            if !value.is_finite() {
                return Err(format!("path data {d:?}: number {text:?} is out of range"));
            }
            tokens.push(Token::Number(value));
        } else {
            return Err(format!("path data {d:?}: unexpected character {c:?}"));
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_after_z_is_refused_not_looped_on() {
        let err = parse_path_data("M1 1 L 5 5 Z 01 01 Q 81 60 51 1").unwrap_err();
        assert!(
            err.contains("a number (1) after Z, which takes none"),
            "{err}"
        );
        assert!(parse_path_data("M0 0 L 5 5 Z M 1 1 L 2 3 Z").is_ok());
    }

    #[test]
    fn triangle_bounds() {
        let path = parse_path_data("M10 10 L 50 10 L 30 40 Z").unwrap();
        let b = path.bounds();
        assert_eq!(
            (b.left(), b.top(), b.right(), b.bottom()),
            (10.0, 10.0, 50.0, 40.0)
        );
    }

    #[test]
    fn relative_and_implicit_commands() {
        // "m" followed by extra pairs draws relative lines.
        let path = parse_path_data("m10,10 20,0 0,20h-20z").unwrap();
        let b = path.bounds();
        assert_eq!(
            (b.left(), b.top(), b.right(), b.bottom()),
            (10.0, 10.0, 30.0, 30.0)
        );
    }

    #[test]
    fn compact_numbers() {
        let tokens = tokenize("M.5.5-1e1-2").unwrap();
        assert_eq!(
            tokens,
            vec![
                Token::Command('M'),
                Token::Number(0.5),
                Token::Number(0.5),
                Token::Number(-10.0),
                Token::Number(-2.0)
            ]
        );
    }

    #[test]
    fn curves_parse() {
        assert!(parse_path_data("M0 0 C 10 0 10 10 0 10 S -10 20 0 20 Q 5 25 0 30 T 0 40").is_ok());
    }

    #[test]
    fn errors_are_specific() {
        assert!(parse_path_data("L 1 2").is_ok()); // starts from the origin
        assert!(
            parse_path_data("10 10")
                .unwrap_err()
                .contains("must start with a command")
        );
        assert!(
            parse_path_data("M 0 0 A 5 5 0 0 1 10 10")
                .unwrap_err()
                .contains("arc")
        );
        assert!(
            parse_path_data("M 0")
                .unwrap_err()
                .contains("number is missing")
        );
        assert!(
            parse_path_data("M 0 0 X")
                .unwrap_err()
                .contains("unknown command")
        );
    }
}
