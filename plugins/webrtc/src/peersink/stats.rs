//! peersink's statistics as structures (the `stats` property and the
//! `peersink-stats` bus messages).

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
        .field("layer-switches", stats.layer_switches)
        .field("probes", stats.probes)
        .field("probes-held", stats.probes_held)
        .field("rtcp-packets", stats.rtcp_packets)
        .field("transport-cc-feedback", stats.transport_cc_feedback)
        .field("congestion-signals", stats.congestion_signals);
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
    if let Some(delay) = stats.queuing_delay {
        builder = builder.field("queuing-delay", delay.as_secs_f64());
    }
    if let Some(received) = stats.received_bitrate {
        builder = builder.field("received-bitrate", received);
    }
    if let Some(remb) = stats.remb {
        builder = builder.field("remb-bitrate", remb);
    }
    builder
}
