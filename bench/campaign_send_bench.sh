#!/bin/sh
# campaign_send_bench.sh - a personalised campaign end to end: N contacts
# over D domains imported, the campaign sent (queued as small rows), then
# sluiced renders every message (about SIZE bytes), signs it with DKIM
# (rsa-sha256 2048 by default; ALGO=ed25519) and delivers it to Postfix's
# smtp-sink; the raw ceiling (smtp-source into the same sink, same size) is
# measured in the same run.
#
#   delivery: from sluiced's start to its exit with --exit-when-empty
#             (every outcome committed), peak RSS and CPU from /usr/bin/time.
#
# usage: bench/campaign_send_bench.sh BUILD_DIR   (env: N=100000 D=1000
#        SIZE=5120 ALGO=rsa RUNS=1 SESSIONS=100 OUT=file.jsonl)
set -eu
build=$(cd "${1:-build}" && pwd)
N=${N:-100000}
D=${D:-1000}
SIZE=${SIZE:-5120}
ALGO=${ALGO:-rsa}
RUNS=${RUNS:-1}
SESSIONS=${SESSIONS:-100}
OUT=${OUT:-/dev/null}
. "$(dirname "$0")/lib.sh"
bench_setup cbench

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
awk -v n="$N" -v d="$D" 'BEGIN {
  print "email,first_name,city"
  for (i = 0; i < n; i++) printf "user%d@d%d.bench,Name%d,City %d\n", i, i % d, i, i % 97
}' > "$T/contacts.csv"
# an html template of about SIZE bytes once rendered (text derived)
/usr/bin/python3 - "$SIZE" > "$T/t.html" <<'PY'
import sys
size = int(sys.argv[1])
para = ("<p>Dear {{first_name|customer}} in {{city}}, this is the weekly "
        "letter with the news of the week and offers for you.</p>\n")
body = "".join(para for _ in range(max(1, size // 2 // len(para))))
print("<html><body>%s<a href=\"{{unsubscribe_url}}\">unsubscribe</a>"
      "</body></html>" % body)
PY
{ sluiced_conf_head signed; cat <<CONF
max_connections = ${MAXCONN:-400}
max_inflight = ${INFLIGHT:-20000}
unsubscribe_host = u.sender.bench
[domain default]
max_connections = ${DOMCONN:-4}
max_messages_per_connection = 1000
CONF
} > "$T/sluiced.conf"

run=1
while [ $run -le "$RUNS" ]; do
  rm -rf "$T/spool"
  S="$build/tools/sluice --spool $T/spool"
  $S account create bench > /dev/null
  $S domain add sender.bench --account bench --selector b1 --algo "$ALGO" > /dev/null
  $S domain verify sender.bench --force > /dev/null
  $S list create l --account bench > /dev/null
  $S list import l "$T/contacts.csv" --account bench > /dev/null
  cid=$($S --json campaign create c --account bench --list l \
        --from "Bench <news@sender.bench>" --subject "Hello {{first_name}}" \
        --html "$T/t.html" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  t0=$(ms)
  $S campaign send "$cid" > /dev/null
  t1=$(ms)
  /usr/bin/time -f "%M %U %S" -o "$T/time" \
    "$build/engine/sluiced" -c "$T/sluiced.conf" --exit-when-empty 2> "$T/sluiced.log"
  t2=$(ms)
  read -r rss usr sys < "$T/time"
  delivered=$(sed -n 's/.*delivered \([0-9]*\),.*/\1/p' "$T/sluiced.log")
  size=$($S campaign preview "$cid" --contact user1@d1.bench 2>/dev/null | wc -c)
  t3=$(ms)
  /usr/sbin/smtp-source -d -s "$SESSIONS" -l "$size" -m "$N" -f bench@sender.bench \
    -t ceiling@d0.bench 127.0.0.1:"$SINKPORT"
  t4=$(ms)
  send_ms=$((t2 - t1)); enq_ms=$((t1 - t0)); ceil_ms=$((t4 - t3))
  rate=$(awk "BEGIN { printf \"%.0f\", $N * 1000 / $send_ms }")
  enq=$(awk "BEGIN { printf \"%.0f\", $N * 1000 / ($enq_ms > 0 ? $enq_ms : 1) }")
  ceil=$(awk "BEGIN { printf \"%.0f\", $N * 1000 / $ceil_ms }")
  cpu_us=$(awk "BEGIN { printf \"%.1f\", ($usr + $sys) * 1e6 / $N }")
  echo "run $run ($ALGO): campaign send queued $N in ${enq_ms} ms ($enq/s);" \
       "sluiced rendered+signed+delivered $delivered/$N messages of ~$size bytes" \
       "in ${send_ms} ms = $rate msg/s; CPU ${cpu_us} us/msg; peak RSS" \
       "$((rss / 1024)) MB; ceiling smtp-source $ceil msg/s"
  echo "{\"run\":$run,\"algo\":\"$ALGO\",\"n\":$N,\"domains\":$D,\"size\":$size,\"delivered\":$delivered,\"send_ms\":$send_ms,\"msg_per_s\":$rate,\"enqueue_per_s\":$enq,\"cpu_us_per_msg\":$cpu_us,\"peak_rss_kb\":$rss,\"ceiling_msg_per_s\":$ceil}" >> "$OUT"
  run=$((run + 1))
done
