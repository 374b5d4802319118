# Every question worth asking about the zones, derived from the zone data:
#
#   awk [-v kind=auth|cut] -f questions.awk target/interop/records.txt
#
# Output "ZONE QNAME QTYPE" lines. kind=auth (default): every authoritative
# RRset (name and type; not delegation NS records or glue), then for each
# name a type it does not have (NODATA), for each CNAME its target's A and
# AAAA through it, and one name that does not exist (NXDOMAIN) per zone.
# kind=cut: every delegation, as "PARENT CHILD NS".

function under(n, z,   L) {
    if (z == "." || n == z) return 1
    L = length(z)
    return length(n) > L + 1 && substr(n, length(n) - L) == "." z
}

{
    N++; O[N] = $1; R[N] = $2; T[N] = $4
    if (!($1 in seenzone)) { seenzone[$1] = 1; Z[++nz] = $1 }
    if ($4 == "NS" && $2 != $1) cut[$1 " " $2] = 1
}

function below_cut(z, n,   k, p) {
    for (k in cut) {
        split(k, p, " ")
        if (p[1] == z && under(n, p[2])) return 1
    }
    return 0
}

function dots(s) { return gsub(/\./, ".", s) }

END {
    if (kind == "") kind = "auth"
    # The hierarchy from the top: the root first, then .com, and so on.
    for (i = 2; i <= nz; i++)
        for (j = i; j > 1 && (dots(Z[j]) < dots(Z[j - 1]) || Z[j] == "."); j--) {
            t = Z[j]; Z[j] = Z[j - 1]; Z[j - 1] = t
        }
    for (zi = 1; zi <= nz; zi++) {
        z = Z[zi]
        if (kind == "cut") {
            for (i = 1; i <= N; i++)
                if (O[i] == z && T[i] == "NS" && R[i] != z && !((z " " R[i]) in done)) {
                    done[z " " R[i]] = 1; print z " " R[i] " NS"
                }
            continue
        }
        nn = 0
        for (i = 1; i <= N; i++) {
            if (O[i] != z || below_cut(z, R[i])) continue
            key = R[i] " " T[i]
            if (!(key in done)) { done[key] = 1; print z " " key }
            if (!(R[i] in isname)) { isname[R[i]] = 1; names[++nn] = R[i] }
            types[R[i] " " T[i]] = 1
        }
        for (k = 1; k <= nn; k++) {
            n = names[k]
            if ((n " CNAME") in types) {
                print z " " n " A"; print z " " n " AAAA"
                continue
            }
            split("AAAA TXT MX A", probe, " ")
            for (p = 1; p <= 4; p++)
                if (!((n " " probe[p]) in types)) { print z " " n " " probe[p]; break }
        }
        print z " interop-missing." (z == "." ? "" : z) " A"
    }
}
