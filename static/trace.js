// Tells trace events as the story's numbered steps and draws them as
// sequence diagrams; on load, draws the demo's recorded visits.
//
// `dnstrail demo` publishes /trace.json:
//   {"visits": [{"label": "cold", "title": "…", "summary": "…", "ok": true,
//                "events": [Traced, …], "steps": [Line, …]}, …]}
// where each event is a dnstrail::trace::Traced: `seq`, `resolution`,
// `at_us`, an `event` tag and that event's fields. Plain `dnstrail web` has
// no trace, and the page keeps its note saying where the trace comes from.
// The live lab (live.js) draws the events it streams with the same functions.
//
// The steps are numbered as src/story.rs numbers them: 1 the user, 2 the
// browser asks its resolver, 3 the root, 4 a top-level domain, 5 a server of
// anything deeper, 6 its answer, 7 the resolver's answer, 8 and 9 the HTTP
// request and the page. A browser asks for A and AAAA at once; the first
// is told step by step, the other ("companion") in one line when it ends.
//
// Everything from the server is put on the page as text, never as markup.

// ---- who is who ----

// The columns of a diagram: a visit of the built-in browser has all six; a
// resolution some other client asked for (dig, a program, this browser)
// has the client in the first column and no web server.
const VISIT_PARTIES = ["browser", "resolver", "root", "tld", "auth", "web"];
const RESOLUTION_PARTIES = ["client", "resolver", "root", "tld", "auth"];
const COLOUR = { client: "browser" };

// What the stack is made of, learned from the events (and from the lab's
// list of name servers, when there is one), to name the columns: nothing
// about the demo's names or addresses is written here.
const cast = {
  zones: { root: new Set(), tld: new Set(), auth: new Set() },
  servers: { root: new Set(), tld: new Set(), auth: new Set() },
  resolver: new Set(),
  web: new Set(),
};

// The column of the servers of `zone`: the root, a top-level domain, or a
// domain below one (src/story.rs, step_for_zone).
export function zoneParty(zone) {
  const labels = String(zone || "").split(".").filter((l) => l !== "");
  if (labels.length === 0) return "root";
  return labels.length === 1 ? "tld" : "auth";
}

const ASK_STEP = { root: 3, tld: 4, auth: 5 };

const bare = (name) => String(name || "").replace(/\.$/, "");
// A zone as the story names it: "the root", "com.", "example.com.".
const zoneName = (zone) => (zone === "." ? "the root" : zone);
// The address of "127.0.0.5:5300", or of "[::1]:5300".
const hostPart = (addr) => String(addr || "").replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");

// Learn who serves what from one event.
export function learn(e) {
  switch (e.event) {
    case "upstream_query": {
      const party = zoneParty(e.zone);
      cast.zones[party].add(e.zone);
      if (e.server) cast.servers[party].add(bare(e.server.name));
      break;
    }
    case "browser_query":
      if (e.resolver) cast.resolver.add(e.resolver);
      break;
    case "http_request":
      if (e.addr) cast.web.add(e.addr);
      break;
    default:
  }
}

// Learn the name servers from the lab (GET /lab/servers).
export function learnServers(list) {
  for (const server of list) {
    for (const zone of server.zones || []) {
      const party = zoneParty(zone);
      cast.zones[party].add(zone);
      cast.servers[party].add(bare(server.name));
    }
  }
}

// A few names in the space of one: "ns-1.awsdns-01.com +3".
function few(set, none) {
  const list = [...set].sort();
  if (!list.length) return none;
  return list.length === 1 ? list[0] : `${list[0]} +${list.length - 1}`;
}

function zoneTitle(set, none) {
  const list = [...set].map((z) => (zoneParty(z) === "tld" ? `.${bare(z)}` : bare(z)));
  return list.length ? list.sort().join(" ") : none;
}

function partyLabel(key, trail) {
  switch (key) {
    case "browser": return { name: "Browser", sub: "dnstrail browse" };
    case "client": return { name: "Client", sub: trail.client || "dig, a program…" };
    case "resolver": return { name: "Resolver", sub: few(cast.resolver, "caching") };
    case "root": return { name: "Root", sub: few(cast.servers.root, "the root servers") };
    case "tld": return { name: zoneTitle(cast.zones.tld, "TLD"), sub: few(cast.servers.tld, "its servers") };
    case "auth": return { name: zoneTitle(cast.zones.auth, "Domain"), sub: few(cast.servers.auth, "its servers") };
    case "web": return { name: "Web server", sub: few(cast.web, "the site") };
    default: return { name: key, sub: "" };
  }
}

// ---- words, as src/story.rs writes them ----

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function code(text) {
  return el("code", "", text);
}

// A duration in microseconds (story::human_us).
export function duration(us) {
  if (typeof us !== "number") return "";
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1e3).toFixed(2)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

// A TTL in seconds, with its everyday name when it has one (story::human_ttl).
export function humanTtl(s) {
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (s >= 86400 && s % 86400 === 0) return `${s} s = ${plural(s / 86400, "day")}`;
  if (s >= 3600 && s % 3600 === 0) return `${s} s = ${s / 3600} h`;
  if (s >= 60 && s % 60 === 0) return `${s} s = ${s / 60} min`;
  return `${s} s`;
}

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
export const question = (q) => (q ? `${q.name} ${q.type}` : "?");
const record = (r) => `${r.name} ${r.ttl} ${r.type} ${r.data}`;

// An RRset as lines, a large one cut short: a diagram is no zone file.
// DNSSEC's own records (signatures, denials) are told in the chain-of-trust
// rows, not among the data.
const PROOF_TYPES = new Set(["RRSIG", "NSEC", "NSEC3"]);

function records(list) {
  const lines = (list || []).filter((r) => !PROOF_TYPES.has(r.type)).map(record);
  return lines.length > 4 ? [...lines.slice(0, 3), `… and ${lines.length - 3} more records`] : lines;
}

// What an answer said, briefly: the data, or the rcode (story::answer_text).
function answerText(rcode, records) {
  if (!records || !records.length) {
    return rcode === "NOERROR" ? "NODATA (no such record)" : rcode;
  }
  return records
    .filter((r) => !PROOF_TYPES.has(r.type))
    .map((r) => (r.type === "CNAME" ? `CNAME ${r.data}` : `${r.data} (TTL ${r.ttl})`))
    .join(", ");
}

// The steps a list of skipped zones saves: "steps 3 and 4".
function skippedSteps(zones) {
  const steps = zones.map((z) => ASK_STEP[zoneParty(z)]);
  return `step${steps.length === 1 ? "" : "s"} ${steps.join(" and ")}`;
}

// What a lab action did, in words (the story's notes for them).
export function actionText(e) {
  switch (e.event) {
    case "clock_advanced":
      return `the resolver's clock moves ${humanTtl(e.seconds)} forward (${
        humanTtl(e.skew_secs)} ahead of real time): every TTL runs down by that much`;
    case "cache_flushed":
      return "the resolver's cache is emptied";
    case "fault_set":
      return e.fault
        ? `${bare(e.server)} is set to fail: ${e.fault}`
        : `${bare(e.server)} is healed: it answers again`;
    case "zone_changed": {
      const change = [...(e.deleted || []).map((r) => `−${r.name} ${r.type} ${r.data}`),
        ...(e.added || []).map((r) => `+${r.name} ${r.ttl} ${r.type} ${r.data}`)];
      const how = e.by === "transfer" ? "transferred from its primary" : e.by === "update" ? "changed by a dynamic update" : "changed";
      return `zone ${bare(e.zone)} ${how}, serial ${e.serial}${change.length ? `: ${change.join(", ")}` : ""}`
        + ": its name servers answer the new data; resolvers keep what they cached until its TTL runs out";
    }
    default:
      return String(e.event);
  }
}

// ---- telling: events to rows ----

// The rows of one diagram. A row is an arrow between two parties (`from`,
// `to`) or a note by one (`at`), with its text, the story's step, and the
// parties it made unnecessary (`skip`). `visit` says the events are a
// visit of the built-in browser; `doing` is its step 1.
export function tell(events, { visit = false, doing } = {}) {
  const rows = [];
  if (doing) {
    rows.push({ event: events[0], kind: "visit_started", at: "browser", step: 1, what: [doing], meta: "you" });
  }
  const asker = visit ? "browser" : "client";
  const zoneOfServer = new Map();
  const resolutions = new Map();
  const questions = new Set();
  let primaryType = null;
  const state = (id) => {
    if (!resolutions.has(id)) {
      resolutions.set(id, {
        companion: false, asked: [], choosesFrom: 0, upstream: false,
        // The zones whose last server failed (by name) or truncated: the
        // next question to them is a retry.
        failed: new Map(), truncated: new Set(),
      });
    }
    return resolutions.get(id);
  };

  for (const e of events) {
    const r = state(e.resolution);
    const row = (fields) => rows.push({ event: e, kind: e.event, ...fields });
    switch (e.event) {
      case "browser_query":
        primaryType = (e.types || [])[0] || null;
        row({
          from: "browser", to: "resolver", step: 2,
          what: [`${e.host}? (${(e.types || []).join(" and ")})`],
          meta: `to the resolver at ${e.resolver}`,
        });
        break;
      case "browser_lookup":
        if (e.error) row({ at: "browser", failed: true, what: [`no address for ${e.host}`], meta: e.error });
        else {
          row({
            at: "browser",
            what: [`${e.host} → ${(e.addresses || []).join(" ") || "no address"}`],
            meta: `looked up in ${duration(e.elapsed_us)}`,
          });
        }
        break;
      case "question_received": {
        const key = `${e.client} ${question(e.question)}`;
        const retry = questions.has(key);
        questions.add(key);
        if (!visit) {
          row({
            from: "client", to: "resolver",
            what: [`${question(e.question)}?`],
            meta: `${String(e.transport || "").toUpperCase()} from ${e.client}`,
          });
        } else if (retry) {
          row({
            at: "resolver", retry: true,
            what: [`${question(e.question)} again`],
            meta: "the browser's stub resolver asks again: a retry, as stubs do when an answer is slow",
          });
        } else {
          r.companion = primaryType !== null && e.question && e.question.type !== primaryType;
        }
        break;
      }
      case "cache_miss":
        if (!r.companion) {
          row({ at: "resolver", what: [`${question(e.question)} is not in its cache`], meta: "cache miss" });
        }
        break;
      case "cache_answer_hit":
        if (!r.companion) {
          const left = e.records && e.records.length ? e.records[0].ttl : 0;
          row({
            at: "resolver", hit: true, skip: ["root", "tld", "auth"],
            what: records(e.records),
            meta: `cache hit (${left} s of TTL left): steps 3–6 skipped, no name server is asked`,
          });
        }
        break;
      case "cache_negative_hit":
        if (!r.companion) {
          row({
            at: "resolver", hit: true, skip: ["root", "tld", "auth"],
            what: [`${question(e.question)}: ${e.rcode === "NXDOMAIN" ? "NXDOMAIN" : "NODATA"}`],
            meta: `cache hit: a remembered “no” (${e.ttl} s left), no name server is asked`,
          });
        }
        break;
      case "cache_failure_hit":
        if (!r.companion) {
          row({
            at: "resolver", hit: true, failed: true,
            what: [`${question(e.question)} failed moments ago`],
            meta: `${e.reason}; remembered for ${e.ttl} s more, so no server is asked (RFC 9520)`,
          });
        }
        break;
      case "cache_delegation_hit": {
        r.choosesFrom = (e.servers || []).length;
        if (r.companion) break;
        const skipped = e.skipped || [];
        row({
          at: "resolver", hit: true, skip: skipped.map(zoneParty),
          what: [`the name servers of ${e.zone} are cached`],
          meta: `cache hit, ${e.ttl} s of the delegation's TTL left${
            skipped.length ? `: ${skippedSteps(skipped)} skipped` : ""}`,
        });
        break;
      }
      case "servers_held_down":
        if (!r.companion) {
          const names = (e.servers || []).map((s) => bare(s.name));
          row({
            at: "resolver", failed: true,
            what: [`${names.join(", ")} not asked`],
            meta: `failed moments ago; held down ${duration(e.for_ms * 1000)} more (RFC 9520)`,
          });
        }
        break;
      case "server_lame":
        if (!r.companion) {
          row({
            at: "resolver", failed: true,
            what: [`${bare(e.server && e.server.name)} is lame for ${zoneName(e.zone)}`],
            meta: `${e.reason}: not asked about it again for ${humanTtl(e.for_secs)}`,
          });
        }
        break;
      case "servers_skipped":
        if (!r.companion) {
          const names = (e.servers || []).map((s) => `${bare(s.name)} (${hostPart(s.addr)})`);
          row({ at: "resolver", what: [`does not ask ${names.join(", ")} for ${zoneName(e.zone)}`], meta: e.reason });
        }
        break;
      case "minimisation_abandoned":
        if (!r.companion) {
          row({
            at: "resolver",
            what: [`asks the full question instead of the shorter ${question(e.question)}`],
            meta: `no server of ${zoneName(e.zone)} answered it usefully (${e.reason}) (RFC 9156)`,
          });
        }
        break;
      case "out_of_bailiwick_glue":
        if (!r.companion) {
          const names = (e.servers || []).map((s) => `${bare(s.name)} at ${hostPart(s.addr)}`);
          row({
            at: "resolver",
            what: [`the name servers of ${e.zone} can only be found through each other`],
            meta: `as the only way in, it uses the addresses ${zoneName(e.from_zone)} sent for them from outside its own zone: ${names.join(", ")}`,
          });
        }
        break;
      case "delegation_updated":
        if (!r.companion) {
          row({
            at: "resolver",
            what: [`${e.zone} names its own servers: ${(e.servers || []).map(bare).join(" ")}`],
            meta: `not the referral's (${(e.parent_servers || []).map(bare).join(" ")}): the zone's own list replaces it (RFC 2181 §5.4.1) for ${humanTtl(e.ttl)}`,
          });
        }
        break;
      case "dname_followed":
        if (!r.companion) {
          row({
            at: "resolver", hit: e.cached,
            what: [`${e.name} becomes ${e.target}`],
            meta: `${e.owner} is renamed by a DNAME${e.cached ? " it has cached" : ""} (RFC 6672)`,
          });
        }
        break;
      case "records_ignored":
        if (!r.companion) {
          const list = e.records || [];
          row({
            at: "resolver",
            what: [`ignores ${plural(list.length, "record", "records")} from ${bare(e.server && e.server.name)}`],
            meta: `they answer nothing it asked: ${list.map((x) => `${x.name} ${x.type}`).join(", ")}`,
          });
        }
        break;
      case "responses_ignored":
        if (!r.companion) {
          const ig = e.ignored || {};
          const total = (ig.mismatched || 0) + (ig.wrong_case || 0) + (ig.wrong_cookie || 0) + (ig.missing_cookie || 0);
          const why = [
            [ig.wrong_case, "name in another case (0x20)"],
            [ig.wrong_cookie, "a cookie not its own"],
            [ig.missing_cookie, "no cookie"],
            [ig.mismatched, "another ID or question"],
          ].filter(([n]) => n > 0).map(([n, w]) => `${n} with ${w}`).join(", ");
          row({
            at: "resolver",
            what: [`ignores ${plural(total, "response", "responses")} as if from ${bare(e.server && e.server.name)}`],
            meta: `${why}: forged, or late`,
          });
        }
        break;
      case "foreign_soa_ignored":
        if (!r.companion) {
          row({
            at: "resolver",
            what: [`drops the SOA of ${e.soa && e.soa.name} from ${bare(e.server && e.server.name)}`],
            meta: `outside ${e.zone}: the ${e.nxdomain ? "NXDOMAIN" : "NODATA"} goes on without an SOA, uncached`,
          });
        }
        break;
      case "upstream_query": {
        const party = zoneParty(e.zone);
        r.upstream = true;
        if (e.server) {
          zoneOfServer.set(e.server.addr, e.zone);
          r.asked.push(bare(e.server.name));
        }
        if (r.companion) break;
        const step = ASK_STEP[party];
        const why = r.truncated.has(e.zone) ? "retry over TCP, after TC"
          : r.failed.has(e.zone) ? `retry, after ${r.failed.get(e.zone)} failed` : "";
        r.failed.delete(e.zone);
        r.truncated.delete(e.zone);
        const chosen = step === 5 && r.choosesFrom > 1 ? ` · chosen of ${r.choosesFrom}` : "";
        row({
          from: "resolver", to: party, step, retry: Boolean(why), server: e.server && e.server.name,
          what: [`${question(e.question)}?`],
          meta: `${why ? `${why} · ` : ""}${e.server ? `${bare(e.server.name)} ${e.server.addr}` : ""} · ${
            String(e.transport || "").toUpperCase()}${chosen}`,
        });
        break;
      }
      case "upstream_response": {
        const zone = zoneOfServer.get(e.server && e.server.addr);
        const party = zone !== undefined ? zoneParty(zone) : "auth";
        const response = e.response || {};
        if (response.kind === "referral") r.choosesFrom = (response.servers || []).length;
        if (response.kind === "timeout" || response.kind === "failure") {
          r.failed.set(zone, bare(e.server && e.server.name));
        }
        if (response.kind === "truncated") r.truncated.add(zone);
        if (r.companion) break;
        const rtt = duration(e.rtt_us);
        const base = { from: party, to: "resolver", reply: true, server: e.server && e.server.name, response: response.kind };
        switch (response.kind) {
          case "referral":
            row({
              ...base, step: ASK_STEP[party],
              what: [`ask ${response.zone}: ${(response.servers || []).map(bare).join(" ")}`],
              meta: `referral, ${plural(response.glue, "glue address", "glue addresses")} · ${rtt}`,
            });
            break;
          case "answer":
            row({
              ...base, step: 6, what: records(response.records),
              meta: `answers with authority · ${rtt}${e.nsid ? ` · nsid ${e.nsid}` : ""}`,
            });
            break;
          case "nx_domain":
            row({ ...base, what: ["NXDOMAIN: no such name"], meta: rtt });
            break;
          case "no_data":
            row({ ...base, what: ["NODATA: the name has no such record"], meta: rtt });
            break;
          case "truncated":
            row({ ...base, what: ["truncated (TC=1): too big for UDP"], meta: `asking again over TCP · ${rtt}` });
            break;
          case "failure":
            row({ ...base, failed: true, what: [`failed: ${response.reason}`], meta: rtt });
            break;
          case "timeout":
            row({ ...base, failed: true, what: ["no response (timeout)"], meta: `${bare(e.server && e.server.name)} did not answer` });
            break;
          default:
            row({ ...base, what: [String(response.kind)], meta: rtt });
        }
        break;
      }
      case "joined_in_flight":
        if (!r.companion) {
          row({
            at: "resolver",
            what: [`${question(e.question)} is already being resolved`],
            meta: `waiting for resolution ${e.resolution}'s answer`,
          });
        }
        break;
      case "dnssec_checked":
        // A link of the chain of trust (story::DnssecChecked): the anchor,
        // a DS, a DNSKEY, an answer's RRSIG, a denial; secure, insecure or
        // bogus, and the Extended DNS Error a bogus one gives.
        if (!r.companion) {
          const mark = e.security === "secure" ? "🔒" : e.security === "bogus" ? "✗" : "🔓";
          const link = {
            anchor: "DNSKEY against the trust anchor", dnskey: "DNSKEY against its DS",
            ds: "DS from the parent", rrset: "RRSIG", denial: "denial (NSEC)",
          }[e.step] || e.step;
          row({
            at: "resolver", failed: e.security === "bogus",
            what: [`${mark} chain of trust: ${e.name} ${e.type || ""} ⇒ ${e.security}`],
            meta: `${link} · ${e.detail}${e.ede !== undefined && e.ede !== null ? ` · EDE ${e.ede}` : ""}`,
          });
        }
        break;
      case "served_stale":
        if (!r.companion) {
          row({
            at: "resolver", hit: true,
            what: records(e.records),
            meta: `no server answered: serving the stale answer that expired ${e.expired_for} s ago (RFC 8767)`,
          });
        }
        break;
      case "cached":
        if (!r.companion) {
          const what = {
            answer: `${e.name} ${e.type || ""}`,
            delegation: `the name servers of ${e.name}`,
            negative: e.nxdomain ? `${e.name} (NXDOMAIN, every type)` : `${e.name} ${e.type || ""} (NODATA)`,
            failure: `the failure of ${e.name} ${e.type || ""} (RFC 9520)`,
          }[e.kind] || e.name;
          row({ at: "resolver", what: [what], meta: `cached for ${humanTtl(e.ttl)}` });
        }
        break;
      case "answer_returned": {
        const answer = answerText(e.rcode, e.records) + (e.authentic ? ", secure (AD)" : "");
        const why = e.failure ? ` (${e.ede !== undefined && e.ede !== null ? `EDE ${e.ede}: ` : ""}${e.failure})` : "";
        if (r.companion) {
          const asked = r.asked.length ? `asked ${r.asked.join(" → ")}` : "answered from its cache";
          row({
            at: "resolver", companion: true,
            what: [`meanwhile, ${question(e.question)}: ${asked} ⇒ ${answer}${why}`],
            meta: `the browser's other question, in one line · ${duration(e.elapsed_us)}`,
          });
          break;
        }
        const source = r.upstream
          ? `after ${plural(e.upstream_queries, "upstream query", "upstream queries")}`
          : e.rcode === "SERVFAIL" ? "without asking any server" : "from its cache";
        row({
          from: "resolver", to: asker, reply: true, step: 7, failed: e.rcode === "SERVFAIL",
          what: e.records && e.records.length ? records(e.records) : [`${answer}${why}`],
          meta: `${e.rcode}${e.authentic ? " · secure (AD)" : ""}${
            e.ede !== undefined && e.ede !== null ? ` · EDE ${e.ede}` : ""}, ${source} · ${duration(e.elapsed_us)}`,
        });
        break;
      }
      case "http_request": {
        let target = e.url;
        try { target = new URL(e.url).pathname; } catch (_) { /* keep as sent */ }
        row({ from: "browser", to: "web", step: 8, what: [`${e.method} ${target}`], meta: `Host: ${hostOf(e.url)} · to ${e.addr}` });
        break;
      }
      case "http_response":
        row({
          from: "web", to: "browser", reply: true, step: 9, failed: e.status !== 200,
          what: [`${e.status}${e.title ? ` “${e.title}”` : ""}`],
          meta: `${e.bytes} bytes · ${duration(e.elapsed_us)}`,
        });
        break;
      case "clock_advanced":
      case "cache_flushed":
      case "fault_set":
        row({ at: "resolver", what: [actionText(e)], meta: "from the lab" });
        break;
      case "zone_changed":
        row({ at: zoneParty(e.zone), what: [actionText(e)], meta: e.by === "lab" ? "from the lab" : `by ${e.by}` });
        break;
      case "visit_started":
      case "visit_ended":
        break;
      default:
        row({ at: "resolver", what: [String(e.event)], meta: "" });
    }
  }
  return rows;
}

export function hostOf(url) {
  try { return new URL(url).host; } catch (_) { return "?"; }
}

// In a few words: how many servers were asked, the cache's hits, how long.
export function summary(events) {
  const count = (kind) => events.filter((e) => e.event === kind).length;
  const asked = count("upstream_query");
  const hits = count("cache_answer_hit") + count("cache_negative_hit")
    + count("cache_delegation_hit") + count("cache_failure_hit");
  const timeouts = events.filter((e) => e.event === "upstream_response"
    && e.response && e.response.kind === "timeout").length;
  const parts = [];
  if (asked) parts.push(plural(asked, "upstream query", "upstream queries"));
  else if (hits) parts.push("no server asked: the resolver's cache answered");
  if (hits && asked) parts.push(plural(hits, "cache hit", "cache hits"));
  if (timeouts) parts.push(plural(timeouts, "timeout", "timeouts"));
  // In a visit, the answer to the question the browser asked first (its
  // A, not the AAAA beside it).
  const lookup = events.find((e) => e.event === "browser_query");
  const first = lookup && (lookup.types || [])[0];
  const answers = events.filter((e) => e.event === "answer_returned");
  const answer = answers.find((e) => !first || (e.question && e.question.type === first)) || answers[0];
  if (answer) parts.push(`answer in ${duration(answer.elapsed_us)}`);
  const page = events.find((e) => e.event === "http_response");
  if (page) parts.push(`page (${page.status}) in ${duration(page.elapsed_us)}`);
  return parts.join(" · ");
}

// ---- drawing: rows to a diagram ----

function lines(container, texts) {
  texts.forEach((text, i) => {
    if (i) container.append(el("br"));
    container.append(document.createTextNode(text));
  });
}

function headRow(parties, trail) {
  const row = el("li", "seq-row seq-head");
  row.setAttribute("aria-hidden", "true");
  parties.forEach((key, i) => {
    const label = partyLabel(key, trail);
    const cell = el("div", `party c-${COLOUR[key] || key}`, label.name);
    cell.style.gridColumn = String(i + 2);
    cell.append(el("small", "", label.sub));
    row.append(cell);
  });
  row.append(el("div", "t-head", "time"));
  return row;
}

function eventRow(d, n, parties, start, trail) {
  const index = Object.fromEntries(parties.map((p, i) => [p, i]));
  const name = (key) => partyLabel(key, trail).name;
  const colour = (key) => COLOUR[key] || key;
  const row = el("li", "seq-row");
  row.dataset.event = d.kind;
  if (d.event) row.dataset.resolution = String(d.event.resolution);
  if (d.step) row.dataset.step = String(d.step);
  if (d.server) row.dataset.server = d.server;
  if (d.response) row.dataset.response = d.response;
  if (d.retry) row.classList.add("retry");
  if (d.companion) row.classList.add("companion");
  row.append(el("span", "n", String(n)));

  const skipped = new Set(d.skip || []);
  parties.forEach((p, i) => {
    const life = el("span", `life c-${colour(p)}${skipped.has(p) ? " skipped" : ""}`);
    life.style.gridColumn = String(i + 2);
    life.setAttribute("aria-hidden", "true");
    row.append(life);
  });

  if (d.at) {
    // A note, centred on its party's lifeline, with room on both sides.
    const k = index[d.at] ?? 1;
    const classes = ["note", `c-${colour(d.at)}`];
    if (d.hit) classes.push("hit");
    if (d.failed) classes.push("failed");
    const note = el("div", classes.join(" "));
    const first = Math.max(k - 1, 0);
    const last = Math.min(k + 1, parties.length - 1);
    note.style.setProperty("--from", String(first + 2));
    note.style.setProperty("--to", String(last + 3));
    if (k === 0) note.style.justifySelf = "start";
    if (skipped.size) note.style.maxWidth = "50%";
    note.append(el("span", "sr-only", `${name(d.at)}: `));
    const what = el("div", "what");
    if (d.step) what.append(stepBadge(d.step));
    lines(what, d.what);
    note.append(what);
    if (d.meta) note.append(el("div", "meta", d.meta));
    row.append(note);
  } else {
    const a = index[d.from] ?? 0;
    const b = index[d.to] ?? 1;
    const classes = ["msg", `c-${colour(d.from)}`, b > a ? "rightward" : "leftward"];
    if (d.reply) classes.push("reply");
    if (d.failed) classes.push("failed");
    const msg = el("div", classes.join(" "));
    msg.style.setProperty("--from", String(Math.min(a, b) + 2));
    msg.style.setProperty("--to", String(Math.max(a, b) + 3));
    msg.style.setProperty("--span", String(Math.abs(a - b) + 1));
    const label = el("div", "label");
    label.append(el("span", "sr-only", `${name(d.from)} to ${name(d.to)}: `));
    const what = el("span", "what");
    if (d.step) what.append(stepBadge(d.step));
    lines(what, d.what);
    label.append(what);
    if (d.meta) label.append(el("span", "meta", d.meta));
    msg.append(label);
    row.append(msg);
  }

  const at = d.event ? d.event.at_us - start : 0;
  const time = el("span", "t", `+${duration(at)}`);
  time.title = `${duration(at)} after the first event of this diagram`;
  row.append(time);
  return row;
}

function stepBadge(step) {
  const badge = el("span", "step", String(step));
  badge.title = `step ${step} of the story`;
  return badge;
}

// A trail: `{kind: "visit" | "resolution", events, doing?, client?}`,
// drawn as one sequence diagram in its scroller.
export function diagram(trail, label) {
  const visit = trail.kind === "visit";
  const parties = visit ? VISIT_PARTIES : RESOLUTION_PARTIES;
  const events = trail.events;
  const rows = tell(events, { visit, doing: trail.doing });
  const scroll = el("div", "seq-scroll");
  const seq = el("ol", "seq");
  seq.style.setProperty("--parties", String(parties.length));
  seq.setAttribute("aria-label", `${label}: ${plural(rows.length, "row", "rows")}`);
  seq.append(headRow(parties, trail));
  const start = events.length ? events[0].at_us : 0;
  rows.forEach((d, i) => seq.append(eventRow(d, i + 1, parties, start, trail)));
  scroll.append(seq);
  return scroll;
}

export function legend() {
  const list = el("ul", "legend");
  const item = (swatch, text) => {
    const li = el("li");
    li.append(el("span", `swatch ${swatch}`), document.createTextNode(text));
    return li;
  };
  list.append(
    item("", "a question"),
    item("reply", "its answer"),
    item("failed", "no answer, or a failure"),
    item("skip", "a server not asked, thanks to the cache"),
  );
  return list;
}

// ---- the demo's recorded visits ----

function visitSection(visit, index) {
  const events = Array.isArray(visit.events) ? visit.events : [];
  events.forEach(learn);
  const section = el("section", "visit");
  const heading = el("h3");
  heading.append(el("span", "chip", visit.label || `visit ${index + 1}`));
  heading.append(document.createTextNode(visit.title || ""));
  section.append(heading);
  const text = summary(events);
  if (text) section.append(el("p", "summary", text));
  if (visit.summary) {
    section.append(el("p", `verdict ${visit.ok === false ? "failed" : "ok"}`, `→ ${visit.summary}`));
  }
  // Step 1 is what the user did: the first of the visit's story lines.
  const first = (visit.steps || []).find((line) => line.number === 1);
  const trail = { kind: "visit", events, doing: first && first.text };
  section.append(diagram(trail, visit.label || "visit"));
  return section;
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

// Settles once the recorded visits are drawn (or found missing), so that
// whatever comes after them on the page knows where it stands.
export const recorded = main();
