#!/usr/bin/env bash
# Load and hostile-client scenarios (bench/load.cc) against a fresh sigild on
# a temporary data directory, or against a running one. Figures go to
# docs/load.md by hand with the date, machine and commit.
#
#   bench/load.sh [load options]            e.g. --scenarios 1,3 --clients 32
#   bench/load.sh --target 127.0.0.1:7070 --token sgl_... [--pid PID] [options]
#
# SIGIL_BUILD_DIR (default build-load) is configured and built if needed
# (targets sigild and load only).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SIGIL_BUILD_DIR:-$root/build-load}"

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
if ! out="$(ninja -C "$build" -j "${SIGIL_BUILD_JOBS:-2}" sigild load 2>&1)"; then
  echo "$out" | tail -40 >&2
  echo "load.sh: building sigild and load in $build failed" >&2
  exit 1
fi

echo "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- api storage || echo ' (api/ or storage/ modified)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RLIMIT_NOFILE soft $(ulimit -Sn), hard $(ulimit -Hn)"

for a in "$@"; do
  if [ "$a" = "--target" ]; then exec "$build/bench/load" "$@"; fi
done
exec "$build/bench/load" --sigild "$build/api/sigild" "$@"
