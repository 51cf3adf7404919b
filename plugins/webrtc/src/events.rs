//! Each element handles its signalling and session events one at a time on
//! a thread of its own, where building and tearing down sessions may block
//! without holding up the runtime or a streaming thread. The same thread
//! ticks: the element's one timing mechanism (peersink's adaptation and
//! statistics, peersrc's media watchdog), so no session has a thread or a
//! timer of its own.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::runtime::RUNTIME;
use crate::session::SessionNotice;
use crate::signaller::SignallerEvent;

pub enum Event {
    Signaller(SignallerEvent),
    Session(String, SessionNotice),
    /// An input's encoded caps became known (peersink).
    InputReady,
    /// The period given to [`EventLoop::start`] has passed.
    Tick,
}

enum Message {
    Event(Event),
    Stop,
}

/// Sends events to the element's thread; cheap to clone, safe from any
/// thread (a streaming thread, a webrtcbin callback, the runtime).
#[derive(Clone)]
pub struct EventSender(mpsc::Sender<Message>);

impl EventSender {
    pub fn send(&self, event: Event) {
        // A stopped loop has nobody left to tell.
        let _ = self.0.send(Message::Event(event));
    }
}

pub struct EventLoop {
    sender: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl EventLoop {
    /// Starts the thread, feeding it the signaller's events, whatever is
    /// sent through [`EventLoop::sender`] and a [`Event::Tick`] every
    /// `tick`, until [`EventLoop::stop`].
    pub fn start(
        name: String,
        mut signaller_events: tokio::sync::mpsc::UnboundedReceiver<SignallerEvent>,
        tick: Duration,
        handler: impl Fn(Event) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Message>();
        let forward = sender.clone();
        RUNTIME.spawn(async move {
            while let Some(event) = signaller_events.recv().await {
                if forward
                    .send(Message::Event(Event::Signaller(event)))
                    .is_err()
                {
                    break;
                }
            }
        });
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut next_tick = Instant::now() + tick;
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                match receiver.recv_timeout(wait) {
                    Ok(Message::Event(event)) => handler(event),
                    Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // Late ticks are not made up: one per period at most.
                        next_tick = Instant::now().max(next_tick) + tick;
                        handler(Event::Tick);
                    }
                }
            }
        })?;
        Ok(EventLoop {
            sender,
            thread: Some(thread),
        })
    }

    pub fn sender(&self) -> EventSender {
        EventSender(self.sender.clone())
    }

    /// Stops the thread after the event it is handling; safe to call from it.
    pub fn stop(&mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        self.stop();
    }
}
