#!/usr/bin/env bash
# Coverage-guided fuzzing with AFL++ through cargo-afl (stable Rust).
#
#   scripts/fuzz.sh TARGET SECONDS   fuzz TARGET for SECONDS; resumes fuzz/out/TARGET
#   scripts/fuzz.sh smoke SECONDS    every target for SECONDS from a fresh state (CI)
#   scripts/fuzz.sh replay TARGET    run the seed corpus and any saved crashes
#   scripts/fuzz.sh list             the targets
#
# Targets are in fuzz/fuzz_targets (docs/security.md says what each checks),
# seeds in fuzz/corpus/TARGET, dictionaries in fuzz/dict. The fuzz crate is
# outside the workspace, with its own lock file and target directory
# (fuzz/target). Prints "TARGET: N executions, M crashes" and exits non-zero
# when a crash was found (in fuzz/out/TARGET/default/crashes).
# Needs cargo-afl (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

TARGETS=(protocol_decode signalling_core peerjs_adapter wish_sdp canvas_scene record_template)

build() { # FUZZ_NO_BUILD=1: use the binaries there are (several runs at once)
  [ -n "${FUZZ_NO_BUILD:-}" ] && return 0
  CARGO_TARGET_DIR="$PWD/target" cargo afl build --release --locked --bins 2>&1 | tail -n 3
}

# AFL++ settings for a shared machine and a container: no CPU binding, no
# core_pattern or frequency governor requirements, plain-text status.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FAST_CAL=1 AFL_QUIET=1 AFL_SHUFFLE_QUEUE=1

stat() { # FILE FIELD
  awk -v f="$2" '$1 == f { print $3 }' "$1" 2>/dev/null || true
}

run() { # TARGET SECONDS [fresh]
  local target=$1 seconds=$2 out="out/$1"
  [ -d "corpus/$target" ] || { echo "fuzz: no target $target (have: ${TARGETS[*]})" >&2; exit 2; }
  if [ "${3:-}" = fresh ]; then rm -rf "$out"; fi
  mkdir -p "$out"
  local dict=()
  [ -f "dict/$target.dict" ] && dict=(-x "dict/$target.dict")
  # Resumes a previous run of the same target (its counts carry on).
  AFL_AUTORESUME=1 timeout --kill-after=30 $((seconds + 120)) \
    cargo afl fuzz -V "$seconds" -t 2000 -m none "${dict[@]}" -i "corpus/$target" -o "$out" \
    -- "target/release/$target" > "$out/afl.log" 2>&1 || {
      echo "fuzz: afl-fuzz for $target failed; the end of $out/afl.log:" >&2
      tail -n 20 "$out/afl.log" >&2
      exit 1
    }
  local stats="$out/default/fuzzer_stats"
  local execs crashes hangs
  execs=$(stat "$stats" execs_done)
  crashes=$(stat "$stats" saved_crashes)
  hangs=$(stat "$stats" saved_hangs)
  echo "$target: ${execs:-0} executions, ${crashes:-0} crashes, ${hangs:-0} hangs" \
    "($(stat "$stats" execs_per_sec) per second, $(stat "$stats" corpus_count) inputs in the queue," \
    "$(stat "$stats" bitmap_cvg) of the map)"
  if [ "${crashes:-0}" != 0 ]; then
    echo "fuzz: $target crashed; inputs in $out/default/crashes (scripts/fuzz.sh replay $target)" >&2
    return 1
  fi
}

replay() { # TARGET: every seed and saved crash through the target, outside AFL
  local target=$1 failed=0
  for input in corpus/"$target"/* out/"$target"/default/crashes/id:*; do
    [ -f "$input" ] || continue
    if ! "target/release/$target" < "$input" > /dev/null 2> /tmp/fuzz-replay.err; then
      echo "fuzz: $target fails on $input:" >&2
      tail -n 5 /tmp/fuzz-replay.err >&2
      failed=1
    fi
  done
  [ "$failed" = 0 ] && echo "$target: every input replayed without a crash"
  return "$failed"
}

case "${1:-}" in
  list) printf '%s\n' "${TARGETS[@]}" ;;
  smoke)
    build
    status=0
    for target in "${TARGETS[@]}"; do run "$target" "${2:-20}" fresh || status=1; done
    exit "$status"
    ;;
  replay) build; replay "${2:?scripts/fuzz.sh replay TARGET}" ;;
  "" | -h | --help) sed -n '2,15p' "$0" ;;
  *) build; run "$1" "${2:?scripts/fuzz.sh TARGET SECONDS}" ;;
esac
