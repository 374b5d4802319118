// The live lab: the stack that serves this page, watched and steered from it.
//
// `dnstrail demo` serves its control endpoint on the page's own origin,
// under /lab/ (src/control.rs):
//
//   GET  /lab/servers                 the name servers (also: is there a lab?)
//   GET  /lab/events?since=SEQ        every trace event as it happens (SSE)
//   GET  /lab/cache?limit=N           the resolver's cache, TTLs left
//   GET  /lab/zones                   each hosted zone's serial on each server
//   GET  /lab/zones/APEX/compare?name=&type=   name servers vs the resolver's cache
//   POST /lab/visit?url=URL | ?ask=NAME/TYPE, /lab/advance?seconds=N,
//        /lab/flush, /lab/servers/NAME/fault?kind=KIND, /lab/servers/NAME/heal,
//        /lab/zones/APEX/records?op=&name=&type=&ttl=&data=
//
//  events ──► trails (one per visit, per resolution, per action) ──► diagrams,
//             newest first, drawn by trace.js as the story tells them
//
// Elsewhere (plain `dnstrail web`, a copy of the files) /lab/ answers 404,
// and the page says the lab is not connected; the story and the recorded
// visits do not need it. The stream opens only once the lab is on screen: a
// page read from the top costs the stack nothing, and a headless browser
// dumping the page (--dump-dom) is not held open by it. Nothing is lost by
// waiting: the stream starts from the oldest event the stack remembers.
import { el, code, learn, learnServers, diagram, summary, actionText, humanTtl, legend, plural, recorded }
  from "/trace.js";

const lab = document.getElementById("lab");
// Diagrams kept on the page; older ones are let go.
const MAX_TRAILS = 40;
// Cache entries shown at once (the endpoint pages the rest).
const CACHE_LIMIT = 200;

const $ = (id) => document.getElementById(id);

function setState(state, ...message) {
  lab.dataset.state = state;
  $("lab-status").replaceChildren(...message);
}

// ---- talking to the stack ----

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// A state change: a POST from this page, which the browser sends with the
// page's own Origin (the endpoint refuses other sites' pages).
async function post(path) {
  const response = await fetch(path, { method: "POST" });
  const text = await response.text();
  if (!response.ok) throw new Error(text.trim() || `HTTP ${response.status}`);
  return text ? JSON.parse(text) : {};
}

function said(text, failed = false) {
  const result = $("control-result");
  result.textContent = text;
  result.classList.toggle("error", failed);
}

// Run a control's request, and say what came of it.
async function act(request, success) {
  try {
    said(success(await request()));
  } catch (error) {
    said(`Refused: ${error.message}`, true);
  }
}

// ---- trails: the events, grouped into what a reader follows ----

const trails = {
  list: [], // newest first
  byResolution: new Map(),
  byVisit: new Map(),
  open: [], // visits started and not yet ended
  stray: null, // browser events whose visit was not seen
  dirty: new Set(),
  scheduled: false,
};

const bare = (name) => String(name || "").replace(/\.$/, "").toLowerCase();

// The name a visit looks up: its URL's host, or the name it asks about
// ("blog.example.com. AAAA").
function visitHost(target) {
  try { return bare(new URL(target).hostname); } catch (_) { return bare(String(target).split(" ")[0]); }
}

// The open visit a browser event or a question belongs to: the newest that
// looks `host` up (or the newest, when the event names no host).
function openVisit(host) {
  const open = [...trails.open].reverse();
  return (host ? open.find((v) => v.host === host) : open[0]) || null;
}

function newTrail(fields) {
  const trail = { events: [], node: el("article", `trail ${fields.kind}`), ...fields };
  trail.node.dataset.kind = fields.kind;
  if (fields.visit !== undefined) trail.node.dataset.visit = String(fields.visit);
  if (fields.resolution !== undefined) trail.node.dataset.resolution = String(fields.resolution);
  trails.list.unshift(trail);
  $("live").prepend(trail.node);
  while (trails.list.length > MAX_TRAILS) forget(trails.list.pop());
  return trail;
}

function forget(trail) {
  trail.node.remove();
  trails.dirty.delete(trail);
  trails.open = trails.open.filter((v) => v !== trail);
  for (const [id, t] of trails.byResolution) if (t === trail) trails.byResolution.delete(id);
  if (trail.visit !== undefined) trails.byVisit.delete(trail.visit);
}

// Where an event goes: a visit of the built-in browser (its own events and
// the resolutions of the name it looks up), a resolution someone else asked
// for, or a lab action of its own.
function route(e) {
  switch (e.event) {
    case "visit_started": {
      const trail = newTrail({
        kind: "visit", visit: e.visit, label: e.label, title: e.title, doing: e.doing,
        host: visitHost(e.target),
      });
      trails.byVisit.set(e.visit, trail);
      trails.open.push(trail);
      return trail;
    }
    case "visit_ended": {
      const trail = trails.byVisit.get(e.visit);
      if (trail) {
        trail.ended = { ok: e.ok, summary: e.summary };
        trails.open = trails.open.filter((v) => v !== trail);
      }
      return trail;
    }
    case "clock_advanced":
    case "cache_flushed":
    case "fault_set":
    case "zone_changed":
      return newTrail({ kind: "action", events: [e] });
    default:
  }
  if (e.resolution === 0) {
    const host = e.host || (e.url && visitHost(e.url));
    let trail = openVisit(host && bare(host));
    if (!trail) {
      // The start of its visit was never seen (dropped, or older than the
      // stack remembers): such events share one diagram of their own.
      if (!trails.list.includes(trails.stray)) {
        trails.stray = newTrail({ kind: "visit", label: "browser", title: "The built-in browser" });
      }
      trail = trails.stray;
    }
    trail.events.push(e);
    return trail;
  }
  let trail = trails.byResolution.get(e.resolution);
  if (!trail) {
    const asked = e.event === "question_received" ? bare(e.question && e.question.name) : null;
    trail = (asked && openVisit(asked)) || newTrail({
      kind: "resolution", resolution: e.resolution, client: e.client,
      title: e.event === "question_received"
        ? `${e.client} asks ${e.question.name} ${e.question.type}`
        : `resolution ${e.resolution}`,
    });
    trails.byResolution.set(e.resolution, trail);
  }
  trail.events.push(e);
  return trail;
}

function addEvent(e) {
  learn(e);
  const trail = route(e);
  if (!trail) return;
  trails.dirty.add(trail);
  if (!trails.scheduled) {
    // Events come in bursts (a visit is dozens): draw once per burst.
    trails.scheduled = true;
    setTimeout(drawDirty, 30);
  }
}

function drawDirty() {
  trails.scheduled = false;
  for (const trail of trails.dirty) draw(trail);
  trails.dirty.clear();
}

function draw(trail) {
  const node = trail.node;
  if (trail.kind === "action") {
    const e = trail.events[0];
    node.replaceChildren(el("span", "chip", "lab"), el("span", "what", actionText(e)));
    node.dataset.event = e.event;
    return;
  }
  // Keep the reader's place in a diagram that grows while it is read.
  const old = node.querySelector(".seq-scroll");
  const scrolled = old ? old.scrollLeft : 0;
  const heading = el("h4");
  const chip = trail.kind === "visit" ? trail.label || "visit" : "dns";
  heading.append(el("span", "chip", chip), document.createTextNode(trail.title || ""));
  const parts = [heading];
  const text = summary(trail.events);
  if (text) parts.push(el("p", "summary", text));
  if (trail.kind === "visit") {
    parts.push(trail.ended
      ? el("p", `verdict ${trail.ended.ok ? "ok" : "failed"}`, `→ ${trail.ended.summary}`)
      : el("p", "verdict pending", "… under way"));
  }
  const figure = diagram(trail, trail.title || trail.kind);
  parts.push(figure);
  node.replaceChildren(...parts);
  figure.scrollLeft = scrolled;
}

// ---- the stream ----

const stream = {
  source: null,
  lastSeq: 0,
  events: 0,
  duplicates: 0,
  // Events the stack dropped because this page fell behind: in connections
  // before this one, and in this one (the stack counts per connection).
  droppedBefore: 0,
  dropped: 0,
  paused: false,
};

function streamStatus(state) {
  const status = $("live-status");
  status.dataset.lastSeq = String(stream.lastSeq);
  status.dataset.events = String(stream.events);
  status.dataset.duplicates = String(stream.duplicates);
  const lost = stream.droppedBefore + stream.dropped;
  const parts = [state, plural(stream.events, "event", "events")];
  if (lost) parts.push(`${lost} dropped: this page fell behind the stack, which never waits for it`);
  status.textContent = parts.join(" · ");
  status.classList.toggle("behind", lost > 0);
}

// Open the stream from the last event told. The browser itself reconnects
// after a break, sending the last id it saw (Last-Event-ID), and the stack
// resumes from there; an event seen twice all the same is told once.
function connect() {
  const source = new EventSource(`/lab/events?since=${stream.lastSeq}`);
  stream.source = source;
  source.addEventListener("open", () => {
    stream.droppedBefore += stream.dropped;
    stream.dropped = 0;
    setState("live", "Connected to the stack that serves this page: every question its "
      + "resolver answers, whoever asks, appears below as it happens, newest first.");
    streamStatus("live");
  });
  source.addEventListener("trace", (message) => {
    const e = JSON.parse(message.data);
    if (e.seq <= stream.lastSeq) {
      stream.duplicates += 1;
      return;
    }
    stream.lastSeq = e.seq;
    stream.events += 1;
    addEvent(e);
    affects(e);
    streamStatus("live");
  });
  source.addEventListener("dropped", (message) => {
    stream.dropped = JSON.parse(message.data).dropped || 0;
    streamStatus("live");
  });
  source.addEventListener("error", () => {
    if (stream.paused || stream.source !== source) return;
    setState("reconnecting", "The connection to the stack broke; reconnecting, from the last event told…");
    streamStatus("reconnecting");
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (the stack answered with an error): try again.
      stream.source = null;
      setTimeout(() => { if (!stream.paused && !stream.source) connect(); }, 3000);
    }
  });
}

function pause() {
  stream.paused = !stream.paused;
  $("live-pause").textContent = stream.paused ? "Resume" : "Pause";
  $("live-pause").setAttribute("aria-pressed", String(stream.paused));
  if (stream.paused) {
    if (stream.source) stream.source.close();
    stream.source = null;
    setState("paused", "Paused: the diagrams hold still. Resume to catch up with what "
      + "happened meanwhile, from the last event told.");
    streamStatus("paused");
  } else {
    connect();
  }
}

// What an event changes in the other panels.
function affects(e) {
  switch (e.event) {
    case "cached":
    case "cache_flushed":
      refreshCacheSoon();
      compareSoon();
      break;
    case "clock_advanced":
      cache.skew = e.skew_secs;
      refreshCacheSoon();
      compareSoon();
      break;
    case "zone_changed":
      refreshZones();
      compareSoon();
      break;
    case "fault_set":
      refreshServers();
      break;
    default:
  }
}

// ---- the cache ----

const cache = { entries: [], count: 0, fetchedAt: 0, skew: null, timer: null, refreshing: false };

// Read the cache again in a moment: once for a burst of changes.
function refreshCacheSoon(delay = 200) {
  clearTimeout(cache.timer);
  cache.timer = setTimeout(() => {
    cache.timer = null;
    refreshCache();
  }, delay);
}

async function refreshCache() {
  if (cache.refreshing) {
    refreshCacheSoon();
    return;
  }
  cache.refreshing = true;
  try {
    const page = await getJson(`/lab/cache?limit=${CACHE_LIMIT}`);
    cache.entries = page.entries || [];
    cache.count = page.count || 0;
    cache.fetchedAt = performance.now();
    drawCache();
  } catch (error) {
    $("cache-status").textContent = `The cache could not be read (${error.message}).`;
  } finally {
    cache.refreshing = false;
  }
}

// What an entry holds, in a few words.
function entryData(entry) {
  const records = entry.records || [];
  switch (entry.kind) {
    case "answer":
      return records.map((r) => (r.name === entry.name ? `${r.type} ${r.data}` : `${r.name} ${r.type} ${r.data}`)).join(", ");
    case "delegation": {
      const ns = records.filter((r) => r.type === "NS").map((r) => bare(r.data));
      const glue = records.length - ns.length;
      return `NS ${ns.join(" ")} · ${plural(glue, "glue address", "glue addresses")}`;
    }
    case "negative":
      return entry.nxdomain ? "NXDOMAIN: no such name, any type" : `NODATA: no ${entry.type} records`;
    case "failure":
      return entry.reason || "failed";
    default:
      return "";
  }
}

function drawCache() {
  const list = $("cache");
  list.replaceChildren(...cache.entries.map((entry) => {
    const item = el("li", `entry k-${entry.kind}`);
    item.dataset.kind = entry.kind;
    item.dataset.name = entry.name;
    if (entry.type) item.dataset.type = entry.type;
    item.dataset.ttl = String(entry.ttl);
    item.dataset.remaining = String(entry.remaining);
    const name = el("span", "name", entry.name);
    if (entry.type) name.append(" ", el("b", "", entry.type));
    const ttl = el("span", "ttl");
    ttl.append(el("span", "left"), ` of ${humanTtl(entry.ttl)}`);
    const bar = el("span", "bar");
    bar.append(el("span", "fill"));
    item.append(el("span", "kind", entry.kind), name, el("span", "data", entryData(entry)), ttl, bar);
    return item;
  }));
  const shown = cache.entries.length;
  const parts = [`${plural(cache.count, "entry", "entries")}${shown < cache.count ? ` (the first ${shown} shown)` : ""}`];
  if (cache.skew) parts.push(`the resolver's clock runs ${humanTtl(cache.skew)} ahead of real time`);
  $("cache-status").textContent = cache.count
    ? `${parts.join(" · ")}. TTLs count down here, a second at a time.`
    : "Empty: the next question starts from the root hints.";
  tick();
}

// Count every TTL down; refresh once an entry runs out, so it goes.
function tick() {
  const elapsed = Math.floor((performance.now() - cache.fetchedAt) / 1000);
  let expired = false;
  for (const item of $("cache").children) {
    const ttl = Number(item.dataset.ttl);
    const left = Math.max(0, Number(item.dataset.remaining) - elapsed);
    item.querySelector(".left").textContent = left ? `${left} s left` : "expired";
    item.querySelector(".fill").style.width = `${ttl ? (100 * left) / ttl : 0}%`;
    item.classList.toggle("expired", left === 0);
    item.dataset.left = String(left);
    expired ||= left === 0;
  }
  if (expired && !cache.refreshing && !cache.timer) refreshCacheSoon(1000);
}

// ---- the name servers ----

async function refreshServers() {
  try {
    drawServers(await getJson("/lab/servers"));
  } catch (error) {
    said(`The name servers could not be listed (${error.message}).`, true);
  }
}

function drawServers(servers) {
  learnServers(servers);
  $("servers").replaceChildren(...servers.map((server) => {
    const name = server.name.replace(/\.$/, "");
    const item = el("li", `server${server.fault ? " broken" : ""}`);
    item.dataset.name = server.name;
    item.dataset.fault = server.fault || "";
    const who = el("div", "who");
    who.append(
      el("strong", "", name),
      el("span", "state", server.fault ? `failing: ${server.fault}` : "answers"),
      el("small", "", `${(server.addrs || []).join(" ")} · ${(server.zones || []).join(" ")}`),
    );
    const kind = el("input", "fault-kind");
    kind.setAttribute("list", "fault-kinds");
    kind.value = server.fault || "drop";
    kind.size = 10;
    kind.setAttribute("aria-label", `how ${name} should fail`);
    const fault = el("button", "", "Break");
    fault.type = "button";
    fault.dataset.action = "fault";
    fault.addEventListener("click", () => {
      const how = kind.value.trim();
      if (!/^[a-z]+(=[0-9a-z.]+)?$/i.test(how)) {
        said(`“${how}” is not a fault: drop, servfail, refused, lame, truncate or delay=200ms`, true);
        return;
      }
      act(() => post(`/lab/servers/${encodeURIComponent(name)}/fault?kind=${how}`),
        (r) => `${r.server} now fails: ${r.fault}. Ask something it serves, and watch the resolver retry.`);
    });
    const heal = el("button", "", "Heal");
    heal.type = "button";
    heal.dataset.action = "heal";
    heal.addEventListener("click", () => act(() => post(`/lab/servers/${encodeURIComponent(name)}/heal`),
      (r) => `${r.server} answers again.`));
    const controls = el("div", "row");
    controls.append(kind, fault, heal);
    item.append(who, controls);
    return item;
  }));
}

// ---- the zones and their records ----

const zones = { list: [], compareTimer: null, compared: null };

async function refreshZones() {
  try {
    zones.list = await getJson("/lab/zones");
  } catch (error) {
    $("zones").replaceChildren(el("li", "", `The zones could not be listed (${error.message}).`));
    return;
  }
  const select = $("record-zone");
  const chosen = select.value;
  if (select.options.length !== zones.list.length) {
    select.replaceChildren(...zones.list.map((z) => {
      const option = el("option", "", bare(z.apex));
      option.value = bare(z.apex);
      return option;
    }));
    // The hosted zone (the deepest) first: the one a reader changes.
    const deepest = [...zones.list].sort((a, b) => b.apex.split(".").length - a.apex.split(".").length)[0];
    select.value = chosen || (deepest ? bare(deepest.apex) : "");
  }
  $("zones").replaceChildren(...zones.list.map((z) => {
    const item = el("li");
    item.dataset.apex = z.apex;
    item.dataset.serial = String(z.serial);
    item.dataset.status = z.status;
    item.append(el("strong", "", bare(z.apex) || "."), ` serial ${z.serial}`,
      el("span", `status ${z.status === "INSYNC" ? "insync" : "pending"}`, z.status));
    item.append(el("span", "serials", z.servers.map((s) =>
      `${bare(s.name)} ${s.serial ?? `silent (${s.error || "no answer"})`}`).join(" · ")));
    return item;
  }));
}

// Compare again in a moment: once for a burst of events.
function compareSoon() {
  if (!zones.compared) return;
  clearTimeout(zones.compareTimer);
  zones.compareTimer = setTimeout(compare, 300);
}

// What the name servers say for the record being changed, beside what the
// resolver has cached for it, and for how much longer.
async function compare() {
  const question = zones.compared;
  if (!question) return;
  const out = $("record-compare");
  let c;
  try {
    c = await getJson(`/lab/zones/${encodeURIComponent(question.zone)}/compare?name=${
      encodeURIComponent(question.name)}&type=${encodeURIComponent(question.type)}`);
  } catch (error) {
    out.textContent = `Could not compare (${error.message}).`;
    return;
  }
  const told = (s) => (s.records.length ? s.records.map((r) => r.data).join(", ") : s.rcode);
  const name = `${bare(c.name)} ${c.type}`;
  out.dataset.same = String(c.same);
  out.dataset.nameServers = told(c.name_servers);
  out.dataset.resolver = c.resolver ? told(c.resolver) : "";
  out.classList.toggle("differs", !c.same);
  out.classList.toggle("same", c.same);
  if (!c.resolver) {
    out.replaceChildren("For ", code(name), " the name servers say ", code(told(c.name_servers)),
      "; the resolver has nothing cached, so its next answer is theirs.");
  } else if (c.same) {
    out.replaceChildren("For ", code(name), " the name servers and your resolver agree: ",
      code(told(c.name_servers)), ` (cached ${c.resolver.remaining} s more).`);
  } else {
    out.replaceChildren("For ", code(name), " the name servers say ", code(told(c.name_servers)),
      "; your resolver says ", code(told(c.resolver)), ` for ${c.resolver.remaining} more seconds`
        + " (its cached answer's TTL). Move the clock forward, or flush, to see the new one.");
  }
}

function wireRecords() {
  $("record-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const zone = $("record-zone").value;
    const name = $("record-name").value.trim() || "@";
    const type = $("record-type").value.trim().toUpperCase() || "A";
    const op = $("record-op").value;
    const ttl = $("record-ttl").value.trim();
    const data = $("record-data").value.trim();
    const query = new URLSearchParams({ op, name, type });
    if (ttl) query.set("ttl", ttl);
    if (data) query.set("data", data);
    act(() => post(`/lab/zones/${encodeURIComponent(zone)}/records?${query}`), (r) => {
      zones.compared = { zone, name, type };
      compare();
      refreshZones();
      return r.unchanged
        ? `Nothing to change: ${zone} already says that (serial ${r.serial}).`
        : `${bare(r.apex)} is at serial ${r.serial}: its name servers answer the new data now.`;
    });
  });
}

// ---- the controls ----

function wireControls() {
  const target = $("visit-target");
  target.value = `${location.origin}/`;
  $("visit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = target.value.trim() || `${location.origin}/`;
    const type = $("visit-type").value.trim() || "page";
    let query;
    if (type.toLowerCase() === "page") {
      const url = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}${location.port ? `:${location.port}` : ""}/`;
      query = `url=${encodeURIComponent(url)}`;
    } else {
      query = `ask=${encodeURIComponent(`${visitHost(text)}/${type}`)}`;
    }
    act(() => post(`/lab/visit?${query}`),
      (r) => `Visit ${r.visit} sent: ${r.target}. It appears in the live trace below.`);
  });
  $("advance-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const seconds = Math.floor(Number($("advance-seconds").value));
    act(() => post(`/lab/advance?seconds=${seconds}`),
      (r) => `The resolver's clock moved ${humanTtl(r.advanced_seconds)} forward `
        + `(${humanTtl(r.total_skew_seconds)} ahead in all): whatever outlived its TTL is gone.`);
  });
  $("flush").addEventListener("click", () => act(() => post("/lab/flush"),
    () => "The cache is empty: the next question starts from the root."));
  $("live-pause").addEventListener("click", pause);
  wireRecords();
}

// ---- start ----

function goLive() {
  $("live-status").after(legend());
  connect();
  refreshCache();
  refreshZones();
  setInterval(tick, 1000);
  // The resolver's clock may move without an event this page saw (an
  // event dropped, another tab): read the cache again now and then.
  setInterval(refreshCache, 15000);
}

async function main() {
  if (!lab) return;
  let servers;
  try {
    const response = await fetch("/lab/servers", { cache: "no-store" });
    if (!response.ok) throw new Error(response.status === 404 ? "404" : `HTTP ${response.status}`);
    servers = await response.json();
  } catch (error) {
    setState("offline",
      "The live lab is not connected: this page's server has no lab (",
      code("/lab/"), ` answered ${error.message === "404" ? "404" : error.message}). The story and the `
        + "recorded visits above do not need it. Run ",
      code("dnstrail demo --keep-running"),
      " and open the page it serves to watch every lookup as it happens, and steer the stack from here.");
    return;
  }
  drawServers(servers);
  wireControls();
  setState("ready", "Connected to the stack that serves this page; the live trace starts "
    + "when this part of the page is on screen.");
  streamStatus("waiting");
  // The recorded visits above move the lab down as they are drawn: a link
  // to #lab finds it once they are.
  await recorded;
  if (location.hash === "#lab") lab.scrollIntoView();
  const watcher = new IntersectionObserver((seen) => {
    if (seen.some((entry) => entry.isIntersecting)) {
      watcher.disconnect();
      goLive();
    }
  });
  watcher.observe(lab);
}

main();
