//! peersink's statistics as structures (the `stats` property and the
//! `peersink-stats` bus messages), and the thread that drives adaptation
//! ticks and periodic messages.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::feedback::ViewerStats;
use super::layers::LayerSpec;

/// One viewer's fields. `layers`: the video layers, best first, to give
/// the picture size of the layer received.
pub fn viewer_structure(
    peer: &str,
    stats: &ViewerStats,
    layers: &[LayerSpec],
) -> gst::structure::Builder {
    let mut builder = gst::Structure::builder("viewer")
        .field("peer-id", peer)
        .field("layer", stats.layer as u32)
        .field(
            "target-layer",
            stats.target_layer.map_or(-1, |layer| layer as i32),
        )
        .field("estimated-bitrate", stats.estimated_bitrate)
        .field("sent-bitrate", stats.sent_bitrate)
        .field("fraction-lost", stats.fraction_lost)
        .field("loss", stats.loss)
        .field("packets-sent", stats.packets_sent)
        .field("bytes-sent", stats.bytes_sent)
        .field("packets-nacked", stats.packets_nacked)
        .field("keyframe-requests", stats.keyframe_requests)
        .field("layer-switches", stats.layer_switches);
    if let Some((width, height)) = layers.get(stats.layer).and_then(|layer| layer.size) {
        builder = builder
            .field("layer-width", width)
            .field("layer-height", height);
    }
    if let Some(layer) = layers.get(stats.layer) {
        builder = builder.field("layer-bitrate", layer.bitrate);
    }
    if let Some(rtt) = stats.round_trip {
        builder = builder.field("round-trip-time", rtt.as_secs_f64());
    }
    if let Some(remb) = stats.remb {
        builder = builder.field("remb-bitrate", remb);
    }
    builder
}

/// A thread calling `tick` every `period` until stopped or dropped.
pub struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(
        name: String,
        period: Duration,
        tick: impl Fn() + Send + 'static,
    ) -> Result<Ticker, String> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    tick();
                }
            })
            .map_err(|err| format!("cannot start the statistics thread: {err}"))?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the thread; safe to call from the tick itself.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}
