#!/bin/sh
# rate_bench.sh - how closely sluiced holds a site to its max_rate.
#
#   Two [site]s, each rolling up 5 domains (MX on 127.0.0.1): "ten" with
#   max_rate = 600/min (10/s) and "hundred" with max_rate = 6000/min
#   (100/s), fed more mail than they can take in the run (2,000 and
#   16,000 messages from spool-fill).  sluiced runs for SECS seconds
#   (default 130) against sluice-sink --timeline, then gets SIGTERM.  From
#   the sink's per-second, per-domain timeline the script sums each site
#   and counts deliveries in every full 60-second window (sliding by 10 s)
#   and prints the smallest and largest deviation from max_rate in
#   percent (target: within +-5%).  It also samples the site's "rate" in
#   status.json every 5 s (a 10-second average) after the first 15 s.
#
# usage: bench/rate_bench.sh BUILD_DIR    (env: SECS=130 OUT=file.jsonl)
set -eu
build=$(cd "${1:-build}" && pwd)
SECS=${SECS:-130}
OUT=${OUT:-/dev/null}
. "$(dirname "$0")/lib.sh"
bench_setup ratebench

{
  echo "no-resolv"; echo "no-hosts"; echo "local=/rb/"
  for s in a b; do
    for i in 0 1 2 3 4; do
      echo "mx-host=d$i.$s.rb,mx.d$i.$s.rb,10"
      echo "host-record=mx.d$i.$s.rb,127.0.0.1"
    done
  done
} > "$T/dns.conf"
start_dnsmasq "$T/dns.conf"
"$build/bench/sink/sluice-sink" --listen 127.0.0.1:"$SINKPORT" --timeline=600 \
  --stats "$T/sink.json" --pidfile "$T/sink.pid" > "$T/sink.log" 2>&1 &
sinkpid=$!
pids="$pids $sinkpid"

"$build/bench/spool-fill" --spool "$T/spool" -n 2000 --domains 5 --size 1000 --suffix a.rb
"$build/bench/spool-fill" --spool "$T/spool" -n 16000 --domains 5 --size 1000 --suffix b.rb

{ sluiced_conf_head; cat <<CONF
nosync = yes
[site ten]
mx = mx.*.a.rb
max_rate = 600/min
[site hundred]
mx = mx.*.b.rb
max_rate = 6000/min
CONF
} > "$T/sluiced.conf"

echo "command: $build/engine/sluiced -c sluiced.conf (run ${SECS}s, then SIGTERM)"
echo "config:"; sed 's/^/  /' "$T/sluiced.conf"
"$build/engine/sluiced" -c "$T/sluiced.conf" 2> "$T/sluiced.log" &
sluiced=$!
pids="$pids $sluiced"
: > "$T/rates"
t=0
while [ $t -lt "$SECS" ]; do
  sleep 5
  t=$((t + 5))
  if [ $t -gt 15 ] && [ -f "$T/spool/status.json" ]; then
    cp "$T/spool/status.json" "$T/status.$t.json"
    echo "$T/status.$t.json" >> "$T/rates"
  fi
done
kill -TERM "$sluiced"
wait "$sluiced" || true
kill -TERM "$sinkpid"
wait "$sinkpid" || true

/usr/bin/python3 - "$T" "$OUT" <<'PY'
import json, sys
t, out = sys.argv[1], sys.argv[2]
st = json.load(open(t + "/sink.json"))
res = {"bench": "rate", "sites": {}}
for site, suffix, per_min in (("ten", ".a.rb", 600), ("hundred", ".b.rb", 6000)):
    tl = {}
    for dom, v in st["by_domain"].items():
        if dom.endswith(suffix):
            for i, n in enumerate(v.get("timeline", [])):
                tl[i] = tl.get(i, 0) + n
    busy = sorted(i for i, n in tl.items() if n)
    first, last = busy[0], busy[-1]  # last second is cut by SIGTERM
    wins = []
    s = first
    while s + 60 <= last:
        wins.append(sum(tl.get(i, 0) for i in range(s, s + 60)))
        s += 10
    dev = [(w - per_min) * 100.0 / per_min for w in wins]
    peak = max(tl.values())
    samples = []
    for line in open(t + "/rates"):
        for x in json.load(open(line.strip()))["sites"]:
            if x["name"] == site:
                samples.append(x["rate"])
    r = {"max_rate_per_min": per_min, "delivered": sum(tl.values()),
         "windows": wins, "dev_min_pct": round(min(dev), 2),
         "dev_max_pct": round(max(dev), 2), "peak_per_second": peak,
         "status_rate_min": min(samples) if samples else None,
         "status_rate_max": max(samples) if samples else None}
    res["sites"][site] = r
    print("site %-8s max_rate %5d/min: delivered %d; 60 s windows (every 10 s): %s"
          % (site, per_min, r["delivered"], wins))
    print("    deviation from max_rate: min %+.2f%%  max %+.2f%%  (target +-5%%); "
          "busiest second %d; status.json rate %s..%s /s"
          % (r["dev_min_pct"], r["dev_max_pct"], peak, r["status_rate_min"],
             r["status_rate_max"]))
with open(out, "a") as f:
    f.write(json.dumps(res) + "\n")
PY
