//! Recordings whose recorder was killed (SIGKILL) made whole again:
//! `peer record repair FILE`, and `peer record` at start-up. Checked as a
//! user would: the duration gst-discoverer-1.0 reports against the video
//! frames really in the file, a seek to the middle, the index (Cues), the
//! sidecar.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gst::prelude::*;
use peer_tests::matroska::{
    CUES, VideoTrack, demux_video, discovered_duration, seek_video, segment_children,
};
use peer_tests::recorder::{Recorder, fresh_dir, sidecar};
use peer_tests::{init, play, sender};

/// The senders' frame rate (`peer_tests::sender`).
const FRAME: Duration = Duration::from_nanos(1_000_000_000 / 30);

/// Publishes into `room` of `recorder`; returns the publishing pipeline
/// and the file once the recorder has started writing it.
fn publish(recorder: &mut Recorder, room: &str, id: &str) -> (gst::Pipeline, std::path::PathBuf) {
    let publisher = sender(
        &format!("uri={} peer-id={id}", recorder.room_uri(room)),
        320,
        240,
        0xff20d020,
        440.0,
    );
    play(&publisher);
    let path = recorder.started(id);
    (publisher, path)
}

/// What a repaired file must show: every frame it held before (counted,
/// with the same timestamps), a duration, as tools report it, that ends
/// with its last video frame, an index, and a seek to the middle showing
/// the frame that is there. Returns the reported duration.
fn assert_whole(path: &Path, before: &VideoTrack) -> Duration {
    let reported = discovered_duration(path).expect("gst-discoverer-1.0 reports a duration");
    let video = demux_video(path);
    assert_eq!(
        video.frames(),
        before.frames(),
        "video frames before and after the repair"
    );
    assert_eq!(video.timestamps, before.timestamps, "frame timestamps");
    // The file says it lasts until its media ends: the last video frame,
    // or the audio when it goes on after the video (a publisher on a busy
    // machine may drop video frames, never the repair).
    let video_end = video.end(FRAME);
    let audio_end = Duration::from_nanos(video.audio_end.map_or(0, |end| end.nseconds()));
    let media_end = video_end.max(audio_end);
    assert!(
        reported.abs_diff(media_end) <= Duration::from_millis(100),
        "gst-discoverer-1.0 says {reported:?}; the video ends at {video_end:?} \
         ({} frames counted), the audio at {audio_end:?}",
        video.frames()
    );
    assert!(
        segment_children(path).contains(&CUES),
        "no Cues (index) in {}",
        path.display()
    );
    let middle = gst::ClockTime::from_nseconds(reported.as_nanos() as u64 / 2);
    let shown = seek_video(path, middle).unwrap_or_else(|err| panic!("seek: {err}"));
    // The frame shown at the middle: the one showing there (stamped with
    // the seek position, as the decoder clips it), or the next one.
    let next = video.frame_at(middle).expect("frames after the middle");
    assert!(
        shown >= middle && shown <= next,
        "a seek to {middle} shows the frame at {shown} (the next frame is at {next})"
    );
    reported
}

fn assert_sidecar_notes_the_repair(path: &Path, reported: Duration) {
    let meta = sidecar(path);
    assert_eq!(meta["ended_cleanly"], false, "{meta}");
    assert!(meta["repaired_at"].is_string(), "{meta}");
    assert_eq!(
        meta["end_reason"], "recorder ended without finalizing",
        "{meta}"
    );
    assert!(meta["ended_at"].is_string(), "{meta}");
    let seconds = meta["duration_seconds"].as_f64().unwrap();
    assert!(
        (seconds - reported.as_secs_f64()).abs() <= 0.1,
        "sidecar says {seconds} s, the file {reported:?}"
    );
    assert_eq!(
        meta["bytes"].as_u64(),
        Some(std::fs::metadata(path).unwrap().len()),
        "{meta}"
    );
}

#[test]
fn peer_record_repair_gives_a_killed_recording_its_duration_and_index() {
    init();
    let mut recorder = Recorder::start("crash");
    let (publisher, path) = publish(&mut recorder, "crash", "steady");
    std::thread::sleep(Duration::from_secs(6)); // the length of the recording itself
    recorder.process.kill(); // SIGKILL: nothing is finalized
    let _ = publisher.set_state(gst::State::Null);
    let broken = discovered_duration(&path);
    let before = demux_video(&path);
    assert_eq!(sidecar(&path)["ended_cleanly"], false);
    assert!(
        !segment_children(&path).contains(&CUES),
        "a killed recording has no index yet"
    );

    let output = Command::new(peer_tests::peer_binary())
        .args(["record", "repair"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("repaired {}", path.display())),
        "{stdout}"
    );

    let reported = assert_whole(&path, &before);
    assert!(
        reported >= Duration::from_secs(4),
        "only {reported:?} recorded of ~6 s (before the repair: {broken:?})"
    );
    assert_sidecar_notes_the_repair(&path, reported);

    // Once whole, it is left alone (`peer record repair DIR/*.webm` costs
    // nothing for such files).
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    let again = Command::new(peer_tests::peer_binary())
        .args(["record", "repair"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}");
    assert!(
        stdout.contains("nothing to do") && stdout.contains("it was repaired at"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        written
    );
}

/// Two recorders share a directory; one is killed. A third one starting
/// there repairs the dead one's file, and leaves alone the file the live
/// one is still writing (it holds the file's lock).
#[test]
fn start_up_repairs_a_dead_recorders_file_and_spares_a_live_ones() {
    init();
    let dir = fresh_dir("repair-at-start");
    let mut dead = Recorder::start_in("one", &dir, &[]);
    let mut live = Recorder::start_in("two", &dir, &[]);
    let (first, killed_file) = publish(&mut dead, "one", "first");
    let (second, live_file) = publish(&mut live, "two", "second");
    std::thread::sleep(Duration::from_secs(5)); // the length of the recordings
    dead.process.kill();
    let _ = first.set_state(gst::State::Null);
    let before = demux_video(&killed_file);

    let mut starting = Recorder::start_in("three", &dir, &[]);
    let line = starting.process.wait_line(
        &format!("repaired {}", killed_file.display()),
        Duration::from_secs(60),
    );
    assert!(line.contains("nothing re-encoded"), "{line}");
    let line = starting.process.wait_line(
        &format!("left alone {}", live_file.display()),
        Duration::from_secs(60),
    );
    assert!(line.contains("running recorder"), "{line}");

    let reported = assert_whole(&killed_file, &before);
    assert!(reported >= Duration::from_secs(3), "{reported:?}");
    assert_sidecar_notes_the_repair(&killed_file, reported);

    // The live recording went on untouched and ends cleanly.
    assert!(sidecar(&live_file).get("repaired_at").is_none());
    live.interrupt();
    let _ = second.set_state(gst::State::Null);
    let meta = sidecar(&live_file);
    assert_eq!(meta["ended_cleanly"], true, "{meta}");
    assert!(meta.get("repaired_at").is_none(), "{meta}");
    starting.interrupt();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repair_names_what_is_wrong_with_a_file_it_cannot_repair() {
    let dir = fresh_dir("repair-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.webm");
    std::fs::write(&text, "not a recording").unwrap();
    let output = Command::new(peer_tests::peer_binary())
        .args(["record", "repair"])
        .arg(&text)
        .arg(dir.join("missing.mkv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("notes.webm: not a Matroska or WebM file (no EBML header)"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.mkv: no such file"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "not a recording",
        "a file that cannot be repaired is left as it was"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn whip_token_with_server_is_refused_with_the_reason() {
    let output = Command::new(peer_tests::peer_binary())
        .args([
            "record",
            "--server",
            "ws://127.0.0.1:9",
            "--whip-token",
            "s3cret",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--whip-token cannot be used with --server")
            && stderr.contains("peer serve --whip-token"),
        "{stderr}"
    );
}
