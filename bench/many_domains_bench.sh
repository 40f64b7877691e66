#!/bin/sh
# many_domains_bench.sh - the "many destinations" cliff: N single-recipient
# messages over D domains (default 50,000 over 10,000: 5 a domain) against
# the same N over REF_D domains (default 1,000, W1's spread), one run after
# the other on the same machine; connections and rate of each.
#
#   spool-fill queues the messages round-robin over the domains
#   (user<i>@d<i % D>.bench, so a domain's mail is spread over the whole
#   queue), every domain's MX is 127.0.0.1, and sluice-sink counts the
#   connections (sessions), those that carried no MAIL and those that
#   carried one.  sluiced runs with the default limits and --exit-when-empty.
#
#   Prints per run: wall ms, msg/s, connections, connections per domain,
#   connections without a transaction, connections with one message; then
#   the ratio of the many-domain rate to the reference rate (issue 22
#   targets >= 0.85, and connections <= 1.2 x domains).  The machine's load
#   moves both runs: compare the ratio, not the rates.
#
# usage: bench/many_domains_bench.sh BUILD_DIR   (env: N=50000 D=10000
#        REF_D=1000 SIZE=5120 SLUICED=path (default BUILD_DIR/engine/sluiced)
#        MAX_INFLIGHT=n (sluiced's max_inflight; default its own) TTL=s (the
#        DNS answers' TTL; default dnsmasq's 0) OUT=file.jsonl)
set -eu
build=$(cd "${1:-build}" && pwd)
N=${N:-50000}
D=${D:-10000}
REF_D=${REF_D:-1000}
SIZE=${SIZE:-5120}
SLUICED=${SLUICED:-$build/engine/sluiced}
OUT=${OUT:-/dev/null}
. "$(dirname "$0")/lib.sh"
bench_setup manydomains

maxd=$D
[ "$REF_D" -gt "$maxd" ] && maxd=$REF_D
awk -v d="$maxd" 'BEGIN {
  print "no-resolv"; print "no-hosts"; print "local=/bench/"
  if (ENVIRON["TTL"] != "") print "local-ttl=" ENVIRON["TTL"]
  for (i = 0; i < d; i++)
    printf "mx-host=d%d.bench,mx.bench,10\n", i
  print "host-record=mx.bench,127.0.0.1"
}' > "$T/dns.conf"
start_dnsmasq "$T/dns.conf"
while /usr/bin/python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(('127.0.0.1', $DNSPORT))" 2>/dev/null; do
  sleep 0.2
done

# one run over $1 domains; sets rate (msg/s) and prints a line
run() {
  doms=$1 name=$2
  rm -rf "$T/spool" "$T/stats.json" "$T/sink.pid"
  "$build/bench/spool-fill" --spool "$T/spool" -n "$N" --domains "$doms" \
    --size "$SIZE" > /dev/null
  { sluiced_conf_head; echo "nosync = yes"
    [ -n "${MAX_INFLIGHT:-}" ] && echo "max_inflight = $MAX_INFLIGHT"
    true; } > "$T/sluiced.conf"
  "$build/bench/sink/sluice-sink" --listen 127.0.0.1:"$SINKPORT" \
    --stats "$T/stats.json" --max-domains 20000 --pidfile "$T/sink.pid" \
    > "$T/sink.log" 2>&1 &
  sink=$!
  while [ ! -s "$T/sink.pid" ]; do sleep 0.1; done
  t0=$(ms)
  "$SLUICED" -c "$T/sluiced.conf" --exit-when-empty 2> "$T/sluiced-$name.log"
  t1=$(ms)
  kill -TERM "$sink"
  wait "$sink" || true
  el=$((t1 - t0))
  set -- $(/usr/bin/python3 -c "import json,sys; s=json.load(open(sys.argv[1]))
print(s['messages'], s['sessions'], s['sessions_without_mail'], s['sessions_one_mail'])" "$T/stats.json")
  msgs=$1 conns=$2 empty=$3 one=$4
  rate=$((msgs * 1000 / (el > 0 ? el : 1)))
  echo "$name: $N messages over $doms domains: $el ms, $rate msg/s, delivered $msgs; connections $conns ($(awk -v c="$conns" -v d="$doms" 'BEGIN { printf "%.2f", c / d }') per domain), without a transaction $empty, with one message $one"
  printf '{"bench":"many_domains","run":"%s","messages":%s,"domains":%s,"ms":%s,"delivered":%s,"connections":%s,"empty":%s,"one":%s}\n' \
    "$name" "$N" "$doms" "$el" "$msgs" "$conns" "$empty" "$one" >> "$OUT"
}

echo "sluiced: $SLUICED (default limits); sink: sluice-sink on 127.0.0.1:$SINKPORT; $SIZE-byte messages"
run "$REF_D" reference
ref=$rate
run "$D" many
echo "ratio many/reference: $(awk -v a="$rate" -v b="$ref" 'BEGIN { printf "%.2f", b ? a / b : 0 }') (target >= 0.85)"
