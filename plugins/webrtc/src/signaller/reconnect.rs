//! Getting back to a signalling server that went away, for every
//! signaller with a connection of its own (native, PeerJS): attempts
//! spaced by an exponential backoff with jitter, until a deadline.

use std::future::Future;

use peer_signalling::client::Backoff;
use tokio::time::Instant;

use super::CommandSource;

pub(super) enum Reconnected<T> {
    Connected(T),
    GaveUp,
    /// The element stopped (its command channel closed) meanwhile.
    Stopping,
}

/// Calls `connect` until it succeeds or `deadline` passes. Commands from
/// the element meanwhile (candidates, descriptions of sessions the new
/// server does not know) are dropped: sessions already up need none of
/// them. `backoff` carries over between calls until the signaller is
/// registered again, so a server that takes the connection but refuses
/// the registration is not hammered.
pub(super) async fn reconnect<T, E, F, Fut>(
    mut connect: F,
    commands: &mut CommandSource,
    deadline: Instant,
    backoff: &mut Backoff,
    wait_first: bool,
) -> Reconnected<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut first = !wait_first;
    loop {
        if !first {
            let wait = Instant::now() + backoff.next_wait();
            loop {
                tokio::select! {
                    command = commands.recv() => if command.is_none() {
                        return Reconnected::Stopping;
                    },
                    _ = tokio::time::sleep_until(wait.min(deadline)) => break,
                }
            }
        }
        first = false;
        let attempt =
            tokio::time::timeout_at(deadline.max(Instant::now()) + Backoff::MAX, connect());
        if let Ok(Ok(connected)) = attempt.await {
            return Reconnected::Connected(connected);
        }
        if Instant::now() >= deadline {
            return Reconnected::GaveUp;
        }
    }
}
