// Draws the demo's trace as one sequence diagram per visit.
//
// `dnstrail demo` publishes /trace.json:
//   {"visits": [{"label": "cold", "title": "…", "events": [Traced, …]}, …]}
// where each event is a dnstrail::trace::Traced: `resolution`, `at_us`, an
// `event` tag and that event's fields. Plain `dnstrail web` has no trace, and
// the page keeps its note saying where the trace comes from.
//
// Everything from the document is put on the page as text, never as markup.
"use strict";

(() => {
  const PARTIES = [
    { key: "browser", name: "Browser", sub: "dnstrail browse" },
    { key: "resolver", name: "Resolver", sub: "127.0.0.1" },
    { key: "root", name: "Root", sub: "a.root-servers.net" },
    { key: "tld", name: ".com", sub: "a.gtld-servers.net" },
    { key: "auth", name: "example.com", sub: "ns-1…4.awsdns" },
    { key: "web", name: "Web server", sub: "127.0.0.44" },
  ];
  const INDEX = Object.fromEntries(PARTIES.map((p, i) => [p.key, i]));
  const NAME = Object.fromEntries(PARTIES.map((p) => [p.key, p.name]));
  // The story's step numbers, for the servers the resolver asks.
  const ASK_STEP = { root: 3, tld: 4, auth: 5 };
  const ANSWER_STEP = { root: 3, tld: 4, auth: 6 };
  // What each kind of cache entry saves next time.
  const KEPT = {
    answer: "the answer itself",
    delegation: "where to ask next time",
    negative: "the “no such thing”",
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function code(text) {
    return el("code", "", text);
  }

  // ---- formatting ----

  function duration(us) {
    if (typeof us !== "number") return "";
    if (us < 1000) return `${us} µs`;
    if (us < 1e6) return `${(us / 1000).toFixed(us < 10000 ? 2 : 1)} ms`;
    return `${(us / 1e6).toFixed(2)} s`;
  }

  function ttl(seconds) {
    const units = [[86400, "day"], [3600, "hour"], [60, "minute"]];
    for (const [size, unit] of units) {
      if (seconds >= size) {
        const n = +(seconds / size).toFixed(1);
        return `${seconds} s (${n} ${unit}${n === 1 ? "" : "s"})`;
      }
    }
    return `${seconds} s`;
  }

  const question = (q) => (q ? `${q.name} ${q.type}` : "?");
  const record = (r) => `${r.name} ${r.ttl} ${r.type} ${r.data}`;

  // ---- who is who ----

  // The column of the server holding `zone`: the root, a top-level domain,
  // or a domain below it.
  function zoneParty(zone) {
    const name = String(zone || "").replace(/\.$/, "");
    if (name === "") return "root";
    return name.includes(".") ? "auth" : "tld";
  }

  function serverParty(name) {
    if (/root-servers/.test(name)) return "root";
    if (/gtld-servers/.test(name)) return "tld";
    return "auth";
  }

  // A response names its server but not its zone: find the column its
  // question went to.
  function askedParty(server, seen) {
    const key = server && server.addr;
    if (key && seen.has(key)) return seen.get(key);
    return serverParty((server && server.name) || "");
  }

  // ---- one event ----

  // What a row shows: an arrow between two parties (`from`, `to`) or a
  // note by one (`at`), the text, and the parties it made unnecessary.
  function describe(e, seen) {
    switch (e.event) {
      case "question_received":
        return {
          from: "browser", to: "resolver", step: 2,
          what: [`${question(e.question)}?`],
          meta: `${e.transport ? e.transport.toUpperCase() : ""} from ${e.client}`,
        };
      case "cache_miss":
        return {
          at: "resolver",
          what: [`no answer cached for ${question(e.question)}`],
          meta: "cache miss: the closest known name servers will be asked",
        };
      case "cache_answer_hit":
        return {
          at: "resolver", hit: true, skip: ["root", "tld", "auth"],
          what: (e.records || []).map(record),
          meta: "cache hit: the answer itself, no server asked",
        };
      case "cache_negative_hit":
        return {
          at: "resolver", hit: true, skip: ["root", "tld", "auth"],
          what: [`${e.rcode} for ${question(e.question)}`],
          meta: `cache hit: remembered “no”, ${ttl(e.ttl)} left`,
        };
      case "cache_delegation_hit": {
        const skip = (e.skipped || []).map((s) =>
          /servers/.test(s) ? serverParty(s) : zoneParty(s));
        return {
          at: "resolver", hit: true, skip,
          what: [`${e.zone} NS ${(e.servers || []).join(" ")}`],
          meta: `cache hit: ${e.zone} servers known, ${ttl(e.ttl)} left`,
        };
      }
      case "upstream_query": {
        const party = zoneParty(e.zone);
        if (e.server && e.server.addr) seen.set(e.server.addr, party);
        return {
          from: "resolver", to: party, step: ASK_STEP[party],
          what: [`${question(e.question)}?`],
          meta: `${e.server ? `${e.server.name} ${e.server.addr}` : ""} · ${
            e.transport ? e.transport.toUpperCase() : ""}`,
        };
      }
      case "upstream_response": {
        const party = askedParty(e.server, seen);
        const r = e.response || {};
        const rtt = `RTT ${duration(e.rtt_us)}`;
        const row = { from: party, to: "resolver", reply: true, step: ANSWER_STEP[party] };
        switch (r.kind) {
          case "referral":
            return {
              ...row,
              what: [`ask ${r.zone}: ${(r.servers || []).join(" ")}`],
              meta: `referral, ${r.glue} glue address${r.glue === 1 ? "" : "es"} · ${rtt}`,
            };
          case "answer":
            return {
              ...row,
              what: (r.records || []).map(record),
              meta: `answer · ${rtt}`,
            };
          case "nx_domain":
            return { ...row, what: ["NXDOMAIN: no such name"], meta: rtt };
          case "no_data":
            return { ...row, what: ["NODATA: the name has no such record"], meta: rtt };
          case "truncated":
            return { ...row, what: ["truncated (TC): too big for UDP"], meta: `retry over TCP · ${rtt}` };
          case "failure":
            return { ...row, failed: true, what: [`failed: ${r.reason}`], meta: rtt };
          case "timeout":
            return { ...row, failed: true, what: ["no answer"], meta: "timed out" };
          default:
            return { ...row, what: [String(r.kind)], meta: rtt };
        }
      }
      case "cached":
        return {
          at: "resolver",
          what: [`${e.name}${e.type ? ` ${e.type}` : ""}`],
          meta: `cached for ${ttl(e.ttl)}: ${KEPT[e.kind] || e.kind}`,
        };
      case "answer_returned":
        return {
          from: "resolver", to: "browser", reply: true, step: 7,
          what: e.records && e.records.length
            ? e.records.map(record) : [`${e.rcode}: no records`],
          meta: `${e.rcode} · ${e.upstream_queries} server${
            e.upstream_queries === 1 ? "" : "s"} asked · ${duration(e.elapsed_us)}`,
        };
      case "browser_lookup":
        return {
          at: "browser",
          what: [`${e.host} → ${(e.addresses || []).join(" ") || "no address"}`],
          meta: `looked up via ${e.resolver} in ${duration(e.elapsed_us)}`,
        };
      case "http_request": {
        let target = e.url;
        try { target = new URL(e.url).pathname; } catch (_) { /* keep as sent */ }
        return {
          from: "browser", to: "web", step: 8,
          what: [`${e.method} ${target}`],
          meta: `Host: ${hostOf(e.url)} · to ${e.addr}`,
        };
      }
      case "http_response":
        return {
          from: "web", to: "browser", reply: true, step: 9,
          what: [`${e.status}${e.title ? ` “${e.title}”` : ""}`],
          meta: `${e.bytes} bytes · ${duration(e.elapsed_us)}`,
        };
      default:
        return { at: "resolver", what: [String(e.event)], meta: "" };
    }
  }

  function hostOf(url) {
    try { return new URL(url).host; } catch (_) { return "?"; }
  }

  // ---- drawing ----

  function lines(container, texts) {
    texts.forEach((text, i) => {
      if (i) container.append(el("br"));
      container.append(document.createTextNode(text));
    });
  }

  function headRow() {
    const row = el("li", "seq-row seq-head");
    row.setAttribute("aria-hidden", "true");
    PARTIES.forEach((p, i) => {
      const cell = el("div", `party c-${p.key}`, p.name);
      cell.style.gridColumn = String(i + 2);
      cell.append(el("small", "", p.sub));
      row.append(cell);
    });
    row.append(el("div", "t-head", "time"));
    return row;
  }

  function eventRow(t, n, seen) {
    const d = describe(t, seen);
    const row = el("li", "seq-row");
    row.append(el("span", "n", String(n)));

    const skipped = new Set(d.skip || []);
    PARTIES.forEach((p, i) => {
      const life = el("span", `life c-${p.key}${skipped.has(p.key) ? " skipped" : ""}`);
      life.style.gridColumn = String(i + 2);
      life.setAttribute("aria-hidden", "true");
      row.append(life);
    });

    if (d.at) {
      // A note, centred on its party's lifeline, with room on both sides.
      const k = INDEX[d.at];
      const note = el("div", `note c-${d.at}${d.hit ? " hit" : ""}`);
      const first = Math.max(k - 1, 0);
      const last = Math.min(k + 1, PARTIES.length - 1);
      note.style.setProperty("--from", String(first + 2));
      note.style.setProperty("--to", String(last + 3));
      if (k === 0) note.style.justifySelf = "start";
      if (skipped.size) note.style.maxWidth = "50%";
      note.append(el("span", "sr-only", `${NAME[d.at]}: `));
      const what = el("div", "what");
      lines(what, d.what);
      note.append(what);
      if (d.meta) note.append(el("div", "meta", d.meta));
      row.append(note);
    } else {
      const a = INDEX[d.from];
      const b = INDEX[d.to];
      const classes = ["msg", `c-${d.from}`, b > a ? "rightward" : "leftward"];
      if (d.reply) classes.push("reply");
      if (d.failed) classes.push("failed");
      const msg = el("div", classes.join(" "));
      msg.style.setProperty("--from", String(Math.min(a, b) + 2));
      msg.style.setProperty("--to", String(Math.max(a, b) + 3));
      msg.style.setProperty("--span", String(Math.abs(a - b) + 1));
      const label = el("div", "label");
      label.append(el("span", "sr-only", `${NAME[d.from]} to ${NAME[d.to]}: `));
      const what = el("span", "what");
      if (d.step) {
        const step = el("span", "step", String(d.step));
        step.title = `step ${d.step} of the story`;
        what.append(step);
      }
      lines(what, d.what);
      label.append(what);
      if (d.meta) label.append(el("span", "meta", d.meta));
      msg.append(label);
      row.append(msg);
    }

    const time = el("span", "t", `+${duration(t.at_us)}`);
    time.title = `${duration(t.at_us)} after resolution ${t.resolution} began`;
    row.append(time);
    return row;
  }

  function summary(events) {
    const count = (kind) => events.filter((e) => e.event === kind).length;
    const asked = count("upstream_query");
    const hits = count("cache_answer_hit") + count("cache_negative_hit")
      + count("cache_delegation_hit");
    const parts = [];
    if (asked) parts.push(`${asked} server${asked === 1 ? "" : "s"} asked`);
    else if (hits) parts.push("no server asked: the resolver's cache answered");
    if (hits && asked) parts.push(`${hits} cache hit${hits === 1 ? "" : "s"}`);
    const answer = events.find((e) => e.event === "answer_returned");
    if (answer) parts.push(`address in ${duration(answer.elapsed_us)}`);
    const page = events.find((e) => e.event === "http_response");
    if (page) parts.push(`page (${page.status}) in ${duration(page.elapsed_us)}`);
    return parts.join(" · ");
  }

  function visitSection(visit, index) {
    const events = Array.isArray(visit.events) ? visit.events : [];
    const section = el("section", "visit");
    const heading = el("h3");
    heading.append(el("span", "chip", visit.label || `visit ${index + 1}`));
    heading.append(document.createTextNode(visit.title || ""));
    section.append(heading);
    const text = summary(events);
    if (text) section.append(el("p", "summary", text));

    const scroll = el("div", "seq-scroll");
    const seq = el("ol", "seq");
    seq.setAttribute("aria-label", `${visit.label || "visit"}: ${events.length} events`);
    seq.append(headRow());
    const seen = new Map();
    events.forEach((t, i) => seq.append(eventRow(t, i + 1, seen)));
    scroll.append(seq);
    section.append(scroll);
    return section;
  }

  function legend() {
    const list = el("ul", "legend");
    const item = (swatch, text) => {
      const li = el("li");
      li.append(el("span", `swatch ${swatch}`), document.createTextNode(text));
      return li;
    };
    list.append(
      item("", "a question"),
      item("reply", "its answer"),
      item("skip", "a server not asked, thanks to the cache"),
    );
    return list;
  }

  function showMissing(status) {
    status.classList.add("missing");
    status.replaceChildren(
      "No trace here yet: this server was started on its own (",
      code("dnstrail web"),
      "). Run ",
      code("dnstrail demo"),
      " and open the page it serves: each of its visits then appears here as "
        + "a numbered sequence diagram, with round-trip times, TTLs, and the "
        + "steps the cache skipped.",
    );
  }

  async function main() {
    const status = document.getElementById("trace-status");
    const visits = document.getElementById("visits");
    if (!status || !visits) return;
    let doc;
    try {
      const response = await fetch("/trace.json", { cache: "no-store" });
      if (response.status === 404) {
        showMissing(status);
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      doc = await response.json();
    } catch (error) {
      status.textContent = `The trace could not be loaded (${error.message}).`;
      return;
    }
    const list = Array.isArray(doc && doc.visits) ? doc.visits : [];
    if (!list.length) {
      status.textContent = "The demo has not recorded any visit yet. Reload in a moment.";
      return;
    }
    status.replaceChildren(
      `${list.length} visit${list.length === 1 ? "" : "s"} recorded by `,
      code("dnstrail demo"),
      ", in order. Each row is one event: who asked whom, what, and what "
        + "came back; the small coloured numbers are the steps above.",
    );
    status.after(legend());
    visits.replaceChildren(...list.map(visitSection));
  }

  main();
})();
