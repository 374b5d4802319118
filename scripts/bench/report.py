#!/usr/bin/env python3
"""Turn target/bench/results.json into BENCHMARKS.md and
target/bench/ratios.svg (a bar chart of our/peer ratios on a log scale).

The hand-written part of BENCHMARKS.md (what profiling found, what was
changed, what falls short and why) lives in scripts/bench/notes.md and is
copied in as it is, so that re-running the bench keeps it.

Usage: report.py [results.json] [BENCHMARKS.md] [chart.svg]
"""

import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "target" / "bench"


def fmt(value, unit):
    if unit in ("q/s", "req/s"):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def rows(results):
    """One row per (workload, peer), with the ratio and whether the ratio
    is the kind the issue sets a target for."""
    for w in results["workloads"]:
        for peer in w["peers"]:
            yield w, peer


def is_target(w):
    return "not a target" not in (w.get("note") or "") and w["id"] not in ("web-100k", "web-100k-p50",
                                                                          "web-index-p50")


def short(w, peer):
    names = {
        "resolver-cached": "resolver cached q/s",
        "resolver-mix": "resolver cached q/s, mix",
        "resolver-cached-2cores": "resolver cached q/s, 2 cores",
        "resolver-cached-latency": "resolver cached latency",
        "resolver-cold": "resolver cold, median",
        "resolver-flood-latency": "resolver cached p99, NXDOMAIN flood",
        "resolver-cold-p90": "resolver cold, p90",
        "nameserver-auth": "auth q/s",
        "nameserver-auth-mix": "auth q/s, mix",
        "nameserver-root": "root referral q/s",
        "nameserver-tld": "com. referral q/s",
        "zone-load": "1M-record zone, load",
        "zone-memory": "1M-record zone, peak RSS",
        "web-index": "web index req/s",
        "web-index-p50": "web index latency",
        "web-100k": "web 100 KB req/s",
        "web-100k-p50": "web 100 KB latency",
        "defaults-auth": "auth as README starts it",
        "defaults-resolver": "resolver as README starts it",
        "dnssec-auth": "signed auth DO=1 q/s",
        "dnssec-resolver-cached": "validating cached q/s",
        "dnssec-resolver-cold": "validating cold, median",
        "stack-first-answer": "stack to 1st answer",
        "stack-memory": "stack peak memory",
        "resolver-rss-full": "resolver RSS, cache full",
        "resolver-rss-flooded": "resolver RSS, flooded",
        "resolver-rss-flooded-twice": "resolver RSS, flooded twice",
    }
    if w["id"].endswith("-cpu"):
        base = names.get(w["id"][:-4], w["id"][:-4]).replace(" q/s", "")
        return f"{base} CPU/answer vs {peer['label']}"
    return f"{names.get(w['id'], w['id'])} vs {peer['label']}"


def chart(results, path):
    items = [(short(w, p), p["ratio"], w["higher_is_better"], p["meets_target"], is_target(w))
             for w, p in rows(results) if p.get("ratio")]
    bar_h, gap, left, width = 18, 6, 250, 420
    top = 50
    height = top + len(items) * (bar_h + gap) + 60
    lo, hi = -3.0, 3.0  # log2 of the ratio: 1/8x .. 8x

    def x(ratio):
        v = max(lo, min(hi, math.log2(ratio)))
        return left + (v - lo) / (hi - lo) * width

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">dnstrail / peer, medians '
        f'(log scale; 1.0 = level)</text>',
        f'<text x="10" y="38" fill="#555">throughput: right of 1 is ahead; latency, time and '
        f'memory: left of 1 is ahead. Green: target met; red: not; grey: no target.</text>',
    ]
    for tick in [0.125, 0.25, 0.5, 1, 2, 4, 8]:
        tx = x(tick)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" '
                   f'y2="{height - 45}" stroke="{"#000" if tick == 1 else "#ddd"}"/>')
        out.append(f'<text x="{tx:.1f}" y="{height - 30}" text-anchor="middle">{tick:g}×</text>')
    for i, (label, ratio, higher, met, target) in enumerate(items):
        y = top + i * (bar_h + gap)
        colour = ("#2e7d32" if met else "#c62828") if target else "#9e9e9e"
        x0, x1 = sorted([x(1), x(ratio)])
        arrow = "↑" if higher else "↓"
        out.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{label} {arrow}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar_h}" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{left + width + 6}" y="{y + 13}">{ratio:.2f}×</text>')
    out.append(f'<text x="10" y="{height - 10}" fill="#555">↑ higher is better, ↓ lower is '
               f'better. Source: target/bench/results.json</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def text_bar(ratio, higher):
    """A ratio as a bar of 1/8 blocks, 20 blocks = 2x, with a mark at 1x."""
    blocks = "▏▎▍▌▋▊▉█"
    n = min(ratio, 2.0) * 10
    bar = "█" * int(n) + (blocks[int((n - int(n)) * 8) - 1] if (n - int(n)) * 8 >= 1 else "")
    return bar


def markdown(results, notes):
    m, c = results["machine"], results["config"]
    v = m["versions"]
    L = []
    L.append("# Benchmarks: dnstrail beside Unbound, NSD, Knot DNS and nginx\n")
    L.append(
        f"Written by `make bench` (`scripts/bench.sh`) on {c['started']}, dnstrail "
        f"`{v['dnstrail']}`; the whole run took {c.get('elapsed_s', '?')} s. Raw figures: "
        "`target/bench/results.json`; chart of the ratios: `target/bench/ratios.svg`; "
        "server logs and configurations: `target/bench/`.\n"
    )
    L.append(
        f"Every figure is the **median of {c['rounds']} rounds**, the range (min–max) beside "
        f"it; in each round every contender got the same load for {c['secs']} s, ours and the "
        "peer alternating, the order rotating each round. *ours/peer* divides our median by "
        "the peer's: for throughput above 1.0 is ahead, for latency, time and memory below "
        "1.0 is ahead. The bench measures; it does not fail when a target is missed.\n"
    )
    L.append("## Results\n")
    L.append("| workload | metric | dnstrail | peer | peer's figure | ours/peer | target | |")
    L.append("|---|---|---:|---|---:|---:|---|---|")
    for w, p in rows(results):
        o = w["ours"]
        u = w["unit"]
        target = (("≥ " if w["higher_is_better"] else "≤ ") + f"{w['target_ratio']:g}") \
            if is_target(w) else "—"
        verdict = ("✅" if p["meets_target"] else "❌ short") if is_target(w) else ""
        L.append(
            f"| {w['title']} | {w['metric']} ({u}) | **{fmt(o['median'], u)}** "
            f"({fmt(o['min'], u)}–{fmt(o['max'], u)}) | {p['label']} | "
            f"{fmt(p['median'], u)} ({fmt(p['min'], u)}–{fmt(p['max'], u)}) | "
            f"**{p['ratio']:.2f}** | {target} | {verdict} |"
        )
    d = results.get("demo")
    if d:
        w_, r_ = d["wall_ms"], d["peak_rss_mb"]
        L.append("")
        L.append("| `dnstrail demo` (start everything, three visits, shut down) | median (range) "
                 "| target | |")
        L.append("|---|---:|---|---|")
        L.append(f"| wall time | **{w_['median']:.1f} ms** ({w_['min']:.1f}–{w_['max']:.1f}) "
                 f"| < {w_['target']} ms | {'✅' if w_['median'] < w_['target'] else '❌ short'} |")
        L.append(f"| peak memory (max RSS) | **{r_['median']:.1f} MB** "
                 f"({r_['min']:.1f}–{r_['max']:.1f}) | < {r_['target']} MB "
                 f"| {'✅' if r_['max'] < r_['target'] else '❌ short'} |")
    for w in results["workloads"]:
        if w.get("note") and "not a target" not in w["note"]:
            L.append(f"\n{w['title']}, every sample pooled: {w['note']}.")
    L.append("\n### The ratios at a glance\n")
    L.append("Bar length is ours/peer (20 blocks = 2.0×, the `|` marks 1.0×); ↑ higher is "
             "better, ↓ lower is better.\n")
    L.append("```text")
    width = max(len(short(w, p)) for w, p in rows(results)) + 2
    for w, p in rows(results):
        bar = text_bar(p["ratio"], w["higher_is_better"])
        bar = (bar[:10] + "|" + bar[10:]) if len(bar) > 10 else bar.ljust(10) + "|"
        arrow = "↑" if w["higher_is_better"] else "↓"
        mark = ("met" if p["meets_target"] else "SHORT") if is_target(w) else ""
        L.append(f"{short(w, p) + ' ' + arrow:<{width + 2}} {bar:<22} {p['ratio']:.2f}×  {mark}")
    L.append("```\n")

    L.append("## How it was measured\n")
    L.append(
        f"- Loopback only. Every server under test, ours and the peers, is one process pinned "
        f"to CPU {c['server_cpu']} with `taskset`; dnsperf and wrk run pinned to CPU "
        f"{c['client_cpu']}. The latency probes (a Python loop, standard library, one question "
        f"at a time) run on the server's CPU, as in the issue's reference figure.\n"
        f"- Throughput: dnsperf {v['dnsperf']}, {c['secs']} s per run, {c['dns_clients']} "
        f"client sockets, one thread, no EDNS (dnsperf's default). wrk, one thread, "
        f"{c['http_conns']} connections, keep-alive.\n"
        "- Our servers run with `RUST_LOG=warn`: the per-query and per-request info log line "
        "is a feature, but these benchmarks measure serving, not logging. The peers are quiet "
        "too: Unbound and NSD `verbosity: 0`, Knot logs warnings only, nginx `access_log off`.\n"
        "- Comparable answers: NSD `minimal-responses: yes` (Knot and ours send no extra "
        "records beside an authoritative answer); NSD `rrl-ratelimit: 0` (its default rate "
        "limit would drop most of the load). Unbound `qname-minimisation: no` as ours by "
        "default, `module-config: iterator`, `do-not-query-localhost: no`, one thread. Knot "
        "one UDP and one TCP worker, NSD one server process, nginx one worker, our tokio "
        "runtime one worker (it sizes itself to the CPUs it may run on).\n"
        f"- Resolvers: both walk the same name servers, ours (`dnstrail root`, `tld`, `auth`) "
        f"serving the demo zones on port 53 of {c['ns_net']}.2–7 (Unbound iterates on port "
        "53 only). Their addresses are moved from 127.0.0.2–7 to that /24 in copies of the "
        "zones (`target/bench/zones/`), so that the bench never meets a running demo; nothing "
        "else in the zones changes. Caches are warmed with every question first.\n"
        f"- Query mix: every (name, type) in the three demo zones, plus `blog.example.com A` "
        "(CNAME followed), `nope.example.com A` (NXDOMAIN) and `www.example.com AAAA` "
        "(NODATA), in a loop.\n"
        f"- Cold resolution: the cache emptied before each sample (ours: `POST /flush` on the "
        f"control endpoint; Unbound: `flush_zone .`, `flush_infra all`, `flush_requestlist` over "
        f"its control port), then `www.example.com A` timed from send to answer: "
        f"{c['cold_count']} samples per resolver per round; root, .com and an example.com "
        "server are asked each time. The flush is not timed.\n"
        "- 1M-record zone: `scripts/bench/bigzone.py` writes a zone of a million records shaped "
        "like a big hosted zone (A, some names with two; AAAA, TXT, MX, CNAME; every 50th host a "
        "delegation with two name servers and glue) to `target/bench/big.zone`; `dnstrail auth "
        "--zone`, NSD and Knot DNS (one process each, pinned as above) load it in turn. Load: "
        "launch to the first answer for the file's last name (asked every 20 ms). Memory: the "
        "peak RSS (`VmHWM`) of the largest process; NSD loads in its main process and forks "
        "its server from it, so its children are not added.\n"
        f"- Demo: `dnstrail demo --dns-port 0 --web-port 0`, {c['demo_runs']} runs, wall time "
        "from launch to exit and the process's peak RSS (`getrusage`). For scale, both stacks "
        "started from nothing to the first correct answer through the resolver: ours (four "
        "processes: root, tld, auth, resolver) and three NSD instances plus Unbound; memory is "
        "the sum of every process's peak RSS.\n"
    )
    la0, la1 = m["load_average_start"], m.get("load_average_end", ["?"] * 3)
    L.append("## Machine and versions\n")
    L.append(f"- {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['os']}, Linux "
             f"{m['kernel']}.")
    L.append(f"- Load average at start {la0[0]:.2f}, at end {la1[0]:.2f} (the machine is "
             "shared: other work running at the same time shows up as noise, which the "
             "alternating rounds spread over every contender alike).")
    L.append(f"- dnstrail `{v['dnstrail']}` (release build), {v['rustc']}, hickory-server "
             f"{v['hickory-server']}.")
    L.append(f"- {v['unbound']}; {v['nsd']}; {v['knot']}; dnsperf {v['dnsperf']}; {v['wrk']}; "
             f"{v['nginx']}; Python {v['python']}.\n")
    L.append("## Exact commands\n")
    L.append("Configuration files are written by `scripts/bench/bench.py` into "
             "`target/bench/<server>/`; `PORT`, `QUERIES` and `URL` stand for each run's.\n")
    L.append("```sh")
    for name, cmd in results["commands"].items():
        L.append(f"# {name}")
        L.append(cmd.replace(str(REPO) + "/", ""))
    L.append("```\n")
    if notes:
        L.append(notes.strip() + "\n")
    return "\n".join(L)


def main():
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT / "results.json"
    md = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "BENCHMARKS.md"
    svg = Path(sys.argv[3]) if len(sys.argv) > 3 else OUT / "ratios.svg"
    results = json.loads(src.read_text())
    notes_file = Path(__file__).resolve().parent / "notes.md"
    notes = notes_file.read_text() if notes_file.exists() else ""
    chart(results, svg)
    md.write_text(markdown(results, notes))
    print(f"wrote {md} and {svg}")


if __name__ == "__main__":
    main()
