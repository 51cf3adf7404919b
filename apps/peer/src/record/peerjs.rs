//! `peer record --peerjs ID`: every caller of a PeerJS id is recorded to a
//! file of its own, named, written and repaired as a publisher's.
//!
//! A PeerJS id is one socket on the PeerServer, so one peersrc takes all
//! the calls to it and gives out a set of pads per caller (posting
//! `peer-producer-track` before each). Each caller's pads are carried by
//! `proxysink` → `proxysrc` into a recording pipeline of its own (see
//! [`Recording::start_fed`]), so one caller's failure or disconnect never
//! touches another's file; a caller hanging up sends EOS down its pads,
//! which finalizes its file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use gst::prelude::*;
use peer_signalling::server;
use tokio::sync::mpsc;
use url::Url;

use super::recording::{Recording, Settings};
use super::{Recorder, RecorderArgs};
use crate::pipeline::quote;

/// One track of a caller, its pad held (blocked) until it is linked.
struct CallerTrack {
    producer: String,
    session: String,
    tracks: usize,
    pad: gst::Pad,
    block: Option<gst::PadProbeId>,
}

enum Incoming {
    Track(CallerTrack),
    /// The element taking the calls failed (server gone, id taken...).
    Failed(String),
}

/// Who a pad belongs to, from `peer-producer-track`, until `pad-added`.
#[derive(Clone)]
struct Owner {
    producer: String,
    session: String,
    tracks: usize,
}

/// A caller being recorded: its session and the proxysinks that carry its
/// tracks out of the shared pipeline.
struct Caller {
    session: String,
    generation: u64,
    proxysinks: Vec<gst::Element>,
}

/// `peerjs://HOST:PORT/ID?key=K&path=P&secure=1` from `--server` (a
/// `peerjs://` URI, or the http(s)/ws(s) address of `peer serve` or of a
/// PeerServer, whose path is the PeerServer's `--path`); returns it with
/// the key (the room of the file names).
pub fn peerjs_uri(server: &str, id: &str) -> Result<(String, String), String> {
    let url = Url::parse(server).map_err(|err| format!("--server {server}: {err}"))?;
    let secure = match url.scheme() {
        "peerjs" | "http" | "ws" => false,
        "peerjs+https" | "https" | "wss" => true,
        other => {
            return Err(format!(
                "--server {server}: a PeerJS server is peerjs://HOST:PORT/?key=KEY, or \
                 http(s)://HOST:PORT/PATH (not {other}://)"
            ));
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("--server {server}: no host"))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let path = match url.scheme() {
        "peerjs" | "peerjs+https" => {
            if !url.path().trim_matches('/').is_empty() {
                return Err(format!(
                    "--server {server}: the PeerJS id is --peerjs's; give the server only \
                     (peerjs://HOST:PORT/?key=KEY)"
                ));
            }
            query.get("path").cloned().unwrap_or_default()
        }
        // `peer serve`'s native endpoint is /ws; its PeerServer is at /.
        "ws" | "wss" if url.path().trim_matches('/') == "ws" => String::new(),
        _ => url.path().to_owned(),
    };
    let key = query
        .get("key")
        .filter(|key| !key.is_empty())
        .cloned()
        .unwrap_or_else(|| "peerjs".to_owned());
    // http/ws addresses carry their port; peerjs:// defaults to 9000.
    let authority = match (url.port(), url.scheme()) {
        (None, "http" | "ws") => format!("{host}:80"),
        _ => authority,
    };
    let mut uri = Url::parse(&format!("peerjs://{authority}/"))
        .map_err(|err| format!("--server {server}: {err}"))?;
    uri.set_path(id);
    {
        let mut pairs = uri.query_pairs_mut();
        pairs.append_pair("key", &key);
        let path = path.trim_matches('/');
        if !path.is_empty() {
            pairs.append_pair("path", path);
        }
        if secure {
            pairs.append_pair("secure", "1");
        }
    }
    Ok((uri.to_string(), key))
}

pub(super) async fn record(args: RecorderArgs, id: String) -> anyhow::Result<()> {
    crate::pipeline::ensure_element("proxysrc")?;
    let (embedded, uri, key) = match &args.server {
        Some(server) => {
            let (uri, key) = peerjs_uri(server, &id).map_err(anyhow::Error::msg)?;
            (None, uri, key)
        }
        None => {
            let config = super::embedded_server_config(&args);
            let key = config.peerjs.keys[0].clone();
            let path = config.peerjs.normalized_path();
            let running = server::start(config).await?;
            let address = running.local_addr();
            println!(
                "PeerJS callers: new Peer({{host: '{}', port: {}, path: '{path}'}}).call('{id}', stream)",
                address.ip(),
                address.port()
            );
            let uri = format!("peerjs://{address}/{id}?key={key}");
            (Some(running), uri, key)
        }
    };
    let settings = Settings {
        room: key.clone(),
        room_uri: uri.clone(),
        dir: args.dir.clone(),
        template: args.template.clone(),
        latency_ms: args.latency,
        max_bitrate: args.max_bitrate,
        tls_ca_file: args.tls_ca_file.clone(),
        composite: false,
        recorder_id: id.clone(),
        token: args.token.clone(),
    };
    let (incoming_tx, mut incoming) = mpsc::unbounded_channel();
    let receiver = start_receiver(&settings, incoming_tx)?;
    let (events, mut recorder_events) = mpsc::unbounded_channel();
    let mut recorder = Recorder {
        settings,
        composite: None,
        recordings: HashMap::new(),
        generations: 0,
        events,
        finished: 0,
    };
    println!(
        "recording every caller of PeerJS id \"{id}\" (key \"{key}\") into {}",
        args.dir.display()
    );

    let mut callers: HashMap<String, Caller> = HashMap::new();
    // Recordings of callers who called again: finalizing, then finished.
    let mut retiring: Vec<Recording> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut last_summary = Instant::now();
    let shutdown = super::shutdown_signal();
    tokio::pin!(shutdown);
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            Some(message) = incoming.recv() => match message {
                Incoming::Track(track) => {
                    attach(&mut recorder, &mut callers, &mut retiring, &receiver, track);
                }
                Incoming::Failed(reason) => {
                    outcome = Err(anyhow::anyhow!("cannot take calls to \"{id}\": {reason}"));
                    break;
                }
            },
            Some(event) = recorder_events.recv() => {
                let retired = retiring.iter().position(|r| {
                    r.publisher == event.publisher && r.generation == event.generation
                });
                if let Some(at) = retired {
                    println!("{}", retiring.swap_remove(at).finish(true, "the caller called again"));
                    recorder.finished += 1;
                    continue;
                }
                if let Some(caller) = callers.get(&event.publisher)
                    && caller.generation == event.generation
                {
                    let caller = callers.remove(&event.publisher).expect("present");
                    remove_proxysinks(&receiver, caller.proxysinks);
                }
                recorder.on_event(event);
            }
            _ = ticker.tick() => super::tick(&recorder, args.summary_interval, &mut last_summary),
            _ = &mut shutdown => break,
        }
    }
    // EOS down every caller's tracks (through the proxies) finalizes the
    // files; stop_all then waits for them as for publishers.
    receiver.send_event(gst::event::Eos::new());
    for mut recording in retiring.drain(..) {
        recording.request_stop();
        println!("{}", recording.finish(false, "recorder stopped"));
    }
    super::stop_all(&mut recorder, &mut recorder_events).await;
    let _ = receiver.set_state(gst::State::Null);
    if let Some(server) = embedded {
        server.stop().await;
    }
    outcome
}

/// The pipeline taking the calls: one peersrc, encoded tracks out.
fn start_receiver(
    settings: &Settings,
    incoming: mpsc::UnboundedSender<Incoming>,
) -> anyhow::Result<gst::Pipeline> {
    let mut description = format!(
        "peersrc name=src uri={} decode=false eos-on-leave=true latency={}",
        quote(&settings.room_uri),
        settings.latency_ms
    );
    description.push_str(&settings.peersrc_options());
    let pipeline = crate::pipeline::launch(&description)?;
    let owners: Arc<Mutex<HashMap<String, Owner>>> = Arc::default();

    // peersrc posts `peer-producer-track` from the thread that then adds
    // the pad: a sync handler has the owner before `pad-added`.
    let bus = pipeline.bus().expect("pipelines have a bus");
    let announced = owners.clone();
    let failures = incoming.clone();
    bus.set_sync_handler(move |_, message| {
        match message.view() {
            gst::MessageView::Element(element) => {
                if let Some(s) = element.structure()
                    && s.name() == "peer-producer-track"
                    && let (Ok(pad), Ok(producer), Ok(session)) = (
                        s.get::<String>("pad"),
                        s.get::<String>("producer"),
                        s.get::<String>("session"),
                    )
                {
                    let tracks = s.get::<u32>("tracks").unwrap_or(0) as usize;
                    announced.lock().unwrap().insert(
                        pad,
                        Owner {
                            producer,
                            session,
                            tracks,
                        },
                    );
                }
            }
            gst::MessageView::Error(err) => {
                let _ = failures.send(Incoming::Failed(err.error().to_string()));
            }
            gst::MessageView::Warning(warning) => {
                eprintln!("peerjs: {}", warning.error());
            }
            _ => {}
        }
        gst::BusSyncReply::Drop
    });

    let source = pipeline.by_name("src").expect("named src");
    source.connect_pad_added(move |_, pad| {
        let Some(owner) = owners.lock().unwrap().remove(pad.name().as_str()) else {
            eprintln!(
                "peerjs: track {} of an unknown caller is dropped",
                pad.name()
            );
            return;
        };
        // Held until the main loop has a file for it: nothing is lost,
        // and an unlinked pad would fail the caller's stream.
        let block = pad.add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| {
            gst::PadProbeReturn::Ok
        });
        let _ = incoming.send(Incoming::Track(CallerTrack {
            producer: owner.producer,
            session: owner.session,
            tracks: owner.tracks,
            pad: pad.clone(),
            block,
        }));
    });
    pipeline
        .set_state(gst::State::Playing)
        .context("cannot start the pipeline taking the calls")?;
    Ok(pipeline)
}

/// Gives a caller's track to its recording (started with its first track).
fn attach(
    recorder: &mut Recorder,
    callers: &mut HashMap<String, Caller>,
    retiring: &mut Vec<Recording>,
    receiver: &gst::Pipeline,
    mut track: CallerTrack,
) {
    // A caller calling again: its earlier call's pads are gone with that
    // call, so its file is ended here and a new one begins.
    if let Some(caller) = callers.get(&track.producer)
        && caller.session != track.session
    {
        let caller = callers.remove(&track.producer).expect("present");
        for proxysink in &caller.proxysinks {
            if let Some(pad) = proxysink.static_pad("sink") {
                pad.send_event(gst::event::Eos::new());
            }
        }
        remove_proxysinks(receiver, caller.proxysinks);
        if let Some(old) = recorder.recordings.remove(&track.producer) {
            retiring.push(old);
        }
    }
    if !recorder.recordings.contains_key(&track.producer) {
        recorder.generations += 1;
        match Recording::start_fed(
            &recorder.settings,
            &track.producer,
            track.tracks,
            recorder.generations,
            recorder.events.clone(),
        ) {
            Ok(recording) => {
                recorder
                    .recordings
                    .insert(track.producer.clone(), recording);
                callers.insert(
                    track.producer.clone(),
                    Caller {
                        session: track.session.clone(),
                        generation: recorder.generations,
                        proxysinks: Vec::new(),
                    },
                );
            }
            Err(err) => eprintln!("cannot record {}: {err:#}", track.producer),
        }
    }
    let recording = recorder.recordings.get(&track.producer);
    let linked = recording
        .context("no recording")
        .and_then(|recording| link_track(receiver, recording, &track.pad));
    match linked {
        Ok(proxysink) => {
            if let Some(caller) = callers.get_mut(&track.producer) {
                caller.proxysinks.push(proxysink);
            }
        }
        Err(err) => {
            eprintln!(
                "cannot record {} of {}: {err:#}",
                track.pad.name(),
                track.producer
            );
            drain(receiver, &track.pad);
        }
    }
    if let Some(block) = track.block.take() {
        track.pad.remove_probe(block);
    }
}

/// `pad` → proxysink (here) → proxysrc (in the recording's source bin,
/// as a pad of the same name).
fn link_track(
    receiver: &gst::Pipeline,
    recording: &Recording,
    pad: &gst::Pad,
) -> anyhow::Result<gst::Element> {
    let bin = recording.source_bin().context("no source bin")?;
    let proxysink = gst::ElementFactory::make("proxysink").build()?;
    let proxysrc = gst::ElementFactory::make("proxysrc")
        .property("proxysink", &proxysink)
        .build()?;
    receiver.add(&proxysink)?;
    proxysink.sync_state_with_parent()?;
    bin.add(&proxysrc)?;
    proxysrc.sync_state_with_parent()?;
    let ghost = gst::GhostPad::builder_with_target(
        &proxysrc.static_pad("src").expect("proxysrc has a src pad"),
    )?
    .name(pad.name())
    .build();
    ghost.set_active(true)?;
    bin.add_pad(&ghost)?;
    pad.link(
        &proxysink
            .static_pad("sink")
            .expect("proxysink has a sink pad"),
    )?;
    Ok(proxysink)
}

/// A track that cannot be recorded still flows (into nothing), so the
/// caller's other tracks go on.
fn drain(receiver: &gst::Pipeline, pad: &gst::Pad) {
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .build()
    else {
        return;
    };
    if receiver.add(&sink).is_ok() {
        let _ = sink.sync_state_with_parent();
        let _ = pad.link(&sink.static_pad("sink").expect("fakesink has a sink pad"));
    }
}

fn remove_proxysinks(receiver: &gst::Pipeline, proxysinks: Vec<gst::Element>) {
    for proxysink in proxysinks {
        let _ = proxysink.set_state(gst::State::Null);
        let _ = receiver.remove(&proxysink);
    }
}

#[cfg(test)]
mod tests {
    use super::peerjs_uri;

    #[test]
    fn server_addresses_become_peerjs_uris() {
        let uri = |server| peerjs_uri(server, "booth").map(|(uri, key)| format!("{uri} {key}"));
        assert_eq!(
            uri("ws://127.0.0.1:8080").unwrap(),
            "peerjs://127.0.0.1:8080/booth?key=peerjs peerjs"
        );
        assert_eq!(
            uri("ws://127.0.0.1:8080/ws").unwrap(),
            "peerjs://127.0.0.1:8080/booth?key=peerjs peerjs"
        );
        assert_eq!(
            uri("http://127.0.0.1:9000/myapp").unwrap(),
            "peerjs://127.0.0.1:9000/booth?key=peerjs&path=myapp peerjs"
        );
        assert_eq!(
            uri("peerjs://h:9000/?key=app&path=/x/").unwrap(),
            "peerjs://h:9000/booth?key=app&path=x app"
        );
        assert_eq!(
            uri("https://peers.example/").unwrap(),
            "peerjs://peers.example/booth?key=peerjs&secure=1 peerjs"
        );
        assert!(
            uri("peerjs://h:9000/studio")
                .unwrap_err()
                .contains("--peerjs")
        );
        assert!(uri("ftp://h/").unwrap_err().contains("not ftp://"));
    }
}
