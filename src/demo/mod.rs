//! `dnstrail demo`: every role started, and the browser led through the
//! chain three times.
//!
//! ```text
//!  visit 1 (cold)      browser → resolver → root → .com → ns-N → resolver → browser → web
//!  visit 2 (at once)   browser → resolver (cache) → browser → web
//!  visit 3 (+TTL+1 s)  browser → resolver → ns-N (delegation cached) → resolver → browser → web
//! ```
//!
//! Everything is bound before the first visit, so there is no readiness to
//! wait for. Between visits 2 and 3 the resolver's clock is moved past the
//! answer's TTL, which is how the story's "next time" is shown without
//! waiting five minutes. The steps printed come from the same trace events
//! the tests check and the web page draws.

pub mod story;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::browse::{Browser, Visit};
use crate::cli::DemoArgs;
use crate::clock::Clock;
use crate::fault::Fault;
use crate::listen::{bind_dns, bind_tcp, shutdown_on_signal};
use crate::resolver::{self, Resolver};
use crate::stack::NameServers;
use crate::topology::{Role, Topology};
use crate::trace::{CacheKind, TraceEvent, Traced};
use crate::web::{self, TraceDocument, WebConfig};
use story::{Step, human_us};

/// Every role of the chain, bound and serving.
pub struct Stack {
    /// The topology with the ports actually bound.
    pub topology: Topology,
    pub resolver: Resolver,
    pub resolver_addr: SocketAddr,
    pub web_addr: SocketAddr,
    /// What `/trace.json` serves: the visits so far.
    pub trace_document: TraceDocument,
    events: Arc<Mutex<Vec<Traced>>>,
    names: NameServers,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Stack {
    /// Start the name servers, the resolver and the web server of
    /// `topology`, serving the site in `static_dir`. Port 0 anywhere in the
    /// topology (name servers, resolver, web) picks free ports.
    pub async fn start(topology: Topology, static_dir: PathBuf) -> anyhow::Result<Stack> {
        Stack::start_with_faults(topology, static_dir, &HashMap::new()).await
    }

    /// Like [`Stack::start`], with the name servers in `faults` failing.
    pub async fn start_with_faults(
        topology: Topology,
        static_dir: PathBuf,
        faults: &HashMap<IpAddr, Fault>,
    ) -> anyhow::Result<Stack> {
        let names = NameServers::start_with_faults(topology, faults).await?;
        let mut topology = names.topology.clone();

        let hints = resolver::load_hints(&topology.root_hints).context("loading root hints")?;
        let config = resolver::Config {
            upstream_port: topology.dns_port,
            ..resolver::Config::default()
        };
        let resolver = Resolver::new(config, hints, Clock::new());
        let events = resolver.trace().collector();
        let resolver_sockets = bind_dns(topology.resolver)
            .await
            .context("starting the resolver")?;
        topology.resolver = resolver_sockets.local_addr();

        let web_listener = bind_tcp(topology.web)
            .await
            .context("starting the web server")?;
        topology.web = web_listener.local_addr()?;

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(resolver::run(
            resolver.clone(),
            vec![resolver_sockets],
            shutdown.clone(),
        ));
        let trace_document = TraceDocument::default();
        let mut site = WebConfig::new(static_dir, topology.site.clone());
        site.trace = Some(trace_document.clone());
        tasks.spawn(web::run(site, web_listener, shutdown.clone()));

        Ok(Stack {
            resolver_addr: topology.resolver,
            web_addr: topology.web,
            topology,
            resolver,
            trace_document,
            events,
            names,
            shutdown,
            tasks,
        })
    }

    /// The page the browser visits.
    pub fn url(&self) -> String {
        self.topology.site_url()
    }

    /// Stop every role and wait for them to close.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.names.stop().await;
    }

    fn events_since(&self, start: usize) -> Vec<Traced> {
        self.events.lock().expect("trace collector lock")[start..].to_vec()
    }

    fn event_count(&self) -> usize {
        self.events.lock().expect("trace collector lock").len()
    }
}

/// One of the three visits: what happened, in events and in story steps.
#[derive(Debug, Clone, Serialize)]
pub struct VisitReport {
    pub label: String,
    pub title: String,
    /// Browser and resolver events, in the order of the story.
    pub events: Vec<Traced>,
    #[serde(skip)]
    pub outcome: Result<Visit, String>,
    pub steps: Vec<Step>,
}

impl VisitReport {
    pub fn upstream_queries(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e.event, TraceEvent::UpstreamQuery { .. }))
            .count()
    }

    /// The servers asked, by name, in order.
    pub fn servers_asked(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.event {
                TraceEvent::UpstreamQuery { server, .. } => {
                    Some(server.name.trim_end_matches('.').to_string())
                }
                _ => None,
            })
            .collect()
    }
}

/// Visit the site once and gather the visit's events: the browser's lookup,
/// the resolver's work for it, then the HTTP exchange.
async fn visit(stack: &Stack, browser: &Browser, label: &str, title: &str) -> VisitReport {
    let start = stack.event_count();
    let begun = Instant::now();
    let outcome = browser.visit(&stack.url()).await.map_err(|e| e.to_string());
    let resolver_events = stack.events_since(start);
    let mut events = Vec::new();
    if let Ok(visit) = &outcome {
        let browser_events = visit.trace_events(stack.resolver_addr);
        let at = begun.elapsed().as_micros() as u64;
        let wrap = |event: TraceEvent| Traced {
            resolution: 0,
            at_us: at,
            event,
        };
        let (lookup, http): (Vec<_>, Vec<_>) = browser_events
            .into_iter()
            .partition(|e| matches!(e, TraceEvent::BrowserLookup { .. }));
        events.extend(lookup.into_iter().map(wrap));
        events.extend(resolver_events);
        events.extend(http.into_iter().map(wrap));
    } else {
        events.extend(resolver_events);
    }
    let steps = story::steps(&stack.topology.site, &events);
    VisitReport {
        label: label.to_string(),
        title: title.to_string(),
        events,
        outcome,
        steps,
    }
}

/// The TTL the resolver cached the site's address for, from the cold visit.
fn answer_ttl(report: &VisitReport, site: &str) -> Option<u32> {
    let fqdn = format!("{}.", site.trim_end_matches('.'));
    report.events.iter().find_map(|e| match &e.event {
        TraceEvent::Cached {
            kind: CacheKind::Answer,
            name,
            ttl,
            rtype,
        } if *name == fqdn && rtype.as_deref() == Some("A") => Some(*ttl),
        _ => None,
    })
}

/// The three visits of the story.
pub async fn run_visits(stack: &Stack) -> anyhow::Result<Vec<VisitReport>> {
    let browser = Browser::new(stack.resolver_addr, Duration::from_secs(5))?;
    let mut reports = Vec::new();
    let cold = visit(
        stack,
        &browser,
        "cold",
        "Visit 1, cold: the whole story, every server asked",
    )
    .await;
    publish(stack, &cold, &mut reports);
    let ttl = answer_ttl(&reports[0], &stack.topology.site).unwrap_or(300);

    let cached = visit(
        stack,
        &browser,
        "cached",
        "Visit 2, at once: the resolver answers from its cache",
    )
    .await;
    publish(stack, &cached, &mut reports);

    stack
        .resolver
        .clock()
        .advance(Duration::from_secs(u64::from(ttl) + 1));
    let later = visit(
        stack,
        &browser,
        "expired",
        &format!(
            "Visit 3, {} s later: the answer has expired, the delegation has not",
            ttl + 1
        ),
    )
    .await;
    publish(stack, &later, &mut reports);
    Ok(reports)
}

/// Keep the report and show it on the web page's trace.
fn publish(stack: &Stack, report: &VisitReport, reports: &mut Vec<VisitReport>) {
    reports.push(report.clone());
    let visits: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| serde_json::json!({ "label": r.label, "title": r.title, "events": r.events, "steps": r.steps }))
        .collect();
    stack
        .trace_document
        .set(serde_json::json!({ "site": stack.url(), "visits": visits }));
}

/// The `<title>` of the site's index page: what a good visit must return.
pub fn expected_title(static_dir: &std::path::Path) -> Option<String> {
    let html = std::fs::read_to_string(static_dir.join("index.html")).ok()?;
    let start = html.find("<title>")? + "<title>".len();
    let end = html[start..].find("</title>")? + start;
    Some(html[start..end].trim().to_string())
}

/// Terminal styling, off when piped or with `NO_COLOR`.
struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn print_story(
    out: &mut impl Write,
    reports: &[VisitReport],
    style: &Style,
) -> std::io::Result<()> {
    for report in reports {
        writeln!(out, "\n{}", style.paint("1", &report.title))?;
        for step in &report.steps {
            match step.number {
                Some(n) => writeln!(
                    out,
                    "  {}  {} {}",
                    style.paint("36;1", &format!("{n}.")),
                    // Padded before painting: escape codes have no width.
                    style.paint("1", &format!("{:<10}", step.who)),
                    step.text
                )?,
                None => writeln!(out, "      {}", style.paint("2", &step.text))?,
            }
        }
        if let Err(error) = &report.outcome {
            writeln!(
                out,
                "  {}",
                style.paint("31;1", &format!("failed: {error}"))
            )?;
        }
    }
    writeln!(out, "\n{}", style.paint("1", "The three visits"))?;
    writeln!(
        out,
        "  {:<9} {:>8} {:>11} {:>10}  servers asked",
        "visit", "queries", "DNS lookup", "total"
    )?;
    for report in reports {
        let (dns, total) = match &report.outcome {
            Ok(v) => (human_us(v.timings.dns_us), human_us(v.timings.total_us)),
            Err(_) => ("-".into(), "-".into()),
        };
        let asked = report.servers_asked();
        writeln!(
            out,
            "  {:<9} {:>8} {:>11} {:>10}  {}",
            report.label,
            report.upstream_queries(),
            dns,
            total,
            if asked.is_empty() {
                "none: answered from the cache".to_string()
            } else {
                asked.join(" → ")
            }
        )?;
    }
    Ok(())
}

fn print_json(out: &mut impl Write, reports: &[VisitReport]) -> std::io::Result<()> {
    for (i, report) in reports.iter().enumerate() {
        for event in &report.events {
            let mut line = serde_json::to_value(event).unwrap_or_default();
            line["visit"] = serde_json::json!(i + 1);
            line["label"] = serde_json::json!(report.label);
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Copy-paste commands for every role of a running stack.
fn print_commands(out: &mut impl Write, stack: &Stack, style: &Style) -> std::io::Result<()> {
    let t = &stack.topology;
    let port = t.dns_port;
    writeln!(out, "\n{}", style.paint("1", "The stack is running. Try:"))?;
    for (role, host) in t.hosts() {
        let what = match role {
            Role::Root | Role::Tld => "a referral",
            Role::Auth => "the answer, with authority",
        };
        writeln!(
            out,
            "  dig +norec @{} -p {port} {} A      # {} ({}): {what}",
            host.ip,
            t.site,
            host.name.trim_end_matches('.'),
            role.as_str()
        )?;
    }
    let r = stack.resolver_addr;
    let w = stack.web_addr;
    writeln!(
        out,
        "  dig @{} -p {} {}          # the resolver (cached now)",
        r.ip(),
        r.port(),
        t.site
    )?;
    writeln!(out, "  curl -H 'Host: {}' http://{w}/", t.site)?;
    writeln!(
        out,
        "  curl --resolve {}:{}:{} {}",
        t.site,
        w.port(),
        w.ip(),
        stack.url()
    )?;
    writeln!(out, "  dnstrail browse --resolver {r} {}", stack.url())?;
    writeln!(
        out,
        "  open {}  (in a browser that resolves {} to {}) for the page and its trace",
        stack.url(),
        t.site,
        w.ip()
    )?;
    writeln!(out, "Ctrl-C stops everything.")?;
    Ok(())
}

/// `dnstrail demo`.
pub async fn command(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let zones = args.zones.unwrap_or_else(Topology::default_zones_dir);
    let static_dir = args.static_dir.unwrap_or_else(web::default_static_dir);
    let mut topology = Topology::canonical(&zones);
    topology.dns_port = args.dns_port;
    topology.resolver.set_port(args.dns_port);
    topology.web.set_port(args.web_port);
    let expected = expected_title(&static_dir);
    // Installed first, so Ctrl-C during start-up also stops cleanly.
    let stop = shutdown_on_signal();

    let mut faults = HashMap::new();
    for which in &args.fail {
        for ip in topology.find_hosts(which).map_err(anyhow::Error::msg)? {
            faults.insert(ip, args.fault);
        }
    }

    let stack = Stack::start_with_faults(topology, static_dir, &faults).await?;
    let reports = run_visits(&stack).await?;

    let mut out = std::io::stdout().lock();
    if args.json {
        print_json(&mut out, &reports)?;
        if args.keep_running {
            // Keep stdout pure JSON lines; the commands go to stderr.
            print_commands(&mut std::io::stderr(), &stack, &Style { on: false })?;
        }
    } else {
        let style = Style {
            on: std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
        };
        print_story(&mut out, &reports, &style)?;
        if args.keep_running {
            print_commands(&mut out, &stack, &style)?;
        }
    }
    out.flush()?;
    drop(out);

    let all_good = reports.iter().all(|r| match &r.outcome {
        Ok(visit) => visit.status == 200 && expected.is_some() && visit.title == expected,
        Err(_) => false,
    });
    if args.keep_running {
        stop.cancelled().await;
    }
    stack.stop().await;
    if all_good {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("dnstrail: the page did not come back as expected on every visit");
        Ok(ExitCode::FAILURE)
    }
}
