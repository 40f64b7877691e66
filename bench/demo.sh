#!/bin/sh
# demo.sh - the main job of `make demo`, on loopback, in a temporary
# directory that is removed at the end.
#
#  0. An audit key outside the spool (sluice audit keygen) named in
#     sluiced.conf, which the tools read too ($SLUICE_CONFIG).
#  1. Accounts: the owner of the spool acts as the bootstrap admin, makes
#     the master account and its first user (an owner, who acts from then
#     on) and a sub-account; the sub-account adds its sending
#     domain, which makes its DKIM key and prints the DNS records; dnsmasq
#     publishes them and `sluice domain verify` checks them over DNS.
#  2. A list: a generated CSV of 20,000 contacts (with a few invalid and
#     duplicate rows) is imported with a progress line.
#  3. A campaign with merge fields: created, previewed for one contact and
#     sent (every contact queued as a small row).
#  4. sluiced renders, signs and delivers every message to sluice-sink
#     (MX records for 200 domains from dnsmasq, a few recipients scripted to
#     bounce) with a live progress line.
#  5. The report: the campaign's counters, the account's usage and the
#     audit trail, verified against its checkpoints.
#  6. The HTML report of the sub-account (sluice report --html), kept
#     as BUILD_DIR/demo-report.html; its path is printed.
#  7. The web console: sluiced serves it on http_listen; the demo signs in
#     through its API as the owner and prints the URL.  With DEMO_SERVE=1
#     sluiced stays up (until Ctrl-C) so the console can be opened in a
#     browser; otherwise it stops with the demo.
#
# usage: bench/demo.sh BUILD_DIR
set -eu
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
bench_setup demo
S="$build/tools/sluice --spool $T/spool"
HTTPPORT=$(port)
NDOM=200
N=${DEMO_CONTACTS:-20000}

$S audit keygen "$T/audit.key"
{ sluiced_conf_head signed; cat <<CONF
audit_key = $T/audit.key
audit_checkpoint = $T/audit.checkpoints
event_log = $T/events.jsonl
unsubscribe_host = u.shop.demo
http_listen = 127.0.0.1:$HTTPPORT
retry = 1s
max_age = 5s
[domain default]
max_connections = 4
CONF
} > "$T/sluiced.conf"
export SLUICE_CONFIG="$T/sluiced.conf"

echo "== 1. accounts, a sending domain and its DKIM key"
$S account create acme
echo 'demo-ops-pass' | $S user add ops --account acme --role owner \
  --password-stdin
export SLUICE_USER=ops SLUICE_PASSWORD=demo-ops-pass
$S account create shop --daily-cap 1000000
$S --json domain add shop.demo --account shop --selector s1 > "$T/domain.json"
/usr/bin/python3 - "$T/domain.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("publish for %s:" % d["domain"])
for r in d["records"]:
    print("  %-28s %-4s %.70s%s" % (r["name"], r["type"], r["value"],
                                    "..." if len(r["value"]) > 70 else ""))
PY
{
  echo "no-resolv"; echo "no-hosts"; echo "local=/demo/"
  i=0
  while [ $i -lt $NDOM ]; do
    echo "mx-host=d$i.demo,mx.d$i.demo,10"
    echo "host-record=mx.d$i.demo,127.0.$((i / 250 + 1)).$((i % 250 + 2))"
    i=$((i + 1))
  done
  /usr/bin/python3 - "$T/domain.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["records"]:
    if r["type"] == "TXT":
        v = r["value"]
        parts = ",".join('"%s"' % v[i:i + 255] for i in range(0, len(v), 255))
        print("txt-record=%s,%s" % (r["name"], parts))
PY
} > "$T/dns.conf"
start_dnsmasq "$T/dns.conf"
sleep 0.3
$S domain verify shop.demo --dns-server "127.0.0.1:$DNSPORT"

echo
echo "== 2. a list of $N contacts from CSV"
awk -v n="$N" -v nd="$NDOM" 'BEGIN {
  print "email,first_name,city,plan"
  split("Ada,Björn,Chloé,Dmitri,Emeka,Fatima,Grace,Hiro", names, ",")
  split("Lyon,Oslo,Lagos,Kyoto,Lima,Porto", cities, ",")
  for (i = 0; i < n; i++) {
    local = (i % 997 == 5) ? "permfail" i : "user" i
    printf "%s@d%d.demo,%s,%s,%s\n", local, i % nd, names[i % 8 + 1],
           cities[i % 6 + 1], (i % 3 ? "basic" : "pro")
  }
  print "not-an-address,X,Y,Z"
  print "user1@d1.demo,Dup,Dup,Dup"
}' > "$T/contacts.csv"
$S list create customers --account shop
$S list import customers "$T/contacts.csv" --account shop \
  --reject "$T/rejects.csv"
echo "rejected rows:"; sed 's/^/  /' "$T/rejects.csv" | head -3

echo
echo "== 3. a personalised campaign"
cat > "$T/welcome.html" <<'HTML'
<html><body>
<h1>Welcome to the {{plan|basic}} plan, {{first_name|friend}}!</h1>
<p>Everything you need in {{city}} is one click away.</p>
<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>
</body></html>
HTML
CID=$($S --json campaign create welcome --account shop --list customers \
  --from "Shop <news@shop.demo>" --subject "{{first_name|Hello}}, welcome to Shop ✓" \
  --html "$T/welcome.html" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "campaign $CID created; preview for user8@d8.demo:"
$S campaign preview "$CID" --contact user8@d8.demo 2>/dev/null |
  grep -E '^(From|To|Subject|List-Unsubscribe|Feedback-ID):' | sed 's/^/  /'
$S campaign send "$CID"

echo
echo "== 4. sluiced renders, signs and delivers"
"$build/bench/sink/sluice-sink" --listen 0.0.0.0:"$SINKPORT" \
  --stats "$T/sink.json" --max-conn-per-domain 10 > "$T/sink.log" 2>&1 &
sinkpid=$!
pids="$pids $sinkpid"
"$build/engine/sluiced" -t -c "$T/sluiced.conf"
"$build/engine/sluiced" -c "$T/sluiced.conf" --progress --exit-when-empty
kill "$sinkpid"
sleep 0.5

echo
echo "== 5. the campaign report"
$S campaign show "$CID"
echo
$S account usage shop --days 1
echo
grep -m 1 '"bounced"' "$T/events.jsonl" || true
/usr/bin/python3 - "$T/sink.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("the sink saw: %d messages, %d sessions, highest concurrency per "
      "domain %d (limit 4), bare LF %d" % (
      s["messages"], s["sessions"],
      max([a["max_concurrency"] for a in s["by_addr"].values()] or [0]),
      s["bare_lf"]))
PY
$S audit verify

echo
echo "== 6. the HTML report: charts in one file, offline and printable"
$S report --html "$build/demo-report.html" --account shop

echo
echo "== 7. the web console"
"$build/engine/sluiced" -c "$T/sluiced.conf" > "$T/sluiced-console.log" 2>&1 &
cpid=$!
pids="$pids $cpid"
url="http://127.0.0.1:$HTTPPORT/"
i=0
until curl -sf -o /dev/null "$url"; do
  i=$((i + 1))
  if [ $i -ge 100 ]; then
    echo "demo: the console at $url did not answer" >&2
    cat "$T/sluiced-console.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -sf -H 'Content-Type: application/json' \
  -d '{"user":"ops","password":"demo-ops-pass"}' "${url}console/api/login" |
  /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin)
print("signed in through the console API as %s (%s)" % (d["user"], d["role"]))'
echo "console: $url  (user ops, password demo-ops-pass)"
if [ "${DEMO_SERVE:-}" = 1 ]; then
  echo "sluiced serves it until Ctrl-C"
  wait "$cpid" || true
else
  echo "(it stops with the demo: DEMO_SERVE=1 make demo keeps it up)"
fi
