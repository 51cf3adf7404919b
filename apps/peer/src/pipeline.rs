//! Running a pipeline until it ends, an error, or Ctrl-C, for the apps.

use anyhow::{Context, bail};
use gst::prelude::*;

/// Registers every gst-peer element into this process, so the apps need
/// no GST_PLUGIN_PATH.
pub fn init() -> anyhow::Result<()> {
    gst::init()?;
    gstpeer::plugin_register_static()?;
    gstpeercapture::plugin_register_static()?;
    gstaudiotap::plugin_register_static()?;
    Ok(())
}

pub fn launch(description: &str) -> anyhow::Result<gst::Pipeline> {
    tracing::debug!(%description, "pipeline");
    let element = gst::parse::launch(description)
        .with_context(|| format!("cannot build pipeline: {description}"))?;
    // A description of one element parses to that element, not a pipeline.
    match element.downcast::<gst::Pipeline>() {
        Ok(pipeline) => Ok(pipeline),
        Err(element) => {
            let pipeline = gst::Pipeline::new();
            pipeline.add(&element)?;
            Ok(pipeline)
        }
    }
}

/// Plays `pipeline` until EOS, an error or SIGINT/SIGTERM; `on_element`
/// sees every element message (stats, ready announcements).
pub fn run(
    pipeline: &gst::Pipeline,
    mut on_element: impl FnMut(&gst::StructureRef),
) -> anyhow::Result<()> {
    let bus = pipeline.bus().expect("pipelines have a bus");
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    pipeline
        .set_state(gst::State::Playing)
        .context("cannot start the pipeline")?;
    let result = loop {
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("stopping");
            pipeline.send_event(gst::event::Eos::new());
            // Give muxers a moment to finalize on EOS, then stop regardless.
            let _ =
                bus.timed_pop_filtered(gst::ClockTime::from_seconds(3), &[gst::MessageType::Eos]);
            break Ok(());
        }
        let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(err) => {
                let source = err
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                break Err(anyhow::anyhow!("{} ({source})", err.error()));
            }
            gst::MessageView::Warning(warning) => eprintln!("warning: {}", warning.error()),
            gst::MessageView::Element(element) => {
                if let Some(structure) = element.structure() {
                    on_element(structure);
                }
            }
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null)?;
    result
}

pub fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn ensure_element(name: &str) -> anyhow::Result<()> {
    if gst::ElementFactory::find(name).is_none() {
        bail!("GStreamer element {name} is missing; run scripts/install-deps.sh");
    }
    Ok(())
}
