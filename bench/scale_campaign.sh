#!/bin/sh
# scale_campaign.sh - a campaign of ten million queued recipients: what the
# spool costs on disk and what sluiced costs in memory and in waiting while
# it starts scheduling them.
#
#   A spool with one account and its sending domain (ed25519 key, verified
#   with --force); a list of N contacts (default 10,000,000) over D domains
#   (default 10,000; an awk-made CSV, as csv-gen always uses 2,000 domains)
#   imported with `sluice list import` (timed), a campaign of that list
#   created and `sluice campaign send` timed from its start to its exit.
#
#   1. spool size once the campaign is queued: `du -k` of the spool
#      directory (blocks really used) and the apparent size of data.mdb
#      (the LMDB map, which may be sparse), each also after the import
#      alone; bytes per queued recipient = whole spool / recipients, and
#      the growth the send caused / recipients; with mdb_stat
#      (lmdb-utils) each database's pages per recipient.
#   2. sluiced is started on that spool (dnsmasq on 127.0.0.1 serves an MX
#      per domain, spread over ADDRS loopback addresses 127.0.0.1..ADDRS,
#      default 8; one sluice-sink per address, on that address only).  Its
#      VmRSS is read from /proc/PID/status every 0.2 s for HOLD seconds
#      (default 30) from its fork: peak, value at the end, and VmHWM (which
#      the kernel updates lazily, so it can trail the sampled peak a little);
#      RssAnon is shown beside them, as RssFile counts the pages of the
#      memory-mapped spool that sluiced has touched.
#   3. time to first delivery: from sluiced's fork, and from the start of
#      `sluice campaign send`, to the earliest first_accept_ms of the sinks
#      (wall-clock ms, written by --stats-interval 1 and on SIGUSR1).
#   4. recipients the sinks accepted during HOLD, then SIGTERM: sluiced
#      drains (drain_timeout 30 s) and must exit within DRAIN_LIMIT seconds
#      (default 40, then SIGKILL); its exit code and drain time are shown.
#
#   Everything stays on loopback.  The run needs about 1 KB of free disk
#   per contact in the temporary directory (checked first); the directory
#   is removed at exit.  One JSON line is appended to OUT.
#
# usage: bench/scale_campaign.sh BUILD_DIR   (env: N=10000000 D=10000
#        HOLD=30 ADDRS=8 DRAIN_LIMIT=40 MAXCONN=400 INFLIGHT=20000
#        OUT=file.jsonl)
set -eu
build=$(cd "${1:-build}" && pwd)
N=${N:-10000000}
D=${D:-10000}
HOLD=${HOLD:-30}
ADDRS=${ADDRS:-8}
DRAIN_LIMIT=${DRAIN_LIMIT:-40}
OUT=${OUT:-/dev/null}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_setup scalecamp

avail_kb=$(df -Pk "$T" | awk 'NR == 2 { print $4 }')
if [ "$avail_kb" -lt "$N" ]; then
  echo "scale_campaign: $((avail_kb / 1024)) MB free in $T, need about $((N / 1024)) MB" >&2
  exit 73
fi
echo "workload: $N contacts over $D domains, MX on $ADDRS loopback addresses; HOLD ${HOLD}s; $((avail_kb / 1024 / 1024)) GB free; $(nproc) cores"

# DNS: an MX per domain, its host on one of the loopback addresses
awk -v d="$D" -v a="$ADDRS" 'BEGIN {
  print "no-resolv"; print "no-hosts"; print "local=/sc/"
  for (i = 0; i < d; i++) {
    printf "mx-host=d%d.sc,mx.d%d.sc,10\n", i, i
    printf "host-record=mx.d%d.sc,127.0.0.%d\n", i, i % a + 1
  }
}' > "$T/dns.conf"
start_dnsmasq "$T/dns.conf"
# one sink per address, each bound to that address only
sinkpids=""
k=1
while [ $k -le "$ADDRS" ]; do
  "$build/bench/sink/sluice-sink" --listen "127.0.0.$k:$SINKPORT" \
    --stats "$T/sink$k.json" --stats-interval 1 --pidfile "$T/sink$k.pid" \
    2> "$T/sink$k.log" &
  pids="$pids $!"
  sinkpids="$sinkpids $!"
  k=$((k + 1))
done
k=1
while [ $k -le "$ADDRS" ]; do
  w=0
  until [ -s "$T/sink$k.pid" ]; do
    w=$((w + 1))
    [ $w -gt 50 ] && { echo "sink on 127.0.0.$k did not start:" >&2; cat "$T/sink$k.log" >&2; exit 71; }
    sleep 0.1
  done
  k=$((k + 1))
done
# dnsmasq is up once its UDP port is taken
while /usr/bin/python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(('127.0.0.1', $DNSPORT))" 2>/dev/null; do
  sleep 0.2
done

# the contacts: user<i>@d<i mod D>.sc, one row each
t0=$(ms)
awk -v n="$N" -v d="$D" 'BEGIN {
  print "email,first_name,city"
  for (i = 0; i < n; i++) printf "user%d@d%d.sc,Name%d,City %d\n", i, i % d, i, i % 97
}' > "$T/contacts.csv"
csv_ms=$(( $(ms) - t0 ))
printf '<html><body><p>Hello {{first_name|there}} from {{city}}</p>\n<a href="{{unsubscribe_url}}">unsubscribe</a></body></html>\n' > "$T/t.html"

S="$build/tools/sluice --spool $T/spool"
$S account create acme > /dev/null
$S domain add acme.sc --account acme --selector s1 --algo ed25519 > /dev/null
$S domain verify acme.sc --force > /dev/null
$S list create big --account acme > /dev/null
t0=$(ms)
$S list import big "$T/contacts.csv" --account acme > /dev/null
import_ms=$(( $(ms) - t0 ))
rm -f "$T/contacts.csv"
import_du_kb=$(du -sk "$T/spool" | cut -f1)
import_mdb=$(stat -c %s "$T/spool/data.mdb")
echo "csv: $csv_ms ms; import of $N contacts: $import_ms ms" \
     "($(( N * 1000 / (import_ms > 0 ? import_ms : 1) )) contacts/s);" \
     "spool $((import_du_kb / 1024)) MB on disk, data.mdb $((import_mdb / 1048576)) MB"

$S campaign create big --account acme --list big \
  --from "Acme <news@acme.sc>" --subject "Hi {{first_name|there}}" \
  --html "$T/t.html" > /dev/null
send_t0=$(ms)
$S campaign send big --account acme --json > "$T/send.json"
send_ms=$(( $(ms) - send_t0 ))
rcpts=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["recipients"])' "$T/send.json")
enq_s=$(/usr/bin/python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["seconds"])' "$T/send.json")
du_kb=$(du -sk "$T/spool" | cut -f1)
mdb=$(stat -c %s "$T/spool/data.mdb")
echo "campaign send: $rcpts recipients in $send_ms ms wall" \
     "($(( rcpts * 1000 / (send_ms > 0 ? send_ms : 1) )) recipients/s; ${enq_s} s inside the enqueue)"
echo "spool queued: du $((du_kb / 1024)) MB ($(( du_kb * 1024 / rcpts )) B/recipient," \
     "send added $(( (du_kb - import_du_kb) * 1024 / rcpts )) B/recipient);" \
     "data.mdb $((mdb / 1048576)) MB apparent ($(( mdb / rcpts )) B/recipient," \
     "send added $(( (mdb - import_mdb) / rcpts )) B/recipient)"
# where the bytes are: each database's pages (mdb_stat, lmdb-utils) per
# queued recipient
if command -v mdb_stat > /dev/null 2>&1; then
  mdb_stat -e -a "$T/spool" | awk -v n="$rcpts" '
    /^Status of/ { db = $3 }
    /Page size:/ { ps = $3 }
    /Branch pages:|Leaf pages:|Overflow pages:/ { pages[db] += $3 }
    END { line = "per recipient by database:"
          for (d in pages) if (pages[d] * ps / n >= 0.5)
            line = line sprintf(" %s %.1f B", d, pages[d] * ps / n)
          print line }'
fi

{ sluiced_conf_head; cat <<CONF
max_connections = ${MAXCONN:-400}
max_inflight = ${INFLIGHT:-20000}
unsubscribe_host = u.acme.sc
drain_timeout = 30s
[domain default]
max_connections = 2
max_messages_per_connection = 1000
CONF
} > "$T/sluiced.conf"
"$build/engine/sluiced" -t -c "$T/sluiced.conf"

echo "command: $build/engine/sluiced -c sluiced.conf  (SIGTERM after ${HOLD}s)"
start_ms=$(ms)
"$build/engine/sluiced" -c "$T/sluiced.conf" 2> "$T/sluiced.log" &
sl=$!
pids="$pids $sl"

# Sample sluiced's memory for HOLD seconds, then have every sink write its
# stats and sum them: one JSON object on stdout.
# shellcheck disable=SC2086 # one argument per sink pid
/usr/bin/python3 - "$sl" "$HOLD" "$start_ms" "$T" $sinkpids > "$T/hold.json" <<'PY'
import json, os, signal, sys, time
pid, hold, start_ms, tdir = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sinks = [int(p) for p in sys.argv[5:]]

def status():
    try:
        with open("/proc/%d/status" % pid) as f:
            v = {l.split(":")[0]: int(l.split()[1]) for l in f
                 if l.startswith(("Vm", "Rss"))}
        return v["VmRSS"], v["VmHWM"], v.get("RssAnon", 0), v.get("RssFile", 0)
    except (OSError, IndexError):
        return None

def cpu_s():
    try:
        with open("/proc/%d/stat" % pid) as f:
            x = f.read().rsplit(")", 1)[1].split()
        return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None

peak = last = hwm = 0
anon = file = peak_anon = 0   # RssFile: pages of the mapped spool
series = []          # (seconds since fork, RSS kB) once a second
died = None
end = start_ms / 1000.0 + hold
nxt = time.time()
while time.time() < end:
    s = status()
    if s is None:
        died = round(time.time() - start_ms / 1000.0, 1)
        break
    last, hwm, anon, file = s
    if last > peak:
        peak, peak_anon = last, anon
    t = time.time() - start_ms / 1000.0
    if not series or t - series[-1][0] >= 1.0:
        series.append((round(t, 1), last))
    nxt += 0.2
    time.sleep(max(0.0, nxt - time.time()))
s = status()
if s:
    hwm = s[1]
cpu = cpu_s()

asked = int(time.time() * 1000)
for p in sinks:
    os.kill(p, signal.SIGUSR1)
stats = []
for k in range(1, len(sinks) + 1):
    path = "%s/sink%d.json" % (tdir, k)
    for _ in range(50):
        try:
            j = json.load(open(path))
            if j["written_ms"] >= asked:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    stats.append(j)
firsts = [j["first_accept_ms"] for j in stats if j["first_accept_ms"]]
print(json.dumps({
    "rss_peak_kb": peak, "rss_end_kb": last, "hwm_kb": hwm,
    "anon_peak_kb": peak_anon, "anon_end_kb": anon, "file_end_kb": file,
    "cpu_s": cpu, "died_at_s": died, "series": series,
    "first_accept_ms": min(firsts) if firsts else None,
    "delivered": sum(j["recipients"] for j in stats),
    "sessions": sum(j["sessions"] for j in stats),
    "tempfail": sum(j["rcpt_tempfail"] for j in stats),
    "permfail": sum(j["rcpt_permfail"] for j in stats)}))
PY

# SIGTERM: sluiced drains and must be gone within DRAIN_LIMIT seconds
term_ms=$(ms)
kill -TERM "$sl" 2>/dev/null || true
while kill -0 "$sl" 2>/dev/null && [ $(( $(ms) - term_ms )) -lt $(( DRAIN_LIMIT * 1000 )) ]; do
  sleep 0.1
done
killed=0
if kill -0 "$sl" 2>/dev/null; then
  echo "sluiced still running ${DRAIN_LIMIT}s after SIGTERM: SIGKILL" >&2
  kill -KILL "$sl"
  killed=1
fi
rc=0
wait "$sl" || rc=$?
drain_ms=$(( $(ms) - term_ms ))
final=$(grep 'stopped:' "$T/sluiced.log" | tail -1 || true)
total=$(echo "$final" | sed -n 's/.*delivered \([0-9]*\),.*/\1/p')

/usr/bin/python3 - "$T/hold.json" "$OUT" <<PY
import json, sys
h = json.load(open(sys.argv[1]))
fa = h["first_accept_ms"]
rec = {"bench": "scale_campaign", "contacts": $N, "domains": $D,
       "addrs": $ADDRS, "recipients": $rcpts, "hold_s": $HOLD,
       "csv_ms": $csv_ms, "import_ms": $import_ms,
       "import_per_s": int($N * 1000 / max($import_ms, 1)),
       "send_ms": $send_ms, "send_per_s": int($rcpts * 1000 / max($send_ms, 1)),
       "enqueue_s": round($enq_s, 3),
       "spool_import_du_kb": $import_du_kb, "spool_import_mdb_bytes": $import_mdb,
       "spool_du_kb": $du_kb, "spool_mdb_bytes": $mdb,
       "bytes_per_rcpt_du": round($du_kb * 1024 / $rcpts, 1),
       "bytes_per_rcpt_mdb": round($mdb / $rcpts, 1),
       "send_bytes_per_rcpt_du": round(($du_kb - $import_du_kb) * 1024 / $rcpts, 1),
       "send_bytes_per_rcpt_mdb": round(($mdb - $import_mdb) / $rcpts, 1),
       "rss_peak_kb": h["rss_peak_kb"], "rss_end_kb": h["rss_end_kb"],
       "vmhwm_kb": h["hwm_kb"], "rss_anon_at_peak_kb": h["anon_peak_kb"],
       "rss_anon_end_kb": h["anon_end_kb"], "rss_file_end_kb": h["file_end_kb"],
       "cpu_s_hold": h["cpu_s"],
       "first_delivery_ms_from_start": fa - $start_ms if fa else None,
       "first_delivery_ms_from_send": fa - $send_t0 if fa else None,
       "delivered_hold": h["delivered"], "sessions_hold": h["sessions"],
       "delivered_total": int("${total:-0}" or 0),
       "exit_code": $rc, "killed": bool($killed), "drain_ms": $drain_ms}
def mb(kb): return "%d MB" % (kb // 1024)
print("sluiced RSS over %ss: peak %s (anon %s), at the end %s (anon %s, "
      "spool pages %s), VmHWM %s; CPU %s s%s" % (
    $HOLD, mb(h["rss_peak_kb"]), mb(h["anon_peak_kb"]), mb(h["rss_end_kb"]),
    mb(h["anon_end_kb"]), mb(h["file_end_kb"]), mb(h["hwm_kb"]),
    h["cpu_s"], "; DIED at %ss" % h["died_at_s"] if h["died_at_s"] else ""))
print("RSS (s, MB): " + " ".join("%g:%d" % (t, kb // 1024) for t, kb in h["series"][::5]))
if fa:
    print("first delivery: %d ms after sluiced's start, %d ms after campaign send began"
          % (rec["first_delivery_ms_from_start"], rec["first_delivery_ms_from_send"]))
else:
    print("first delivery: none within %ss" % $HOLD)
print("delivered during HOLD: %d recipients (%d sessions, %d tempfail, %d permfail)"
      % (h["delivered"], h["sessions"], h["tempfail"], h["permfail"]))
print("SIGTERM: exit code %d after %d ms%s; %s" % (
    $rc, $drain_ms, " (SIGKILLed)" if $killed else "", """$final""".strip()))
open(sys.argv[2], "a").write(json.dumps(rec) + "\n")
PY
