//! The whole story: `demo`'s visits in-process, asserted on their events,
//! and the binary run end to end, on the demo's hierarchy and another.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use dnstrail::cli::{Cli, Command, DemoArgs};
use dnstrail::demo::{Demo, Item, VisitReport, expected_title_of, run_visits};
use dnstrail::trace::{CacheKind, TraceEvent};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

/// Demo options as the command line gives them, every port the kernel's.
fn demo_args(extra: &[&str]) -> DemoArgs {
    let mut argv = vec![
        "dnstrail",
        "demo",
        "--dns-port",
        "0",
        "--web-port",
        "0",
        "--control",
        "127.0.0.1:0",
    ];
    argv.extend_from_slice(extra);
    match Cli::parse_from(argv).command {
        Command::Demo(args) => args,
        _ => unreachable!(),
    }
}

/// The demo of `demo-zones/` on ports of its own, visiting the default URL.
async fn start_demo(extra: &[&str]) -> Demo {
    let mut args = demo_args(extra);
    if args.stack.zones.is_none() {
        args.stack.zones = Some(zones_dir());
    }
    Demo::start(&args, Vec::new()).await.expect("demo starts")
}

async fn visits(demo: &Demo) -> Vec<VisitReport> {
    run_visits(&demo.stack, &demo.items).await.unwrap()
}

/// The resolver's events of a visit for the A question, kinds only (the
/// AAAA question runs beside it).
fn kinds_for_a(report: &VisitReport) -> Vec<&'static str> {
    let a = report.events.iter().find_map(|e| match &e.event {
        TraceEvent::QuestionReceived { question, .. }
            if question.rtype == hickory_proto::rr::RecordType::A =>
        {
            Some(e.resolution)
        }
        _ => None,
    });
    report
        .events
        .iter()
        .filter(|e| Some(e.resolution) == a)
        .map(|e| match &e.event {
            TraceEvent::QuestionReceived { .. } => "question",
            TraceEvent::CacheAnswerHit { .. } => "answer-hit",
            TraceEvent::CacheDelegationHit { .. } => "delegation-hit",
            TraceEvent::CacheMiss { .. } => "miss",
            TraceEvent::UpstreamQuery { .. } => "query",
            TraceEvent::UpstreamResponse { .. } => "response",
            TraceEvent::Cached { .. } => "cached",
            TraceEvent::AnswerReturned { .. } => "answer",
            _ => "other",
        })
        .collect()
}

fn numbers(report: &VisitReport) -> Vec<u8> {
    report.lines.iter().filter_map(|l| l.number).collect()
}

#[tokio::test]
async fn three_visits_tell_the_story() {
    let demo = start_demo(&[]).await;
    let reports = visits(&demo).await;
    assert_eq!(reports.len(), 3);
    let title = expected_title_of(None);
    for report in &reports {
        let visit = report.page().expect("the page came back");
        assert_eq!(visit.status, 200);
        assert_eq!(visit.title, title);
        assert!(report.ok, "{}", report.summary);
    }

    // 1, cold: root, .com, one example.com server; cached; returned.
    assert_eq!(
        kinds_for_a(&reports[0]),
        [
            "question", "miss", "query", "response", "cached", "query", "response", "cached",
            "query", "response", "cached", "answer"
        ]
    );
    let asked = reports[0].servers_asked();
    assert_eq!(asked[..2], ["a.root-servers.net", "a.gtld-servers.net"]);
    assert!(reports[0].events.iter().any(|e| matches!(&e.event,
        TraceEvent::Cached { kind: CacheKind::Delegation, name, ttl: 172800, .. } if name == "example.com.")));
    assert_eq!(numbers(&reports[0]), [1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // 2, at once: from the cache; no server asked.
    assert_eq!(
        kinds_for_a(&reports[1]),
        ["question", "answer-hit", "answer"]
    );
    assert_eq!(numbers(&reports[1]), [1, 2, 7, 8, 9]);
    assert!(
        reports[1]
            .lines
            .iter()
            .any(|l| l.text.contains("steps 3–6 skipped"))
    );
    assert!(
        reports[1]
            .summary
            .contains("answered from the resolver's cache")
    );

    // 3, after the TTL: only an example.com server, thanks to the delegation.
    assert_eq!(
        kinds_for_a(&reports[2]),
        [
            "question",
            "miss",
            "delegation-hit",
            "query",
            "response",
            "cached",
            "answer"
        ]
    );
    let skipped = reports[2].events.iter().find_map(|e| match &e.event {
        TraceEvent::CacheDelegationHit { zone, skipped, .. } => {
            Some((zone.clone(), skipped.clone()))
        }
        _ => None,
    });
    assert_eq!(
        skipped,
        Some(("example.com.".into(), vec![".".into(), "com.".into()]))
    );
    assert_eq!(numbers(&reports[2]), [1, 2, 5, 6, 7, 8, 9]);
    assert!(
        reports[2].title.contains("301 s later"),
        "{}",
        reports[2].title
    );

    // The web page's trace holds the three visits.
    let document = demo
        .stack
        .trace_document
        .as_ref()
        .and_then(|d| d.get())
        .expect("trace published");
    assert_eq!(document["visits"].as_array().unwrap().len(), 3);
    assert_eq!(document["visits"][2]["label"], "later");
    demo.stack.stop().await;
}

#[tokio::test]
async fn events_are_stamped_on_one_clock_and_only_go_forward() {
    let demo = start_demo(&[]).await;
    let mut watch = demo.stack.trace.subscribe();
    let reports = visits(&demo).await;
    let all: Vec<_> = std::iter::from_fn(|| watch.try_recv()).collect();
    assert!(all.len() > 20);
    for pair in all.windows(2) {
        assert!(pair[0].seq < pair[1].seq);
        assert!(
            pair[0].at_us <= pair[1].at_us,
            "{:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    // The browser's question comes before the resolver hears it, and the
    // lookup's end after the resolver's answer.
    let first = &reports[0].events;
    let position = |f: &dyn Fn(&TraceEvent) -> bool| first.iter().position(|e| f(&e.event));
    let asked = position(&|e| matches!(e, TraceEvent::BrowserQuery { .. })).unwrap();
    let heard = position(&|e| matches!(e, TraceEvent::QuestionReceived { .. })).unwrap();
    let answered = position(&|e| matches!(e, TraceEvent::AnswerReturned { .. })).unwrap();
    let found = position(&|e| matches!(e, TraceEvent::BrowserLookup { .. })).unwrap();
    assert!(asked < heard && answered < found);
    demo.stack.stop().await;
}

#[tokio::test]
async fn two_demos_run_side_by_side() {
    let (a, b) = tokio::join!(start_demo(&[]), start_demo(&[]));
    assert_ne!(a.stack.dns_port, b.stack.dns_port);
    let (ra, rb) = tokio::join!(visits(&a), visits(&b));
    for reports in [ra, rb] {
        assert!(reports.iter().all(|r| r.ok));
    }
    a.stack.stop().await;
    b.stack.stop().await;
}

/// `demo --fail ns-2`: on every seeded run, the first visit meets ns-2
/// failing, the story says so, and the page still comes back.
#[tokio::test]
async fn a_failing_server_shows_in_the_story_on_every_seeded_run() {
    for seed in 0..20 {
        let seed = seed.to_string();
        let demo = start_demo(&["--fail", "ns-2", "--seed", &seed]).await;
        assert_eq!(demo.seed.to_string(), seed);
        let reports = visits(&demo).await;
        let first = &reports[0];
        assert!(first.ok, "seed {seed}: {}", first.summary);
        let met = first.events.iter().any(|e| {
            matches!(&e.event, TraceEvent::UpstreamResponse { server, response: dnstrail::trace::ResponseKind::Timeout, .. }
                if server.name == "ns-2.awsdns-02.com.")
        });
        assert!(met, "seed {seed}: ns-2 was not met");
        assert!(
            first
                .lines
                .iter()
                .any(|l| l.text.contains("ns-2.awsdns-02.com") && l.number == Some(5)),
            "seed {seed}: the story does not show ns-2 being asked"
        );
        assert!(
            first
                .lines
                .iter()
                .any(|l| l.text.contains("no response (timeout)")),
            "seed {seed}"
        );
        demo.stack.stop().await;
    }
}

/// `--fail root`: the root times out once; after that it is held down and
/// the visits fail at once, without asking it again (RFC 9520).
#[tokio::test]
async fn a_failed_server_is_not_asked_again_for_a_while() {
    let demo = start_demo(&["--fail", "root"]).await;
    let started = Instant::now();
    let reports = visits(&demo).await;
    let root_queries: usize = reports
        .iter()
        .flat_map(|r| &r.events)
        .filter(|e| matches!(&e.event, TraceEvent::UpstreamQuery { zone, .. } if zone == "."))
        .count();
    // The A and AAAA questions of the first visit each meet it once.
    assert!(root_queries <= 2, "the root was asked {root_queries} times");
    assert!(reports.iter().all(|r| !r.ok));
    assert!(reports.iter().all(|r| r.summary.starts_with("failed")));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let told = reports
        .iter()
        .flat_map(|r| &r.lines)
        .any(|l| l.text.contains("RFC 9520"));
    assert!(told, "the story says why the root is not asked");
    demo.stack.stop().await;
}

/// `demo --fail ns-1,ns-2,ns-3`: three of the four hosted-zone servers drop
/// every query; the page still comes back, and the story shows the timeouts.
#[tokio::test]
async fn the_page_comes_back_while_one_of_the_four_is_healthy() {
    let demo = start_demo(&["--fail", "ns-1,ns-2,ns-3"]).await;
    let reports = visits(&demo).await;
    for report in &reports {
        assert!(report.ok, "{}", report.summary);
    }
    let timeouts = reports
        .iter()
        .flat_map(|r| &r.lines)
        .filter(|l| l.text.contains("no response (timeout)"))
        .count();
    assert!(
        timeouts >= 1,
        "the story shows the dead servers: {:#?}",
        reports
            .iter()
            .map(|r| (
                &r.summary,
                r.lines.iter().map(|l| &l.text).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
    );
    let healthy = reports
        .iter()
        .flat_map(|r| r.servers_asked())
        .any(|s| s == "ns-4.awsdns-04.com");
    assert!(healthy, "the healthy server answered");
    demo.stack.stop().await;
}

/// Editing ns-2's glue in com.'s zone file moves ns-2, and `--fail ns-2`
/// breaks it where it now is.
#[tokio::test]
async fn edited_glue_moves_the_server_and_the_fault_follows_it() {
    let dir = temp_dir("moved-glue");
    for entry in std::fs::read_dir(zones_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(
            "ns-2.awsdns-02  172800  IN A    127.0.0.5",
            "ns-2.awsdns-02  172800  IN A    127.0.0.15",
        );
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let demo = start_demo(&["--zones", dir.to_str().unwrap(), "--fail", "ns-2"]).await;
    let moved = demo.stack.server("ns-2").unwrap();
    assert_eq!(
        moved.server.addrs,
        ["127.0.0.15".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(moved.fault.get().is_some());
    let reports = visits(&demo).await;
    let asked_new = reports[0].events.iter().any(|e| {
        matches!(&e.event, TraceEvent::UpstreamQuery { server, .. } if server.addr.ip().to_string() == "127.0.0.15")
    });
    assert!(asked_new, "the resolver asked ns-2 at its new address");
    assert!(reports[0].ok);
    demo.stack.stop().await;
}

/// Questions other than the page's: CNAME, NXDOMAIN, NODATA, in the story.
#[tokio::test]
async fn asks_show_cnames_nxdomain_and_nodata() {
    let args = demo_args(&["--zones", zones_dir().to_str().unwrap()]);
    let items = vec![
        Item::parse_ask("blog.example.com/A").unwrap(),
        Item::parse_ask("nope.example.com").unwrap(),
        Item::parse_ask("www.example.com/MX").unwrap(),
    ];
    let demo = Demo::start(&args, items).await.unwrap();
    let reports = visits(&demo).await;
    assert_eq!(reports.len(), 9);
    assert!(
        reports[0].summary.contains("CNAME www.example.com."),
        "{}",
        reports[0].summary
    );
    assert!(
        reports[1].summary.contains("NXDOMAIN"),
        "{}",
        reports[1].summary
    );
    assert!(
        reports[2].summary.contains("NODATA") || reports[2].summary.contains("no such"),
        "{}",
        reports[2].summary
    );
    // The second round is all from the cache, negative answers included.
    for report in &reports[3..6] {
        assert_eq!(report.upstream_queries(), 0, "{}", report.title);
    }
    demo.stack.stop().await;
}

/// A hierarchy unlike the demo's, told end to end by the binary: two TLDs,
/// a name server named in another TLD (no glue), a CNAME across zones, and
/// a delegation two levels below a TLD.
#[tokio::test]
async fn another_hierarchy_is_told_end_to_end() {
    let dir = crate::hierarchy::write_zones();
    let output = dnstrail_demo(&[
        "--zones",
        dir.to_str().unwrap(),
        "--visit",
        "http://www.alpha.test:8080/",
        "--ask",
        "inner.deep.alpha.test/A",
    ])
    .output()
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "7 zones and 6 name servers",
        "CNAME web.beta.test.",
        "asks ns.deep.alpha.test",
        "9.  web server returns 200",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    // The A and AAAA questions of the first visit walk side by side; which
    // reaches a server first is the scheduler's choice, so each server is
    // asked in a numbered step or in the companion's one-line summary.
    for server in [
        "ns.root-servers.zz",
        "ns.nic.test",
        "ns1.alpha.test",
        "ns.hosting.zz",
    ] {
        assert!(
            stdout.contains(&format!("asks {server}"))
                || stdout.contains(&format!("asked {server}"))
                || stdout.contains(&format!("→ {server}")),
            "{server} never asked in:\n{stdout}"
        );
    }
}

fn dnstrail_demo(extra: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dnstrail"));
    command
        .args([
            "demo",
            "--dns-port",
            "0",
            "--web-port",
            "0",
            "--control",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_binary_demo_tells_the_story_and_exits_zero() {
    let output = dnstrail_demo(&[]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains('\x1b'), "no colour when piped");
    for line in [
        "server choices drawn from seed",
        "Visit 1, cold",
        // Asked in a numbered step, or in the AAAA question's summary line
        // when that walk reached them first (they run side by side).
        "a.root-servers.net",
        "a.gtld-servers.net",
        "cached the name servers of example.com. for 172800 s = 2 days",
        "answers with authority: www.example.com. A 127.0.0.44 (TTL 300)",
        "Visit 2, at once",
        "steps 3–6 skipped",
        "Visit 3, 301 s later",
        "steps 3 and 4 skipped, the root and com. not asked",
        "9.  web server returns 200",
        "→ the page came back",
        "The visits",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[tokio::test]
async fn the_binary_demo_json_is_one_event_per_line() {
    let output = dnstrail_demo(&["--json"]).output().await.unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "http_response")
            .count(),
        3
    );
    assert!(events.iter().all(|e| e["visit"].as_u64().is_some()));
    // Written as they happen: in order of the trace's clock.
    let times: Vec<u64> = events
        .iter()
        .map(|e| e["at_us"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn fault_without_fail_and_a_missing_site_are_refused_at_start() {
    let output = dnstrail_demo(&["--fault", "servfail"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--fail"), "{stderr}");

    let output = dnstrail_demo(&["--static", "/nonexistent/site"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/site"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing told before the error");
}

/// Ctrl-C in the middle of a slow visit: the demo is gone within 100 ms,
/// with status 130, and nothing it bound is left listening.
#[tokio::test]
async fn ctrl_c_during_a_slow_visit_stops_everything_at_once() {
    let mut child = dnstrail_demo(&["--fail", "auth", "--fault", "delay=2s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut control = None;
    let wait = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("control endpoint: http://").nth(1) {
                control = rest
                    .split('/')
                    .next()
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
            }
            // The query to the slow server has gone out.
            if line.contains("5.  resolver") {
                return;
            }
        }
        panic!("stdout ended early");
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the slow visit starts");
    let pid = child.id().unwrap() as libc::pid_t;
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the demo stops")
        .unwrap();
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(130));
    assert!(took < Duration::from_millis(100), "took {took:?}");
    let control = control.expect("the banner names the control endpoint");
    assert!(
        tokio::net::TcpStream::connect(control).await.is_err(),
        "the control endpoint is still listening"
    );
}

#[tokio::test]
async fn keep_running_prints_commands_and_stops_on_sigterm_with_143() {
    let mut child = dnstrail_demo(&["--keep-running"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("Ctrl-C stops everything");
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("stdout ended early");
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the stack comes up");
    let text = seen.join("\n");
    for needle in [
        "dig +norec @127.0.0.2 -p ",
        "curl -H 'Host: www.example.com' http://127.0.0.44:",
        "curl --resolve www.example.com:",
        "dnstrail browse --resolver 127.0.0.1:",
        "/cache",
    ] {
        assert!(text.contains(needle), "missing `{needle}`:\n{text}");
    }
    // The printed commands work: the web server answers the curl line.
    let url_line = seen.iter().find(|l| l.contains("curl -H")).unwrap();
    let addr: std::net::SocketAddr = url_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());

    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(status.code(), Some(143));
}

/// The binary carries its zones and site: copied anywhere and run from an
/// empty directory, it tells the whole story.
#[tokio::test]
async fn an_installed_binary_works_from_an_empty_directory() {
    let place = temp_dir("installed");
    let bin = place.join("dnstrail");
    std::fs::copy(env!("CARGO_BIN_EXE_dnstrail"), &bin).unwrap();
    let empty = temp_dir("empty-cwd");
    let output = tokio::process::Command::new(&bin)
        .args([
            "demo",
            "--dns-port",
            "0",
            "--web-port",
            "0",
            "--control",
            "127.0.0.1:0",
        ])
        .current_dir(&empty)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("from <built-in>"), "{stdout}");
    assert!(stdout.contains("9.  web server returns 200"), "{stdout}");

    // `init` writes the same files out, and they tell the same story.
    let written = temp_dir("init");
    let status = tokio::process::Command::new(&bin)
        .arg("init")
        .arg(&written)
        .output()
        .await
        .unwrap();
    assert!(status.status.success());
    assert!(same_files(&written.join("zones"), &zones_dir()));
}

fn same_files(a: &Path, b: &Path) -> bool {
    let list = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (
                    PathBuf::from(path.file_name().unwrap()),
                    std::fs::read(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    list(a) == list(b)
}

/// A real browser renders the page and its trace, where Chromium is installed.
/// The live lab below them waits to be on screen before it opens its event
/// stream, so a browser dumping the page is not held open by it.
#[tokio::test]
async fn chromium_renders_the_page_and_the_trace() {
    let Some(chromium) = tool("chromium") else {
        return;
    };
    let demo = start_demo(&[]).await;
    visits(&demo).await;
    let web = demo.stack.web_addrs[0];
    let url = match &demo.items[0] {
        Item::Visit(url) => url.clone(),
        _ => unreachable!(),
    };
    let profile = temp_dir("chromium");
    let output = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!(
            "--host-resolver-rules=MAP www.example.com {}",
            web.ip()
        ))
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("chromium finishes")
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("How a name becomes a page"), "{dom}");
    assert!(
        dom.contains("3 visits recorded by"),
        "the trace was not rendered:\n{dom}"
    );
    assert_eq!(dom.matches("<section class=\"visit").count(), 3, "{dom}");
    assert!(
        dom.contains("data-state=\"ready\""),
        "the lab did not find the stack, or went live off screen:\n{dom}"
    );
    demo.stack.stop().await;
}

/// The page's own origin serves the lab: the control endpoint under /lab/,
/// the live events included, and state changes from the page itself.
#[tokio::test]
async fn the_site_serves_the_lab_on_its_own_origin() {
    let demo = start_demo(&[]).await;
    visits(&demo).await;
    let web = demo.stack.web_addrs[0];
    let host = format!("www.example.com:{}", web.port());
    let (status, body) = http_request(web, "GET", "/lab/servers", &[("Host", &host)]).await;
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("ns-2.awsdns-02.com."), "{body}");
    let origin = format!("http://{host}");
    let (status, _) = http_request(
        web,
        "POST",
        "/lab/servers/ns-2/fault?kind=servfail",
        &[("Host", &host), ("Origin", &origin)],
    )
    .await;
    assert!(status.contains("200"), "{status}");
    assert!(demo.stack.server("ns-2").unwrap().fault.get().is_some());
    // A visit from the page is told like the demo's.
    let mut watch = demo.stack.trace.subscribe();
    let url = match &demo.items[0] {
        Item::Visit(url) => url.clone(),
        _ => unreachable!(),
    };
    let (status, body) = http_request(
        web,
        "POST",
        &format!("/lab/visit?url={url}"),
        &[("Host", &host), ("Origin", &origin)],
    )
    .await;
    assert!(status.contains("202"), "{status} {body}");
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        watch.wait_for(|e| matches!(e.event, TraceEvent::VisitEnded { .. })),
    )
    .await
    .expect("the visit ends")
    .unwrap();
    assert!(
        matches!(&ended.event, TraceEvent::VisitEnded { ok: true, .. }),
        "{ended:?}"
    );
    // Another site's page cannot.
    let (status, _) = http_request(
        web,
        "POST",
        "/lab/flush",
        &[("Host", &host), ("Origin", "http://evil.example")],
    )
    .await;
    assert!(status.contains("403"), "{status}");
    demo.stack.stop().await;
}
