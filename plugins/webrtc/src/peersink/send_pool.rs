//! The threads that carry the shared encodings into the viewers' branches.
//!
//! Each viewer used to have a leaky queue, hence a thread of its own that
//! woke for every frame: at 100 viewers the kernel's scheduling (futex
//! wake-ups, task switches) was 13–15% of the sender's CPU samples. Here a
//! few threads per element serve every viewer: a frame fanned out to 100
//! viewers lands in 100 outboxes and wakes at most the idle send threads.
//!
//! What the queue did for isolation the outbox does: a viewer whose
//! frames wait longer than its bound loses them (and, for video, resumes
//! at a keyframe) instead of holding up the encoder. A push never waits
//! on the network (nicesink drops what the socket does not take), and a
//! branch is fed only once its viewer is connected (before that webrtcbin
//! blocks its sink pads): a send thread is busy only with CPU work. Should
//! a push ever block, the pool notices at the next frame and adds a
//! thread, so the other viewers go on.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::encoding::Feed;
use super::imp::CAT;

/// How long one push may take before the pool stops counting on that
/// thread and starts another.
const STUCK_AFTER: Duration = Duration::from_millis(250);

/// Threads the pool may add for stuck pushes, beyond those it starts with.
const MAX_EXTRA_THREADS: usize = 16;

/// What a viewer's branch is sent, in order.
pub enum Item {
    Buffer(gst::Buffer),
    List(gst::BufferList),
    Event(gst::Event),
}

impl Item {
    fn is_event(&self) -> bool {
        matches!(self, Item::Event(_))
    }
}

/// The items waiting for one viewer's branch, with when each was queued.
#[derive(Default)]
pub struct Outbox {
    items: VecDeque<(Instant, Item)>,
}

impl Outbox {
    pub fn push(&mut self, item: Item, now: Instant) {
        self.items.push_back((now, item));
    }

    pub fn pop(&mut self) -> Option<Item> {
        self.items.pop_front().map(|(_, item)| item)
    }

    /// Whether the oldest buffer has waited longer than `bound`.
    pub fn is_late(&self, now: Instant, bound: Duration) -> bool {
        self.items
            .iter()
            .find(|(_, item)| !item.is_event())
            .is_some_and(|(queued, _)| now.duration_since(*queued) > bound)
    }

    /// Drops the media, keeping the events (caps, segment, EOS): the
    /// branch must still see those, in order.
    pub fn drop_media(&mut self) -> usize {
        let before = self.items.len();
        self.items.retain(|(_, item)| item.is_event());
        before - self.items.len()
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.items.len()
    }
}

/// The send threads of one peersink.
pub struct SendPool {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Threads started with; extra ones are added only for stuck pushes.
    base: usize,
}

struct Shared {
    ready: Mutex<Ready>,
    wake: Condvar,
}

#[derive(Default)]
struct Ready {
    /// Feeds with something in their outbox, each once.
    feeds: VecDeque<Arc<Feed>>,
    /// Threads waiting for work.
    idle: usize,
    /// Per thread: since when it has been pushing, if it is.
    busy_since: Vec<Option<Instant>>,
    stopping: bool,
}

impl SendPool {
    /// `threads`: how many send threads; 0 for one per core.
    pub fn new(threads: usize) -> Arc<SendPool> {
        let base = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let pool = Arc::new(SendPool {
            shared: Arc::new(Shared {
                ready: Mutex::new(Ready::default()),
                wake: Condvar::new(),
            }),
            threads: Mutex::new(Vec::new()),
            base,
        });
        for _ in 0..base {
            pool.add_thread();
        }
        pool
    }

    fn add_thread(&self) {
        let index = {
            let mut ready = self.shared.ready.lock().unwrap();
            ready.busy_since.push(None);
            ready.busy_since.len() - 1
        };
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("peersink-send{index}"))
            .spawn(move || shared.work(index));
        match spawned {
            Ok(handle) => self.threads.lock().unwrap().push(handle),
            Err(err) => gst::error!(CAT, "cannot start a send thread: {err}"),
        }
    }

    /// Queues `feed` for a send thread; [`SendPool::wake`] gets one going.
    /// The caller makes sure a feed is queued once at a time.
    pub fn schedule(&self, feed: Arc<Feed>) {
        self.shared.ready.lock().unwrap().feeds.push_back(feed);
    }

    /// Wakes idle send threads for what [`SendPool::schedule`] queued: once
    /// per frame fanned out, not once per viewer.
    pub fn wake(&self) {
        let now = Instant::now();
        let (notify, stuck) = {
            let ready = self.shared.ready.lock().unwrap();
            if ready.feeds.is_empty() {
                return;
            }
            let stuck = ready.idle == 0
                && ready.busy_since.len() < self.base + MAX_EXTRA_THREADS
                && ready
                    .busy_since
                    .iter()
                    .flatten()
                    .any(|since| now.duration_since(*since) > STUCK_AFTER);
            (ready.idle.min(ready.feeds.len()), stuck)
        };
        if notify > 1 {
            self.shared.wake.notify_all();
        } else if notify == 1 {
            self.shared.wake.notify_one();
        }
        if stuck {
            gst::warning!(
                CAT,
                "a send thread has been pushing into one viewer for over {} ms: adding one",
                STUCK_AFTER.as_millis()
            );
            self.add_thread();
        }
    }

    /// Ends the threads once what is queued has been sent (to branches
    /// torn down by now: at once). Not from a send thread.
    pub fn stop(&self) {
        self.shared.ready.lock().unwrap().stopping = true;
        self.shared.wake.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap());
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for SendPool {
    fn drop(&mut self) {
        self.shared.ready.lock().unwrap().stopping = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn work(&self, index: usize) {
        let mut ready = self.ready.lock().unwrap();
        loop {
            if let Some(feed) = ready.feeds.pop_front() {
                ready.busy_since[index] = Some(Instant::now());
                drop(ready);
                feed.drain();
                ready = self.ready.lock().unwrap();
                ready.busy_since[index] = None;
                continue;
            }
            if ready.stopping {
                return;
            }
            ready.idle += 1;
            ready = self.wake.wait(ready).unwrap();
            ready.idle -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer() -> Item {
        gst::init().unwrap();
        Item::Buffer(gst::Buffer::new())
    }

    fn caps_event() -> Item {
        gst::init().unwrap();
        Item::Event(gst::event::Caps::new(&gst::Caps::new_empty_simple(
            "video/x-vp8",
        )))
    }

    #[test]
    fn a_buffer_waiting_past_the_bound_makes_the_outbox_late() {
        let t0 = Instant::now();
        let bound = Duration::from_millis(400);
        let mut outbox = Outbox::default();
        assert!(!outbox.is_late(t0, bound));
        outbox.push(caps_event(), t0);
        // Events alone never make it late: they are never dropped.
        assert!(!outbox.is_late(t0 + Duration::from_secs(10), bound));
        outbox.push(buffer(), t0 + Duration::from_millis(100));
        outbox.push(buffer(), t0 + Duration::from_millis(450));
        assert!(!outbox.is_late(t0 + Duration::from_millis(500), bound));
        assert!(outbox.is_late(t0 + Duration::from_millis(501), bound));
    }

    #[test]
    fn dropping_media_keeps_the_events_in_order() {
        let t0 = Instant::now();
        let mut outbox = Outbox::default();
        outbox.push(buffer(), t0);
        outbox.push(caps_event(), t0);
        outbox.push(buffer(), t0);
        assert_eq!(outbox.drop_media(), 2);
        assert_eq!(outbox.len(), 1);
        assert!(matches!(outbox.pop(), Some(Item::Event(_))));
        assert!(outbox.pop().is_none());
    }
}
