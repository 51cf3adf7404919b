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
    /// Holds the thread before its first event until [`EventLoop::release`]:
    /// the signaller may answer before the element has stored what its
    /// handler looks up (a refused WHEP endpoint answers at once), and an
    /// event handled then would be dropped as "not running".
    gate: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EventLoop {
    /// Starts the thread, feeding it the signaller's events, whatever is
    /// sent through [`EventLoop::sender`] and a [`Event::Tick`] every
    /// `tick`, from [`EventLoop::release`] until [`EventLoop::stop`].
    /// Events sent before the release wait for it, in order.
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
        let (gate, gate_opened) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            // Stopped before it was released: nothing to handle.
            if gate_opened.recv().is_err() {
                return;
            }
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
            gate: Some(gate),
            thread: Some(thread),
        })
    }

    /// Lets the thread handle events; call once the handler can find what
    /// it needs (the element's running state is stored).
    pub fn release(&mut self) {
        if let Some(gate) = self.gate.take() {
            let _ = gate.send(());
        }
    }

    pub fn sender(&self) -> EventSender {
        EventSender(self.sender.clone())
    }

    /// Stops the thread after the event it is handling; safe to call from it.
    pub fn stop(&mut self) {
        // Never released: dropping the gate ends the thread unstarted.
        self.gate = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn signaller_events() -> (
        tokio::sync::mpsc::UnboundedSender<SignallerEvent>,
        tokio::sync::mpsc::UnboundedReceiver<SignallerEvent>,
    ) {
        tokio::sync::mpsc::unbounded_channel()
    }

    #[test]
    fn events_wait_for_the_release_and_keep_their_order() {
        let (to_loop, from_signaller) = signaller_events();
        let (seen, handled) = mpsc::channel::<String>();
        let mut event_loop = EventLoop::start(
            "events-test".into(),
            from_signaller,
            Duration::from_secs(3600),
            move |event| {
                if let Event::Signaller(SignallerEvent::SignallingLost { reason }) = event {
                    let _ = seen.send(reason);
                }
            },
        )
        .unwrap();
        for reason in ["first", "second"] {
            to_loop
                .send(SignallerEvent::SignallingLost {
                    reason: reason.into(),
                })
                .unwrap();
        }
        // Both are queued (the forwarder runs on the runtime) but nothing
        // is handled before the release.
        assert!(handled.recv_timeout(Duration::from_millis(200)).is_err());
        event_loop.release();
        assert_eq!(
            handled.recv_timeout(Duration::from_secs(5)).unwrap(),
            "first"
        );
        assert_eq!(
            handled.recv_timeout(Duration::from_secs(5)).unwrap(),
            "second"
        );
        event_loop.stop();
    }

    #[test]
    fn a_loop_stopped_before_its_release_handles_nothing_and_ends() {
        let (to_loop, from_signaller) = signaller_events();
        let (seen, handled) = mpsc::channel::<()>();
        let mut event_loop = EventLoop::start(
            "events-test".into(),
            from_signaller,
            Duration::from_secs(3600),
            move |_| {
                let _ = seen.send(());
            },
        )
        .unwrap();
        to_loop
            .send(SignallerEvent::SignallingLost {
                reason: "lost".into(),
            })
            .unwrap();
        // Returns: the thread ended without waiting for a release.
        event_loop.stop();
        assert!(handled.try_recv().is_err());
    }
}
