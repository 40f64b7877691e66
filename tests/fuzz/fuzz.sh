#!/bin/sh
# fuzz.sh - run sluice's libFuzzer targets over copies of their corpora.
#
#   fuzz.sh check BIN CORPUS WORKDIR DICT|- MAX_LEN RUNS
#       ctest: RUNS inputs (fixed seed, at most 25 s) over a fresh copy of
#       CORPUS in WORKDIR; a crash fails the test and says how to
#       reproduce it.
#   fuzz.sh campaign MANIFEST OUTDIR SECONDS [NAME...]
#       make fuzz: every target of MANIFEST (build/fuzz-targets.txt; or
#       only the NAMEs) for SECONDS each, one after the other, one process
#       each, in OUTDIR/NAME/ (corpus/: the seeds and what the run added;
#       crash-*, leak-*, timeout-*, oom-*: inputs that failed; log).  Ends
#       with a table: executions, exec/s, corpus files, failures; exit 1 if
#       any target failed.
#
# The seed corpora in tests/fuzz/corpus/ are only read.  A failing input
# is reproduced by running the target binary with the file as argument.
set -eu

# How many files in a directory match a glob (0 if none).
count() {
  n=0
  for f in "$1"/$2; do
    [ -e "$f" ] && n=$((n + 1))
  done
  echo "$n"
}

# A fresh copy of corpus $1 in $2.
copy_corpus() {
  rm -rf "$2"
  mkdir -p "$2"
  cp "$1"/* "$2"/
}

check() {
  bin=$1 corpus=$2 work=$3 dict=$4 maxlen=$5 runs=$6
  copy_corpus "$corpus" "$work/corpus"
  set -- -runs="$runs" -max_total_time=25 -seed=1 -max_len="$maxlen" \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/" \
    -print_final_stats=1
  [ "$dict" != "-" ] && set -- "$@" -dict="$dict"
  rc=0
  "$bin" "$@" "$work/corpus" < /dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
             "$work"/oom-*; do
      [ -e "$f" ] && echo "fuzz.sh: failing input: $f (reproduce: $bin $f)"
    done
    exit "$rc"
  fi
}

campaign() {
  manifest=$1 out=$2 secs=$3
  shift 3
  [ -r "$manifest" ] || { echo "fuzz.sh: no $manifest (build first)" >&2
                          exit 66; }
  mkdir -p "$out"
  table="$out/summary.txt"
  date -u '+fuzzing campaign %Y-%m-%d %H:%M UTC' > "$table"
  echo "$secs s per target on $(nproc) cores, one process per target" \
    >> "$table"
  printf '%-16s %8s %12s %8s %8s %6s\n' target seconds executions exec/s \
    corpus failed >> "$table"
  status=0
  while read -r name bin corpus dict maxlen; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ]; then
      case " $* " in *" $name "*) ;; *) continue ;; esac
    fi
    work="$out/$name"
    rm -rf "$work"
    mkdir -p "$work"
    copy_corpus "$corpus" "$work/corpus"
    dictarg=""
    [ "$dict" != "-" ] && dictarg="-dict=$dict"
    echo "fuzz.sh: $name for $secs s (log: $work/log)"
    start=$(date +%s)
    rc=0
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$work/" -print_final_stats=1 \
      $dictarg "$work/corpus" < /dev/null > "$work/log" 2>&1 || rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" |
            tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" |
           tail -n 1)
    files=$(count "$work/corpus" '*')
    failed=0
    for k in crash leak timeout oom; do
      failed=$((failed + $(count "$work" "$k-*")))
    done
    [ "$rc" != 0 ] && [ "$failed" = 0 ] && failed="rc$rc"
    printf '%-16s %8s %12s %8s %8s %6s\n' "$name" "$took" "${execs:-?}" \
      "${rate:-?}" "$files" "$failed" >> "$table"
    if [ "$failed" != 0 ]; then
      status=1
      for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
               "$work"/oom-*; do
        [ -e "$f" ] && echo "fuzz.sh: $name: failing input $f" \
                           "(reproduce: $bin $f)" >> "$table"
      done
    fi
  done < "$manifest"
  cat "$table"
  return "$status"
}

mode=${1:-}
[ $# -gt 0 ] && shift
case "$mode" in
  check) [ $# = 6 ] || { echo "usage: $0 check BIN CORPUS WORKDIR DICT MAX_LEN RUNS" >&2; exit 64; }
         check "$@" ;;
  campaign) [ $# -ge 3 ] || { echo "usage: $0 campaign MANIFEST OUTDIR SECONDS [NAME...]" >&2; exit 64; }
            campaign "$@" ;;
  *) echo "usage: $0 check|campaign ..." >&2; exit 64 ;;
esac
