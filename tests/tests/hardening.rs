//! Hardening of the elements and `peer record` against hostile or broken
//! peers (issue 14): peersink's `max-viewers` and `viewer-timeout`, and
//! `peer record` refusing templates that would leave `--dir`.

use std::time::Duration;

use gst::prelude::*;
use peer_tests::ws::RawPeer;
use peer_tests::{RUNTIME, TestServer, init, play, sender, wait_element_message, wait_until};
use serde_json::json;

fn webrtcbins(bin: &gst::Bin) -> usize {
    bin.iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.factory().is_some_and(|f| f.name() == "webrtcbin"))
        .count()
}

/// A raw protocol client asks `cam` for a session; returns the session id
/// once peersink's offer arrived (which it never answers).
async fn ask_for_session(peer: &mut RawPeer, id: &str) -> String {
    peer.join(id, "hard", false).await;
    peer.send(json!({"type": "start-session", "peer": "cam"}))
        .await;
    let started = peer.recv_type("session-started").await;
    started["session"].as_str().unwrap().to_owned()
}

#[test]
fn a_viewer_that_never_answers_is_ended_and_its_webrtcbin_freed() {
    init();
    let server = TestServer::start();
    let producer = sender(
        &format!(
            "uri={} peer-id=cam viewer-timeout=2",
            server.room_uri("hard")
        ),
        160,
        120,
        0xff00ff00,
        440.0,
    );
    play(&producer);
    wait_element_message(&producer, "peer-ready", Duration::from_secs(10));
    let sink = producer
        .by_name("sink")
        .unwrap()
        .downcast::<gst::Bin>()
        .unwrap();
    assert_eq!(sink.property::<u32>("viewer-timeout"), 2);

    RUNTIME.block_on(async {
        let mut silent = RawPeer::connect(&server.ws_url()).await;
        let session = ask_for_session(&mut silent, "silent").await;
        let offer = silent.recv_type("sdp").await;
        assert_eq!(offer["sdp"]["type"], "offer", "{offer}");
        assert_eq!(webrtcbins(&sink), 1, "the silent viewer holds a webrtcbin");
        let ended = silent.recv_type("session-ended").await;
        assert_eq!(ended["session"], session.as_str());
        let reason = ended["reason"].as_str().unwrap();
        assert!(reason.starts_with("viewer-timeout:"), "{reason}");
        assert!(reason.contains("within 2 s"), "{reason}");
    });
    wait_until(Duration::from_secs(5), "the webrtcbin freed", || {
        (webrtcbins(&sink) == 0).then_some(())
    });
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn one_viewer_too_many_is_refused_by_name() {
    init();
    let server = TestServer::start();
    let producer = sender(
        &format!("uri={} peer-id=cam max-viewers=1", server.room_uri("hard")),
        160,
        120,
        0xff0000ff,
        440.0,
    );
    play(&producer);
    wait_element_message(&producer, "peer-ready", Duration::from_secs(10));
    let sink = producer.by_name("sink").unwrap();
    // The default bounds a producer anyone may ask.
    let fresh = gst::ElementFactory::make("peersink").build().unwrap();
    assert_eq!(fresh.property::<u32>("max-viewers"), 100);
    assert_eq!(fresh.property::<u32>("viewer-timeout"), 15);
    assert_eq!(sink.property::<u32>("max-viewers"), 1);

    RUNTIME.block_on(async {
        let mut first = RawPeer::connect(&server.ws_url()).await;
        ask_for_session(&mut first, "first").await;
        assert_eq!(first.recv_type("sdp").await["sdp"]["type"], "offer");
        let mut second = RawPeer::connect(&server.ws_url()).await;
        let session = ask_for_session(&mut second, "second").await;
        let ended = second.recv_type("session-ended").await;
        assert_eq!(ended["session"], session.as_str());
        let reason = ended["reason"].as_str().unwrap();
        assert!(reason.starts_with("too-many-viewers:"), "{reason}");
        assert!(reason.contains("at most 1 viewers"), "{reason}");
    });
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn peer_record_refuses_templates_that_leave_its_directory() {
    let dir = std::env::temp_dir().join(format!("hardening-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (template, expected) in [
        ("/tmp/{publisher}_{start}.{ext}", "absolute path"),
        ("../{publisher}_{start}.{ext}", "contains \"..\""),
        ("{publisher}/../../{start}.{ext}", "contains \"..\""),
    ] {
        let output = std::process::Command::new(peer_tests::peer_binary())
            .args(["record", "--dir"])
            .arg(&dir)
            .args(["--template", template, "--port", "0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{template} accepted");
        assert!(stderr.contains(expected), "{template}: {stderr}");
        assert!(stderr.contains("--dir"), "{template}: {stderr}");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// canvassrc `patch-source`: a viewer's patches are its own; one touching
/// the pipeline's node is refused, and the viewer alone is told why, by
/// code, on the same data channel.
#[test]
fn a_viewer_may_draw_its_own_nodes_and_is_told_when_refused() {
    init();
    let server = TestServer::start();
    let producer = peer_tests::launch(&format!(
        "peersink name=sink uri={} peer-id=cam data-channels=canvas \
         canvassrc name=canvas patch-source=sink \
           ! video/x-raw,width=160,height=120,framerate=30/1 ! sink.video_0",
        server.room_uri("hard")
    ));
    producer.by_name("canvas").unwrap().set_property(
        "scene",
        r#"{"nodes":[{"id":"logo","type":"rect","width":10,"height":10}]}"#,
    );
    play(&producer);
    wait_element_message(&producer, "peer-ready", Duration::from_secs(10));
    let canvas = producer.by_name("canvas").unwrap();

    let receiver = peer_tests::Receiver::start(&format!(
        "uri={} producer=cam peer-id=viewer",
        server.room_uri("hard")
    ));
    let (tx, replies) = std::sync::mpsc::channel::<(String, String)>();
    let tx = std::sync::Mutex::new(tx);
    receiver
        .peersrc
        .connect("data-channel-message", false, move |values| {
            let label = values[2].get::<String>().unwrap();
            if let Ok(Some(text)) = values[3].get::<Option<String>>() {
                let _ = tx.lock().unwrap().send((label, text));
            }
            None
        });
    receiver.wait(Duration::from_secs(20), "frames", |r| r.video_frames >= 1);

    let send = |patch: &str| {
        wait_until(Duration::from_secs(20), "an open data channel", || {
            receiver
                .peersrc
                .emit_by_name::<bool>("send-string", &[&"canvas", &None::<String>, &patch])
                .then_some(())
        })
    };
    send(r#"{"op":"put","node":{"id":"cursor-viewer","type":"circle","radius":4}}"#);
    // The node is there, and the viewer's: another peer may not remove it.
    wait_until(Duration::from_secs(10), "the viewer's node", || {
        let removed = canvas.emit_by_name::<bool>(
            "apply-peer-patch",
            &[&"bob", &r#"{"op":"remove","id":"cursor-viewer"}"#],
        );
        assert!(!removed, "bob removed the viewer's node");
        let error = canvas
            .property::<Option<String>>("last-error")
            .unwrap_or_default();
        error.contains("belongs to peer \"viewer\"").then_some(())
    });
    send(r#"{"op":"remove","id":"logo"}"#);
    let (label, reply) = replies
        .recv_timeout(Duration::from_secs(10))
        .expect("the refusal is answered to the viewer");
    assert_eq!(label, "canvas");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["type"], "canvas-error", "{reply}");
    assert_eq!(reply["code"], "not-owner", "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("node \"logo\" belongs to the pipeline"),
        "{message}"
    );
    assert!(message.contains("peer \"viewer\""), "{message}");
    let error = canvas.property::<Option<String>>("last-error").unwrap();
    assert!(error.contains("belongs to the pipeline"), "{error}");
    let _ = producer.set_state(gst::State::Null);
}
