//! Integer rectangles in screen (root window) coordinates.

/// An axis-aligned rectangle; `x`/`y` may be negative (a window partly
/// off-screen), `width`/`height` of zero make it empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    fn right(&self) -> i64 {
        self.x as i64 + self.width as i64
    }

    fn bottom(&self) -> i64 {
        self.y as i64 + self.height as i64
    }

    /// The common part of both rectangles, `None` when they do not overlap.
    pub fn intersection(&self, other: &Rect) -> Option<Rect> {
        let left = (self.x as i64).max(other.x as i64);
        let top = (self.y as i64).max(other.y as i64);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        if right <= left || bottom <= top {
            return None;
        }
        Some(Rect::new(
            left as i32,
            top as i32,
            (right - left) as u32,
            (bottom - top) as u32,
        ))
    }

    pub fn intersects(&self, other: &Rect) -> bool {
        self.intersection(other).is_some()
    }

    pub fn contains_point(&self, x: i32, y: i32) -> bool {
        let (x, y) = (x as i64, y as i64);
        x >= self.x as i64 && y >= self.y as i64 && x < self.right() && y < self.bottom()
    }

    /// The rectangle grown by `margin` on every side (for a cursor image
    /// hanging over the edge of the captured area).
    pub fn inflate(&self, margin: u32) -> Rect {
        let m = margin.min(i32::MAX as u32) as i32;
        Rect::new(
            self.x.saturating_sub(m),
            self.y.saturating_sub(m),
            self.width.saturating_add(2 * margin),
            self.height.saturating_add(2 * margin),
        )
    }
}

/// Resolves a requested region against the screen size: a zero width or
/// height means "to the edge of the screen", and whatever lies outside the
/// screen is cut off.
pub fn resolve_region(screen: Rect, x: i32, y: i32, width: u32, height: u32) -> Option<Rect> {
    let width = if width == 0 {
        (screen.right() - x as i64).max(0) as u32
    } else {
        width
    };
    let height = if height == 0 {
        (screen.bottom() - y as i64).max(0) as u32
    } else {
        height
    };
    Rect::new(x, y, width, height).intersection(&screen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersection_of_overlapping_rects() {
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(50, 60, 100, 100);
        assert_eq!(a.intersection(&b), Some(Rect::new(50, 60, 50, 40)));
        assert!(a.intersects(&b));
    }

    #[test]
    fn touching_rects_do_not_intersect() {
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(100, 0, 10, 10);
        assert_eq!(a.intersection(&b), None);
    }

    #[test]
    fn window_partly_off_screen_is_clipped() {
        let screen = Rect::new(0, 0, 640, 480);
        let window = Rect::new(-20, 400, 100, 200);
        assert_eq!(
            window.intersection(&screen),
            Some(Rect::new(0, 400, 80, 80))
        );
    }

    #[test]
    fn zero_size_region_extends_to_screen_edge() {
        let screen = Rect::new(0, 0, 640, 480);
        assert_eq!(
            resolve_region(screen, 100, 50, 0, 0),
            Some(Rect::new(100, 50, 540, 430))
        );
        assert_eq!(
            resolve_region(screen, 600, 0, 100, 10),
            Some(Rect::new(600, 0, 40, 10))
        );
        assert_eq!(resolve_region(screen, 700, 0, 10, 10), None);
    }

    #[test]
    fn contains_point_is_half_open() {
        let r = Rect::new(10, 10, 5, 5);
        assert!(r.contains_point(10, 10));
        assert!(r.contains_point(14, 14));
        assert!(!r.contains_point(15, 10));
        assert!(r.inflate(2).contains_point(8, 8));
    }
}
