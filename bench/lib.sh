# lib.sh - what the benchmark and demo scripts share: a temporary
# directory removed at exit, processes stopped at exit, free loopback
# ports, a millisecond clock and dnsmasq started on a config file.
#
# usage (sourced):  . "$(dirname "$0")/lib.sh"; bench_setup NAME

# Make $T, arrange cleanup, pick $DNSPORT and $SINKPORT.
bench_setup() {
  T=$(mktemp -d "/tmp/sluice-$1-XXXXXX")
  pids=""
  trap bench_cleanup EXIT INT TERM
  DNSPORT=$(port)
  SINKPORT=$(port)
}

bench_cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  # wait for them: a sink writes its stats file as it exits, which would
  # race the removal ("Directory not empty")
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}

# A free TCP port on 127.0.0.1.
port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ms() { date +%s%3N; }

# dnsmasq on 127.0.0.1:$DNSPORT serving CONF; stopped at exit.
start_dnsmasq() {
  /usr/sbin/dnsmasq --no-daemon --port="$DNSPORT" --listen-address=127.0.0.1 \
    --bind-interfaces --conf-file="$1" --user=root --cache-size=10000 \
    > "$T/dns.log" 2>&1 &
  pids="$pids $!"
}

# The [sluiced] lines every run shares: the spool in $T, the loopback DNS
# and the sink's port.  Callers append their own keys.  Mail without a DKIM
# key may leave unsigned unless the first argument is "signed" (then every
# account needs its verified domain's key: allow_unsigned = no).  A key may
# be given once per section, so callers do not repeat allow_unsigned.
sluiced_conf_head() {
  if [ "${1:-}" = signed ]; then u=no; else u=yes; fi
  printf '[account default]\nallow_unsigned = %s\n' "$u"
  printf '[sluiced]\nspool = %s/spool\nehlo_hostname = bench.sluice.test\n' "$T"
  printf 'dns_servers = 127.0.0.1:%s\nsmtp_port = %s\n' "$DNSPORT" "$SINKPORT"
}
