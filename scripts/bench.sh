#!/usr/bin/env bash
# make bench: dnstrail side by side with Unbound, NSD, Knot DNS and nginx,
# on loopback, bounded in time (about 7 minutes of load; under 10 with a
# warm build). Installs the peers from Debian's packages when missing,
# builds the release binary, runs every workload alternating ours and the
# peer's (scripts/bench/bench.py), and writes BENCHMARKS.md,
# target/bench/results.json and target/bench/ratios.svg (scripts/bench/report.py).
#
# Knobs (environment): ROUNDS (3), SECS (5) per run, SERVER_CPU (1),
# CLIENT_CPU (0), ONLY (resolver,nameserver,zone,defaults,dnssec,web,demo),
# BENCH_PORT_BASE (15300), BENCH_NS_NET (127.0.9: name servers on port 53 of
# .2-.7), ZONE_RECORDS (1000000: the zone each name server loads for the
# "zone" rows, written to target/bench/big.zone by scripts/bench/bigzone.py).
# It measures; it does not fail when dnstrail is behind a peer.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"
started=$(date +%s)

# Every process the bench starts is in $out/pids (one process group each);
# whatever way this script ends, they are stopped.
stop_started() {
  local pid
  [ -f "$out/pids" ] || return 0
  while read -r pid; do
    [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true
  done <"$out/pids"
  sleep 0.2
  while read -r pid; do
    [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
  done <"$out/pids"
  rm -f "$out/pids"
}
trap stop_started EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "bench: run as root (name servers on port 53 for Unbound)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "bench: needs 2 CPUs (server and load generator pinned apart)" >&2; exit 2; }

need=()
for tool in unbound:unbound unbound-control:unbound nsd:nsd knotd:knot dnsperf:dnsperf \
            ldns-signzone:ldnsutils \
            wrk:wrk nginx:nginx-light taskset:util-linux python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "${tool%%:*}" >/dev/null 2>&1 \
    || need+=("${tool#*:}")
done
export PATH="$PATH:/usr/sbin"
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages' own services are not wanted: the bench starts its own.
  for svc in unbound nsd knot nginx; do
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi

echo "bench: building the release binary"
cargo build --release --quiet
built=$(date +%s)

python3 scripts/bench/bench.py "$@"
python3 scripts/bench/report.py
echo "bench: build $((built - started)) s, whole run $(( $(date +%s) - started )) s"
