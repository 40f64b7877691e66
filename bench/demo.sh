#!/bin/sh
# demo.sh - the main job of `make demo`, on loopback with a temporary spool.
#
# Until the engine lands this shows the spool at work: a generated campaign
# of 1,000,000 recipients is enqueued with a live progress line, then every
# delivery is claimed and resolved the way the engine will, and the counters
# and rates are printed.
#
# usage: bench/demo.sh BUILD_DIR
set -eu
build=${1:-build}
spool=$(mktemp -d /tmp/sluice-demo-XXXXXX)
trap 'rm -rf "$spool"' EXIT INT TERM
echo "== sluice demo: durable spool in $spool"
"$build/bench/queue-bench" --demo --spool "$spool" -n 1000000 --domains 1000
echo "== spool on disk: $(du -sh "$spool" | cut -f1)"
