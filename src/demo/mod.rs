//! `dnstrail demo`: every role of a hierarchy started, and the browser led
//! through the chain, the story told as it happens.
//!
//! ```text
//!  visit 1 (cold)      browser → resolver → root → TLD → domain's server → resolver → browser → web
//!  visit 2 (at once)   browser → resolver (cache) → browser → web
//!  visit 3 (TTL + 1 s) browser → resolver → domain's server (delegation cached) → resolver → browser → web
//! ```
//!
//! Everything is bound before the first visit, so there is no readiness to
//! wait for. Each `--visit URL` and `--ask NAME/TYPE` is done three times:
//! first, again at once, and once more after the resolver's clock has been
//! moved past the longest TTL the first round cached, which is how the
//! story's "next time" is shown without waiting five minutes. Each step is
//! printed the moment its event happens (see [`crate::story`]); each visit
//! ends with a line that says what really happened; a summary compares them.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::browse::Browser;
use crate::cli::DemoArgs;
use crate::clock::Clock;
use crate::fault::Fault;
use crate::listen::{last_signal, shutdown_on_signal};
use crate::resolver;
use crate::serve::ServeOptions;
use crate::stack::{ResolverSetup, Stack, StackConfig, WebSetup};
use crate::story::{Printing, human_us};
use crate::style::Style;
use crate::topology::{DEFAULT_CONTROL_PORT, DEFAULT_RESOLVER_IP, DEFAULT_URL, Topology};
use crate::trace::{CacheKind, TraceEvent};
pub use crate::visit::{Item, Returned, VISIT_TIMEOUT, VisitReport, visit};
use crate::web::{SiteSource, TraceDocument, WebConfig, Website};

/// The `<title>` a site's index page has: what a good visit brings back.
pub fn expected_title_of(static_dir: Option<&std::path::Path>) -> Option<String> {
    expected_title(static_dir.map(std::path::Path::to_path_buf).as_ref())
}

/// The rounds of the story: each item first, again at once, and later.
pub async fn run_visits(stack: &Stack, items: &[Item]) -> anyhow::Result<Vec<VisitReport>> {
    let resolver = stack
        .resolver
        .as_ref()
        .context("the demo needs a resolver in its stack")?;
    let resolver_addr = stack.resolver_addr.context("the resolver's address")?;
    let browser = Browser::new(resolver_addr, VISIT_TIMEOUT)?.with_trace(stack.trace.clone());
    let mut watch = stack.trace.subscribe();
    let mut reports: Vec<VisitReport> = Vec::new();
    for round in 0..3 {
        if round == 2 {
            let longest = longest_ttl(&reports);
            let seconds = u64::from(longest) + 1;
            resolver.clock().advance(Duration::from_secs(seconds));
            stack.trace.emit(
                0,
                TraceEvent::ClockAdvanced {
                    seconds,
                    skew_secs: resolver.clock().skew().as_secs(),
                },
            );
        }
        for item in items {
            let number = stack.next_visit();
            let (label, when) = match round {
                0 if reports.is_empty() => ("cold".to_string(), "cold".to_string()),
                0 => ("first".to_string(), "the first time".to_string()),
                1 => ("again".to_string(), "at once".to_string()),
                _ => {
                    let skew = resolver.clock().skew().as_secs();
                    ("later".to_string(), format!("{skew} s later"))
                }
            };
            let title = format!("Visit {number}, {when}: {}", item.target());
            let report = visit(
                &stack.trace,
                &browser,
                &mut watch,
                item,
                number,
                label,
                title,
            )
            .await;
            publish(stack, &reports, &report);
            reports.push(report);
        }
    }
    Ok(reports)
}

/// The longest TTL of the answers the first round cached (of the negative
/// ones, if none was positive): moving the clock past it makes every
/// answer the visits got expire, while delegations, cached for days, stay.
fn longest_ttl(reports: &[VisitReport]) -> u32 {
    let longest = |wanted: CacheKind| {
        reports
            .iter()
            .flat_map(|r| &r.events)
            .filter_map(|e| match &e.event {
                TraceEvent::Cached { kind, ttl, .. } if *kind == wanted => Some(*ttl),
                _ => None,
            })
            .max()
    };
    longest(CacheKind::Answer)
        .or_else(|| longest(CacheKind::Negative))
        .unwrap_or(300)
}

/// Show the visits so far on the web page's trace (`/trace.json`).
fn publish(stack: &Stack, before: &[VisitReport], report: &VisitReport) {
    let Some(document) = &stack.trace_document else {
        return;
    };
    let visits: Vec<serde_json::Value> = before
        .iter()
        .chain(std::iter::once(report))
        .map(|r| {
            serde_json::json!({
                "label": r.label, "title": r.title, "summary": r.summary, "ok": r.ok,
                "events": r.events, "steps": r.lines,
            })
        })
        .collect();
    document.set(serde_json::json!({ "visits": visits }));
}

/// The summary table after the visits.
fn print_summary(
    out: &mut impl Write,
    reports: &[VisitReport],
    style: &Style,
) -> std::io::Result<()> {
    writeln!(out, "\n{}", style.paint("1", "The visits"))?;
    writeln!(
        out,
        "  {:<6} {:<10} {:>8} {:>11} {:>10}  servers asked",
        "visit", "when", "queries", "DNS lookup", "total"
    )?;
    for report in reports {
        let (dns, total) = match report.page() {
            Some(v) => (human_us(v.timings.dns_us), human_us(v.timings.total_us)),
            None => ("-".into(), "-".into()),
        };
        let asked = report.servers_asked();
        let last = if !report.ok {
            style.paint(
                "31",
                &format!(
                    "failed: {}",
                    report
                        .outcome
                        .as_ref()
                        .err()
                        .map_or("not the page expected", String::as_str)
                ),
            )
        } else if asked.is_empty() {
            "none: answered from the cache".to_string()
        } else {
            asked.join(" → ")
        };
        writeln!(
            out,
            "  {:<6} {:<10} {:>8} {:>11} {:>10}  {last}",
            report.number,
            report.label,
            report.upstream_queries(),
            dns,
            total,
        )?;
    }
    Ok(())
}

/// Copy-paste commands for every role of a running stack.
fn print_commands(
    out: &mut impl Write,
    stack: &Stack,
    items: &[Item],
    style: &Style,
) -> std::io::Result<()> {
    let port = stack.dns_port;
    let host = items.first().map(Item::host).unwrap_or_default();
    writeln!(out, "\n{}", style.paint("1", "The stack is running. Try:"))?;
    for server in stack.servers() {
        let s = &server.server;
        let Some(ip) = s.addrs.first() else { continue };
        writeln!(
            out,
            "  dig +norec @{ip} -p {port} {host} A      # {} ({})",
            s.name.trim_end_matches('.'),
            s.zones.join(" ")
        )?;
    }
    if let Some(r) = stack.resolver_addr {
        writeln!(
            out,
            "  dig @{} -p {} {host}          # the resolver (cached now)",
            r.ip(),
            r.port()
        )?;
        for item in items {
            if let Item::Visit(url) = item {
                writeln!(out, "  dnstrail browse --resolver {r} {url}")?;
            }
        }
    }
    if let Some(w) = stack.web_addrs.first() {
        writeln!(out, "  curl -H 'Host: {host}' http://{w}/")?;
        writeln!(
            out,
            "  curl --resolve {host}:{}:{} http://{host}:{}/",
            w.port(),
            w.ip(),
            w.port()
        )?;
        writeln!(
            out,
            "  open http://{host}:{}/ (in a browser that resolves {host} to {}) for the page and its trace",
            w.port(),
            w.ip()
        )?;
    }
    if let Some(c) = stack.control_addr {
        writeln!(
            out,
            "  curl -s {c}/cache        # the resolver's cache, TTLs counting down"
        )?;
        writeln!(
            out,
            "  curl -s {c}/traces       # the last resolutions, event by event"
        )?;
        writeln!(
            out,
            "  curl -s -X POST '{c}/advance?seconds=301'   # move the resolver's clock"
        )?;
        writeln!(
            out,
            "  curl -s -X POST '{c}/servers/NAME/fault?kind=drop'   # break a name server (heal: /servers/NAME/heal)"
        )?;
    }
    writeln!(out, "Ctrl-C stops everything.")?;
    Ok(())
}

/// A demo's stack, started: what `dnstrail demo` runs, and tests too.
pub struct Demo {
    pub stack: Stack,
    /// What the browser does each round (URLs on the ports bound).
    pub items: Vec<Item>,
    /// The seed the resolver's choices are drawn from.
    pub seed: u64,
    /// The servers set to fail, by name, and how.
    pub faults: HashMap<String, Fault>,
    /// Where the zones came from, how many zones and servers.
    pub source: String,
    pub zone_count: usize,
    pub server_count: usize,
}

impl Demo {
    /// Load the zones, check the options, open the site and start every
    /// role, bound before anything is visited.
    pub async fn start(args: &DemoArgs, items: Vec<Item>) -> anyhow::Result<Demo> {
        let topology =
            Topology::load_or_builtin(args.stack.zones.as_deref()).context("loading zones")?;
        let items = if items.is_empty() {
            vec![Item::Visit(DEFAULT_URL.to_string())]
        } else {
            items
        };
        anyhow::ensure!(
            args.stack.fault.is_none() || !args.stack.fail.is_empty(),
            "--fault says how servers fail, --fail which: give --fail too (e.g. --fail ns-2 --fault {})",
            args.stack
                .fault
                .map_or("drop".to_string(), |f| f.to_string())
        );
        let fault = args.stack.fault.unwrap_or(Fault::Drop);
        anyhow::ensure!(
            !fault.is_dnssec() || args.stack.dnssec.dnssec,
            "--fault {fault} breaks the chain of trust: give --dnssec too"
        );
        let mut faults = HashMap::new();
        for which in &args.stack.fail {
            let which = parent_for_fault(&topology, which, fault);
            for server in topology.find_servers(&which).map_err(anyhow::Error::msg)? {
                faults.insert(server.name.clone(), fault);
            }
        }
        let keys = args
            .stack
            .dnssec
            .key_store(args.stack.zones.as_deref())
            .map_err(anyhow::Error::msg)?;

        let urls: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Visit(url) => Some(url.clone()),
                Item::Ask(..) => None,
            })
            .collect();
        let lab = crate::web::LabSlot::default();
        let (web, document) = if urls.is_empty() {
            (None, None)
        } else {
            let placement = topology
                .place_site(&urls, args.web_port)
                .map_err(anyhow::Error::msg)?;
            let source = match &args.stack.static_dir {
                Some(dir) => SiteSource::Dir(dir.clone()),
                None => SiteSource::BuiltIn,
            };
            let document = TraceDocument::default();
            let mut config = WebConfig::new(source, placement.hosts.clone());
            config.trace = Some(document.clone());
            config.lab = lab.clone();
            let site = Website::open(config).await?;
            (
                Some(WebSetup {
                    site,
                    addrs: placement.addrs,
                }),
                Some(document),
            )
        };

        let seed = args.stack.seed.unwrap_or_else(rand::random);
        // The servers set to fail go first among the servers the resolver knows
        // nothing about, so the first visit meets them: the failure shows on
        // every run, not only when the draw happens to pick them.
        let first_choice = faults
            .keys()
            .filter_map(|name| topology.servers.iter().find(|s| &s.name == name))
            .flat_map(|s| s.addrs.iter().copied())
            .collect();
        let source = topology.source.clone();
        let zone_count = topology.zones.len();
        let server_count = topology.servers.len();
        let mut config = StackConfig::name_servers(topology, args.dns_port);
        config.faults = faults.clone();
        config.nsid = true;
        config.resolver = Some(ResolverSetup {
            addrs: vec![SocketAddr::new(DEFAULT_RESOLVER_IP, args.dns_port)],
            config: resolver::Config {
                seed,
                first_choice,
                ..resolver::Config::default()
            },
            options: ServeOptions::default(),
            clock: Clock::new(),
        });
        config.web = web;
        config.dnssec = keys;
        config.control_token = args.control_auth.token().map_err(anyhow::Error::msg)?;
        config.control = match args.control {
            Some(addr) => addr.to_socket_addr(DEFAULT_CONTROL_PORT),
            None => Some(SocketAddr::new(DEFAULT_RESOLVER_IP, DEFAULT_CONTROL_PORT)),
        };
        let mut stack = Stack::start(config).await?;
        stack.trace_document = document;
        // The page serves the lab on its own origin: the same control.
        let _ = lab.set(stack.control());
        // `--web-port` moves the site: the URLs follow it (0: the port bound).
        let items: Vec<Item> = match (args.web_port, stack.web_addrs.first()) {
            (Some(_), Some(bound)) => items
                .into_iter()
                .map(|item| item.on_port(bound.port()))
                .collect(),
            _ => items,
        };
        Ok(Demo {
            stack,
            items,
            seed,
            faults,
            source,
            zone_count,
            server_count,
        })
    }
}

/// The servers `--fail WHICH` means for `fault`: a zone's DS is its
/// parent's, so for `missing-ds` and `wrong-ds` a zone's name means the
/// servers of the zone above it.
fn parent_for_fault(topology: &Topology, which: &str, fault: Fault) -> String {
    if !fault.in_parent() {
        return which.to_string();
    }
    let Some(zone) = topology.zone(&format!("{}.", which.trim_end_matches('.'))) else {
        return which.to_string();
    };
    let parent = topology
        .zones
        .iter()
        .filter(|p| {
            p.origin().num_labels() < zone.origin().num_labels() && p.contains(zone.lower_origin())
        })
        .max_by_key(|p| p.origin().num_labels());
    parent.map_or_else(|| which.to_string(), |p| p.origin().to_string())
}

/// `dnstrail demo`.
pub async fn command(args: DemoArgs, items: Vec<Item>) -> anyhow::Result<ExitCode> {
    // Installed first, so Ctrl-C during start-up also stops cleanly.
    let stop = shutdown_on_signal();
    let starting = Demo::start(&args, items);
    let Demo {
        stack,
        items,
        seed,
        faults,
        source,
        zone_count,
        server_count,
    } = tokio::select! {
        demo = starting => demo?,
        _ = stop.cancelled() => return Ok(ExitCode::from(128 + last_signal().unwrap_or(2) as u8)),
    };
    let fault = faults.values().next().copied().unwrap_or(Fault::Drop);
    let style = Style::for_stdout();
    let printing = if args.json {
        Printing::Json { visits: true }
    } else {
        Printing::Story(style)
    };
    // The banner goes to stderr with --json, so stdout stays JSON lines.
    let mut banner: Box<dyn Write> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    writeln!(
        banner,
        "{}",
        style.paint(
            "1",
            &format!(
                "dnstrail demo: {zone_count} zones and {server_count} name servers from {source}"
            )
        )
    )?;
    writeln!(
        banner,
        "  server choices drawn from seed {seed} (repeat this run with --seed {seed})"
    )?;
    if !faults.is_empty() {
        let mut names: Vec<&str> = faults.keys().map(|n| n.trim_end_matches('.')).collect();
        names.sort();
        writeln!(
            banner,
            "  {}",
            style.paint(
                "33",
                &format!("set to fail ({fault}): {}", names.join(", "))
            )
        )?;
    }
    if let Some(c) = stack.control_addr {
        writeln!(
            banner,
            "  control endpoint: http://{c}/ (cache, traces, metrics, servers)"
        )?;
    }
    if let Some(anchor) = &stack.trust_anchor {
        writeln!(
            banner,
            "  zones signed (DNSSEC); the resolver validates from the trust anchor {}",
            anchor.display()
        )?;
        writeln!(
            banner,
            "  (for Unbound: trust-anchor-file; for delv -a: {})",
            anchor.with_extension("anchors").display()
        )?;
    }
    banner.flush()?;
    drop(banner);

    let (printed, mut progress) = tokio::sync::watch::channel(0);
    let printer = tokio::spawn(crate::story::print(
        stack.trace.subscribe(),
        printing,
        Some(printed),
    ));
    let reports = tokio::select! {
        reports = run_visits(&stack, &items) => reports?,
        _ = stop.cancelled() => return Ok(interrupted(stack, printer).await),
    };
    // The summary comes after the story: wait for the printer to have told
    // the last visit's end (or to have stopped, on a closed stdout).
    let last = reports
        .last()
        .and_then(|r| r.events.last())
        .map_or(0, |e| e.seq);
    let _ = progress.wait_for(|seq| *seq > last).await;

    let all_good = reports.iter().all(|r| r.ok);
    if !args.json {
        let mut out = std::io::stdout().lock();
        print_summary(&mut out, &reports, &style)?;
        if args.keep_running {
            print_commands(&mut out, &stack, &items, &style)?;
        }
        out.flush()?;
    } else if args.keep_running {
        print_commands(&mut std::io::stderr(), &stack, &items, &Style::off())?;
    }
    if args.keep_running {
        stop.cancelled().await;
        return Ok(interrupted(stack, printer).await);
    }
    printer.abort();
    stack.stop().await;
    if all_good {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("dnstrail: not every visit did what it set out to do (see the lines marked →)");
        Ok(ExitCode::FAILURE)
    }
}

/// Stopped by a signal: everything down at once, and 128 + the signal.
async fn interrupted(stack: Stack, printer: tokio::task::JoinHandle<()>) -> ExitCode {
    printer.abort();
    stack.abort().await;
    ExitCode::from(128 + last_signal().unwrap_or(2) as u8)
}

/// The `<title>` of a site's index page: what a good visit returns.
pub fn expected_title(static_dir: Option<&PathBuf>) -> Option<String> {
    let html = match static_dir {
        Some(dir) => std::fs::read_to_string(dir.join("index.html")).ok()?,
        None => String::from_utf8_lossy(crate::builtin::site_file("index.html")?).into_owned(),
    };
    crate::browse::page_title(&html)
}
