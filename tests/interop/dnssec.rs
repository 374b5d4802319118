//! DNSSEC against real validators and signers: our signed name servers
//! (`--dnssec`) under Unbound's validator and `delv +vtrace`, each fault of
//! the chain of trust seen by Unbound, and our resolver validating a zone
//! signed by BIND's `dnssec-signzone` (NSEC) or NLnet Labs'
//! `ldns-signzone` (NSEC3) and served by NSD, with the DS in our parent
//! zone.
//!
//! ```text
//!   dnstrail root, tld, auth --dnssec (port 53) ──► keys/root.key, root.anchors
//!        ▲                        ▲
//!   Unbound (validator, root.key) │  delv -a root.anchors +vtrace
//!   dnstrail resolver --trust-anchor root.key
//!
//!   dnssec-keygen + dnssec-signzone (or ldns-*) example.com ──► NSD on ns-1…ns-4
//!   its dsset into our com. zone ──► dnstrail root, tld --dnssec
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dnstrail::exchange::{Transport, exchange, make_query};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use tokio::process::Command;

use crate::process::{Output, Process, dns_ports, require_free, run};
use crate::report::{Report, find_tool};
use crate::subjects::{DNS_PORT, UNBOUND, dnstrail};

const OUR_RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));

fn demo_zones() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo-zones")
}

/// Ask `server` as a stub with DO=1 (and CD as given).
async fn ask_do(server: IpAddr, qname: &str, rtype: RecordType) -> Result<Message, String> {
    let mut query = make_query(&Name::from_ascii(qname).unwrap(), rtype, true, true);
    query.edns.as_mut().unwrap().set_dnssec_ok(true);
    exchange(
        SocketAddr::new(server, DNS_PORT),
        &query,
        Transport::Udp,
        Duration::from_secs(5),
    )
    .await
    .map(|e| e.response)
    .map_err(|e| e.to_string())
}

fn ede(response: &Message) -> Option<u16> {
    match response.edns.as_ref()?.option(EdnsCode::from(15))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => {
            Some(u16::from_be_bytes([data[0], data[1]]))
        }
        _ => None,
    }
}

fn verdict(response: &Message) -> String {
    format!(
        "{:?}{}{}",
        response.metadata.response_code,
        if response.metadata.authentic_data {
            " AD"
        } else {
            ""
        },
        ede(response)
            .map(|c| format!(" EDE {c}"))
            .unwrap_or_default()
    )
}

/// Expect `rcode` and AD as given.
async fn expect(
    server: IpAddr,
    qname: &str,
    rcode: ResponseCode,
    ad: bool,
) -> Result<String, String> {
    let response = ask_do(server, qname, RecordType::A).await?;
    let got = verdict(&response);
    if response.metadata.response_code == rcode && response.metadata.authentic_data == ad {
        Ok(got)
    } else {
        Err(format!(
            "{qname}: {got}, expected {rcode:?}{}",
            if ad { " AD" } else { "" }
        ))
    }
}

/// Our name servers of one tier (`root`, `tld`, `auth`), signed.
async fn name_servers(
    tier: &str,
    zones: &Path,
    keys: &Path,
    fault: Option<&str>,
    logs: &Path,
) -> Result<Process, String> {
    let mut command = Command::new(dnstrail());
    command
        .arg(tier)
        .arg("--zones")
        .arg(zones)
        .arg("--dnssec")
        .arg("--keys")
        .arg(keys)
        .arg("--dns-port")
        .arg(DNS_PORT.to_string());
    if let Some(fault) = fault {
        command.arg("--fault").arg(fault);
    }
    let log = logs.join(format!(
        "dnstrail-{tier}{}.log",
        fault.map(|f| format!("-{f}")).unwrap_or_default()
    ));
    let mut process = Process::start(&format!("dnstrail {tier}"), command, &log)?;
    process.listening("dns").await?;
    Ok(process)
}

/// Unbound with its validator on, trusting `anchor`.
async fn unbound(anchor: &Path, dir: &Path) -> Result<Process, String> {
    let program = find_tool("unbound").ok_or("unbound is not installed")?;
    let conf = dir.join("unbound.conf");
    std::fs::write(
        &conf,
        format!(
            "server:
    verbosity: 1
    interface: {UNBOUND}
    port: {DNS_PORT}
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    root-hints: \"{hints}\"
    module-config: \"validator iterator\"
    trust-anchor-file: \"{anchor}\"
    ede: yes
    username: \"\"
    chroot: \"\"
    directory: \"{dir}\"
    pidfile: \"\"
    logfile: \"\"
    use-syslog: no
    num-threads: 1
remote-control:
    control-enable: no
",
            hints = demo_zones().join("root.hints").display(),
            anchor = anchor.display(),
            dir = dir.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut command = Command::new(program);
    command.arg("-d").arg("-c").arg(&conf);
    let process = Process::start("unbound", command, &dir.join("unbound.log"))?;
    ready(UNBOUND, "localhost.").await?;
    Ok(process)
}

/// Our resolver, validating from `anchor`.
async fn our_resolver(anchor: &Path, dir: &Path) -> Result<Process, String> {
    let mut command = Command::new(dnstrail());
    command
        .arg("resolver")
        .arg("--listen")
        .arg(OUR_RESOLVER.to_string())
        .arg("--dns-port")
        .arg(DNS_PORT.to_string())
        .arg("--root-hints")
        .arg(demo_zones().join("root.hints"))
        .arg("--trust-anchor")
        .arg(anchor);
    let mut process = Process::start(
        "dnstrail resolver",
        command,
        &dir.join("dnstrail-resolver.log"),
    )?;
    process.listening("dns").await?;
    Ok(process)
}

/// Wait until `server` answers `qname` (any rcode), within 10 s.
async fn ready(server: IpAddr, qname: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match ask_do(server, qname, RecordType::A).await {
            Ok(_) => return Ok(()),
            Err(why) if tokio::time::Instant::now() >= deadline => return Err(why),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn stop(process: Process) {
    let _ = process.stop().await;
}

fn tools(report: &mut Report, names: &[&str]) -> Option<Vec<PathBuf>> {
    let mut found = Vec::new();
    for name in names {
        match find_tool(name) {
            Some(path) => found.push(path),
            None => {
                report.skip(
                    format!("DNSSEC with {name}"),
                    format!("{name} is not installed"),
                );
                return None;
            }
        }
    }
    Some(found)
}

/// `delv -a ANCHORS @SERVER www.example.com A +vtrace`, its output in `log`.
async fn delv_vtrace(
    delv: &Path,
    anchors: &Path,
    server: IpAddr,
    log: &Path,
) -> Result<Output, String> {
    let mut command = Command::new(delv);
    command
        .arg("-a")
        .arg(anchors)
        .arg(format!("@{server}"))
        .args(["www.example.com", "A", "+vtrace"]);
    run(command, Duration::from_secs(20), log).await
}

#[tokio::test]
#[ignore = "needs root and Debian's unbound and bind9-dnsutils: make interop"]
async fn dnssec_our_signed_chain_under_unbound_and_delv() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let mut report = Report::new("dnssec");
    if !crate::differential::prerequisites(&mut report) {
        return report.finish();
    }
    let Some(found) = tools(&mut report, &["unbound", "delv"]) else {
        return report.finish();
    };
    let delv = found[1].clone();
    let dir = report.dir().to_path_buf();
    let keys = dir.join("keys");
    let zones = demo_zones();
    let topology = dnstrail::topology::Topology::load(&zones).unwrap();
    let addrs: Vec<SocketAddr> = topology
        .server_addrs()
        .into_iter()
        .chain([UNBOUND, OUR_RESOLVER])
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .collect();
    if let Err(why) = require_free(&dns_ports(addrs)) {
        report.fail("ports free", why);
        return report.finish();
    }
    let mut tiers = Vec::new();
    for tier in ["root", "tld", "auth"] {
        match name_servers(tier, &zones, &keys, None, &dir).await {
            Ok(p) => tiers.push((tier, p)),
            Err(why) => {
                report.fail(format!("dnstrail {tier} --dnssec started"), why);
                for (_, p) in tiers {
                    stop(p).await;
                }
                return report.finish();
            }
        }
    }
    let anchor = keys.join("root.key");
    let ub = match unbound(&anchor, &dir).await {
        Ok(p) => p,
        Err(why) => {
            report.fail("Unbound started with our trust anchor", why);
            for (_, p) in tiers {
                stop(p).await;
            }
            return report.finish();
        }
    };
    report.check(
        "Unbound validates www.example.com over our signed chain",
        expect(UNBOUND, "www.example.com.", ResponseCode::NoError, true).await,
    );
    report.check(
        "Unbound proves nope.example.com does not exist",
        expect(UNBOUND, "nope.example.com.", ResponseCode::NXDomain, true).await,
    );
    // delv, with the anchor in its own syntax, through Unbound.
    let anchors = keys.join("root.anchors");
    let outcome = delv_vtrace(&delv, &anchors, UNBOUND, &dir.join("delv-unbound.txt")).await;
    report.check(
        "delv +vtrace with our anchor (through Unbound): fully validated",
        match outcome {
            Ok(out) if out.stdout.contains("fully validated") => Ok(format!(
                "{} chain-of-trust lines",
                out.stderr
                    .lines()
                    .filter(|l| l.contains("marking as secure"))
                    .count()
            )),
            Ok(out) => Err(format!("{}{}", out.stdout, out.complaint())),
            Err(why) => Err(why),
        },
    );

    // Our resolver over the same chain; delv through it too.
    match our_resolver(&anchor, &dir).await {
        Ok(resolver) => {
            report.check(
                "dnstrail resolver validates www.example.com (AD)",
                expect(
                    OUR_RESOLVER,
                    "www.example.com.",
                    ResponseCode::NoError,
                    true,
                )
                .await,
            );
            report.check(
                "dnstrail resolver proves nope.example.com (NXDOMAIN, AD)",
                expect(
                    OUR_RESOLVER,
                    "nope.example.com.",
                    ResponseCode::NXDomain,
                    true,
                )
                .await,
            );
            let outcome = delv_vtrace(
                &delv,
                &anchors,
                OUR_RESOLVER,
                &dir.join("delv-dnstrail.txt"),
            )
            .await;
            report.check(
                "delv +vtrace through the dnstrail resolver (CD=1, RRSIGs passed on): fully validated",
                match outcome {
                    Ok(out) if out.stdout.contains("fully validated") => Ok("fully validated".into()),
                    Ok(out) => Err(format!("{}{}", out.stdout, out.complaint())),
                    Err(why) => Err(why),
                },
            );
            stop(resolver).await;
        }
        Err(why) => report.fail("dnstrail resolver --trust-anchor started", why),
    }
    stop(ub).await;

    // Each fault: the tier that serves the broken link restarted with it,
    // and a fresh Unbound (an empty cache) asked.
    for (tier, fault) in [
        ("auth", "bad-signature"),
        ("auth", "expired-signature"),
        ("tld", "missing-ds"),
        ("tld", "wrong-ds"),
    ] {
        let at = tiers.iter().position(|(t, _)| *t == tier).unwrap();
        let (_, healthy) = tiers.remove(at);
        stop(healthy).await;
        let broken = match name_servers(tier, &zones, &keys, Some(fault), &dir).await {
            Ok(p) => p,
            Err(why) => {
                report.fail(format!("dnstrail {tier} --fault {fault}"), why);
                break;
            }
        };
        match unbound(&anchor, &dir).await {
            Ok(ub) => {
                let outcome = match ask_do(UNBOUND, "www.example.com.", RecordType::A).await {
                    Ok(r) if r.metadata.response_code == ResponseCode::ServFail => Ok(verdict(&r)),
                    Ok(r) => Err(format!("{}, expected SERVFAIL", verdict(&r))),
                    Err(why) => Err(why),
                };
                report.check(
                    format!("Unbound: SERVFAIL with {tier} --fault {fault}"),
                    outcome,
                );
                stop(ub).await;
            }
            Err(why) => report.fail("Unbound restarted", why),
        }
        if let Ok(resolver) = our_resolver(&anchor, &dir).await {
            let outcome = match ask_do(OUR_RESOLVER, "www.example.com.", RecordType::A).await {
                Ok(r) if r.metadata.response_code == ResponseCode::ServFail => Ok(verdict(&r)),
                Ok(r) => Err(format!("{}, expected SERVFAIL", verdict(&r))),
                Err(why) => Err(why),
            };
            report.check(
                format!("dnstrail resolver: SERVFAIL with {tier} --fault {fault}"),
                outcome,
            );
            stop(resolver).await;
        }
        stop(broken).await;
        match name_servers(tier, &zones, &keys, None, &dir).await {
            Ok(p) => tiers.insert(at, (tier, p)),
            Err(why) => {
                report.fail(format!("dnstrail {tier} healed"), why);
                break;
            }
        }
    }
    for (_, p) in tiers {
        stop(p).await;
    }
    report.finish();
}

/// A signer of zones other than ours, with its own key generator.
#[derive(Clone, Copy)]
enum Signer {
    /// BIND's `dnssec-keygen` and `dnssec-signzone`: NSEC.
    Bind,
    /// NLnet Labs' `ldns-keygen` and `ldns-signzone -n`: NSEC3, no extra
    /// iterations and no salt (RFC 9276).
    Ldns,
}

impl Signer {
    fn name(self) -> &'static str {
        match self {
            Signer::Bind => "dnssec-signzone",
            Signer::Ldns => "ldns-signzone",
        }
    }

    fn denial(self) -> &'static str {
        match self {
            Signer::Bind => "NSEC",
            Signer::Ldns => "NSEC3",
        }
    }

    fn tools(self) -> [&'static str; 2] {
        match self {
            Signer::Bind => ["dnssec-keygen", "dnssec-signzone"],
            Signer::Ldns => ["ldns-keygen", "ldns-signzone"],
        }
    }

    /// Make a KSK and a ZSK in `home`, sign `home/example.com.zone` into
    /// `home/example.com.zone.signed`; the KSK's DS, as a registrar gets it.
    async fn sign(
        self,
        keygen: &Path,
        signzone: &Path,
        home: &Path,
        log: &Path,
    ) -> Result<String, String> {
        let step = |what: &str| log.join(format!("{what}.txt"));
        let succeeded = |o: crate::process::Output| {
            if o.status.success() {
                Ok(o)
            } else {
                Err(o.complaint())
            }
        };
        let mut names = Vec::new();
        for ksk in [true, false] {
            let mut command = Command::new(keygen);
            command.current_dir(home);
            match self {
                Signer::Bind => {
                    command.args(["-q", "-a", "ECDSAP256SHA256"]);
                    if ksk {
                        command.args(["-f", "KSK"]);
                    }
                }
                Signer::Ldns => {
                    command.args(["-a", "ECDSAP256SHA256"]);
                    if ksk {
                        command.arg("-k");
                    }
                }
            }
            command.arg("example.com");
            let what = format!("{} ({})", keygen.display(), if ksk { "KSK" } else { "ZSK" });
            let out = succeeded(run(command, Duration::from_secs(30), &step(&what)).await?)
                .map_err(|why| format!("{what}: {why}"))?;
            names.push(out.stdout.trim().to_string());
        }
        let mut command = Command::new(signzone);
        command.current_dir(home);
        match self {
            Signer::Bind => {
                command.args([
                    "-S",
                    "-K",
                    ".",
                    "-o",
                    "example.com",
                    "-f",
                    "example.com.zone.signed",
                    "example.com.zone",
                ]);
            }
            Signer::Ldns => {
                command
                    .args([
                        "-n",
                        "-t",
                        "0",
                        "-o",
                        "example.com.",
                        "-f",
                        "example.com.zone.signed",
                        "example.com.zone",
                    ])
                    .args(&names);
            }
        }
        succeeded(run(command, Duration::from_secs(30), &step(self.name())).await?)
            .map_err(|why| format!("{}: {why}", self.name()))?;
        let ds = match self {
            Signer::Bind => home.join("dsset-example.com."),
            Signer::Ldns => home.join(format!("{}.ds", names[0])),
        };
        std::fs::read_to_string(&ds).map_err(|e| format!("{}: {e}", ds.display()))
    }
}

#[tokio::test]
#[ignore = "needs root and Debian's nsd and bind9-utils: make interop"]
async fn dnssec_our_resolver_over_a_zone_signed_by_dnssec_signzone_on_nsd() {
    signed_elsewhere_served_by_nsd(Signer::Bind).await;
}

#[tokio::test]
#[ignore = "needs root and Debian's nsd and ldnsutils: make interop"]
async fn dnssec_our_resolver_over_a_zone_signed_by_ldns_signzone_with_nsec3_on_nsd() {
    signed_elsewhere_served_by_nsd(Signer::Ldns).await;
}

/// Our resolver validating example.com signed by another tool and served
/// by NSD, under our signed root and com. (with its DS added); Unbound
/// agreeing.
async fn signed_elsewhere_served_by_nsd(signer: Signer) {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let mut report = Report::new(signer.name());
    if !crate::differential::prerequisites(&mut report) {
        return report.finish();
    }
    let [keygen, signzone] = signer.tools();
    let Some(found) = tools(&mut report, &["nsd", keygen, signzone, "unbound"]) else {
        return report.finish();
    };
    let (nsd, keygen, signzone) = (found[0].clone(), found[1].clone(), found[2].clone());
    let dir = report.dir().to_path_buf();
    // Our root and com.; example.com. signed by BIND's tools, served by NSD.
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for name in ["root.zone", "com.zone", "root.hints"] {
        std::fs::copy(demo_zones().join(name), zones.join(name)).unwrap();
    }
    let bind = dir.join("bind");
    std::fs::create_dir_all(&bind).unwrap();
    let unsigned = bind.join("example.com.zone");
    std::fs::copy(demo_zones().join("example.com.zone"), &unsigned).unwrap();
    let dsset = match signer.sign(&keygen, &signzone, &bind, &dir).await {
        Ok(ds) => {
            report.pass(
                format!("{} example.com", signer.name()),
                format!("{}, keys from {}", signer.denial(), keygen.display()),
            );
            ds
        }
        Err(why) => {
            report.fail(format!("{} example.com", signer.name()), why);
            return report.finish();
        }
    };
    // The DS goes into our com. zone, as a registrar would put it.
    let mut com = std::fs::read_to_string(zones.join("com.zone")).unwrap();
    com.push_str(&format!(
        "\n; The DS of example.com., from {}\n",
        signer.name()
    ));
    com.push_str(&dsset);
    std::fs::write(zones.join("com.zone"), com).unwrap();

    let topology = dnstrail::topology::Topology::load(&demo_zones()).unwrap();
    let auth: Vec<IpAddr> = topology
        .find_servers("auth")
        .unwrap()
        .into_iter()
        .flat_map(|s| s.addrs.clone())
        .collect();
    let addrs: Vec<SocketAddr> = topology
        .server_addrs()
        .into_iter()
        .chain([UNBOUND, OUR_RESOLVER])
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .collect();
    if let Err(why) = require_free(&dns_ports(addrs)) {
        report.fail("ports free", why);
        return report.finish();
    }
    let mut conf = String::from("server:\n");
    for ip in &auth {
        conf.push_str(&format!("    ip-address: {ip}\n"));
    }
    let home = bind.display();
    conf.push_str(&format!(
        "    port: {DNS_PORT}\n    do-ip6: no\n    server-count: 1\n    username: \"\"\n    chroot: \"\"\n    zonesdir: \"{home}\"\n    database: \"\"\n    zonelistfile: \"{home}/zone.list\"\n    xfrdfile: \"{home}/xfrd.state\"\n    pidfile: \"{home}/nsd.pid\"\n    rrl-ratelimit: 0\nremote-control:\n    control-enable: no\nzone:\n    name: \"example.com\"\n    zonefile: \"{home}/example.com.zone.signed\"\n"
    ));
    std::fs::write(bind.join("nsd.conf"), conf).unwrap();
    let mut command = Command::new(&nsd);
    command.arg("-d").arg("-c").arg(bind.join("nsd.conf"));
    let nsd = match Process::start("nsd", command, &dir.join("nsd.log")) {
        Ok(p) => p,
        Err(why) => {
            report.fail("NSD started", why);
            return report.finish();
        }
    };
    let keys = dir.join("keys");
    let ours = match name_servers("nameservers", &zones, &keys, None, &dir).await {
        Ok(p) => p,
        Err(why) => {
            report.fail("dnstrail root and com. --dnssec", why);
            stop(nsd).await;
            return report.finish();
        }
    };
    if let Err(why) = ready(auth[0], "example.com.").await {
        report.fail("NSD answering", why);
    }
    let anchor = keys.join("root.key");
    match our_resolver(&anchor, &dir).await {
        Ok(resolver) => {
            report.check(
                format!(
                    "dnstrail resolver validates www.example.com signed by {} on NSD",
                    signer.name()
                ),
                expect(
                    OUR_RESOLVER,
                    "www.example.com.",
                    ResponseCode::NoError,
                    true,
                )
                .await,
            );
            report.check(
                format!(
                    "dnstrail resolver: NXDOMAIN proven by {}'s {} (AD)",
                    signer.name(),
                    signer.denial()
                ),
                expect(
                    OUR_RESOLVER,
                    "nope.example.com.",
                    ResponseCode::NXDomain,
                    true,
                )
                .await,
            );
            let nodata = ask_do(OUR_RESOLVER, "www.example.com.", RecordType::AAAA).await;
            report.check(
                "dnstrail resolver: NODATA proven (AD)",
                match nodata {
                    Ok(r) if r.metadata.authentic_data && r.answers.is_empty() => Ok(verdict(&r)),
                    Ok(r) => Err(verdict(&r)),
                    Err(why) => Err(why),
                },
            );
            stop(resolver).await;
        }
        Err(why) => report.fail("dnstrail resolver started", why),
    }
    match unbound(&anchor, &dir).await {
        Ok(ub) => {
            report.check(
                "Unbound agrees: www.example.com (AD)",
                expect(UNBOUND, "www.example.com.", ResponseCode::NoError, true).await,
            );
            stop(ub).await;
        }
        Err(why) => report.fail("Unbound started", why),
    }
    stop(ours).await;
    stop(nsd).await;
    report.finish();
}
