//! The README's `dig` and `kdig` commands, run against a live chain with
//! its ports substituted, and checked: the README must stay true.
//! Reported as skipped where dig/kdig are not installed; CI installs them
//! and requires them (`DNSTRAIL_REQUIRE_TOOLS=1`).

use crate::support::*;

/// What each README command must print, by a distinctive part of it.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "@127.0.0.2 -p 5300 www.example.com A",
        &[
            "status: NOERROR",
            "flags: qr;",
            "AUTHORITY: 1",
            "a.gtld-servers.net.\t172800\tIN\tA\t127.0.0.3",
        ],
    ),
    (
        "@127.0.0.3 -p 5300 www.example.com A",
        &[
            "flags: qr;",
            "AUTHORITY: 4",
            "ns-4.awsdns-04.com.\t172800\tIN\tA\t127.0.0.7",
        ],
    ),
    (
        "@127.0.0.4 -p 5300 www.example.com A",
        &["flags: qr aa;", "www.example.com.\t300\tIN\tA\t127.0.0.44"],
    ),
    (
        "@127.0.0.4 -p 5300 nope.example.com A",
        &[
            "status: NXDOMAIN",
            "flags: qr aa;",
            "IN\tSOA\tns-1.awsdns-01.com.",
        ],
    ),
    (
        "+tcp @127.0.0.4 -p 5300 example.com MX",
        &["10 mail.example.com.", "(TCP)"],
    ),
    ("big.example.com TXT", &["flags: qr aa tc;"]),
    (
        "kdig +norec @127.0.0.3 -p 5300 example.com NS",
        &[
            "NOERROR",
            "127.0.0.4",
            "127.0.0.5",
            "127.0.0.6",
            "127.0.0.7",
        ],
    ),
    (
        "@127.0.0.1 -p 5300 www.example.com ",
        &["flags: qr rd ra;", "127.0.0.44"],
    ),
    (
        "@127.0.0.1 -p 5300 blog.example.com",
        &["CNAME\twww.example.com.", "127.0.0.44"],
    ),
    ("@127.0.0.1 -p 5300 nope.example.com", &["status: NXDOMAIN"]),
    (
        "+nsid @127.0.0.5 -p 5300 www.example.com",
        &["NSID: ", "(\"ns-2.awsdns-02.com\")"],
    ),
    ("CH TXT id.server @127.0.0.5", &["\"ns-2.awsdns-02.com\""]),
    (
        "-y hmac-sha256:lab-key:",
        &["IN\tSOA\t", "TSIG\thmac-sha256.", "XFR size"],
    ),
];

/// The TSIG key the README's signed transfer uses, from its own text.
fn readme_key() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("dnstrail auth --tsig "))
        .expect("the README starts a name server with --tsig");
    line.trim_start_matches("dnstrail auth --tsig ")
        .trim()
        .to_string()
}

fn readme_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .filter(|l| l.starts_with("dig ") || l.starts_with("kdig "))
        .map(|l| format!("{} ", l.split('#').next().unwrap().trim_end()))
        .collect()
}

#[tokio::test]
async fn readme_dig_commands_say_what_the_readme_says() {
    let commands = readme_commands();
    assert!(commands.len() >= EXPECTED.len(), "{commands:?}");
    for (part, _) in EXPECTED {
        assert!(
            commands.iter().any(|c| c.contains(part)),
            "README lost `{part}`"
        );
    }
    if tool("dig").is_none() || tool("kdig").is_none() {
        return;
    }
    // The chain as the README runs it: NSID on, the README's TSIG key known.
    let mut config = dnstrail::stack::StackConfig::name_servers(demo_topology(), 0);
    config.nsid = true;
    config.name_server_options.tsig = dnstrail::serve::TsigKeys::new(vec![
        dnstrail::serve::tsig::parse_key(&readme_key()).unwrap(),
    ]);
    config.resolver = Some(dnstrail::stack::ResolverSetup {
        addrs: vec!["127.0.0.1:0".parse().unwrap()],
        config: Default::default(),
        options: Default::default(),
        clock: dnstrail::clock::Clock::new(),
    });
    let stack = dnstrail::stack::Stack::start(config).await.unwrap();
    let chain = Chain {
        resolver: stack.resolver.clone().unwrap(),
        addr: stack.resolver_addr.unwrap(),
        stack,
    };
    let dns_port = chain.stack.dns_port.to_string();
    let resolver_port = chain.addr.port().to_string();
    for command in commands {
        let expected = EXPECTED
            .iter()
            .find(|(part, _)| command.contains(part))
            .unwrap_or_else(|| panic!("no expectation for README command `{command}`"))
            .1;
        let resolver = command.contains("@127.0.0.1 ");
        let port = if resolver { &resolver_port } else { &dns_port };
        let words: Vec<String> = command
            .split_whitespace()
            .map(|w| {
                if w == "5300" {
                    port.clone()
                } else {
                    w.to_string()
                }
            })
            .collect();
        let output = tokio::process::Command::new(&words[0])
            .args(&words[1..])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "`{command}` failed: {stdout}");
        for needle in expected {
            assert!(
                stdout.contains(needle),
                "`{command}` lacks `{needle}`:\n{stdout}"
            );
        }
    }
    chain.stop().await;
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The README's `nsupdate` script, run against name servers serving a copy
/// of the demo zones (its port substituted): every server of the zone then
/// answers what the script added. Then the README's `/zones` curl lines,
/// against the same stack's control endpoint.
#[tokio::test]
async fn readme_nsupdate_and_zone_endpoints_do_what_the_readme_says() {
    let text = readme();
    let script: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("nsupdate <<'EOF'"))
        .skip(1)
        .take_while(|l| *l != "EOF")
        .collect();
    assert!(
        script.iter().any(|l| l.starts_with("update add ")),
        "the README lost its nsupdate script"
    );
    // What the script adds: `update add NAME TTL TYPE DATA`.
    let added: Vec<&str> = script
        .iter()
        .find(|l| l.starts_with("update add "))
        .unwrap()
        .split_whitespace()
        .skip(2)
        .collect();
    let (owner, ttl, data) = (added[0], added[1], added[3]);

    let dir = copy_of_demo_zones("readme-nsupdate");
    let topology = dnstrail::topology::Topology::load(&dir).unwrap();
    let mut config = dnstrail::stack::StackConfig::name_servers(topology, 0);
    config.control = Some("127.0.0.1:0".parse().unwrap());
    let stack = dnstrail::stack::Stack::start(config).await.unwrap();
    let port = stack.dns_port.to_string();

    if let Some(nsupdate) = tool("nsupdate") {
        let script: String = script
            .iter()
            .map(|l| format!("{}\n", l.replace(" 5300", &format!(" {port}"))))
            .collect();
        let (ok, said) = run_nsupdate(&nsupdate, &script).await;
        assert!(ok, "{said}");
        for host in stack
            .servers()
            .filter(|h| h.server.zones.iter().any(|z| z == "example.com."))
        {
            let at = std::net::SocketAddr::new(host.server.addrs[0], stack.dns_port);
            let reply = ask(at, owner, hickory_proto::rr::RecordType::A).await;
            let records: Vec<(u32, String)> = reply
                .answers
                .iter()
                .map(|r| (r.ttl, r.data.to_string()))
                .collect();
            assert_eq!(records, [(ttl.parse().unwrap(), data.to_string())], "{at}");
        }
    }

    // The README's curl lines for /zones, on the stack's control endpoint.
    let control = stack.control_addr.unwrap();
    let curls: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("curl -s") && l.contains("/zones"))
        .collect();
    assert!(curls.len() >= 3, "{curls:?}");
    for line in curls {
        let method = if line.contains("-X POST") {
            "POST"
        } else {
            "GET"
        };
        let url = line
            .split_whitespace()
            .find(|w| w.contains("/zones"))
            .unwrap()
            .trim_matches('\'');
        let path = &url[url.find("/zones").unwrap()..];
        let (status, body) = http_request(control, method, path, &[]).await;
        assert!(status.contains(" 200 "), "`{line}`: {status} {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(!json.is_null(), "`{line}`: {body}");
    }
    stack.stop().await;
}
