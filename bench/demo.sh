#!/bin/sh
# demo.sh - the main job of `make demo`, on loopback, in a temporary
# directory that is removed at the end.
#
#  1. The spool at scale: a generated campaign of 1,000,000 recipients is
#     enqueued into a durable spool with a live progress line, then claimed
#     and resolved the way the engine does it; counters and rates printed.
#  2. The engine end to end: dnsmasq serves MX records for 300 domains,
#     sluice-sink receives on 127.0.0.x (one address per domain, some
#     recipients scripted to fail), 5,000 messages are queued and sluiced
#     delivers them with a live progress line until the spool drains; then
#     the spool's counters, the top domains and the sink's own counts.
#
# usage: bench/demo.sh BUILD_DIR
set -eu
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
bench_setup demo

echo "== 1. the spool: 1,000,000 campaign recipients, durable mode"
"$build/bench/queue-bench" --demo --spool "$T/bulk" -n 1000000 --domains 1000
rm -rf "$T/bulk"

echo
echo "== 2. sluiced: 5,000 messages to 300 domains over SMTP on loopback"
{
  echo "no-resolv"; echo "no-hosts"; echo "local=/demo/"
  i=0
  while [ $i -lt 300 ]; do
    echo "mx-host=d$i.demo,mx.d$i.demo,10"
    echo "host-record=mx.d$i.demo,127.0.$((i / 250 + 1)).$((i % 250 + 2))"
    i=$((i + 1))
  done
  echo "mx-host=gone.demo,.,0"
} > "$T/dns.conf"
start_dnsmasq "$T/dns.conf"
"$build/bench/sink/sluice-sink" --listen 0.0.0.0:"$SINKPORT" \
  --stats "$T/sink.json" --max-conn-per-domain 10 > "$T/sink.log" 2>&1 &
sinkpid=$!
pids="$pids $sinkpid"
{ sluiced_conf_head; cat <<CONF
event_log = $T/events.jsonl
retry = 1s
max_age = 5s
[domain default]
max_connections = 4
CONF
} > "$T/sluiced.conf"
"$build/engine/sluiced" -t -c "$T/sluiced.conf"
"$build/bench/spool-fill" --spool "$T/spool" -n 4900 --domains 300 --size 4000 \
  --suffix demo
# a few recipients that fail: unknown users, a full mailbox, a null MX
"$build/bench/spool-fill" --spool "$T/spool" -n 60 --domains 300 --size 2000 \
  --prefix permfail --suffix demo
"$build/bench/spool-fill" --spool "$T/spool" -n 30 --domains 300 --size 2000 \
  --prefix quota --suffix demo
printf 'Subject: to a domain without mail\r\n\r\nhello\r\n' |
  "$build/tools/sluice" --spool "$T/spool" inject --from demo@sender.demo \
  --to someone@gone.demo > /dev/null
"$build/engine/sluiced" -c "$T/sluiced.conf" --progress --exit-when-empty
kill "$sinkpid"
sleep 0.5

echo
echo "== the spool after the run"
"$build/tools/sluice" --spool "$T/spool" spool info
echo
"$build/tools/sluice" --spool "$T/spool" spool domains --limit 5
echo
echo "== the last events (JSON lines from $T/events.jsonl)"
grep -m 1 '"bounced"' "$T/events.jsonl" || true
grep -m 1 '"expired"' "$T/events.jsonl" || true
tail -n 1 "$T/events.jsonl"
echo
/usr/bin/python3 - "$T/sink.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("== the sink saw: %d messages, %d recipients, %d sessions, highest "
      "concurrency per domain %d (limit 4), bare LF %d, bare CR %d" % (
      s["messages"], s["recipients"], s["sessions"],
      max([a["max_concurrency"] for a in s["by_addr"].values()] or [0]),
      s["bare_lf"], s["bare_cr"]))
PY
