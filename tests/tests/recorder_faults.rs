//! `peer record` under faults a server meets: killed with SIGKILL (what is
//! in the file must reach to within a second of the kill, video and audio,
//! counted and decoded), and a disk that fills up (that recording ends
//! with a message naming the problem, its file plays, the recorder goes
//! on recording others).
//!
//! recording_repair.rs checks the repair itself (index, duration, seek);
//! here the question is how much of what was sent survives.

use std::path::Path;
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_tests::matroska::{demux_video, discovered_duration};
use peer_tests::media::{Received, close_colour, decode_file};
use peer_tests::recorder::{Recorder, fresh_dir};
use peer_tests::{dominant_frequency, init, play, sender};

const GREEN: u32 = 0xff20d020;
const GREEN_RGB: [u8; 3] = [0x20, 0xd0, 0x20];
/// What the publisher switches to one second before the kill.
const MAGENTA: u32 = 0xffd020d0;
const MAGENTA_RGB: [u8; 3] = [0xd0, 0x20, 0xd0];
const TONE: f64 = 440.0;
const MARK_TONE: f64 = 880.0;
/// The requirement: a killed recorder's file covers up to this long
/// before the kill.
const WITHIN: Duration = Duration::from_secs(1);

/// The publisher's live test sources, to switch colour and tone in flight.
fn sources(publisher: &gst::Pipeline) -> (gst::Element, gst::Element) {
    let find = |factory: &str| {
        publisher
            .iterate_elements()
            .into_iter()
            .filter_map(Result::ok)
            .find(|e| e.factory().is_some_and(|f| f.name() == factory))
            .unwrap_or_else(|| panic!("the sender has a {factory}"))
    };
    (find("videotestsrc"), find("audiotestsrc"))
}

/// How much audio at the end of `received` is `freq`: 20 ms windows
/// scanned back from the end while their strongest frequency is `freq`.
fn tail_at(received: &Received, freq: f64) -> Duration {
    const WINDOW: usize = 48_000 / 50;
    let mut end = received.audio.len();
    let mut windows = 0u32;
    while end >= WINDOW {
        let found = dominant_frequency(&received.audio[end - WINDOW..end], 48_000);
        if (found - freq).abs() > 30.0 {
            break;
        }
        windows += 1;
        end -= WINDOW;
    }
    Duration::from_millis(20) * windows
}

/// The longest step between two successive video frames of the file.
fn longest_video_gap(path: &Path) -> (usize, Duration) {
    let mut timestamps = demux_video(path).timestamps;
    timestamps.sort();
    let gap = timestamps
        .windows(2)
        .map(|pair| Duration::from_nanos((pair[1] - pair[0]).nseconds()))
        .max()
        .unwrap_or_default();
    (timestamps.len(), gap)
}

/// A recorder killed mid-recording, then started again on its directory
/// (what a service manager does, and what a user does by hand): the
/// start-up repair makes the file whole, and it plays, green then the
/// magenta and 880 Hz the publisher switched to one second before the
/// kill. Any magenta frame or 880 Hz audio proves the file reaches past
/// kill − 1 s; how far past is printed.
#[test]
fn a_killed_recorders_file_plays_video_and_audio_to_within_a_second_of_the_kill() {
    init();
    let dir = fresh_dir("sigkill");
    let mut recorder = Recorder::start_in("kill", &dir, &[]);
    let publisher = sender(
        &format!("uri={} peer-id=steady", recorder.room_uri("kill")),
        320,
        240,
        GREEN,
        TONE,
    );
    play(&publisher);
    let path = recorder.started("steady");
    std::thread::sleep(Duration::from_secs(4)); // the recording's length before the mark

    let (video, audio) = sources(&publisher);
    video.set_property("foreground-color", MAGENTA);
    audio.set_property("freq", MARK_TONE);
    let marked = Instant::now();
    // Not a wait for an event: the time between the mark and the kill is
    // the quantity under test.
    std::thread::sleep(WITHIN.saturating_sub(marked.elapsed()));
    recorder.process.kill(); // SIGKILL
    let killed_after_mark = marked.elapsed();
    let _ = publisher.set_state(gst::State::Null);

    let mut restarted = Recorder::start_in("kill", &dir, &[]);
    restarted.process.wait_line(
        &format!("repaired {}", path.display()),
        Duration::from_secs(60),
    );

    let received = decode_file(&path); // panics if the file does not play
    let (demuxed, gap) = longest_video_gap(&path);
    assert_eq!(
        received.video_frames as usize, demuxed,
        "every video frame in the file decodes"
    );
    let green = received
        .centres
        .iter()
        .filter(|c| close_colour(**c, GREEN_RGB, 40))
        .count();
    let magenta = received
        .centres
        .iter()
        .skip_while(|c| !close_colour(**c, MAGENTA_RGB, 40))
        .filter(|c| close_colour(**c, MAGENTA_RGB, 40))
        .count();
    let marked_audio = tail_at(&received, MARK_TONE);
    let video_short =
        killed_after_mark.saturating_sub(Duration::from_nanos(1_000_000_000 / 30 * magenta as u64));
    let audio_short = killed_after_mark.saturating_sub(marked_audio);
    eprintln!(
        "killed {killed_after_mark:?} after the mark; the file holds {demuxed} video frames \
         ({green} green, {magenta} magenta after the mark: it ends ~{video_short:?} before \
         the kill), {marked_audio:?} of 880 Hz audio (ends ~{audio_short:?} before the kill); \
         longest step between frames {gap:?}; gst-discoverer-1.0: {:?}",
        discovered_duration(&path)
    );
    assert!(
        green >= 90,
        "~4 s of green before the mark, only {green} frames"
    );
    assert!(
        gap <= Duration::from_millis(500),
        "a hole of {gap:?} in the video"
    );
    assert!(
        magenta >= 1,
        "no video frame sent in the last {WITHIN:?} before the kill is in the file \
         (last frame's colour {:?})",
        received.centre_rgb
    );
    assert!(
        marked_audio > Duration::ZERO,
        "no audio sent in the last {WITHIN:?} before the kill is in the file (the last \
         second's strongest frequency: {:.0} Hz)",
        dominant_frequency(&received.audio, 48_000)
    );
    restarted.interrupt();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A publisher sending a busy picture (so the disk fills in seconds).
fn busy_publisher(recorder: &Recorder, room: &str, id: &str) -> gst::Pipeline {
    let publisher = peer_tests::launch(&format!(
        "peersink name=sink uri={} peer-id={id} video-bitrate=800000 \
         videotestsrc is-live=true pattern=smpte horizontal-speed=3 \
           ! video/x-raw,width=320,height=240,framerate=30/1 ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq={TONE} volume=0.5 ! sink.audio_0",
        recorder.room_uri(room)
    ));
    play(&publisher);
    publisher
}

/// The recordings' directory is a 6 MiB tmpfs, nearly full: the first
/// recording fills it. It ends with a line naming the full disk and the
/// directory, its file plays (frames counted), and the recorder goes on:
/// once space is freed, the next publisher is recorded whole.
#[test]
fn a_full_disk_ends_that_recording_with_a_clear_message_and_the_recorder_goes_on() {
    init();
    let mut recorder = Recorder::start_on_tmpfs("full", 6 * 1024, &[]);
    // ~5.5 MiB of the 6: a few seconds of recording at 800 kbit/s.
    let filler = recorder.seen_path(&recorder.dir.join("filler"));
    std::fs::write(&filler, vec![0u8; 5632 * 1024]).expect("the filler fits the tmpfs");

    let first = busy_publisher(&recorder, "full", "first");
    let first_file = recorder.started("first");
    let started = Instant::now();
    let line = recorder
        .process
        .wait_line("finished first:", Duration::from_secs(60));
    eprintln!("after {:?}: {line}", started.elapsed());
    assert!(
        line.contains("disk full: no space left in")
            && line.contains(&*recorder.dir.to_string_lossy()),
        "{line}"
    );
    assert!(
        recorder.running(),
        "the recorder exited: {:?}",
        recorder.process.seen
    );

    // The file plays up to where the disk filled.
    let seen = recorder.seen_path(&first_file);
    let received = decode_file(&seen);
    let (demuxed, gap) = longest_video_gap(&seen);
    eprintln!(
        "the full disk's file: {} video frames decoded ({demuxed} demuxed), {:?} of media, \
         audio {} buffers",
        received.video_frames,
        received.span(),
        received.audio_buffers
    );
    assert!(
        received.video_frames >= 30,
        "only {} frames",
        received.video_frames
    );
    assert_eq!(
        received.video_frames as usize, demuxed,
        "every frame in the file decodes"
    );
    assert!(
        gap <= Duration::from_millis(500),
        "a hole of {gap:?} in the video"
    );
    assert!(
        received.audio_buffers > 0,
        "no audio in {}",
        first_file.display()
    );
    let _ = first.set_state(gst::State::Null);

    // Space freed: the next publisher gets a whole recording.
    std::fs::remove_file(&filler).unwrap();
    let second = busy_publisher(&recorder, "full", "second");
    let second_file = recorder.started("second");
    std::thread::sleep(Duration::from_secs(3)); // the second recording's length
    let _ = second.set_state(gst::State::Null);
    let line = recorder.finished("second");
    assert!(line.contains("publisher left"), "{line}");
    let received = decode_file(&recorder.seen_path(&second_file));
    assert!(
        received.video_frames >= 60,
        "the recording after the full disk holds {} frames of ~3 s",
        received.video_frames
    );
    assert!(received.audio_buffers > 0);
    assert!(
        recorder.running(),
        "the recorder exited: {:?}",
        recorder.process.seen
    );
    let seen = recorder.interrupt();
    assert!(!seen.iter().any(|l| l.contains("panicked")), "{seen:?}");
}
