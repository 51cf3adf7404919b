use std::sync::{Arc, LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::gate::{DamageGate, Target};
use super::{Backend, WINDOW_CLOSED_MESSAGE};
use crate::counters::FrameCounters;
use crate::pacer::{Frame, FramePacer, FrameSlot};
use crate::x11::Display;
use crate::x11grab::{Capture, X11Grab};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "screencapsrc",
        gst::DebugColorFlags::empty(),
        Some("Damage-driven screen capture source"),
    )
});

/// X11 coordinates and sizes are 16-bit: nothing on a screen lies past this.
const MAX_COORDINATE: u32 = 32767;

#[derive(Debug, Clone)]
struct Settings {
    display_name: Option<String>,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    window_name: Option<String>,
    window_id: u64,
    show_cursor: bool,
    framerate: gst::Fraction,
    backend: Backend,
    pipewire_path: Option<String>,
    pipewire_fd: i32,
    /// GstBaseSrc's, handed to the inner source that pushes the frames.
    num_buffers: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            display_name: None,
            x: 0,
            y: 0,
            width: 0,
            height: 0,
            window_name: None,
            window_id: 0,
            show_cursor: true,
            framerate: gst::Fraction::new(30, 1),
            backend: Backend::Auto,
            pipewire_path: None,
            pipewire_fd: -1,
            num_buffers: -1,
        }
    }
}

impl Settings {
    fn effective_backend(&self) -> Backend {
        match self.backend {
            Backend::Auto if self.pipewire_fd >= 0 || self.pipewire_path.is_some() => {
                Backend::PipeWire
            }
            Backend::Auto => Backend::X11,
            other => other,
        }
    }
}

/// What exists between READY->PAUSED and PAUSED->READY.
#[derive(Default)]
struct State {
    counters: Arc<FrameCounters>,
    /// PipeWire only: hands frames to the pacer's thread.
    slot: Option<Arc<FrameSlot>>,
    children: Vec<gst::Element>,
}

pub struct ScreenCapSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    srcpad: gst::GhostPad,
}

#[glib::object_subclass]
impl ObjectSubclass for ScreenCapSrc {
    const NAME: &'static str = "GstScreenCapSrc";
    type Type = super::ScreenCapSrc;
    type ParentType = gst::Bin;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("src").unwrap();
        let srcpad = gst::GhostPad::builder_from_template(&templ)
            .name("src")
            .build();
        Self {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            srcpad,
        }
    }
}

impl ObjectImpl for ScreenCapSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mutable_ready = gst::PARAM_FLAG_MUTABLE_READY;
            vec![
                glib::ParamSpecString::builder("display-name")
                    .nick("Display")
                    .blurb("X display to capture, e.g. \":0\" (default: $DISPLAY)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("x")
                    .nick("X")
                    .blurb("Left edge of the captured region, in screen pixels")
                    .minimum(0)
                    .maximum(MAX_COORDINATE as i32)
                    .default_value(0)
                    .flags(glib::ParamFlags::READWRITE | mutable_ready)
                    .build(),
                glib::ParamSpecInt::builder("y")
                    .nick("Y")
                    .blurb("Top edge of the captured region, in screen pixels")
                    .minimum(0)
                    .maximum(MAX_COORDINATE as i32)
                    .default_value(0)
                    .flags(glib::ParamFlags::READWRITE | mutable_ready)
                    .build(),
                glib::ParamSpecUInt::builder("width")
                    .nick("Width")
                    .blurb("Width of the captured region (0: to the right edge of the screen)")
                    .maximum(MAX_COORDINATE)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("height")
                    .nick("Height")
                    .blurb("Height of the captured region (0: to the bottom edge of the screen)")
                    .maximum(MAX_COORDINATE)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("window-name")
                    .nick("Window name")
                    .blurb(
                        "Capture the window with this title (exact, else case-insensitive, \
                         else a title containing it, else its WM_CLASS); follows it when \
                         it moves or resizes, ends the stream when it closes",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("window-id")
                    .nick("Window id")
                    .blurb("Capture the window with this X id, e.g. 0x1e00004 (0: none)")
                    .maximum(u32::MAX.into())
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("show-cursor")
                    .nick("Show cursor")
                    .blurb("Draw the mouse pointer into the captured frames")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                gst::ParamSpecFraction::builder("framerate")
                    .nick("Framerate")
                    .blurb(
                        "Frames per second pushed downstream; unchanged frames are \
                         repeated without being grabbed again",
                    )
                    .minimum(gst::Fraction::new(1, 1))
                    .maximum(gst::Fraction::new(240, 1))
                    .default_value(gst::Fraction::new(30, 1))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("backend", Backend::Auto)
                    .nick("Backend")
                    .blurb("Capture system to use")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("pipewire-path")
                    .nick("PipeWire node")
                    .blurb(
                        "PipeWire node id of a screen-cast stream (from the desktop \
                         portal's ScreenCast session); selects the PipeWire backend",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("pipewire-fd")
                    .nick("PipeWire fd")
                    .blurb("File descriptor of the portal's PipeWire remote (-1: default daemon)")
                    .minimum(-1)
                    .default_value(-1)
                    .flags(glib::ParamFlags::READWRITE | mutable_ready)
                    .build(),
                // GstBaseSrc's, as on ximagesrc: `screencapsrc num-buffers=300`
                // must work where `ximagesrc num-buffers=300` does. It goes
                // to the inner source whose pad is the bin's. (No
                // do-timestamp: every frame is already stamped with the
                // running time of its tick, which is what it would give.)
                glib::ParamSpecInt::builder("num-buffers")
                    .nick("num-buffers")
                    .blurb("Number of frames to push before EOS (-1 = unlimited)")
                    .minimum(-1)
                    .default_value(-1)
                    .flags(glib::ParamFlags::READWRITE | mutable_ready)
                    .build(),
                glib::ParamSpecUInt64::builder("grabbed-frames")
                    .nick("Grabbed frames")
                    .blurb(
                        "Frames actually read from the screen since start (the rest were repeats)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("pushed-frames")
                    .nick("Pushed frames")
                    .blurb("Frames pushed downstream since start, grabbed or repeated")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "display-name" => settings.display_name = value.get().unwrap(),
            "x" => settings.x = value.get().unwrap(),
            "y" => settings.y = value.get().unwrap(),
            "width" => settings.width = value.get().unwrap(),
            "height" => settings.height = value.get().unwrap(),
            "window-name" => settings.window_name = value.get().unwrap(),
            "window-id" => settings.window_id = value.get().unwrap(),
            "show-cursor" => settings.show_cursor = value.get().unwrap(),
            "framerate" => settings.framerate = value.get().unwrap(),
            "backend" => settings.backend = value.get().unwrap(),
            "pipewire-path" => settings.pipewire_path = value.get().unwrap(),
            "pipewire-fd" => settings.pipewire_fd = value.get().unwrap(),
            "num-buffers" => settings.num_buffers = value.get().unwrap(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "display-name" => settings.display_name.to_value(),
            "x" => settings.x.to_value(),
            "y" => settings.y.to_value(),
            "width" => settings.width.to_value(),
            "height" => settings.height.to_value(),
            "window-name" => settings.window_name.to_value(),
            "window-id" => settings.window_id.to_value(),
            "show-cursor" => settings.show_cursor.to_value(),
            "framerate" => settings.framerate.to_value(),
            "backend" => settings.backend.to_value(),
            "pipewire-path" => settings.pipewire_path.to_value(),
            "pipewire-fd" => settings.pipewire_fd.to_value(),
            "num-buffers" => settings.num_buffers.to_value(),
            "grabbed-frames" => self.state.lock().unwrap().counters.grabbed().to_value(),
            "pushed-frames" => self.state.lock().unwrap().counters.pushed().to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.srcpad).unwrap();
        obj.set_suppressed_flags(gst::ElementFlags::SOURCE | gst::ElementFlags::SINK);
        obj.set_element_flags(gst::ElementFlags::SOURCE);
    }
}

impl GstObjectImpl for ScreenCapSrc {}

impl ElementImpl for ScreenCapSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Screen capture source",
                "Source/Video",
                "Captures the screen, a region or one window at a constant framerate, \
                 grabbing only when something changed",
                "gst-peer developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &gst::Caps::new_empty_simple("video/x-raw"),
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            // A fresh grabber for every run, with an X connection of its
            // own: frames still held downstream when a run stops keep
            // their shared memory (the server forgets its side when that
            // connection closes), and nothing of one run reaches the next.
            gst::StateChange::ReadyToPaused => {
                if let Err(err) = self.assemble() {
                    self.obj().post_error_message(err);
                    self.disassemble();
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::PausedToReady => {
                // The PipeWire side may be parked waiting for the pacer:
                // release it before the pads deactivate and wait for it.
                if let Some(slot) = &self.state.lock().unwrap().slot {
                    slot.set_capture_flushing(true);
                }
            }
            _ => {}
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToReady
            || (transition == gst::StateChange::ReadyToPaused && result.is_err())
        {
            self.disassemble();
        }
        result
    }
}

impl BinImpl for ScreenCapSrc {}

impl ScreenCapSrc {
    fn assemble(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let counters = Arc::new(FrameCounters::default());
        let mut state = State {
            counters: counters.clone(),
            ..State::default()
        };
        // The element whose src pad is the bin's, and the chain feeding it.
        let (output, feeding): (gst::Element, Vec<gst::Element>) =
            match settings.effective_backend() {
                Backend::PipeWire => {
                    let slot = Arc::new(FrameSlot::new(counters));
                    let source = self.make_pipewire(&settings, &slot)?;
                    state.slot = Some(slot.clone());
                    let pacer = FramePacer::new("pacer", slot, settings.framerate);
                    (pacer.upcast(), vec![source])
                }
                _ => (self.make_x11(&settings, counters)?.upcast(), vec![]),
            };

        // The source that pushes what leaves the bin counts the frames
        // (GstBaseSrc ends the stream after num-buffers of them).
        output.set_property("num-buffers", settings.num_buffers);

        let obj = self.obj();
        obj.add_many(&feeding).map_err(internal)?;
        obj.add(&output).map_err(internal)?;
        gst::Element::link_many(&feeding).map_err(internal)?;
        self.srcpad
            .set_target(Some(&output.static_pad("src").unwrap()))
            .map_err(internal)?;

        state.children = feeding;
        state.children.push(output);
        *self.state.lock().unwrap() = state;
        Ok(())
    }

    fn disassemble(&self) {
        let children = std::mem::take(&mut self.state.lock().unwrap().children);
        let _ = self.srcpad.set_target(None::<&gst::Pad>);
        for child in children {
            let _ = child.set_state(gst::State::Null);
            let _ = self.obj().remove(&child);
        }
    }

    fn resolve_target(&self, settings: &Settings) -> Result<Target, gst::ErrorMessage> {
        let display = |s: &Settings| {
            Display::open(s.display_name.as_deref())
                .map_err(|err| gst::error_msg!(gst::ResourceError::OpenRead, ("{err}")))
        };
        if settings.window_id != 0 {
            let display = display(settings)?;
            let id = u32::try_from(settings.window_id).map_err(|_| {
                gst::error_msg!(
                    gst::ResourceError::Settings,
                    ("window-id {:#x} is not an X window id", settings.window_id)
                )
            })?;
            let title = display
                .window_title(id)
                .map_err(|err| {
                    gst::error_msg!(
                        gst::ResourceError::NotFound,
                        (
                            "no window with id {id:#x} on display {}: {err}",
                            display.name
                        )
                    )
                })?
                .unwrap_or_default();
            return Ok(Target::Window { id, title });
        }
        if let Some(name) = &settings.window_name {
            let window = display(settings)?
                .find_window(name)
                .map_err(|err| gst::error_msg!(gst::ResourceError::NotFound, ("{err}")))?;
            gst::info!(
                CAT,
                imp = self,
                "window {name:?} is {:#x} {:?}",
                window.id,
                window.title
            );
            return Ok(Target::Window {
                id: window.id,
                title: window.title,
            });
        }
        if settings.x != 0 || settings.y != 0 || settings.width != 0 || settings.height != 0 {
            return Ok(Target::Region(
                settings.x,
                settings.y,
                settings.width,
                settings.height,
            ));
        }
        Ok(Target::Screen)
    }

    fn make_x11(
        &self,
        settings: &Settings,
        counters: Arc<FrameCounters>,
    ) -> Result<X11Grab, gst::ErrorMessage> {
        let target = self.resolve_target(settings)?;
        let gate = DamageGate::new(
            settings.display_name.as_deref(),
            target,
            settings.show_cursor,
        )
        .and_then(Capture::new)
        .map_err(|err| gst::error_msg!(gst::ResourceError::OpenRead, ("{err}")))?;
        let bin = self.obj().downgrade();
        let on_closed = Box::new(move |reason: &str| {
            if let Some(bin) = bin.upgrade() {
                window_closed(&bin, reason);
            }
        });
        Ok(X11Grab::new(
            "grabber",
            gate,
            settings.framerate,
            counters,
            on_closed,
        ))
    }

    fn make_pipewire(
        &self,
        settings: &Settings,
        slot: &Arc<FrameSlot>,
    ) -> Result<gst::Element, gst::ErrorMessage> {
        let mut builder = gst::ElementFactory::make("pipewiresrc").name("grabber");
        if let Some(path) = &settings.pipewire_path {
            builder = builder.property("path", path);
        }
        if settings.pipewire_fd >= 0 {
            builder = builder.property("fd", settings.pipewire_fd);
        }
        let pipewiresrc = builder
            .build()
            .map_err(|_| missing_plugin("pipewiresrc", "gstreamer1.0-pipewire"))?;
        // PipeWire screen casts only send a frame when the screen changed:
        // every frame that arrives is a grab worth keeping.
        let slot = slot.clone();
        let caps = Mutex::new(None::<gst::Caps>);
        pipewiresrc.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_pad, info| {
                if let Some(event) = info.event()
                    && let gst::EventView::Caps(c) = event.view()
                {
                    *caps.lock().unwrap() = Some(c.caps_owned());
                }
                let Some(buffer) = info.take_buffer() else {
                    return gst::PadProbeReturn::Handled;
                };
                if let Some(caps) = caps.lock().unwrap().clone() {
                    slot.publish(Frame { caps, buffer });
                }
                gst::PadProbeReturn::Handled
            },
        );
        Ok(pipewiresrc)
    }
}

/// Tells the application that the captured window is gone; the grabber
/// then ends the stream (EOS).
fn window_closed(bin: &super::ScreenCapSrc, reason: &str) {
    gst::info!(CAT, obj = bin, "{reason}");
    gst::element_warning!(
        bin,
        gst::ResourceError::NotFound,
        ("{reason}; ending the stream")
    );
    let structure = gst::Structure::builder(WINDOW_CLOSED_MESSAGE)
        .field("reason", reason)
        .build();
    let _ = bin.post_message(gst::message::Element::builder(structure).src(bin).build());
}

fn missing_plugin(element: &str, package: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::CoreError::MissingPlugin,
        ("the {element} element is missing (Debian package {package})")
    )
}

fn internal(err: impl std::fmt::Display) -> gst::ErrorMessage {
    gst::error_msg!(gst::CoreError::Failed, ("{err}"))
}
