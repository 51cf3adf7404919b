//! Getting back to a signalling server that went away, for every
//! signaller with a connection of its own (native, PeerJS): attempts
//! spaced by an exponential backoff with jitter, until a deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::CommandSource;

/// First retry after this; doubled up to `MAX_BACKOFF`, with ±25% jitter so
/// that every peer of a restarted server does not knock at once.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
    backoff: &mut Duration,
    wait_first: bool,
) -> Reconnected<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut first = !wait_first;
    loop {
        if !first {
            let jitter = rand::random_range(0.75..1.25);
            let wait = Instant::now() + backoff.mul_f64(jitter);
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
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
            tokio::time::timeout_at(deadline.max(Instant::now()) + MAX_BACKOFF, connect());
        if let Ok(Ok(connected)) = attempt.await {
            return Reconnected::Connected(connected);
        }
        if Instant::now() >= deadline {
            return Reconnected::GaveUp;
        }
    }
}
