#!/usr/bin/env bash
# Builds everything, then runs the whole test suite inside a private network
# namespace that holds only loopback, so WebRTC uses 127.0.0.1 and no
# traffic can reach any other address. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --all-targets --locked
export GST_PLUGIN_PATH="${CARGO_TARGET_DIR:-$PWD/target}/debug"
# gst-plugins-rs's WHIP/WHEP elements, the interop tests' reference peers
# (built once into a cache outside the workspace; never linked by us).
GST_PEER_REFERENCE_PLUGINS="$(bash scripts/reference-peers.sh | tail -n 1 | sed 's/^GST_PLUGIN_PATH=//')"
export GST_PEER_REFERENCE_PLUGINS
# One thread per test binary at a time keeps real-time media on 2 cores honest.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

in_namespace='ip link set lo up && exec "$@"'
if [ "$(id -u)" -eq 0 ]; then
  exec unshare -n -- sh -c "$in_namespace" sh cargo test --workspace --offline --locked --no-fail-fast "$@"
else
  exec unshare -rn -- sh -c "$in_namespace" sh cargo test --workspace --offline --locked --no-fail-fast "$@"
fi
