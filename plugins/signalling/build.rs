//! Finds the npm `peerjs` client that scripts/install-deps.sh copies into
//! apps/web/vendor/, for the calling page to embed. Without it the build
//! still works: the page is served a stub saying how to get it.

use std::path::Path;

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/web");
    let vendored = web.join("vendor/peerjs.min.js");
    let client = if vendored.is_file() {
        vendored
    } else {
        println!(
            "cargo:warning=apps/web/vendor/peerjs.min.js is missing (scripts/install-deps.sh \
             puts it there): the PeerJS calling page will say so"
        );
        web.join("peerjs-missing.js")
    };
    println!("cargo:rerun-if-changed={}", web.join("vendor").display());
    println!(
        "cargo:rustc-env=GST_PEER_PEERJS_CLIENT={}",
        client.display()
    );
}
