use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use super::bands::BandRenderer;
use super::damage::{changed_area, redraw_area};
use super::patch::Author;
use super::render::PixelLayout;
use super::route::PatchRoute;
use super::scene::{CanvasError, Resources, Scene, parse_scene};
use super::scene::{DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_SIDE, ImageLimits};
use super::text::FontBook;
use super::{
    APPLY_PATCH_SIGNAL, APPLY_PEER_PATCH_SIGNAL, APPLY_REMOTE_PATCH_SIGNAL, PATCH_ERROR_MESSAGE,
};
use crate::ticker::{FrameRate, Tick, Ticker};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "canvassrc",
        gst::DebugColorFlags::empty(),
        Some("Live 2D canvas source"),
    )
});

const DEFAULT_WIDTH: i32 = 1280;
const DEFAULT_HEIGHT: i32 = 720;
const MAX_SIDE: i32 = 16384;

const DEFAULT_PATCH_LABEL: &str = "canvas";

#[derive(Debug, Clone)]
struct Settings {
    scene_text: Option<String>,
    location: Option<String>,
    is_live: bool,
    /// Why the configured scene could not be used; start() fails with it.
    scene_error: Option<String>,
    patch_source: Option<String>,
    patch_label: String,
    images: ImageLimits,
}

/// The image limits, read by every scene and patch.
fn image_limits(settings: &Mutex<Settings>) -> ImageLimits {
    settings.lock().unwrap().images
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            scene_text: None,
            location: None,
            is_live: true,
            scene_error: None,
            patch_source: None,
            patch_label: DEFAULT_PATCH_LABEL.to_owned(),
            images: ImageLimits::default(),
        }
    }
}

/// The scene and what it takes to change it, shared by the streaming thread
/// (which only reads) and patches (which replace it).
#[derive(Default)]
struct Canvas {
    scene: Scene,
    generation: u64,
    last_error: Option<String>,
    fonts: FontBook,
}

#[derive(Default)]
struct State {
    info: Option<gst_video::VideoInfo>,
    layout: Option<PixelLayout>,
    rate: Option<FrameRate>,
    last_buffer: Option<gst::Buffer>,
    /// The scene `last_buffer` shows, to redraw only what changed since.
    last_scene: Option<Scene>,
    rendered_generation: Option<u64>,
    last_frame: Option<u64>,
}

#[derive(Default)]
pub struct CanvasSrc {
    settings: Mutex<Settings>,
    canvas: Mutex<Canvas>,
    state: Mutex<State>,
    ticker: Ticker,
    rendered_frames: AtomicU64,
    route: Mutex<Option<PatchRoute>>,
    /// Used by the streaming thread only, for full redraws.
    renderer: Mutex<BandRenderer>,
}

impl CanvasSrc {
    /// Applies a patch; on failure the scene is untouched and the error is
    /// reported on the bus and in `last-error`.
    pub(super) fn apply(
        &self,
        json: &str,
        allow_files: bool,
        author: Author,
    ) -> Result<(), CanvasError> {
        let images = image_limits(&self.settings);
        let result = {
            let mut canvas = self.canvas.lock().unwrap();
            let Canvas { scene, fonts, .. } = &mut *canvas;
            let mut resources = Resources::new(fonts, allow_files).with_images(images);
            super::patch::apply_patch_from(scene, json, &mut resources, author)
        };
        match result {
            Ok(scene) => {
                let mut canvas = self.canvas.lock().unwrap();
                canvas.scene = scene;
                canvas.generation += 1;
                canvas.last_error = None;
                gst::debug!(CAT, imp = self, "scene generation {}", canvas.generation);
                Ok(())
            }
            Err(err) => {
                self.report_bad_input("patch", &err);
                Err(err)
            }
        }
    }

    fn report_bad_input(&self, what: &str, err: &CanvasError) {
        let text = format!("canvassrc refused a {what}: {err}; keeping the last good scene");
        gst::warning!(CAT, imp = self, "{text}");
        self.canvas.lock().unwrap().last_error = Some(err.to_string());
        gst::element_imp_warning!(self, gst::StreamError::Format, ("{text}"));
        let structure = gst::Structure::builder(PATCH_ERROR_MESSAGE)
            .field("error", err.to_string())
            .build();
        let _ = self.obj().post_message(
            gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build(),
        );
    }

    /// Loads a scene given as a property (JSON text or a file path).
    fn load_scene(&self, json: Option<&str>, path: Option<&str>) {
        let text = match (json, path) {
            (Some(json), _) => Ok(json.to_owned()),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| CanvasError::Invalid(format!("cannot read scene file {path:?}: {e}"))),
            (None, None) => Ok("{}".to_owned()),
        };
        let images = image_limits(&self.settings);
        let parsed = text.and_then(|text| {
            let mut canvas = self.canvas.lock().unwrap();
            let mut resources = Resources::new(&mut canvas.fonts, true).with_images(images);
            parse_scene(&text, &mut resources)
        });
        match parsed {
            Ok(scene) => {
                let mut canvas = self.canvas.lock().unwrap();
                canvas.scene = scene;
                canvas.generation += 1;
                canvas.last_error = None;
                self.settings.lock().unwrap().scene_error = None;
            }
            Err(err) => {
                self.settings.lock().unwrap().scene_error = Some(err.to_string());
                self.report_bad_input("scene", &err);
            }
        }
    }

    /// Draws `scene`: only the changed area when `previous` (the last
    /// frame and the scene it shows) allows, else everything.
    fn render_frame(
        &self,
        scene: &Scene,
        previous: Option<(&gst::Buffer, &Scene)>,
        info: &gst_video::VideoInfo,
        layout: PixelLayout,
    ) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let (width, height) = (info.width(), info.height());
        let whole = crate::geometry::Rect::new(0, 0, width, height);
        let area = match previous {
            Some((_, old)) => match changed_area(old, scene, whole) {
                None => return Ok(None),
                Some(area) => area,
            },
            None => whole,
        };
        let mut buffer = gst::Buffer::with_size(info.size()).map_err(|_| gst::FlowError::Error)?;
        {
            let buffer = buffer.get_mut().unwrap();
            let mut map = buffer.map_writable().map_err(|_| gst::FlowError::Error)?;
            let pixels = &mut map.as_mut_slice()[..(width * height * 4) as usize];
            match previous {
                Some((last, _)) if area != whole => {
                    let last = last.map_readable().map_err(|_| gst::FlowError::Error)?;
                    pixels.copy_from_slice(&last[..pixels.len()]);
                    redraw_area(scene, pixels, (width, height), layout, area);
                }
                _ => self
                    .renderer
                    .lock()
                    .unwrap()
                    .render(scene, pixels, (width, height), layout),
            }
        }
        self.rendered_frames.fetch_add(1, Ordering::Relaxed);
        Ok(Some(buffer))
    }
}

/// `scene` may name a file, as in `canvassrc scene=overlay.json`.
fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('{') | Some('['))
}

#[glib::object_subclass]
impl ObjectSubclass for CanvasSrc {
    const NAME: &'static str = "GstCanvasSrc";
    type Type = super::CanvasSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for CanvasSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("scene")
                    .nick("Scene")
                    .blurb(
                        "Scene as JSON text ({\"background\": ..., \"nodes\": [...]}), or the \
                         path of a JSON file; setting it replaces the whole scene",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("location")
                    .nick("Scene file")
                    .blurb("Path of a JSON scene file (read when set)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("is-live")
                    .nick("Is live")
                    .blurb("Produce frames in real time at the framerate (false: as fast as downstream takes them)")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("patch-source")
                    .nick("Patch source")
                    .blurb(
                        "Name of a peersink or peersrc in the pipeline: messages it receives on the data \
                         channel patch-label are applied as remote patches (browsers drawing into the canvas)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("patch-label")
                    .nick("Patch data channel")
                    .blurb("Label of the data channel carrying patches from patch-source")
                    .default_value(Some(DEFAULT_PATCH_LABEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-image-size")
                    .nick("Largest image side")
                    .blurb(
                        "Largest width or height of an image in the scene or a patch, in pixels, \
                         read from the PNG header before decoding",
                    )
                    .minimum(1)
                    .maximum(16384)
                    .default_value(DEFAULT_MAX_IMAGE_SIDE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("max-image-bytes")
                    .nick("Image memory budget")
                    .blurb(
                        "Decoded bytes (4 a pixel) all the scene's images may take together; an image \
                         that would go over it is refused before decoding",
                    )
                    .minimum(4)
                    .default_value(DEFAULT_MAX_IMAGE_BYTES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("last-error")
                    .nick("Last error")
                    .blurb("Why the last scene or patch was refused (empty after a good one)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("rendered-frames")
                    .nick("Rendered frames")
                    .blurb("Frames actually drawn since start (the others repeated an unchanged scene)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            let patch_signal = |name: &str, allow_files: bool| {
                glib::subclass::Signal::builder(name)
                    .param_types([String::static_type()])
                    .return_type::<bool>()
                    .action()
                    .class_handler(move |args| {
                        let element = args[0].get::<super::CanvasSrc>().expect("signal receiver");
                        let json = args[1]
                            .get::<Option<String>>()
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        let ok = element.imp().apply(&json, allow_files, Author::Pipeline);
                        Some(ok.is_ok().to_value())
                    })
                    .build()
            };
            vec![
                patch_signal(APPLY_PATCH_SIGNAL, true),
                patch_signal(APPLY_REMOTE_PATCH_SIGNAL, false),
                // apply-peer-patch(peer-id, json) -> applied
                glib::subclass::Signal::builder(APPLY_PEER_PATCH_SIGNAL)
                    .param_types([String::static_type(), String::static_type()])
                    .return_type::<bool>()
                    .action()
                    .class_handler(|args| {
                        let element = args[0].get::<super::CanvasSrc>().expect("signal receiver");
                        let text = |i: usize| {
                            args[i]
                                .get::<Option<String>>()
                                .ok()
                                .flatten()
                                .unwrap_or_default()
                        };
                        let (peer, json) = (text(1), text(2));
                        let ok = element.imp().apply(&json, false, Author::Peer(&peer));
                        Some(ok.is_ok().to_value())
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "scene" => {
                let text: Option<String> = value.get().unwrap();
                {
                    let mut settings = self.settings.lock().unwrap();
                    settings.scene_text = text.clone();
                }
                match text {
                    Some(t) if !looks_like_json(&t) => self.load_scene(None, Some(&t)),
                    Some(t) => self.load_scene(Some(&t), None),
                    None => self.load_scene(None, None),
                }
            }
            "location" => {
                let path: Option<String> = value.get().unwrap();
                self.settings.lock().unwrap().location = path.clone();
                self.load_scene(None, path.as_deref());
            }
            "patch-source" => self.settings.lock().unwrap().patch_source = value.get().unwrap(),
            "max-image-size" => {
                self.settings.lock().unwrap().images.max_side = value.get().unwrap()
            }
            "max-image-bytes" => {
                self.settings.lock().unwrap().images.max_total_bytes = value.get().unwrap()
            }
            "patch-label" => {
                let label: Option<String> = value.get().unwrap();
                self.settings.lock().unwrap().patch_label =
                    label.unwrap_or_else(|| DEFAULT_PATCH_LABEL.to_owned());
            }
            "is-live" => {
                let live = value.get().unwrap();
                self.settings.lock().unwrap().is_live = live;
                self.obj().set_live(live);
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "scene" => self.settings.lock().unwrap().scene_text.to_value(),
            "location" => self.settings.lock().unwrap().location.to_value(),
            "is-live" => self.settings.lock().unwrap().is_live.to_value(),
            "patch-source" => self.settings.lock().unwrap().patch_source.to_value(),
            "max-image-size" => self.settings.lock().unwrap().images.max_side.to_value(),
            "max-image-bytes" => self
                .settings
                .lock()
                .unwrap()
                .images
                .max_total_bytes
                .to_value(),
            "patch-label" => self.settings.lock().unwrap().patch_label.to_value(),
            "last-error" => self.canvas.lock().unwrap().last_error.to_value(),
            "rendered-frames" => self.rendered_frames.load(Ordering::Relaxed).to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for CanvasSrc {}

impl ElementImpl for CanvasSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Canvas source",
                "Source/Video",
                "Renders a JSON scene of shapes, text and images, changed live by patches",
                "gst-peer developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list([
                    gst_video::VideoFormat::Rgbx,
                    gst_video::VideoFormat::Rgba,
                    gst_video::VideoFormat::Bgrx,
                    gst_video::VideoFormat::Bgra,
                ])
                .width_range(1..=MAX_SIDE)
                .height_range(1..=MAX_SIDE)
                .framerate_range(gst::Fraction::new(1, 1)..=gst::Fraction::new(1000, 1))
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for CanvasSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(err) = self.settings.lock().unwrap().scene_error.clone() {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("canvassrc cannot start: {err}")
            ));
        }
        let (source, label) = {
            let settings = self.settings.lock().unwrap();
            (settings.patch_source.clone(), settings.patch_label.clone())
        };
        if let Some(source) = source {
            let route = PatchRoute::connect(self.obj().upcast_ref(), &source, &label)
                .map_err(|err| gst::error_msg!(gst::ResourceError::Settings, ("{err}")))?;
            *self.route.lock().unwrap() = Some(route);
        }
        *self.state.lock().unwrap() = State::default();
        self.rendered_frames.store(0, Ordering::Relaxed);
        self.ticker.unlock_stop();
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.route.lock().unwrap().take();
        *self.state.lock().unwrap() = State::default();
        Ok(())
    }

    fn fixate(&self, mut caps: gst::Caps) -> gst::Caps {
        caps.truncate();
        {
            let caps = caps.make_mut();
            let s = caps.structure_mut(0).unwrap();
            s.fixate_field_nearest_int("width", DEFAULT_WIDTH);
            s.fixate_field_nearest_int("height", DEFAULT_HEIGHT);
            s.fixate_field_nearest_fraction("framerate", gst::Fraction::new(30, 1));
        }
        self.parent_fixate(caps)
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "unusable caps {caps}"))?;
        let layout = match info.format() {
            gst_video::VideoFormat::Rgbx => PixelLayout::Rgbx,
            gst_video::VideoFormat::Rgba => PixelLayout::Rgba,
            gst_video::VideoFormat::Bgrx => PixelLayout::Bgrx,
            gst_video::VideoFormat::Bgra => PixelLayout::Bgra,
            other => return Err(gst::loggable_error!(CAT, "unsupported format {other:?}")),
        };
        if info.stride()[0] as u32 != info.width() * 4 {
            return Err(gst::loggable_error!(CAT, "padded rows are not supported"));
        }
        let rate = FrameRate::new(info.fps())
            .ok_or_else(|| gst::loggable_error!(CAT, "framerate must be positive"))?;
        gst::debug!(CAT, imp = self, "drawing {caps}");
        let mut state = self.state.lock().unwrap();
        state.info = Some(info);
        state.layout = Some(layout);
        state.rate = Some(rate);
        // New size or format: the next frame must be drawn anew.
        state.last_buffer = None;
        state.last_scene = None;
        state.rendered_generation = None;
        Ok(())
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let rate = self.state.lock().unwrap().rate;
            let live = self.settings.lock().unwrap().is_live;
            // A frame is stamped with its tick, then drawn: up to one frame
            // late at worst.
            let min = rate.map_or(gst::ClockTime::ZERO, |r| r.frame_duration(0));
            q.set(live, if live { min } else { gst::ClockTime::ZERO }, None);
            return true;
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.ticker.unlock();
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.ticker.unlock_stop();
        Ok(())
    }
}

impl PushSrcImpl for CanvasSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let (info, layout, rate, previous) = {
            let state = self.state.lock().unwrap();
            match (&state.info, state.layout, state.rate) {
                (Some(info), Some(layout), Some(rate)) => {
                    (info.clone(), layout, rate, state.last_frame)
                }
                _ => return Err(gst::FlowError::NotNegotiated),
            }
        };
        let live = self.settings.lock().unwrap().is_live;
        let frame_no = if live {
            let frame_no = Ticker::next_frame(&*self.obj(), rate, previous);
            if self
                .ticker
                .wait_until(&*self.obj(), rate.frame_start(frame_no))
                == Tick::Flushing
            {
                return Err(gst::FlowError::Flushing);
            }
            frame_no
        } else {
            previous.map_or(0, |n| n + 1)
        };

        let (scene, generation) = {
            let canvas = self.canvas.lock().unwrap();
            (canvas.scene.clone(), canvas.generation)
        };
        let (reusable, previous) = {
            let state = self.state.lock().unwrap();
            let current = state.rendered_generation == Some(generation);
            let previous = if current {
                None
            } else {
                state.last_buffer.clone().zip(state.last_scene.clone())
            };
            (state.last_buffer.clone().filter(|_| current), previous)
        };
        let frame = match reusable {
            Some(buffer) => buffer,
            None => {
                let previous_ref = previous.as_ref().map(|(b, s)| (b, s));
                let rendered = self.render_frame(&scene, previous_ref, &info, layout)?;
                // No visible change (e.g. a node moved off-canvas): the last
                // frame still shows this scene.
                let buffer = match (rendered, previous) {
                    (Some(buffer), _) => buffer,
                    (None, Some((last, _))) => last,
                    (None, None) => unreachable!("a first frame is always drawn"),
                };
                let mut state = self.state.lock().unwrap();
                state.last_buffer = Some(buffer.clone());
                state.last_scene = Some(scene);
                state.rendered_generation = Some(generation);
                buffer
            }
        };
        self.state.lock().unwrap().last_frame = Some(frame_no);

        // A new buffer sharing the frame's memory: repeats cost no copy.
        let mut buffer = frame.copy();
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(rate.frame_start(frame_no));
            buffer.set_duration(rate.frame_duration(frame_no));
            buffer.set_offset(frame_no);
            buffer.set_offset_end(frame_no + 1);
        }
        Ok(CreateSuccess::NewBuffer(buffer))
    }
}
