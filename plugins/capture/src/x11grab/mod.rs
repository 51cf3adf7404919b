//! screencapsrc's X11 source: a private live `GstPushSrc` whose streaming
//! thread, at every frame tick, asks the damage gate whether anything
//! changed and either grabs the captured area into shared memory (x11rb,
//! MIT-SHM) or pushes the previous frame again, sharing its memory.
//!
//! Why not ximagesrc: it costs four to five round trips to the X server
//! per frame (window attributes, the grab, the pointer, the cursor image,
//! a sync), each a handful of system calls on both sides. Here a grab
//! takes one (the grab, with the pointer position and, only after a shape
//! change, the cursor image sent along in the same flush), and the gate's
//! damage bookkeeping travels with it on the same connection. Wrapping
//! ximagesrc also meant a second X connection for the gate, a round trip
//! to order the two, and re-wrapping its unshareable buffers.

mod cursor;
mod imp;
mod shm;

use std::sync::{Arc, LazyLock};

use gst::glib;
use gst::subclass::prelude::*;
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageOrder};

use crate::counters::FrameCounters;
use crate::geometry::Rect;
use crate::screencapsrc::gate::DamageGate;
use crate::x11::X11Error;
use cursor::{ChannelOrder, CursorImage};
pub use shm::ShmError;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "screencapx11",
        gst::DebugColorFlags::empty(),
        Some("screencapsrc's X11 grabbing source"),
    )
});

glib::wrapper! {
    pub struct X11Grab(ObjectSubclass<imp::X11Grab>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// What the source calls back when the captured window is gone.
pub type OnClosed = Box<dyn Fn(&str) + Send + Sync>;

impl X11Grab {
    pub fn new(
        name: &str,
        capture: Capture,
        framerate: gst::Fraction,
        counters: Arc<FrameCounters>,
        on_closed: OnClosed,
    ) -> Self {
        let grab: Self = glib::Object::builder().property("name", name).build();
        grab.imp()
            .configure(capture, framerate, counters, on_closed);
        grab
    }
}

/// One run's X state: the gate, the shared memory, the cursor image.
pub struct Capture {
    gate: DamageGate,
    grabber: shm::Grabber,
    format: gst_video::VideoFormat,
    order: ChannelOrder,
    cursor: Option<CursorImage>,
}

impl Capture {
    /// Fails on a display whose pixels are not 32-bit (ximagesrc took any
    /// depth; 15/16-bit X servers are long gone from desktops).
    pub fn new(gate: DamageGate) -> Result<Self, X11Error> {
        let format = root_format(&gate)?;
        let order = ChannelOrder::of(format).ok_or_else(|| {
            X11Error::NotFound(format!(
                "display {} has pixels of format {format:?}, not 32-bit RGB",
                gate.display().name
            ))
        })?;
        let grabber = shm::Grabber::new(&gate.display().conn)?;
        Ok(Self {
            gate,
            grabber,
            format,
            order,
            cursor: None,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} at {:?}, {:?}, {}",
            self.gate.describe(),
            self.gate.area(),
            self.format,
            if self.grabber.uses_shm() {
                "shared memory"
            } else {
                "GetImage"
            }
        )
    }

    /// Grabs `area` with the cursor drawn in: one round trip, the pointer
    /// (and a new cursor image, if its shape changed) read along.
    fn grab(&mut self, area: Rect) -> Result<gst::Buffer, ShmError> {
        let show_cursor = self.gate.show_cursor();
        let stale = show_cursor && self.gate.take_cursor_stale();
        let grabbed = self.grab_with_pointer(area, show_cursor, stale);
        if grabbed.is_err() {
            // A new cursor image may not have been read: at the next grab.
            self.gate.set_cursor_stale(stale);
        }
        let (mut frame, at) = grabbed?;
        if show_cursor {
            self.gate.set_pointer(at);
        }
        if let (Some(at), Some(cursor)) = (at, &self.cursor) {
            let stride = area.width as usize * 4;
            cursor::composite(frame.bytes_mut(), stride, area, self.order, cursor, at);
        }
        Ok(frame.into_buffer())
    }

    /// The requests of one grab, sent together and then answered.
    fn grab_with_pointer(
        &mut self,
        area: Rect,
        show_cursor: bool,
        fetch_image: bool,
    ) -> Result<(shm::Frame, Option<(i32, i32)>), ShmError> {
        let display = self.gate.display();
        let conn = &display.conn;
        let pointer = if show_cursor {
            Some(conn.query_pointer(display.root).map_err(X11Error::from)?)
        } else {
            None
        };
        let image = if fetch_image {
            Some(conn.xfixes_get_cursor_image().map_err(X11Error::from)?)
        } else {
            None
        };
        let frame = self.grabber.grab(conn, display.root, area)?;
        if let Some(image) = image {
            let reply = image.reply().map_err(X11Error::from)?;
            self.cursor = Some(CursorImage {
                width: reply.width.into(),
                height: reply.height.into(),
                xhot: reply.xhot.into(),
                yhot: reply.yhot.into(),
                pixels: reply.cursor_image,
            });
        }
        let at = match pointer {
            Some(pointer) => {
                let reply = pointer.reply().map_err(X11Error::from)?;
                reply
                    .same_screen
                    .then_some((reply.root_x as i32, reply.root_y as i32))
            }
            None => None,
        };
        Ok((frame, at))
    }
}

/// The video format of the root window's pixels, as ximagesrc derives it.
fn root_format(gate: &DamageGate) -> Result<gst_video::VideoFormat, X11Error> {
    let display = gate.display();
    let setup = display.conn.setup();
    let screen = setup
        .roots
        .iter()
        .find(|s| s.root == display.root)
        .ok_or_else(|| X11Error::NotFound("no screen for the root window".into()))?;
    let depth = screen.root_depth;
    let visual = screen
        .allowed_depths
        .iter()
        .filter(|d| d.depth == depth)
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == screen.root_visual)
        .ok_or_else(|| X11Error::NotFound("the root visual is not listed".into()))?;
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map_or(0, |f| f.bits_per_pixel);
    let little = setup.image_byte_order == ImageOrder::LSB_FIRST;
    let alpha = if depth == 32 {
        !(visual.red_mask | visual.green_mask | visual.blue_mask)
    } else {
        0
    };
    // Masks of a little-endian 32-bit pixel, read as big-endian bytes.
    let (endianness, masks) = if bpp == 32 && little {
        (
            gst_video::VideoEndianness::BigEndian,
            [visual.red_mask, visual.green_mask, visual.blue_mask, alpha].map(u32::swap_bytes),
        )
    } else {
        (
            if little {
                gst_video::VideoEndianness::LittleEndian
            } else {
                gst_video::VideoEndianness::BigEndian
            },
            [visual.red_mask, visual.green_mask, visual.blue_mask, alpha],
        )
    };
    Ok(gst_video::VideoFormat::from_masks(
        depth.into(),
        bpp.into(),
        endianness,
        masks[0],
        masks[1],
        masks[2],
        masks[3],
    ))
}
