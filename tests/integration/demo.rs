//! The whole story: `demo`'s three visits in-process, asserted on their
//! events, and the binary run end to end.

use std::path::PathBuf;
use std::time::Duration;

use dnstrail::browse::Browser;
use dnstrail::demo::{Stack, expected_title, run_visits};
use dnstrail::topology::Topology;
use dnstrail::trace::{CacheKind, TraceEvent};

use crate::support::*;

fn static_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static")
}

/// The canonical topology with every port left for the kernel to pick.
fn own_ports() -> Topology {
    let mut topology = Topology::canonical(zones_dir());
    topology.dns_port = 0;
    topology.resolver.set_port(0);
    topology.web.set_port(0);
    topology
}

/// The canonical stack on ports of its own.
async fn start_stack() -> Stack {
    Stack::start(own_ports(), static_dir())
        .await
        .expect("stack starts")
}

fn kinds(events: &[dnstrail::trace::Traced]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match &e.event {
            TraceEvent::QuestionReceived { .. } => "question",
            TraceEvent::CacheAnswerHit { .. } => "answer-hit",
            TraceEvent::CacheNegativeHit { .. } => "negative-hit",
            TraceEvent::CacheDelegationHit { .. } => "delegation-hit",
            TraceEvent::CacheMiss { .. } => "miss",
            TraceEvent::UpstreamQuery { .. } => "query",
            TraceEvent::UpstreamResponse { .. } => "response",
            TraceEvent::Cached { .. } => "cached",
            TraceEvent::AnswerReturned { .. } => "answer",
            TraceEvent::BrowserLookup { .. } => "lookup",
            TraceEvent::HttpRequest { .. } => "http-request",
            TraceEvent::HttpResponse { .. } => "http-response",
            TraceEvent::JoinedInFlight { .. } => "joined",
            TraceEvent::ServedStale { .. } => "stale",
        })
        .collect()
}

#[tokio::test]
async fn three_visits_tell_the_story() {
    let stack = start_stack().await;
    let reports = run_visits(&stack).await.unwrap();
    assert_eq!(reports.len(), 3);
    let title = expected_title(&static_dir());
    for report in &reports {
        let visit = report.outcome.as_ref().expect("the page came back");
        assert_eq!(visit.status, 200);
        assert_eq!(visit.title, title);
    }

    // 1, cold: the browser asks; root, .com, one example.com server; cached;
    // returned; the HTTP exchange.
    assert_eq!(
        kinds(&reports[0].events),
        [
            "lookup",
            "question",
            "miss",
            "query",
            "response",
            "cached",
            "query",
            "response",
            "cached",
            "query",
            "response",
            "cached",
            "answer",
            "http-request",
            "http-response"
        ]
    );
    let asked = reports[0].servers_asked();
    assert_eq!(asked[..2], ["a.root-servers.net", "a.gtld-servers.net"]);
    assert!(
        asked[2].starts_with("ns-") && asked[2].ends_with(".com"),
        "{asked:?}"
    );
    assert!(reports[0].events.iter().any(|e| matches!(&e.event,
        TraceEvent::Cached { kind: CacheKind::Delegation, name, ttl: 172800, .. } if name == "example.com.")));
    let numbers: Vec<u8> = reports[0].steps.iter().filter_map(|s| s.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // 2, at once: from the cache; no server asked.
    assert_eq!(
        kinds(&reports[1].events),
        [
            "lookup",
            "question",
            "answer-hit",
            "answer",
            "http-request",
            "http-response"
        ]
    );
    let numbers: Vec<u8> = reports[1].steps.iter().filter_map(|s| s.number).collect();
    assert_eq!(numbers, [1, 2, 7, 8, 9]);
    assert!(
        reports[1]
            .steps
            .iter()
            .any(|s| s.text.contains("steps 3–6 skipped"))
    );

    // 3, after the TTL: only an example.com server, thanks to the delegation.
    assert_eq!(
        kinds(&reports[2].events),
        [
            "lookup",
            "question",
            "miss",
            "delegation-hit",
            "query",
            "response",
            "cached",
            "answer",
            "http-request",
            "http-response"
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
    let numbers: Vec<u8> = reports[2].steps.iter().filter_map(|s| s.number).collect();
    assert_eq!(numbers, [1, 2, 5, 6, 7, 8, 9]);

    // The web page's trace holds the three visits.
    let document = stack.trace_document.get().expect("trace published");
    assert_eq!(document["visits"].as_array().unwrap().len(), 3);
    assert_eq!(document["visits"][2]["label"], "expired");
    stack.stop().await;
}

#[tokio::test]
async fn two_stacks_run_side_by_side() {
    let (a, b) = tokio::join!(start_stack(), start_stack());
    assert_ne!(a.topology.dns_port, b.topology.dns_port);
    let (ra, rb) = tokio::join!(run_visits(&a), run_visits(&b));
    for reports in [ra.unwrap(), rb.unwrap()] {
        assert!(
            reports
                .iter()
                .all(|r| r.outcome.as_ref().is_ok_and(|v| v.status == 200))
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn browse_through_the_whole_chain() {
    let stack = start_stack().await;
    let browser = Browser::new(stack.resolver_addr, Duration::from_secs(5)).unwrap();
    let visit = browser.visit(&stack.url()).await.unwrap();
    assert_eq!(visit.status, 200);
    assert_eq!(
        visit.addresses,
        ["127.0.0.44".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(visit.text.contains("name"), "{}", visit.text);
    let t = &visit.timings;
    assert!(
        t.dns_us <= t.connect_us
            && t.connect_us <= t.first_byte_us
            && t.first_byte_us <= t.total_us
    );
    // The resolver really did the walk for it.
    let recent = stack.resolver.recent();
    assert_eq!(recent.len(), 1);
    assert_eq!(
        recent[0]
            .events
            .iter()
            .filter(|e| matches!(e.event, TraceEvent::UpstreamQuery { .. }))
            .count(),
        3
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_binary_demo_tells_the_story_and_exits_zero() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dnstrail"))
        .args(["demo", "--dns-port", "0", "--web-port", "0"])
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains('\x1b'), "no colour when piped");
    for line in [
        "Visit 1, cold",
        "3.  resolver   asks a.root-servers.net",
        "referral to com.",
        "4.  resolver   asks a.gtld-servers.net",
        "cached the name servers of example.com. for 172800 s = 2 days",
        "answers with authority: www.example.com. A 127.0.0.44 (TTL 300)",
        "Visit 2, at once",
        "steps 3–6 skipped",
        "Visit 3, 301 s later",
        "steps 3 and 4 skipped, the root and com. not asked",
        "9.  web server returns 200",
        "The three visits",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[tokio::test]
async fn the_binary_demo_json_is_one_event_per_line() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dnstrail"))
        .args(["demo", "--json", "--dns-port", "0", "--web-port", "0"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "upstream_query")
            .count(),
        4
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "http_response")
            .count(),
        3
    );
    assert!(events.iter().all(|e| e["visit"].as_u64().is_some()));
}

#[tokio::test]
async fn keep_running_prints_commands_and_stops_cleanly_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dnstrail"))
        .args([
            "demo",
            "--keep-running",
            "--dns-port",
            "0",
            "--web-port",
            "0",
        ])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
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

    stop_cleanly(&mut child, "dnstrail demo --keep-running").await;
}

/// A real browser renders the page and its trace, where Chromium is installed.
#[tokio::test]
async fn chromium_renders_the_page_and_the_trace() {
    let Ok(chromium) = which("chromium") else {
        eprintln!("note: chromium not installed; page not rendered");
        return;
    };
    let stack = start_stack().await;
    run_visits(&stack).await.unwrap();
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
            stack.web_addr.ip()
        ))
        .arg(stack.url())
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
    stack.stop().await;
}

fn which(tool: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(tool))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

/// `demo --fail ns-1,ns-2,ns-3`: three of the four hosted-zone servers drop
/// every query; the page still comes back, and the story shows the timeouts.
#[tokio::test]
async fn the_page_comes_back_while_one_of_the_four_is_healthy() {
    let topology = own_ports();
    let mut faults = std::collections::HashMap::new();
    for which in ["ns-1", "ns-2", "ns-3"] {
        for ip in topology.find_hosts(which).unwrap() {
            faults.insert(ip, dnstrail::fault::Fault::Drop);
        }
    }
    let stack = Stack::start_with_faults(topology, static_dir(), &faults)
        .await
        .unwrap();
    let reports = run_visits(&stack).await.unwrap();
    for report in &reports {
        let visit = report.outcome.as_ref().expect("the page came back");
        assert_eq!(visit.status, 200);
    }
    let timeouts = reports
        .iter()
        .flat_map(|r| &r.steps)
        .filter(|s| s.text.contains("no response (timeout)"))
        .count();
    assert!(timeouts >= 1, "the story shows the dead servers");
    let healthy = reports
        .iter()
        .flat_map(|r| r.servers_asked())
        .any(|s| s == "ns-4.awsdns-04.com");
    assert!(healthy, "the healthy server answered");
    stack.stop().await;
}
