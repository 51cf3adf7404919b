//! Decides, once per frame tick, whether the screen must be grabbed again.
//!
//! A grab through shared memory is cheap, but every request to the X
//! server costs a round trip of system calls on both sides, and a grab
//! when nothing changed is wasted work for the server. So the grabber asks
//! this gate first: it grabs only when XDamage reported a change inside
//! the captured area, the pointer moved over it or changed shape, or the
//! captured window moved. An idle screen then costs one pointer query per
//! tick (none with the cursor hidden) and no grab at all.
//!
//! The gate and the grabber share one X connection, so requests reach the
//! server in the order they are made: the damage subtraction that re-arms
//! the notification always comes before the grab it allows, and no change
//! made in between can be lost. That is also why a busy screen costs no
//! round trip here: the subtraction travels with the grab.

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ConnectionExt as _, EventMask, Window};

use crate::geometry::{Rect, resolve_region};
use crate::x11::{Display, X11Error};

/// Cursor images are at most this far from the hot spot in practice.
const CURSOR_REACH: u32 = 64;

/// What to capture, as the user asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Screen,
    /// `x`, `y`, `width`, `height`; a zero size extends to the screen edge.
    Region(i32, i32, u32, u32),
    Window {
        id: Window,
        title: String,
    },
}

/// What one tick's look at the display found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Observations {
    pub damage: Vec<Rect>,
    /// Where the captured area is now (`None`: nowhere on screen).
    pub area: Option<Rect>,
    pub pointer_before: Option<(i32, i32)>,
    pub pointer_now: Option<(i32, i32)>,
    pub cursor_shape_changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing visible changed: repeat the last frame.
    Keep,
    /// Grab the same area again.
    Grab,
    /// The area moved or changed size: grab it at its new place.
    Regrab(Rect),
    /// The window is closed, or wholly off-screen or unmapped.
    Hidden,
}

/// The pure part of the gate: given what changed, is a grab worth it?
pub fn decide(current_area: Rect, seen: &Observations) -> Decision {
    let Some(area) = seen.area else {
        return Decision::Hidden;
    };
    if area != current_area {
        return Decision::Regrab(area);
    }
    if seen.damage.iter().any(|r| r.intersects(&area)) {
        return Decision::Grab;
    }
    let cursor_zone = area.inflate(CURSOR_REACH);
    let near = |p: Option<(i32, i32)>| p.is_some_and(|(x, y)| cursor_zone.contains_point(x, y));
    let moved = seen.pointer_now != seen.pointer_before;
    if (moved || seen.cursor_shape_changed) && (near(seen.pointer_now) || near(seen.pointer_before))
    {
        return Decision::Grab;
    }
    Decision::Keep
}

/// Outcome of one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    None,
    Content,
    Moved(Rect),
    /// Unmapped, minimised or off-screen: keep showing the last frame.
    Hidden,
    Closed(String),
}

pub struct DamageGate {
    display: Display,
    damage: damage::Damage,
    parts: xfixes::Region,
    target: Target,
    window_mapped: bool,
    area: Rect,
    show_cursor: bool,
    pointer: Option<(i32, i32)>,
    /// The cursor's shape changed since the grabber last fetched it.
    cursor_stale: bool,
}

impl DamageGate {
    pub fn new(
        display_name: Option<&str>,
        target: Target,
        show_cursor: bool,
    ) -> Result<Self, X11Error> {
        let display = Display::open(display_name)?;
        let conn = &display.conn;
        for (name, present) in [
            (
                "DAMAGE",
                conn.extension_information(damage::X11_EXTENSION_NAME)?
                    .is_some(),
            ),
            (
                "XFIXES",
                conn.extension_information(xfixes::X11_EXTENSION_NAME)?
                    .is_some(),
            ),
        ] {
            if !present {
                return Err(X11Error::MissingExtension(name));
            }
        }
        conn.damage_query_version(1, 1)?.reply()?;
        conn.xfixes_query_version(5, 0)?.reply()?;

        let damage = conn.generate_id()?;
        conn.damage_create(damage, display.root, damage::ReportLevel::NON_EMPTY)?;
        let parts = conn.generate_id()?;
        conn.xfixes_create_region(parts, &[])?;
        if show_cursor {
            conn.xfixes_select_cursor_input(
                display.root,
                xfixes::CursorNotifyMask::DISPLAY_CURSOR,
            )?;
        }
        // The root's ConfigureNotify tells of a screen resize.
        conn.change_window_attributes(
            display.root,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY),
        )?;
        if let Target::Window { id, .. } = &target {
            conn.change_window_attributes(
                *id,
                &ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY),
            )?
            .check()?;
        }
        conn.flush()?;

        let mut gate = Self {
            display,
            damage,
            parts,
            target,
            window_mapped: true,
            area: Rect::default(),
            show_cursor,
            pointer: None,
            cursor_stale: show_cursor,
        };
        gate.area = gate.locate()?.ok_or_else(|| {
            X11Error::NotFound(format!(
                "{} is not on screen {}x{}",
                gate.describe(),
                gate.display.screen_rect.width,
                gate.display.screen_rect.height
            ))
        })?;
        gate.pointer = gate.query_pointer()?;
        Ok(gate)
    }

    /// The captured area in root coordinates.
    pub fn area(&self) -> Rect {
        self.area
    }

    /// The connection, for the grabber: requests on it are ordered with
    /// the gate's own.
    pub fn display(&self) -> &Display {
        &self.display
    }

    pub fn show_cursor(&self) -> bool {
        self.show_cursor
    }

    /// Whether the cursor image must be fetched again (first grab, or a
    /// new shape since); clears the flag.
    pub fn take_cursor_stale(&mut self) -> bool {
        std::mem::take(&mut self.cursor_stale)
    }

    pub fn set_cursor_stale(&mut self, stale: bool) {
        self.cursor_stale |= stale;
    }

    /// The pointer position the grabber read along with a grab.
    pub fn set_pointer(&mut self, pointer: Option<(i32, i32)>) {
        self.pointer = pointer;
    }

    pub fn describe(&self) -> String {
        match &self.target {
            Target::Screen => format!("screen {}", self.display.name),
            Target::Region(x, y, w, h) => {
                format!("region {w}x{h}+{x}+{y} of {}", self.display.name)
            }
            Target::Window { id, title } => format!("window {title:?} ({id:#x})"),
        }
    }

    fn locate(&self) -> Result<Option<Rect>, X11Error> {
        let screen = self.display.screen_rect;
        Ok(match &self.target {
            Target::Screen => Some(screen),
            Target::Region(x, y, w, h) => resolve_region(screen, *x, *y, *w, *h),
            Target::Window { id, .. } => {
                if !self.window_mapped {
                    return Ok(None);
                }
                self.display.window_rect(*id)?.intersection(&screen)
            }
        })
    }

    fn query_pointer(&self) -> Result<Option<(i32, i32)>, X11Error> {
        if !self.show_cursor {
            return Ok(None);
        }
        let reply = self
            .display
            .conn
            .query_pointer(self.display.root)?
            .reply()?;
        Ok(reply
            .same_screen
            .then_some((reply.root_x as i32, reply.root_y as i32)))
    }

    /// Reads what happened since the last tick; never blocks on the server
    /// when nothing did, apart from one pointer query with a cursor shown.
    pub fn check(&mut self) -> Result<Change, X11Error> {
        let mut damaged = false;
        let mut geometry_changed = false;
        let mut cursor_shape_changed = false;
        let window = match &self.target {
            Target::Window { id, .. } => Some(*id),
            _ => None,
        };
        while let Some(event) = self.display.conn.poll_for_event()? {
            match event {
                Event::DamageNotify(_) => damaged = true,
                Event::XfixesCursorNotify(_) => {
                    cursor_shape_changed = true;
                    self.cursor_stale = true;
                }
                Event::ConfigureNotify(e) if e.window == self.display.root => {
                    self.display.refresh_screen_rect()?;
                    geometry_changed = true;
                }
                Event::ConfigureNotify(e) if Some(e.window) == window => geometry_changed = true,
                Event::DestroyNotify(e) if Some(e.window) == window => {
                    return Ok(Change::Closed(format!(
                        "the captured {} was closed",
                        self.describe()
                    )));
                }
                Event::UnmapNotify(e) if Some(e.window) == window => {
                    self.window_mapped = false;
                    geometry_changed = true;
                }
                Event::MapNotify(e) if Some(e.window) == window => {
                    self.window_mapped = true;
                    geometry_changed = true;
                }
                _ => {}
            }
        }

        let whole_screen = self.target == Target::Screen;
        let conn = &self.display.conn;
        if damaged {
            // Subtracting re-arms the NonEmpty notification, so only the
            // first change after each grab costs an event. Not flushed:
            // it goes out with the next request, before the grab.
            conn.damage_subtract(self.damage, x11rb::NONE, self.parts)?;
            // A window that moved leaves damage behind on the root without
            // telling its client-side ConfigureNotify (under a window
            // manager the frame moves, not the client window).
            geometry_changed |= window.is_some();
            if whole_screen && !geometry_changed {
                // Damage on the root lies on the screen, which is all
                // captured: grab, with no round trip first (the pointer
                // is read along with the grab).
                return Ok(Change::Content);
            }
        }

        let mut seen = Observations {
            area: Some(self.area),
            pointer_before: self.pointer,
            cursor_shape_changed,
            ..Observations::default()
        };
        // Everything below is sent first and answered in one round trip.
        let fetch = if damaged && !whole_screen {
            Some(conn.xfixes_fetch_region(self.parts)?)
        } else {
            None
        };
        let pointer = if self.show_cursor {
            Some(conn.query_pointer(self.display.root)?)
        } else {
            None
        };
        if let Some(fetch) = fetch {
            seen.damage = fetch
                .reply()?
                .rectangles
                .iter()
                .map(|r| Rect::new(r.x as i32, r.y as i32, r.width as u32, r.height as u32))
                .collect();
        } else if damaged {
            seen.damage = vec![self.area];
        }
        if let Some(pointer) = pointer {
            let reply = pointer.reply()?;
            seen.pointer_now = reply
                .same_screen
                .then_some((reply.root_x as i32, reply.root_y as i32));
            self.pointer = seen.pointer_now;
        }
        if geometry_changed {
            seen.area = match self.locate() {
                Ok(area) => area,
                Err(X11Error::Reply(_)) if window.is_some() => {
                    return Ok(Change::Closed(format!(
                        "the captured {} was closed",
                        self.describe()
                    )));
                }
                Err(err) => return Err(err),
            };
        }

        Ok(match decide(self.area, &seen) {
            Decision::Keep => Change::None,
            Decision::Grab => Change::Content,
            Decision::Regrab(area) => {
                self.area = area;
                Change::Moved(area)
            }
            Decision::Hidden => Change::Hidden,
        })
    }
}

impl Drop for DamageGate {
    fn drop(&mut self) {
        let conn = &self.display.conn;
        let _ = conn.damage_destroy(self.damage);
        let _ = conn.xfixes_destroy_region(self.parts);
        let _ = conn.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: Rect = Rect::new(100, 100, 200, 100);

    fn seen() -> Observations {
        Observations {
            area: Some(AREA),
            ..Default::default()
        }
    }

    #[test]
    fn no_change_keeps_the_frame() {
        assert_eq!(decide(AREA, &seen()), Decision::Keep);
    }

    #[test]
    fn damage_outside_the_area_is_ignored() {
        let mut s = seen();
        s.damage = vec![Rect::new(0, 0, 50, 50), Rect::new(400, 100, 10, 10)];
        assert_eq!(decide(AREA, &s), Decision::Keep);
        s.damage.push(Rect::new(290, 190, 20, 20));
        assert_eq!(decide(AREA, &s), Decision::Grab);
    }

    #[test]
    fn moved_area_is_regrabbed_at_its_new_place() {
        let mut s = seen();
        s.area = Some(Rect::new(120, 100, 200, 100));
        assert_eq!(
            decide(AREA, &s),
            Decision::Regrab(Rect::new(120, 100, 200, 100))
        );
        s.area = None;
        assert_eq!(decide(AREA, &s), Decision::Hidden);
    }

    #[test]
    fn pointer_moving_over_the_area_is_a_change() {
        let mut s = seen();
        s.pointer_before = Some((10, 10));
        s.pointer_now = Some((150, 150));
        assert_eq!(decide(AREA, &s), Decision::Grab);
        // Leaving the area must erase the cursor from it too.
        s.pointer_before = Some((150, 150));
        s.pointer_now = Some((900, 900));
        assert_eq!(decide(AREA, &s), Decision::Grab);
        s.pointer_before = Some((900, 900));
        s.pointer_now = Some((950, 950));
        assert_eq!(decide(AREA, &s), Decision::Keep);
    }

    #[test]
    fn still_pointer_changing_shape_is_a_change() {
        let mut s = seen();
        s.pointer_before = Some((150, 150));
        s.pointer_now = Some((150, 150));
        assert_eq!(decide(AREA, &s), Decision::Keep);
        s.cursor_shape_changed = true;
        assert_eq!(decide(AREA, &s), Decision::Grab);
    }
}
