//! CPU cost per sample-frame of `audiotap` against GStreamer's `level`,
//! `spectrum` and (when its plugin is on GST_PLUGIN_PATH) gst-plugins-rs's
//! `ebur128level`, all in one run on the same input.
//!
//! Cost = process CPU time of `source ! ELEMENT ! fakesink` minus that of
//! `source ! fakesink`, divided by the frames pushed. Each configuration runs
//! several rounds, interleaved, and the median counts.
//!
//! cargo run --release -p gst-plugin-audiotap --example audiotap-bench -- [SECONDS] [ROUNDS] [--pure-only]

use std::time::Duration;

use gst::prelude::*;

const RATE: u32 = 48000;
const CHANNELS: u32 = 2;
const FRAMES_PER_BUFFER: u64 = 1024;

fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs one pipeline to EOS; returns its CPU time and the element messages seen.
fn run(description: &str) -> (Duration, usize) {
    let pipeline = gst::parse::launch(description).expect(description);
    let bus = pipeline.bus().unwrap();
    let start = cpu_time();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = 0;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{description}: {}", e.error()),
            gst::MessageView::Element(_) => messages += 1,
            _ => (),
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (cpu_time() - start, messages)
}

struct Case {
    name: &'static str,
    element: String,
}

/// FFT lengths compared at equal work, with the interval (ns) that is
/// exactly one FFT length of frames at 48 kHz (rounded up a hair, so
/// both elements count that many frames and not one fewer).
const EQUAL_WORK: [(u32, u64); 2] = [(2048, 42_666_667), (256, 5_333_334)];

/// A case name built at run time, kept for the run.
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

fn audiotap(only: &[&str], extra: &str) -> String {
    let all = [
        "level", "loudness", "spectrum", "waveform", "pitch", "onsets", "voice",
    ];
    let switches: Vec<String> = all
        .iter()
        .map(|a| format!("{a}={}", only.is_empty() || only.contains(a)))
        .collect();
    format!("audiotap send-events=false {} {extra}", switches.join(" "))
}

/// The analyses alone, without GStreamer: CPU time of `Tap::process` and
/// `Tap::read` over pre-generated stereo noise, one report per 4800 frames.
fn pure_costs<S: gstaudiotap::analysis::loudness::LoudnessSample>(
    label: &str,
    convert: impl Fn(f32) -> S,
    seconds: f64,
) {
    use gstaudiotap::analysis::{AnalysisSet, Tap, TapConfig};
    let frames = (seconds * RATE as f64) as usize;
    let mut seed = 0x1234_5678u32;
    let samples: Vec<S> = (0..frames * CHANNELS as usize)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            convert((seed >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        })
        .collect();
    let none = AnalysisSet::NONE;
    let sets = [
        ("everything", AnalysisSet::ALL),
        (
            "level",
            AnalysisSet {
                level: true,
                ..none
            },
        ),
        (
            "loudness",
            AnalysisSet {
                loudness: true,
                ..none
            },
        ),
        (
            "spectrum",
            AnalysisSet {
                spectrum: true,
                ..none
            },
        ),
        (
            "waveform",
            AnalysisSet {
                waveform: true,
                ..none
            },
        ),
        (
            "pitch",
            AnalysisSet {
                pitch: true,
                ..none
            },
        ),
        (
            "onsets",
            AnalysisSet {
                onsets: true,
                ..none
            },
        ),
        (
            "voice",
            AnalysisSet {
                voice: true,
                ..none
            },
        ),
    ];
    print!("| {label} (analysis only, no GStreamer) |");
    let (mut read_micros, mut json_micros, mut json_len) = (0.0, 0.0, 0);
    for (_, set) in sets {
        let mut config = TapConfig::new(CHANNELS as usize, RATE, 4800);
        config.analyses = set;
        let mut tap = Tap::new(config);
        let start = cpu_time();
        for buffer in samples.chunks(FRAMES_PER_BUFFER as usize * CHANNELS as usize) {
            let mut rest = buffer;
            while !rest.is_empty() {
                let left = rest.len() / CHANNELS as usize;
                let block = left.min((4800 - tap.frames_in_interval()) as usize);
                tap.process(&rest[..block * CHANNELS as usize], left, false);
                rest = &rest[block * CHANNELS as usize..];
                if tap.frames_in_interval() == 4800 {
                    tap.read();
                }
            }
        }
        let elapsed = cpu_time() - start;
        print!(" {:.1} |", elapsed.as_nanos() as f64 / frames as f64);
        if set == AnalysisSet::ALL {
            let mut json = String::new();
            let start = cpu_time();
            for _ in 0..1000 {
                tap.read();
            }
            read_micros = (cpu_time() - start).as_nanos() as f64 / 1000.0 / 1000.0;
            let report = tap.read().clone();
            let start = cpu_time();
            for _ in 0..1000 {
                report.write_json(&mut json);
            }
            json_micros = (cpu_time() - start).as_nanos() as f64 / 1000.0 / 1000.0;
            json_len = json.len();
        }
    }
    println!();
    JSON_COST.with(|c| c.set((read_micros, json_micros, json_len)));
}

thread_local! {
    static JSON_COST: std::cell::Cell<(f64, f64, usize)> = const { std::cell::Cell::new((0.0, 0.0, 0)) };
}

/// CPU cost per sample frame of audiotap against GStreamer's level,
/// spectrum and (when found) ebur128level: the analyses alone, then each
/// element in a pipeline; prints Markdown tables.
#[derive(clap::Parser)]
struct Cli {
    /// Seconds of audio per pipeline run.
    #[arg(default_value_t = 120.0)]
    seconds: f64,
    /// Rounds per configuration (the median counts).
    #[arg(default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    rounds: usize,
    /// Measure the analyses alone, without pipelines.
    #[arg(long)]
    pure_only: bool,
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    let (seconds, rounds) = (cli.seconds, cli.rounds);
    gst::init().unwrap();
    gstaudiotap::plugin_register_static().unwrap();
    let has_ebur128level = gst::ElementFactory::find("ebur128level").is_some();

    println!("### The analyses alone, ns per stereo frame\n");
    println!(
        "| input | everything | level | loudness | spectrum | waveform | pitch | onsets | voice |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    pure_costs("F32", |v| v, seconds.min(60.0));
    pure_costs("S16", |v| (v * 32767.0) as i16, seconds.min(60.0));
    let (read_micros, json_micros, json_len) = JSON_COST.with(|c| c.get());
    println!(
        "\nPer report, everything on (128 bands, 64 waveform points): reading it (spectrum and \
         pitch FFTs, tempo) {read_micros:.1} us, writing its JSON ({json_len} bytes) {json_micros:.1} us.\n"
    );
    if cli.pure_only {
        return;
    }

    let buffers = (seconds * RATE as f64 / FRAMES_PER_BUFFER as f64).ceil() as u64;
    let frames = buffers * FRAMES_PER_BUFFER;
    println!(
        "{seconds} s of {RATE} Hz {CHANNELS}-channel white noise per run ({frames} frames, \
         {FRAMES_PER_BUFFER}-frame buffers), median of {rounds} rounds; reports every 100 ms.\n"
    );

    let mut cases = vec![
        Case {
            name: "level",
            element: "level interval=100000000".into(),
        },
        Case {
            name: "spectrum (bands=128)",
            element: "spectrum bands=128 interval=100000000".into(),
        },
        // bands=129: FFT 256 (spectrum's FFT is 2 × bands − 2), a power of
        // two, where 254 = 2 × 127 is a slow size; same reports.
        Case {
            name: "spectrum (bands=129)",
            element: "spectrum bands=129 interval=100000000".into(),
        },
    ];
    // Equal work: both elements run one FFT of the same length per hop of
    // that many frames and report after each (an interval of exactly one
    // FFT length), with the same number of bands; with messages (audiotap
    // without its JSON, which spectrum has no counterpart of) and without.
    for (fft, interval) in EQUAL_WORK {
        let bands = fft / 2 + 1;
        cases.extend([
            Case {
                name: leak(format!("equal work {fft}: spectrum bands={bands}")),
                element: format!("spectrum bands={bands} interval={interval}"),
            },
            Case {
                name: leak(format!("equal work {fft}: audiotap spectrum")),
                element: audiotap(
                    &["spectrum"],
                    &format!(
                        "spectrum-size={fft} spectrum-bands={bands} interval={interval} json=false"
                    ),
                ),
            },
            Case {
                name: leak(format!("equal work {fft}, no messages: spectrum")),
                element: format!("spectrum bands={bands} interval={interval} post-messages=false"),
            },
            Case {
                name: leak(format!("equal work {fft}, no messages: audiotap")),
                element: audiotap(
                    &["spectrum"],
                    &format!(
                        "spectrum-size={fft} spectrum-bands={bands} interval={interval} \
                         post-messages=false json=false"
                    ),
                ),
            },
        ]);
    }
    if has_ebur128level {
        cases.push(Case {
            name: "ebur128level (all modes)",
            element: "ebur128level interval=100000000".into(),
        });
    }
    cases.extend([
        Case {
            name: "audiotap, everything on",
            element: audiotap(&[], ""),
        },
        Case {
            name: "audiotap, everything on, no messages",
            element: audiotap(&[], "post-messages=false json=false"),
        },
        Case {
            name: "audiotap level+spectrum",
            element: audiotap(&["level", "spectrum"], ""),
        },
        Case {
            name: "audiotap level",
            element: audiotap(&["level"], ""),
        },
        Case {
            name: "audiotap loudness",
            element: audiotap(&["loudness"], ""),
        },
        Case {
            name: "audiotap spectrum",
            element: audiotap(&["spectrum"], ""),
        },
        Case {
            name: "audiotap waveform",
            element: audiotap(&["waveform"], ""),
        },
        Case {
            name: "audiotap pitch",
            element: audiotap(&["pitch"], ""),
        },
        Case {
            name: "audiotap onsets",
            element: audiotap(&["onsets"], ""),
        },
        Case {
            name: "audiotap voice",
            element: audiotap(&["voice"], ""),
        },
    ]);

    for format in ["F32LE", "S16LE"] {
        let source = format!(
            "audiotestsrc num-buffers={buffers} samplesperbuffer={FRAMES_PER_BUFFER} wave=white-noise \
             ! audio/x-raw,format={format},rate={RATE},channels={CHANNELS},layout=interleaved"
        );
        let baseline_description = format!("{source} ! fakesink");
        let mut baseline = Vec::new();
        let mut samples: Vec<Vec<(Duration, usize)>> = vec![Vec::new(); cases.len()];
        for _ in 0..rounds {
            baseline.push(run(&baseline_description).0);
            for (case, out) in cases.iter().zip(&mut samples) {
                out.push(run(&format!("{source} ! {} ! fakesink", case.element)));
            }
        }
        baseline.sort();
        let base = baseline[rounds / 2];
        let per_frame =
            |d: Duration| (d.as_nanos() as f64 - base.as_nanos() as f64) / frames as f64;
        let costs: Vec<(f64, usize)> = samples
            .iter_mut()
            .map(|s| {
                s.sort();
                let (d, messages) = s[rounds / 2];
                (per_frame(d), messages)
            })
            .collect();
        println!("### {format}, stereo, 48 kHz\n");
        println!(
            "baseline (audiotestsrc ! fakesink): {:.1} ns/frame\n",
            base.as_nanos() as f64 / frames as f64
        );
        println!("| element | ns/frame | messages |");
        println!("|---|---:|---:|");
        for (case, (cost, messages)) in cases.iter().zip(&costs) {
            println!("| {} | {cost:.1} | {messages} |", case.name);
        }
        let cost_of = |name: &str| {
            cases
                .iter()
                .position(|c| c.name == name)
                .map(|i| costs[i].0)
        };
        let level = cost_of("level").unwrap();
        let spectrum = cost_of("spectrum (bands=128)").unwrap();
        let ours_ls = cost_of("audiotap level+spectrum").unwrap();
        let ours_all = cost_of("audiotap, everything on").unwrap();
        let quiet = cost_of("audiotap, everything on, no messages").unwrap();
        let messages = costs[cases
            .iter()
            .position(|c| c.name == "audiotap, everything on")
            .unwrap()]
        .1;
        println!();
        println!(
            "- level+spectrum: audiotap {ours_ls:.1} vs level + spectrum {:.1} ns/frame: ratio {:.3} (target <= 0.25)",
            level + spectrum,
            ours_ls / (level + spectrum)
        );
        if let Some(ebur) = cost_of("ebur128level (all modes)") {
            println!(
                "- everything on: audiotap {ours_all:.1} vs level + spectrum + ebur128level {:.1} ns/frame: ratio {:.3} (target <= 0.5)",
                level + spectrum + ebur,
                ours_all / (level + spectrum + ebur)
            );
        }
        let spectrum129 = cost_of("spectrum (bands=129)").unwrap();
        let ours_spectrum = cost_of("audiotap spectrum").unwrap();
        println!(
            "- spectrum as offered (reports every 100 ms): audiotap spectrum {ours_spectrum:.1} vs spectrum bands=128 {spectrum:.1} (ratio {:.3}) and bands=129 {spectrum129:.1} ns/frame (ratio {:.3})",
            ours_spectrum / spectrum,
            ours_spectrum / spectrum129
        );
        for (fft, _) in EQUAL_WORK {
            for quiet_case in ["", ", no messages"] {
                let (theirs, ours) = if quiet_case.is_empty() {
                    (
                        cost_of(&format!("equal work {fft}: spectrum bands={}", fft / 2 + 1)),
                        cost_of(&format!("equal work {fft}: audiotap spectrum")),
                    )
                } else {
                    (
                        cost_of(&format!("equal work {fft}, no messages: spectrum")),
                        cost_of(&format!("equal work {fft}, no messages: audiotap")),
                    )
                };
                let (theirs, ours) = (theirs.unwrap(), ours.unwrap());
                println!(
                    "- equal work, FFT {fft} every {fft} frames{quiet_case}: audiotap {ours:.1} vs spectrum {theirs:.1} ns/frame: ratio {:.3}",
                    ours / theirs
                );
            }
        }
        if messages > 0 {
            let per_message_us = (ours_all - quiet) * frames as f64 / messages as f64 / 1000.0;
            println!(
                "- message + JSON cost: {per_message_us:.1} us per interval ({messages} intervals)"
            );
        }
        println!();
    }
}
