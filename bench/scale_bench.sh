#!/bin/sh
# scale_bench.sh - sluiced with many sites and a million queued recipients:
# peak memory and throughput.
#
#   D domains (default 10,000), each its own site (no [site] sections) with
#   its own MX name mx.dN.sc, the MX addresses spread over ADDRS loopback
#   addresses (127.0.0.1 .. 127.0.0.ADDRS, default 8).  spool-fill queues N
#   messages (default 10,000) of SIZE bytes with K recipients each (default
#   100), all at one domain per message: N*K recipients (1,000,000).
#   sluiced --exit-when-empty delivers them to Postfix's smtp-sink (listening
#   on every address); if it is not done after LIMIT seconds (default 240)
#   it gets SIGTERM and the figures are what it did so far.
#
#   Prints: fill time, sluiced wall time, recipients delivered, throughput
#   (recipients/s and transactions/s), sites in status.json, peak RSS
#   (/usr/bin/time %M; target <= 300 MB), CPU.
#
# usage: bench/scale_bench.sh BUILD_DIR   (env: D=10000 N=10000 K=100
#        SIZE=1000 ADDRS=8 LIMIT=240 OUT=file.jsonl)
set -eu
build=$(cd "${1:-build}" && pwd)
D=${D:-10000}
N=${N:-10000}
K=${K:-100}
SIZE=${SIZE:-1000}
ADDRS=${ADDRS:-8}
LIMIT=${LIMIT:-240}
OUT=${OUT:-/dev/null}
. "$(dirname "$0")/lib.sh"
bench_setup scalebench

awk -v d="$D" -v a="$ADDRS" 'BEGIN {
  print "no-resolv"; print "no-hosts"; print "local=/sc/"
  for (i = 0; i < d; i++) {
    printf "mx-host=d%d.sc,mx.d%d.sc,10\n", i, i
    printf "host-record=mx.d%d.sc,127.0.0.%d\n", i, i % a + 1
  }
}' > "$T/dns.conf"
t0=$(ms)
start_dnsmasq "$T/dns.conf"
/usr/sbin/smtp-sink -u root -m 2000 0.0.0.0:"$SINKPORT" 4096 > "$T/sink.log" 2>&1 &
pids="$pids $!"
# dnsmasq is up once its UDP port is taken
while /usr/bin/python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(('127.0.0.1', $DNSPORT))" 2>/dev/null; do
  sleep 0.2
done
t1=$(ms)

"$build/bench/spool-fill" --spool "$T/spool" -n "$N" --domains "$D" --size "$SIZE" \
  --rcpts-per-msg "$K" --suffix sc
t2=$(ms)
spool_mb=$(du -sm "$T/spool" | cut -f1)

{ sluiced_conf_head; cat <<CONF
nosync = yes
max_connections = ${MAXCONN:-400}
[domain default]
max_connections = 2
max_messages_per_connection = 1000
max_rcpts_per_message = 100
CONF
} > "$T/sluiced.conf"

echo "command: /usr/bin/time -f '%M %e %U %S' $build/engine/sluiced -c sluiced.conf --exit-when-empty (SIGTERM after ${LIMIT}s)"
echo "workload: $D domains/sites, $N messages x $K recipients = $((N * K)) recipients, $SIZE bytes; MX on $ADDRS addresses; spool ${spool_mb} MB"
t3=$(ms)
/usr/bin/time -f "%M %e %U %S" -o "$T/time" \
  "$build/engine/sluiced" -c "$T/sluiced.conf" --exit-when-empty 2> "$T/sluiced.log" &
timepid=$!
pids="$pids $timepid"
sleep 0.2
sluiced=$(ps -o pid= --ppid "$timepid" | tr -d ' ')   # time's child
pids="$pids $sluiced"
sites=0
termed=0
while kill -0 "$timepid" 2>/dev/null; do
  sleep 1
  if [ $termed = 0 ] && [ $(( $(ms) - t3 )) -gt $(( LIMIT * 1000 )) ]; then
    kill -TERM "$sluiced" 2>/dev/null || true
    termed=1
  fi
  if [ -f "$T/spool/status.json" ]; then
    n=$(/usr/bin/python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['sites']))" \
        "$T/spool/status.json" 2>/dev/null || echo 0)
    [ "$n" -gt "$sites" ] && sites=$n
  fi
  [ $(( $(ms) - t3 )) -gt $(( (LIMIT + 60) * 1000 )) ] && kill -KILL "$sluiced"
done
wait "$timepid" || true
if [ -f "$T/spool/status.json" ]; then   # the last one written
  n=$(/usr/bin/python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['sites']))" \
      "$T/spool/status.json" 2>/dev/null || echo 0)
  [ "$n" -gt "$sites" ] && sites=$n
fi
t4=$(ms)
read -r rss el usr sys < "$T/time" || { rss=0; el=0; usr=0; sys=0; }
delivered=$(sed -n 's/.*delivered \([0-9]*\),.*/\1/p' "$T/sluiced.log" | tail -1)
deferred=$(sed -n 's/.*deferred \([0-9]*\),.*/\1/p' "$T/sluiced.log" | tail -1)
stopped=$(grep -c "signal 15" "$T/sluiced.log" || true)
ds=$(( t4 - t3 ))
echo "dnsmasq up: $((t1 - t0)) ms; spool-fill: $((t2 - t1)) ms"
echo "sluiced: $ds ms wall ($( [ "$stopped" -gt 0 ] && echo "stopped by SIGTERM at ${LIMIT}s" || echo "ran to empty")); delivered $delivered recipients, deferred $deferred"
echo "throughput: $(( ${delivered:-0} * 1000 / (ds > 0 ? ds : 1) )) recipients/s ($(( ${delivered:-0} * 1000 / ((ds > 0 ? ds : 1) * K) )) transactions/s of $K)"
echo "sites in status.json (max seen): $sites"
echo "peak RSS: $((rss / 1024)) MB ($rss KB; target <= 300 MB); CPU user ${usr}s sys ${sys}s"
printf '{"bench":"scale","domains":%s,"messages":%s,"rcpts":%s,"size":%s,"ms":%s,"delivered":%s,"sites":%s,"rss_kb":%s,"user_s":%s,"sys_s":%s,"sigterm":%s}\n' \
  "$D" "$N" "$((N * K))" "$SIZE" "$ds" "${delivered:-0}" "$sites" "$rss" "$usr" "$sys" "$stopped" >> "$OUT"
