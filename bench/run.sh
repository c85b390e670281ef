#!/usr/bin/env bash
# Push/pull and small-request benchmarks of sigild through the sigil client,
# with the machine's limits beside them. Prints a table; figures go to
# docs/benchmarks.md by hand with the date and machine.
#
#   bench/run.sh [SIZE_MIB]     (default 1024: a 1 GiB file and a 10-file model of the same total)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SIGIL_BUILD_DIR:-$root/build}"
size_mib="${1:-1024}"
port="${SIGIL_BENCH_PORT:-17071}"
server="http://127.0.0.1:$port"

"$root/scripts/build" >/dev/null
work="$(mktemp -d /tmp/sigil-bench-XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

sigil() { "$build/cli/sigil" --server "$server" "$@"; }
now() { date +%s.%N; }
rate() { awk -v mib="$1" -v s="$2" 'BEGIN { printf "%8.0f MiB/s  (%6.2f s)", mib / s, s }'; }

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
openssl speed -evp sha256 -bytes 16384 -seconds 3 2>/dev/null | awk '/^sha256/ { printf "openssl sha256 (16 KiB blocks, 1 core): %.0f MiB/s\n", $2 / 1024 * 1000 / 1024 }'
"$build/bench/storage_bench" --size-mib "$size_mib" --dir "$work/storage-bench"

echo "== fixtures"
mkdir -p "$work/one" "$work/ten"
head -c "$((size_mib << 20))" /dev/urandom > "$work/one/model.bin"
for i in $(seq 0 9); do head -c "$(((size_mib << 20) / 10))" /dev/urandom > "$work/ten/shard-$i.bin"; done
t0=$(now); cat "$work/one/model.bin" > /dev/null; t1=$(now)
echo "cat (page cache) $(rate "$size_mib" "$(echo "$t1 - $t0" | bc)")"
t0=$(now); dd if="$work/one/model.bin" of="$work/dd.out" bs=4M conv=fsync status=none; t1=$(now)
echo "disk write (dd, fsync) $(rate "$size_mib" "$(echo "$t1 - $t0" | bc)")"
rm -f "$work/dd.out"

echo "== sigild"
"$build/api/sigild" --data "$work/data" --listen "127.0.0.1:$port" 2>"$work/sigild.log" &
pid=$!
for _ in $(seq 100); do curl -sf "$server/healthz" >/dev/null && break; sleep 0.1; done
# sigild made the first admin token (auth is on, as in production).
export SIGIL_TOKEN="$(cat "$work/data/bootstrap-token")"

t0=$(now); sigil push "$work/one/model.bin" bench/one:v1 >/dev/null; t1=$(now)
echo "push 1 file        $(rate "$size_mib" "$(echo "$t1 - $t0" | bc)")"
t0=$(now); sigil pull bench/one:v1 "$work/pull-one" >/dev/null; t1=$(now)
echo "pull 1 file        $(rate "$size_mib" "$(echo "$t1 - $t0" | bc)")"
t0=$(now); sigil push "$work/ten" bench/ten:v1 >/dev/null; t1=$(now)
echo "push 10 files      $(rate "$size_mib" "$(echo "$t1 - $t0" | bc)")"
t0=$(now); sigil pull bench/ten:v1 "$work/pull-ten" >/dev/null; t1=$(now)
echo "pull 10 files      $(rate "$size_mib" "$(echo "$t1 - $t0" | bc)")"
t0=$(now); sigil push "$work/ten" bench/ten:v2 >/dev/null; t1=$(now)
echo "re-push (all blobs present) $(awk -v s="$(echo "$t1 - $t0" | bc)" 'BEGIN { printf "%6.2f s", s }')"
cmp "$work/one/model.bin" "$work/pull-one/model.bin"

echo "== GET version (wrk, 10 s each)"
for c in 1 16 64; do
  threads=2
  if [ "$c" -lt 2 ]; then threads=1; fi
  wrk -t"$threads" -c"$c" -d10s --latency -H "Authorization: Bearer $SIGIL_TOKEN" "$server/api/v1/models/bench/ten/versions/v1" |
    awk -v c="$c" '/Requests\/sec/ { rps = $2 } /^ +99%/ { p99 = $2 } END { printf "connections %3d: %9.0f req/s, p99 %s\n", c, rps, p99 }'
done
echo "sigild peak RSS: $(awk '/VmHWM/ { print $2 " kB" }' /proc/$pid/status)"
