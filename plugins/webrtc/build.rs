fn main() {
    gst_plugin_version_helper::info();
    // ICE on loopback-only hosts needs nice_agent_add_local_address(), which
    // no GStreamer property exposes in 1.22.
    pkg_config::Config::new()
        .atleast_version("0.1.18")
        .probe("nice")
        .expect("libnice development files (Debian: libnice-dev)");
}
