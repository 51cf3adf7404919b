//! The screens and windows a user can capture, without GStreamer: what
//! `peer devices` prints and what the device provider turns into devices.
//!
//! ```no_run
//! for device in gstpeercapture::devices::list_screens_and_windows(None)? {
//!     println!("{}: {}", device.display_name, device.launch_fragment());
//! }
//! # Ok::<(), gstpeercapture::devices::DeviceError>(())
//! ```

use crate::geometry::Rect;
use crate::x11::{Display, X11Error};

/// Name of the element that captures every listed device.
pub const ELEMENT_NAME: &str = "screencapsrc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureKind {
    /// The whole X display (all monitors).
    Display,
    /// One monitor, captured as a region of the display.
    Monitor,
    /// One application window.
    Window,
}

/// One thing `screencapsrc` can capture, with the properties that select it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureDevice {
    pub kind: CaptureKind,
    /// Human-readable, e.g. `Screen :0 (1920x1080)` or `Window "Terminal"`.
    pub display_name: String,
    /// Where it is on the display, in pixels.
    pub rect: Rect,
    /// `screencapsrc` property names and values (as `gst-launch-1.0` syntax
    /// would spell them) that select this device.
    pub properties: Vec<(String, String)>,
}

impl CaptureDevice {
    /// The element with its properties, ready for `gst-launch-1.0`, e.g.
    /// `screencapsrc display-name=:0 window-id=0x1e00004`.
    pub fn launch_fragment(&self) -> String {
        let mut fragment = ELEMENT_NAME.to_owned();
        for (name, value) in &self.properties {
            let needs_quotes = value.is_empty() || value.contains(|c: char| c.is_whitespace());
            if needs_quotes {
                fragment.push_str(&format!(" {name}=\"{}\"", value.replace('"', "\\\"")));
            } else {
                fragment.push_str(&format!(" {name}={value}"));
            }
        }
        fragment
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    X11(#[from] X11Error),
}

/// Lists the display, each of its monitors (when there are several) and
/// every application window of X display `display` (`None`: `$DISPLAY`).
pub fn list_screens_and_windows(display: Option<&str>) -> Result<Vec<CaptureDevice>, DeviceError> {
    let display = Display::open(display)?;
    let display_prop = ("display-name".to_owned(), display.name.clone());
    let screen = display.screen_rect;
    let mut devices = vec![CaptureDevice {
        kind: CaptureKind::Display,
        display_name: format!(
            "Screen {} ({}x{})",
            display.name, screen.width, screen.height
        ),
        rect: screen,
        properties: vec![display_prop.clone()],
    }];

    let monitors = display.monitors()?;
    // One monitor covering the display is the display itself: listing it
    // twice would only confuse a picker.
    if monitors.len() > 1 {
        for monitor in monitors {
            let r = monitor.rect;
            devices.push(CaptureDevice {
                kind: CaptureKind::Monitor,
                display_name: format!(
                    "Monitor {}{} ({}x{} at {},{})",
                    monitor.name,
                    if monitor.primary { " (primary)" } else { "" },
                    r.width,
                    r.height,
                    r.x,
                    r.y
                ),
                rect: r,
                properties: vec![
                    display_prop.clone(),
                    ("x".to_owned(), r.x.to_string()),
                    ("y".to_owned(), r.y.to_string()),
                    ("width".to_owned(), r.width.to_string()),
                    ("height".to_owned(), r.height.to_string()),
                ],
            });
        }
    }

    for window in display.application_windows()? {
        if !window.viewable {
            continue;
        }
        devices.push(CaptureDevice {
            kind: CaptureKind::Window,
            display_name: format!(
                "Window {:?} ({}x{})",
                window.title, window.rect.width, window.rect.height
            ),
            rect: window.rect,
            properties: vec![
                display_prop.clone(),
                ("window-id".to_owned(), format!("{:#x}", window.id)),
            ],
        });
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_fragment_quotes_values_with_spaces() {
        let device = CaptureDevice {
            kind: CaptureKind::Window,
            display_name: "Window".into(),
            rect: Rect::new(0, 0, 1, 1),
            properties: vec![
                ("display-name".into(), ":3".into()),
                ("window-name".into(), "My \"big\" term".into()),
            ],
        };
        assert_eq!(
            device.launch_fragment(),
            r#"screencapsrc display-name=:3 window-name="My \"big\" term""#
        );
    }
}
