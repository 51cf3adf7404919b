#!/usr/bin/env bash
# One-hour soak (issue 16's benchmark): one 720p30 broadcast (`peer send`),
# 10 viewer slots whose viewers (viewer-farm, one viewer each) join and
# leave at random, a recorder (`peer record`), and `peer serve` restarted
# every 10 minutes. Reports the memory slope of each process, the frame
# rate and frozen time every viewer session got, and how much of the run
# the recordings' counted video frames cover. docs/reliability.md describes it.
#
#   cargo build --release --workspace --bins
#   bash scripts/soak.sh                      # 60 minutes
#   SOAK_MINUTES=5 RESTART_MINUTES=2 bash scripts/soak.sh   # a short try
#
# Runs itself in a private network namespace holding only loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SOAK_IN_NAMESPACE:-}" ]; then
  export SOAK_IN_NAMESPACE=1
  if [ "$(id -u)" -eq 0 ]; then
    exec unshare -n -- bash -c 'ip link set lo up && exec bash "$0"' "$0"
  else
    exec unshare -rn -- bash -c 'ip link set lo up && exec bash "$0"' "$0"
  fi
fi

MINUTES="${SOAK_MINUTES:-60}"
RESTART_MINUTES="${RESTART_MINUTES:-10}"
SLOTS="${SOAK_VIEWERS:-10}"
PORT="${SOAK_PORT:-18090}"
BIN="${SOAK_BIN:-target/release}"
OUT="${SOAK_OUT:-/tmp/gst-peer-soak-$(date -u +%Y%m%dT%H%M%SZ)}"
export GST_PLUGIN_PATH="$PWD/$BIN"
for tool in peer viewer-farm count_frames; do
  [ -x "$BIN/$tool" ] || { echo "$BIN/$tool is missing: cargo build --release --workspace --bins" >&2; exit 2; }
done
mkdir -p "$OUT/rec" "$OUT/viewers"
echo "soak: ${MINUTES} min, server restart every ${RESTART_MINUTES} min, ${SLOTS} viewer slots; output in $OUT"

serve() { "$BIN/peer" serve --port "$PORT" >>"$OUT/serve.log" 2>&1 & echo $! >"$OUT/serve.pid"; }
serve
sleep 1
"$BIN/peer" send --server "ws://127.0.0.1:$PORT" --room soak --id cam \
  --width 1280 --height 720 --fps 30 --bitrate 2000000 >"$OUT/send.log" 2>&1 &
SEND=$!
# `peer record --server` reconnects to a restarted server by itself; should
# it exit, it is restarted here as a service manager would, and counted.
record() {
  "$BIN/peer" record --server "ws://127.0.0.1:$PORT" --room soak --dir "$OUT/rec" \
    --summary-interval 60 >>"$OUT/record.log" 2>&1 &
  RECORD=$!
}
record
RECORDER_RESTARTS=0

START=$(date +%s)
END=$((START + MINUTES * 60))

# A slot: a viewer watches 10-120 s, leaves, the slot rests 0-20 s, again.
slot() {
  local n=$1
  while [ "$(date +%s)" -lt "$END" ]; do
    local left=$((END - $(date +%s)))
    local watch=$((RANDOM % 111 + 10))
    [ "$watch" -gt "$left" ] && watch=$left
    [ "$watch" -lt 1 ] && break
    "$BIN/viewer-farm" --uri "ws://127.0.0.1:$PORT/soak" --producer cam --viewers 1 \
      --seconds "$watch" --connect-timeout 20 >>"$OUT/viewers/slot$n.log" 2>&1 || true
    sleep $((RANDOM % 21))
  done
}
for n in $(seq 1 "$SLOTS"); do slot "$n" & done

# Every 10 s: resident memory (KiB), threads and descriptors of each process.
echo "seconds,process,rss_kib,threads,fds" >"$OUT/usage.csv"
sample() {
  local now=$(($(date +%s) - START)) name pid
  for name in send record serve; do
    case $name in
      send) pid=$SEND ;; record) pid=$RECORD ;; serve) pid=$(cat "$OUT/serve.pid") ;;
    esac
    [ -r "/proc/$pid/status" ] || continue
    echo "$now,$name,$(awk '/VmRSS/ {print $2}' "/proc/$pid/status"),$(ls "/proc/$pid/task" | wc -l),$(ls "/proc/$pid/fd" | wc -l)" >>"$OUT/usage.csv"
  done
}
NEXT_RESTART=$((START + RESTART_MINUTES * 60))
while [ "$(date +%s)" -lt "$END" ]; do
  sample
  if ! kill -0 "$RECORD" 2>/dev/null; then
    RECORDER_RESTARTS=$((RECORDER_RESTARTS + 1))
    echo "$(date -u +%T) peer record exited; started again" | tee -a "$OUT/restarts.log"
    record
  fi
  if [ "$(date +%s)" -ge "$NEXT_RESTART" ]; then
    echo "$(date -u +%T) restarting peer serve" | tee -a "$OUT/restarts.log"
    kill -TERM "$(cat "$OUT/serve.pid")"; wait "$(cat "$OUT/serve.pid")" 2>/dev/null || true
    serve
    NEXT_RESTART=$((NEXT_RESTART + RESTART_MINUTES * 60))
  fi
  sleep 10
done

wait_slots() { for job in $(jobs -p); do [ "$job" = "$SEND" ] || [ "$job" = "$RECORD" ] || [ "$job" = "$(cat "$OUT/serve.pid")" ] || wait "$job" 2>/dev/null || true; done; }
kill -INT "$RECORD"; wait "$RECORD" 2>/dev/null || true
wait_slots
kill -INT "$SEND" 2>/dev/null || true; kill -TERM "$(cat "$OUT/serve.pid")" 2>/dev/null || true
wait 2>/dev/null || true

echo
echo "## Memory slope (after the first 5 minutes), least squares"
awk -F, 'NR > 1 && $1 >= 300 {
  n[$2]++; sx[$2] += $1; sy[$2] += $3; sxx[$2] += $1 * $1; sxy[$2] += $1 * $3
  if (!($2 in first)) first[$2] = $3; last[$2] = $3; th[$2] = $4; fd[$2] = $5
} END {
  for (p in n) {
    d = n[p] * sxx[p] - sx[p] * sx[p]; slope = d ? (n[p] * sxy[p] - sx[p] * sy[p]) / d : 0
    printf "%-7s %+.1f MiB/hour (RSS %.0f -> %.0f MiB; at the end %d threads, %d fds)\n", p, slope * 3600 / 1024, first[p] / 1024, last[p] / 1024, th[p], fd[p]
  }
}' "$OUT/usage.csv"

echo
echo "## Viewer sessions (viewer-farm summaries: fps over each session, join time)"
cat "$OUT"/viewers/slot*.log | grep -c "viewers," | sed 's/^/sessions: /'
cat "$OUT"/viewers/slot*.log | grep -c "FAILED" | sed 's/^/failed: /' || true
cat "$OUT"/viewers/slot*.log | sed -n 's/.*fps per viewer min \([0-9.]*\).*/\1/p' | sort -n |
  awk '{v[NR] = $1} END { if (NR) printf "session fps: lowest %.1f, 5th percentile %.1f, median %.1f\n", v[1], v[int(NR * 0.05) + 1], v[int(NR / 2) + 1] }'
# Frozen time (tests/farm/src/freeze.rs: W3C webrtc-stats' definition on the
# arrival of decodable frames, no jitter buffer to smooth it) per session.
cat "$OUT"/viewers/slot*.log | sed -n 's/.*frozen per viewer max \([0-9.]*\) .*/\1/p' | sort -n |
  awk '{v[NR] = $1} END { if (NR) printf "frozen ms a minute per session: median %.0f, 95th percentile %.0f, highest %.0f; sessions with any freeze: %d\n", v[int(NR / 2) + 1], v[int(NR * 0.95) + 1], v[NR], nz } $1 > 0 { nz++ }'
cat "$OUT"/viewers/slot*.log | sed -n 's/.*longest gap \([0-9.]*\) ms.*/\1/p' | sort -n | tail -1 | sed 's/^/longest gap between two frames in any session: /; s/$/ ms/'

echo
echo "## Recordings (peer record was started again $RECORDER_RESTARTS time(s)), video frames counted"
frames=0
for file in "$OUT"/rec/*.webm "$OUT"/rec/*.mkv; do
  [ -e "$file" ] || continue
  line=$("$BIN/count_frames" "$file" 2>/dev/null | tail -1)
  echo "${line#"$OUT"/rec/}"
  n=$(echo "$line" | sed -n 's/.*: \([0-9]*\) video frames.*/\1/p')
  frames=$((frames + ${n:-0}))
done
awk -v f="$frames" -v m="$MINUTES" 'BEGIN {printf "recordings hold %d video frames: %.1f s at 30 fps of the %d s run (%.1f%%)\n", f, f / 30, m * 60, 100 * f / 30 / (m * 60)}'
