#!/usr/bin/env bash
# make interop: dnstrail proven against real DNS and web software.
#
#   1. dig and kdig against each of our name servers (root, .com, the four
#      example.com servers): referrals, every authoritative RRset of the zone
#      files, NODATA and NXDOMAIN with the SOA, TCP, EDNS and truncation, a
#      hop-by-hop walk and `dig +trace` from our root.
#   2. Unbound, unmodified, as the resolver over our name servers.
#   3. Our resolver over NSD serving the same zone files, beside Unbound.
#   4. Our resolver and Unbound side by side over our name servers.
#   5. curl against `dnstrail web`, and `dnstrail browse` through the chain.
#   6. Headless Chromium loading the page of `dnstrail demo --keep-running`.
#
# Every expected answer is worked out from demo-zones/ (named-compilezone and
# the awk files in scripts/interop/), never written down here. Each check
# prints one line, PASS or FAIL with its reason; the last line is
# "N passed, N failed", and the exit status is 1 if anything failed. A check
# that cannot run (a tool missing, a port taken, a server that did not start)
# is a FAIL that says why.
#
# Needs root (port 53, apt-get, a private mount namespace) on a Debian-like
# machine; installs what it lacks from Debian's packages. Uses only loopback
# addresses: our name servers on port 53 of 127.0.0.2-7 (where the zones'
# glue puts them), our resolver on 127.0.0.8:53 (control 127.0.0.8:5380),
# Unbound on 127.0.0.9:53, the web server on 127.0.0.44:8080, and for the
# demo 127.0.0.1:53. Artefacts and logs: target/interop/.
set -uo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
OUT=$REPO/target/interop
HERE=$REPO/scripts/interop
ZONES=$REPO/demo-zones
BIN=$REPO/target/release/dnstrail
START=$(date +%s)

RESOLVER_IP=127.0.0.8
CONTROL=127.0.0.8:5380
UNBOUND_IP=127.0.0.9
DEMO_RESOLVER_IP=127.0.0.1
SITE=www.example.com.
WEB_PORT=8080
SITE_URL="http://${SITE%.}:$WEB_PORT/"

PASSED=0
FAILED=0
COMPLETED=0
declare -A PIDS=()      # name -> pid of every process this run started
declare -a ORDER=()     # names, in the order started
CREATED_POLICY=0

pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s: %s\n' "$1" "$2"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s: %s\n' "$1" "$2"; }
note() { printf -- '-- %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Processes: started in the background with their log under target/interop,
# recorded (pid and start time) so that a later run can recognise and stop
# a leftover, and stopped on exit whatever happens.

starttime() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

alive() {
    local state
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# start NAME CMD... : run CMD in the background, output to $OUT/logs/NAME.log
start() {
    local name=$1; shift
    # fd 9 holds the run's lock: a leftover must not keep holding it.
    "$@" >"$OUT/logs/$name.log" 2>&1 </dev/null 9>&- &
    local pid=$!
    PIDS[$name]=$pid
    ORDER+=("$name")
    echo "$pid $(starttime "$pid") $name" >>"$OUT/pids"
}

running() { [ -n "${PIDS[$1]:-}" ] && alive "${PIDS[$1]}"; }

last_log_line() {
    local line
    line=$(grep -v '^[[:space:]]*$' "$OUT/logs/$1.log" 2>/dev/null | tail -n 1 | cut -c1-300)
    echo "${line:-no output}"
}

# wait_ready NAME SECONDS PATTERN: until the log matches, the process dies,
# or the deadline passes. Sets WHY on failure.
wait_ready() {
    local name=$1 secs=$2 pattern=$3 deadline=$((SECONDS + $2))
    while :; do
        if grep -Eq -- "$pattern" "$OUT/logs/$name.log" 2>/dev/null; then return 0; fi
        if ! running "$name"; then
            wait "${PIDS[$name]}" 2>/dev/null
            WHY="exited at start: $(last_log_line "$name")"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            WHY="not ready within $secs s (log: target/interop/logs/$name.log: $(last_log_line "$name"))"
            return 1
        fi
        sleep 0.05
    done
}

# stop NAME: SIGTERM, then SIGKILL after 5 s. Sets STOP_STATUS to the exit
# status, or "killed" if it had to be killed.
stop() {
    local name=$1 pid=${PIDS[$1]:-} deadline
    STOP_STATUS=gone
    [ -n "$pid" ] || return 0
    unset "PIDS[$name]"
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        deadline=$((SECONDS + 5))
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
        if alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            STOP_STATUS=killed
            return 0
        fi
    fi
    wait "$pid" 2>/dev/null
    STOP_STATUS=$?
}

cleanup() {
    local i
    trap - EXIT INT TERM
    for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
        [ -n "${PIDS[${ORDER[$i]}]:-}" ] && stop "${ORDER[$i]}"
    done
    : >"$OUT/pids" 2>/dev/null
    if [ "$CREATED_POLICY" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    rm -rf "$OUT"/chromium-profile.* 2>/dev/null
    if [ "$COMPLETED" != 1 ]; then
        fail "interop.sh" "stopped before the end (an error or a signal); the checks after this one did not run"
    fi
    note "took $(($(date +%s) - START)) s; logs and artefacts in target/interop/"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

# ---------------------------------------------------------------------------
# DNS questions and their normal form (scripts/interop/dnsmsg.awk).

QN=0
# ask TOOL ARGS... : run dig or kdig, leave the raw output in $RAW and the
# normal form in $MSG.
ask() {
    QN=$((QN + 1))
    RAW=$OUT/q/$(printf '%04d' "$QN").txt
    MSG=${RAW%.txt}.msg
    { echo "# $*"; timeout 20 "$@" 2>&1 </dev/null; } >"$RAW"
    awk -f "$HERE/dnsmsg.awk" "$RAW" >"$MSG"
}
DIG=(dig +time=2 +tries=1)
KDIG=(kdig +timeout=2 +retry=0)

field() { sed -n "s/^$1 //p" "$2" | head -n 1; }
section() { grep "^$1 " "$2" | sort; }
# Records of a section without their TTLs.
nottl() { grep "^$1 " "$2" | awk '{ s = $1 " " $2; for (i = 4; i <= NF; i++) s = s " " $i; print s }' | sort; }
has_flag() { field flags "$2" | tr ' ' '\n' | grep -qx "$1"; }
count() { grep -c "^$1 " "$2"; }
rel() { echo "target/interop/${1#"$OUT"/}"; }

# expect QNAME QTYPE [ZONE] > file: the answer the zone files call for.
expect() {
    awk -v qname="$1" -v qtype="$2" -v zone="${3:-}" -f "$HERE/expect.awk" "$OUT/records.txt"
}

# Differences between two sorted lists, shortened for one line.
diffline() {
    local missing extra
    missing=$(comm -23 "$1" "$2" | cut -d' ' -f2- | head -n 3 | paste -sd';' -)
    extra=$(comm -13 "$1" "$2" | cut -d' ' -f2- | head -n 3 | paste -sd';' -)
    echo "missing [${missing}] unexpected [${extra}]"
}

# check_auth MSG EXPECTED: an authoritative server's answer against the
# zone files, TTLs included. Sets WHY on failure, DETAIL on success.
check_auth() {
    local msg=$1 exp=$2 kind rcode a b
    kind=$(field kind "$exp")
    rcode=$(field rcode "$exp")
    a=$OUT/cmp.a b=$OUT/cmp.b
    if [ "$(field rcode "$msg")" = NONE ]; then
        WHY="no answer ($(grep -m1 -E 'timed out|refused|error|reached' "${msg%.msg}.txt" || echo "see $(rel "${msg%.msg}.txt")"))"
        return 1
    fi
    if grep -q '^warning ' "$msg"; then
        WHY="malformed message: $(field warning "$msg") ($(rel "${msg%.msg}.txt"))"
        return 1
    fi
    if [ "$(field rcode "$msg")" != "$rcode" ]; then
        WHY="rcode $(field rcode "$msg"), expected $rcode ($(rel "${msg%.msg}.txt"))"
        return 1
    fi
    if [ "$(field aa "$exp")" = 1 ] && ! has_flag aa "$msg"; then
        WHY="AA clear in an authoritative answer (RFC 1035 §4.1.1) ($(rel "${msg%.msg}.txt"))"
        return 1
    fi
    if [ "$(field aa "$exp")" = 0 ] && has_flag aa "$msg"; then
        WHY="AA set in a referral (RFC 1034 §4.3.2) ($(rel "${msg%.msg}.txt"))"
        return 1
    fi
    section an "$exp" >"$a"; section an "$msg" >"$b"
    if ! cmp -s "$a" "$b"; then
        WHY="answer section differs from the zone: $(diffline "$a" "$b")"
        return 1
    fi
    case $kind in
    referral)
        section au "$exp" >"$a"; section au "$msg" >"$b"
        if ! cmp -s "$a" "$b"; then
            WHY="authority section is not the delegation's NS set: $(diffline "$a" "$b")"
            return 1
        fi
        section ad "$exp" >"$a"
        section ad "$msg" | awk '$4 == "A" || $4 == "AAAA"' >"$b"
        if ! cmp -s "$a" "$b"; then
            WHY="glue in the additional section differs: $(diffline "$a" "$b")"
            return 1
        fi
        DETAIL="referral, AA clear, NS $(section au "$msg" | awk '{ print $5 }' | paste -sd' ' -), glue $(section ad "$msg" | awk '$4 == "A" || $4 == "AAAA" { print $5 }' | paste -sd' ' -)"
        ;;
    nodata | nxdomain)
        section au "$exp" >"$a"
        if ! section au "$msg" | grep -qxF -f "$a"; then
            WHY="no SOA of the zone, with TTL min(SOA TTL, MINIMUM), in the authority section (RFC 2308 §3): expected [$(cut -d' ' -f2- "$a")], got [$(section au "$msg" | cut -d' ' -f2- | paste -sd';' -)]"
            return 1
        fi
        DETAIL="$rcode, AA, no answer, SOA $(awk '{ print $2, "TTL", $3 }' "$a")"
        ;;
    *)
        DETAIL="$rcode, AA, $(count an "$msg") record(s) = zone file"
        ;;
    esac
    return 0
}

# check_recursive MSG EXPECTED: a resolver's answer against the zone files:
# the same records (TTLs at most the zone's), RA set, AA clear.
check_recursive() {
    local msg=$1 exp=$2 kind rcode a=$OUT/cmp.a b=$OUT/cmp.b over
    kind=$(field kind "$exp")
    rcode=$(field rcode "$exp")
    if [ "$(field rcode "$msg")" = NONE ]; then
        WHY="no answer ($(grep -m1 -E 'timed out|refused|error|reached' "${msg%.msg}.txt" || echo "see $(rel "${msg%.msg}.txt")"))"
        return 1
    fi
    if grep -q '^warning ' "$msg"; then
        WHY="malformed message: $(field warning "$msg")"
        return 1
    fi
    if [ "$(field rcode "$msg")" != "$rcode" ]; then
        WHY="rcode $(field rcode "$msg"), expected $rcode"
        return 1
    fi
    if ! has_flag ra "$msg"; then WHY="RA clear"; return 1; fi
    nottl an "$exp" >"$a"; nottl an "$msg" >"$b"
    if ! cmp -s "$a" "$b"; then
        WHY="answer differs from the zone: $(diffline "$a" "$b")"
        return 1
    fi
    # TTLs: never more than the zone gave.
    over=$(awk 'NR == FNR { if ($1 == "an") ttl[$2 " " $4 " " $5] = $3; next }
                $1 == "an" && ($2 " " $4 " " $5) in ttl && $3 + 0 > ttl[$2 " " $4 " " $5] + 0 { print $2, $4, "TTL", $3, ">", ttl[$2 " " $4 " " $5] }' \
        "$exp" "$msg" | head -n 1)
    if [ -n "$over" ]; then WHY="TTL above the zone's: $over"; return 1; fi
    if [ "$kind" = nodata ] || [ "$kind" = nxdomain ] || { [ "$kind" = cname ] && [ "$(count an "$exp")" -eq 1 ]; }; then
        nottl au "$exp" >"$a"
        if [ -s "$a" ] && ! nottl au "$msg" | grep -qxF -f "$a"; then
            WHY="negative answer without the zone's SOA in the authority section (RFC 2308 §5)"
            return 1
        fi
    fi
    return 0
}

# One line for a resolver's answer: "NOERROR, 2 records" / "NXDOMAIN, SOA example.com."
describe() {
    local msg=$1 n soa
    n=$(count an "$msg")
    soa=$(grep '^au ' "$msg" | awk '$4 == "SOA" { print $2; exit }')
    if [ "$n" -gt 0 ]; then
        echo "$(field rcode "$msg"), $n record(s) $(grep '^an ' "$msg" | awk '!seen[$4]++ { print $4 }' | paste -sd'+' -)"
    else
        echo "$(field rcode "$msg"), no answer${soa:+, SOA $soa}"
    fi
}

servers_of() {
    # The addresses of a zone's name servers: from the root hints for the
    # root, else from the NS records of the delegation in the parent zone and
    # their A records.
    local zone=$1
    if [ "$zone" = . ]; then
        awk '$2 == "." && $4 == "NS" { ns[$5] = 1; next } $4 == "A" && ($2 in ns) { print $5 }' \
            "$OUT/hints.txt" "$OUT/hints.txt" | sort -u
        return
    fi
    awk -v z="$zone" 'NR == FNR { if ($2 == z && $4 == "NS" && $1 != z) ns[$5] = 1; next }
                      $4 == "A" && ($2 in ns) { print $5 }' "$OUT/records.txt" "$OUT/records.txt" | sort -u
}

# ---------------------------------------------------------------------------
# Setup: one run at a time on this machine, leftovers of an earlier run
# stopped, the tools installed, the binary built, the ports free.

mkdir -p "$OUT/logs" "$OUT/q"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports are the machine's, not the work tree's: one interop run at a time.
exec 9>"${TMPDIR:-/tmp}/dnstrail-interop.lock"
if ! flock -n 9; then
    fail "one run at a time" "another make interop is running on this machine (lock ${TMPDIR:-/tmp}/dnstrail-interop.lock); wait for it to finish"
    COMPLETED=1
    exit 1
fi

# A run that was killed (SIGKILL) could not clean up: stop what it started,
# recognised by pid and start time, and nothing else.
if [ -s "$OUT/pids" ]; then
    while read -r pid st name; do
        if [ -n "$pid" ] && [ "$(starttime "$pid")" = "$st" ] && alive "$pid"; then
            note "stopping $name (pid $pid), left running by an earlier run"
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
            alive "$pid" && kill -KILL "$pid" 2>/dev/null
        fi
    done <"$OUT/pids"
fi
: >"$OUT/pids"
rm -rf "$OUT/q" "$OUT/logs" "$OUT"/nsd-* "$OUT/page.png" "$OUT"/dom-*.html
mkdir -p "$OUT/logs" "$OUT/q"

# --- tools -----------------------------------------------------------------
# command -> Debian package
TOOLS="dig:bind9-dnsutils kdig:knot-dnsutils named-compilezone:bind9-utils unbound:unbound
unbound-checkconf:unbound nsd:nsd nsd-checkconf:nsd curl:curl chromium:chromium ss:iproute2
pgrep:procps unshare:util-linux flock:util-linux timeout:coreutils"
missing_pkgs() {
    local t
    for t in $TOOLS; do command -v "${t%%:*}" >/dev/null 2>&1 || echo "${t#*:}"; done | sort -u
}
NEED=$(missing_pkgs | paste -sd' ' -)
if [ -n "$NEED" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        note "cannot install $NEED: needs root and apt-get"
    else
        note "installing $NEED from Debian's packages"
        # Keep apt from starting the packaged daemons (unbound, nsd) on port 53.
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\n# written by dnstrail scripts/interop.sh while it installs\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            CREATED_POLICY=1
        fi
        export DEBIAN_FRONTEND=noninteractive
        timeout 300 apt-get update -qq >"$OUT/logs/apt.log" 2>&1
        # shellcheck disable=SC2086
        timeout 600 apt-get install -y -qq $NEED >>"$OUT/logs/apt.log" 2>&1 || note "apt-get install failed: $(tail -n 1 "$OUT/logs/apt.log")"
        if [ "$CREATED_POLICY" = 1 ]; then rm -f /usr/sbin/policy-rc.d; CREATED_POLICY=0; fi
    fi
fi
STILL=$(for t in $TOOLS; do command -v "${t%%:*}" >/dev/null 2>&1 || echo "${t%%:*}"; done | paste -sd' ' -)
if [ -z "$STILL" ]; then
    pass "tools" "dig $(dig -v 2>&1 | awk '{ print $2 }'), kdig $(kdig -V | awk '{ print $NF }'), Unbound $(unbound -V 2>/dev/null | awk 'NR == 1 { print $2 }'), NSD $(nsd -v 2>&1 | awk 'NR == 1 { print $NF }'), $(curl -V | awk 'NR == 1 { print $1, $2 }'), $(chromium --version 2>/dev/null | awk '{ print $1, $2 }')"
else
    fail "tools" "missing after installing: $STILL (packages: $(missing_pkgs | paste -sd' ' -); see target/interop/logs/apt.log)"
fi
have() { command -v "$1" >/dev/null 2>&1; }
if [ "$(id -u)" != 0 ]; then
    fail "root" "this script binds port 53 and uses a private mount namespace: run it as root"
fi

# --- build -------------------------------------------------------------------
if cargo build --release --quiet >"$OUT/logs/build.log" 2>&1 && [ -x "$BIN" ]; then
    pass "cargo build --release" "$("$BIN" --version)"
else
    fail "cargo build --release" "$(tail -n 3 "$OUT/logs/build.log" | paste -sd' ' -)"
fi

# --- the zone files, normalised ----------------------------------------------
: >"$OUT/records.txt"
ZONE_ERRORS=""
for f in "$ZONES"/*.zone; do
    origin=$(awk 'tolower($1) == "$origin" { print tolower($2); exit }' "$f")
    [ -n "$origin" ] || origin="$(basename "$f" .zone)."
    [ "$origin" = root. ] && origin=.
    if have named-compilezone && named-compilezone -q -s full -i none -o "$OUT/compiled.zone" "$origin" "$f" >"$OUT/logs/compilezone.log" 2>&1; then
        awk -v origin="$origin" -f "$HERE/records.awk" "$OUT/compiled.zone" >>"$OUT/records.txt"
    else
        ZONE_ERRORS="$ZONE_ERRORS $(basename "$f"): $(tail -n 1 "$OUT/logs/compilezone.log" 2>/dev/null || echo 'named-compilezone missing')"
    fi
done
awk -v origin=hints -v hints=1 -f "$HERE/records.awk" "$ZONES/root.hints" >"$OUT/hints.txt"
awk -f "$HERE/questions.awk" "$OUT/records.txt" >"$OUT/questions.txt"
awk -v kind=cut -f "$HERE/questions.awk" "$OUT/records.txt" >"$OUT/cuts.txt"
if [ -z "$ZONE_ERRORS" ] && [ -s "$OUT/records.txt" ]; then
    pass "zone files" "$(wc -l <"$OUT/records.txt") records in $(cut -d' ' -f1 "$OUT/records.txt" | sort -u | wc -l) zones (named-compilezone), $(wc -l <"$OUT/questions.txt") questions to ask"
else
    fail "zone files" "named-compilezone rejected:$ZONE_ERRORS"
fi

ROOT_IPS=$(servers_of . | paste -sd' ' -)
WEB_IP=$(awk -v n="$SITE" '$2 == n && $4 == "A" { print $5; exit }' "$OUT/records.txt")
WEB_IP=${WEB_IP:-127.0.0.44}

# --- ports -------------------------------------------------------------------
# Every address and port this run listens on, and who holds any of them.
NEEDED="udp:$RESOLVER_IP:53 tcp:$RESOLVER_IP:53 udp:$UNBOUND_IP:53 tcp:$UNBOUND_IP:53
udp:$DEMO_RESOLVER_IP:53 tcp:$DEMO_RESOLVER_IP:53 tcp:$CONTROL tcp:$WEB_IP:$WEB_PORT"
for ip in $(for z in $(cut -d' ' -f1 "$OUT/records.txt" | sort -u); do servers_of "$z"; done | sort -u); do
    NEEDED="$NEEDED udp:$ip:53 tcp:$ip:53"
done
holders() {
    # Listeners on any needed address or a wildcard of the same port.
    local want proto ip port
    for want in $NEEDED; do
        proto=${want%%:*}; ip=${want#*:}; port=${ip##*:}; ip=${ip%:*}
        ss -H -ln"${proto:0:1}"p 2>/dev/null | awk -v ip="$ip" -v port="$port" -v proto="$proto" '
            { n = split($4, a, ":"); p = a[n]; h = substr($4, 1, length($4) - length(p) - 1) }
            p == port && (h == ip || h == "0.0.0.0" || h == "*" || h == "[::]") {
                pid = $0; sub(/.*pid=/, "", pid); sub(/[^0-9].*/, "", pid); print proto, $4, pid }'
    done | sort -u
}
# "udp 127.0.0.2:53 held by pid 123 (dnstrail root --dns-port 53)", one a line.
describe_holders() {
    local proto addr pid cmd
    while read -r proto addr pid; do
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120 | sed 's/ *$//')
        echo "$proto $addr held by pid ${pid:-?} (${cmd:-unknown})"
    done
}
stop_packaged() {
    # A daemon of a Debian package (unbound, nsd, knot, bind, dnsmasq) that
    # holds one of our ports: stop its service and keep it from coming back.
    # Only the service's own process (systemd's MainPID, or the pid file of
    # the package's init script) counts; any other process is left alone.
    local pid comm unit pidfile acted=1
    for pid in $(holders | awk '{ print $3 }' | sort -u); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null)
        case $comm in
        unbound) unit=unbound pidfile=/run/unbound.pid ;;
        nsd) unit=nsd pidfile=/run/nsd/nsd.pid ;;
        knotd) unit=knot pidfile=/run/knot/knot.pid ;;
        named) unit=named pidfile=/run/named/named.pid ;;
        dnsmasq) unit=dnsmasq pidfile=/run/dnsmasq/dnsmasq.pid ;;
        *) continue ;;
        esac
        if have systemctl && [ "$(systemctl show -p MainPID --value "$unit" 2>/dev/null)" = "$pid" ]; then
            note "stopping and disabling the packaged $unit service (pid $pid holds a port this run needs)"
            systemctl stop "$unit" && systemctl disable --quiet "$unit" 2>/dev/null
            acted=0
        elif [ -x "/etc/init.d/$unit" ] && [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ]; then
            note "stopping the packaged $unit service (pid $pid holds a port this run needs)"
            "/etc/init.d/$unit" stop >/dev/null 2>&1
            acted=0
        fi
    done
    return $acted
}
if have ss; then
    TAKEN=$(holders)
    if [ -n "$TAKEN" ] && stop_packaged; then sleep 0.5; TAKEN=$(holders); fi
    if [ -z "$TAKEN" ]; then
        pass "ports free" "port 53 on $(echo "$NEEDED" | tr ' ' '\n' | grep ':53$' | cut -d: -f2 | sort -u -t. -k4n | paste -sd' ' -), tcp $CONTROL and $WEB_IP:$WEB_PORT"
    else
        fail "ports free" "in use, stop these first: $(echo "$TAKEN" | describe_holders | paste -sd';' - | sed 's/;/; /g')"
    fi
else
    fail "ports free" "cannot tell: ss (iproute2) is missing"
fi

MOUNTNS=0
if unshare -m true 2>/dev/null; then MOUNTNS=1; fi

# ---------------------------------------------------------------------------
# Phase 1: our roles as separate processes, name servers on port 53.

start_role() {
    # start_role LABEL NAME PATTERN CMD...
    local label=$1 name=$2 pattern=$3; shift 3
    if [ ! -x "$BIN" ]; then fail "$label" "target/release/dnstrail was not built"; return 1; fi
    start "$name" "$@"
    if wait_ready "$name" 10 "$pattern"; then
        pass "$label" "$(grep -Em1 -- "$pattern" "$OUT/logs/$name.log" | sed 's/.*INFO //')"
    else
        fail "$label" "$WHY"
    fi
}

start_role "dnstrail root" root "name server for .* \(UDP and TCP\)" "$BIN" root --dns-port 53
start_role "dnstrail tld" tld "name server for .* \(UDP and TCP\)" "$BIN" tld --dns-port 53
start_role "dnstrail auth" auth "name server for .* \(UDP and TCP\)" "$BIN" auth --dns-port 53
start_role "dnstrail resolver" resolver "resolver on .* \(UDP and TCP\)" \
    "$BIN" resolver --listen "$RESOLVER_IP:53" --dns-port 53 --root-hints "$ZONES/root.hints" --control "$CONTROL" --json
start_role "dnstrail web" web "web server for" "$BIN" web --listen "$WEB_IP:$WEB_PORT"

is_under() { [ "$2" = . ] || [ "$1" = "$2" ] || [[ "$1" == *".$2" ]]; }
# The zones on the way to the site, from the root down.
site_zones() {
    local z
    for z in $(cut -d' ' -f1 "$OUT/records.txt" | sort -u); do
        is_under "$SITE" "$z" && echo "$(echo "$z" | tr -cd . | wc -c) $z"
    done | sort -k1,1n -k2,2 | cut -d' ' -f2
}

role_of_zone() {
    case $1 in .) echo root ;; com.) echo tld ;; *) echo auth ;; esac
}

# needs NAME... : every named process is running, else WHY says which is not.
needs() {
    local n
    for n in "$@"; do
        if ! have dig || ! have kdig; then WHY="dig or kdig is missing"; return 1; fi
        if ! running "$n"; then
            case $n in root | tld | auth | resolver | web) WHY="needs dnstrail $n" ;; *) WHY="needs $n" ;; esac
            WHY="$WHY, which is not running (see its line above, and target/interop/logs/$n.log)"
            return 1
        fi
    done
}

# --- 1. dig and kdig against each name server ------------------------------
# Referrals: the root and .com asked about the site, and each delegation.
for zone in $(cut -d' ' -f1 "$OUT/records.txt" | sort -u); do
    role=$(role_of_zone "$zone")
    mapfile -t ips < <(servers_of "$zone")
    [ "${#ips[@]}" -gt 0 ] || { fail "servers of $zone" "no address for its name servers in the zone files"; continue; }
    questions=()
    while read -r parent child _; do
        [ "$parent" = "$zone" ] && questions+=("$child NS")
    done <"$OUT/cuts.txt"
    # The site itself, if this zone only refers for it.
    if [ "$(expect "$SITE" A "$zone" | field kind /dev/stdin)" = referral ]; then questions=("$SITE A" "${questions[@]}"); fi
    for q in "${questions[@]}"; do
        set -- $q
        for transport in udp tcp; do
            label="dig +norec @${ips[0]} ($role) $1 $2"
            [ "$transport" = tcp ] && label="dig +norec +tcp @${ips[0]} ($role) $1 $2"
            if ! needs "$role"; then fail "$label" "$WHY"; continue; fi
            expect "$1" "$2" "$zone" >"$OUT/exp"
            if [ "$transport" = tcp ]; then ask "${DIG[@]}" +norec +tcp "@${ips[0]}" "$1" "$2"; else ask "${DIG[@]}" +norec "@${ips[0]}" "$1" "$2"; fi
            if check_auth "$MSG" "$OUT/exp"; then
                if [ "$(field transport "$MSG")" != "${transport^^}" ]; then fail "$label" "answered over $(field transport "$MSG"), expected ${transport^^}"
                else pass "$label" "$DETAIL"; fi
            else fail "$label" "$WHY"; fi
        done
    done
done

# Every authoritative RRset, NODATA and NXDOMAIN: dig over UDP to each zone's
# servers in turn; for the hosted zone, kdig over TCP too.
i=0
while read -r zone qname qtype; do
    role=$(role_of_zone "$zone")
    mapfile -t ips < <(servers_of "$zone")
    [ "${#ips[@]}" -gt 0 ] || continue
    ip=${ips[$((i % ${#ips[@]}))]}
    i=$((i + 1))
    expect "$qname" "$qtype" "$zone" >"$OUT/exp"
    label="dig +norec @$ip ($role) $qname $qtype"
    if needs "$role"; then
        ask "${DIG[@]}" +norec "@$ip" "$qname" "$qtype"
        if check_auth "$MSG" "$OUT/exp"; then pass "$label" "$DETAIL"; else fail "$label" "$WHY"; fi
    else
        fail "$label" "$WHY"
    fi
    if [ "$role" = auth ]; then
        ip=${ips[$((i % ${#ips[@]}))]}
        label="kdig +norec +tcp @$ip ($role) $qname $qtype"
        if needs "$role"; then
            ask "${KDIG[@]}" +norec +tcp "@$ip" "$qname" "$qtype"
            if ! check_auth "$MSG" "$OUT/exp"; then fail "$label" "$WHY"
            elif [ "$(field transport "$MSG")" != TCP ]; then fail "$label" "answered over $(field transport "$MSG"), expected TCP"
            else pass "$label" "$DETAIL over TCP"; fi
        else
            fail "$label" "$WHY"
        fi
    fi
done <"$OUT/questions.txt"

# EDNS and truncation, with the largest TXT set of the zones.
read -r BIG_ZONE BIG_NAME < <(awk '$4 == "TXT" { size[$1 " " $2] += length($0) } END { for (k in size) if (size[k] > best) { best = size[k]; b = k } print b }' "$OUT/records.txt")
if [ -n "${BIG_NAME:-}" ]; then
    BIG_IP=$(servers_of "$BIG_ZONE" | head -n 1)
    BIG_N=$(awk -v n="$BIG_NAME" -v z="$BIG_ZONE" '$1 == z && $2 == n && $4 == "TXT"' "$OUT/records.txt" | wc -l)
    role=$(role_of_zone "$BIG_ZONE")
    expect "$BIG_NAME" TXT "$BIG_ZONE" >"$OUT/exp-big"

    label="EDNS: dig +bufsize=4096 @$BIG_IP $BIG_NAME TXT"
    if needs "$role"; then
        ask "${DIG[@]}" +norec +ignore +bufsize=4096 "@$BIG_IP" "$BIG_NAME" TXT
        if ! check_auth "$MSG" "$OUT/exp-big"; then fail "$label" "$WHY"
        elif has_flag tc "$MSG"; then fail "$label" "TC set though the answer fits the 4096 bytes offered"
        elif [ "$(field edns "$MSG")" = none ]; then fail "$label" "no OPT record in the response to an EDNS query (RFC 6891 §6.1.1)"
        elif [ "$(field transport "$MSG")" != UDP ]; then fail "$label" "answered over $(field transport "$MSG")"
        else pass "$label" "all $BIG_N records in one $(field size "$MSG")-byte UDP answer, OPT with udp $(field edns "$MSG")"; fi
    else fail "$label" "$WHY"; fi

    label="truncation: dig +bufsize=512 +ignore @$BIG_IP $BIG_NAME TXT"
    if needs "$role"; then
        ask "${DIG[@]}" +norec +ignore +bufsize=512 "@$BIG_IP" "$BIG_NAME" TXT
        size=$(field size "$MSG")
        if [ "$(field rcode "$MSG")" != NOERROR ]; then fail "$label" "rcode $(field rcode "$MSG")"
        elif grep -q '^warning ' "$MSG"; then fail "$label" "malformed truncated message: $(field warning "$MSG") ($(rel "$RAW"))"
        elif ! has_flag tc "$MSG"; then fail "$label" "TC clear, $(count an "$MSG") of $BIG_N records (RFC 6891 §7: more than 512 bytes must not be sent)"
        elif [ "${size:-9999}" -gt 512 ]; then fail "$label" "$size-byte UDP answer to a 512-byte buffer"
        elif [ "$(field edns "$MSG")" = none ]; then fail "$label" "no OPT record in the response (RFC 6891 §6.1.1)"
        else pass "$label" "TC set, $size bytes, $(count an "$MSG") whole records, OPT kept"; fi
    else fail "$label" "$WHY"; fi

    label="truncation then TCP: dig +bufsize=512 @$BIG_IP $BIG_NAME TXT"
    if needs "$role"; then
        ask "${DIG[@]}" +norec +bufsize=512 "@$BIG_IP" "$BIG_NAME" TXT
        if ! check_auth "$MSG" "$OUT/exp-big"; then fail "$label" "$WHY"
        elif ! grep -qx retried "$MSG" || [ "$(field transport "$MSG")" != TCP ]; then fail "$label" "dig did not retry over TCP (no TC over UDP?)"
        else pass "$label" "TC over UDP, dig retried over TCP: all $BIG_N records"; fi
    else fail "$label" "$WHY"; fi

    label="truncation without EDNS: dig +noedns +ignore @$BIG_IP $BIG_NAME TXT"
    if needs "$role"; then
        ask "${DIG[@]}" +norec +ignore +noedns "@$BIG_IP" "$BIG_NAME" TXT
        size=$(field size "$MSG")
        if [ "$(field rcode "$MSG")" != NOERROR ]; then fail "$label" "rcode $(field rcode "$MSG")"
        elif grep -q '^warning ' "$MSG"; then fail "$label" "malformed truncated message: dig says '$(field warning "$MSG")' ($size bytes, $(count an "$MSG") records counted): a partial record after the last counted one (RFC 1035 §4.1, RFC 2181 §9) ($(rel "$RAW"))"
        elif ! has_flag tc "$MSG"; then fail "$label" "TC clear"
        elif [ "${size:-9999}" -gt 512 ]; then fail "$label" "$size-byte UDP answer without EDNS (RFC 1035 §4.2.1: 512 at most)"
        elif [ "$(field edns "$MSG")" != none ]; then fail "$label" "OPT record in the response to a query without one (RFC 6891 §7)"
        else pass "$label" "TC set, $size bytes, $(count an "$MSG") whole records, no OPT"; fi
    else fail "$label" "$WHY"; fi
fi

AUTH_IP=$(servers_of "$(awk -v s="$SITE" '$2 == s { print $1; exit }' "$OUT/records.txt")" | tail -n 1)
label="EDNS version 1: dig +edns=1 +noednsneg @$AUTH_IP $SITE A"
if needs auth; then
    ask "${DIG[@]}" +norec +edns=1 +noednsneg "@$AUTH_IP" "$SITE" A
    if [ "$(field rcode "$MSG")" != BADVERS ]; then fail "$label" "rcode $(field rcode "$MSG"), expected BADVERS (RFC 6891 §6.1.3)"
    elif [ "$(field edns "$MSG")" = none ]; then fail "$label" "BADVERS without an OPT record (RFC 6891 §6.1.3)"
    elif [ "$(count an "$MSG")" -ne 0 ]; then fail "$label" "answered anyway"
    else pass "$label" "BADVERS, OPT version 0, no answer"; fi
else fail "$label" "$WHY"; fi

label="no EDNS: dig +noedns @$AUTH_IP $SITE A"
if needs auth; then
    expect "$SITE" A "$(awk -v s="$SITE" '$2 == s { print $1; exit }' "$OUT/records.txt")" >"$OUT/exp"
    ask "${DIG[@]}" +norec +noedns "@$AUTH_IP" "$SITE" A
    if ! check_auth "$MSG" "$OUT/exp"; then fail "$label" "$WHY"
    elif [ "$(field edns "$MSG")" != none ]; then fail "$label" "OPT record in the response to a query without one (RFC 6891 §7)"
    else pass "$label" "$DETAIL, no OPT"; fi
else fail "$label" "$WHY"; fi

# A walk down the hierarchy as an iterative resolver does it, with dig alone:
# ask the root, follow each referral's glue, until an authoritative answer.
label="hop-by-hop walk from the root hints: dig +norec $SITE A"
if needs root tld auth; then
    server=$(echo "$ROOT_IPS" | cut -d' ' -f1)
    path=$server
    WHY="no authoritative answer after 6 hops ($path)"
    ok=0
    for hop in 1 2 3 4 5 6; do
        ask "${DIG[@]}" +norec "@$server" "$SITE" A
        if [ "$(field rcode "$MSG")" != NOERROR ]; then WHY="$server answered $(field rcode "$MSG") ($path)"; break; fi
        if has_flag aa "$MSG" && [ "$(count an "$MSG")" -gt 0 ]; then
            got=$(grep '^an ' "$MSG" | awk -v n="$SITE" '$2 == n && $4 == "A" { print $5 }' | paste -sd' ' -)
            path="$path → $got"
            if [ "$got" = "$WEB_IP" ]; then ok=1; else WHY="ended with [$got], expected $WEB_IP ($path)"; fi
            break
        fi
        ns=$(grep '^au ' "$MSG" | awk '$4 == "NS" { print $5; exit }')
        next=$(grep '^ad ' "$MSG" | awk -v n="$ns" '$2 == n && $4 == "A" { print $5; exit }')
        if [ -z "$ns" ] || [ -z "$next" ]; then WHY="$server gave neither an answer nor a referral with glue ($path; $(rel "$RAW"))"; break; fi
        server=$next
        path="$path → $next"
    done
    if [ "$ok" = 1 ]; then pass "$label" "$path in $hop queries"; else fail "$label" "$WHY"; fi
else fail "$label" "$WHY"; fi

# ---------------------------------------------------------------------------
# 2. Unbound as the resolver over our name servers (port 53: the only port
# Unbound asks name servers on).

start_unbound() {
    local label=$1
    if ! have unbound; then fail "$label" "unbound is not installed"; return 1; fi
    sed -e "s|@OUT@|$OUT|g; s|@ZONES@|$ZONES|g; s|@LISTEN@|$UNBOUND_IP|g" \
        "$HERE/unbound.conf.in" >"$OUT/unbound.conf"
    if ! unbound-checkconf "$OUT/unbound.conf" >"$OUT/logs/unbound-checkconf.log" 2>&1; then
        fail "$label" "unbound-checkconf: $(tail -n 1 "$OUT/logs/unbound-checkconf.log")"
        return 1
    fi
    start unbound unbound -d -c "$OUT/unbound.conf"
    if wait_ready unbound 10 "start of service"; then
        pass "$label" "$(grep -m1 -o 'start of service.*' "$OUT/logs/unbound.log" | sed 's/\.$//'), on $UNBOUND_IP:53, root hints demo-zones/root.hints"
    else
        fail "$label" "$WHY"
        return 1
    fi
}
start_unbound "Unbound started"

label="Unbound over dnstrail: $SITE A"
if needs unbound root tld auth; then
    expect "$SITE" A >"$OUT/exp"
    ask "${DIG[@]}" "@$UNBOUND_IP" "$SITE" A
    if ! check_recursive "$MSG" "$OUT/exp"; then fail "$label" "$WHY"
    else pass "$label" "$(grep '^an ' "$MSG" | awk '{ print $5 }' | paste -sd' ' -), our web server's address, TTL $(grep '^an ' "$MSG" | awk '{ print $3; exit }')"; fi
else fail "$label" "$WHY"; fi

MISSING_NAME="interop-missing.${SITE#*.}"
label="Unbound over dnstrail: $MISSING_NAME A"
if needs unbound root tld auth; then
    expect "$MISSING_NAME" A >"$OUT/exp"
    ask "${DIG[@]}" "@$UNBOUND_IP" "$MISSING_NAME" A
    if ! check_recursive "$MSG" "$OUT/exp"; then fail "$label" "$WHY"
    else pass "$label" "$(describe "$MSG")"; fi
else fail "$label" "$WHY"; fi

# dig +trace finds the name servers' addresses with the system resolver. In
# a private mount namespace, /etc/resolv.conf names Unbound (over our
# servers): nothing outside this machine is asked, and the machine's own
# /etc/resolv.conf is not touched.
label="dig +trace @$(echo "$ROOT_IPS" | cut -d' ' -f1) $SITE A"
if [ "$MOUNTNS" != 1 ]; then fail "$label" "cannot make a private /etc/resolv.conf: unshare -m failed (needs root)"
elif needs unbound root tld auth; then
    echo "nameserver $UNBOUND_IP" >"$OUT/resolv-unbound.conf"
    QN=$((QN + 1)); RAW=$OUT/q/$(printf '%04d' "$QN")-trace.txt
    timeout 30 unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' sh \
        "$OUT/resolv-unbound.conf" dig +trace +time=2 +tries=1 "@$(echo "$ROOT_IPS" | cut -d' ' -f1)" "$SITE" A >"$RAW" 2>&1
    # One line per hop: "IP TYPE-of-records OWNERS... DATA..."
    awk '/^;; Received/ { split($0, a, "from "); split(a[2], b, "#"); print b[1] "|" recs; recs = ""; next }
         /^;/ || NF < 5 { next }
         { recs = recs (recs == "" ? "" : ";") tolower($1) " " toupper($4) " " tolower($5) }' "$RAW" >"$OUT/trace.hops"
    # The zones from the root down to the site's, each hop from their servers.
    mapfile -t zones < <(site_zones)
    WHY=""
    nhops=$(wc -l <"$OUT/trace.hops")
    if [ "$nhops" -ne $((${#zones[@]} + 1)) ]; then
        WHY="$nhops hops, expected $((${#zones[@]} + 1)): $(tail -n 2 "$RAW" | paste -sd' ' -) ($(rel "$RAW"))"
    else
        hop=0
        # Hop 0: the root's NS set, from the server asked.
        line=$(sed -n 1p "$OUT/trace.hops")
        [[ "$line" == *"|. NS "* ]] || WHY="first hop has no NS set of the root: $line"
        for ((k = 0; k < ${#zones[@]}; k++)); do
            [ -z "$WHY" ] || break
            line=$(sed -n "$((k + 2))p" "$OUT/trace.hops")
            from=${line%%|*}
            if ! servers_of "${zones[$k]}" | grep -qxF "$from"; then WHY="hop $((k + 2)) came from $from, not a server of ${zones[$k]}"; break; fi
            if [ $((k + 1)) -lt ${#zones[@]} ]; then
                want="${zones[$((k + 1))]} NS"
                [[ "$line" == *"|$want "* || "$line" == *";$want "* ]] || WHY="hop $((k + 2)) from $from has no referral to ${zones[$((k + 1))]}: ${line#*|}"
            else
                [[ "$line" == *"$SITE A $WEB_IP"* ]] || WHY="last hop from $from has no $SITE A $WEB_IP: ${line#*|}"
            fi
        done
    fi
    if [ -z "$WHY" ]; then
        pass "$label" "$(awk -F'|' '{ printf "%s%s", (NR > 1 ? " → " : ""), $1 }' "$OUT/trace.hops"): . NS, $(printf '%s NS, ' "${zones[@]:1}")$SITE A $WEB_IP"
    else
        fail "$label" "$WHY"
    fi
else fail "$label" "$WHY"; fi

# ---------------------------------------------------------------------------
# 4 (and 3). Side by side: our resolver and Unbound, every question, over the
# same name servers. Both must agree with each other and with the zone files.

side_by_side() {
    local over=$1 servers=$2 qname qtype label ours theirs whyo whyu
    while read -r _ qname qtype; do
        label="side by side over $over: $qname $qtype"
        if ! needs resolver unbound $servers; then fail "$label" "$WHY"; continue; fi
        expect "$qname" "$qtype" >"$OUT/exp"
        ask "${DIG[@]}" "@$RESOLVER_IP" "$qname" "$qtype"; ours=$MSG
        ask "${DIG[@]}" "@$UNBOUND_IP" "$qname" "$qtype"; theirs=$MSG
        whyo=""; whyu=""
        check_recursive "$ours" "$OUT/exp" || whyo=$WHY
        check_recursive "$theirs" "$OUT/exp" || whyu=$WHY
        if [ -z "$whyo" ] && [ -z "$whyu" ]; then
            if has_flag aa "$ours"; then fail "$label" "dnstrail resolver set AA in a recursive answer"; continue; fi
            pass "$label" "$(describe "$ours"); dnstrail resolver = Unbound = zone files"
        elif [ -n "$whyo" ] && [ -z "$whyu" ]; then
            fail "$label" "dnstrail resolver: $whyo (Unbound: $(describe "$theirs"), as the zone files say; $(rel "${ours%.msg}.txt"))"
        elif [ -z "$whyo" ]; then
            fail "$label" "Unbound: $whyu (dnstrail resolver: $(describe "$ours"); $(rel "${theirs%.msg}.txt"))"
        else
            fail "$label" "both differ from the zone files: dnstrail resolver: $whyo; Unbound: $whyu"
        fi
    done <"$OUT/questions.txt"
}
side_by_side "dnstrail name servers" "root tld auth"

# Truncation by the resolver (the same rule as the name servers).
if [ -n "${BIG_NAME:-}" ]; then
    label="dnstrail resolver truncation without EDNS: dig +noedns +ignore @$RESOLVER_IP $BIG_NAME TXT"
    if needs resolver root tld auth; then
        ask "${DIG[@]}" +ignore +noedns "@$RESOLVER_IP" "$BIG_NAME" TXT
        size=$(field size "$MSG")
        if [ "$(field rcode "$MSG")" != NOERROR ]; then fail "$label" "rcode $(field rcode "$MSG")"
        elif grep -q '^warning ' "$MSG"; then fail "$label" "malformed truncated message: dig says '$(field warning "$MSG")' ($size bytes, $(count an "$MSG") records counted): a partial record after the last counted one (RFC 1035 §4.1, RFC 2181 §9) ($(rel "$RAW"))"
        elif ! has_flag tc "$MSG"; then fail "$label" "TC clear"
        elif [ "${size:-9999}" -gt 512 ]; then fail "$label" "$size-byte UDP answer without EDNS (RFC 1035 §4.2.1: 512 at most)"
        else pass "$label" "TC set, $size bytes, $(count an "$MSG") whole records"; fi
    else fail "$label" "$WHY"; fi
fi

# ---------------------------------------------------------------------------
# 5. curl against `dnstrail web`, and `dnstrail browse` through the chain.

INDEX=$REPO/static/index.html
TITLE=$(sed -n 's:.*<title>\(.*\)</title>.*:\1:p' "$INDEX" | head -n 1)
CURL=(curl -sS --max-time 5)
rm -f "$OUT"/curl-*
web_check() {
    # web_check LABEL : sets WHY unless the web server is up and curl exists
    if ! have curl; then WHY="curl is missing"; return 1; fi
    if ! running web; then WHY="needs dnstrail web, which is not running (see its line above, and target/interop/logs/web.log)"; return 1; fi
}
header_of() { tr -d '\r' <"$1" | awk -v h="$(echo "$2" | tr 'A-Z' 'a-z')" 'BEGIN { FS = ": " } tolower($1) == h { print $2; exit }'; }

label="curl -H 'Host: ${SITE%.}' http://$WEB_IP:$WEB_PORT/"
if web_check; then
    code=$("${CURL[@]}" -o "$OUT/curl-body" -D "$OUT/curl-head" -w '%{http_code}' -H "Host: ${SITE%.}" "http://$WEB_IP:$WEB_PORT/" 2>"$OUT/curl-err")
    if [ "$code" != 200 ]; then fail "$label" "status ${code:-none} $(cat "$OUT/curl-err")"
    elif ! cmp -s "$OUT/curl-body" "$INDEX"; then fail "$label" "body is not static/index.html ($(wc -c <"$OUT/curl-body") bytes)"
    elif ! header_of "$OUT/curl-head" content-type | grep -qi '^text/html'; then fail "$label" "Content-Type: $(header_of "$OUT/curl-head" content-type)"
    else pass "$label" "200, text/html, $(wc -c <"$OUT/curl-body") bytes = static/index.html"; fi
else fail "$label" "$WHY"; fi
ETAG=$(header_of "$OUT/curl-head" etag 2>/dev/null)

label="curl --resolve ${SITE%.}:$WEB_PORT:$WEB_IP $SITE_URL"
if web_check; then
    code=$("${CURL[@]}" -o "$OUT/curl-body-resolve" -w '%{http_code}' --resolve "${SITE%.}:$WEB_PORT:$WEB_IP" "$SITE_URL" 2>"$OUT/curl-err")
    if [ "$code" != 200 ]; then fail "$label" "status ${code:-none} $(cat "$OUT/curl-err")"
    elif ! cmp -s "$OUT/curl-body-resolve" "$INDEX"; then fail "$label" "body is not static/index.html ($(wc -c <"$OUT/curl-body-resolve") bytes)"
    else pass "$label" "200, static/index.html, <title>$TITLE</title>"; fi
else fail "$label" "$WHY"; fi

label="curl -I (HEAD) $SITE_URL"
if web_check; then
    code=$("${CURL[@]}" -I -o "$OUT/curl-head" -w '%{http_code} %{size_download}' --resolve "${SITE%.}:$WEB_PORT:$WEB_IP" "$SITE_URL" 2>"$OUT/curl-err")
    len=$(header_of "$OUT/curl-head" content-length)
    if [ "${code%% *}" != 200 ]; then fail "$label" "status ${code:-none} $(cat "$OUT/curl-err")"
    elif [ "${code#* }" != 0 ]; then fail "$label" "a body of ${code#* } bytes in the answer to HEAD (RFC 9110 §9.3.2)"
    elif [ "$len" != "$(wc -c <"$INDEX")" ]; then fail "$label" "Content-Length ${len:-missing}, the page has $(wc -c <"$INDEX") bytes"
    elif [ -z "$(header_of "$OUT/curl-head" etag)" ]; then fail "$label" "no ETag"
    else pass "$label" "200, no body, Content-Length $len, ETag $(header_of "$OUT/curl-head" etag)"; fi
else fail "$label" "$WHY"; fi

label="curl -H 'If-None-Match: <ETag>' $SITE_URL"
if web_check; then
    if [ -z "$ETAG" ]; then fail "$label" "no ETag from the first request to send back"
    else
        code=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{size_download}' -H "If-None-Match: $ETAG" --resolve "${SITE%.}:$WEB_PORT:$WEB_IP" "$SITE_URL" 2>"$OUT/curl-err")
        if [ "${code%% *}" != 304 ]; then fail "$label" "status ${code%% *}, expected 304 Not Modified (RFC 9110 §13.1.2)"
        elif [ "${code#* }" != 0 ]; then fail "$label" "304 with a ${code#* }-byte body (RFC 9110 §15.4.5: a 304 has no content)"
        else pass "$label" "304 Not Modified, empty body"; fi
    fi
else fail "$label" "$WHY"; fi

label="curl -H 'Host: other.example' http://$WEB_IP:$WEB_PORT/"
if web_check; then
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H "Host: other.example" "http://$WEB_IP:$WEB_PORT/" 2>"$OUT/curl-err")
    if [ "$code" != 404 ]; then fail "$label" "status ${code:-none}, expected 404 for a host it does not serve"
    else pass "$label" "404: one virtual host"; fi
else fail "$label" "$WHY"; fi

browse() {
    # browse LABEL RESOLVER NEEDS... : dnstrail browse --json through RESOLVER
    local label=$1 resolver=$2; shift 2
    if ! needs "$@" web; then fail "$label" "$WHY"; return; fi
    timeout 20 "$BIN" browse --json --timeout 5 --resolver "$resolver" "$SITE_URL" >"$OUT/browse.json" 2>"$OUT/browse.err"
    local rc=$? status title
    status=$(grep -o '"status":[0-9]*' "$OUT/browse.json" | head -n 1 | cut -d: -f2)
    title=$(grep -o '"title":"[^"]*"' "$OUT/browse.json" | head -n 1 | cut -d'"' -f4)
    if [ "$rc" != 0 ]; then fail "$label" "exit $rc: $(head -c 300 "$OUT/browse.err")"
    elif [ "$status" != 200 ]; then fail "$label" "status ${status:-none}"
    elif [ "$title" != "$TITLE" ]; then fail "$label" "title '$title', expected '$TITLE'"
    else pass "$label" "200, '$title', $(grep -o '"addresses":\[[^]]*\]' "$OUT/browse.json" | head -n 1)"; fi
}
browse "dnstrail browse --resolver $RESOLVER_IP:53 $SITE_URL" "$RESOLVER_IP:53" resolver root tld auth
browse "dnstrail browse --resolver $UNBOUND_IP:53 (Unbound) $SITE_URL" "$UNBOUND_IP:53" unbound root tld auth

label="dnstrail browse --resolver $RESOLVER_IP:53 http://${MISSING_NAME%.}:$WEB_PORT/"
if needs resolver root tld auth; then
    timeout 20 "$BIN" browse --timeout 5 --resolver "$RESOLVER_IP:53" "http://${MISSING_NAME%.}:$WEB_PORT/" >/dev/null 2>"$OUT/browse.err"
    rc=$?
    if [ "$rc" != 4 ]; then fail "$label" "exit $rc, expected 4 (NXDOMAIN): $(head -c 300 "$OUT/browse.err")"
    elif ! grep -qi nxdomain "$OUT/browse.err"; then fail "$label" "exit 4 but no NXDOMAIN in: $(head -c 300 "$OUT/browse.err")"
    else pass "$label" "exit 4: $(head -n 1 "$OUT/browse.err" | cut -c1-120)"; fi
else fail "$label" "$WHY"; fi

# ---------------------------------------------------------------------------
# 3. Our resolver over NSD: our name servers stopped, one NSD instance per
# simulated server on the same addresses and port, serving the same files.

label="dnstrail root, tld, auth stop on SIGTERM"
stopped=""
for r in root tld auth; do
    if [ -n "${PIDS[$r]:-}" ]; then stop "$r"; stopped="$stopped $r:$STOP_STATUS"; fi
done
if [ -z "$stopped" ]; then fail "$label" "none of them was running"
elif echo "$stopped" | grep -qvE '^( [a-z]+:0)+$'; then fail "$label" "exit statuses:$stopped (killed: still running 5 s after SIGTERM)"
else pass "$label" "each exited 0 within 5 s"; fi

start_nsd() {
    local name=$1 zone=$2 file=$3 label conf addrs="" ip dir=$OUT/nsd-$1
    label="NSD for $zone started"
    if ! have nsd; then fail "$label" "nsd is not installed"; return; fi
    mkdir -p "$dir"
    for ip in $(servers_of "$zone"); do addrs="$addrs    ip-address: $ip\n"; done
    conf=$dir/nsd.conf
    sed -e "s|@OUT@|$OUT|g; s|@NAME@|$name|g; s|@ZONE@|$zone|g; s|@ZONEFILE@|$file|g; s|^ *@IP_ADDRESSES@|$addrs|" \
        "$HERE/nsd.conf.in" >"$conf"
    if ! nsd-checkconf "$conf" >"$dir/checkconf.log" 2>&1; then
        fail "$label" "nsd-checkconf: $(tail -n 1 "$dir/checkconf.log")"
        return
    fi
    start "nsd-$name" nsd -d -c "$conf"
    # NSD logs to its own file; its stdout/stderr go to logs/nsd-NAME.log.
    local deadline=$((SECONDS + 10))
    while ! grep -q "nsd started" "$dir/nsd.log" 2>/dev/null; do
        if ! running "nsd-$name"; then fail "$label" "exited at start: $(tail -n 1 "$dir/nsd.log" 2>/dev/null) $(last_log_line "nsd-$name")"; return; fi
        if [ "$SECONDS" -ge "$deadline" ]; then fail "$label" "not started within 10 s: $(tail -n 1 "$dir/nsd.log" 2>/dev/null)"; return; fi
        sleep 0.05
    done
    # Make sure the answers on these addresses now come from NSD.
    local first version
    first=$(servers_of "$zone" | head -n 1)
    version=$(dig +time=2 +tries=1 +short "@$first" version.bind CH TXT | tr -d '"')
    case $version in
    NSD*) pass "$label" "$version on $(servers_of "$zone" | sed 's/$/:53/' | paste -sd' ' -), $(basename "$file")" ;;
    *) fail "$label" "version.bind on $first says '${version:-nothing}', not NSD" ;;
    esac
}
NSD_NAMES=""
for f in "$ZONES"/*.zone; do
    origin=$(awk 'tolower($1) == "$origin" { print tolower($2); exit }' "$f")
    [ -n "$origin" ] || continue
    name=$(echo "${origin%.}" | tr '.' '-'); name=${name:-root}
    start_nsd "$name" "$origin" "$f"
    NSD_NAMES="$NSD_NAMES nsd-$name"
done

# Cold caches: flush ours through its control endpoint, restart Unbound.
label="dnstrail resolver: POST http://$CONTROL/flush"
if needs resolver; then
    flushed=$(curl -sS --max-time 5 -X POST "http://$CONTROL/flush" 2>&1)
    left=$(curl -sS --max-time 5 "http://$CONTROL/cache" 2>&1 | grep -o '"count": *[0-9]*' | grep -o '[0-9]*$')
    if ! echo "$flushed" | grep -q '"flushed": *true'; then fail "$label" "answered: $(echo "$flushed" | head -c 200)"
    elif [ "$left" != 0 ]; then fail "$label" "GET /cache still counts ${left:-?} entries"
    else pass "$label" "cache empty (GET /cache: 0 entries)"; fi
else fail "$label" "$WHY"; fi
stop unbound
start_unbound "Unbound restarted (cold cache)"

side_by_side "NSD" "$NSD_NAMES"

# ---------------------------------------------------------------------------
# 6. A real browser: headless Chromium and the page of `demo --keep-running`.

for r in resolver web unbound $NSD_NAMES; do stop "$r"; done

label="dnstrail demo --keep-running --dns-port 53"
DEMO_UP=0
if [ -x "$BIN" ]; then
    # The demo's resolver logs each query it answers (to see Chromium's).
    start demo env RUST_LOG=warn,dnstrail::query=info "$BIN" demo --keep-running --dns-port 53 --web-port "$WEB_PORT"
    if wait_ready demo 20 "The stack is running"; then
        DEMO_UP=1
        pass "$label" "$(grep -cE '^Visit [0-9]' "$OUT/logs/demo.log") visits told, stack left running (resolver $DEMO_RESOLVER_IP:53, web $WEB_IP:$WEB_PORT)"
    else
        fail "$label" "$WHY"
    fi
else fail "$label" "target/release/dnstrail was not built"; fi

CHROMIUM=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --disable-features=DnsOverHttps --virtual-time-budget=5000)
# A fresh profile for each run (removed on exit).
profile() { mktemp -d "$OUT/chromium-profile.XXXXXX"; }
dom_check() {
    local dom=$1 visits sections
    visits=$(grep -o '[0-9]* visits\{0,1\} recorded by' "$dom" | head -n 1)
    sections=$(grep -o '<section class="visit' "$dom" | wc -l)
    if [ "$visits" != "3 visits recorded by" ]; then WHY="the DOM does not say '3 visits recorded by' (got '${visits:-nothing}'; $(rel "$dom"))"; return 1; fi
    if [ "$sections" -ne 3 ]; then WHY="$sections <section class=\"visit\"> in the DOM, expected 3 ($(rel "$dom"))"; return 1; fi
    if ! grep -qF "<title>$TITLE</title>" "$dom"; then WHY="not the page: no <title>$TITLE</title>"; return 1; fi
}
chromium_ready() {
    if ! have chromium; then WHY="chromium is not installed"; return 1; fi
    if [ "$DEMO_UP" != 1 ] || ! running demo; then WHY="needs dnstrail demo, which is not running (see its line above, and target/interop/logs/demo.log)"; return 1; fi
}
QUERY_RE="$(echo "$SITE" | sed 's/\./\\./g') A -> NOERROR flags=\[[^]]*RA"

# Through the chain: Chromium's own name resolution, with /etc/resolv.conf
# (in a private mount namespace) naming the demo's resolver.
echo "nameserver $DEMO_RESOLVER_IP" >"$OUT/resolv-demo.conf"
in_chain() { unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' sh "$OUT/resolv-demo.conf" "$@"; }

label="Chromium through the chain: --dump-dom $SITE_URL"
if ! chromium_ready; then fail "$label" "$WHY"
elif [ "$MOUNTNS" != 1 ]; then fail "$label" "cannot make a private /etc/resolv.conf: unshare -m failed (needs root)"
else
    before=$(grep -cE "$QUERY_RE" "$OUT/logs/demo.log")
    in_chain timeout -k 5 60 "${CHROMIUM[@]}" --user-data-dir="$(profile)" --dump-dom "$SITE_URL" >"$OUT/dom-chain.html" 2>>"$OUT/logs/chromium.log"
    rc=$?
    after=$(grep -cE "$QUERY_RE" "$OUT/logs/demo.log")
    if [ "$rc" != 0 ]; then fail "$label" "chromium exited $rc (target/interop/logs/chromium.log)"
    elif ! dom_check "$OUT/dom-chain.html"; then fail "$label" "$WHY"
    elif [ "$after" -le "$before" ]; then fail "$label" "page loaded, but the demo's resolver logged no question for $SITE A from Chromium"
    else pass "$label" "the demo's resolver answered Chromium's $SITE A; DOM: 3 visits recorded by, 3 visit sections"; fi
fi

label="Chromium screenshot through the chain"
if ! chromium_ready; then fail "$label" "$WHY"
elif [ "$MOUNTNS" != 1 ]; then fail "$label" "cannot make a private /etc/resolv.conf: unshare -m failed (needs root)"
else
    rm -f "$OUT/page.png"
    in_chain timeout -k 5 60 "${CHROMIUM[@]}" --user-data-dir="$(profile)" --window-size=1200,2400 \
        --screenshot="$OUT/page.png" "$SITE_URL" >/dev/null 2>>"$OUT/logs/chromium.log"
    rc=$?
    dims=$( [ -s "$OUT/page.png" ] && od -An -tu1 -j16 -N8 "$OUT/page.png" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 "x" $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }')
    if [ "$rc" != 0 ]; then fail "$label" "chromium exited $rc (target/interop/logs/chromium.log)"
    elif [ "$(head -c 8 "$OUT/page.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]; then fail "$label" "no PNG written to target/interop/page.png"
    elif [ "$dims" != 1200x2400 ]; then fail "$label" "screenshot is $dims, expected 1200x2400"
    else pass "$label" "target/interop/page.png, $dims, $(wc -c <"$OUT/page.png") bytes"; fi
fi

label="Chromium --host-resolver-rules='MAP ${SITE%.} $WEB_IP': --dump-dom $SITE_URL"
if ! chromium_ready; then fail "$label" "$WHY"
else
    timeout -k 5 60 "${CHROMIUM[@]}" --user-data-dir="$(profile)" --host-resolver-rules="MAP ${SITE%.} $WEB_IP" \
        --dump-dom "$SITE_URL" >"$OUT/dom-mapped.html" 2>>"$OUT/logs/chromium.log"
    rc=$?
    if [ "$rc" != 0 ]; then fail "$label" "chromium exited $rc (target/interop/logs/chromium.log)"
    elif ! dom_check "$OUT/dom-mapped.html"; then fail "$label" "$WHY"
    else pass "$label" "DOM: 3 visits recorded by, 3 visit sections"; fi
fi

label="dnstrail demo stops on SIGTERM"
if [ "$DEMO_UP" = 1 ]; then
    stop demo
    if [ "$STOP_STATUS" = 0 ]; then pass "$label" "exit 0"
    else fail "$label" "exit status $STOP_STATUS (killed: still running 5 s after SIGTERM)"; fi
else fail "$label" "the demo did not start"; fi

COMPLETED=1
