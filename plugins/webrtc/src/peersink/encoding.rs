//! One encoded stream that viewers share: a quality layer of a video
//! input, or the encoding of an audio input. Its output is fanned out to
//! the viewers subscribed to it by a probe, instead of a tee, so that a
//! viewer can move between layers at a keyframe without relinking pads,
//! and so that nothing a viewer's branch returns can reach the encoder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::layers::LayerSpec;
use super::send_pool::{Item, Outbox, SendPool};
use crate::codec::MediaKind;
use crate::keyframe::{Decision, KeyframeLimiter};
use crate::runtime::RUNTIME;

pub struct Encoding {
    pub kind: MediaKind,
    /// Layer number, 0 the best (always 0 for audio).
    pub index: usize,
    /// Size and bitrate, for video.
    pub spec: Option<LayerSpec>,
    /// The sink at the end of the chain: fan-out happens on its pad, and
    /// with `sync=true` it paces non-live input at real time.
    pub output: gst::Element,
    pub keyframes: Mutex<KeyframeLimiter>,
    feeds: Mutex<Vec<Arc<Feed>>>,
    /// Video: the frames since the last keyframe while it is recent, for
    /// viewers that connect meanwhile. Held while fanning a frame out, so
    /// that a replay and the live frames never interleave.
    recent: Mutex<Recent>,
}

/// The frames since the last keyframe, kept while that keyframe is no
/// older than the keyframe policy's minimum interval: within it a new
/// keyframe would be deferred (up to the whole interval, ~230 ms of a
/// back-to-back join measured), while these frames can be sent at once.
#[derive(Default)]
struct Recent {
    keyframe_at: Option<Instant>,
    frames: Vec<gst::Buffer>,
}

impl Recent {
    fn record(&mut self, buffer: &gst::BufferRef, keyframe: bool, now: Instant, horizon: Duration) {
        if keyframe {
            self.frames.clear();
            self.keyframe_at = Some(now);
        }
        match self.keyframe_at {
            Some(at) if now.duration_since(at) <= horizon => self.frames.push(buffer.to_owned()),
            _ => {
                self.frames.clear();
                self.keyframe_at = None;
            }
        }
    }

    fn fresh(&self, now: Instant, horizon: Duration) -> bool {
        !self.frames.is_empty()
            && self
                .keyframe_at
                .is_some_and(|at| now.duration_since(at) <= horizon)
    }
}

impl Encoding {
    pub fn new(
        kind: MediaKind,
        index: usize,
        spec: Option<LayerSpec>,
        output: gst::Element,
        keyframes: KeyframeLimiter,
    ) -> Arc<Encoding> {
        let encoding = Arc::new(Encoding {
            kind,
            index,
            spec,
            output,
            keyframes: Mutex::new(keyframes),
            feeds: Mutex::new(Vec::new()),
            recent: Mutex::new(Recent::default()),
        });
        encoding.fan_out();
        encoding
    }

    fn input_pad(&self) -> gst::Pad {
        self.output
            .static_pad("sink")
            .expect("sinks have a sink pad")
    }

    /// Encoded caps, once known.
    pub fn caps(&self) -> Option<gst::Caps> {
        self.input_pad().current_caps()
    }

    pub fn subscribe(&self, feed: &Arc<Feed>) {
        let mut feeds = self.feeds.lock().unwrap();
        if !feeds.iter().any(|f| Arc::ptr_eq(f, feed)) {
            feeds.push(feed.clone());
        }
    }

    pub fn unsubscribe(&self, feed: &Arc<Feed>) {
        self.feeds.lock().unwrap().retain(|f| !Arc::ptr_eq(f, feed));
    }

    /// Whether any viewer takes (or is about to take) this encoding.
    pub fn has_feeds(&self) -> bool {
        !self.feeds.lock().unwrap().is_empty()
    }

    pub fn viewer_count(&self) -> usize {
        self.feeds
            .lock()
            .unwrap()
            .iter()
            .filter(|feed| feed.current_layer() == Some(self.index))
            .count()
    }

    fn fan_out(self: &Arc<Self>) {
        let pad = self.input_pad();
        let weak = Arc::downgrade(self);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let (Some(buffer), Some(encoding)) = (info.buffer(), weak.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            let now = Instant::now();
            let mut recent = encoding.recent.lock().unwrap();
            if encoding.kind == MediaKind::Video {
                let horizon = {
                    let mut keyframes = encoding.keyframes.lock().unwrap();
                    if keyframe {
                        keyframes.keyframe_seen(now);
                    }
                    keyframes.min_interval()
                };
                recent.record(buffer, keyframe, now, horizon);
            }
            // A snapshot, so that subscribing never waits for a push.
            let feeds = encoding.feeds.lock().unwrap().clone();
            let mut stale = false;
            for feed in &feeds {
                stale |= !feed.offer(&encoding, buffer, keyframe, now);
            }
            // One wake-up of the send threads for every viewer of the frame.
            if let Some(feed) = feeds.first() {
                feed.pool.wake();
            }
            if stale {
                encoding
                    .feeds
                    .lock()
                    .unwrap()
                    .retain(|feed| feed.wants(encoding.index));
            }
            drop(recent);
            gst::PadProbeReturn::Ok
        });
        let weak = Arc::downgrade(self);
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let (Some(event), Some(encoding)) = (info.event(), weak.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            if !matches!(
                event.type_(),
                gst::EventType::Caps | gst::EventType::Segment | gst::EventType::Eos
            ) {
                return gst::PadProbeReturn::Ok;
            }
            let feeds = encoding.feeds.lock().unwrap().clone();
            for feed in &feeds {
                feed.forward_event(encoding.index, event);
            }
            if let Some(feed) = feeds.first() {
                feed.pool.wake();
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Sends `feed` the frames since the last keyframe, if it is recent
    /// (see [`Recent`]), opening its gate; false if there was none, or
    /// the branch did not take them.
    fn replay_to(&self, feed: &Arc<Feed>) -> bool {
        let recent = self.recent.lock().unwrap();
        let horizon = self.keyframes.lock().unwrap().min_interval();
        if !recent.fresh(Instant::now(), horizon) {
            return false;
        }
        feed.replay(self, &recent.frames)
    }

    /// Asks for a keyframe under the keyframe policy (see keyframe.rs).
    pub fn request_keyframe(self: &Arc<Self>) {
        if self.kind != MediaKind::Video {
            return;
        }
        let decision = self.keyframes.lock().unwrap().request(Instant::now());
        match decision {
            Decision::SendNow => self.send_keyframe_request(),
            Decision::SendAt(at) => {
                let encoding = Arc::downgrade(self);
                RUNTIME.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let Some(encoding) = encoding.upgrade() else {
                        return;
                    };
                    let fire = encoding.keyframes.lock().unwrap().fire(Instant::now());
                    if fire {
                        encoding.send_keyframe_request();
                    }
                });
            }
            Decision::Coalesced => {}
        }
    }

    fn send_keyframe_request(&self) {
        // Upstream from the output: through the parser to this layer's
        // encoder, which answers it (or to whoever encoded the input).
        let pad = self.input_pad();
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        // Not from the caller's thread: that may be a streaming thread
        // of a viewer, and the event travels up to the encoder.
        RUNTIME.spawn_blocking(move || {
            let _ = pad.push_event(event);
        });
    }
}

/// How long after the connection a viewer's video starts. Our side of
/// DTLS (the server's) completes one flight before the viewer's: packets
/// sent at once reach a viewer that cannot decrypt them yet (seen on
/// loopback: the replayed keyframe lost, 3.6 ms before the viewer had its
/// keys). Past this, a keyframe lost that way is asked for again by the
/// viewer (PLI), as any lost keyframe.
pub const JOIN_DELAY: Duration = Duration::from_millis(20);

/// What a viewer's branch lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Not connected yet: frames would be lost anyway.
    Closed,
    /// Waiting for a keyframe: a decoder cannot start on a delta frame.
    AwaitingKeyframe,
    Open,
}

struct FeedState {
    gate: Gate,
    /// Layer the branch takes buffers from.
    current: usize,
    /// Layer to move to at its next keyframe.
    pending: Option<usize>,
    /// Moving down: the current layer's frames are dropped until the
    /// pending layer's keyframe (see [`Feed::switch_to`]).
    drop_current: bool,
    /// Caps of the layer last sent downstream; new caps go first on a switch.
    sent_caps: Option<gst::Caps>,
    started: bool,
    /// What waits for a send thread, in order.
    outbox: Outbox,
    /// Whether the feed is queued for (or being drained by) a send thread.
    scheduled: bool,
}

/// How long a viewer's frames may wait for a send thread before they are
/// dropped (video then resumes at a keyframe): what kept a slow viewer
/// from holding up everyone when each had its own queue.
const OUTBOX_BOUND: Duration = Duration::from_millis(400);

/// One viewer's entry point for one input: it takes buffers from one
/// encoding (layer) at a time and queues them for the viewer's branch,
/// which a send thread of the pool pushes them into.
pub struct Feed {
    /// The first pad of the viewer's branch (its payloader's sink pad).
    target: gst::Pad,
    state: Mutex<FeedState>,
    pub pool: Arc<SendPool>,
    /// Every encoding of the input, by layer number.
    encodings: Vec<Weak<Encoding>>,
    failed: Arc<AtomicBool>,
    /// Called on the streaming thread when a switch has happened.
    on_switched: Box<dyn Fn(usize) + Send + Sync>,
}

impl Feed {
    pub fn new(
        target: gst::Pad,
        pool: Arc<SendPool>,
        encodings: &[Arc<Encoding>],
        layer: usize,
        gate: Gate,
        failed: Arc<AtomicBool>,
        on_switched: Box<dyn Fn(usize) + Send + Sync>,
    ) -> Arc<Feed> {
        Arc::new(Feed {
            target,
            state: Mutex::new(FeedState {
                gate,
                current: layer,
                pending: None,
                drop_current: false,
                sent_caps: None,
                started: false,
                outbox: Outbox::default(),
                scheduled: false,
            }),
            pool,
            encodings: encodings.iter().map(Arc::downgrade).collect(),
            failed,
            on_switched,
        })
    }

    /// Starts taking buffers; the branch must be playing by now, or the
    /// stream start and caps sent ahead of the first buffer are lost.
    pub fn start(self: &Arc<Self>) {
        let layer = self.state.lock().unwrap().current;
        if let Some(encoding) = self.encoding(layer) {
            encoding.subscribe(self);
        }
    }

    pub fn encoding(&self, layer: usize) -> Option<Arc<Encoding>> {
        self.encodings.get(layer).and_then(Weak::upgrade)
    }

    pub fn current_layer(&self) -> Option<usize> {
        let state = self.state.lock().unwrap();
        (!self.failed.load(Ordering::Acquire)).then_some(state.current)
    }

    /// The layer being moved to, if a switch waits for its keyframe.
    pub fn pending_layer(&self) -> Option<usize> {
        self.state.lock().unwrap().pending
    }

    /// Whether buffers of layer `layer` may concern this feed.
    fn wants(&self, layer: usize) -> bool {
        let state = self.state.lock().unwrap();
        !self.failed.load(Ordering::Acquire)
            && (state.current == layer || state.pending == Some(layer))
    }

    /// Waits for a keyframe of the current layer (after connecting, or
    /// after frames were lost), asking for one.
    pub fn await_keyframe(&self) {
        let layer = {
            let mut state = self.state.lock().unwrap();
            state.gate = Gate::AwaitingKeyframe;
            state.pending.unwrap_or(state.current)
        };
        if let Some(encoding) = self.encoding(layer) {
            encoding.request_keyframe();
        }
    }

    /// The viewer is connected: its video starts from the current layer's
    /// recent keyframe when there is one (no waiting for a new keyframe,
    /// which the keyframe policy may defer), else at a new one asked for
    /// now. Not at once: see [`JOIN_DELAY`].
    pub fn start_video(self: &Arc<Self>) {
        let feed = Arc::downgrade(self);
        RUNTIME.spawn(async move {
            tokio::time::sleep(JOIN_DELAY).await;
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(feed) = feed.upgrade() {
                    feed.start_video_now();
                }
            })
            .await;
        });
    }

    fn start_video_now(self: &Arc<Self>) {
        let (layer, pending) = {
            let state = self.state.lock().unwrap();
            (state.current, state.pending)
        };
        let replayed = pending.is_none()
            && self
                .encoding(layer)
                .is_some_and(|encoding| encoding.replay_to(self));
        if !replayed {
            self.await_keyframe();
        }
    }

    /// Moves to `layer` at its next keyframe (asked for now). Moving
    /// down, the current layer stops at once: the viewer goes down
    /// because its path does not carry that layer, and every frame more
    /// of it would queue at the bottleneck in front of the keyframe it
    /// waits for (after a failed probe, ~1 s of picture frozen behind a
    /// full queue was measured). A picture that stands still for the
    /// keyframe's few tens of ms costs less.
    pub fn switch_to(self: &Arc<Self>, layer: usize) {
        let Some(encoding) = self.encoding(layer) else {
            return;
        };
        {
            let mut state = self.state.lock().unwrap();
            if state.current == layer {
                state.pending = None;
                state.drop_current = false;
                return;
            }
            state.pending = Some(layer);
            state.drop_current = layer > state.current;
        }
        encoding.subscribe(self);
        encoding.request_keyframe();
    }

    /// Asks the current layer's encoder for a keyframe (PLI, FIR).
    pub fn request_keyframe(&self) {
        let layer = self.state.lock().unwrap().current;
        if let Some(encoding) = self.encoding(layer) {
            encoding.request_keyframe();
        }
    }

    /// A buffer of `encoding`; false when this feed no longer wants that
    /// encoding at all. Queued (at `now`) for a send thread, which the
    /// caller wakes.
    fn offer(
        self: &Arc<Self>,
        encoding: &Encoding,
        buffer: &gst::BufferRef,
        keyframe: bool,
        now: Instant,
    ) -> bool {
        if self.failed.load(Ordering::Acquire) {
            return false;
        }
        let layer = encoding.index;
        let mut state = self.state.lock().unwrap();
        let mut switched = false;
        if state.pending == Some(layer) && keyframe && state.gate != Gate::Closed {
            state.current = layer;
            state.pending = None;
            state.drop_current = false;
            state.gate = Gate::Open;
            switched = true;
        } else if state.current != layer {
            return state.pending == Some(layer);
        } else if state.drop_current && state.pending.is_some() {
            return true;
        }
        match state.gate {
            Gate::Closed => return true,
            Gate::AwaitingKeyframe if !keyframe => return true,
            Gate::AwaitingKeyframe => state.gate = Gate::Open,
            Gate::Open => {}
        }
        // The send threads have not kept up with this viewer: what waits
        // is stale. Video resumes at a keyframe (a delta frame after a
        // dropped one cannot be decoded).
        if state.outbox.is_late(now, OUTBOX_BOUND) {
            let dropped = state.outbox.drop_media();
            gst::debug!(
                super::imp::CAT,
                obj = &self.target,
                "{dropped} late items dropped"
            );
            if encoding.kind == MediaKind::Video && !keyframe {
                drop(state);
                self.await_keyframe();
                return true;
            }
        }
        if !state.started || switched {
            self.queue_sticky_events(&mut state, encoding, now);
        }
        state.outbox.push(Item::Buffer(buffer.to_owned()), now);
        self.schedule(state);
        // The layer left behind drops this feed from its list by itself
        // (offer returns false there).
        if switched {
            (self.on_switched)(layer);
        }
        true
    }

    /// Queues the feed for a send thread unless it is already; takes the
    /// state's lock so that a send thread finishing meanwhile is seen.
    fn schedule(self: &Arc<Self>, mut state: std::sync::MutexGuard<'_, FeedState>) {
        let queue = !std::mem::replace(&mut state.scheduled, true);
        drop(state);
        if queue {
            self.pool.schedule(self.clone());
        }
    }

    /// Lets audio through, now that the viewer is connected: before, the
    /// branch's webrtcbin holds its sink pads until negotiated, and a push
    /// would wait there, taking a send thread from everyone.
    pub fn open(&self) {
        let mut state = self.state.lock().unwrap();
        if state.gate == Gate::Closed {
            state.gate = Gate::Open;
        }
    }

    /// Queues `frames` (a keyframe and what followed it) for the branch,
    /// as one buffer list, and opens the gate; false when the feed is
    /// elsewhere (between layers).
    fn replay(self: &Arc<Self>, encoding: &Encoding, frames: &[gst::Buffer]) -> bool {
        if self.failed.load(Ordering::Acquire) || frames.is_empty() {
            return false;
        }
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        if state.current != encoding.index || state.pending.is_some() {
            return false;
        }
        self.queue_sticky_events(&mut state, encoding, now);
        state.gate = Gate::Open;
        let mut list = gst::BufferList::new_sized(frames.len());
        {
            let list = list.get_mut().expect("a new list is writable");
            for frame in frames {
                list.add(frame.clone());
            }
        }
        state.outbox.push(Item::List(list), now);
        self.schedule(state);
        self.pool.wake();
        true
    }

    /// Stream start, caps and segment of `encoding` ahead of its first
    /// buffer (caps again after a layer switch). Should the branch refuse
    /// them, the send thread starts the feed over (see [`Feed::drain`]).
    fn queue_sticky_events(&self, state: &mut FeedState, encoding: &Encoding, now: Instant) {
        let pad = encoding.input_pad();
        if !state.started
            && let Some(event) = pad.sticky_event::<gst::event::StreamStart>(0)
        {
            state.outbox.push(Item::Event(event.into()), now);
        }
        if let Some(event) = pad.sticky_event::<gst::event::Caps>(0) {
            let caps = event.caps_owned();
            if state.sent_caps.as_ref() != Some(&caps) {
                state.outbox.push(Item::Event(event.into()), now);
                state.sent_caps = Some(caps);
            }
        }
        if !state.started
            && let Some(event) = pad.sticky_event::<gst::event::Segment>(0)
        {
            state.outbox.push(Item::Event(event.into()), now);
        }
        state.started = true;
    }

    fn forward_event(self: &Arc<Self>, layer: usize, event: &gst::Event) {
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock().unwrap();
        if state.current != layer || !state.started {
            return;
        }
        if let gst::EventView::Caps(caps) = event.view() {
            state.sent_caps = Some(caps.caps_owned());
        }
        state
            .outbox
            .push(Item::Event(event.clone()), Instant::now());
        self.schedule(state);
    }

    /// Pushes what the outbox holds into the branch, in order; on a send
    /// thread of the pool, which runs one feed's drain at a time.
    pub fn drain(&self) {
        loop {
            let item = {
                let mut state = self.state.lock().unwrap();
                let item = if self.failed.load(Ordering::Acquire) {
                    state.outbox.clear();
                    None
                } else {
                    state.outbox.pop()
                };
                match item {
                    Some(item) => item,
                    None => {
                        state.scheduled = false;
                        return;
                    }
                }
            };
            // The branch's results stay here: a viewer that fails is
            // removed by the element, never by failing the shared stream.
            let delivered = match item {
                Item::Buffer(buffer) => {
                    let _ = self.target.chain(buffer);
                    true
                }
                Item::List(list) => {
                    let _ = self.target.chain_list(list);
                    true
                }
                Item::Event(event) => self.target.send_event(event),
            };
            if !delivered {
                // The branch is not running yet: start over, events
                // first, at the next keyframe.
                {
                    let mut state = self.state.lock().unwrap();
                    state.outbox.clear();
                    state.started = false;
                    state.sent_caps = None;
                }
                self.await_keyframe();
            }
        }
    }

    /// Stops taking buffers from every encoding.
    pub fn detach(self: &Arc<Self>) {
        self.failed.store(true, Ordering::Release);
        for encoding in self.encodings.iter().filter_map(Weak::upgrade) {
            encoding.unsubscribe(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HORIZON: Duration = Duration::from_millis(300);

    fn frame() -> gst::Buffer {
        gst::init().unwrap();
        gst::Buffer::with_size(4).unwrap()
    }

    #[test]
    fn keeps_the_frames_since_a_recent_keyframe() {
        let t0 = Instant::now();
        let mut recent = Recent::default();
        // Before any keyframe nothing is kept: a viewer could not start there.
        recent.record(&frame(), false, t0, HORIZON);
        assert!(!recent.fresh(t0, HORIZON));
        recent.record(&frame(), true, t0, HORIZON);
        for i in 1..5 {
            recent.record(&frame(), false, t0 + Duration::from_millis(33 * i), HORIZON);
        }
        assert_eq!(recent.frames.len(), 5);
        assert!(recent.fresh(t0 + Duration::from_millis(200), HORIZON));
        // Past the horizon a new keyframe is due anyway: nothing to replay.
        assert!(!recent.fresh(t0 + Duration::from_millis(301), HORIZON));
        recent.record(&frame(), false, t0 + Duration::from_millis(333), HORIZON);
        assert!(recent.frames.is_empty());
        // The next keyframe starts a new run.
        recent.record(&frame(), true, t0 + Duration::from_millis(400), HORIZON);
        assert_eq!(recent.frames.len(), 1);
        assert!(recent.fresh(t0 + Duration::from_millis(420), HORIZON));
    }
}
