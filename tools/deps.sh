#!/bin/sh
# deps.sh - install the Debian packages sluice needs to build, test, demo and
# benchmark, but only those missing.  Non-interactive; needs root (or sudo)
# when anything is missing.  Postfix is preseeded to "No configuration" so no
# system mail service is set up or started.
#
# usage: tools/deps.sh [build|test|bench]   (default: test)
set -eu

BUILD="build-essential cmake pkg-config liblmdb-dev lmdb-utils libuv1-dev
 libc-ares-dev libssl-dev libopendkim-dev libcmocka-dev libinih-dev
 libjansson-dev libmicrohttpd-dev libsodium-dev libidn2-dev libcsv-dev
 zlib1g-dev libcurl4-openssl-dev"
PEERS="dnsmasq-base postfix python3-aiosmtpd python3-dkim opendkim-tools
 opendkim openssl procps iproute2 swaks libnet-ssleay-perl libio-socket-ssl-perl"
TESTS="valgrind clang libclang-rt-14-dev gnuplot-nox util-linux mount time jq
 python3-prometheus-client
 curl
 chromium chromium-driver python3-selenium"
BENCH="linux-perf time gnuplot-nox util-linux"

case "${1:-test}" in
  build) want="$BUILD" ;;
  test) want="$BUILD $PEERS $TESTS" ;;
  bench) want="$BUILD $PEERS $BENCH" ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 64 ;;
esac

missing=""
for p in $want; do
  s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$s" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps.sh: missing packages:$missing (run as root to install)" >&2
    exit 77
  fi
fi
echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
