//! The demo broadcast of `peer serve --demo`: something moving and a tone,
//! sent through peersink into the server it runs beside.

use gst::prelude::*;

use crate::pipeline;

pub struct Demo {
    pipeline: gst::Pipeline,
    trusted_certificate: Option<std::path::PathBuf>,
}

/// Starts the demo against the server on `port`; `trust` is the server's
/// certificate (PEM) when it serves TLS, `token` its access token when the
/// server requires one.
pub fn start(port: u16, trust: Option<String>, token: Option<String>) -> anyhow::Result<Demo> {
    pipeline::init()?;
    let (scheme, trusted_certificate) = match trust {
        Some(pem) => {
            let path =
                std::env::temp_dir().join(format!("gst-peer-demo-{}.pem", std::process::id()));
            std::fs::write(&path, pem)?;
            ("wss", Some(path))
        }
        None => ("ws", None),
    };
    let trust_property = trusted_certificate
        .as_ref()
        .map(|path| format!("tls-ca-file={}", pipeline::quote(&path.to_string_lossy())))
        .unwrap_or_default();
    let token_property = token
        .map(|token| format!("token={}", pipeline::quote(&token)))
        .unwrap_or_default();
    let description = format!(
        "peersink name=sink uri={scheme}://127.0.0.1:{port}/demo peer-id=demo {trust_property} {token_property} \
           meta=\"{{\\\"title\\\":\\\"gst-peer demo\\\"}}\" \
         videotestsrc is-live=true pattern=ball animation-mode=running-time motion=sweep background-color=0xff203040 \
           ! video/x-raw,width=1280,height=720,framerate=30/1 \
           ! timeoverlay halignment=right valignment=bottom font-desc=\"Sans 24\" ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq=440 volume=0.2 ! sink.audio_0"
    );
    let pipeline = pipeline::launch(&description)?;
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("pipelines have a bus");
    std::thread::spawn(move || {
        for message in bus.iter_timed(gst::ClockTime::NONE) {
            if let gst::MessageView::Error(err) = message.view() {
                tracing::error!("demo broadcast: {}", err.error());
            }
        }
    });
    tracing::info!("demo broadcast in room \"demo\" as producer \"demo\"");
    Ok(Demo {
        pipeline,
        trusted_certificate,
    })
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(path) = &self.trusted_certificate {
            let _ = std::fs::remove_file(path);
        }
    }
}
