//! A pipeline's `peer-id` across restarts: a pipeline stopped and started
//! again at once gets its id back (the server may not have seen the old
//! connection close yet), and an id a live peer holds is refused with a
//! message that names it.

use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_tests::media::{Receiver, close_colour};
use peer_tests::{TestServer, init, play};

const RED: u32 = 0xffd02020;
const GREEN: u32 = 0xff20c040;

#[test]
fn a_pipeline_restarted_at_once_with_its_peer_id_gets_it_back() {
    init();
    let server = TestServer::start();
    let uri = server.room_uri("restarts");
    let props = format!("uri={uri} peer-id=cam");
    // Each round stops the producer and starts its successor under the
    // same id without waiting: the successor's hello races the old
    // connection's close.
    let mut producer = peer_tests::sender(&props, 320, 240, RED, 440.0);
    play(&producer);
    for (round, colour) in [GREEN, RED, GREEN, RED, GREEN].into_iter().enumerate() {
        let _ = producer.set_state(gst::State::Null);
        let started = Instant::now();
        producer = peer_tests::sender(&props, 320, 240, colour, 440.0);
        play(&producer);
        let receiver = Receiver::start(&format!("uri={uri} producer=cam"));
        let expected = [(colour >> 16) as u8, (colour >> 8) as u8, colour as u8];
        let received = receiver.wait(
            Duration::from_secs(20),
            &format!("round {round}: frames of the restarted producer"),
            |r| r.video_frames >= 10 && close_colour(r.centre_rgb, expected, 24),
        );
        println!(
            "round {round}: the restarted producer seen {:?} after its start ({} frames)",
            started.elapsed(),
            received.video_frames
        );
        if let Some(message) = producer
            .bus()
            .unwrap()
            .pop_filtered(&[gst::MessageType::Error])
        {
            panic!("round {round}: the restarted producer failed: {message:?}");
        }
    }
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn a_peer_id_a_live_peer_holds_is_refused_naming_it() {
    init();
    let server = TestServer::start();
    let uri = server.room_uri("taken");
    let holder = peer_tests::sender(&format!("uri={uri} peer-id=cam"), 320, 240, RED, 440.0);
    play(&holder);
    // The holder is registered once a viewer receives it.
    let viewer = Receiver::start(&format!("uri={uri} producer=cam"));
    viewer.wait(Duration::from_secs(20), "the holder's frames", |r| {
        r.video_frames >= 5
    });
    let started = Instant::now();
    let second = peer_tests::sender(&format!("uri={uri} peer-id=cam"), 320, 240, GREEN, 440.0);
    play(&second);
    let error = peer_tests::first_error(&second, Duration::from_secs(30))
        .expect("the second peer with id cam fails");
    let waited = started.elapsed();
    println!("refused after {waited:?}: {error}");
    assert!(
        error.contains("\"cam\" is already taken") && error.contains("choose another peer-id"),
        "{error}"
    );
    // Said again for a while (the id could have been our own lost
    // connection's), then final.
    assert!(waited >= Duration::from_secs(7), "refused after {waited:?}");
    // The holder was not disturbed.
    let before = viewer.snapshot().video_frames;
    viewer.wait(Duration::from_secs(5), "the holder still playing", |r| {
        r.video_frames >= before + 30
    });
    let _ = second.set_state(gst::State::Null);
    let _ = holder.set_state(gst::State::Null);
}
