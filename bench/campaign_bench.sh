#!/bin/sh
# campaign_bench.sh - how fast `sluice campaign send` queues a campaign.
#
#   A spool with one account, its sending domain (verified with --force), a
#   list of N contacts (default 1,000,000) imported from csv-gen's CSV with
#   `sluice list import`, and 100 of them on the suppression list.  Then,
#   RUNS times (default 3), a new campaign of that list is created and
#   `sluice campaign send` is timed from its start to its exit: the command
#   reads the list, checks every address against the suppression list and
#   queues one recipient per remaining contact through the spool's writer
#   (durable: every group commit is fdatasync'ed).  recipients/s is the
#   number queued divided by the wall time of the whole command (open,
#   identity check and the final commit included); target >= 200,000/s.
#   Each run queues into the same spool, so later runs see a larger one.
#
# usage: bench/campaign_bench.sh BUILD_DIR   (env: N=1000000 RUNS=3
#                                             OUT=file.jsonl)
set -eu
build=$(cd "${1:-build}" && pwd)
N=${N:-1000000}
RUNS=${RUNS:-3}
OUT=${OUT:-/dev/null}
. "$(dirname "$0")/lib.sh"
bench_setup campaignbench

S="$build/tools/sluice --spool $T/spool"
$S account create acme > /dev/null
$S domain add acme.example --account acme --algo ed25519 > /dev/null
$S domain verify acme.example --force > /dev/null
$S list create big --account acme > /dev/null
"$build/bench/csv-gen" "$N" 7 > "$T/contacts.csv"
t0=$(ms)
$S list import big "$T/contacts.csv" --account acme > /dev/null
echo "import of $N contacts: $(( $(ms) - t0 )) ms"
# 100 addresses of the list on the suppression list
sed -n '2,101p' "$T/contacts.csv" | cut -d, -f1 | while read -r a; do
  $S suppress add "$a" --account acme > /dev/null
done
printf '<html><body><p>Hello {{first_name|there}} from {{city}}</p>\n<a href="{{unsubscribe_url}}">unsubscribe</a></body></html>\n' > "$T/t.html"

i=0
while [ "$i" -lt "$RUNS" ]; do
  i=$((i + 1))
  $S campaign create "run$i" --account acme --list big \
    --from "Acme <news@acme.example>" --subject "Hi {{first_name|there}}" \
    --html "$T/t.html" > /dev/null
  t0=$(ms)
  $S campaign send "run$i" --account acme --json > "$T/send.json"
  wall=$(( $(ms) - t0 ))
  /usr/bin/python3 - "$T/send.json" "$wall" "$N" "$i" >> "$OUT" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
wall = int(sys.argv[2]) / 1000.0
n = j["recipients"]
rec = {"run": int(sys.argv[4]), "contacts": int(sys.argv[3]),
       "recipients": n, "suppressed": j["suppressed"],
       "wall_s": round(wall, 3), "recipients_per_s": int(n / wall),
       "enqueue_s": round(j["seconds"], 3),
       "enqueue_per_s": int(n / j["seconds"])}
sys.stderr.write("run %d: %d recipients (%d suppressed) in %.2f s wall: "
                 "%d recipients/s (%d/s inside the enqueue)\n" %
                 (rec["run"], n, rec["suppressed"], wall,
                  rec["recipients_per_s"], rec["enqueue_per_s"]))
print(json.dumps(rec))
PY
done
echo "spool: $(du -sh "$T/spool" | cut -f1)"
