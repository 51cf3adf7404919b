#!/usr/bin/env bash
# Installs every system package gst-peer needs to build, run and test on Debian 12.
# Idempotent: packages already present are left alone. Run as root (or with sudo).
set -euo pipefail

packages=(
  # build
  build-essential pkg-config git ca-certificates
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libnice-dev
  libssl-dev   # the viewer farm's str0m: DTLS and SRTP through OpenSSL
  # runtime: elements used inside our bins
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-nice gstreamer1.0-x gstreamer1.0-alsa
  fonts-dejavu-core
  # tests: network namespaces, loss injection, real peers, browsers, X server
  iproute2 iptables util-linux procps
  chromium chromium-driver
  coturn xvfb x11-xserver-utils x11-utils x11-apps xdotool wmctrl
  gstreamer1.0-pipewire
  espeak-ng sox
  # fuzzing (scripts/fuzz.sh): afl++ brings clang/LLVM and AFL++'s tools;
  # cargo-afl (below) builds its own AFL++ runtime for rustc's instrumentation
  afl++ clang llvm
)
# the PeerJS client for the calling page and the reference PeerServer (npm,
# below). A machine whose node already brings npm (NodeSource's package, which
# conflicts with Debian's npm) keeps it.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# coturn's package starts a system service on install; our tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet coturn 2>/dev/null; then
  systemctl stop coturn || true
fi
echo "install-deps: all ${#packages[@]} packages present"

# cargo-afl from crates.io (its AFL++ is built from the source it ships,
# for the installed rustc): coverage-guided fuzzing on stable Rust.
CARGO_AFL_VERSION=0.18.2
if command -v cargo >/dev/null 2>&1; then
  if [ "$(cargo afl --version 2>/dev/null | awk '{print $2}')" != "$CARGO_AFL_VERSION" ]; then
    cargo install cargo-afl --locked --version "$CARGO_AFL_VERSION"
  fi
  # The AFL++ runtime for this rustc (it says "already built" when it is).
  if ! afl_config=$(cargo afl config --build 2>&1); then
    grep -q "already built" <<<"$afl_config" || { echo "$afl_config" >&2; exit 1; }
  fi
  echo "install-deps: cargo-afl $CARGO_AFL_VERSION"
fi

# npm packages (scripts/npm, exact versions and integrity from its lock file):
# `peerjs` 1.5.5, whose client the calling page embeds (copied into
# apps/web/vendor/, which build.rs of peer-signalling picks up), and `peer`
# 1.0.2, the reference PeerServer the tests and benchmarks run with node.
# Into a cache outside the repository; nothing is ever loaded from a CDN.
repo="$(cd "$(dirname "$0")/.." && pwd)"
npm_dir="${GST_PEER_NPM_DIR:-$HOME/.cache/gst-peer/npm}"
mkdir -p "$npm_dir"
if ! cmp -s "$repo/scripts/npm/package-lock.json" "$npm_dir/package-lock.json" \
   || [ ! -f "$npm_dir/node_modules/peerjs/dist/peerjs.min.js" ] \
   || [ ! -f "$npm_dir/node_modules/peer/dist/bin/peerjs.js" ]; then
  cp "$repo/scripts/npm/package.json" "$repo/scripts/npm/package-lock.json" "$npm_dir/"
  (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
install -m 644 "$npm_dir/node_modules/peerjs/dist/peerjs.min.js" "$repo/apps/web/vendor/peerjs.min.js"
echo "install-deps: npm peerjs and peer in $npm_dir"
