//! The page as the lab, in a real browser: headless Chromium driven through
//! chromedriver's WebDriver API (JSON over HTTP), against a demo's stack
//! started in-process. The tests act as a reader would (click, type) and
//! as someone beside them would (a DNS question from outside the page), and
//! wait for what the page should show by polling its DOM, each wait bounded.
//!
//! ```text
//!  test ──WebDriver──► chromedriver ──► headless Chromium ──► the page ──/lab/…──► the stack
//!    └──────────── a DNS question (as dig asks it) ──────────► the resolver ──┘
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use dnstrail::cli::{Cli, Command};
use dnstrail::demo::{Demo, Item, run_visits};
use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::trace::{ResponseKind, TraceEvent};
use dnstrail::web::{self, SiteSource, TraceDocument, WebConfig, Website};
use hickory_proto::rr::RecordType;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

/// The longest anything may take to show on the page.
const PATIENCE: Duration = Duration::from_secs(15);

/// The demo of a copy of `demo-zones/` (the page changes records, which
/// writes a journal beside them), every port the kernel's.
async fn start_demo() -> Demo {
    let zones = copy_of_demo_zones("lab");
    let argv = [
        "dnstrail",
        "demo",
        "--dns-port",
        "0",
        "--web-port",
        "0",
        "--control",
        "127.0.0.1:0",
        "--zones",
        zones.to_str().unwrap(),
    ];
    let Command::Demo(args) = Cli::parse_from(argv).command else {
        unreachable!()
    };
    Demo::start(&args, Vec::new()).await.expect("demo starts")
}

fn page_url(demo: &Demo) -> String {
    match &demo.items[0] {
        Item::Visit(url) => url.clone(),
        Item::Ask(..) => unreachable!("the demo visits its page"),
    }
}

/// Where the build puts its output (`target/`, or `CARGO_TARGET_DIR`): the
/// test binary lives in its `debug/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("target/debug/deps/<test>")
        .to_path_buf()
}

/// chromedriver on a port of its own, and one headless Chromium session
/// through it; both end when this is dropped, even if the test failed.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: tokio::process::Child,
    profile: PathBuf,
}

/// The key WebDriver names elements by (W3C WebDriver, §12.2).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Chromium at `width`×`height`, reaching `host` at `ip`; `None`, after
    /// saying the test is skipped, when Chromium or chromedriver is missing.
    async fn open(host: &str, ip: IpAddr, width: u32, height: u32) -> Option<Browser> {
        let chromium = tool("chromium")?;
        let chromedriver = tool("chromedriver")?;
        // A process group of its own: Chromium and its helpers join it, so
        // one signal ends them all, whatever state the test left them in.
        let mut driver = tokio::process::Command::new(chromedriver)
            .arg("--port=0")
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");

        // "ChromeDriver was started successfully on port 41213."
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .expect("chromedriver says its port")
        .expect("chromedriver's port");
        // Whatever else it prints is read and let go, so it never blocks.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = temp_dir("chromium-lab");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--host-resolver-rules=MAP {host} {ip}"),
            format!("--window-size={width},{height}"),
        ];
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        }}});
        let base = format!("http://127.0.0.1:{port}");
        let created = send(
            &http,
            Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )
        .await;
        let id = created["sessionId"].as_str().expect("a session id");
        Some(Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            profile,
        })
    }

    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        send(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    async fn go(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Run `script` (a function body) in the page; its return value.
    async fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Poll `script` until it returns something other than null or false,
    /// and return that; fail after [`PATIENCE`], saying what was awaited
    /// and what the lab showed.
    async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.run(script, args.clone()).await;
            if !(value.is_null() || value == false) {
                return value;
            }
            if Instant::now() > deadline {
                let shown = self
                    .run(
                        "const text = (id) => (document.getElementById(id) || {}).textContent;
                         return [text('lab-status'), text('live-status'), text('control-result'),
                           [...document.querySelectorAll('#live .trail')].slice(0, 6)
                             .map((t) => t.textContent.slice(0, 300))];",
                        json!([]),
                    )
                    .await;
                panic!("waited {PATIENCE:?} for {what}; the lab showed: {shown:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Replace an input's text, key by key, as a reader types it.
    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn resize(&self, width: u32, height: u32) {
        self.command(
            Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    async fn screenshot(&self, path: &Path) {
        let png = self.command(Method::GET, "/screenshot", None).await;
        let bytes = data_encoding::BASE64
            .decode(png.as_str().expect("base64 PNG").as_bytes())
            .expect("a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// End the session as WebDriver does (Chromium closes its windows).
    async fn close(self) {
        self.command(Method::DELETE, "", None).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            // SAFETY: kill(2) on the process group of a child this test
            // started (chromedriver leads it).
            unsafe { libc::kill(-(group as libc::pid_t), libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One WebDriver command: its `value`, or a panic with the driver's error.
async fn send(http: &reqwest::Client, method: Method, url: &str, body: Option<Value>) -> Value {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("chromedriver answers");
    let status = response.status();
    let bytes = response.bytes().await.expect("chromedriver's answer");
    let answer: Value = serde_json::from_slice(&bytes).expect("WebDriver answers in JSON");
    assert!(
        status.is_success(),
        "WebDriver {method} {url}: {status} {:#}",
        answer["value"]
    );
    answer["value"].clone()
}

/// Ask the resolver as `dig` does (RD=1, UDP, EDNS); its rcode.
async fn dig(resolver: std::net::SocketAddr, qname: &str, rtype: RecordType) -> String {
    dnstrail::trace::rcode_name(
        dig_answer(resolver, qname, rtype)
            .await
            .metadata
            .response_code,
    )
}

async fn dig_answer(
    resolver: std::net::SocketAddr,
    qname: &str,
    rtype: RecordType,
) -> hickory_proto::op::Message {
    let query = make_query(&name(qname), rtype, true, true);
    exchange(resolver, &query, Transport::Udp, Duration::from_secs(5))
        .await
        .expect("the resolver answers")
        .response
}

/// The first address in the resolver's answer, as `dig +short` prints it.
async fn dig_short(resolver: std::net::SocketAddr, qname: &str) -> String {
    let reply = dig_answer(resolver, qname, RecordType::A).await;
    dnstrail::dns::addresses(&reply.answers)
        .first()
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

/// `trail(kind, text)`: the newest live diagram of `kind` whose heading
/// holds `text`, as data: its heading, its verdict, and each row's event,
/// step, server and response.
const TRAIL: &str = "
    function trail(kind, text) {
      const found = [...document.querySelectorAll(`#live .trail[data-kind=${kind}]`)]
        .find((t) => t.querySelector('h4') && t.querySelector('h4').textContent.includes(text));
      if (!found) return null;
      const verdict = found.querySelector('.verdict');
      return {
        heading: found.querySelector('h4').textContent,
        verdict: verdict ? `${verdict.className}: ${verdict.textContent}` : null,
        rows: [...found.querySelectorAll('.seq-row[data-event]')].map((r) => ({
          event: r.dataset.event, step: r.dataset.step || null, server: r.dataset.server || null,
          response: r.dataset.response || null, retry: r.classList.contains('retry'),
          text: r.textContent,
        })),
      };
    }";

/// `entry(name, type)`: an answer in the cache panel as the page shows it,
/// `[seconds left, TTL]`.
const CACHE_ENTRY: &str = "
    function entry(name, type) {
      const found = document.querySelector(
        `#cache .entry[data-kind=answer][data-name='${name}'][data-type='${type}']`);
      return found && found.dataset.left ? [Number(found.dataset.left), Number(found.dataset.ttl)] : null;
    }";

impl Browser {
    /// Wait for the diagram of `kind` headed `text` to satisfy `done` (a JS
    /// expression over `t`, the diagram as [`TRAIL`] reads it).
    async fn wait_for_trail(&self, what: &str, kind: &str, text: &str, done: &str) -> Value {
        let script =
            format!("{TRAIL} const t = trail(...arguments); return t && ({done}) ? t : null;");
        self.wait_for(what, &script, json!([kind, text])).await
    }

    /// How many live diagrams of `kind` are headed `text`.
    async fn count_trails(&self, kind: &str, text: &str) -> u64 {
        let script = "const [kind, text] = arguments;
            return [...document.querySelectorAll(`#live .trail[data-kind=${kind}]`)]
              .filter((t) => t.querySelector('h4') && t.querySelector('h4').textContent.includes(text))
              .length;";
        self.run(script, json!([kind, text]))
            .await
            .as_u64()
            .unwrap()
    }
}

fn rows(trail: &Value) -> &Vec<Value> {
    trail["rows"].as_array().unwrap()
}

fn events_of(trail: &Value) -> Vec<&str> {
    rows(trail)
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect()
}

fn steps_of(trail: &Value) -> Vec<u64> {
    rows(trail)
        .iter()
        .filter_map(|r| r["step"].as_str()?.parse().ok())
        .collect()
}

/// The issue's walk through the lab, in a real browser: a broken ns-2
/// shows its timeout and the resolver's retry; a lookup from outside the
/// page appears within a second; a visit from the page; the clock moved
/// past the TTL sends the resolver back to the domain's server for a fresh
/// answer; a paused page catches up without a duplicate; and all of it
/// stays readable at a phone's width.
///
/// ns-2 is broken first, before anyone has asked it: the resolver tries
/// each server it has never asked before it goes by speed, so it meets
/// ns-2 within the first four questions to example.com, not by chance.
#[tokio::test]
async fn the_page_is_the_lab() {
    let demo = start_demo().await;
    let url = page_url(&demo);
    let web = demo.stack.web_addrs[0];
    let resolver = demo.stack.resolver_addr.unwrap();
    let Some(page) = Browser::open("www.example.com", web.ip(), 1280, 1000).await else {
        demo.stack.stop().await;
        return;
    };

    // A link to #lab finds the lab, which goes live once on screen.
    page.go(&format!("{url}#lab")).await;
    page.wait_for(
        "the lab to go live",
        "return document.getElementById('lab').dataset.state === 'live';",
        json!([]),
    )
    .await;

    // Break ns-2 from the page: it never answers.
    let ns2 = "#servers .server[data-name='ns-2.awsdns-02.com.']";
    page.type_into(&format!("{ns2} .fault-kind"), "drop").await;
    page.click(&format!("{ns2} button[data-action=fault]"))
        .await;
    page.wait_for(
        "ns-2 shown broken, and the break told in the live trace",
        &format!(
            "return document.querySelector(\"{ns2}.broken\")
               && document.querySelector('#live .trail[data-kind=action][data-event=fault_set]');"
        ),
        json!([]),
    )
    .await;

    // A question from outside the page, as dig asks it, cold: shown within
    // a second of its answer, the whole walk (root, .com, an example.com
    // server, the answer returned).
    let mut watch = demo.stack.trace.subscribe();
    assert_eq!(
        dig(resolver, "www.example.com.", RecordType::A).await,
        "NOERROR"
    );
    let answered = Instant::now();
    let lookup = page
        .wait_for_trail(
            "dig's question in the live trace",
            "resolution",
            "asks www.example.com. A",
            "t.rows.some((r) => r.event === 'answer_returned')",
        )
        .await;
    let shown_after = answered.elapsed();
    assert!(
        shown_after < Duration::from_secs(1),
        "dig's lookup took {shown_after:?} to show"
    );
    assert_eq!(
        events_of(&lookup).first(),
        Some(&"question_received"),
        "{lookup:#}"
    );
    let steps = steps_of(&lookup);
    assert_eq!(steps[..4], [3, 3, 4, 4], "{lookup:#}");
    assert!(steps.ends_with(&[5, 6, 7]), "{lookup:#}");

    // Questions no cache holds, until one goes to ns-2: the page shows its
    // timeout, then the retry to another server, which answers.
    let met_ns2 = |watch: &mut dnstrail::trace::TraceSubscriber| {
        std::iter::from_fn(|| watch.try_recv()).any(|e| {
            matches!(&e.event, TraceEvent::UpstreamResponse { server, response: ResponseKind::Timeout, .. }
                if server.name == "ns-2.awsdns-02.com.")
        })
    };
    let mut met = met_ns2(&mut watch).then(|| ("www.example.com.".to_string(), "NOERROR"));
    for n in 0..4 {
        if met.is_some() {
            break;
        }
        let probe = format!("probe-{n}.example.com.");
        assert_eq!(dig(resolver, &probe, RecordType::A).await, "NXDOMAIN");
        met = met_ns2(&mut watch).then_some((probe, "NXDOMAIN"));
    }
    let (name, rcode) = met.expect("one of the first four questions went to ns-2");
    let retried = page
        .wait_for_trail(
            "ns-2's timeout and the retry",
            "resolution",
            &format!("asks {name} A"),
            "t.rows.some((r) => r.event === 'answer_returned')",
        )
        .await;
    let rows = rows(&retried);
    let timeout = rows
        .iter()
        .position(|r| r["response"] == "timeout" && r["server"] == "ns-2.awsdns-02.com.")
        .unwrap_or_else(|| panic!("no timeout from ns-2: {retried:#}"));
    let after = &rows[timeout + 1..];
    let retry = after
        .iter()
        .find(|r| r["event"] == "upstream_query")
        .unwrap_or_else(|| panic!("no retry: {retried:#}"));
    assert_eq!(retry["retry"], true, "{retried:#}");
    assert_eq!(retry["step"], "5", "{retried:#}");
    assert_ne!(retry["server"], "ns-2.awsdns-02.com.", "{retried:#}");
    let answer = after.last().unwrap();
    assert_eq!(answer["event"], "answer_returned", "{retried:#}");
    assert!(
        answer["text"].as_str().unwrap().contains(rcode),
        "{retried:#}"
    );
    page.click(&format!("{ns2} button[data-action=heal]")).await;
    page.wait_for(
        "ns-2 healed",
        &format!(
            "return document.querySelector(\"{ns2}\") && !document.querySelector(\"{ns2}.broken\");"
        ),
        json!([]),
    )
    .await;

    // "Visit", with the form as it comes (this page's own URL): the
    // built-in browser's visit, told as the story tells it, answered from
    // the cache, which holds www's address since dig asked.
    page.click("#visit-go").await;
    let first = page
        .wait_for_trail(
            "the first visit from the page to end",
            "visit",
            "from the lab",
            "t.verdict.startsWith('verdict ok')",
        )
        .await;
    assert!(events_of(&first).contains(&"cache_answer_hit"), "{first:#}");
    assert_eq!(steps_of(&first), [1, 2, 7, 8, 9], "{first:#}");
    let heading = first["heading"].as_str().unwrap().to_string();

    // www's address in the cache panel, its TTL counting down in the page.
    let script = format!("{CACHE_ENTRY} return entry(...arguments);");
    let before = page
        .wait_for(
            "www's address in the cache",
            &script,
            json!(["www.example.com.", "A"]),
        )
        .await;
    let left = before[0].as_u64().unwrap();
    let ttl = before[1].as_u64().unwrap();
    assert!(left <= ttl && ttl == 300, "{before}");
    page.wait_for(
        "www's TTL to count down",
        &format!("{CACHE_ENTRY} const e = entry(...arguments); return e && e[0] < {left};"),
        json!(["www.example.com.", "A"]),
    )
    .await;

    // Move the resolver's clock past the TTL: the lab tells it, the answer
    // leaves the cache, and the next visit goes back to an example.com
    // server (the root and .com skipped, their delegations still good)
    // for a fresh answer, with its whole TTL.
    page.type_into("#advance-seconds", &(ttl + 1).to_string())
        .await;
    page.click("#advance-go").await;
    page.wait_for(
        "the clock's move in the live trace",
        "return document.querySelector('#live .trail[data-kind=action][data-event=clock_advanced]');",
        json!([]),
    )
    .await;
    page.wait_for(
        "www's expired address to leave the cache panel",
        &format!("{CACHE_ENTRY} return entry(...arguments) === null;"),
        json!(["www.example.com.", "A"]),
    )
    .await;
    page.click("#visit-go").await;
    let second = page
        .wait_for_trail(
            "the second visit from the page to end",
            "visit",
            "from the lab",
            &format!("!t.heading.includes({heading:?}) && t.verdict.startsWith('verdict ok')"),
        )
        .await;
    let events = events_of(&second);
    assert!(!events.contains(&"cache_answer_hit"), "{second:#}");
    assert!(events.contains(&"cache_delegation_hit"), "{second:#}");
    assert_eq!(steps_of(&second), [1, 2, 5, 6, 7, 8, 9], "{second:#}");
    let fresh = page
        .wait_for(
            "www's fresh address in the cache",
            &format!(
                "{CACHE_ENTRY} const e = entry(...arguments); return e && e[0] >= {} ? e : null;",
                ttl - 5
            ),
            json!(["www.example.com.", "A"]),
        )
        .await;
    assert_eq!(fresh[1], ttl, "{fresh}");

    // Paused, the page shows nothing new; resumed, it catches up from the
    // last event it told: what happened meanwhile, once.
    page.click("#live-pause").await;
    page.wait_for(
        "the pause",
        "return document.getElementById('lab').dataset.state === 'paused';",
        json!([]),
    )
    .await;
    dig(resolver, "mail.example.com.", RecordType::AAAA).await;
    let meanwhile = "asks mail.example.com. AAAA";
    assert_eq!(page.count_trails("resolution", meanwhile).await, 0);
    page.click("#live-pause").await;
    page.wait_for_trail(
        "what happened during the pause",
        "resolution",
        meanwhile,
        "t.rows.some((r) => r.event === 'answer_returned')",
    )
    .await;
    assert_eq!(page.count_trails("resolution", meanwhile).await, 1);
    let status = page
        .run(
            "return {...document.getElementById('live-status').dataset};",
            json!([]),
        )
        .await;
    assert_eq!(status["duplicates"], "0", "{status}");

    // Change www's address and TTL from the page: the name servers answer
    // the new address at once (serial 2, every server in sync), while the
    // resolver keeps the cached one until its TTL runs out; the page shows
    // both side by side, and the change in the live trace.
    page.wait_for(
        "the zones listed",
        "return document.querySelector('#zones li[data-apex=\"example.com.\"]');",
        json!([]),
    )
    .await;
    page.run(
        "document.getElementById('record-zone').value = 'example.com';
         document.getElementById('record-op').value = 'set';",
        json!([]),
    )
    .await;
    page.type_into("#record-name", "www").await;
    page.type_into("#record-type", "A").await;
    page.type_into("#record-ttl", "60").await;
    page.type_into("#record-data", "127.0.0.46").await;
    page.click("#record-go").await;
    let compared = page
        .wait_for(
            "the name servers' new answer beside the resolver's old one",
            "const c = document.getElementById('record-compare').dataset;
             return c.same === 'false' ? {...c, text: document.getElementById('record-compare').textContent} : null;",
            json!([]),
        )
        .await;
    assert_eq!(compared["nameServers"], "127.0.0.46", "{compared}");
    assert_eq!(compared["resolver"], "127.0.0.44", "{compared}");
    assert!(
        compared["text"].as_str().unwrap().contains("more seconds"),
        "{compared}"
    );
    page.wait_for(
        "serial 2 on every server",
        "const z = document.querySelector('#zones li[data-apex=\"example.com.\"]');
         return z && z.dataset.serial === '2' && z.dataset.status === 'INSYNC';",
        json!([]),
    )
    .await;
    page.wait_for(
        "the change in the live trace",
        "return document.querySelector('#live .trail[data-kind=action][data-event=zone_changed]');",
        json!([]),
    )
    .await;
    assert_eq!(dig_short(resolver, "www.example.com.").await, "127.0.0.44");
    page.type_into("#advance-seconds", &(ttl + 1).to_string())
        .await;
    page.click("#advance-go").await;
    page.wait_for(
        "the old answer to leave the cache",
        &format!("{CACHE_ENTRY} return entry(...arguments) === null;"),
        json!(["www.example.com.", "A"]),
    )
    .await;
    assert_eq!(dig_short(resolver, "www.example.com.").await, "127.0.0.46");
    let agreed = page
        .wait_for(
            "the resolver to say the new address",
            "const c = document.getElementById('record-compare').dataset;
             return c.resolver === '127.0.0.46' ? {...c} : null;",
            json!([]),
        )
        .await;
    assert_eq!(agreed["same"], "true", "{agreed}");
    let fresh = page
        .wait_for(
            "the new address in the cache, with its new TTL",
            &format!("{CACHE_ENTRY} return entry(...arguments);"),
            json!(["www.example.com.", "A"]),
        )
        .await;
    assert_eq!(fresh[1], 60, "{fresh}");

    // The lab on screen, as a reader sees it (its panels, and the newest
    // diagrams below them), then at a phone's width: nothing wider than
    // the window but the diagrams, which scroll inside their own boxes.
    let target = target_dir();
    page.resize(1280, 2600).await;
    page.run(
        "document.getElementById('lab').scrollIntoView();",
        json!([]),
    )
    .await;
    page.screenshot(&target.join("lab.png")).await;
    page.resize(390, 844).await;
    let overflow = page
        .wait_for(
            "the page to fit a phone's width",
            "return innerWidth <= 400 ? [document.documentElement.scrollWidth, innerWidth] : null;",
            json!([]),
        )
        .await;
    assert!(overflow[0].as_u64() <= overflow[1].as_u64(), "{overflow}");
    page.run(
        "document.getElementById('lab').scrollIntoView();",
        json!([]),
    )
    .await;
    page.screenshot(&target.join("lab-phone.png")).await;

    page.close().await;
    demo.stack.stop().await;
}

/// Served without a stack (plain `dnstrail web`, with a recorded trace),
/// the page still tells the story and draws the recorded visits, and says
/// the lab is not connected instead of showing controls that steer nothing.
#[tokio::test]
async fn without_a_stack_the_page_says_the_lab_is_not_connected() {
    // The demo's recorded visits, published by a web server of its own.
    let demo = start_demo().await;
    run_visits(&demo.stack, &demo.items).await.unwrap();
    let recorded = demo
        .stack
        .trace_document
        .as_ref()
        .and_then(TraceDocument::get)
        .expect("the demo published its visits");
    let url = page_url(&demo);
    demo.stack.stop().await;

    let host = reqwest::Url::parse(&url).unwrap();
    let document = TraceDocument::default();
    document.set(recorded);
    let mut config = WebConfig::new(SiteSource::BuiltIn, vec![host.host_str().unwrap().into()]);
    config.trace = Some(document);
    let site = Website::open(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.44:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(web::run(site, vec![listener], stop.clone()));

    let Some(page) = Browser::open(host.host_str().unwrap(), addr.ip(), 1280, 1000).await else {
        stop.cancel();
        return;
    };
    page.go(&format!(
        "http://{}:{}/#lab",
        host.host_str().unwrap(),
        addr.port()
    ))
    .await;
    let shown = page
        .wait_for(
            "the lab to say it is not connected",
            "const lab = document.getElementById('lab');
             return lab.dataset.state === 'offline' ? {
               status: document.getElementById('lab-status').textContent,
               panels: getComputedStyle(lab.querySelector('.lab-panels')).display,
               live: getComputedStyle(lab.querySelector('.live')).display,
               recorded: document.getElementById('trace-status').textContent,
               visits: document.querySelectorAll('#visits section.visit').length,
             } : null;",
            json!([]),
        )
        .await;
    assert!(
        shown["status"].as_str().unwrap().contains("not connected"),
        "{shown:#}"
    );
    assert_eq!(shown["panels"], "none", "{shown:#}");
    assert_eq!(shown["live"], "none", "{shown:#}");
    let visits = page
        .wait_for(
            "the recorded visits",
            "return document.querySelectorAll('#visits section.visit .seq-row[data-event]').length > 20
               ? [document.getElementById('trace-status').textContent,
                  document.querySelectorAll('#visits section.visit').length] : null;",
            json!([]),
        )
        .await;
    assert!(
        visits[0].as_str().unwrap().contains("3 visits recorded by"),
        "{visits:#}"
    );
    assert_eq!(visits[1], 3, "{visits:#}");
    page.close().await;
    stop.cancel();
    server.await.unwrap().unwrap();
}
