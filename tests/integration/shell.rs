//! `dnstrail shell`: unmodified programs inside reach the chain by name with
//! no flags, and nothing outside changes. Every test's shell has network
//! and mount namespaces of its own, so port 53 inside clashes with nothing.
//! Where the system allows no namespaces the tests say SKIPPED (and fail
//! with `DNSTRAIL_REQUIRE_TOOLS=1`).

use std::net::IpAddr;
use std::process::{Output, Stdio};
use std::time::Duration;

use dnstrail::topology::DEFAULT_URL;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

/// The longest any shell here may take, Chromium included.
const BOUND: Duration = Duration::from_secs(60);

fn dnstrail_shell(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dnstrail"));
    command
        .arg("shell")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// `dnstrail shell ARGS -- sh -c SCRIPT`, its output; `None` (after saying
/// so) where namespaces are not allowed.
async fn shell(args: &[&str], script: &str) -> Option<Output> {
    let output = dnstrail_shell(args)
        .args(["--", "sh", "-c", script])
        .output();
    let output = tokio::time::timeout(BOUND, output)
        .await
        .expect("the shell ends within its bound")
        .unwrap();
    (!refused(&output.stderr)).then_some(output)
}

/// `shell`, the command required to succeed: its stdout.
async fn shell_ok(args: &[&str], script: &str) -> Option<String> {
    let output = shell(args, script).await?;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "`{script}` failed:\n{stdout}\n{}",
        text(&output.stderr)
    );
    Some(stdout)
}

/// Whether the shell said the system allows no namespaces (and if so,
/// say the test is skipped).
fn refused(stderr: &[u8]) -> bool {
    let stderr = String::from_utf8_lossy(stderr);
    let refused = stderr.contains("namespaces are not allowed here");
    if refused {
        skip(stderr.trim());
    }
    refused
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The site's host and its address, as the zones say.
fn site() -> (String, IpAddr) {
    let url = reqwest::Url::parse(DEFAULT_URL).unwrap();
    let host = url.host_str().unwrap().to_string();
    let (addrs, _) = demo_topology().resolve(&host);
    (host, addrs[0])
}

fn title() -> String {
    dnstrail::demo::expected_title_of(None).expect("the built-in site has a title")
}

#[tokio::test]
async fn curl_gets_the_page_by_name_on_port_80_with_no_flags() {
    if tool("curl").is_none() {
        return;
    }
    let (host, ip) = site();
    let script = format!(
        "curl -sS --max-time 10 -w '\\nstatus=%{{http_code}} from=%{{remote_ip}}:%{{remote_port}}\\n' http://{host}/"
    );
    let Some(stdout) = shell_ok(&[], &script).await else {
        return;
    };
    assert!(stdout.contains(&title()), "{stdout}");
    assert!(
        stdout.contains(&format!("status=200 from={ip}:80")),
        "{stdout}"
    );
}

#[tokio::test]
async fn getent_finds_the_name_through_our_resolver_not_etc_hosts() {
    if tool("getent").is_none() {
        return;
    }
    let (host, ip) = site();
    let script = format!(
        "getent hosts {host}; echo '-- hosts'; cat /etc/hosts; echo '-- resolv.conf'; cat /etc/resolv.conf"
    );
    let Some(stdout) = shell_ok(&[], &script).await else {
        return;
    };
    let (found, rest) = stdout.split_once("-- hosts\n").unwrap();
    let (hosts, resolv) = rest.split_once("-- resolv.conf\n").unwrap();
    let fields: Vec<&str> = found.split_whitespace().collect();
    assert_eq!(fields, [ip.to_string().as_str(), host.as_str()], "{stdout}");
    assert!(
        hosts
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.contains("localhost")),
        "{hosts}"
    );
    let servers: Vec<&str> = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .collect();
    assert_eq!(servers, ["127.0.0.1"], "{resolv}");
}

#[tokio::test]
async fn dig_trace_starts_at_our_root_found_through_our_resolver() {
    if tool("dig").is_none() {
        return;
    }
    let (host, ip) = site();
    let topology = demo_topology();
    let root = topology
        .servers
        .iter()
        .find(|s| s.zones.iter().any(|z| z == "."))
        .expect("a root server");
    let script = format!("dig +trace +time=2 +tries=1 {host} A");
    let Some(stdout) = shell_ok(&[], &script).await else {
        return;
    };
    // The root's name servers came from the resolver in resolv.conf…
    assert!(
        stdout.contains("from 127.0.0.1#53(127.0.0.1)"),
        "the root NS set did not come from our resolver:\n{stdout}"
    );
    // …then every step down from our root, on port 53.
    let root_hop = format!(
        "from {}#53({})",
        root.addrs[0],
        root.name.trim_end_matches('.')
    );
    assert!(stdout.contains(&root_hop), "no `{root_hop}` in:\n{stdout}");
    let answered = stdout.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() == 5 && f[0] == format!("{host}.") && f[2..] == ["IN", "A", &ip.to_string()]
    });
    assert!(answered, "no A record for {host} in:\n{stdout}");
}

#[tokio::test]
async fn python_urllib_gets_the_page() {
    if tool("python3").is_none() {
        return;
    }
    let (host, _) = site();
    let script = format!(
        "python3 -c 'import urllib.request; r = urllib.request.urlopen(\"http://{host}/\", timeout=10); print(r.status); print(r.read().decode())'"
    );
    let Some(stdout) = shell_ok(&[], &script).await else {
        return;
    };
    assert_eq!(stdout.lines().next(), Some("200"), "{stdout}");
    assert!(stdout.contains(&title()), "{stdout}");
}

#[tokio::test]
async fn chromium_renders_the_page_by_name_with_no_resolver_rules() {
    let Some(chromium) = tool("chromium") else {
        return;
    };
    let (host, _) = site();
    let profile = temp_dir("shell-chromium");
    let script = format!(
        "{} --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
         --disable-component-update --disable-sync --virtual-time-budget=5000 \
         --user-data-dir={} --dump-dom http://{host}/ 2>/dev/null",
        chromium.display(),
        profile.display()
    );
    let output = shell(&[], &script).await;
    let _ = std::fs::remove_dir_all(&profile);
    let Some(output) = output else {
        return;
    };
    let dom = text(&output.stdout);
    assert!(dom.contains(&title()), "{dom}\n{}", text(&output.stderr));
}

/// The lab (the control endpoint under /lab/ on the site) shows the
/// lookups of programs inside: here, getent's.
#[tokio::test]
async fn the_lab_shows_the_lookups_made_inside() {
    let (Some(_), Some(_)) = (tool("getent"), tool("curl")) else {
        return;
    };
    let (host, _) = site();
    let domain = host.split_once('.').unwrap().1;
    let asked = format!("blog.{domain}");
    let script = format!(
        "getent hosts {asked} >/dev/null && curl -sS --max-time 10 http://{host}/lab/traces"
    );
    let Some(stdout) = shell_ok(&[], &script).await else {
        return;
    };
    let traces: serde_json::Value = serde_json::from_str(&stdout).expect("the lab's traces");
    let questions: Vec<&str> = traces
        .as_array()
        .expect("a list of resolutions")
        .iter()
        .filter_map(|r| r["question"]["name"].as_str())
        .collect();
    assert!(
        questions.contains(&format!("{asked}.").as_str()),
        "{questions:?}"
    );
}

#[tokio::test]
async fn fail_and_fault_reach_the_name_servers() {
    if tool("dig").is_none() {
        return;
    }
    let (host, _) = site();
    let script = format!("dig +tries=1 +time=5 {host} A");
    let Some(output) = shell(&["--fail", "auth", "--fault", "servfail"], &script).await else {
        return;
    };
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("status: SERVFAIL"),
        "every server of the domain fails, so the resolver must say SERVFAIL:\n{stdout}\n{}",
        text(&output.stderr)
    );
}

/// Inside is another network and the same machine: the command's status
/// comes back, and /etc, the interfaces and the mounts outside are as
/// they were.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn nothing_outside_changes_and_the_status_comes_back() {
    let etc = |path: &str| std::fs::read(path).ok();
    let files = ["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf"];
    let interfaces = || {
        let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let mounts = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let before: Vec<_> = files.iter().map(|f| etc(f)).collect();
    let (interfaces_before, mounts_before) = (interfaces(), mounts());
    let network = std::fs::read_link("/proc/self/ns/net").unwrap();

    let Some(output) = shell(&[], "readlink /proc/self/ns/net; exit 7").await else {
        return;
    };
    assert_eq!(output.status.code(), Some(7), "{}", text(&output.stderr));
    let inside = text(&output.stdout);
    assert!(inside.starts_with("net:["), "{inside}");
    assert_ne!(
        inside.trim(),
        network.to_string_lossy(),
        "the command ran in a network namespace of its own"
    );
    let after: Vec<_> = files.iter().map(|f| etc(f)).collect();
    assert_eq!(before, after, "/etc outside is untouched");
    assert_eq!(interfaces_before, interfaces(), "no interface outside");
    assert_eq!(mounts_before, mounts(), "no mount outside");
}

/// A process the command leaves running (`sleep &`) is stopped with the
/// shell; otherwise it would hold the output open and this would time out.
#[tokio::test]
async fn leaving_stops_what_the_command_left_running() {
    let Some(stdout) = shell_ok(&[], "sleep 300 & echo $!").await else {
        return;
    };
    let pid = stdout.trim().to_string();
    let gone = async {
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie its new parent has yet to reap.
            if state.is_empty() || state.split_whitespace().nth(2) == Some("Z") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("the background sleep was stopped");
}

/// `--keep` prints the line that lets another terminal in, and stays up
/// after the command until told to stop.
#[tokio::test]
async fn keep_prints_how_to_enter_and_stays_up_until_stopped() {
    let (Some(_), Some(_)) = (tool("nsenter"), tool("getent")) else {
        return;
    };
    let (host, ip) = site();
    let mut child = dnstrail_shell(&["--keep", "--", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The line to enter by, then the one saying the command has ended and
    // the stack stays up: only then is this a test of --keep.
    let mut said = Vec::new();
    let mut enter = None;
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("nsenter --target") {
                enter = Some(line[at..].to_string());
            }
            let kept = line.contains("stays up (--keep)");
            said.push(line);
            if kept {
                break;
            }
        }
    })
    .await
    .expect("the shell says how to enter, and that it stays up, within 20 s");
    let Some(enter) = enter else {
        refused(said.join("\n").as_bytes());
        let _ = child.wait().await;
        return;
    };
    assert!(
        said.iter().any(|l| l.contains("stays up (--keep)")),
        "{said:?}"
    );
    // Keep reading, so the shell never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut words = enter.split_whitespace();
    let entered = tokio::process::Command::new(words.next().unwrap())
        .args(words)
        .args(["getent", "hosts", &host])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let entered = tokio::time::timeout(Duration::from_secs(20), entered)
        .await
        .expect("nsenter ends within 20 s")
        .unwrap();
    let found = text(&entered.stdout);
    assert_eq!(
        found.split_whitespace().next(),
        Some(ip.to_string().as_str()),
        "`{enter}` then getent: {found}{}",
        text(&entered.stderr)
    );
    let inside: u32 = enter.split_whitespace().nth(2).unwrap().parse().unwrap();
    stop_cleanly(&mut child, "dnstrail shell --keep").await;
    assert!(
        !std::path::Path::new(&format!("/proc/{inside}")).exists(),
        "the process inside is gone"
    );
}

/// Without root, the shell makes a user namespace in which the user is
/// root (so it may bind port 53). As root, the test runs it as nobody.
#[tokio::test]
async fn an_unprivileged_user_gets_a_user_namespace() {
    let (host, ip) = site();
    let script = format!("id -u; cat /proc/self/uid_map; getent hosts {host}");
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let output = if root {
        let Some(setpriv) = tool("setpriv") else {
            return;
        };
        // A copy nobody can reach, whatever the directories above the
        // build are closed to.
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("shell-nobody");
        let bin = dir.join("dnstrail");
        std::fs::copy(env!("CARGO_BIN_EXE_dnstrail"), &bin).unwrap();
        for (path, mode) in [(&dir, 0o755), (&bin, 0o755)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let output = tokio::process::Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(["shell", "--", "sh", "-c", &script])
            .current_dir("/")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(BOUND, output)
            .await
            .expect("the shell ends within its bound")
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        if refused(&output.stderr) {
            return;
        }
        output
    } else {
        let Some(output) = shell(&[], &script).await else {
            return;
        };
        output
    };
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("0"), "root inside: {stdout}");
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map[0], "0");
    assert_eq!(map[2], "1", "one user mapped, not all: {stdout}");
    assert!(stdout.contains(&ip.to_string()), "{stdout}");
}

/// Where there are no Linux namespaces, one line says so and what to do
/// instead, and the status says it failed.
#[cfg(not(target_os = "linux"))]
#[tokio::test]
async fn elsewhere_one_line_says_what_to_do_instead() {
    let output = dnstrail_shell(&["--", "true"]).output().await.unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("namespaces are not allowed here")
            && stderr.contains("demo --keep-running"),
        "{stderr}"
    );
}

/// `--dnssec` as for `demo`: inside, `dig +dnssec` gets a validated answer
/// (the `ad` flag) with its signature, from our own root down.
#[tokio::test]
async fn with_dnssec_dig_inside_gets_a_validated_answer() {
    if tool("dig").is_none() {
        return;
    }
    let (host, _) = site();
    let keys = temp_dir("shell-keys");
    let keys = keys.to_str().unwrap();
    let script = format!("dig +dnssec +tries=1 +time=5 {host} A");
    let Some(stdout) = shell_ok(&["--dnssec", "--keys", keys], &script).await else {
        return;
    };
    let flags = stdout
        .lines()
        .find(|l| l.starts_with(";; flags:"))
        .unwrap_or_else(|| panic!("no flags line:\n{stdout}"));
    assert!(flags.contains(" ad"), "{stdout}");
    assert!(stdout.contains("status: NOERROR"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{host}.")) && l.contains("RRSIG")),
        "{stdout}"
    );
}
