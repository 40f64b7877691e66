#!/bin/sh
# engine_bench.sh - end-to-end delivery benchmark of sluiced, with the raw
# ceiling measured in the same run.
#
#   sluice:   N messages of SIZE bytes to D domains, put in a fresh spool by
#             spool-fill, delivered by sluiced (DNS from dnsmasq, every MX
#             on 127.0.0.1) to Postfix's smtp-sink; timed from sluiced's
#             start to its exit with --exit-when-empty (every outcome
#             committed), plus peak RSS and CPU from /usr/bin/time.
#   overlap:  the same workload with injection and delivery overlapping:
#             spool-fill starts, sluiced starts 0.3 s later; timed from the
#             first injection to sluiced's exit (last outcome committed).
#   ceiling:  Postfix's smtp-source straight into the same smtp-sink with
#             the same message size and SESSIONS parallel sessions, reusing
#             connections (-d).
#
#   DKIM=rsa|ed25519|dual signs every message in sluiced (keys made by
#   `sluice dkim keygen` for the sender's domain, verified for account 0 and
#   unsigned mail refused, so a message that is not signed is not counted
#   as delivered).  The ceiling sends unsigned bytes of the same size.
#
# usage: bench/engine_bench.sh BUILD_DIR    (env: N=100000 D=1000 SIZE=5120
#        SESSIONS=100 RUNS=1 OUT=file.jsonl DKIM=)
set -eu
build=$(cd "${1:-build}" && pwd)
N=${N:-100000}
D=${D:-1000}
SIZE=${SIZE:-5120}
SESSIONS=${SESSIONS:-100}
RUNS=${RUNS:-1}
OUT=${OUT:-/dev/null}
. "$(dirname "$0")/lib.sh"
bench_setup ebench

{
  echo "no-resolv"; echo "no-hosts"; echo "local=/bench/"
  i=0
  while [ $i -lt "$D" ]; do
    echo "mx-host=d$i.bench,mx.d$i.bench,10"
    echo "host-record=mx.d$i.bench,127.0.0.1"
    i=$((i + 1))
  done
} > "$T/dns.conf"
start_dnsmasq "$T/dns.conf"
/usr/sbin/smtp-sink -u root -m 2000 127.0.0.1:"$SINKPORT" 4096 > "$T/sink.log" 2>&1 &
pids="$pids $!"
sleep 0.5

{ sluiced_conf_head; cat <<CONF
max_connections = ${MAXCONN:-400}
max_inflight = ${INFLIGHT:-20000}
group_ms = ${GROUP_MS:-25}
[domain default]
max_connections = ${DOMCONN:-4}
max_messages_per_connection = 1000
CONF
} > "$T/sluiced.conf"
DKIM=${DKIM:-}
if [ -n "$DKIM" ]; then
  case $DKIM in
    rsa|ed25519) algos=$DKIM ;;
    dual) algos="rsa ed25519" ;;
    *) echo "DKIM=$DKIM: rsa, ed25519 or dual" >&2; exit 64 ;;
  esac
  mkdir -p "$T/keys/sender.bench" && chmod -R 700 "$T/keys"
  for a in $algos; do
    "$build/tools/sluice" --spool "$T/keyspool" dkim keygen sender.bench \
      --selector "b$a" --algo "$a" --key "$T/keys/sender.bench/b$a.key" \
      > /dev/null
  done
  # dkim_keys goes into [sluiced], the account into its own section
  sed -i "s|^\[sluiced\]\$|[sluiced]\ndkim_keys = $T/keys|" "$T/sluiced.conf"
  printf '[account 0]\ndomains = sender.bench\nallow_unsigned = no\n' \
    >> "$T/sluiced.conf"
fi

run=1
while [ $run -le "$RUNS" ]; do
  rm -rf "$T/spool"
  t0=$(ms)
  "$build/bench/spool-fill" --spool "$T/spool" -n "$N" --domains "$D" --size "$SIZE"
  t1=$(ms)
  /usr/bin/time -f "%M %U %S" -o "$T/time" \
    "$build/engine/sluiced" -c "$T/sluiced.conf" --exit-when-empty 2> "$T/sluiced.log"
  t2=$(ms)
  read -r rss usr sys < "$T/time"
  delivered=$(sed -n 's/.*delivered \([0-9]*\),.*/\1/p' "$T/sluiced.log")
  # overlapping injection and delivery
  rm -rf "$T/spool"
  t5=$(ms)
  "$build/bench/spool-fill" --spool "$T/spool" -n "$N" --domains "$D" --size "$SIZE" &
  fillpid=$!
  sleep 0.3
  until "$build/tools/sluice" --spool "$T/spool" spool info >/dev/null 2>&1; do
    sleep 0.05
  done
  "$build/engine/sluiced" -c "$T/sluiced.conf" --exit-when-empty 2> "$T/sluiced2.log"
  wait "$fillpid"
  t6=$(ms)
  delivered2=$(sed -n 's/.*delivered \([0-9]*\),.*/\1/p' "$T/sluiced2.log")
  delivered2=${delivered2:-0}
  # sluiced may have caught up with the injection and stopped early: finish
  if [ "$delivered2" -lt "$N" ]; then
    "$build/engine/sluiced" -c "$T/sluiced.conf" --exit-when-empty 2> "$T/sluiced3.log"
    t6=$(ms)
    delivered2=$((delivered2 + $(sed -n 's/.*delivered \([0-9]*\),.*/\1/p' "$T/sluiced3.log")))
  fi
  t3=$(ms)
  /usr/sbin/smtp-source -d -s "$SESSIONS" -l "$SIZE" -m "$N" -f bench@sender.bench \
    -t ceiling@d0.bench 127.0.0.1:"$SINKPORT"
  t4=$(ms)
  fill_ms=$((t1 - t0)); send_ms=$((t2 - t1)); ceil_ms=$((t4 - t3))
  overlap_ms=$((t6 - t5))
  overlap=$(awk "BEGIN { printf \"%.0f\", $N * 1000 / $overlap_ms }")
  rate=$(awk "BEGIN { printf \"%.0f\", $N * 1000 / $send_ms }")
  e2e=$(awk "BEGIN { printf \"%.0f\", $N * 1000 / ($send_ms + $fill_ms) }")
  ceil=$(awk "BEGIN { printf \"%.0f\", $N * 1000 / $ceil_ms }")
  cpu_us=$(awk "BEGIN { printf \"%.1f\", ($usr + $sys) * 1e6 / $N }")
  ratio=$(awk "BEGIN { printf \"%.2f\", $rate / $ceil }")
  echo "run $run${DKIM:+ (DKIM $DKIM)}: sluiced delivered $delivered/$N in ${send_ms} ms = $rate msg/s" \
       "(fill ${fill_ms} ms, fill+send $e2e msg/s); CPU ${cpu_us} us/msg;" \
       "peak RSS $((rss / 1024)) MB; overlapped injection+delivery" \
       "$delivered2/$N in ${overlap_ms} ms = $overlap msg/s;" \
       "ceiling smtp-source $ceil msg/s; ratio $ratio"
  echo "{\"run\":$run,\"dkim\":\"${DKIM:-none}\",\"n\":$N,\"domains\":$D,\"size\":$SIZE,\"delivered\":$delivered,\"send_ms\":$send_ms,\"fill_ms\":$fill_ms,\"msg_per_s\":$rate,\"e2e_msg_per_s\":$e2e,\"cpu_us_per_msg\":$cpu_us,\"peak_rss_kb\":$rss,\"overlap_msg_per_s\":$overlap,\"ceiling_msg_per_s\":$ceil,\"ratio\":$ratio}" >> "$OUT"
  run=$((run + 1))
done
