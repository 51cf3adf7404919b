//! Data channels between pipelines: text and a 64 KiB binary message, both
//! ways, arrive intact, as signals and as bus messages.

use std::sync::mpsc;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use peer_tests::{Receiver, TestServer, init, play, sender};

#[derive(Debug)]
enum Got {
    Text(String, String, String),
    Bytes(String, String, Vec<u8>),
}

fn collect(element: &gst::Element) -> mpsc::Receiver<Got> {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    element.connect("data-channel-message", false, move |values| {
        let peer = values[1].get::<String>().unwrap();
        let label = values[2].get::<String>().unwrap();
        let got = match (
            values[3].get::<Option<String>>().unwrap(),
            values[4].get::<Option<glib::Bytes>>().unwrap(),
        ) {
            (Some(text), _) => Got::Text(peer, label, text),
            (None, Some(bytes)) => Got::Bytes(peer, label, bytes.to_vec()),
            (None, None) => return None,
        };
        let _ = tx.lock().unwrap().send(got);
        None
    });
    rx
}

/// Retries a send until the channel is open (it opens after the DTLS handshake).
fn send_until_open(element: &gst::Element, signal: &str, args: &[&dyn ToValue]) {
    peer_tests::wait_until(Duration::from_secs(20), "an open data channel", || {
        element.emit_by_name::<bool>(signal, args).then_some(())
    });
}

#[test]
fn text_and_64k_binary_both_ways() {
    init();
    let server = TestServer::start();
    let sending = sender(
        &format!("uri={} peer-id=cam", server.room_uri("chat")),
        320,
        240,
        0xff808080,
        440.0,
    );
    play(&sending);
    let sink = sending.by_name("sink").unwrap();
    let from_viewer = collect(&sink);

    let receiver = Receiver::start(&format!(
        "uri={} producer=cam peer-id=viewer",
        server.room_uri("chat")
    ));
    let from_producer = collect(&receiver.peersrc);
    receiver.wait(Duration::from_secs(20), "frames", |r| r.video_frames >= 1);

    // Producer → viewer, to every viewer (peer NULL).
    send_until_open(
        &sink,
        "send-string",
        &[&"chat", &None::<String>, &"héllo viewers ✓"],
    );
    match from_producer
        .recv_timeout(Duration::from_secs(10))
        .expect("text arrives")
    {
        Got::Text(peer, label, text) => assert_eq!(
            (peer.as_str(), label.as_str(), text.as_str()),
            ("cam", "chat", "héllo viewers ✓")
        ),
        other => panic!("{other:?}"),
    }
    let big: Vec<u8> = (0..65_536u32).map(|i| (i * 7 % 251) as u8).collect();
    assert!(sink.emit_by_name::<bool>(
        "send-data",
        &[&"chat", &Some("viewer"), &glib::Bytes::from(&big)]
    ));
    match from_producer
        .recv_timeout(Duration::from_secs(10))
        .expect("bytes arrive")
    {
        Got::Bytes(peer, label, bytes) => {
            assert_eq!((peer.as_str(), label.as_str()), ("cam", "chat"));
            assert!(
                bytes == big,
                "64 KiB arrived as {} bytes, altered",
                bytes.len()
            );
        }
        other => panic!("{other:?}"),
    }

    // Viewer → producer.
    assert!(receiver.peersrc.emit_by_name::<bool>(
        "send-string",
        &[&"chat", &None::<String>, &"hi from the viewer"]
    ));
    match from_viewer
        .recv_timeout(Duration::from_secs(10))
        .expect("text arrives")
    {
        Got::Text(peer, _, text) => assert_eq!(
            (peer.as_str(), text.as_str()),
            ("viewer", "hi from the viewer")
        ),
        other => panic!("{other:?}"),
    }
    assert!(receiver.peersrc.emit_by_name::<bool>(
        "send-data",
        &[&"chat", &None::<String>, &glib::Bytes::from(&big)]
    ));
    match from_viewer
        .recv_timeout(Duration::from_secs(10))
        .expect("bytes arrive")
    {
        Got::Bytes(peer, label, bytes) => {
            assert_eq!((peer.as_str(), label.as_str()), ("viewer", "chat"));
            assert!(
                bytes == big,
                "64 KiB arrived as {} bytes, altered",
                bytes.len()
            );
        }
        other => panic!("{other:?}"),
    }

    // The same message is on the bus, for applications without signals.
    let bus_message = peer_tests::wait_element_message(
        &sending,
        "peer-data-channel-message",
        Duration::from_secs(5),
    );
    assert_eq!(bus_message.get::<&str>("peer-id").unwrap(), "viewer");

    // A label nobody opened is refused, not silently dropped.
    assert!(!sink.emit_by_name::<bool>("send-string", &[&"nope", &None::<String>, &"x"]));
    let _ = sending.set_state(gst::State::Null);
}
