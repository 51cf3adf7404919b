//! The plugin's one tokio runtime: signalling connections, embedded
//! servers and session bookkeeping of every element run on it.

use std::sync::LazyLock;

pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("peer-runtime")
        .enable_all()
        .build()
        .expect("the plugin's tokio runtime starts")
});
