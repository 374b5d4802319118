//! Differential testing: one hierarchy, served in turn by each name-server
//! implementation on the same addresses, asked the same questions; the
//! resolvers side by side over each. No answer is worked out in advance:
//! the implementations check each other (see `compare` for what must
//! agree).
//!
//! ```text
//!   for each name-server implementation (dnstrail, NSD, Knot DNS):
//!     start it on port 53 of every server address the zones give
//!     ask each zone's servers every question of the zone  ──► kept
//!     walk from the root hints; dig and kdig on the largest RRset
//!     dnstrail resolver ◄─ same questions ─► Unbound        ──► compared now
//!     dig +trace, dnstrail browse through each resolver
//!     stop it (dnstrail's must stop on SIGTERM)
//!   then, question by question: every implementation's answers compared
//!   (and every server's within one), and the walks
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dnstrail::exchange::Transport;
use hickory_proto::rr::{LowerName, RecordType};

use crate::ask::{Ask, Opt, Silence, ask};
use crate::clients;
use crate::compare::{Ttls, View, agree, note_ttls, ttls_above, wire_rules};
use crate::hierarchy::Hierarchy;
use crate::process::Process;
use crate::questions::{self, Question};
use crate::report::{Report, find_tool, is_root};
use crate::subjects::{self, NameServers, Resolvers, Resolving, Serving};
use crate::walk::{Walk, walk};

/// One question for one zone's servers, in one way.
struct Planned {
    zone: String,
    ask: Ask,
    servers: Vec<SocketAddr>,
}

/// One answer heard (or not) from one server of one implementation.
struct Heard {
    by: &'static str,
    server: SocketAddr,
    outcome: Result<View, String>,
}

/// Whether this machine can run the interop checks at all; says why not.
pub fn prerequisites(report: &mut Report) -> bool {
    if !is_root() {
        report.skip(
            "interop",
            "needs root (port 53 for Unbound's sake, a private /etc/resolv.conf): run `make interop` as root",
        );
        return false;
    }
    true
}

/// Every check of one hierarchy.
pub async fn run(report: &mut Report, hierarchy: &Hierarchy) {
    let versions = subjects::versions(&report.subdir("logs")).await;
    report.pass("tools", versions);
    let plan = authoritative_plan(hierarchy);
    let mut heard: Vec<Vec<Heard>> = plan.iter().map(|_| Vec::new()).collect();
    let site_question = site_question(hierarchy);
    let web = web_and_curl(report, hierarchy).await;
    let resolvers: Vec<Resolvers> = [Resolvers::Dnstrail, Resolvers::Unbound]
        .into_iter()
        .filter(|r| available(report, r.label(), r.program()))
        .collect();
    let mut ours: Option<Resolving> = None;
    let mut walks: Vec<(&'static str, Walk)> = Vec::new();

    for name_servers in NameServers::ALL {
        if !available(report, name_servers.label(), name_servers.program()) {
            continue;
        }
        let label = name_servers.label();
        let dir = report.subdir(&subjects::slug(label));
        let Ok(serving) = name_servers.serve(hierarchy, report).await else {
            report.fail(
                format!("checks over {label}"),
                "not run: its name servers did not all start (see the lines above)",
            );
            continue;
        };
        let ttls = ask_name_servers(&plan, &mut heard, label, &dir).await;
        let walked = match &site_question {
            Some(q) => Some(walk(hierarchy, q, &dir.join("walk.txt")).await),
            None => None,
        };
        if let Some((zone, question)) = questions::largest_rrset(hierarchy) {
            real_clients(report, hierarchy, label, &zone, &question, &dir).await;
        }

        let running = start_resolvers(report, hierarchy, &resolvers, &mut ours, &dir).await;
        let answers = side_by_side(report, hierarchy, label, &running, &ttls, &dir).await;
        if let (Some(question), Some(walked)) = (&site_question, walked) {
            let check = format!("walk from the root over {label}: {question}");
            if let Some(walk) = check_walk(report, check, walked, answers.get(question)) {
                walks.push((label, walk));
            }
            trace_and_browse(report, hierarchy, label, question, &answers, &running, &dir).await;
        }
        for resolving in running {
            if resolving.by == Resolvers::Dnstrail {
                ours = Some(resolving);
            } else {
                let _ = resolving.stop().await;
            }
        }
        stop_name_servers(report, serving).await;
    }

    if let Some(resolving) = ours {
        let check = "dnstrail resolver stops on SIGTERM";
        report.check(check, exit_zero(resolving.stop().await));
    }
    if let Some(process) = web {
        let check = "dnstrail web stops on SIGTERM";
        report.check(check, exit_zero(process.stop().await));
    }
    for (planned, heard) in plan.iter().zip(&heard) {
        if !heard.is_empty() {
            let check = format!("{} servers: {}", planned.zone, planned.ask);
            report.check(check, authoritative_verdict(&planned.ask, heard));
        }
    }
    if let Some(question) = &site_question
        && walks.len() > 1
    {
        let check = format!("walks from the root agree: {question}");
        report.check(check, walks_agree(&walks));
    }
}

/// `dnstrail web` for the hierarchy's site, and curl against it.
async fn web_and_curl(report: &mut Report, hierarchy: &Hierarchy) -> Option<Process> {
    let site = hierarchy.site.as_ref()?;
    let logs = report.subdir("logs");
    let (process, addrs) = match subjects::start_web(hierarchy, site, &logs).await {
        Ok(started) => started,
        Err(why) => {
            report.fail("dnstrail web started", why);
            return None;
        }
    };
    let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    report.pass(
        "dnstrail web started",
        format!("listening http {}", shown.join(" ")),
    );
    let curl_dir = report.subdir("curl");
    for (check, outcome) in clients::curl_checks(site, addrs[0], &curl_dir).await {
        match outcome {
            Err(why) if why.contains("not installed") => report.skip(check, why),
            outcome => {
                report.check(check, outcome);
            }
        }
    }
    Some(process)
}

/// Ask every server of each zone its questions (the answers are kept to
/// be compared at the end); the largest TTL seen for each name and type.
async fn ask_name_servers(
    plan: &[Planned],
    heard: &mut [Vec<Heard>],
    label: &'static str,
    dir: &Path,
) -> BTreeMap<(String, RecordType), u32> {
    let transcript = dir.join("authoritative.txt");
    let mut ttls = BTreeMap::new();
    let mut silence = Silence::default();
    for (planned, heard) in plan.iter().zip(heard.iter_mut()) {
        for server in &planned.servers {
            let outcome = silence
                .ask(*server, &planned.ask, &transcript)
                .await
                .map(|r| View::of(&r));
            if let Ok(view) = &outcome {
                note_ttls(view, &mut ttls);
            }
            heard.push(Heard {
                by: label,
                server: *server,
                outcome: outcome.map(|v| v.within(&planned.zone)),
            });
        }
    }
    ttls
}

/// The walk ended where the resolvers did.
fn check_walk(
    report: &mut Report,
    check: String,
    walked: Result<Walk, String>,
    resolved: Option<&View>,
) -> Option<Walk> {
    let walk = match walked {
        Ok(walk) => walk,
        Err(why) => {
            report.fail(check, why);
            return None;
        }
    };
    let outcome = match resolved {
        Some(view) if without_ttls(&view.answer) != without_ttls(&walk.answer) => Err(format!(
            "{}: the walk found {}, the resolvers {}",
            walk.path(),
            walk.last.summary(),
            view.summary()
        )),
        _ => Ok(format!(
            "{}: {} = the resolvers' answer",
            walk.path(),
            walk.last.summary()
        )),
    };
    report.check(check, outcome);
    Some(walk)
}

/// Every implementation's walk took the same path to the same records.
fn walks_agree(walks: &[(&'static str, Walk)]) -> Result<String, String> {
    let (first, reference) = &walks[0];
    let differing: Vec<String> = walks[1..]
        .iter()
        .filter(|(_, w)| w.hops != reference.hops || w.answer != reference.answer)
        .map(|(by, w)| {
            format!(
                "over {by}: {} ({}); over {first}: {} ({})",
                w.path(),
                w.last.summary(),
                reference.path(),
                reference.last.summary()
            )
        })
        .collect();
    let names: Vec<&str> = walks.iter().map(|(by, _)| *by).collect();
    if differing.is_empty() {
        Ok(format!(
            "{}, TTLs included ({})",
            reference.path(),
            names.join(" = ")
        ))
    } else {
        Err(differing.join(" | "))
    }
}

/// Whether an implementation's program is installed; a skip line if not.
fn available(report: &mut Report, label: &str, program: Option<&str>) -> bool {
    match program {
        Some(program) if find_tool(program).is_none() => {
            report.skip(label, format!("{program} is not installed"));
            false
        }
        _ => true,
    }
}

/// What each zone's servers are asked, each question over UDP and TCP;
/// EDNS and truncation with the largest RRset, EDNS versions and no EDNS
/// with the site.
fn authoritative_plan(hierarchy: &Hierarchy) -> Vec<Planned> {
    let topology = &hierarchy.topology;
    let servers_of = |apex: &str| -> Vec<SocketAddr> {
        topology
            .servers
            .iter()
            .filter(|s| s.zones.iter().any(|z| z == apex))
            .flat_map(|s| {
                s.addrs
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, subjects::DNS_PORT))
            })
            .collect()
    };
    let mut plan = Vec::new();
    for zone in &topology.zones {
        let apex = zone.origin().to_string();
        let mut asked = questions::authoritative(zone);
        asked.extend(questions::referrals(zone, hierarchy));
        for question in asked {
            for transport in [Transport::Udp, Transport::Tcp] {
                plan.push(Planned {
                    zone: apex.clone(),
                    ask: Ask::norec(&question, transport),
                    servers: servers_of(&apex),
                });
            }
        }
    }
    let mut variants = Vec::new();
    if let Some((zone, question)) = questions::largest_rrset(hierarchy) {
        for opt in [Opt::Payload(4096), Opt::Payload(512), Opt::Off] {
            variants.push((
                zone.clone(),
                Ask::norec(&question, Transport::Udp).with_opt(opt),
            ));
        }
    }
    if let Some(question) = site_question(hierarchy) {
        let zone = hierarchy
            .topology
            .zones
            .iter()
            .filter(|z| z.contains(&LowerName::new(&question.name)))
            .max_by_key(|z| z.origin().num_labels())
            .map(|z| z.origin().to_string());
        if let Some(zone) = zone {
            for opt in [Opt::Version(1), Opt::Off] {
                variants.push((
                    zone.clone(),
                    Ask::norec(&question, Transport::Udp).with_opt(opt),
                ));
            }
        }
    }
    for (zone, ask) in variants {
        plan.push(Planned {
            servers: servers_of(&zone),
            zone,
            ask,
        });
    }
    plan
}

/// The site's address question (or, without a site, the first address of
/// the zones): what is walked, traced and browsed.
fn site_question(hierarchy: &Hierarchy) -> Option<Question> {
    match hierarchy.site_host() {
        Some(host) => Some(Question::parse(&host, RecordType::A)),
        None => questions::for_resolvers(hierarchy)
            .into_iter()
            .find(|q| q.rtype == RecordType::A),
    }
}

/// Every server's answer to one question, from every implementation:
/// nobody silent, no rule of the protocol broken, each implementation's
/// servers agreeing with each other, and the implementations agreeing.
fn authoritative_verdict(ask: &Ask, heard: &[Heard]) -> Result<String, String> {
    let mut problems = Vec::new();
    let mut implementations: Vec<(String, View)> = Vec::new();
    let mut by: Vec<&'static str> = heard.iter().map(|h| h.by).collect();
    by.dedup();
    let mut per_implementation = 0;
    for label in by {
        let mut views: Vec<(String, View)> = Vec::new();
        for h in heard.iter().filter(|h| h.by == label) {
            let who = format!("{label}@{}", h.server.ip());
            match &h.outcome {
                Ok(view) => {
                    for broken in wire_rules(ask, view) {
                        problems.push(format!("{who}: {broken}"));
                    }
                    views.push((who, view.clone()));
                }
                Err(why) => problems.push(format!("{who}: {why}")),
            }
        }
        per_implementation = per_implementation.max(views.len());
        if let Err(why) = agree(&views, Ttls::Equal) {
            problems.push(format!("{label}'s own servers disagree: {why}"));
        }
        if let Some((_, view)) = views.into_iter().next() {
            implementations.push((label.to_string(), view));
        }
    }
    match agree(&implementations, Ttls::Equal) {
        Ok(summary) if problems.is_empty() => {
            Ok(format!("{summary}, {per_implementation} server(s) each"))
        }
        Ok(_) => Err(problems.join(" | ")),
        Err(why) => {
            problems.insert(0, why);
            Err(problems.join(" | "))
        }
    }
}

/// dig and kdig against the first server of the largest RRset's zone.
async fn real_clients(
    report: &mut Report,
    hierarchy: &Hierarchy,
    label: &str,
    zone: &str,
    question: &Question,
    dir: &Path,
) {
    let Some(server) = hierarchy
        .topology
        .servers
        .iter()
        .find(|s| s.zones.iter().any(|z| z == zone))
        .and_then(|s| s.addrs.first().copied())
    else {
        return;
    };
    let check = format!("dig +norec +bufsize=512 @{server} ({label}) {question}");
    match clients::dig_retries_over_tcp(server, question, &dir.join("dig-tc.txt")).await {
        Err(why) if why.contains("not installed") => report.skip(check, why),
        outcome => {
            report.check(check, outcome);
        }
    }
    let check = format!("kdig +norec +tcp @{server} ({label}) {question}");
    let ours = ask(
        SocketAddr::new(server, subjects::DNS_PORT),
        &Ask::norec(question, Transport::Tcp),
        &dir.join("kdig-reference.txt"),
    )
    .await;
    let rcode = match &ours {
        Ok(reply) => format!("{:?}", reply.message.metadata.response_code).to_uppercase(),
        Err(why) => {
            report.fail(check, format!("our own client got no answer: {why}"));
            return;
        }
    };
    match clients::kdig_over_tcp(server, question, &rcode, &dir.join("kdig.txt")).await {
        Err(why) if why.contains("not installed") => report.skip(check, why),
        outcome => {
            report.check(check, outcome);
        }
    }
}

/// Both resolvers, cold: ours started once and flushed through its
/// control endpoint before each later round, Unbound started afresh.
async fn start_resolvers(
    report: &mut Report,
    hierarchy: &Hierarchy,
    resolvers: &[Resolvers],
    ours: &mut Option<Resolving>,
    dir: &Path,
) -> Vec<Resolving> {
    let mut running = Vec::new();
    for which in resolvers {
        if *which == Resolvers::Dnstrail
            && let Some(resolving) = ours.take()
        {
            let control = resolving
                .control
                .expect("dnstrail's resolver has a control endpoint");
            report.check(
                format!("dnstrail resolver: POST http://{control}/flush"),
                flush(control).await,
            );
            running.push(resolving);
            continue;
        }
        let check = format!("{} started on {}", which.label(), which.addr());
        match which.start(hierarchy, dir).await {
            Ok(resolving) => {
                report.pass(
                    check,
                    format!("root hints {}", report.shown(&hierarchy.hints)),
                );
                running.push(resolving);
            }
            Err(why) => {
                report.fail(check, why);
            }
        }
    }
    running
}

/// Empty our resolver's cache, and see it empty.
async fn flush(control: SocketAddr) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let flushed = client
        .post(format!("http://{control}/flush"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let flushed: serde_json::Value =
        serde_json::from_str(&flushed).map_err(|e| format!("{e}: {flushed}"))?;
    if flushed["flushed"] != true {
        return Err(format!("answered {flushed}"));
    }
    let cache = client
        .get(format!("http://{control}/cache"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let cache: serde_json::Value =
        serde_json::from_str(&cache).map_err(|e| format!("{e}: {cache}"))?;
    match cache["count"].as_u64() {
        Some(0) => Ok("cache empty (GET /cache: count 0)".to_string()),
        other => Err(format!("GET /cache still counts {other:?} entries")),
    }
}

/// Every question of the hierarchy to each resolver, compared: the same
/// rcode and records (TTLs aside), RA set, no TTL above the name servers'.
/// Then the largest RRset without EDNS: truncated, within 512 bytes.
/// Returns our resolver's answers (or the first resolver's).
async fn side_by_side(
    report: &mut Report,
    hierarchy: &Hierarchy,
    over: &str,
    running: &[Resolving],
    ttls: &BTreeMap<(String, RecordType), u32>,
    dir: &Path,
) -> BTreeMap<Question, View> {
    let mut answers = BTreeMap::new();
    if running.is_empty() {
        return answers;
    }
    let transcript = dir.join("resolvers.txt");
    let mut asks: Vec<Ask> = questions::for_resolvers(hierarchy)
        .iter()
        .map(Ask::stub)
        .collect();
    if let Some((_, big)) = questions::largest_rrset(hierarchy) {
        asks.push(Ask::stub(&big).with_opt(Opt::Off));
    }
    let mut silence = Silence::default();
    for ask_one in asks {
        let mut views = Vec::new();
        let mut problems = Vec::new();
        for resolving in running {
            let who = resolving.by.label();
            match silence.ask(resolving.addr, &ask_one, &transcript).await {
                Ok(reply) => {
                    let view = View::of(&reply);
                    for broken in wire_rules(&ask_one, &view) {
                        problems.push(format!("{who}: {broken}"));
                    }
                    if !view.ra {
                        problems.push(format!("{who}: RA clear in a resolver's answer"));
                    }
                    for above in ttls_above(&view, ttls) {
                        problems.push(format!("{who}: {above}"));
                    }
                    views.push((who.to_string(), view));
                }
                Err(why) => problems.push(format!("{who}: {why}")),
            }
        }
        if ask_one.opt == crate::ask::DEFAULT_OPT
            && let Some((_, view)) = views.first()
        {
            answers.insert(ask_one.question.clone(), view.clone());
        }
        let verdict = match agree(&views, Ttls::Ignored) {
            Ok(summary) if problems.is_empty() => Ok(summary),
            Ok(_) => Err(problems.join(" | ")),
            Err(why) => {
                problems.insert(0, why);
                Err(problems.join(" | "))
            }
        };
        report.check(format!("resolvers over {over}: {ask_one}"), verdict);
    }
    answers
}

/// `dig +trace` from our root (through the private `/etc/resolv.conf`),
/// and `dnstrail browse` through each resolver, and of a missing name.
async fn trace_and_browse(
    report: &mut Report,
    hierarchy: &Hierarchy,
    over: &str,
    question: &Question,
    answers: &BTreeMap<Question, View>,
    running: &[Resolving],
    dir: &Path,
) {
    let check = format!("dig +trace (over {over}) {question}");
    let expected: BTreeSet<String> = answers
        .get(question)
        .map(|v| {
            v.answer
                .iter()
                .filter(|r| r.rtype == question.rtype)
                .map(|r| r.data.clone())
                .collect()
        })
        .unwrap_or_default();
    if find_tool("dig").is_none() {
        report.skip(check, "dig is not installed");
    } else if !running.iter().any(|r| r.by == Resolvers::Dnstrail) {
        report.fail(check, "needs our resolver, which is not running");
    } else if let Err(why) = clients::private_resolv_conf() {
        report.skip(check, why);
    } else {
        report.check(
            check,
            clients::dig_trace(hierarchy, question, &expected, &dir.join("dig-trace.txt")).await,
        );
    }

    let Some(site) = &hierarchy.site else {
        return;
    };
    for resolving in running {
        let check = format!(
            "dnstrail browse --resolver {} ({}, over {over}) {site}",
            resolving.addr,
            resolving.by.label()
        );
        let log = dir.join(format!(
            "browse-{}.txt",
            subjects::slug(resolving.by.label())
        ));
        report.check(check, clients::browse(site, resolving.addr, &log).await);
    }
    if let Some(ours) = running.iter().find(|r| r.by == Resolvers::Dnstrail) {
        let url = missing_url(site);
        let check = format!(
            "dnstrail browse --resolver {} (over {over}) {url}",
            ours.addr
        );
        report.check(
            check,
            clients::browse_missing(&url, ours.addr, &dir.join("browse-missing.txt")).await,
        );
    }
}

/// The site's URL with a host that does not exist beside it.
fn missing_url(site: &str) -> String {
    let mut url = reqwest::Url::parse(site).expect("a URL");
    let host = url.host_str().unwrap_or_default().to_string();
    let parent = host.split_once('.').map_or(host.as_str(), |(_, p)| p);
    let _ = url.set_host(Some(&format!("{}.{parent}", questions::MISSING_LABEL)));
    url.to_string()
}

/// Stop the name servers: dnstrail's must stop on SIGTERM with status 0.
async fn stop_name_servers(report: &mut Report, serving: Serving) {
    let by = serving.by;
    for (name, stopped) in serving.stop().await {
        if by == NameServers::Dnstrail {
            report.check(format!("{name} stops on SIGTERM"), exit_zero(stopped));
        }
    }
}

fn exit_zero(stopped: Result<std::process::ExitStatus, String>) -> Result<String, String> {
    match stopped {
        Ok(status) if status.success() => Ok(format!(
            "exit 0 within {} s",
            crate::process::STOP_WITHIN.as_secs()
        )),
        Ok(status) => Err(format!("{status}")),
        Err(why) => Err(why),
    }
}

fn without_ttls(set: &BTreeSet<crate::compare::Rr>) -> BTreeSet<(String, RecordType, String)> {
    set.iter()
        .map(|r| (r.name.clone(), r.rtype, r.data.clone()))
        .collect()
}

#[tokio::test]
#[ignore = "interop: needs root and real DNS software; `make interop` runs it"]
async fn the_demo_zones_on_every_implementation() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let mut report = Report::new("demo-zones");
    if !prerequisites(&mut report) {
        return report.finish();
    }
    let demo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dnstrail::topology::DEFAULT_ZONES_DIR);
    let zones = report.subdir("zones");
    match Hierarchy::copy(
        "the demo's zones",
        &demo,
        &zones,
        Some(dnstrail::topology::DEFAULT_URL),
    ) {
        Ok(hierarchy) => {
            report.pass(
                "zone files",
                format!(
                    "{} zones, {} name servers, from {}",
                    hierarchy.topology.zones.len(),
                    hierarchy.topology.servers.len(),
                    report.shown(&demo)
                ),
            );
            run(&mut report, &hierarchy).await;
        }
        Err(why) => report.fail("zone files", why),
    }
    report.finish();
}

#[tokio::test]
#[ignore = "interop: needs root and real DNS software; `make interop` runs it"]
async fn a_hierarchy_unlike_the_demo_on_every_implementation() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let mut report = Report::new("unlike-the-demo");
    if !prerequisites(&mut report) {
        return report.finish();
    }
    let zones = report.subdir("zones");
    match unlike_the_demo(&zones) {
        Ok(hierarchy) => {
            report.pass(
                "zone files",
                format!(
                    "{} zones, {} name servers, written leaf first to {}",
                    hierarchy.topology.zones.len(),
                    hierarchy.topology.servers.len(),
                    report.shown(&zones)
                ),
            );
            run(&mut report, &hierarchy).await;
        }
        Err(why) => report.fail("zone files", why),
    }
    report.finish();
}

/// A hierarchy with what the demo's lacks: two TLDs, one of them `test.`
/// (which Unbound blocks unless told); a zone served by a name server
/// outside its bailiwick (`shop.test.` by `ns.hosting.zz.`: no glue can be
/// given) beside one inside it; one server holding two zones; wildcards
/// (an address, a TXT, an alias); aliases across zones, to a wildcard and
/// to a name that does not exist; empty non-terminals; a deeper
/// delegation; an address RRset too large for a 512-byte answer. Its
/// servers are on 127.0.3.x, away from the demo's.
fn unlike_the_demo(dir: &Path) -> Result<Hierarchy, String> {
    use crate::hierarchy::ZoneBuilder;
    let ip = |last: u8| {
        Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            127, 0, 3, last,
        )))
    };

    // The leaves first.
    let deep = ZoneBuilder::new("deep.hosting.zz.")
        .server("ns.deep.hosting.zz.", ip(6))
        .record("inner 300 IN CNAME alias.hosting.zz.")
        .record("@ 300 IN TXT \"a zone two levels below its TLD\"");
    let shop = ZoneBuilder::new("shop.test.")
        .server("ns.hosting.zz.", None)
        .server("ns2.shop.test.", ip(5))
        .record("www 300 IN A 127.0.3.44")
        .record("@ 300 IN A 127.0.3.44")
        .record("*.cdn 120 IN A 127.0.3.45")
        .record("*.cdn 120 IN TXT \"served by a wildcard\"")
        .record("*.go 300 IN CNAME www.shop.test.")
        .record("static 300 IN CNAME www.hosting.zz.")
        .record("img 300 IN CNAME pic.cdn.shop.test.")
        .record("dangling 300 IN CNAME gone.hosting.zz.")
        .record("a.b.deep 300 IN A 127.0.3.47")
        .record("mail 300 IN MX 10 mx.hosting.zz.");
    // Round robin over more addresses than 512 bytes hold.
    let shop = (1..=40).fold(shop, |zone, n| {
        zone.record(&format!("pool 60 IN A 127.0.4.{n}"))
    });
    let hosting = ZoneBuilder::new("hosting.zz.")
        .server("ns.hosting.zz.", ip(4))
        .record("www 600 IN A 127.0.3.46")
        .record("www 600 IN AAAA 2001:db8::46")
        .record("mx 600 IN A 127.0.3.48")
        .record("alias 300 IN CNAME www.shop.test.")
        .record("*.users 60 IN TXT \"any user\"")
        .delegate(&deep);
    // Their parents.
    let test = ZoneBuilder::new("test.")
        .server("ns.nic.test.", ip(3))
        .delegate(&shop);
    let zz = ZoneBuilder::new("zz.")
        .server("ns.nic.zz.", ip(2))
        .delegate(&hosting);
    // The root last, and its own server in a name no zone below holds.
    let root = ZoneBuilder::new(".")
        .server("a.root-servers.lab.", ip(1))
        .delegate(&zz)
        .delegate(&test);
    Hierarchy::write(
        "a hierarchy unlike the demo's",
        dir,
        &[deep, shop, hosting, test, zz, root],
        Some("http://www.shop.test:8080/"),
    )
}

/// The builder's hierarchy loads as dnstrail loads zones: runs in `make test`.
#[test]
fn the_hierarchy_unlike_the_demo_is_built_leaf_first_and_loads() {
    let dir = std::env::temp_dir().join(format!("dnstrail-interop-builder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hierarchy = unlike_the_demo(&dir).expect("the hierarchy loads");
    let names: Vec<&str> = hierarchy
        .topology
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(hierarchy.topology.zones.len(), 6);
    assert!(names.contains(&"ns.hosting.zz."), "{names:?}");
    let hosting = hierarchy
        .topology
        .servers
        .iter()
        .find(|s| s.name == "ns.hosting.zz.")
        .unwrap();
    assert_eq!(hosting.zones, ["shop.test.", "hosting.zz."]);
    assert_eq!(hierarchy.tlds(), ["test.", "zz."]);
    assert!(hierarchy.hints.is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
