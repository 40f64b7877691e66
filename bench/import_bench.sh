#!/bin/sh
# import_bench.sh - `sluice list import` of a large CSV into a fresh spool.
#
#   N rows (default 1,000,000) with unique addresses over 2,000 domains and
#   five merge fields, written by csv-gen; timed from the start of
#   `sluice list import` to its exit (every batch committed, fsync on),
#   with its peak RSS and CPU from /usr/bin/time and its peak private
#   memory (RssAnon, sampled every 0.2 s).  Then the same file again into
#   the same list: every row a duplicate (the index lookups alone).
#
#   ORDER=sorted sorts the rows by address first (csv-gen writes them in
#   random address order): the import's cost with and without the order.
#
#   Peak RSS counts the pages of the spool's map that the import touched
#   (shared page cache, growing with the spool); RssAnon is the import's
#   own memory, bounded by its batches.
#
# usage: bench/import_bench.sh BUILD_DIR
#        (env: N=1000000 ORDER=random|sorted OUT=file.jsonl)
set -eu
build=$(cd "${1:-build}" && pwd)
N=${N:-1000000}
OUT=${OUT:-/dev/null}
. "$(dirname "$0")/lib.sh"
bench_setup ibench
S="$build/tools/sluice --spool $T/spool"

t0=$(ms)
"$build/bench/csv-gen" "$N" 1 > "$T/contacts.csv"
ORDER=${ORDER:-random}
case $ORDER in
random) ;;
sorted)
  { head -1 "$T/contacts.csv"; tail -n +2 "$T/contacts.csv" | LC_ALL=C sort -t, -k1,1; } \
    > "$T/sorted.csv"
  mv "$T/sorted.csv" "$T/contacts.csv" ;;
*) echo "import_bench: ORDER is random or sorted" >&2; exit 64 ;;
esac
t1=$(ms)
echo "csv-gen: $N rows in $ORDER address order, $(stat -c %s "$T/contacts.csv") bytes in $((t1 - t0)) ms"
$S account create bench > /dev/null
$S list create contacts > /dev/null

# one timed import; prints "rows/s seconds maxrss_kb anon_kb user sys"
run_import() {
  /usr/bin/time -f "%e %M %U %S" -o "$T/time" \
    $S --json list import contacts "$T/contacts.csv" > "$T/summary.json" \
    2> "$T/stderr" &
  tpid=$!
  anon=0
  while kill -0 "$tpid" 2>/dev/null; do
    for p in $(pgrep -P "$tpid" 2>/dev/null); do
      a=$(awk '/^RssAnon:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
      [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
    done
    sleep 0.2
  done
  wait "$tpid" || { cat "$T/stderr" >&2; exit 1; }
  read -r secs maxrss user sys < "$T/time"
  rate=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  echo "$rate $secs $maxrss $anon $user $sys"
}

set -- $(run_import)
echo "import:   $N rows in $2 s = $1 rows/s; peak RSS $3 KB (RssAnon $4 KB);" \
  "CPU $5 s user, $6 s sys"
cat "$T/summary.json"
printf '{"bench":"import","order":"%s","rows":%s,"seconds":%s,"rows_per_s":%s,"maxrss_kb":%s,"anon_kb":%s}\n' \
  "$ORDER" "$N" "$2" "$1" "$3" "$4" >> "$OUT"
set -- $(run_import)
echo "again:    $N duplicate rows in $2 s = $1 rows/s; peak RSS $3 KB" \
  "(RssAnon $4 KB)"
cat "$T/summary.json"
echo "spool: $(du -sh "$T/spool" | cut -f1)"
