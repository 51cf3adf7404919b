#!/usr/bin/env bash
# Runs a pipelines/*.pipeline file with gst-launch-1.0 (comment lines are
# skipped), using the plugins of this checkout's release build when present.
# The file holds what you would type after `gst-launch-1.0` in a shell,
# quotes included (JSON with spaces goes in single quotes).
set -euo pipefail
file="${1:?usage: run-pipeline.sh FILE [gst-launch options]}"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${GST_PLUGIN_PATH:-}" ]; then
  for profile in release debug; do
    if [ -e "$root/target/$profile/libgstpeer.so" ]; then
      export GST_PLUGIN_PATH="$root/target/$profile"
      break
    fi
  done
fi
description="$(grep -v '^[[:space:]]*#' "$file" | tr '\n' ' ')"
eval "exec gst-launch-1.0 -e \"\$@\" $description"
