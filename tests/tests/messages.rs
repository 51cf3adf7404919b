//! Application messages of the signalling protocol (room chat, cursors,
//! app data) between a page and a pipeline, both ways: the page's
//! `client.send()` reaches peersink's `message-received` signal and its
//! `peer-message` bus message; peersink's `send-message` action reaches the
//! page, to one peer or to the whole room.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;
use peer_tests::browser::Browser;
use peer_tests::{TestServer, init, play, sender, wait_element_message, wait_until};
use serde_json::{Value, json};

#[test]
fn messages_go_from_a_page_to_a_pipeline_and_back() {
    init();
    let server = TestServer::start();
    let producer = sender(
        &format!("uri={} peer-id=cam", server.room_uri("chat")),
        320,
        240,
        0xff2050d0,
        440.0,
    );
    play(&producer);
    wait_element_message(&producer, "peer-ready", Duration::from_secs(10));
    let sink = producer.by_name("sink").unwrap();
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let store = received.clone();
    sink.connect("message-received", false, move |values| {
        let from = values[1].get::<String>().unwrap();
        let json = values[2].get::<String>().unwrap();
        store.lock().unwrap().push((from, json));
        None
    });

    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/watch?room=chat&producer=cam&id=viewer1",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'playing'",
        Duration::from_secs(30),
    );
    // Collect what reaches the page.
    browser.eval(
        "window.got = []; window.peerPage.client.addEventListener('message', (e) => window.got.push(e.detail)); return true;",
        vec![],
    );

    // Page → pipeline, to the producer alone: intact, with its sender.
    let payload =
        json!({"kind": "chat", "text": "héllo ✓", "n": [1, 2.5, null], "deep": {"a": {"b": true}}});
    browser.eval(
        "window.peerPage.client.send(arguments[0], 'cam'); return true;",
        vec![payload.clone()],
    );
    let (from, text) = wait_until(Duration::from_secs(10), "the page's message", || {
        received.lock().unwrap().first().cloned()
    });
    assert_eq!(from, "viewer1");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), payload);
    let bus = wait_element_message(&producer, "peer-message", Duration::from_secs(5));
    assert_eq!(bus.get::<String>("from").unwrap(), "viewer1");
    assert_eq!(
        serde_json::from_str::<Value>(&bus.get::<String>("json").unwrap()).unwrap(),
        payload
    );

    // Pipeline → page: to one peer, then to the whole room.
    let reply = json!({"kind": "chat", "text": "hello from the pipeline"});
    assert!(sink.emit_by_name::<bool>("send-message", &[&Some("viewer1"), &reply.to_string()]));
    assert!(sink.emit_by_name::<bool>("send-message", &[&None::<String>, &"[1,2,3]"]));
    let got = browser.wait_for(
        "window.got.length >= 2 && window.got",
        Duration::from_secs(10),
    );
    assert_eq!(got[0]["from"], "cam");
    assert_eq!(got[0]["data"], reply);
    assert_eq!(got[1]["data"], json!([1, 2, 3]));

    // Not JSON: refused, with a warning naming it; nothing sent.
    assert!(!sink.emit_by_name::<bool>("send-message", &[&None::<String>, &"{oops"]));
    let _ = producer.set_state(gst::State::Null);
}
