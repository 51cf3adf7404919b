#!/usr/bin/env bash
# The same fault on peersink and on gst-plugins-rs's webrtcsink, one after
# the other in one run (issue 16's "where webrtcsink behaves differently in
# the same fault, say so"): the signalling server crashes mid-broadcast.
#
# For each sender (broadcast_bench's sender: 640x360 VP8 at 800 kbit/s,
# test picture), with its own signalling server (`peer serve`, or
# gst-webrtc-signalling-server):
#   0 s   3 viewer-farm viewers join and watch for 40 s
#   10 s  the server is SIGKILLed (a crash), started again 2 s later on
#         the same port
#   25 s  a new viewer asks to join and watches for 5 s
# Then: the watching viewers' frame rate and frozen time (freeze.rs's
# definition on decodable frames' arrival), whether the sender still runs
# and what it said, whether the new viewer got frames.
#
#   cargo build --release --workspace --bins && bash scripts/reference-peers.sh
#   bash scripts/fault-compare.sh
#
# Runs itself in a private network namespace holding only loopback (plus
# the veth holding 127.0.0.1 that webrtcsink's libnice needs, as in
# broadcast_bench).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${FAULT_IN_NAMESPACE:-}" ]; then
  export FAULT_IN_NAMESPACE=1
  exec unshare -n -- bash -c 'ip link set lo up && exec bash "$0"' "$0"
fi

BIN="${FAULT_BIN:-target/release}"
OUT="${FAULT_OUT:-/tmp/gst-peer-faults-$(date -u +%Y%m%dT%H%M%SZ)}"
for tool in peer viewer-farm broadcast_bench; do
  [ -x "$BIN/$tool" ] || { echo "$BIN/$tool is missing: cargo build --release --workspace --bins" >&2; exit 2; }
done
reference=$(bash scripts/reference-peers.sh 2>/dev/null | tail -2)
WEBRTC_SIGNALLING_SERVER=$(echo "$reference" | sed -n 's/^WEBRTC_SIGNALLING_SERVER=//p')
REFERENCE_PLUGINS=$(echo "$reference" | sed -n 's/^GST_PLUGIN_PATH=//p')
[ -x "$WEBRTC_SIGNALLING_SERVER" ] || { echo "no gst-webrtc-signalling-server: bash scripts/reference-peers.sh" >&2; exit 2; }
export GST_PLUGIN_PATH="$PWD/$BIN:$REFERENCE_PLUGINS"
mkdir -p "$OUT"

# libnice skips `lo`, and webrtcsink has no address option.
ip link add fcloop0 type veth peer name fcloop1
for name in fcloop0 fcloop1; do
  sysctl -qw "net.ipv6.conf.$name.disable_ipv6=1" || true
  ip link set "$name" up
done
ip addr add 127.0.0.1/32 dev fcloop0

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_listening() {
  local port=$1 tries=0
  until listening "$port"; do
    tries=$((tries + 1)); [ "$tries" -gt 200 ] && { echo "nothing listens on $port" >&2; return 1; }
    sleep 0.05
  done
}

run_kind() {
  local kind=$1 port=$2 uri protocol server sender farm producer joined alive
  start_server() {
    if [ "$kind" = peersink ]; then
      "$BIN/peer" serve --port "$port" >>"$OUT/$kind-server.log" 2>&1 &
    else
      "$WEBRTC_SIGNALLING_SERVER" --host 127.0.0.1 --port "$port" >>"$OUT/$kind-server.log" 2>&1 &
    fi
    server=$!
    wait_listening "$port"
  }
  if [ "$kind" = peersink ]; then uri="ws://127.0.0.1:$port/faults"; protocol=peer
  else uri="ws://127.0.0.1:$port"; protocol=gstwebrtc; fi
  start_server
  "$BIN/broadcast_bench" sender "$kind" "$uri" 640 360 800000 >"$OUT/$kind-sender.out" 2>"$OUT/$kind-sender.log" &
  sender=$!
  for _ in $(seq 1 400); do grep -q '^producer ' "$OUT/$kind-sender.out" && break; sleep 0.05; done
  producer=$(sed -n 's/^producer //p' "$OUT/$kind-sender.out" | head -1)
  [ -n "$producer" ] || { echo "$kind: the sender never registered" >&2; kill "$sender" "$server"; return 1; }
  "$BIN/viewer-farm" --protocol "$protocol" --uri "$uri" --producer "$producer" --viewers 3 \
    --seconds 40 --connect-timeout 20 >"$OUT/$kind-watchers.log" 2>&1 &
  farm=$!
  sleep 10
  echo "$(date -u +%T) $kind: SIGKILL to its signalling server" | tee -a "$OUT/events.log"
  kill -KILL "$server"; wait "$server" 2>/dev/null || true
  sleep 2
  start_server
  echo "$(date -u +%T) $kind: signalling server started again" | tee -a "$OUT/events.log"
  sleep 13
  if "$BIN/viewer-farm" --protocol "$protocol" --uri "$uri" --producer "$producer" --viewers 1 \
    --seconds 5 --connect-timeout 15 >"$OUT/$kind-joiner.log" 2>&1; then joined=yes; else joined=no; fi
  wait "$farm" || true
  # Before stopping anything: is the sender running, and what did it say?
  if kill -0 "$sender" 2>/dev/null; then alive=yes; else alive=no; fi
  said=$(grep -m1 '^error' "$OUT/$kind-sender.log" | sed 's/^/ — /' || true)
  # SIGTERM: a background job of a script ignores SIGINT.
  kill -TERM "$sender" "$server" 2>/dev/null || true
  wait "$sender" "$server" 2>/dev/null || true
  echo
  echo "## $kind"
  echo "watching viewers: $(grep -E 'viewers,|FAILED' "$OUT/$kind-watchers.log" | tail -2 | tr '\n' ' ')"
  echo "sender still running after the crash: $alive$said"
  echo "a viewer joining after the restart got frames: $joined ($(grep -E 'viewers,|FAILED' "$OUT/$kind-joiner.log" | tail -1))"
}

echo "fault comparison; output in $OUT"
run_kind peersink 18190
run_kind webrtcsink 18191
ip link del fcloop0 2>/dev/null || true
