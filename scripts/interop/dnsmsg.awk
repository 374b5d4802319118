# Turn the text output of one dig or kdig query into a normal form that
# scripts/interop.sh compares line by line:
#
#   rcode NOERROR            status of the last response shown (NONE: no answer)
#   flags qr aa tc           header flags, in the order printed
#   edns 1232                OPT record in the response: its UDP size (or "none")
#   size 486                 message size as dig reports it (dig only)
#   transport UDP|TCP        how the shown response came
#   retried                  dig fell back to TCP after a truncated UDP answer
#   warning <text>           anything dig or kdig warned about the message
#   an|au|ad NAME TTL TYPE RDATA   one record of a section; names lower case,
#                            fields separated by one space
#
# Works with mawk (Debian's default awk): no gawk extensions.

function flush_records(   i) {
    n = 0
}

BEGIN {
    rcode = "NONE"; flags = ""; edns = "none"; size = ""; transport = ""
    retried = 0; nwarn = 0; n = 0; sec = ""
}

# A new response starts: forget what an earlier one (if any) said.
/->>HEADER<<-/ {
    s = $0
    sub(/.*status: */, "", s)
    sub(/[,;].*/, "", s)
    rcode = s
    flags = ""; edns = "none"; flush_records()
    next
}

/^;; [Ff]lags:/ {
    s = $0
    sub(/^;; [Ff]lags: */, "", s)
    sub(/;.*/, "", s)
    gsub(/  +/, " ", s)
    sub(/ +$/, "", s)
    flags = s
    if (index($0, "WARNING") > 0) {
        w = $0; sub(/.*WARNING: */, "", w); warn[++nwarn] = w
    }
    next
}

# dig: "; EDNS: version: 0, flags:; udp: 1232"
/^; EDNS: version/ {
    s = $0
    sub(/.*udp: */, "", s)
    sub(/[^0-9].*/, "", s)
    edns = s
    next
}

# kdig: ";; Version: 0; flags: ; UDP size: 1232 B; ext-rcode: NOERROR"
/^;; Version: [0-9]+; flags:/ {
    s = $0
    sub(/.*UDP size: */, "", s)
    sub(/[^0-9].*/, "", s)
    edns = s
    next
}

/WARNING/ || /malformed/ || /[Ee]xtra bytes/ {
    w = $0
    sub(/^;+ */, "", w)
    sub(/^WARNING: */, "", w)
    warn[++nwarn] = w
    next
}

/^;; Truncated, retrying in TCP mode/ { retried = 1; next }

# dig: ";; MSG SIZE  rcvd: 486"
/^;; MSG SIZE/ { s = $0; sub(/.*rcvd: */, "", s); size = s; next }

# dig: ";; SERVER: 127.0.0.4#53(127.0.0.4) (TCP)"
/^;; SERVER:/ {
    s = $0
    if (match(s, /\((UDP|TCP)\)/)) transport = substr(s, RSTART + 1, RLENGTH - 2)
    next
}

# kdig: ";; From 127.0.0.9@53(UDP) in 0.3 ms"
/^;; From / {
    s = $0
    if (match(s, /\((UDP|TCP)\)/)) transport = substr(s, RSTART + 1, RLENGTH - 2)
    next
}

/^;; ANSWER SECTION:/     { sec = "an"; next }
/^;; AUTHORITY SECTION:/  { sec = "au"; next }
/^;; ADDITIONAL SECTION:/ { sec = "ad"; next }
/^;; [A-Z]+ (PSEUDO)?SECTION:/ { sec = ""; next }
/^[ \t]*$/ { sec = ""; next }
/^;/ { next }

sec != "" && NF >= 5 {
    name = tolower($1)
    ttl = $2
    # dig and kdig both print the class; skip it.
    type = toupper($4)
    rdata = $5
    for (i = 6; i <= NF; i++) rdata = rdata " " $i
    if (type != "TXT") rdata = tolower(rdata)
    rec[++n] = sec " " name " " ttl " " type " " rdata
}

END {
    print "rcode " rcode
    print "flags " flags
    print "edns " edns
    if (size != "") print "size " size
    if (transport != "") print "transport " transport
    if (retried) print "retried"
    for (i = 1; i <= nwarn; i++) print "warning " warn[i]
    for (i = 1; i <= n; i++) print rec[i]
}
