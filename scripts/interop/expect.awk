# What a correct server must answer to one question, worked out from the zone
# files alone (RFC 1034 §4.3.2, RFC 2308 for negative answers).
#
#   awk -v qname=www.example.com. -v qtype=A [-v zone=example.com.] \
#       -f expect.awk target/interop/records.txt
#
# Input: records.txt, "ORIGIN NAME TTL TYPE RDATA" per record (records.awk).
# With zone=Z: the answer of an authoritative server for Z alone (referrals
# at delegations, AA set, CNAMEs followed only inside Z). Without: the
# answer a recursive resolver must end up with over the whole hierarchy.
#
# Output, in the normal form of dnsmsg.awk:
#   kind answer|cname|nodata|nxdomain|referral
#   rcode NOERROR|NXDOMAIN
#   aa 1|0                 (authoritative view only)
#   an|au|ad NAME TTL TYPE RDATA
# Negative answers carry the zone's SOA in the authority section with the
# TTL RFC 2308 §3 asks for: the smaller of the SOA's TTL and its MINIMUM.

function under(n, z,   L) {
    if (z == "." || n == z) return 1
    L = length(z)
    return length(n) > L + 1 && substr(n, length(n) - L) == "." z
}

# The deepest zone we have a file for that holds the name.
function zone_of(n,   i, best) {
    best = ""
    for (i = 1; i <= nz; i++)
        if (under(n, Z[i]) && length(Z[i]) > length(best)) best = Z[i]
    return best
}

# The delegation point in zone z at or above n (a non-apex NS owner), if any.
function cut_of(z, n,   i, best) {
    best = ""
    for (i = 1; i <= N; i++)
        if (O[i] == z && T[i] == "NS" && R[i] != z && under(n, R[i]) && length(R[i]) > length(best))
            best = R[i]
    return best
}

function emit(section, i) {
    print section " " R[i] " " TTL[i] " " T[i] " " D[i]
}

function has(z, n, t,   i) {
    for (i = 1; i <= N; i++)
        if (O[i] == z && R[i] == n && T[i] == t) return i
    return 0
}

# A name exists if it owns records or has descendants (empty non-terminal).
function exists(z, n,   i) {
    for (i = 1; i <= N; i++)
        if (O[i] == z && under(R[i], n)) return 1
    return 0
}

function soa(z,   i, f, k, ttl) {
    i = has(z, z, "SOA")
    if (!i) return
    k = split(D[i], f, " ")
    ttl = TTL[i] + 0
    if (f[7] + 0 < ttl) ttl = f[7] + 0
    print "au " R[i] " " ttl " SOA " D[i]
}

{
    N++
    O[N] = $1; R[N] = $2; TTL[N] = $3; T[N] = $4
    D[N] = $5
    for (j = 6; j <= NF; j++) D[N] = D[N] " " $j
    if (!(($1) in seen)) { seen[$1] = 1; Z[++nz] = $1 }
}

END {
    qname = tolower(qname); qtype = toupper(qtype)
    auth = (zone != "")
    z = auth ? zone : zone_of(qname)
    n = qname
    kind = ""
    out = ""
    for (step = 0; step < 8; step++) {
        d = cut_of(z, n)
        if (d != "") {
            if (step == 0 && auth) {
                print "kind referral"; print "rcode NOERROR"; print "aa 0"
                for (i = 1; i <= N; i++) if (O[i] == z && R[i] == d && T[i] == "NS") {
                    emit("au", i)
                    for (j = 1; j <= N; j++)
                        if (O[j] == z && R[j] == D[i] && (T[j] == "A" || T[j] == "AAAA")) glue[j] = 1
                }
                for (j = 1; j <= N; j++) if (j in glue) emit("ad", j)
                exit
            }
            break   # a CNAME led below a delegation: the answer stops there
        }
        if (has(z, n, qtype)) {
            if (kind == "") kind = "answer"
            rcode = "NOERROR"
            body = body "\n" rrset_text(z, n, qtype)
            break
        }
        c = (qtype != "CNAME") ? has(z, n, "CNAME") : 0
        if (c) {
            kind = "cname"
            body = body "\n" "an " R[c] " " TTL[c] " CNAME " D[c]
            n = D[c]
            if (auth) { if (!under(n, z)) { rcode = "NOERROR"; break } }
            else z = zone_of(n)
            if (z == "") { rcode = "NOERROR"; break }
            continue
        }
        if (kind == "") kind = exists(z, n) ? "nodata" : "nxdomain"
        rcode = exists(z, n) ? "NOERROR" : "NXDOMAIN"
        negative = z
        break
    }
    print "kind " kind
    print "rcode " rcode
    if (auth) print "aa 1"
    if (body != "") print substr(body, 2)
    if (negative != "") soa(negative)
}

function rrset_text(z, n, t,   i, s) {
    s = ""
    for (i = 1; i <= N; i++)
        if (O[i] == z && R[i] == n && T[i] == t)
            s = s (s == "" ? "" : "\n") "an " R[i] " " TTL[i] " " T[i] " " D[i]
    return s
}
