//! How fast a browser publishing its camera ramps up, read from the
//! sending browser's own `getStats()`: resolution, frame rate and bitrate
//! over time. Used to compare publishing to gst-peer with publishing to
//! another browser in the same run (issue 17), and by the benchmark
//! docs/benchmarks/ingest.md.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;

/// One look at the sender's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct RampSample {
    /// Seconds since the first video frame was sent.
    pub at: f64,
    pub width: u32,
    pub height: u32,
    pub frames_per_second: f64,
    /// RTP payload and header bytes sent so far, video and audio.
    pub video_bytes: u64,
    pub audio_bytes: u64,
    pub video_packets: u64,
    /// Packets the receiver asked for again (NACKed) so far.
    pub nacks: u64,
    /// Video packets the receiver reported lost so far (its receiver
    /// reports, as the browser's `remote-inbound-rtp` shows them).
    pub lost: u64,
    /// Whether the browser had a receiver report to read `lost` from
    /// (without one, `lost` is 0 for want of news, not for want of loss).
    pub loss_reported: bool,
    /// The browser's own bandwidth estimate (bit/s), when it has one.
    pub available_outgoing_bitrate: Option<f64>,
    /// What holds the picture back: "bandwidth", "cpu", "none", ...
    pub limitation: String,
}

/// Samples of one publishing run, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Ramp {
    pub samples: Vec<RampSample>,
}

/// How often the page samples `getStats()`.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// Installs a sampler in the page: every [`SAMPLE_INTERVAL`] it reads the
/// statistics of the peer connection `connection` evaluates to (a JS
/// expression, evaluated each time: the connection may not exist yet).
pub fn start_sampling(browser: &Browser, connection: &str) {
    let script = format!(
        r#"
        const connection = () => {{ try {{ return ({connection}); }} catch (e) {{ return null; }} }};
        const ramp = (window.__ramp = {{ samples: [], firstFrameAt: null }});
        ramp.timer = setInterval(async () => {{
          const pc = connection();
          if (!pc) return;
          const report = await pc.getStats();
          const sample = {{ videoBytes: 0, audioBytes: 0, videoPackets: 0, nacks: 0, framesSent: 0, lost: 0, lossReports: 0 }};
          report.forEach((s) => {{
            if (s.type === 'outbound-rtp' && s.kind === 'video') {{
              sample.width = s.frameWidth || 0;
              sample.height = s.frameHeight || 0;
              sample.fps = s.framesPerSecond || 0;
              sample.videoBytes += (s.bytesSent || 0) + (s.headerBytesSent || 0);
              sample.videoPackets += s.packetsSent || 0;
              sample.nacks += s.nackCount || 0;
              sample.framesSent += s.framesSent || 0;
              sample.limitation = s.qualityLimitationReason || '';
            }}
            if (s.type === 'remote-inbound-rtp' && s.kind === 'video') {{
              sample.lost += Math.max(0, s.packetsLost || 0);
              sample.lossReports += 1;
            }}
            if (s.type === 'outbound-rtp' && s.kind === 'audio') {{
              sample.audioBytes += (s.bytesSent || 0) + (s.headerBytesSent || 0);
            }}
            if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded'
                && s.availableOutgoingBitrate !== undefined) {{
              sample.available = s.availableOutgoingBitrate;
            }}
          }});
          if (!sample.framesSent) return;
          const now = performance.now();
          if (ramp.firstFrameAt === null) ramp.firstFrameAt = now;
          sample.at = (now - ramp.firstFrameAt) / 1000;
          ramp.samples.push(sample);
        }}, {interval});
        return true;
        "#,
        interval = SAMPLE_INTERVAL.as_millis()
    );
    browser.eval(&script, vec![]);
}

/// Waits until `seconds` of sending have been sampled, then stops the
/// sampler and returns what it saw.
pub fn collect(browser: &Browser, seconds: f64) -> Ramp {
    wait_for_sampled(browser, seconds);
    let samples = browser.eval(
        "clearInterval(window.__ramp.timer); return window.__ramp.samples;",
        vec![],
    );
    Ramp::from_json(&samples)
}

/// Waits until `seconds` of sending have been sampled and returns what the
/// sampler saw so far; it goes on sampling (for a run in phases).
pub fn sampled_until(browser: &Browser, seconds: f64) -> Ramp {
    wait_for_sampled(browser, seconds);
    Ramp::from_json(&browser.eval("return window.__ramp.samples;", vec![]))
}

fn wait_for_sampled(browser: &Browser, seconds: f64) {
    browser.wait_for(
        &format!(
            "window.__ramp.samples.length > 0 && \
             window.__ramp.samples[window.__ramp.samples.length - 1].at >= {seconds}"
        ),
        Duration::from_secs_f64(seconds + 60.0),
    );
}

impl Ramp {
    pub fn from_json(samples: &Value) -> Ramp {
        let number = |s: &Value, key: &str| s[key].as_f64().unwrap_or(0.0);
        let samples = samples
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| RampSample {
                at: number(s, "at"),
                width: number(s, "width") as u32,
                height: number(s, "height") as u32,
                frames_per_second: number(s, "fps"),
                video_bytes: number(s, "videoBytes") as u64,
                audio_bytes: number(s, "audioBytes") as u64,
                video_packets: number(s, "videoPackets") as u64,
                nacks: number(s, "nacks") as u64,
                lost: number(s, "lost") as u64,
                loss_reported: number(s, "lossReports") > 0.0,
                available_outgoing_bitrate: s["available"].as_f64(),
                limitation: s["limitation"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        Ramp { samples }
    }

    /// The last sample, the state the run ended in.
    pub fn last(&self) -> &RampSample {
        self.samples.last().expect("at least one sample")
    }

    /// When the picture first reached `width` pixels or more.
    pub fn time_to_width(&self, width: u32) -> Option<f64> {
        self.samples.iter().find(|s| s.width >= width).map(|s| s.at)
    }

    /// Every resolution the picture went through, with when it started.
    pub fn resolution_steps(&self) -> Vec<(f64, u32, u32)> {
        let mut steps: Vec<(f64, u32, u32)> = Vec::new();
        for sample in &self.samples {
            if steps
                .last()
                .is_none_or(|&(_, w, h)| (w, h) != (sample.width, sample.height))
            {
                steps.push((sample.at, sample.width, sample.height));
            }
        }
        steps
    }

    /// The sample closest to `at` seconds.
    fn sample_near(&self, at: f64) -> &RampSample {
        self.samples
            .iter()
            .min_by(|a, b| (a.at - at).abs().total_cmp(&(b.at - at).abs()))
            .expect("at least one sample")
    }

    /// Video and audio sent between `from` and `to` seconds, in bit/s
    /// (RTP payload and headers).
    pub fn bitrate_between(&self, from: f64, to: f64) -> f64 {
        let (start, end) = (self.sample_near(from), self.sample_near(to));
        let bytes = (end.video_bytes + end.audio_bytes)
            .saturating_sub(start.video_bytes + start.audio_bytes);
        if end.at <= start.at {
            return 0.0;
        }
        bytes as f64 * 8.0 / (end.at - start.at)
    }

    /// Video only, between `from` and `to` seconds, in bit/s.
    pub fn video_bitrate_between(&self, from: f64, to: f64) -> f64 {
        let (start, end) = (self.sample_near(from), self.sample_near(to));
        if end.at <= start.at {
            return 0.0;
        }
        end.video_bytes.saturating_sub(start.video_bytes) as f64 * 8.0 / (end.at - start.at)
    }

    /// What was sent over the last `seconds` of the run, in bit/s.
    pub fn bitrate_of_last(&self, seconds: f64) -> f64 {
        let end = self.last().at;
        self.bitrate_between(end - seconds, end)
    }

    /// Share of the video packets sent over the last `seconds` that the
    /// receiver reported lost (after retransmissions it got, as its
    /// receiver reports count them). Panics when the receiver sent no
    /// report over that time: there would be nothing to measure.
    pub fn lost_share_of_last(&self, seconds: f64) -> f64 {
        let end = self.last();
        assert!(
            end.loss_reported,
            "the browser shows no receiver report (remote-inbound-rtp) at {:.1} s",
            end.at
        );
        let start = self.sample_near(end.at - seconds);
        let packets = end.video_packets.saturating_sub(start.video_packets);
        if packets == 0 {
            return 0.0;
        }
        end.lost.saturating_sub(start.lost) as f64 / packets as f64
    }

    /// Share of the video packets sent over the last `seconds` that the
    /// receiver NACKed (asked for again: lost, or late).
    pub fn nacked_share_of_last(&self, seconds: f64) -> f64 {
        let end = self.last();
        let start = self.sample_near(end.at - seconds);
        let packets = end.video_packets.saturating_sub(start.video_packets);
        if packets == 0 {
            return 0.0;
        }
        end.nacks.saturating_sub(start.nacks) as f64 / packets as f64
    }

    /// A table for people: one line per 5 s, resolution, frame rate, the
    /// bitrate of the 5 s before and the browser's estimate.
    pub fn table(&self, label: &str) -> String {
        let mut text = format!(
            "{label}\n  {:>5}  {:>10}  {:>5}  {:>12}  {:>12}  limitation\n",
            "t (s)", "resolution", "fps", "kbit/s (5 s)", "estimate"
        );
        let end = self.last().at;
        let mut at = 5.0;
        while at <= end + 0.25 {
            let sample = self.sample_near(at);
            let estimate = sample
                .available_outgoing_bitrate
                .map_or("-".to_owned(), |b| format!("{:.0}", b / 1000.0));
            let _ = writeln!(
                text,
                "  {:>5.1}  {:>10}  {:>5.0}  {:>12.0}  {:>12}  {}",
                sample.at,
                format!("{}x{}", sample.width, sample.height),
                sample.frames_per_second,
                self.bitrate_between(at - 5.0, at) / 1000.0,
                estimate,
                sample.limitation
            );
            at += 5.0;
        }
        let steps: Vec<String> = self
            .resolution_steps()
            .iter()
            .map(|(at, w, h)| format!("{w}x{h} at {at:.1} s"))
            .collect();
        let _ = writeln!(text, "  steps: {}", steps.join(", "));
        text
    }

    /// The figures as JSON, for artifacts.
    pub fn to_json(&self) -> Value {
        json!(
            self.samples
                .iter()
                .map(|s| json!({
                    "at": s.at, "width": s.width, "height": s.height, "fps": s.frames_per_second,
                    "videoBytes": s.video_bytes, "audioBytes": s.audio_bytes,
                    "videoPackets": s.video_packets, "nacks": s.nacks, "lost": s.lost,
                    "lossReports": u32::from(s.loss_reported),
                    "available": s.available_outgoing_bitrate, "limitation": s.limitation,
                }))
                .collect::<Vec<_>>()
        )
    }
}

/// Publishes the fake camera at `width`x`height` from one peer connection
/// of the page to another in the same page (Chromium to Chromium, as a
/// call between two browsers on this machine would), and starts sampling
/// the sending one. The page must be a secure context (any page of our
/// server on 127.0.0.1).
pub fn publish_browser_to_browser(browser: &Browser, width: u32, height: u32) {
    let result = browser.eval_async(
        r#"
        const [width, height, done] = arguments;
        (async () => {
          const stream = await navigator.mediaDevices.getUserMedia({
            video: { width: { exact: width }, height: { exact: height }, frameRate: 30 },
            audio: true,
          });
          const sender = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
          const receiver = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
          sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
          receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
          receiver.ontrack = (e) => {
            // Rendered, as a watching browser would (it decodes what it shows).
            if (e.track.kind !== 'video') return;
            const video = document.createElement('video');
            video.muted = true;
            video.autoplay = true;
            video.srcObject = e.streams[0];
            document.body.appendChild(video);
          };
          for (const track of stream.getTracks()) {
            sender.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
          }
          await sender.setLocalDescription();
          await receiver.setRemoteDescription(sender.localDescription);
          await receiver.setLocalDescription();
          await sender.setRemoteDescription(receiver.localDescription);
          window.__browserToBrowser = { sender, receiver, stream };
          done(true);
        })().catch((err) => done(String(err)));
        "#,
        vec![json!(width), json!(height)],
    );
    assert_eq!(
        result,
        Value::Bool(true),
        "browser-to-browser call failed: {result}"
    );
    start_sampling(browser, "window.__browserToBrowser.sender");
}

/// Ends the call `publish_browser_to_browser` started.
pub fn end_browser_to_browser(browser: &Browser) {
    browser.eval(
        "const call = window.__browserToBrowser; call.sender.close(); call.receiver.close(); \
         call.stream.getTracks().forEach((t) => t.stop()); return true;",
        vec![],
    );
}

/// Publishes the fake camera at `width`x`height` to the WHIP endpoint
/// `endpoint` with the client of our pages (whip.js), and starts sampling
/// the connection. Returns the answer's SDP as the browser got it.
pub fn publish_whip(browser: &Browser, endpoint: &str, width: u32, height: u32) -> String {
    let result = browser.eval_async(
        r#"
        const [endpoint, width, height, done] = arguments;
        (async () => {
          const { WhipPublisher } = await import('/whip.js');
          const stream = await navigator.mediaDevices.getUserMedia({
            video: { width: { exact: width }, height: { exact: height }, frameRate: 30 },
            audio: true,
          });
          const publisher = new WhipPublisher(endpoint);
          window.__whip = publisher;
          await publisher.publish(stream);
          done({ answer: publisher.answer });
        })().catch((err) => done({ error: String(err) }));
        "#,
        vec![json!(endpoint), json!(width), json!(height)],
    );
    let answer = result["answer"]
        .as_str()
        .unwrap_or_else(|| panic!("WHIP publishing failed: {result}"));
    start_sampling(browser, "window.__whip.pc");
    answer.to_owned()
}

/// Ends what `publish_whip` started (DELETE: the session ends).
pub fn stop_whip(browser: &Browser) {
    browser.eval_async(
        "const done = arguments[0]; window.__whip.stop().then(() => done(true), () => done(false));",
        vec![],
    );
}

/// The presentation time (seconds) of every video frame of a recorded
/// file that decodes, in order: what a player would show, and when.
pub fn decoded_video_times(path: &std::path::Path) -> Vec<f64> {
    use gst::prelude::*;
    use std::sync::{Arc, Mutex};

    let pipeline = gst::Pipeline::new();
    let source = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()
        .expect("filesrc");
    let decode = gst::ElementFactory::make("decodebin")
        .build()
        .expect("decodebin");
    pipeline.add_many([&source, &decode]).unwrap();
    source.link(&decode).unwrap();
    let times = Arc::new(Mutex::new(Vec::new()));
    let weak = pipeline.downgrade();
    let pad_times = times.clone();
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video"));
        let sink = if video {
            let times = pad_times.clone();
            gst_app::AppSink::builder()
                .sync(false)
                .callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |sink| {
                            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            if let Some(pts) = sample.buffer().and_then(|b| b.pts()) {
                                times.lock().unwrap().push(pts.seconds_f64());
                            }
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                )
                .build()
                .upcast::<gst::Element>()
        } else {
            gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
                .unwrap()
        };
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        let _ = pad.link(&sink.static_pad("sink").unwrap());
    });
    pipeline
        .set_state(gst::State::Playing)
        .expect("the file can be played");
    let end = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(err)) => {
            panic!("{} does not play: {}", path.display(), err.error())
        }
        _ => panic!("{} did not finish decoding within 60 s", path.display()),
    }
    let mut times = times.lock().unwrap().clone();
    times.sort_by(f64::total_cmp);
    times
}

/// Of frame times (seconds, sorted), those of the last `seconds`: how
/// many frames, and the longest time between two of them (the longest a
/// player shows one picture).
pub fn frames_and_longest_gap_of_last(times: &[f64], seconds: f64) -> (usize, f64) {
    let Some(&end) = times.last() else {
        return (0, f64::INFINITY);
    };
    let last: Vec<f64> = times
        .iter()
        .copied()
        .filter(|&t| t >= end - seconds)
        .collect();
    let longest = last
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .fold(0.0, f64::max);
    (last.len(), longest)
}

/// The connection of the publish page (`/publish`) to its one viewer.
pub const PUBLISH_PAGE_CONNECTION: &str = "[...window.peerPage.publisher.sessions.values()][0].pc";

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, width: u32, bytes: u64) -> RampSample {
        RampSample {
            at,
            width,
            height: width * 9 / 16,
            frames_per_second: 30.0,
            video_bytes: bytes,
            audio_bytes: 0,
            video_packets: bytes / 1000,
            nacks: 0,
            lost: 0,
            loss_reported: true,
            available_outgoing_bitrate: None,
            limitation: "bandwidth".into(),
        }
    }

    #[test]
    fn frames_and_gaps_of_the_last_seconds() {
        let times = [0.0, 1.0, 2.0, 2.1, 2.2, 3.5, 3.6];
        let (frames, gap) = frames_and_longest_gap_of_last(&times, 1.5);
        assert_eq!(frames, 4);
        assert!((gap - 1.3).abs() < 1e-9, "{gap}");
        assert_eq!(frames_and_longest_gap_of_last(&[], 10.0).0, 0);
    }

    #[test]
    fn steps_times_and_rates_come_from_the_samples() {
        let ramp = Ramp {
            samples: vec![
                sample(0.0, 320, 0),
                sample(5.0, 320, 250_000),
                sample(10.0, 640, 750_000),
                sample(20.0, 1280, 2_000_000),
            ],
        };
        assert_eq!(ramp.time_to_width(640), Some(10.0));
        assert_eq!(ramp.time_to_width(1920), None);
        assert_eq!(
            ramp.resolution_steps(),
            vec![(0.0, 320, 180), (10.0, 640, 360), (20.0, 1280, 720)]
        );
        assert_eq!(ramp.bitrate_of_last(10.0), 1_000_000.0);
        assert_eq!(ramp.bitrate_between(0.0, 5.0), 400_000.0);
    }
}
