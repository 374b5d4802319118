//! The hierarchy a set of zone files describes: which zones there are, which
//! name servers serve each, and at which addresses. Nothing here is written
//! in code; everything is read from the zones.
//!
//! ```text
//!  zone files ──► each zone's apex (its SOA) and its servers (its apex NS)
//!                   │
//!                   ▼
//!  each server's addresses: glue in a parent, or A/AAAA records anywhere
//!                   │
//!                   ▼
//!  servers by address ── which zones each serves ── the root hints
//! ```
//!
//! For the demo's zones that gives:
//!
//! ```text
//!  zone          servers (from its NS)               addresses (glue in the parent)
//!  .             a.root-servers.net                  127.0.0.2
//!  com.          a.gtld-servers.net                  127.0.0.3
//!  example.com.  ns-1.awsdns-01.com … ns-4…          127.0.0.4 … 127.0.0.7
//! ```
//!
//! Every name server listens on its own addresses, all on one DNS port,
//! because glue records carry addresses, not ports: a resolver that learns
//! `ns-1.awsdns-01.com` is at 127.0.0.4 asks 127.0.0.4, on the one port it
//! uses for everything. Change the glue in a zone file and the server moves.
//!
//! Data that cannot make a working hierarchy stops loading with
//! `file:line: reason`, as a bad zone file does: a name server with no
//! address anywhere, a delegation to a zone that is neither loaded nor
//! reachable, a loaded zone its parent does not delegate, one address
//! claimed by two server names.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::resolver::cache::Delegation;
use crate::zone::{Zone, ZoneError, zone_cut_above};

/// The DNS port every role uses unless told otherwise: unprivileged, so the
/// demo runs without root. `--dns-port 53` lets unmodified resolvers in.
pub const DEFAULT_DNS_PORT: u16 = 5300;
/// The port of the resolver's control endpoint.
pub const DEFAULT_CONTROL_PORT: u16 = 5380;
/// Where stub clients reach the resolver unless told otherwise.
pub const DEFAULT_RESOLVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The page the demo's browser visits unless told otherwise.
pub const DEFAULT_URL: &str = "http://www.example.com:8080/";
/// Where the demo's zones are when the checkout is at hand (`make demo`);
/// the binary carries a copy (see [`crate::builtin`]).
pub const DEFAULT_ZONES_DIR: &str = "demo-zones";

/// How deep a zone sits, which is the part it plays in the story: the root
/// refers to TLDs, a TLD to a domain's own servers, which answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The root zone.
    Root,
    /// A top-level domain (`com.`).
    Tld,
    /// Anything below: a hosted zone, a name server operator's own zone.
    Domain,
}

impl Tier {
    pub fn of(apex: &Name) -> Tier {
        match apex.num_labels() {
            0 => Tier::Root,
            1 => Tier::Tld,
            _ => Tier::Domain,
        }
    }

    /// The subcommand that serves zones of this tier.
    pub fn command(self) -> &'static str {
        match self {
            Tier::Root => "root",
            Tier::Tld => "tld",
            Tier::Domain => "auth",
        }
    }
}

/// One name server host: its name, its addresses, and the zones it serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Server {
    /// Absolute, as the NS records name it (`ns-2.awsdns-02.com.`).
    pub name: String,
    pub addrs: Vec<IpAddr>,
    /// Apexes of the zones it serves, highest first.
    pub zones: Vec<String>,
}

impl Server {
    /// Whether `which` names this server: its full name, with or without
    /// the final dot, or its first label (`ns-2`).
    pub fn is_called(&self, which: &str) -> bool {
        let which = which.trim().trim_end_matches('.').to_ascii_lowercase();
        let name = self.name.trim_end_matches('.').to_ascii_lowercase();
        name == which || name.split('.').next() == Some(which.as_str())
    }
}

/// Where the web server listens, and the names it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePlacement {
    pub addrs: Vec<SocketAddr>,
    pub hosts: Vec<String>,
}

/// A loaded hierarchy.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Every zone, highest first (the root, then TLDs, …).
    pub zones: Vec<Zone>,
    /// Every name server, in the order of the zones they serve.
    pub servers: Vec<Server>,
    /// Where a resolver starts: the root's servers and their addresses.
    pub hints: Option<Delegation>,
    /// Where the zones came from, for messages.
    pub source: String,
}

/// Files in a zone directory that are never zone files.
fn is_zone_file_name(name: &str) -> bool {
    const NOT_ZONES: [&str; 12] = [
        ".hints", ".md", ".txt", ".jnl", ".journal", ".key", ".private", ".bak", ".orig", ".swp",
        ".json", ".conf",
    ];
    !name.starts_with('.')
        && !name.ends_with('~')
        && !name.to_ascii_lowercase().starts_with("readme")
        && !NOT_ZONES.iter().any(|suffix| name.ends_with(suffix))
}

impl Topology {
    /// The hierarchy of every zone file in `dir`: any names, any number.
    /// Files named `*.hints` (root hints), README files, journals, keys and
    /// dot-files are not zone files.
    pub fn load(dir: &Path) -> Result<Topology, ZoneError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ZoneError {
            file: dir.to_path_buf(),
            line: None,
            reason: format!("cannot read the zone directory: {e}"),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            // Everything but directories: a FIFO or a device among the
            // zone files is refused by name rather than skipped.
            .filter(|e| !e.path().is_dir())
            .filter(|e| e.file_name().to_str().is_some_and(is_zone_file_name))
            .map(|e| e.path())
            .collect();
        files.sort();
        let zones = files
            .iter()
            .map(Zone::load)
            .collect::<Result<Vec<_>, _>>()?;
        if zones.is_empty() {
            return Err(ZoneError {
                file: dir.to_path_buf(),
                line: None,
                reason: "no zone files here (a zone file starts with the SOA of its apex)".into(),
            });
        }
        Topology::from_zones(zones, &dir.display().to_string())
    }

    /// The demo's hierarchy, as built into the binary.
    pub fn builtin() -> Topology {
        let zones = crate::builtin::zone_files()
            .filter(|(name, _)| is_zone_file_name(name))
            .map(|(name, bytes)| {
                let text = String::from_utf8_lossy(bytes);
                Zone::parse(&text, Path::new(crate::builtin::BUILT_IN).join(name))
            })
            .collect::<Result<Vec<_>, _>>()
            .expect("the built-in zones load (a test checks them)");
        Topology::from_zones(zones, crate::builtin::BUILT_IN)
            .expect("the built-in zones make a hierarchy (a test checks it)")
    }

    /// `--zones DIR` if given, else the built-in demo zones.
    pub fn load_or_builtin(dir: Option<&Path>) -> Result<Topology, ZoneError> {
        match dir {
            Some(dir) => Topology::load(dir),
            None => Ok(Topology::builtin()),
        }
    }

    /// Derive the servers, their addresses and the root hints from loaded
    /// zones, checking that they make a hierarchy.
    pub fn from_zones(mut zones: Vec<Zone>, source: &str) -> Result<Topology, ZoneError> {
        zones.sort_by(|a, b| {
            (a.origin().num_labels(), a.origin()).cmp(&(b.origin().num_labels(), b.origin()))
        });
        for pair in zones.windows(2) {
            if pair[0].lower_origin() == pair[1].lower_origin() {
                return Err(at(
                    &pair[1],
                    pair[1].origin(),
                    RecordType::SOA,
                    format!(
                        "a second zone file for {} (the first is {})",
                        pair[1].origin(),
                        pair[0].file().display()
                    ),
                ));
            }
        }

        let mut servers: BTreeMap<String, Server> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for zone in &zones {
            check_delegated(&zones, zone)?;
            for name in ns_targets(
                zone.rrset(zone.lower_origin(), RecordType::NS)
                    .as_ref()
                    .map(|r| &r.records[..]),
            ) {
                let addrs = addresses_anywhere(&zones, &name);
                if addrs.is_empty() {
                    let parent = parent_of(&zones, zone);
                    return Err(at(
                        zone,
                        zone.origin(),
                        RecordType::NS,
                        format!(
                            "{}'s name server {name} has no address: no glue for it in {} and no A or AAAA record for it in any zone of {source}",
                            zone.origin(),
                            parent.map_or("a parent zone".to_string(), |p| p.origin().to_string()),
                        ),
                    ));
                }
                let key = name.to_ascii();
                let server = servers.entry(key.clone()).or_insert_with(|| {
                    order.push(key.clone());
                    Server {
                        name: key.clone(),
                        addrs: Vec::new(),
                        zones: Vec::new(),
                    }
                });
                for ip in addrs {
                    if !server.addrs.contains(&ip) {
                        server.addrs.push(ip);
                    }
                }
                server.zones.push(zone.origin().to_string());
            }
            check_delegations_below(&zones, zone, source)?;
        }

        // One address, one host: two names for one address cannot be told
        // apart in the story (nor in `--fail`).
        let mut owner: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for key in &order {
            let server = &servers[key];
            for ip in &server.addrs {
                if let Some(other) = owner.insert(*ip, &server.name)
                    && other != server.name
                {
                    let (zone, rtype) = address_record(&zones, &server.name, *ip);
                    return Err(at(
                        zone,
                        &Name::from_ascii(&server.name).unwrap_or_default(),
                        rtype,
                        format!(
                            "{ip} is claimed by two name servers, {other} and {}; give each server an address of its own",
                            server.name
                        ),
                    ));
                }
            }
        }

        let servers: Vec<Server> = order.into_iter().map(|k| servers[&k].clone()).collect();
        let hints = zones.iter().find(|z| z.origin().is_root()).map(|root| {
            let ns = root
                .rrset(root.lower_origin(), RecordType::NS)
                .map(|r| r.records.clone())
                .unwrap_or_default();
            let glue = ns_targets(Some(&ns))
                .into_iter()
                .flat_map(|name| address_records_anywhere(&zones, &name))
                .collect();
            Delegation {
                zone: Name::root(),
                ns,
                glue,
                learned_from: Vec::new(),
            }
        });
        Ok(Topology {
            zones,
            servers,
            hints,
            source: source.to_string(),
        })
    }

    /// The zone whose apex is `apex`.
    pub fn zone(&self, apex: &str) -> Option<&Zone> {
        let apex = Name::from_ascii(apex).ok()?;
        let apex = LowerName::new(&apex);
        self.zones.iter().find(|z| *z.lower_origin() == apex)
    }

    /// The root hints a resolver of this hierarchy starts from.
    pub fn root_hints(&self) -> Result<Delegation, ZoneError> {
        self.hints.clone().ok_or_else(|| ZoneError {
            file: PathBuf::from(&self.source),
            line: None,
            reason: "no root zone here, so no root hints: add a zone file for `.` or give --root-hints FILE".into(),
        })
    }

    /// The server at `ip`, if it is one of ours.
    pub fn server_at(&self, ip: IpAddr) -> Option<&Server> {
        self.servers.iter().find(|s| s.addrs.contains(&ip))
    }

    /// The name servers called `which`: a tier (`root`, `tld`, `auth`), a
    /// zone (`example.com.`: all its servers), a server's name
    /// (`a.root-servers.net`), or the first label of one (`ns-2`).
    pub fn find_servers(&self, which: &str) -> Result<Vec<&Server>, String> {
        let wanted = which.trim().to_ascii_lowercase();
        let by_tier = match wanted.as_str() {
            "root" => Some(Tier::Root),
            "tld" => Some(Tier::Tld),
            "auth" => Some(Tier::Domain),
            _ => None,
        };
        let zone_name = format!("{}.", wanted.trim_end_matches('.'));
        let found: Vec<&Server> = self
            .servers
            .iter()
            .filter(|s| match by_tier {
                Some(tier) => s
                    .zones
                    .iter()
                    .any(|z| Name::from_ascii(z).is_ok_and(|apex| Tier::of(&apex) == tier)),
                None => {
                    s.is_called(&wanted)
                        || s.zones.iter().any(|z| z.eq_ignore_ascii_case(&zone_name))
                }
            })
            .collect();
        if found.is_empty() {
            let known: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "no name server called `{which}`: try root, tld, auth, a zone's name, or one of {}",
                known.join(", ")
            ));
        }
        Ok(found)
    }

    /// What the zones say `host` resolves to, following CNAMEs across the
    /// zones loaded: its addresses (A and AAAA), as a resolver would find
    /// them, and the names on the way.
    pub fn resolve(&self, host: &str) -> (Vec<IpAddr>, Vec<Name>) {
        let Ok(mut name) = Name::from_ascii(host.trim_end_matches('.')) else {
            return (Vec::new(), Vec::new());
        };
        name.set_fqdn(true);
        let mut chain = vec![name.clone()];
        for _ in 0..8 {
            let lower = LowerName::new(&name);
            let Some(zone) = self.authoritative_zone(&lower) else {
                break;
            };
            let addrs: Vec<IpAddr> = [RecordType::A, RecordType::AAAA]
                .iter()
                .filter_map(|t| zone.rrset(&lower, *t))
                .flat_map(|r| r.records)
                .filter_map(|r| crate::dns::address_of(&r))
                .collect();
            if !addrs.is_empty() {
                return (addrs, chain);
            }
            match zone
                .rrset(&lower, RecordType::CNAME)
                .map(|r| r.records[0].data.clone())
            {
                Some(RData::CNAME(target)) => {
                    name = target.0.clone();
                    chain.push(name.clone());
                }
                _ => break,
            }
        }
        (Vec::new(), chain)
    }

    /// Every name in the zones that resolves (directly or through CNAMEs)
    /// to one of `addrs`: the names a web server at those addresses serves.
    pub fn names_at(&self, addrs: &[IpAddr]) -> Vec<String> {
        let mut names = BTreeSet::new();
        for zone in &self.zones {
            for (name, rtype) in zone.names_and_types() {
                if matches!(rtype, RecordType::A | RecordType::AAAA | RecordType::CNAME)
                    && zone_cut_above(zone, &LowerName::new(&name)).is_none()
                    && !name.is_wildcard()
                {
                    let (found, _) = self.resolve(&name.to_ascii());
                    if found.iter().any(|ip| addrs.contains(ip)) {
                        names.insert(name.to_ascii().trim_end_matches('.').to_string());
                    }
                }
            }
        }
        names.into_iter().collect()
    }

    /// The zone that answers for `name` with authority: the deepest loaded
    /// zone containing it, unless that zone delegates it away.
    fn authoritative_zone(&self, name: &LowerName) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| z.contains(name) && zone_cut_above(z, name).is_none())
            .max_by_key(|z| z.origin().num_labels())
    }

    /// Where the web server of `urls` listens and which names it serves:
    /// the addresses the zones give the URLs' hosts (on the URL's port or
    /// `port`), and every name pointing at them.
    pub fn place_site(&self, urls: &[String], port: Option<u16>) -> Result<SitePlacement, String> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for url in urls {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
            let host = parsed
                .host_str()
                .ok_or_else(|| format!("{url}: no host name"))?;
            let port = port.unwrap_or_else(|| parsed.port_or_known_default().unwrap_or(80));
            let (found, chain) = self.resolve(host);
            if found.is_empty() {
                return Err(format!(
                    "{host} has no address in the zones of {} (looked up {}): add an A record for it",
                    self.source,
                    chain
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" → ")
                ));
            }
            // Wherever the zones put it: on loopback for the demo, on a
            // host's own address beyond one machine (binding says if it is
            // not this machine's).
            for ip in found {
                let addr = SocketAddr::new(ip, port);
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        Ok(SitePlacement {
            hosts: self.names_at(&ips),
            addrs,
        })
    }

    /// Every address a name server of this hierarchy listens on.
    pub fn server_addrs(&self) -> Vec<IpAddr> {
        self.servers
            .iter()
            .flat_map(|s| s.addrs.iter().copied())
            .collect()
    }

    /// Refuse an address a role other than the name servers wants, if a
    /// name server has it: the resolver's and the web server's addresses
    /// must be their own.
    pub fn check_free(&self, addr: SocketAddr, role: &str, dns_port: u16) -> Result<(), ZoneError> {
        if addr.port() != dns_port && addr.port() != 0 {
            return Ok(());
        }
        match self.server_at(addr.ip()) {
            Some(server) => {
                let (zone, rtype) = address_record(&self.zones, &server.name, addr.ip());
                Err(at(
                    zone,
                    &Name::from_ascii(&server.name).unwrap_or_default(),
                    rtype,
                    format!(
                        "{} is the address of name server {}, and the {role} is to listen there too; give one of them another address",
                        addr.ip(),
                        server.name
                    ),
                ))
            }
            None => Ok(()),
        }
    }
}

/// An error at the line of `name`'s `rtype` RRset in `zone` (or the SOA's).
fn at(zone: &Zone, name: &Name, rtype: RecordType, reason: String) -> ZoneError {
    let line = zone
        .rrset(&LowerName::new(name), rtype)
        .or_else(|| zone.rrset(zone.lower_origin(), RecordType::SOA))
        .map(|r| r.line);
    ZoneError {
        file: zone.file().to_path_buf(),
        line,
        reason,
    }
}

/// The server names in NS records.
fn ns_targets(records: Option<&[Record]>) -> Vec<Name> {
    records
        .unwrap_or_default()
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect()
}

/// Every A and AAAA record owned by `name`, in any zone (glue included).
fn address_records_anywhere(zones: &[Zone], name: &Name) -> Vec<Record> {
    let lower = LowerName::new(name);
    let mut out: Vec<Record> = Vec::new();
    for zone in zones.iter().filter(|z| z.contains(&lower)) {
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(rrset) = zone.rrset(&lower, rtype) {
                for record in &rrset.records {
                    if !out.iter().any(|r| r.data == record.data) {
                        out.push(record.clone());
                    }
                }
            }
        }
    }
    out
}

fn addresses_anywhere(zones: &[Zone], name: &Name) -> Vec<IpAddr> {
    crate::dns::addresses(&address_records_anywhere(zones, name))
}

/// The zone (and type) holding the record that gives `server` the address
/// `ip`, for pointing at it in an error.
fn address_record<'z>(zones: &'z [Zone], server: &str, ip: IpAddr) -> (&'z Zone, RecordType) {
    let name = Name::from_ascii(server).unwrap_or_default();
    let lower = LowerName::new(&name);
    let rtype = if ip.is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    };
    let zone = zones
        .iter()
        .filter(|z| z.contains(&lower))
        .find(|z| {
            z.rrset(&lower, rtype).is_some_and(|r| {
                r.records
                    .iter()
                    .any(|rec| crate::dns::address_of(rec) == Some(ip))
            })
        })
        .unwrap_or(&zones[0]);
    (zone, rtype)
}

/// The loaded zone directly above `zone`, if any.
fn parent_of<'z>(zones: &'z [Zone], zone: &Zone) -> Option<&'z Zone> {
    zones
        .iter()
        .filter(|p| {
            p.origin().num_labels() < zone.origin().num_labels() && p.contains(zone.lower_origin())
        })
        .max_by_key(|p| p.origin().num_labels())
}

/// A loaded zone whose loaded parent does not delegate it cannot be found
/// by any resolver.
fn check_delegated(zones: &[Zone], zone: &Zone) -> Result<(), ZoneError> {
    let Some(parent) = parent_of(zones, zone) else {
        return Ok(());
    };
    match zone_cut_above(parent, zone.lower_origin()) {
        Some(cut) if cut == *zone.lower_origin() => Ok(()),
        _ => Err(at(
            zone,
            zone.origin(),
            RecordType::SOA,
            format!(
                "{} has a zone file, but its parent {} ({}) does not delegate it: add NS records for {} there",
                zone.origin(),
                parent.origin(),
                parent.file().display(),
                zone.origin()
            ),
        )),
    }
}

/// Delegations in `zone` to zones that are not loaded must at least lead
/// somewhere: one of their servers needs an address.
fn check_delegations_below(zones: &[Zone], zone: &Zone, source: &str) -> Result<(), ZoneError> {
    for (name, rtype) in zone.names_and_types() {
        let lower = LowerName::new(&name);
        if rtype != RecordType::NS || lower == *zone.lower_origin() {
            continue;
        }
        if zones.iter().any(|z| *z.lower_origin() == lower) {
            continue;
        }
        let targets = ns_targets(
            zone.rrset(&lower, RecordType::NS)
                .as_ref()
                .map(|r| &r.records[..]),
        );
        if targets
            .iter()
            .all(|t| addresses_anywhere(zones, t).is_empty())
        {
            let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
            return Err(at(
                zone,
                &name,
                RecordType::NS,
                format!(
                    "{} delegates {name} to {}, but {name} has no zone file in {source} and none of those servers has an address",
                    zone.origin(),
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_hierarchy_is_derived_from_its_zone_files() {
        let topology = Topology::builtin();
        let apexes: Vec<String> = topology
            .zones
            .iter()
            .map(|z| z.origin().to_string())
            .collect();
        assert_eq!(apexes, [".", "com.", "example.com."]);
        // Each example.com server is where com.'s glue puts it.
        let com = topology.zone("com.").unwrap();
        for server in topology
            .servers
            .iter()
            .filter(|s| s.zones == ["example.com."])
        {
            let name = LowerName::new(&Name::from_ascii(&server.name).unwrap());
            let glue = crate::dns::addresses(&com.rrset(&name, RecordType::A).unwrap().records);
            assert_eq!(server.addrs, glue, "{}", server.name);
        }
        assert_eq!(topology.servers.len(), 6);
        let hints = topology.root_hints().unwrap();
        assert_eq!(hints.server_names().len(), 1);
    }
}
