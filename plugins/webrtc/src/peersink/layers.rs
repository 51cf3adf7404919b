//! Quality layers: the `video-layers` property, parsed and checked.
//!
//! A layer is one encoding of a video input (picture size and bitrate);
//! every viewer receives exactly one layer of each video input, chosen by
//! its own feedback (see adaptation.rs). Layers cost one encoder each,
//! however many viewers watch them.
//!
//! Syntax: comma-separated `WIDTHxHEIGHT@BITRATE`, the bitrate in kbit/s
//! or with a unit (`600`, `600k`, `2M`, `2.5M`), e.g.
//! `1280x720@2M,640x360@600,320x180@150`. Order does not matter: layers
//! are kept highest bitrate first, and that index is the layer number
//! reported in stats (0 is the best).

use std::fmt;

/// At most this many layers: each one is an encoder running all the time.
pub const MAX_LAYERS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Picture size; `None` for the default layer, which keeps the input's size.
    pub size: Option<(u32, u32)>,
    /// Bits per second.
    pub bitrate: u32,
}

impl LayerSpec {
    /// The single layer used when `video-layers` is unset.
    pub fn source_size(bitrate: u32) -> LayerSpec {
        LayerSpec {
            size: None,
            bitrate,
        }
    }
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.size {
            Some((width, height)) => write!(f, "{width}x{height}@{}k", self.bitrate / 1000),
            None => write!(f, "source@{}k", self.bitrate / 1000),
        }
    }
}

/// Parses `video-layers`; an empty text means one layer at the input's
/// size and `default_bitrate`.
pub fn parse_layers(text: &str, default_bitrate: u32) -> Result<Vec<LayerSpec>, String> {
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    if parts.is_empty() {
        return Ok(vec![LayerSpec::source_size(default_bitrate)]);
    }
    if parts.len() > MAX_LAYERS {
        return Err(format!(
            "video-layers: {} layers given, at most {MAX_LAYERS} are allowed",
            parts.len()
        ));
    }
    let mut layers = parts
        .iter()
        .map(|part| parse_layer(part).map_err(|err| format!("video-layers: \"{part}\": {err}")))
        .collect::<Result<Vec<_>, _>>()?;
    layers.sort_by_key(|layer| std::cmp::Reverse(layer.bitrate));
    for pair in layers.windows(2) {
        if pair[0].bitrate == pair[1].bitrate {
            return Err(format!(
                "video-layers: two layers at {} kbit/s; each layer needs its own bitrate",
                pair[0].bitrate / 1000
            ));
        }
    }
    Ok(layers)
}

fn parse_layer(text: &str) -> Result<LayerSpec, String> {
    let (size, bitrate) = text
        .split_once('@')
        .ok_or("expected WIDTHxHEIGHT@BITRATE, e.g. 640x360@600")?;
    let (width, height) = size
        .trim()
        .split_once(['x', 'X'])
        .ok_or("the size must be WIDTHxHEIGHT, e.g. 640x360")?;
    let dimension = |text: &str, what: &str| -> Result<u32, String> {
        let value: u32 = text
            .trim()
            .parse()
            .map_err(|_| format!("{what} \"{text}\" is not a whole number"))?;
        if !(16..=7680).contains(&value) || !value.is_multiple_of(2) {
            return Err(format!("{what} {value} must be even and within 16-7680"));
        }
        Ok(value)
    };
    let size = (dimension(width, "width")?, dimension(height, "height")?);
    let bitrate = parse_bitrate(bitrate.trim())?;
    if !(30_000..=50_000_000).contains(&bitrate) {
        return Err(format!(
            "bitrate {} kbit/s must be within 30 kbit/s - 50 Mbit/s",
            bitrate / 1000
        ));
    }
    Ok(LayerSpec {
        size: Some(size),
        bitrate,
    })
}

/// `600` and `600k` are kbit/s, `2M` and `2.5M` Mbit/s.
fn parse_bitrate(text: &str) -> Result<u32, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((index, _)) => (&text[..index], &text[index..]),
        None => (text, "k"),
    };
    let scale = match unit {
        "k" | "K" | "kbps" => 1_000.0,
        "M" | "m" | "Mbps" => 1_000_000.0,
        other => return Err(format!("unknown bitrate unit \"{other}\" (use k or M)")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("bitrate \"{text}\" is not a number"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("bitrate \"{text}\" must be positive"));
    }
    Ok((value * scale).round().min(u32::MAX as f64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_one_layer_at_the_source_size() {
        assert_eq!(
            parse_layers(" ", 2_000_000).unwrap(),
            vec![LayerSpec::source_size(2_000_000)]
        );
    }

    #[test]
    fn layers_are_sorted_best_first_with_units() {
        let layers = parse_layers("320x180@150, 1280x720@2M,640x360@600k", 1).unwrap();
        let summary: Vec<_> = layers.iter().map(|l| (l.size, l.bitrate)).collect();
        assert_eq!(
            summary,
            vec![
                (Some((1280, 720)), 2_000_000),
                (Some((640, 360)), 600_000),
                (Some((320, 180)), 150_000)
            ]
        );
        assert_eq!(layers[1].to_string(), "640x360@600k");
        assert_eq!(
            parse_layers("640x360@2.5M", 1).unwrap()[0].bitrate,
            2_500_000
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, mentions) in [
            ("640x360", "WIDTHxHEIGHT@BITRATE"),
            ("640*360@600", "WIDTHxHEIGHT"),
            ("641x360@600", "641"),
            ("640x360@fast", "fast"),
            ("640x360@600,320x180@600", "600 kbit/s"),
            ("640x360@10", "30 kbit/s"),
            ("640x360@600G", "unit"),
            (
                "16x16@100,32x32@200,64x64@300,128x128@400,256x256@500",
                "at most 4",
            ),
        ] {
            let err = parse_layers(text, 1).unwrap_err();
            assert!(err.contains(mentions), "{text}: {err}");
        }
    }
}
