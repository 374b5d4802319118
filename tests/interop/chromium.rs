//! A real browser on the real page: `dnstrail demo --keep-running` on
//! port 53, and headless Chromium loading the site, its name resolved
//! through the chain (the private `/etc/resolv.conf` of `make interop`
//! names the demo's resolver) and, apart from DNS, with
//! `--host-resolver-rules`. The page must show the demo's visits.
//!
//! The demo runs with `--json`: its trace events, one JSON object a line
//! on stdout, say when the visits are over and which questions the
//! resolver received (Chromium's among them).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dnstrail::topology::{DEFAULT_CONTROL_PORT, DEFAULT_RESOLVER_IP, DEFAULT_URL, Topology};
use tokio::process::Command;

use crate::clients::private_resolv_conf;
use crate::differential::prerequisites;
use crate::process::{Process, Proto, dns_ports, require_free, run};
use crate::report::{Report, find_tool};
use crate::subjects::{DNS_PORT, dnstrail};

/// The demo visits each URL in three rounds (cold, at once, after its
/// clock has passed the answer's TTL): README, "What `make demo` shows".
const ROUNDS: usize = 3;

/// How long Chromium may take for one page.
const CHROMIUM_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "interop: needs root, the demo on port 53 and Chromium; `make interop` runs it"]
async fn chromium_on_the_page_of_the_demo() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let mut report = Report::new("chromium");
    if !prerequisites(&mut report) {
        return report.finish();
    }
    let logs = report.subdir("logs");
    let Some(mut demo) = start_demo(&mut report, &logs).await else {
        return report.finish();
    };
    let visits = count_visits(&mut report, &mut demo).await;
    let title = dnstrail::demo::expected_title(None).unwrap_or_default();
    let site = DEFAULT_URL;
    let host = reqwest::Url::parse(site)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();

    match (find_tool("chromium"), visits) {
        (None, _) => report.skip("Chromium", "chromium is not installed"),
        (Some(_), None) => report.fail("Chromium", "not run: the demo's visits did not end"),
        (Some(chromium), Some(visits)) => {
            let page = PageShows {
                visits,
                title: title.clone(),
            };
            let check = format!("Chromium through the chain: --dump-dom {site}");
            match private_resolv_conf() {
                Err(why) => {
                    report.skip(&check, &why);
                    report.skip("Chromium screenshot through the chain", why);
                }
                Ok(()) => {
                    let dom = report.dir().join("dom-chain.html");
                    let outcome = dump_dom(&chromium, &[], site, &dom, &logs)
                        .await
                        .and_then(|html| page.check(&html));
                    let asked = resolver_heard(&mut demo, &host);
                    let outcome = outcome.and_then(|shown| match asked {
                        0 => Err(format!("the page loaded, but the demo's resolver received no question for {host} from Chromium")),
                        n => Ok(format!("the demo's resolver answered Chromium's {n} question(s) for {host}; DOM: {shown}")),
                    });
                    report.check(&check, outcome);

                    let png = report.dir().join("page.png");
                    report.check(
                        "Chromium screenshot through the chain",
                        screenshot(&chromium, site, &png, &logs)
                            .await
                            .map(|d| format!("{}, {d}", report.shown(&png))),
                    );
                }
            }
            let web = web_addr();
            let rule = format!("MAP {host} {}", web.ip());
            let check = format!("Chromium --host-resolver-rules='{rule}': --dump-dom {site}");
            let dom = report.dir().join("dom-mapped.html");
            let args = [format!("--host-resolver-rules={rule}")];
            report.check(
                check,
                dump_dom(&chromium, &args, site, &dom, &logs)
                    .await
                    .and_then(|html| page.check(&html)),
            );
        }
    }

    let stopped = demo.stop().await;
    report.check(
        "dnstrail demo --keep-running stops on SIGTERM",
        match stopped {
            Ok(status) if status.code() == Some(128 + libc::SIGTERM) => {
                Ok(format!("exit {} (128 + SIGTERM)", 128 + libc::SIGTERM))
            }
            Ok(status) => Err(format!(
                "{status}, expected exit {} (128 + SIGTERM)",
                128 + libc::SIGTERM
            )),
            Err(why) => Err(why),
        },
    );
    report.finish();
}

/// Where the demo's web server listens: where the zones put the site.
fn web_addr() -> SocketAddr {
    let placement = Topology::builtin()
        .place_site(&[DEFAULT_URL.to_string()], None)
        .expect("the built-in zones place the site");
    placement.addrs[0]
}

async fn start_demo(report: &mut Report, logs: &Path) -> Option<Process> {
    let check = "dnstrail demo --keep-running --dns-port 53 --json";
    let topology = Topology::builtin();
    let mut wanted = dns_ports(
        topology
            .server_addrs()
            .into_iter()
            .chain([DEFAULT_RESOLVER_IP])
            .map(|ip| SocketAddr::new(ip, DNS_PORT)),
    );
    wanted.push((Proto::Tcp, web_addr()));
    wanted.push((
        Proto::Tcp,
        SocketAddr::new(DEFAULT_RESOLVER_IP, DEFAULT_CONTROL_PORT),
    ));
    if let Err(why) = require_free(&wanted) {
        report.fail(check, why);
        return None;
    }
    let mut command = Command::new(dnstrail());
    command
        .arg("demo")
        .arg("--keep-running")
        .args(["--dns-port", &DNS_PORT.to_string()])
        .arg("--json");
    match Process::start("dnstrail demo", command, &logs.join("demo.log")) {
        Ok(process) => {
            report.pass(
                check,
                format!(
                    "started; its trace events in {}",
                    report.shown(&process.log)
                ),
            );
            Some(process)
        }
        Err(why) => {
            report.fail(check, why);
            None
        }
    }
}

/// Wait for the demo's visits to end (its `visit_ended` events): how many
/// there were.
async fn count_visits(report: &mut Report, demo: &mut Process) -> Option<usize> {
    let mut ended = 0;
    let mut good = 0;
    let waited = demo
        .wait_for_line(Duration::from_secs(30), "the end of its visits", |line| {
            let event: serde_json::Value = serde_json::from_str(line).ok()?;
            if event["event"] != "visit_ended" {
                return None;
            }
            ended += 1;
            if event["ok"] == true {
                good += 1;
            }
            (ended == ROUNDS).then_some(())
        })
        .await;
    let check = "the demo's visits, then the stack left running";
    match waited {
        Ok(()) if good == ended => {
            report.pass(check, format!("{ended} visits, each got the page"));
            Some(ended)
        }
        Ok(()) => {
            report.fail(check, format!("{good} of {ended} visits got the page"));
            Some(ended)
        }
        Err(why) => {
            report.fail(check, why);
            None
        }
    }
}

/// How many questions for `host` the demo's resolver received since the
/// last look.
fn resolver_heard(demo: &mut Process, host: &str) -> usize {
    let host = format!("{}.", host.trim_end_matches('.'));
    demo.lines_so_far()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["event"] == "question_received" && e["question"]["name"] == host.as_str())
        .count()
}

/// What the page must show: the demo's visits and the site's title.
struct PageShows {
    visits: usize,
    title: String,
}

impl PageShows {
    fn check(&self, html: &str) -> Result<String, String> {
        let said = format!("{} visits recorded by", self.visits);
        let sections = html.matches("<section class=\"visit").count();
        if !html.contains(&said) {
            Err(format!("the DOM does not say {said:?}"))
        } else if sections != self.visits {
            Err(format!(
                "{sections} <section class=\"visit\"> in the DOM, expected {}",
                self.visits
            ))
        } else if !html.contains(&format!("<title>{}</title>", self.title)) {
            Err(format!("not the page: no <title>{}</title>", self.title))
        } else {
            Ok(format!(
                "{said:?}, {sections} visit sections, the site's title"
            ))
        }
    }
}

/// Chromium, headless and offline but for the page, with a fresh profile
/// (removed by [`Profile`]'s drop).
fn chromium_command(chromium: &Path, logs: &Path) -> Result<(Command, Profile), String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let profile = logs.join(format!(
        "chromium-profile-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).map_err(|e| e.to_string())?;
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=DnsOverHttps",
        "--virtual-time-budget=5000",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    Ok((command, Profile(profile)))
}

/// A Chromium profile directory, removed when done with.
struct Profile(std::path::PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn dump_dom(
    chromium: &Path,
    args: &[String],
    url: &str,
    dom: &Path,
    logs: &Path,
) -> Result<String, String> {
    let (mut command, _profile) = chromium_command(chromium, logs)?;
    command.args(args).arg("--dump-dom").arg(url);
    let log = dom.with_extension("log");
    let out = run(command, CHROMIUM_WITHIN, &log).await?;
    let _ = std::fs::write(dom, &out.stdout);
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!("chromium {}", out.complaint()))
    }
}

async fn screenshot(chromium: &Path, url: &str, png: &Path, logs: &Path) -> Result<String, String> {
    const WIDTH: u32 = 1200;
    const HEIGHT: u32 = 2400;
    let _ = std::fs::remove_file(png);
    let (mut command, _profile) = chromium_command(chromium, logs)?;
    command
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url);
    let out = run(command, CHROMIUM_WITHIN, &png.with_extension("log")).await?;
    if !out.status.success() {
        return Err(format!("chromium {}", out.complaint()));
    }
    let bytes = std::fs::read(png).map_err(|e| format!("no screenshot written: {e}"))?;
    if bytes.len() < 24 || bytes[..8] != *b"\x89PNG\r\n\x1a\n" {
        return Err("the screenshot is not a PNG".to_string());
    }
    let width = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
    if (width, height) != (WIDTH, HEIGHT) {
        return Err(format!("{width}x{height}, expected {WIDTH}x{HEIGHT}"));
    }
    Ok(format!("{width}x{height}, {} bytes", bytes.len()))
}
