//! Real clients against the servers under test, where what is checked is
//! that the client works with them: `dig +trace` walking the hierarchy,
//! `dig` retrying over TCP after a truncated answer, `kdig` over TCP,
//! `curl` against `dnstrail web`, and `dnstrail browse` through each
//! resolver. Their output is read only for what the tool itself reports
//! (a retry, a warning, the servers it heard from, an HTTP status); the
//! DNS answers are compared as messages elsewhere.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use crate::hierarchy::Hierarchy;
use crate::process::run;
use crate::questions::Question;
use crate::report::find_tool;
use crate::subjects::{DNS_PORT, OUR_RESOLVER, dnstrail};

/// How long one client run may take.
const CLIENT_WITHIN: Duration = Duration::from_secs(30);

/// Whether `/etc/resolv.conf` names our resolver and nothing else: tools
/// that use the system resolver (`dig +trace` for servers without glue,
/// Chromium) then ask the chain under test, and nothing off the machine.
/// `make interop` sets this up in a private mount namespace.
pub fn private_resolv_conf() -> Result<(), String> {
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?;
    let servers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    if !servers.is_empty() && servers.iter().all(|s| s.parse() == Ok(OUR_RESOLVER)) {
        Ok(())
    } else {
        Err(format!(
            "/etc/resolv.conf names {servers:?}, not only {OUR_RESOLVER}: run it through `make interop`, which gives it a private one"
        ))
    }
}

/// `dig +trace @ROOT NAME TYPE`: dig walks down from our root itself. It
/// must hear from a root server first and from a server of the answer's
/// zone last, and end with the records `expected` (type and data).
pub async fn dig_trace(
    hierarchy: &Hierarchy,
    question: &Question,
    expected: &BTreeSet<String>,
    log: &Path,
) -> Result<String, String> {
    let dig = find_tool("dig").ok_or("dig is not installed")?;
    let root = *hierarchy.root_addrs().first().ok_or("no root server")?;
    let mut command = Command::new(dig);
    command
        .args(["+trace", "+time=2", "+tries=1", "+nodnssec"])
        .arg(format!("@{root}"))
        .arg(question.name.to_string())
        .arg(question.rtype.to_string());
    let out = run(command, CLIENT_WITHIN, log).await?;
    if !out.status.success() {
        return Err(format!("dig +trace {}", out.complaint()));
    }
    // Records print before the line saying where they came from.
    let mut blocks: Vec<(IpAddr, Vec<Vec<String>>)> = Vec::new();
    let mut records: Vec<Vec<String>> = Vec::new();
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix(";; Received ") {
            let from = rest
                .split(" from ")
                .nth(1)
                .and_then(|s| s.split('#').next())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("cannot read `{line}`"))?;
            blocks.push((from, std::mem::take(&mut records)));
        } else if !line.starts_with(';') && line.split_whitespace().count() >= 5 {
            records.push(line.split_whitespace().map(str::to_lowercase).collect());
        }
    }
    let hops: Vec<String> = blocks.iter().map(|(ip, _)| ip.to_string()).collect();
    let Some((last_from, last)) = blocks.last() else {
        return Err(format!(
            "dig +trace heard from no server: {}",
            out.complaint()
        ));
    };
    if blocks.len() < 2 {
        return Err(format!("one hop only: {}", hops.join(" → ")));
    }
    let answering: Vec<IpAddr> = hierarchy
        .topology
        .servers
        .iter()
        .filter(|s| {
            s.zones.iter().any(|z| {
                z.parse::<hickory_proto::rr::Name>()
                    .is_ok_and(|apex| apex.zone_of(&question.name))
            })
        })
        .flat_map(|s| s.addrs.iter().copied())
        .collect();
    if !answering.contains(last_from) {
        return Err(format!(
            "the last answer came from {last_from}, not a server of {}'s zone ({})",
            question.name,
            hops.join(" → ")
        ));
    }
    let rtype = question.rtype.to_string().to_lowercase();
    let got: BTreeSet<String> = last
        .iter()
        .filter(|f| f[3] == rtype)
        .map(|f| f[4..].join(" "))
        .collect();
    if &got != expected {
        return Err(format!(
            "ended with {rtype} {got:?}, the resolvers found {expected:?} ({})",
            hops.join(" → ")
        ));
    }
    Ok(format!(
        "heard from {}; ended with {rtype} {}",
        hops.join(" → "),
        got.into_iter().collect::<Vec<_>>().join(" ")
    ))
}

/// `dig +norec +bufsize=512`: the answer does not fit, dig says it is
/// retrying over TCP, and gets it there.
pub async fn dig_retries_over_tcp(
    server: IpAddr,
    question: &Question,
    log: &Path,
) -> Result<String, String> {
    let dig = find_tool("dig").ok_or("dig is not installed")?;
    let mut command = Command::new(dig);
    command
        .args(["+norec", "+bufsize=512", "+time=2", "+tries=1"])
        .arg(format!("@{server}"))
        .args(["-p", &DNS_PORT.to_string()])
        .arg(question.name.to_string())
        .arg(question.rtype.to_string());
    let out = run(command, CLIENT_WITHIN, log).await?;
    let warned = out
        .stdout
        .lines()
        .find(|l| l.contains("WARNING") || l.contains("malformed"));
    if !out.status.success() {
        Err(format!("dig {}", out.complaint()))
    } else if let Some(warning) = warned {
        Err(format!("dig warns: {warning}"))
    } else if !out.stdout.contains("Truncated, retrying in TCP mode") {
        Err("dig did not retry over TCP: no TC in the 512-byte UDP answer?".to_string())
    } else if !out.stdout.contains("(TCP)") {
        Err("dig retried but did not get its answer over TCP".to_string())
    } else {
        Ok("TC over UDP, dig retried and got its answer over TCP".to_string())
    }
}

/// `kdig +norec +tcp`: Knot's client reads the answer without a warning,
/// with the rcode our own client got.
pub async fn kdig_over_tcp(
    server: IpAddr,
    question: &Question,
    rcode: &str,
    log: &Path,
) -> Result<String, String> {
    let kdig = find_tool("kdig").ok_or("kdig is not installed")?;
    let mut command = Command::new(kdig);
    command
        .args(["+norec", "+tcp", "+timeout=2", "+retry=0"])
        .arg(format!("@{server}"))
        .args(["-p", &DNS_PORT.to_string()])
        .arg(question.name.to_string())
        .arg(question.rtype.to_string());
    let out = run(command, CLIENT_WITHIN, log).await?;
    let text = format!("{}{}", out.stdout, out.stderr);
    let warned = text
        .lines()
        .find(|l| l.contains("WARNING") || l.contains("malformed"));
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split([';', ',', ' ', '\n']).next())
        .unwrap_or("none");
    if !out.status.success() {
        Err(format!("kdig {}", out.complaint()))
    } else if let Some(warning) = warned {
        Err(format!("kdig warns: {warning}"))
    } else if !status.eq_ignore_ascii_case(rcode) {
        Err(format!("kdig read status {status}, our client {rcode}"))
    } else {
        Ok(format!("status {status}, no warning, over TCP"))
    }
}

/// The page the site serves, as the web server must send it.
pub fn index_page() -> &'static [u8] {
    dnstrail::builtin::site_file("index.html").expect("the built-in site has index.html")
}

/// The five `curl` checks of the web server at `addr` serving `url`.
pub async fn curl_checks(
    url: &str,
    addr: SocketAddr,
    dir: &Path,
) -> Vec<(String, Result<String, String>)> {
    let Some(curl) = find_tool("curl") else {
        return vec![("curl".to_string(), Err("curl is not installed".to_string()))];
    };
    let parsed = reqwest::Url::parse(url).expect("a URL");
    let host = parsed.host_str().expect("a host").to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let direct = format!("http://{addr}/");
    let resolve = format!("{host}:{port}:{}", addr.ip());
    let page = index_page();
    let mut out = Vec::new();
    let mut n = 0;
    let mut curl_run = |args: Vec<String>| {
        n += 1;
        let log = dir.join(format!("curl-{n}.txt"));
        let headers = dir.join(format!("curl-{n}.headers"));
        let body = dir.join(format!("curl-{n}.body"));
        let mut command = Command::new(&curl);
        command
            .args(["-sS", "--max-time", "5", "--noproxy", "*"])
            .arg("-D")
            .arg(&headers)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code} %{size_download}"])
            .args(args);
        async move {
            let o = run(command, CLIENT_WITHIN, &log).await?;
            if !o.status.success() {
                return Err(format!("curl {}", o.complaint()));
            }
            let head = std::fs::read_to_string(&headers).unwrap_or_default();
            // `curl -I` writes the headers to the output file too: what
            // came as a body is what curl counted as downloaded.
            let (code, downloaded) = o.stdout.trim().split_once(' ').unwrap_or_default();
            let mut body = std::fs::read(&body).unwrap_or_default();
            body.truncate(downloaded.parse().unwrap_or(0));
            Ok::<_, String>((code.to_string(), head, body))
        }
    };
    let header = |head: &str, name: &str| -> Option<String> {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };

    let label = format!("curl -H 'Host: {host}' {direct}");
    let first = curl_run(vec!["-H".into(), format!("Host: {host}"), direct.clone()]).await;
    let etag = first.as_ref().ok().and_then(|(_, h, _)| header(h, "etag"));
    out.push((
        label,
        first.and_then(|(code, head, body)| {
            let kind = header(&head, "content-type").unwrap_or_default();
            if code != "200" {
                Err(format!("status {code}"))
            } else if body != page {
                Err(format!("{} bytes, not the site's index.html", body.len()))
            } else if !kind.starts_with("text/html") {
                Err(format!("Content-Type: {kind}"))
            } else {
                Ok(format!("200, {kind}, {} bytes = index.html", body.len()))
            }
        }),
    ));

    let label = format!("curl --resolve {resolve} {url}");
    let got = curl_run(vec!["--resolve".into(), resolve.clone(), url.to_string()]).await;
    out.push((
        label,
        got.and_then(|(code, _, body)| match (code.as_str(), body == page) {
            ("200", true) => Ok(format!("200, {} bytes = index.html", body.len())),
            _ => Err(format!("status {code}, {} bytes", body.len())),
        }),
    ));

    let label = format!("curl -I (HEAD) {url}");
    let got = curl_run(vec![
        "-I".into(),
        "--resolve".into(),
        resolve.clone(),
        url.to_string(),
    ])
    .await;
    out.push((
        label,
        got.and_then(|(code, head, body)| {
            let length = header(&head, "content-length").unwrap_or_default();
            if code != "200" {
                Err(format!("status {code}"))
            } else if !body.is_empty() {
                Err(format!(
                    "a {}-byte body in the answer to HEAD (RFC 9110 §9.3.2)",
                    body.len()
                ))
            } else if length != page.len().to_string() {
                Err(format!(
                    "Content-Length {length:?}, the page has {} bytes",
                    page.len()
                ))
            } else if header(&head, "etag").is_none() {
                Err("no ETag".to_string())
            } else {
                Ok(format!("200, no body, Content-Length {length}, an ETag"))
            }
        }),
    ));

    let label = format!("curl -H 'If-None-Match: <ETag>' {url}");
    let outcome = match etag {
        None => Err("no ETag from the first request to send back".to_string()),
        Some(etag) => curl_run(vec![
            "-H".into(),
            format!("If-None-Match: {etag}"),
            "--resolve".into(),
            resolve.clone(),
            url.to_string(),
        ])
        .await
        .and_then(|(code, _, body)| match (code.as_str(), body.is_empty()) {
            ("304", true) => Ok("304 Not Modified, no body".to_string()),
            ("304", false) => Err(format!(
                "304 with a {}-byte body (RFC 9110 §15.4.5)",
                body.len()
            )),
            _ => Err(format!("status {code}, expected 304 (RFC 9110 §13.1.2)")),
        }),
    };
    out.push((label, outcome));

    let stranger = "interop-not-served.invalid";
    let label = format!("curl -H 'Host: {stranger}' {direct}");
    let got = curl_run(vec![
        "-H".into(),
        format!("Host: {stranger}"),
        direct.clone(),
    ])
    .await;
    out.push((
        label,
        got.and_then(|(code, _, _)| match code.as_str() {
            "404" => Ok("404: a name no zone points at this server".to_string()),
            _ => Err(format!(
                "status {code}, expected 404 for a host it does not serve"
            )),
        }),
    ));
    out
}

/// `dnstrail browse --json` through `resolver`: status 200 and the site's
/// title.
pub async fn browse(url: &str, resolver: SocketAddr, log: &Path) -> Result<String, String> {
    let mut command = Command::new(dnstrail());
    command
        .arg("browse")
        .arg("--json")
        .args(["--timeout", "5s"])
        .arg("--resolver")
        .arg(resolver.to_string())
        .arg(url);
    let out = run(command, CLIENT_WITHIN, log).await?;
    if !out.status.success() {
        return Err(format!("dnstrail browse {}", out.complaint()));
    }
    let visit: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).map_err(|e| format!("--json output: {e}"))?;
    let title = dnstrail::demo::expected_title(None).unwrap_or_default();
    let got_title = visit["title"].as_str().unwrap_or_default();
    if visit["status"] != 200 {
        Err(format!("status {}", visit["status"]))
    } else if got_title != title {
        Err(format!("title {got_title:?}, expected {title:?}"))
    } else {
        Ok(format!("200, {title:?}, addresses {}", visit["addresses"]))
    }
}

/// `dnstrail browse` of a name that does not exist: exit code 4, NXDOMAIN.
pub async fn browse_missing(url: &str, resolver: SocketAddr, log: &Path) -> Result<String, String> {
    let mut command = Command::new(dnstrail());
    command
        .arg("browse")
        .args(["--timeout", "5s"])
        .arg("--resolver")
        .arg(resolver.to_string())
        .arg(url);
    let out = run(command, CLIENT_WITHIN, log).await?;
    let first = out.stderr.lines().next().unwrap_or_default().to_string();
    match out.status.code() {
        Some(4) if first.contains("NXDOMAIN") => Ok(format!("exit 4: {first}")),
        Some(4) => Err(format!("exit 4 but no NXDOMAIN in: {first}")),
        _ => Err(format!(
            "{}, expected exit 4 (NXDOMAIN): {first}",
            out.status
        )),
    }
}
