#!/bin/sh
# run.sh - the benchmarks of `make bench`.  Each figure is the median of
# RUNS runs (default 3) with min and max; results go to stdout and, as JSON
# lines, to bench/results/queue.jsonl.
#
# usage: bench/run.sh BUILD_DIR        (env: RUNS=3 N=1000000)
set -eu
build=${1:-build}
runs=${RUNS:-3}
n=${N:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/results"
out="$here/results/queue.jsonl"
: > "$out"
: > "$here/results/engine.jsonl"

echo "== queue-bench: $n campaign recipients, durable mode, $runs runs"
echo "   command: $build/bench/queue-bench -n $n --json"
i=0
while [ "$i" -lt "$runs" ]; do
  "$build/bench/queue-bench" -n "$n" --json >> "$out"
  i=$((i + 1))
done

# median/min/max of one numeric JSON field over the runs
stat() {
  sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$out" | sort -n | awk '
    { v[NR] = $1 }
    END { printf "median %s  min %s  max %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
echo "enqueue recipients/s:   $(stat enqueue_per_s)"
echo "outcomes/s:             $(stat outcomes_per_s)"
echo "bytes per recipient:    $(stat bytes_per_recipient)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"

echo
echo "== engine: ${EN:-100000} x ${SIZE:-5120} B to ${ED:-1000} domains, sluiced vs the raw ceiling, $runs runs"
N=${EN:-100000} D=${ED:-1000} RUNS=$runs OUT="$here/results/engine.jsonl" \
  sh "$here/engine_bench.sh" "$build"

for algo in rsa ed25519; do
  echo
  echo "== engine with DKIM $algo: ${EN:-100000} x ${SIZE:-5120} B to ${ED:-1000} domains, $runs runs"
  DKIM=$algo N=${EN:-100000} D=${ED:-1000} RUNS=$runs \
    OUT="$here/results/engine-dkim.jsonl" sh "$here/engine_bench.sh" "$build"
done

echo
echo "== personalised campaign, rsa-signed: ${EN:-100000} contacts to ${ED:-1000} domains"
N=${EN:-100000} D=${ED:-1000} RUNS=1 OUT="$here/results/campaign-send.jsonl" \
  sh "$here/campaign_send_bench.sh" "$build"

echo
echo "== rate: sites held to max_rate over 60-second windows (${SECS:-130} s)"
SECS=${SECS:-130} OUT="$here/results/rate.jsonl" sh "$here/rate_bench.sh" "$build"

echo
echo "== scale: 10,000 sites, 1,000,000 queued recipients"
OUT="$here/results/scale.jsonl" sh "$here/scale_bench.sh" "$build"

echo
echo "== campaign send: 1,000,000 contacts queued by sluice campaign send, $runs runs"
N=${CN:-1000000} RUNS=$runs OUT="$here/results/campaign.jsonl" \
  sh "$here/campaign_bench.sh" "$build"
