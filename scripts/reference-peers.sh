#!/usr/bin/env bash
# Builds the reference WebRTC peers no one here wrote: gst-plugins-rs's
# `gst-plugin-webrtc` (crates.io, default features: whip, whep, janus,
# web_server) and its `gst-webrtc-signalling-server`, against the system
# GStreamer, into a cache OUTSIDE the workspace. They are never a
# dependency of our crates: benchmarks and interop tests find them through
# GST_PLUGIN_PATH and the server's path.
#
# Usage:  bash scripts/reference-peers.sh
# Output: the last line is always `GST_PLUGIN_PATH=<dir>`; the line before
#         it is `WEBRTC_SIGNALLING_SERVER=<path>` (gst-webrtc-signalling-server).
# Idempotent: a finished build is reused (a few ms); delete the cache
# directory to rebuild. First build: ~5-10 min on 2 cores, ~2 GB of disk
# for the target directory (kept, so a version bump rebuilds incrementally).
#
# Environment:
#   GST_PEER_REFERENCE_DIR      cache (default ~/.cache/gst-peer/reference)
#   GST_PEER_REFERENCE_VERSION  crate version (default 0.15.4)
#   CARGO, CARGO_HOME, CARGO_BUILD_JOBS are honoured as cargo does.
#
# Elements it yields (0.15.4, `gst-inspect-1.0 rswebrtc` on GStreamer 1.22,
# 8 elements): webrtcsink, webrtcsrc, whipclientsink, whipserversrc,
# whepclientsrc, whepserversink, janusvrwebrtcsink, janusvrwebrtcsrc.
# Not built (features off): livekit*, aws kinesis*. The script checks that
# webrtcsink, webrtcsrc, whipclientsink, whipserversrc, whepclientsrc and
# whepserversink are registered, and fails otherwise.
set -euo pipefail

version="${GST_PEER_REFERENCE_VERSION:-0.15.4}"
cache="${GST_PEER_REFERENCE_DIR:-$HOME/.cache/gst-peer/reference}"
cargo="${CARGO:-cargo}"
prefix="$cache/$version"
plugin_dir="$prefix/lib/gstreamer-1.0"
server="$prefix/bin/gst-webrtc-signalling-server"
required=(webrtcsink webrtcsrc whipclientsink whipserversrc whepclientsrc whepserversink)

log() { echo "reference-peers: $*" >&2; }

check_elements() {
  local missing=()
  for element in "${required[@]}"; do
    # (gst-inspect-1.0 --exists answers 1 for these in 1.22; inspect them.)
    GST_PLUGIN_PATH="$plugin_dir" gst-inspect-1.0 "$element" >/dev/null 2>&1 || missing+=("$element")
  done
  if ((${#missing[@]})); then
    log "built plugin lacks: ${missing[*]}"
    return 1
  fi
}

if [ -f "$prefix/.done" ] && [ -x "$server" ] && [ -f "$plugin_dir/libgstrswebrtc.so" ]; then
  log "already built: $prefix"
else
  mkdir -p "$prefix/src" "$plugin_dir" "$prefix/bin"
  # cargo has no "download this crate" command: a throwaway package that
  # depends on both crates makes `cargo fetch` put their .crate files in
  # cargo's registry cache, from which they are unpacked.
  fetch="$prefix/fetch"
  mkdir -p "$fetch/src"
  cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "reference-peers-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
gst-plugin-webrtc = "=$version"
gst-plugin-webrtc-signalling = "=$version"
EOF
  : >"$fetch/src/lib.rs"
  log "fetching gst-plugin-webrtc $version from crates.io"
  (cd "$fetch" && CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback "$cargo" fetch -q)
  registry="${CARGO_HOME:-$HOME/.cargo}/registry/cache"
  for crate in gst-plugin-webrtc gst-plugin-webrtc-signalling; do
    file=$(ls "$registry"/*/"$crate-$version.crate" 2>/dev/null | head -n1)
    [ -n "$file" ] || { log "$crate-$version.crate not found under $registry"; exit 1; }
    rm -rf "$prefix/src/$crate-$version"
    tar -xzf "$file" -C "$prefix/src"
  done

  # Each unpacked crate is its own package with the Cargo.lock it was
  # published with (versions known to build); one shared target dir.
  target="$prefix/target"
  log "building the signalling server (~2 min on 2 cores)"
  (cd "$prefix/src/gst-plugin-webrtc-signalling-$version" &&
    CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
      "$cargo" build --release --target-dir "$target" --bin gst-webrtc-signalling-server)
  log "building the plugin with whip, whep, janus, web_server (~5-10 min on 2 cores)"
  (cd "$prefix/src/gst-plugin-webrtc-$version" &&
    CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
      "$cargo" build --release --target-dir "$target" --lib \
      --no-default-features --features whip,whep,janus,web_server,rustls-aws-lc-rs)
  # Only the plugin goes in the plugin directory: GStreamer scans its
  # path recursively and would try every .so of target/ (proc macros).
  install -m 0755 "$target/release/gst-webrtc-signalling-server" "$server"
  install -m 0644 "$target/release/libgstrswebrtc.so" "$plugin_dir/libgstrswebrtc.so"
  check_elements
  touch "$prefix/.done"
  log "built into $prefix"
fi

check_elements
echo "WEBRTC_SIGNALLING_SERVER=$server"
echo "GST_PLUGIN_PATH=$plugin_dir"
