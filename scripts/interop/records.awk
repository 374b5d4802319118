# Normalise zone data to "ORIGIN NAME TTL TYPE RDATA" lines, one per record:
# names and (except in TXT) rdata lower case, fields joined by one space.
# Input: `named-compilezone -s full -o -` output (NAME TTL CLASS TYPE RDATA),
# or a root hints file (NAME TTL [CLASS] TYPE RDATA, ";" comments).
# Set -v origin=ZONE (with its trailing dot), and -v hints=1 for a hints file.
/^[ \t]*;/ || NF < 4 { next }
{
    if (hints) sub(/;.*/, "")   # hints files have comments, and no TXT
    name = tolower($1); ttl = $2; i = 3
    if (toupper($i) == "IN") i++
    type = toupper($i); i++
    rdata = $i
    for (i = i + 1; i <= NF; i++) rdata = rdata " " $i
    if (type != "TXT") rdata = tolower(rdata)
    print origin " " name " " ttl " " type " " rdata
}
