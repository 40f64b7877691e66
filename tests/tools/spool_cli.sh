#!/bin/sh
# spool_cli.sh - `sluice spool` against good, foreign, damaged, too-new and
# missing spools: the right figures, the documented exit codes (65 for a
# foreign, damaged or too-new spool, 66 for a missing one) and a message that
# names the problem.  LMDB environments are written with lmdb-utils'
# mdb_load, an independent writer.
#
# usage: spool_cli.sh SLUICE QUEUE_BENCH
set -u
SLUICE=$1
BENCH=$2
T=$(mktemp -d /tmp/sluice-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
pass=0

check() { # check NAME EXPECTED-EXIT ACTUAL-EXIT
  if [ "$2" = "$3" ]; then pass=$((pass + 1)); else
    echo "FAIL: $1: exit $3, expected $2"; fail=$((fail + 1)); fi
}
has() { # has NAME FILE PATTERN
  if grep -q -- "$3" "$2"; then pass=$((pass + 1)); else
    echo "FAIL: $1: output lacks '$3':"; sed 's/^/  | /' "$2"; fail=$((fail + 1)); fi
}

# a real spool: 3,000 recipients over 30 domains, claimed and resolved
"$BENCH" -n 3000 --domains 30 --batch 500 --spool "$T/good" > "$T/bench.out"
check "bench" 0 $?
"$SLUICE" --spool "$T/good" --json spool info > "$T/info.json"
check "info" 0 $?
# the bench resolves 90% delivered, 5% deferred, 3% bounced, 2% expired
has "info delivered" "$T/info.json" '"delivered":2700'
has "info bounced" "$T/info.json" '"bounced":90'
has "info queued" "$T/info.json" '"queued":150'
has "info enqueued" "$T/info.json" '"enqueued":3000'
"$SLUICE" --spool "$T/good" spool domains --limit 0 > "$T/domains.txt"
check "domains" 0 $?
[ "$(grep -c '^d[0-9]*\.example' "$T/domains.txt")" = 30 ]
check "domains: one line per domain" 0 $?
"$SLUICE" --spool "$T/good" spool history 7 > "$T/hist.txt"
check "history" 0 $?
has "history of a bounced delivery" "$T/hist.txt" "bounced after 1 attempts"
has "history carries the reply" "$T/hist.txt" "550 5.1.1"
SLUICE_SPOOL="$T/good" "$SLUICE" spool events --from 2 --limit 1 --json > "$T/ev.json"
check "events via SLUICE_SPOOL" 0 $?
has "events start at seq" "$T/ev.json" '"seq":2,'

# damaged: random bytes where data.mdb should be
mkdir "$T/garbage"
head -c 65536 /dev/urandom > "$T/garbage/data.mdb"
"$SLUICE" --spool "$T/garbage" spool info 2> "$T/err1"
check "garbage spool" 65 $?
has "garbage message" "$T/err1" "not a valid LMDB file"

# damaged: a spool cut short
mkdir "$T/cut"
head -c 8192 "$T/good/data.mdb" > "$T/cut/data.mdb"
"$SLUICE" --spool "$T/cut" spool info 2> "$T/err2"
check "truncated spool" 65 $?
has "truncated message" "$T/err2" "truncated"

# foreign: a valid LMDB environment of some other program
mkdir "$T/foreign"
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n key\n value\nDATA=END\n' |
  mdb_load "$T/foreign"
"$SLUICE" --spool "$T/foreign" spool info 2> "$T/err3"
check "foreign spool" 65 $?
has "foreign message" "$T/err3" "not a sluice spool"

# too new: our spool with its schema version raised to one past this
# build's (QUEUE_SCHEMA_VERSION, read from `spool info`)
cur=$(sed -n 's/.*"schema":\([0-9]*\).*/\1/p' "$T/info.json")
[ -n "$cur" ]
check "info names the schema" 0 $?
next=$((cur + 1))
hex=$(printf %02x "$next")
cp -r "$T/good" "$T/newer"
mdb_dump -s meta -p "$T/good" |
  sed "/^ schema\$/{n;s/.*/ \\\\00\\\\00\\\\00\\\\00\\\\00\\\\00\\\\00\\\\$hex/}" |
  mdb_load -s meta "$T/newer" 2>/dev/null
"$SLUICE" --spool "$T/newer" spool info 2> "$T/err4"
check "newer spool" 65 $?
has "newer message names versions" "$T/err4" "schema version $next is newer than this sluice understands ($cur)"

# missing
"$SLUICE" --spool "$T/none" spool info 2> "$T/err5"
check "missing spool" 66 $?

# usage
"$SLUICE" --spool "$T/good" spool history notanumber 2> /dev/null
check "bad history argument" 64 $?

echo "$pass passed, $fail failed"
[ $fail = 0 ]
