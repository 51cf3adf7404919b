//! Picture quality of what a viewer decodes: PSNR of the luma against the
//! source frame it came from. The source (videotestsrc's moving SMPTE
//! bars) is deterministic by frame number, and the sender writes each
//! frame's number into the picture, so the viewer regenerates the very
//! frame that was encoded and compares, off its streaming thread.

use std::sync::mpsc;

use gst::prelude::*;

use crate::sender::{STAMP_ROWS, read_stamp};

/// One decoded luma plane to compare.
pub struct Decoded {
    pub luma: Vec<u8>,
    pub stride: usize,
}

/// Starts the comparing thread; it prints `psnr DB` per frame compared.
/// Frames sent faster than it compares are dropped, not queued.
pub fn start(width: u32, height: u32) -> mpsc::SyncSender<Decoded> {
    let (sender, frames) = mpsc::sync_channel::<Decoded>(2);
    std::thread::spawn(move || {
        let mut reference = Reference::new(width, height);
        for frame in frames {
            if let Some(psnr) = reference.psnr(&frame) {
                println!("psnr {psnr:.2}");
            }
        }
    });
    sender
}

struct Reference {
    appsink: gst_app::AppSink,
    _pipeline: gst::Pipeline,
    /// Number of the next frame the source will give.
    next: u64,
    width: usize,
    height: usize,
}

impl Reference {
    fn new(width: u32, height: u32) -> Reference {
        // The sender's source, not live: frames as fast as they are pulled.
        let pipeline = peer_tests::launch(&format!(
            "videotestsrc pattern=smpte horizontal-speed=2 \
             ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 \
             ! appsink name=out sync=false max-buffers=2"
        ));
        let appsink = pipeline
            .by_name("out")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .expect("an appsink");
        pipeline
            .set_state(gst::State::Playing)
            .expect("the reference plays");
        Reference {
            appsink,
            _pipeline: pipeline,
            next: 0,
            width: width as usize,
            height: height as usize,
        }
    }

    /// PSNR (dB) of the luma below the stamps; `None` when the frame's
    /// number is unreadable or behind the reference.
    fn psnr(&mut self, frame: &Decoded) -> Option<f64> {
        let number = read_stamp(&frame.luma, frame.stride, 1);
        if number < self.next || number > self.next + 100_000 {
            return None;
        }
        let sample = loop {
            let sample = self.appsink.pull_sample().ok()?;
            self.next += 1;
            if self.next > number {
                break sample;
            }
        };
        let buffer = sample.buffer()?;
        let map = buffer.map_readable().ok()?;
        let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
        let reference_stride = info.stride()[0] as usize;
        let mut squared = 0u64;
        for row in STAMP_ROWS..self.height {
            let decoded = &frame.luma[row * frame.stride..row * frame.stride + self.width];
            let source = &map[row * reference_stride..row * reference_stride + self.width];
            squared += decoded
                .iter()
                .zip(source)
                .map(|(&a, &b)| (a as i32 - b as i32).pow(2) as u64)
                .sum::<u64>();
        }
        let mse = squared as f64 / ((self.height - STAMP_ROWS) * self.width) as f64;
        Some(if mse == 0.0 {
            99.0
        } else {
            10.0 * (255.0f64 * 255.0 / mse).log10()
        })
    }
}
