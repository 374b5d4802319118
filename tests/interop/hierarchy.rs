//! A DNS hierarchy as zone files in a directory of its own, which every
//! implementation under test serves or resolves over.
//!
//! A hierarchy is built from the leaf up, as hickory's `dns-test` builds its
//! networks: a zone is made first, with its name servers and its records;
//! its parent is made next and refers to it (NS records, and glue for the
//! servers whose names lie in the parent); and so on up to the root. The
//! root hints come last, from the root's servers.
//!
//! ```text
//!   ZoneBuilder::new("shop.test.").server(…).record(…)        leaf
//!        ▲ delegate
//!   ZoneBuilder::new("test.").server(…)                        its parent
//!        ▲ delegate
//!   ZoneBuilder::new(".").server(…)                            the root
//!        │ write
//!        ▼
//!   target/interop/<test>/zones/*.zone + root.hints ──► Topology::load
//! ```
//!
//! The demo's zones are used as they are: `Hierarchy::copy` takes a
//! directory of zone files, so the real servers read the very text
//! `demo-zones/` holds. Either way the servers, their addresses and the
//! zones each serves are read back from the files (`dnstrail::topology`),
//! never written in the tests.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use dnstrail::topology::Topology;
use hickory_proto::rr::RData;

/// The records of one zone, before it is written.
#[derive(Debug, Clone)]
pub struct ZoneBuilder {
    apex: String,
    ttl: u32,
    /// Name servers: name, and the address if this builder gives it.
    servers: Vec<(String, Option<IpAddr>)>,
    records: Vec<String>,
}

impl ZoneBuilder {
    /// A zone with an SOA naming its first server; records default to a
    /// one-hour TTL, negative answers to five minutes.
    pub fn new(apex: &str) -> ZoneBuilder {
        ZoneBuilder {
            apex: absolute(apex),
            ttl: 3600,
            servers: Vec::new(),
            records: Vec::new(),
        }
    }

    /// A name server of this zone. With an address, its A or AAAA record
    /// goes into this zone when the name lies inside it; without one, the
    /// name must get its address elsewhere (a server outside the zone's
    /// bailiwick).
    pub fn server(mut self, name: &str, addr: Option<IpAddr>) -> ZoneBuilder {
        let name = absolute(name);
        if let Some(ip) = addr
            && is_under(&name, &self.apex)
        {
            self.records.push(address_record(&name, ip));
        }
        self.servers.push((name, addr));
        self
    }

    /// A record in zone-file syntax, its owner absolute or relative to the
    /// apex (`www 300 IN A 127.0.3.44`, `*.cdn IN TXT "wild"`).
    pub fn record(mut self, text: &str) -> ZoneBuilder {
        self.records.push(text.to_string());
        self
    }

    /// Refer to `child`: its NS records here, and glue for those of its
    /// servers whose names lie in this zone.
    pub fn delegate(mut self, child: &ZoneBuilder) -> ZoneBuilder {
        assert!(
            is_under(&child.apex, &self.apex) && child.apex != self.apex,
            "{} is not below {}",
            child.apex,
            self.apex
        );
        for (name, _) in &child.servers {
            self.records
                .push(format!("{} 172800 IN NS {name}", child.apex));
        }
        for (name, addr) in &child.servers {
            if let Some(ip) = addr
                && is_under(name, &self.apex)
            {
                let glue = address_record(name, *ip);
                if !self.records.contains(&glue) {
                    self.records.push(glue);
                }
            }
        }
        self
    }

    fn text(&self) -> String {
        let first = self
            .servers
            .first()
            .map_or_else(|| format!("ns.{}", self.apex), |(n, _)| n.clone());
        let mut text = format!(
            "; written by tests/interop (hierarchy.rs)\n$ORIGIN {apex}\n$TTL {ttl}\n\
             @ 3600 IN SOA {first} hostmaster.{host} 1 1800 900 604800 300\n",
            apex = self.apex,
            ttl = self.ttl,
            host = if self.apex == "." { "" } else { &self.apex },
        );
        for (name, _) in &self.servers {
            text.push_str(&format!("@ 172800 IN NS {name}\n"));
        }
        for record in &self.records {
            text.push_str(record);
            text.push('\n');
        }
        text
    }

    fn file_name(&self) -> String {
        if self.apex == "." {
            "root.zone".to_string()
        } else {
            format!("{}zone", self.apex)
        }
    }
}

fn absolute(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

fn is_under(name: &str, apex: &str) -> bool {
    apex == "." || name == apex || name.ends_with(&format!(".{apex}"))
}

fn address_record(name: &str, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{name} 172800 IN A {v4}"),
        IpAddr::V6(v6) => format!("{name} 172800 IN AAAA {v6}"),
    }
}

/// A hierarchy written out, and what its files say.
pub struct Hierarchy {
    /// What the tests call it (`demo zones`, `unlike the demo`).
    pub name: String,
    /// The zone files and `root.hints`.
    pub dir: PathBuf,
    pub hints: PathBuf,
    pub topology: Topology,
    /// The page its web server serves, if it has one.
    pub site: Option<String>,
}

impl Hierarchy {
    /// Write `zones` (the leaves first, the root last) to `dir`, with the
    /// root hints, and read them back.
    pub fn write(
        name: &str,
        dir: &Path,
        zones: &[ZoneBuilder],
        site: Option<&str>,
    ) -> Result<Hierarchy, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for zone in zones {
            let path = dir.join(zone.file_name());
            std::fs::write(&path, zone.text()).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Hierarchy::read(name, dir, site)
    }

    /// The zone files of `from` (the demo's `demo-zones/`), copied as they
    /// are.
    pub fn copy(
        name: &str,
        from: &Path,
        dir: &Path,
        site: Option<&str>,
    ) -> Result<Hierarchy, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "zone") {
                std::fs::copy(&path, dir.join(entry.file_name()))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        Hierarchy::read(name, dir, site)
    }

    /// Load the files as dnstrail does (which checks they make a
    /// hierarchy), and write the root hints from the root zone.
    fn read(name: &str, dir: &Path, site: Option<&str>) -> Result<Hierarchy, String> {
        let topology = Topology::load(dir).map_err(|e| e.to_string())?;
        let hints = topology.root_hints().map_err(|e| e.to_string())?;
        let mut text = String::from("; root hints, from the root zone (tests/interop)\n");
        for record in hints.ns.iter().chain(&hints.glue) {
            text.push_str(&format!("{record}\n"));
        }
        let hints_path = dir.join("root.hints");
        std::fs::write(&hints_path, text).map_err(|e| format!("{}: {e}", hints_path.display()))?;
        Ok(Hierarchy {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            hints: hints_path,
            topology,
            site: site.map(str::to_string),
        })
    }

    /// The zone files, by apex.
    pub fn zone_files(&self) -> Vec<(String, PathBuf)> {
        self.topology
            .zones
            .iter()
            .map(|z| (z.origin().to_string(), z.file().to_path_buf()))
            .collect()
    }

    /// Every address a name server of the hierarchy listens on.
    pub fn server_addrs(&self) -> Vec<IpAddr> {
        self.topology.server_addrs()
    }

    /// The addresses of the root servers, from the hints.
    pub fn root_addrs(&self) -> Vec<IpAddr> {
        self.topology
            .hints
            .iter()
            .flat_map(|h| &h.glue)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect()
    }

    /// The site's host name, absolute (`www.example.com.`).
    pub fn site_host(&self) -> Option<String> {
        let url = reqwest::Url::parse(self.site.as_deref()?).ok()?;
        Some(absolute(url.host_str()?))
    }

    /// The top-level domains it has zones for.
    pub fn tlds(&self) -> Vec<String> {
        self.topology
            .zones
            .iter()
            .filter(|z| z.origin().num_labels() == 1)
            .map(|z| z.origin().to_string())
            .collect()
    }
}
