//! Each element handles its signalling and session events one at a time on
//! a thread of its own, where building and tearing down sessions may block
//! without holding up the runtime or a streaming thread.

use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::runtime::RUNTIME;
use crate::session::SessionNotice;
use crate::signaller::SignallerEvent;

pub enum Event {
    Signaller(SignallerEvent),
    Session(String, SessionNotice),
    /// An input's encoded caps became known (peersink).
    InputReady,
    Stop,
}

pub struct EventLoop {
    pub sender: mpsc::UnboundedSender<Event>,
    thread: Option<JoinHandle<()>>,
}

impl EventLoop {
    /// Starts the thread, feeding it the signaller's events and whatever is
    /// sent to `sender`, until [`EventLoop::stop`].
    pub fn start(
        name: String,
        mut signaller_events: mpsc::UnboundedReceiver<SignallerEvent>,
        handler: impl Fn(Event) + Send + 'static,
    ) -> Result<Self, String> {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Event>();
        let forward = sender.clone();
        RUNTIME.spawn(async move {
            while let Some(event) = signaller_events.recv().await {
                if forward.send(Event::Signaller(event)).is_err() {
                    break;
                }
            }
        });
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while let Some(event) = receiver.blocking_recv() {
                    if matches!(event, Event::Stop) {
                        break;
                    }
                    handler(event);
                }
            })
            .map_err(|err| format!("cannot start the event thread: {err}"))?;
        Ok(EventLoop {
            sender,
            thread: Some(thread),
        })
    }

    /// Stops the thread after the event it is handling; safe to call from it.
    pub fn stop(&mut self) {
        let _ = self.sender.send(Event::Stop);
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}
