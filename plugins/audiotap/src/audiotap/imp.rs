use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::{BandScale, EVENT_NAME, MESSAGE_NAME, Window};
use crate::analysis::level::frames_to_ns;
use crate::analysis::loudness::LoudnessSample;
use crate::analysis::spectrum::SpectrumConfig;
use crate::analysis::{AnalysisSet, Report, Tap, TapConfig};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "audiotap",
        gst::DebugColorFlags::empty(),
        Some("Audio analysis tap"),
    )
});

const DEFAULT_INTERVAL_NS: u64 = 100_000_000;
const DEFAULT_PEAK_TTL_NS: u64 = 300_000_000;
const DEFAULT_PEAK_FALLOFF: f64 = 10.0;
const DEFAULT_SPECTRUM_BANDS: u32 = 128;
const DEFAULT_SPECTRUM_SIZE: u32 = 2048;
const DEFAULT_SPECTRUM_SMOOTHING: f64 = 0.8;
const DEFAULT_SPECTRUM_THRESHOLD: f64 = -100.0;
const DEFAULT_WAVEFORM_POINTS: u32 = 64;
const DEFAULT_PITCH_MIN_CLARITY: f64 = 0.8;

#[derive(Debug, Clone, Copy)]
struct Settings {
    interval_ns: u64,
    post_messages: bool,
    json: bool,
    send_events: bool,
    peak_ttl_ns: u64,
    peak_falloff: f64,
    analyses: AnalysisSet,
    spectrum_bands: u32,
    spectrum_size: u32,
    spectrum_scale: BandScale,
    spectrum_window: Window,
    spectrum_smoothing: f64,
    spectrum_threshold: f64,
    spectrum_min_frequency: f64,
    spectrum_max_frequency: f64,
    waveform_points: u32,
    pitch_min_clarity: f64,
    /// Bumped whenever a property that shapes the measurements changes, so
    /// the streaming thread rebuilds its analyses before the next buffer.
    generation: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval_ns: DEFAULT_INTERVAL_NS,
            post_messages: true,
            json: true,
            send_events: true,
            peak_ttl_ns: DEFAULT_PEAK_TTL_NS,
            peak_falloff: DEFAULT_PEAK_FALLOFF,
            analyses: AnalysisSet::ALL,
            spectrum_bands: DEFAULT_SPECTRUM_BANDS,
            spectrum_size: DEFAULT_SPECTRUM_SIZE,
            spectrum_scale: BandScale::Linear,
            spectrum_window: Window::Blackman,
            spectrum_smoothing: DEFAULT_SPECTRUM_SMOOTHING,
            spectrum_threshold: DEFAULT_SPECTRUM_THRESHOLD,
            spectrum_min_frequency: 0.0,
            spectrum_max_frequency: 0.0,
            waveform_points: DEFAULT_WAVEFORM_POINTS,
            pitch_min_clarity: DEFAULT_PITCH_MIN_CLARITY,
            generation: 0,
        }
    }
}

impl Settings {
    fn tap_config(&self, info: &gst_audio::AudioInfo) -> TapConfig {
        let rate = info.rate();
        let mut config = TapConfig::new(info.channels() as usize, rate, self.interval_frames(rate));
        config.analyses = self.analyses;
        config.peak_ttl_ns = self.peak_ttl_ns;
        config.peak_falloff_db_per_s = self.peak_falloff;
        config.spectrum = SpectrumConfig {
            size: self.spectrum_size as usize,
            bands: self.spectrum_bands as usize,
            scale: self.spectrum_scale.into(),
            window: self.spectrum_window.into(),
            smoothing: self.spectrum_smoothing as f32,
            min_frequency: self.spectrum_min_frequency as f32,
            max_frequency: self.spectrum_max_frequency as f32,
            threshold_db: self.spectrum_threshold as f32,
        };
        config.waveform_points = self.waveform_points as usize;
        config.min_pitch_clarity = self.pitch_min_clarity as f32;
        config.loudness_weights = info.positions().map(|positions| {
            use gst_audio::AudioChannelPosition as P;
            positions
                .iter()
                .map(|p| match p {
                    P::Lfe1 | P::Lfe2 => 0.0,
                    P::RearLeft
                    | P::RearRight
                    | P::SideLeft
                    | P::SideRight
                    | P::SurroundLeft
                    | P::SurroundRight => 1.41,
                    _ => 1.0,
                })
                .collect()
        });
        config
    }

    /// As `level` computes it: rounded, at least one frame.
    fn interval_frames(&self, rate: u32) -> u64 {
        gst::ClockTime::from_nseconds(self.interval_ns)
            .mul_div_round(u64::from(rate), gst::ClockTime::SECOND.nseconds())
            .map_or(1, |frames| frames.nseconds().max(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleFormat {
    S16,
    S32,
    F32,
    F64,
}

struct State {
    info: gst_audio::AudioInfo,
    format: SampleFormat,
    tap: Tap,
    generation: u64,
    interval_frames: u64,
    /// Timestamp of the first frame of the current interval.
    interval_start: Option<gst::ClockTime>,
    /// A tap position (frames) and the timestamp it had, to time onsets.
    anchor: Option<(u64, gst::ClockTime)>,
    /// Frames taken since the tap was built.
    position: u64,
    json: String,
    /// Aligned copy for the rare buffer whose memory is not sample aligned.
    aligned: Vec<f64>,
}

#[derive(Default)]
pub struct AudioTap {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    last_json: Mutex<Option<String>>,
}

#[glib::object_subclass]
impl ObjectSubclass for AudioTap {
    const NAME: &'static str = "GstAudioTap";
    type Type = super::AudioTap;
    type ParentType = gst_base::BaseTransform;
}

impl AudioTap {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap()
    }

    fn update_setting(&self, change: impl FnOnce(&mut Settings)) {
        let mut settings = self.settings();
        change(&mut settings);
        settings.generation += 1;
    }

    fn analyze_buffer(&self, buffer: &gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = *self.settings();
        let mut state_guard = self.state.lock().unwrap();
        let Some(state) = state_guard.as_mut() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ["No caps before data"]);
            return Err(gst::FlowError::NotNegotiated);
        };
        if state.generation != settings.generation {
            gst::debug!(
                CAT,
                imp = self,
                "properties changed, restarting the measurements"
            );
            *state = self.new_state(&settings, state.info.clone(), state.format);
        }

        let pts = buffer.pts();
        if buffer.flags().contains(gst::BufferFlags::DISCONT) || state.interval_start.is_none() {
            if state.tap.frames_in_interval() == 0
                || buffer.flags().contains(gst::BufferFlags::DISCONT)
            {
                state.interval_start = pts;
            }
            state.anchor = pts.map(|pts| (state.position, pts));
        }

        let map = buffer.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["Failed to map buffer"]);
            gst::FlowError::Error
        })?;
        let gap = buffer.flags().contains(gst::BufferFlags::GAP);
        let mut reports = Vec::new();
        match state.format {
            SampleFormat::S16 => {
                self.analyze_samples::<i16>(state, &map, gap, &settings, &mut reports)
            }
            SampleFormat::S32 => {
                self.analyze_samples::<i32>(state, &map, gap, &settings, &mut reports)
            }
            SampleFormat::F32 => {
                self.analyze_samples::<f32>(state, &map, gap, &settings, &mut reports)
            }
            SampleFormat::F64 => {
                self.analyze_samples::<f64>(state, &map, gap, &settings, &mut reports)
            }
        }
        drop(state_guard);
        self.post(reports, &settings);
        Ok(gst::FlowSuccess::Ok)
    }

    fn analyze_samples<S: LoudnessSample>(
        &self,
        state: &mut State,
        bytes: &[u8],
        gap: bool,
        settings: &Settings,
        reports: &mut Vec<Outgoing>,
    ) {
        // SAFETY: every bit pattern is a valid i16/i32/f32/f64; align_to only
        // yields the middle part where the alignment is right.
        let (head, samples, _) = unsafe { bytes.align_to::<S>() };
        let samples = if head.is_empty() {
            samples
        } else {
            let words = bytes.len().div_ceil(8);
            state.aligned.resize(words, 0.0);
            // SAFETY: plain bytes into an f64 buffer at least as long.
            let raw = unsafe {
                std::slice::from_raw_parts_mut(state.aligned.as_mut_ptr() as *mut u8, bytes.len())
            };
            raw.copy_from_slice(bytes);
            let (_, aligned, _) = unsafe { raw.align_to::<S>() };
            // SAFETY: `aligned` borrows `state.aligned`, which is not touched
            // again until this call returns.
            unsafe { std::slice::from_raw_parts(aligned.as_ptr(), aligned.len()) }
        };

        let channels = state.info.channels() as usize;
        let mut rest = &samples[..samples.len() / channels * channels];
        while !rest.is_empty() {
            let frames_left = rest.len() / channels;
            let until_report = (state.interval_frames
                - state.tap.frames_in_interval().min(state.interval_frames))
            .max(1);
            let block = frames_left.min(until_report as usize);
            state
                .tap
                .process(&rest[..block * channels], frames_left, gap);
            state.position += block as u64;
            rest = &rest[block * channels..];
            if state.tap.frames_in_interval() >= state.interval_frames
                && let Some(outgoing) = self.close_interval(state, settings)
            {
                reports.push(outgoing);
            }
        }
    }

    /// Reads the tap and builds what goes out for this interval.
    fn close_interval(&self, state: &mut State, settings: &Settings) -> Option<Outgoing> {
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let timestamp = state.interval_start;
        let rate = u64::from(state.info.rate());
        let anchor = state.anchor;
        let report = state.tap.read();
        let duration = gst::ClockTime::from_nseconds(report.duration_ns);
        state.interval_start = timestamp.map(|t| t + duration);

        let stream_time = timestamp.and_then(|t| segment.and_then(|s| s.to_stream_time(t)));
        let running_time = timestamp.and_then(|t| segment.and_then(|s| s.to_running_time(t)));
        report.stream_time_ns = stream_time.map(gst::ClockTime::nseconds);
        if let (Some(onsets), Some((anchor_position, anchor_ts))) = (&report.onsets, anchor) {
            for &position in &onsets.positions {
                let ts = if position >= anchor_position {
                    anchor_ts.nseconds() + frames_to_ns(position - anchor_position, rate)
                } else {
                    anchor_ts
                        .nseconds()
                        .saturating_sub(frames_to_ns(anchor_position - position, rate))
                };
                let stream = segment
                    .and_then(|s| s.to_stream_time(gst::ClockTime::from_nseconds(ts)))
                    .map_or(ts, gst::ClockTime::nseconds);
                report.onset_times_ns.push(stream);
            }
        }
        if !(settings.post_messages || settings.send_events || settings.json) {
            return None;
        }
        report.write_json(&mut state.json);
        let structure = if settings.post_messages {
            Some(build_structure(
                report,
                timestamp,
                stream_time,
                running_time,
                duration,
                settings.json.then_some(state.json.as_str()),
            ))
        } else {
            None
        };
        Some(Outgoing {
            structure,
            json: state.json.clone(),
            running_time,
        })
    }

    fn post(&self, reports: Vec<Outgoing>, settings: &Settings) {
        let obj = self.obj();
        for outgoing in reports {
            if let Some(structure) = outgoing.structure {
                let msg = gst::message::Element::builder(structure).src(&*obj).build();
                let _ = obj.post_message(msg);
            }
            if settings.send_events {
                let event = gst::event::CustomDownstream::new(
                    gst::Structure::builder(EVENT_NAME)
                        .field("json", outgoing.json.as_str())
                        .field_if_some("running-time", outgoing.running_time.map(|t| t.nseconds()))
                        .build(),
                );
                let _ = obj.src_pad().push_event(event);
            }
            *self.last_json.lock().unwrap() = Some(outgoing.json);
        }
    }

    fn new_state(
        &self,
        settings: &Settings,
        info: gst_audio::AudioInfo,
        format: SampleFormat,
    ) -> State {
        let config = settings.tap_config(&info);
        let interval_frames = config.interval_frames;
        State {
            tap: Tap::new(config),
            info,
            format,
            generation: settings.generation,
            interval_frames,
            interval_start: None,
            anchor: None,
            position: 0,
            json: String::with_capacity(4096),
            aligned: Vec::new(),
        }
    }
}

/// One interval's results on their way out, built under the state lock and
/// sent after it is released.
struct Outgoing {
    structure: Option<gst::Structure>,
    json: String,
    running_time: Option<gst::ClockTime>,
}

fn f64_array(values: impl IntoIterator<Item = f64>) -> gst::Array {
    gst::Array::new(values)
}

fn build_structure(
    report: &Report,
    timestamp: Option<gst::ClockTime>,
    stream_time: Option<gst::ClockTime>,
    running_time: Option<gst::ClockTime>,
    duration: gst::ClockTime,
    json: Option<&str>,
) -> gst::Structure {
    // GST_CLOCK_TIME_NONE, as `level` reports unknown times.
    let none = u64::MAX;
    let ns = |t: Option<gst::ClockTime>| t.map_or(none, gst::ClockTime::nseconds);
    let mut s = gst::Structure::builder(MESSAGE_NAME)
        .field("timestamp", ns(timestamp))
        .field("stream-time", ns(stream_time))
        .field("running-time", ns(running_time))
        .field("duration", duration.nseconds())
        .field("endtime", ns(stream_time.map(|t| t + duration)))
        .build();
    if let Some(level) = &report.level {
        s.set("rms", f64_array(level.rms.iter().copied()));
        s.set("peak", f64_array(level.peak.iter().copied()));
        s.set("decay", f64_array(level.decay.iter().copied()));
    }
    if let Some(loudness) = &report.loudness {
        s.set("momentary", loudness.momentary);
        s.set("short-term", loudness.short_term);
        s.set("integrated", loudness.integrated);
        s.set("loudness-range", loudness.range);
        s.set("true-peak", f64_array(loudness.true_peak.iter().copied()));
        s.set("max-true-peak", loudness.max_true_peak);
    }
    if let Some(spectrum) = &report.spectrum {
        s.set("spectrum", gst::Array::new(spectrum.iter().copied()));
        s.set("spectrum-low", report.spectrum_range_hz.0 as f64);
        s.set("spectrum-high", report.spectrum_range_hz.1 as f64);
    }
    if let Some(waveform) = &report.waveform {
        s.set(
            "waveform-min",
            gst::Array::new(waveform.min.iter().copied()),
        );
        s.set(
            "waveform-max",
            gst::Array::new(waveform.max.iter().copied()),
        );
    }
    if let Some(pitch) = &report.pitch {
        s.set("pitch", pitch.frequency.map_or(0.0, f64::from));
        s.set("clarity", f64::from(pitch.clarity));
    }
    if let Some(onsets) = &report.onsets {
        s.set(
            "onsets",
            gst::Array::new(report.onset_times_ns.iter().copied()),
        );
        s.set("bpm", onsets.bpm.map_or(0.0, f64::from));
    }
    if let Some(voice) = &report.voice {
        s.set("voice", voice.active);
        s.set("voice-activity", f64::from(voice.activity));
    }
    if let Some(json) = json {
        s.set("json", json);
    }
    s
}

impl ObjectImpl for AudioTap {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let switch = |name: &str, blurb: &str| {
                glib::ParamSpecBoolean::builder(name)
                    .blurb(blurb)
                    .default_value(true)
                    .mutable_playing()
                    .build()
            };
            vec![
                glib::ParamSpecUInt64::builder("interval")
                    .nick("Interval")
                    .blurb("Interval of time between reports, in nanoseconds")
                    .minimum(1)
                    .default_value(DEFAULT_INTERVAL_NS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post an 'audiotap' element message on the bus every interval")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("json")
                    .nick("JSON field")
                    .blurb("Add a compact JSON copy of the results to each message, in the field 'json'")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("send-events")
                    .nick("Send events")
                    .blurb("Send the JSON results downstream every interval as a custom event named 'audiotap', for elements such as peersink to forward")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("last-json")
                    .nick("Last JSON")
                    .blurb("The JSON results of the latest interval")
                    .read_only()
                    .build(),
                switch("level", "Measure RMS, peak and decaying peak per channel, in dBFS, as the 'level' element does"),
                glib::ParamSpecUInt64::builder("peak-ttl")
                    .nick("Peak TTL")
                    .blurb("Time a peak is held before the decaying peak starts falling, in nanoseconds")
                    .default_value(DEFAULT_PEAK_TTL_NS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("peak-falloff")
                    .nick("Peak falloff")
                    .blurb("Decay rate of the decaying peak after peak-ttl, in dB per second (as in 'level')")
                    .minimum(0.0)
                    .default_value(DEFAULT_PEAK_FALLOFF)
                    .mutable_playing()
                    .build(),
                switch("loudness", "Measure EBU R128 loudness: momentary, short-term, integrated (LUFS), loudness range (LU) and true peak (dBTP)"),
                switch("spectrum", "Measure the magnitude spectrum in dB per band, like Tone.js FFT"),
                glib::ParamSpecUInt::builder("spectrum-bands")
                    .nick("Spectrum bands")
                    .blurb("Number of spectrum bands reported")
                    .minimum(1)
                    .maximum(4096)
                    .default_value(DEFAULT_SPECTRUM_BANDS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("spectrum-size")
                    .nick("Spectrum FFT size")
                    .blurb("FFT length in samples, rounded up to a power of two (32 to 32768); longer is finer in frequency and slower to react")
                    .minimum(32)
                    .maximum(32768)
                    .default_value(DEFAULT_SPECTRUM_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("spectrum-scale", BandScale::Linear)
                    .nick("Spectrum scale")
                    .blurb("How bands divide the frequency range")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("spectrum-window", Window::Blackman)
                    .nick("Spectrum window")
                    .blurb("Window applied before the FFT")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("spectrum-smoothing")
                    .nick("Spectrum smoothing")
                    .blurb("Weight of the previous reading when averaging magnitudes over time, 0 (none) to 1 (as Tone.js FFT smoothing)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SPECTRUM_SMOOTHING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("spectrum-threshold")
                    .nick("Spectrum threshold")
                    .blurb("Band levels below this many dB are reported as this value")
                    .maximum(0.0)
                    .default_value(DEFAULT_SPECTRUM_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("spectrum-min-frequency")
                    .nick("Spectrum lowest frequency")
                    .blurb("Lower edge of the first band in Hz; 0 means 0 Hz for linear bands and 20 Hz for log bands")
                    .minimum(0.0)
                    .default_value(0.0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("spectrum-max-frequency")
                    .nick("Spectrum highest frequency")
                    .blurb("Upper edge of the last band in Hz; 0 means half the sample rate")
                    .minimum(0.0)
                    .default_value(0.0)
                    .mutable_playing()
                    .build(),
                switch("waveform", "Report a min/max envelope of the channel mix for drawing a waveform"),
                glib::ParamSpecUInt::builder("waveform-points")
                    .nick("Waveform points")
                    .blurb("Number of min/max pairs per interval")
                    .minimum(1)
                    .maximum(8192)
                    .default_value(DEFAULT_WAVEFORM_POINTS)
                    .mutable_playing()
                    .build(),
                switch("pitch", "Detect the fundamental frequency (McLeod pitch method) and its clarity"),
                glib::ParamSpecDouble::builder("pitch-min-clarity")
                    .nick("Pitch minimum clarity")
                    .blurb("Clarity (0 to 1) below which no pitch is reported")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_PITCH_MIN_CLARITY)
                    .mutable_playing()
                    .build(),
                switch("onsets", "Detect onsets (spectral flux) and estimate the tempo in BPM"),
                switch("voice", "Detect voice activity (speech or no speech)"),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let bool_value = || value.get::<bool>().expect("type checked upstream");
        match pspec.name() {
            "post-messages" => self.settings().post_messages = bool_value(),
            "json" => self.settings().json = bool_value(),
            "send-events" => self.settings().send_events = bool_value(),
            "interval" => self.update_setting(|s| s.interval_ns = value.get().unwrap()),
            "peak-ttl" => self.update_setting(|s| s.peak_ttl_ns = value.get().unwrap()),
            "peak-falloff" => self.update_setting(|s| s.peak_falloff = value.get().unwrap()),
            "level" => self.update_setting(|s| s.analyses.level = bool_value()),
            "loudness" => self.update_setting(|s| s.analyses.loudness = bool_value()),
            "spectrum" => self.update_setting(|s| s.analyses.spectrum = bool_value()),
            "waveform" => self.update_setting(|s| s.analyses.waveform = bool_value()),
            "pitch" => self.update_setting(|s| s.analyses.pitch = bool_value()),
            "onsets" => self.update_setting(|s| s.analyses.onsets = bool_value()),
            "voice" => self.update_setting(|s| s.analyses.voice = bool_value()),
            "spectrum-bands" => self.update_setting(|s| s.spectrum_bands = value.get().unwrap()),
            "spectrum-size" => self.update_setting(|s| s.spectrum_size = value.get().unwrap()),
            "spectrum-scale" => self.update_setting(|s| s.spectrum_scale = value.get().unwrap()),
            "spectrum-window" => self.update_setting(|s| s.spectrum_window = value.get().unwrap()),
            "spectrum-smoothing" => {
                self.update_setting(|s| s.spectrum_smoothing = value.get().unwrap())
            }
            "spectrum-threshold" => {
                self.update_setting(|s| s.spectrum_threshold = value.get().unwrap())
            }
            "spectrum-min-frequency" => {
                self.update_setting(|s| s.spectrum_min_frequency = value.get().unwrap())
            }
            "spectrum-max-frequency" => {
                self.update_setting(|s| s.spectrum_max_frequency = value.get().unwrap())
            }
            "waveform-points" => self.update_setting(|s| s.waveform_points = value.get().unwrap()),
            "pitch-min-clarity" => {
                self.update_setting(|s| s.pitch_min_clarity = value.get().unwrap())
            }
            other => unimplemented!("property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = *self.settings();
        match pspec.name() {
            "interval" => s.interval_ns.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "json" => s.json.to_value(),
            "send-events" => s.send_events.to_value(),
            "last-json" => self.last_json.lock().unwrap().to_value(),
            "level" => s.analyses.level.to_value(),
            "peak-ttl" => s.peak_ttl_ns.to_value(),
            "peak-falloff" => s.peak_falloff.to_value(),
            "loudness" => s.analyses.loudness.to_value(),
            "spectrum" => s.analyses.spectrum.to_value(),
            "spectrum-bands" => s.spectrum_bands.to_value(),
            "spectrum-size" => s.spectrum_size.to_value(),
            "spectrum-scale" => s.spectrum_scale.to_value(),
            "spectrum-window" => s.spectrum_window.to_value(),
            "spectrum-smoothing" => s.spectrum_smoothing.to_value(),
            "spectrum-threshold" => s.spectrum_threshold.to_value(),
            "spectrum-min-frequency" => s.spectrum_min_frequency.to_value(),
            "spectrum-max-frequency" => s.spectrum_max_frequency.to_value(),
            "waveform" => s.analyses.waveform.to_value(),
            "waveform-points" => s.waveform_points.to_value(),
            "pitch" => s.analyses.pitch.to_value(),
            "pitch-min-clarity" => s.pitch_min_clarity.to_value(),
            "onsets" => s.analyses.onsets.to_value(),
            "voice" => s.analyses.voice.to_value(),
            other => unimplemented!("property {other}"),
        }
    }
}

impl GstObjectImpl for AudioTap {}

impl ElementImpl for AudioTap {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Audio analysis tap",
                "Filter/Analyzer/Audio",
                "Passes audio through untouched and reports level, EBU R128 loudness, spectrum, \
                 waveform, pitch, onsets/tempo and voice activity as messages, JSON and events",
                "gst-peer developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format_list([
                    gst_audio::AUDIO_FORMAT_S16,
                    gst_audio::AUDIO_FORMAT_S32,
                    gst_audio::AUDIO_FORMAT_F32,
                    gst_audio::AUDIO_FORMAT_F64,
                ])
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for AudioTap {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_audio::AudioInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Invalid caps {incaps}"))?;
        let format = match info.format() {
            f if f == gst_audio::AUDIO_FORMAT_S16 => SampleFormat::S16,
            f if f == gst_audio::AUDIO_FORMAT_S32 => SampleFormat::S32,
            f if f == gst_audio::AUDIO_FORMAT_F32 => SampleFormat::F32,
            f if f == gst_audio::AUDIO_FORMAT_F64 => SampleFormat::F64,
            other => return Err(gst::loggable_error!(CAT, "Unsupported format {other:?}")),
        };
        gst::debug!(CAT, imp = self, "configured for {incaps}");
        let settings = *self.settings();
        *self.state.lock().unwrap() = Some(self.new_state(&settings, info, format));
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Eos(_) => {
                // Like `level`, report the partial last interval.
                let settings = *self.settings();
                let outgoing = self.state.lock().unwrap().as_mut().and_then(|state| {
                    (state.tap.frames_in_interval() > 0)
                        .then(|| self.close_interval(state, &settings))
                        .flatten()
                });
                self.post(outgoing.into_iter().collect(), &settings);
            }
            gst::EventView::FlushStop(_) => {
                let settings = *self.settings();
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    *state = self.new_state(&settings, state.info.clone(), state.format);
                }
            }
            _ => (),
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.analyze_buffer(buf)
    }

    fn transform_ip_passthrough(
        &self,
        buf: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.analyze_buffer(buf)
    }
}
