#!/usr/bin/env bash
# make interop: dnstrail beside real DNS and web software. The checks are
# Rust, in tests/interop/ (ignored by `cargo test`); this script only gets
# the machine ready for them:
#
#   1. installs what they use from Debian's packages, keeping apt from
#      starting the packaged daemons on port 53;
#   2. stops a packaged daemon (unbound, nsd, knot, named, dnsmasq) that
#      already holds port 53;
#   3. runs the tests in a private mount namespace whose /etc/resolv.conf
#      names our resolver, so that `dig +trace` and Chromium ask the chain
#      under test and nothing off this machine. The machine's own
#      /etc/resolv.conf is not touched.
#
# Needs root (port 53, apt-get, the mount namespace); without it the tests
# say SKIPPED (or fail, with DNSTRAIL_REQUIRE_TOOLS=1). Logs, configurations
# and every DNS message: target/interop/.
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
OUT=target/interop
# Where tests/interop's resolver listens (dnstrail::topology::DEFAULT_RESOLVER_IP).
RESOLVER=127.0.0.1
TEST=("$CARGO" test --release --test interop -- --ignored --test-threads=1)
mkdir -p "$OUT"
note() { printf -- '-- %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    note "not root: the interop tests will say why they cannot run"
    exec "${TEST[@]}"
fi

# --- 1. packages -------------------------------------------------------------
# command -> Debian package
TOOLS="dig:bind9-dnsutils delv:bind9-dnsutils dnssec-signzone:bind9-utils ldns-signzone:ldnsutils kdig:knot-dnsutils unbound:unbound nsd:nsd knotd:knot
curl:curl chromium:chromium ss:iproute2 unshare:util-linux"
NEED=$(for t in $TOOLS; do command -v "${t%%:*}" >/dev/null 2>&1 || echo "${t#*:}"; done | sort -u | paste -sd' ' -)
if [ -n "$NEED" ] && command -v apt-get >/dev/null 2>&1; then
    note "installing $NEED from Debian's packages (log: $OUT/apt.log)"
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# written by dnstrail scripts/interop.sh while it installs\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    { timeout 300 apt-get update -qq && timeout 600 apt-get install -y -qq $NEED; } >"$OUT/apt.log" 2>&1 ||
        note "apt-get failed: $(tail -n 1 "$OUT/apt.log"); the tests will name what is missing"
    if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# --- 2. packaged daemons on port 53 -------------------------------------------
if command -v ss >/dev/null 2>&1; then
    for comm in $(ss -Hlnptu 'sport = :53' 2>/dev/null | grep -o 'users:(("[^"]*"' | cut -d'"' -f2 | sort -u); do
        case $comm in
        unbound | nsd | named | dnsmasq) unit=$comm ;;
        knotd) unit=knot ;;
        *) continue ;;
        esac
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
            note "stopping and disabling the packaged $unit service (it holds port 53)"
            systemctl stop "$unit" && systemctl disable --quiet "$unit" 2>/dev/null || true
        elif [ -x "/etc/init.d/$unit" ]; then
            note "stopping the packaged $unit service (it holds port 53)"
            "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
        fi
    done
fi

# --- 3. the tests, with a private /etc/resolv.conf -----------------------------
# Built first, with the machine's own resolver (cargo may need the network).
"$CARGO" test --release --test interop --no-run --quiet
echo "nameserver $RESOLVER" >"$OUT/resolv.conf"
if unshare -m true 2>/dev/null; then
    exec unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' \
        sh "$OUT/resolv.conf" "${TEST[@]}"
fi
note "unshare -m failed: no private /etc/resolv.conf, so dig +trace and Chromium through the chain are skipped"
exec "${TEST[@]}"
