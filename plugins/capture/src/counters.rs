//! Frames grabbed and pushed by screencapsrc, readable from any thread
//! (its `grabbed-frames` and `pushed-frames` properties).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct FrameCounters {
    grabbed: AtomicU64,
    pushed: AtomicU64,
}

impl FrameCounters {
    pub fn count_grab(&self) {
        self.grabbed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_push(&self) {
        self.pushed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn grabbed(&self) -> u64 {
        self.grabbed.load(Ordering::Relaxed)
    }

    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }
}
