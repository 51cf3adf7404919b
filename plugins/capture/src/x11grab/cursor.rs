//! The mouse pointer drawn into grabbed frames.
//!
//! The X server never puts the cursor into what `GetImage` returns, so it
//! is blended in here. Its image (XFixes `GetCursorImage`, premultiplied
//! ARGB) is fetched only when XFixes reports a new shape; its position
//! comes with every grab. This file is the pure part: blending an image
//! at a position into a frame of a 32-bit layout.

use crate::geometry::Rect;

/// Where red, green and blue sit in each 4-byte pixel of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelOrder {
    pub r: usize,
    pub g: usize,
    pub b: usize,
}

impl ChannelOrder {
    /// The 32-bit formats X servers use; `None` for any other (those
    /// displays are refused when capture starts).
    pub fn of(format: gst_video::VideoFormat) -> Option<Self> {
        use gst_video::VideoFormat as F;
        let (r, g, b) = match format {
            F::Bgrx | F::Bgra => (2, 1, 0),
            F::Rgbx | F::Rgba => (0, 1, 2),
            F::Xrgb | F::Argb => (1, 2, 3),
            F::Xbgr | F::Abgr => (3, 2, 1),
            _ => return None,
        };
        Some(Self { r, g, b })
    }
}

/// A cursor image as XFixes gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorImage {
    pub width: u32,
    pub height: u32,
    /// The pixel at the pointer's position.
    pub xhot: u32,
    pub yhot: u32,
    /// Premultiplied `0xAARRGGBB`, row by row.
    pub pixels: Vec<u32>,
}

/// Blends `cursor`, its hot spot at `pointer` (root coordinates), into
/// `frame`: the pixels of `area`, rows of `stride` bytes. Whatever of the
/// cursor lies outside the area is left out.
pub fn composite(
    frame: &mut [u8],
    stride: usize,
    area: Rect,
    order: ChannelOrder,
    cursor: &CursorImage,
    pointer: (i32, i32),
) {
    if cursor.pixels.len() < (cursor.width * cursor.height) as usize {
        return;
    }
    let image = Rect::new(
        pointer.0.saturating_sub(cursor.xhot as i32),
        pointer.1.saturating_sub(cursor.yhot as i32),
        cursor.width,
        cursor.height,
    );
    let Some(visible) = image.intersection(&area) else {
        return;
    };
    for row in 0..visible.height as i64 {
        let y = visible.y as i64 + row;
        let src_row = (y - image.y as i64) as usize * cursor.width as usize;
        let dst_row = (y - area.y as i64) as usize * stride;
        for col in 0..visible.width as i64 {
            let x = visible.x as i64 + col;
            let argb = cursor.pixels[src_row + (x - image.x as i64) as usize];
            let alpha = argb >> 24;
            if alpha == 0 {
                continue;
            }
            let at = dst_row + (x - area.x as i64) as usize * 4;
            let Some(pixel) = frame.get_mut(at..at + 4) else {
                return;
            };
            let keep = 255 - alpha;
            for (offset, shift) in [(order.r, 16), (order.g, 8), (order.b, 0)] {
                let src = (argb >> shift) & 0xff;
                let dst = pixel[offset] as u32;
                // Premultiplied "over", rounded: src + dst * (1 - alpha).
                let blended = src + (dst * keep + 127) / 255;
                pixel[offset] = blended.min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BGRX: ChannelOrder = ChannelOrder { r: 2, g: 1, b: 0 };

    fn frame(area: Rect, bgrx: [u8; 4]) -> Vec<u8> {
        bgrx.repeat((area.width * area.height) as usize)
    }

    fn pixel(frame: &[u8], area: Rect, x: i32, y: i32) -> [u8; 4] {
        let at = ((y - area.y) as usize * area.width as usize + (x - area.x) as usize) * 4;
        frame[at..at + 4].try_into().unwrap()
    }

    /// 3x2: opaque red, transparent, half-transparent white (premultiplied);
    /// second row opaque green, opaque blue, transparent. Hot spot (1, 1).
    fn cursor() -> CursorImage {
        CursorImage {
            width: 3,
            height: 2,
            xhot: 1,
            yhot: 1,
            pixels: vec![
                0xffff0000, 0x00000000, 0x80808080, 0xff00ff00, 0xff0000ff, 0x00000000,
            ],
        }
    }

    #[test]
    fn opaque_transparent_and_blended_pixels() {
        let area = Rect::new(100, 50, 10, 10);
        let mut f = frame(area, [0, 0, 0, 0]);
        // Hot spot at (105, 55): the image's top-left is (104, 54).
        composite(&mut f, 40, area, BGRX, &cursor(), (105, 55));
        assert_eq!(pixel(&f, area, 104, 54), [0, 0, 255, 0], "red");
        assert_eq!(pixel(&f, area, 105, 54), [0, 0, 0, 0], "transparent");
        assert_eq!(pixel(&f, area, 106, 54), [128, 128, 128, 0], "half white");
        assert_eq!(pixel(&f, area, 104, 55), [0, 255, 0, 0], "green");
        assert_eq!(pixel(&f, area, 105, 55), [255, 0, 0, 0], "blue");
        assert_eq!(pixel(&f, area, 103, 54), [0, 0, 0, 0], "left untouched");
    }

    #[test]
    fn half_alpha_keeps_half_of_the_frame() {
        let area = Rect::new(0, 0, 4, 4);
        let mut f = frame(area, [200, 100, 50, 0]);
        composite(&mut f, 16, area, BGRX, &cursor(), (1, 1));
        // 0x80 of white over (b 200, g 100, r 50): 128 + v * 127 / 255.
        assert_eq!(pixel(&f, area, 2, 0), [228, 178, 153, 0]);
    }

    #[test]
    fn clipped_at_every_edge_of_the_area() {
        let area = Rect::new(10, 10, 2, 2);
        // Hot spot on the area's top-left corner: of the cursor, only
        // pixels (1, 1) and (2, 1) fall inside; the rest hangs outside.
        let mut f = frame(area, [9, 9, 9, 0]);
        composite(&mut f, 8, area, BGRX, &cursor(), (10, 10));
        assert_eq!(pixel(&f, area, 10, 10), [255, 0, 0, 0], "blue (1, 1)");
        assert_eq!(pixel(&f, area, 11, 10), [9, 9, 9, 0], "transparent (2, 1)");
        assert_eq!(pixel(&f, area, 10, 11), [9, 9, 9, 0]);
        // Bottom-right: only the cursor's top-left pixel is inside.
        let mut f = frame(area, [9, 9, 9, 0]);
        composite(&mut f, 8, area, BGRX, &cursor(), (12, 12));
        assert_eq!(pixel(&f, area, 11, 11), [0, 0, 255, 0], "red (0, 0)");
        // Wholly outside, or at extreme coordinates: nothing changes.
        let before = f.clone();
        composite(&mut f, 8, area, BGRX, &cursor(), (40, 40));
        composite(&mut f, 8, area, BGRX, &cursor(), (i32::MIN, i32::MAX));
        assert_eq!(f, before);
    }

    #[test]
    fn other_channel_orders() {
        let area = Rect::new(0, 0, 1, 1);
        let red = CursorImage {
            width: 1,
            height: 1,
            xhot: 0,
            yhot: 0,
            pixels: vec![0xffff0000],
        };
        for (format, red_at) in [
            (gst_video::VideoFormat::Rgbx, 0),
            (gst_video::VideoFormat::Xrgb, 1),
            (gst_video::VideoFormat::Xbgr, 3),
        ] {
            let mut f = vec![0; 4];
            let order = ChannelOrder::of(format).unwrap();
            composite(&mut f, 4, area, order, &red, (0, 0));
            assert_eq!(f[red_at], 255, "{format:?}");
            assert_eq!(f.iter().map(|&v| v as u32).sum::<u32>(), 255);
        }
        assert_eq!(ChannelOrder::of(gst_video::VideoFormat::Rgb16), None);
    }

    #[test]
    fn a_short_image_is_ignored() {
        let area = Rect::new(0, 0, 4, 4);
        let mut f = frame(area, [1, 2, 3, 0]);
        let mut broken = cursor();
        broken.pixels.truncate(2);
        composite(&mut f, 16, area, BGRX, &broken, (1, 1));
        assert_eq!(f, frame(area, [1, 2, 3, 0]));
    }
}
