//! Zone files: the source of truth for every name server in the chain.
//!
//! A zone file (RFC 1035 §5) is read one entry at a time, so that every
//! mistake can be reported as `file:line: reason`. hickory's text parser does
//! the real parsing of each record; this module splits the file into entries
//! (a line, or several joined by parentheses), keeps the `$ORIGIN`/`$TTL`
//! context between them, and then checks what makes a zone servable:
//!
//! - exactly one SOA, whose owner is the zone's apex, and NS records there;
//! - every record at or below the apex (no out-of-zone data);
//! - no CNAME beside other data at the same name (RFC 1034 §3.6.2, RFC 2181 §10.1);
//! - every delegation to a name server inside the delegated zone has glue;
//! - below a delegation, nothing but those glue addresses.
//!
//! Two kinds of record hickory's parser does not read are read here: DNAME
//! (RFC 6672) and any type in the generic form of RFC 3597
//! (`TYPE65534 \# 2 0102`); and the DNSSEC records it calls "dynamically
//! generated" (DS, DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM), read by
//! [`crate::dnssec::text`], so that a parent's file can hold its children's
//! DS and a zone signed by another tool can be served as it is. TTLs are checked before hickory sees them, so
//! that `4294967296` or `-5` is called a bad TTL, not an unknown type.

use std::collections::HashMap;
use std::fmt::{self, Write};
use std::path::{Path, PathBuf};

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

pub mod journal;
mod store;
use hickory_proto::serialize::txt::Parser;
use store::{Added, Data, KeptNode, Key, key, name_of};

use crate::nameserver::dname;

/// The largest TTL a record may carry (RFC 2181 §8).
const MAX_TTL: u32 = 0x7fff_ffff;

/// A zone file that cannot be served, and where the problem is.
#[derive(Debug, thiserror::Error)]
pub struct ZoneError {
    pub file: PathBuf,
    /// 1-based line of the entry at fault, when the fault has one.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

/// All records of one type at one name, with the line that introduced them.
#[derive(Debug, Clone)]
pub struct Rrset {
    pub rtype: RecordType,
    pub records: Vec<Record>,
    pub line: usize,
}

/// The records at one name. A node with no RRsets is an empty non-terminal:
/// it exists (so a question for it is NODATA, not NXDOMAIN) because some name
/// below it does.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub rrsets: Vec<Rrset>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&Rrset> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }

    pub fn is_empty_non_terminal(&self) -> bool {
        self.rrsets.is_empty()
    }
}

/// A loaded, checked zone: its apex, its SOA, and its names. The records
/// are kept compactly (see `store.rs`); [`Zone::node`], [`Zone::rrset`] and
/// [`Zone::records`] hand them out as hickory records.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: Name,
    lower_origin: LowerName,
    file: PathBuf,
    nodes: HashMap<Key, KeptNode>,
    soa: Record,
    /// The SOA as it goes into negative answers: TTL = min(SOA TTL, MINIMUM)
    /// (RFC 2308 §3), so caches keep the negative answer for that long.
    negative_soa: Record,
}

impl Zone {
    /// Read and check a zone file, and replay the changes its journal
    /// (`FILE.jnl`, written by dynamic updates) holds since.
    pub fn load(path: impl AsRef<Path>) -> Result<Zone, ZoneError> {
        let path = path.as_ref();
        let mut builder = Builder::new(path);
        let text = read_file(path)?;
        read_records(&text, path, |record, line| builder.add(record, line))?;
        // The text is let go before the zone is finished and checked: a
        // big zone's file is not held beside it longer than it must be.
        drop(text);
        journal::replay(builder.finish()?)
    }

    /// This zone with `deleted` taken out and `added` put in, checked as a
    /// loaded zone is: what a dynamic update makes of it. Records are the
    /// same when their name, class, type and data are (RFC 2136 §1.1.1);
    /// a record added to an RRset gives the whole RRset its TTL, as BIND
    /// does (one TTL per RRset, RFC 2181 §5.2).
    pub fn with_changes(&self, deleted: &[Record], added: &[Record]) -> Result<Zone, String> {
        // The usual change keeps one SOA at the apex (an update swaps it
        // for one with a higher serial): it is made on a copy of the kept
        // names, touching only the names changed, then checked whole.
        // Anything else (no SOA left, two, or one elsewhere) is rebuilt
        // from every record, which says what is wrong as a file would.
        let soa_deleted = deleted.contains(&self.soa);
        let new_soas: Vec<&Record> = added
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .collect();
        let one_soa_at_apex = match (soa_deleted, new_soas.as_slice()) {
            (false, []) => true,
            (true, [soa]) => LowerName::new(&soa.name) == self.lower_origin,
            _ => false,
        };
        if !one_soa_at_apex {
            return self.rebuilt_with(deleted, added);
        }
        let mut nodes = self.nodes.clone();
        for record in deleted {
            if let Some(node) = key(&LowerName::new(&record.name)).and_then(|k| nodes.get_mut(&k)) {
                node.remove(record);
            }
        }
        for record in added {
            let name = LowerName::new(&record.name);
            let Some(key) = key(&name).filter(|_| self.lower_origin.zone_of(&name)) else {
                return Err(out_of_zone(record, &self.origin));
            };
            let node = nodes.entry(key).or_default();
            node.set_ttl(record.record_type(), record.ttl);
            if let Added::SecondCname(first) = node.add(&name, record.clone(), 0, true) {
                return Err(second_cname(&record.name, first));
            }
        }
        // Names left without records are gone, unless still above others.
        nodes.retain(|_, node| !node.rrsets.is_empty());
        let apex = key(&self.lower_origin).expect("the apex is fully qualified");
        let soa = nodes[&apex]
            .get(RecordType::SOA)
            .and_then(|rrset| rrset.records(&self.lower_origin).next())
            .expect("one SOA at the apex");
        assemble(&self.file, soa, nodes).map_err(|e| e.reason)
    }

    /// [`Zone::with_changes`] the long way: every record listed, the
    /// changes applied to the list, and the zone built from it.
    fn rebuilt_with(&self, deleted: &[Record], added: &[Record]) -> Result<Zone, String> {
        let mut records: Vec<(Record, usize)> = self
            .nodes
            .iter()
            .flat_map(|(key, node)| {
                let name = name_of(key);
                node.rrsets
                    .iter()
                    .flat_map(move |rrset| rrset.records(&name).map(|r| (r, rrset.line as usize)))
            })
            .filter(|(r, _)| !deleted.contains(r))
            .collect();
        for add in added {
            for (record, _) in records.iter_mut() {
                if record.record_type() == add.record_type()
                    && LowerName::new(&record.name) == LowerName::new(&add.name)
                {
                    record.ttl = add.ttl;
                }
            }
            records.push((add.clone(), 0));
        }
        build(records, &self.file).map_err(|e| e.reason)
    }

    /// The SOA's serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// Read the records of a master file without the checks that make it a
    /// zone: for files such as root hints, which have no SOA.
    pub fn load_records(path: impl AsRef<Path>) -> Result<Vec<Record>, ZoneError> {
        let path = path.as_ref();
        let text = read_file(path)?;
        let mut records = Vec::new();
        read_records(&text, path, |record, _| records.push(record))?;
        Ok(records)
    }

    /// Parse and check zone-file text; `file` names it in errors. Each
    /// record goes into the zone as it is read, so the text, a list of every
    /// record and the zone are never all held at once.
    pub fn parse(text: &str, file: impl AsRef<Path>) -> Result<Zone, ZoneError> {
        let file = file.as_ref();
        let mut builder = Builder::new(file);
        read_records(text, file, |record, line| builder.add(record, line))?;
        builder.finish()
    }

    /// A zone from records that came some other way than a file (a zone
    /// transfer), checked as a loaded zone is; `file` names where it
    /// belongs.
    pub fn from_records(records: Vec<Record>, file: impl AsRef<Path>) -> Result<Zone, ZoneError> {
        build(records.into_iter().map(|r| (r, 0)).collect(), file.as_ref())
    }

    /// One record written as in a zone file (`www 300 IN A 192.0.2.1`),
    /// relative names taken below this zone's apex.
    pub fn parse_record(&self, text: &str) -> Result<Record, String> {
        let entry = format!("$ORIGIN {}\n{text}\n", self.origin);
        let mut records = Vec::new();
        read_records(&entry, &self.file, |record, _| records.push(record)).map_err(|e| e.reason)?;
        match records.len() {
            1 => Ok(records.remove(0)),
            _ => Err(format!("`{text}` is not one record")),
        }
    }

    /// The apex: the owner of the SOA.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    pub fn lower_origin(&self) -> &LowerName {
        &self.lower_origin
    }

    /// The file the zone came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The first name server the apex NS records name.
    pub fn first_name_server(&self) -> Option<Name> {
        self.rrset(&self.lower_origin, RecordType::NS)?
            .records
            .into_iter()
            .find_map(|r| match r.data {
                RData::NS(ns) => Some(ns.0),
                _ => None,
            })
    }

    /// The SOA to put in the authority section of NXDOMAIN and NODATA answers.
    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    /// The node kept for `name`.
    fn kept(&self, name: &LowerName) -> Option<&KeptNode> {
        self.nodes.get(&*key(name)?)
    }

    /// The records at `name`, if the name exists.
    pub fn node(&self, name: &LowerName) -> Option<Node> {
        Some(self.kept(name)?.to_node(name))
    }

    /// Every record at `name`, of every type.
    pub fn records_at(&self, name: &LowerName) -> Vec<Record> {
        self.node(name)
            .map(|node| node.rrsets.into_iter().flat_map(|r| r.records).collect())
            .unwrap_or_default()
    }

    /// Whether `name` exists in the zone (with records, or as an empty
    /// non-terminal).
    pub fn exists(&self, name: &LowerName) -> bool {
        self.kept(name).is_some()
    }

    /// Whether `name` has records of type `rtype`.
    pub fn has(&self, name: &LowerName, rtype: RecordType) -> bool {
        self.kept(name).is_some_and(|n| n.get(rtype).is_some())
    }

    pub fn rrset(&self, name: &LowerName, rtype: RecordType) -> Option<Rrset> {
        Some(self.kept(name)?.get(rtype)?.to_rrset(name))
    }

    /// Whether `name` is at or below the apex.
    pub fn contains(&self, name: &LowerName) -> bool {
        self.lower_origin.zone_of(name)
    }

    /// Every name of the zone (empty non-terminals too), in no particular
    /// order.
    pub fn nodes(&self) -> impl Iterator<Item = (LowerName, Node)> {
        self.nodes.iter().map(|(key, node)| {
            let name = name_of(key);
            let node = node.to_node(&name);
            (name, node)
        })
    }

    /// Add a record the zone file did not have (the DNSKEY, DS and NSEC
    /// records of a zone signed as it is loaded), to the RRset of its name
    /// and type, which takes its TTL.
    pub fn insert(&mut self, record: Record) {
        let name = LowerName::new(&record.name);
        let node = self
            .nodes
            .entry(key(&name).expect("a zone's names are fully qualified"))
            .or_default();
        node.add(&name, record, 0, false);
    }

    /// Every record in the zone, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.nodes.iter().flat_map(|(key, node)| {
            let name = name_of(key);
            node.rrsets
                .iter()
                .flat_map(move |rrset| rrset.records(&name))
        })
    }

    /// Every name with records, with the types it holds; used by docs and tests
    /// that want to ask for everything a zone has.
    pub fn names_and_types(&self) -> Vec<(Name, RecordType)> {
        let mut out: Vec<(Name, RecordType)> = self
            .nodes
            .iter()
            .flat_map(|(key, n)| {
                let name = name_of(key);
                n.rrsets.iter().map(move |r| (r.owner(&name), r.rtype))
            })
            .collect();
        out.sort();
        out
    }
}

/// The largest zone file read: a million records fit in a fraction of it.
pub const MAX_ZONE_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// A zone file's text. Anything but a regular file (a FIFO, a device such
/// as `/dev/zero` behind a symlink) is refused before it is opened, since
/// reading it could hang or never end; so is a file over the size cap.
fn read_file(path: &Path) -> Result<String, ZoneError> {
    let problem = |reason: String| ZoneError {
        file: path.to_path_buf(),
        line: None,
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|e| problem(format!("cannot read: {e}")))?;
    if !metadata.is_file() {
        return Err(problem(
            "not a regular file (a directory, FIFO or device): give the path of a zone file".into(),
        ));
    }
    if metadata.len() > MAX_ZONE_FILE_BYTES {
        return Err(problem(format!(
            "{} bytes is more than the {} MiB a zone file may have",
            metadata.len(),
            MAX_ZONE_FILE_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| problem(format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        ZoneError {
            file: path.to_path_buf(),
            line: Some(line),
            reason: "not UTF-8 text (use \\DDD escapes for other bytes)".into(),
        }
    })
}

/// One logical entry of a zone file: a line, or lines joined by parentheses.
struct Entry<'t> {
    line: usize,
    text: &'t str,
}

/// The entries of zone-file text, one at a time, honouring quotes, escapes,
/// comments and parentheses, and skipping entries that hold only blanks and
/// comments. An error (a stray `)`, or a quote or `(` never closed) ends it.
struct Entries<'t> {
    text: &'t str,
    chars: std::str::CharIndices<'t>,
    start: usize,
    start_line: usize,
    line: usize,
    depth: u32,
    in_quote: bool,
    in_comment: bool,
    escaped: bool,
    has_content: bool,
    done: bool,
}

impl<'t> Entries<'t> {
    fn new(text: &'t str) -> Entries<'t> {
        Entries {
            text,
            chars: text.char_indices(),
            start: 0,
            start_line: 1,
            line: 1,
            depth: 0,
            in_quote: false,
            in_comment: false,
            escaped: false,
            has_content: false,
            done: false,
        }
    }
}

impl<'t> Iterator for Entries<'t> {
    type Item = Result<Entry<'t>, (usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        for (i, c) in self.chars.by_ref() {
            if c == '\n' {
                self.in_comment = false;
                self.escaped = false;
                let mut entry = None;
                if self.depth == 0 && !self.in_quote {
                    if self.has_content {
                        entry = Some(Entry {
                            line: self.start_line,
                            text: &self.text[self.start..i],
                        });
                    }
                    self.start = i + 1;
                    self.start_line = self.line + 1;
                    self.has_content = false;
                }
                self.line += 1;
                if let Some(entry) = entry {
                    return Some(Ok(entry));
                }
                continue;
            }
            if self.in_comment {
                continue;
            }
            if self.escaped {
                self.escaped = false;
                continue;
            }
            match c {
                '\\' => self.escaped = true,
                '"' => self.in_quote = !self.in_quote,
                ';' if !self.in_quote => self.in_comment = true,
                '(' if !self.in_quote => self.depth += 1,
                ')' if !self.in_quote => {
                    if self.depth == 0 {
                        self.done = true;
                        return Some(Err((self.line, "')' without a matching '('".into())));
                    }
                    self.depth -= 1;
                }
                _ => {}
            }
            if !c.is_whitespace() && !self.in_comment {
                self.has_content = true;
            }
        }
        self.done = true;
        if self.in_quote {
            return Some(Err((
                self.start_line,
                "a quoted string is not closed".into(),
            )));
        }
        if self.depth > 0 {
            return Some(Err((self.start_line, "'(' is never closed".into())));
        }
        self.has_content.then(|| {
            Ok(Entry {
                line: self.start_line,
                text: &self.text[self.start..],
            })
        })
    }
}

/// The first whitespace-separated word of an entry.
fn first_word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or("")
}

/// Read every record, handing each to `each` with the line it came from.
/// The file's layout is checked first (quotes and parentheses closed), so
/// that such a mistake is reported wherever it is, before any record's.
fn read_records(
    text: &str,
    file: &Path,
    mut each: impl FnMut(Record, usize),
) -> Result<(), ZoneError> {
    let err = |line: usize, reason: String| ZoneError {
        file: file.to_path_buf(),
        line: Some(line),
        reason,
    };
    if let Some(Err((line, reason))) = Entries::new(text).find(Result::is_err) {
        return Err(err(line, reason));
    }
    let entries = Entries::new(text).map(|entry| entry.expect("checked above"));

    let mut origin: Option<Name> = None;
    let mut default_ttl: Option<String> = None;
    let mut last_ttl: Option<u32> = None;
    let mut last_owner: Option<Name> = None;
    let mut origin_line = String::new();

    for entry in entries {
        let word = first_word(entry.text);
        let owner_is_blank = entry.text.starts_with([' ', '\t']);
        if !owner_is_blank && word.starts_with('$') {
            let mut words = entry.text.split_whitespace();
            let directive = words.next().unwrap_or("").to_ascii_uppercase();
            let arg = words.next().filter(|w| !w.starts_with(';'));
            match (directive.as_str(), arg) {
                ("$ORIGIN", Some(name)) => {
                    let name = Name::parse(name, origin.as_ref())
                        .map_err(|e| err(entry.line, format!("bad $ORIGIN {name}: {e}")))?;
                    if !name.is_fqdn() {
                        return Err(err(entry.line, format!("$ORIGIN {name} must end in a dot")));
                    }
                    // Written once here, not for every record that follows.
                    origin_line = format!("$ORIGIN {name}\n");
                    origin = Some(name);
                }
                ("$TTL", Some(ttl)) => {
                    check_ttl(ttl).map_err(|reason| err(entry.line, reason))?;
                    default_ttl = Some(ttl.to_string());
                }
                ("$INCLUDE", _) => {
                    return Err(err(
                        entry.line,
                        "$INCLUDE is not supported: keep each zone in one file".into(),
                    ));
                }
                (d, None) if d == "$ORIGIN" || d == "$TTL" => {
                    return Err(err(entry.line, format!("{d} needs a value")));
                }
                (d, _) => return Err(err(entry.line, format!("unknown directive {d}"))),
            }
            continue;
        }

        // Give hickory's parser one record with the context it needs: the
        // origin, the TTL in force, and the owner a blank owner repeats.
        let mut single = String::with_capacity(origin_line.len() + entry.text.len() + 64);
        single.push_str(&origin_line);
        match (&default_ttl, last_ttl) {
            (Some(ttl), _) => writeln!(single, "$TTL {ttl}"),
            (None, Some(ttl)) => writeln!(single, "$TTL {ttl}"),
            (None, None) => Ok(()),
        }
        .expect("writing to a String");
        if owner_is_blank {
            let Some(owner) = &last_owner else {
                return Err(err(
                    entry.line,
                    "record has no owner name and no earlier record to take it from".into(),
                ));
            };
            write!(single, "{owner}").expect("writing to a String");
        }
        single.push_str(entry.text);
        single.push('\n');

        if origin.is_none() && !owner_is_blank && !word.ends_with('.') {
            return Err(err(
                entry.line,
                format!("relative name {word} but no $ORIGIN is set"),
            ));
        }
        let head = Head::read(entry.text, owner_is_blank);
        if let Some(ttl) = head.ttl {
            check_ttl(ttl).map_err(|reason| err(entry.line, reason))?;
        }
        if head.is_ours() {
            let fallback_ttl = default_ttl
                .as_deref()
                .and_then(parse_ttl)
                .or(last_ttl)
                .unwrap_or(0);
            let record = head
                .record(origin.as_ref(), last_owner.as_ref(), fallback_ttl)
                .map_err(|reason| err(entry.line, reason))?;
            last_ttl = Some(record.ttl);
            last_owner = Some(record.name.clone());
            each(record, entry.line);
            continue;
        }
        let parsed = Parser::new(
            single.as_str(),
            None,
            Some(origin.clone().unwrap_or_else(Name::root)),
        )
        .parse()
        .map_err(|e| err(entry.line, describe_parse_error(&e.to_string(), entry.text)))?;
        for (_, rrset) in parsed.1 {
            for record in rrset.records_without_rrsigs() {
                if record.dns_class != DNSClass::IN {
                    return Err(err(
                        entry.line,
                        format!("class {} is not served; only IN", record.dns_class),
                    ));
                }
                if record.ttl > MAX_TTL {
                    return Err(err(
                        entry.line,
                        format!("TTL {} is larger than {MAX_TTL} (RFC 2181 §8)", record.ttl),
                    ));
                }
                last_ttl = Some(record.ttl);
                last_owner = Some(record.name.clone());
                each(record.clone(), entry.line);
            }
        }
    }
    Ok(())
}

/// The fields of an entry before its data: owner (unless blank), TTL and
/// class in either order, and the type (RFC 1035 §5.1).
/// Words borrowed from the entry: every entry is read this way, so nothing
/// is copied.
struct Head<'t> {
    owner: Option<&'t str>,
    ttl: Option<&'t str>,
    class: Option<&'t str>,
    rtype: String,
    rdata: Vec<&'t str>,
}

impl<'t> Head<'t> {
    fn read(text: &'t str, owner_is_blank: bool) -> Head<'t> {
        // Comments and parentheses out; only the leading words matter here,
        // and the data of the types read here is never quoted.
        let mut words = text
            .lines()
            .map(|line| line.split(';').next().unwrap_or(""))
            .flat_map(|line| line.split_whitespace())
            .flat_map(|w| w.split(['(', ')']))
            .filter(|w| !w.is_empty());
        let owner = if owner_is_blank { None } else { words.next() };
        let (mut ttl, mut class) = (None, None);
        let mut rtype = String::new();
        for word in words.by_ref().take(3) {
            let upper = word.to_ascii_uppercase();
            if class.is_none() && matches!(upper.as_str(), "IN" | "CH" | "CS" | "HS" | "ANY") {
                class = Some(word);
            } else if ttl.is_none() && looks_like_ttl(word) {
                ttl = Some(word);
            } else {
                rtype = upper;
                break;
            }
        }
        Head {
            owner,
            ttl,
            class,
            rtype,
            rdata: words.collect(),
        }
    }

    /// Whether this module reads the record rather than hickory: a DNAME,
    /// or data in RFC 3597's generic form.
    fn is_ours(&self) -> bool {
        self.rtype == "DNAME"
            || crate::dnssec::text::is_dnssec_type(&self.rtype)
            || generic_type(&self.rtype).is_some()
            || self.rdata.first().is_some_and(|w| *w == "\\#")
    }

    fn record(
        &self,
        origin: Option<&Name>,
        last_owner: Option<&Name>,
        ttl: u32,
    ) -> Result<Record, String> {
        let owner = match self.owner {
            None => last_owner
                .cloned()
                .ok_or("record has no owner name and no earlier record to take it from")?,
            Some("@") => origin.cloned().ok_or("@ but no $ORIGIN is set")?,
            Some(text) => {
                Name::parse(text, origin).map_err(|e| format!("bad owner name {text}: {e}"))?
            }
        };
        if let Some(class) = self.class
            && !class.eq_ignore_ascii_case("IN")
        {
            return Err(format!("class {class} is not served; only IN"));
        }
        let ttl = match self.ttl {
            Some(text) => parse_ttl(text).ok_or_else(|| format!("bad TTL {text}"))?,
            None => ttl,
        };
        if self.rdata.first().is_some_and(|w| *w == "\\#") {
            let rtype = generic_type(&self.rtype)
                .or_else(|| self.rtype.parse().ok())
                .ok_or_else(|| format!("unknown record type {}", self.rtype))?;
            let bytes = generic_data(&self.rdata[1..])?;
            return Ok(Record::from_rdata(
                owner,
                ttl,
                RData::Unknown {
                    code: rtype,
                    // hickory's NULL::with refuses empty data; `\# 0` is legal.
                    rdata: if bytes.is_empty() {
                        NULL::new()
                    } else {
                        NULL::with(bytes)
                    },
                },
            ));
        }
        if crate::dnssec::text::is_dnssec_type(&self.rtype) {
            let data = crate::dnssec::text::rdata(&self.rtype, &self.rdata, origin)?;
            return Ok(Record::from_rdata(owner, ttl, data));
        }
        if self.rtype == "DNAME" {
            let [target] = self.rdata.as_slice() else {
                return Err("a DNAME has one name as its data: DNAME target.example.".into());
            };
            let target = Name::parse(target, origin)
                .map_err(|e| format!("bad DNAME target {target}: {e}"))?;
            return dname::record(owner, ttl, &target).ok_or_else(|| "a bad DNAME target".into());
        }
        Err(format!(
            "{} needs its data in the generic form of RFC 3597: \\# LENGTH HEX",
            self.rtype
        ))
    }
}

/// `TYPE65534` → type 65534 (RFC 3597 §5).
fn generic_type(word: &str) -> Option<RecordType> {
    let number = word.strip_prefix("TYPE")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.parse::<u16>().ok().map(RecordType::from))
        .flatten()
}

/// `2 0102` → the two bytes 01 02 (RFC 3597 §5: the length, then hex in
/// any number of words).
fn generic_data(words: &[&str]) -> Result<Vec<u8>, String> {
    let (length, hex) = words
        .split_first()
        .ok_or("\\# needs a length and the data in hex")?;
    let length: usize = length
        .parse()
        .map_err(|_| format!("bad length {length} after \\#"))?;
    let hex: String = hex.concat();
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("bad hex data {hex} after \\# {length}"));
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex"))
        .collect();
    if bytes.len() != length {
        return Err(format!(
            "\\# {length} says {length} bytes, but the data has {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Whether a word stands where a TTL may: digits, perhaps signed or with
/// units (`1h30m`).
fn looks_like_ttl(word: &str) -> bool {
    let digits = word.strip_prefix('-').unwrap_or(word);
    digits.starts_with(|c: char| c.is_ascii_digit())
}

/// A TTL in seconds: digits, or BIND's units (`1w2d3h4m5s`).
fn parse_ttl(text: &str) -> Option<u32> {
    if let Ok(seconds) = text.parse::<u32>() {
        return Some(seconds);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    if !number.is_empty() {
        total += number.parse::<u64>().ok()?;
    }
    u32::try_from(total).ok()
}

/// A TTL written as plain digits must be 0 to 2^31-1 (RFC 2181 §8).
fn check_ttl(text: &str) -> Result<(), String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let range = format!("a TTL is 0 to {MAX_TTL} seconds (RFC 2181 §8)");
    if text.starts_with('-') {
        return Err(format!("TTL {text} is negative: {range}"));
    }
    match text.parse::<u64>() {
        Ok(ttl) if ttl <= u64::from(MAX_TTL) => Ok(()),
        _ => Err(format!("TTL {text} is out of range: {range}")),
    }
}

/// hickory's parse errors name tokens; add the entry so the line is obvious.
fn describe_parse_error(error: &str, entry: &str) -> String {
    let shown: String = entry.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown = if shown.chars().count() > 80 {
        format!("{}…", shown.chars().take(80).collect::<String>())
    } else {
        shown
    };
    format!("cannot parse `{shown}`: {error}")
}

/// Assemble checked records into a zone.
fn build(records: Vec<(Record, usize)>, file: &Path) -> Result<Zone, ZoneError> {
    let mut builder = Builder::new(file);
    for (record, line) in records {
        builder.add(record, line);
    }
    builder.finish()
}

/// A zone being built from records given one at a time, in file order.
/// Its mistakes are those a whole list of records would show, in the same
/// order: no SOA, then a second SOA, then the first record (in file order)
/// outside the apex or a second CNAME, then [`check`]'s.
struct Builder<'f> {
    file: &'f Path,
    nodes: HashMap<Key, KeptNode>,
    /// The first SOA and its line; its owner is the apex.
    soa: Option<(Record, usize)>,
    /// The SOA's owner in lower case (the root until there is one).
    apex: LowerName,
    second_soa: Option<usize>,
    /// Records before the SOA (a file may put them there), placed once the
    /// apex is known.
    before_soa: Vec<(Record, usize)>,
    /// The first record that cannot be placed; later ones are not placed.
    mistake: Option<ZoneError>,
}

impl<'f> Builder<'f> {
    fn new(file: &'f Path) -> Builder<'f> {
        Builder {
            file,
            nodes: HashMap::new(),
            soa: None,
            apex: LowerName::from(&Name::root()),
            second_soa: None,
            before_soa: Vec::new(),
            mistake: None,
        }
    }

    fn add(&mut self, record: Record, line: usize) {
        if record.record_type() == RecordType::SOA {
            if self.soa.is_none() {
                self.apex = LowerName::new(&record.name);
                self.soa = Some((record.clone(), line));
                for (early, early_line) in std::mem::take(&mut self.before_soa) {
                    self.place(early, early_line);
                }
            } else if self.second_soa.is_none() {
                self.second_soa = Some(line);
            }
        }
        if self.soa.is_none() {
            self.before_soa.push((record, line));
        } else {
            self.place(record, line);
        }
    }

    /// Put a record at its name, unless it is outside the apex or a second
    /// CNAME.
    fn place(&mut self, record: Record, line: usize) {
        if self.mistake.is_some() {
            return;
        }
        let (soa, _) = self.soa.as_ref().expect("placed after the SOA");
        let name = LowerName::new(&record.name);
        let key = key(&name).filter(|_| self.apex.zone_of(&name));
        let Some(key) = key else {
            self.mistake = Some(ZoneError {
                file: self.file.to_path_buf(),
                line: Some(line),
                reason: out_of_zone(&record, &soa.name),
            });
            return;
        };
        let owner = record.name.clone();
        let node = self.nodes.entry(key).or_default();
        if let Added::SecondCname(first) = node.add(&name, record, line, true) {
            self.mistake = Some(ZoneError {
                file: self.file.to_path_buf(),
                line: Some(line),
                reason: second_cname(&owner, first),
            });
        }
    }

    fn finish(self) -> Result<Zone, ZoneError> {
        let err = |line: Option<usize>, reason: String| ZoneError {
            file: self.file.to_path_buf(),
            line,
            reason,
        };
        let Some((soa, soa_line)) = self.soa else {
            return Err(err(
                None,
                "no SOA record: a zone file starts with the SOA of its apex".into(),
            ));
        };
        if let Some(line) = self.second_soa {
            return Err(err(
                Some(line),
                format!("a second SOA record (the first is on line {soa_line})"),
            ));
        }
        if let Some(mistake) = self.mistake {
            return Err(mistake);
        }
        assemble(self.file, soa, self.nodes)
    }
}

/// A record outside the apex.
fn out_of_zone(record: &Record, origin: &Name) -> String {
    format!(
        "out-of-zone data: {} is not in the zone {origin} (the SOA's owner)",
        record.name
    )
}

/// A second CNAME at `owner`; the first is on line `first`.
fn second_cname(owner: &Name, first: usize) -> String {
    format!(
        "{owner} has a second CNAME (the first is on line {first}); a name is an alias of one name only"
    )
}

/// The zone of `soa`'s apex from its names, every record in place: the
/// empty non-terminals added, the negative answers' SOA worked out, and
/// the whole zone checked.
fn assemble(
    file: &Path,
    soa: Record,
    mut nodes: HashMap<Key, KeptNode>,
) -> Result<Zone, ZoneError> {
    let origin = soa.name.clone();
    let lower_origin = LowerName::new(&origin);

    // Empty non-terminals: every name between the apex and an owner exists.
    let mut missing: Vec<Key> = Vec::new();
    for owner in nodes.keys() {
        let mut ancestor = name_of(owner).base_name();
        while ancestor.num_labels() > lower_origin.num_labels() {
            let key = key(&ancestor).expect("an owner's ancestors are fully qualified");
            if nodes.contains_key(&key) {
                break;
            }
            missing.push(key);
            ancestor = ancestor.base_name();
        }
    }
    for key in missing {
        nodes.entry(key).or_default();
    }

    let zone_soa = soa.clone();
    let negative_ttl = match &soa.data {
        RData::SOA(s) => soa.ttl.min(s.minimum),
        _ => soa.ttl,
    };
    let mut negative_soa = soa;
    negative_soa.ttl = negative_ttl;

    let zone = Zone {
        origin,
        lower_origin,
        file: file.to_path_buf(),
        nodes,
        soa: zone_soa,
        negative_soa,
    };
    check(&zone)?;
    Ok(zone)
}

/// The checks that need the whole zone: apex NS, CNAME exclusivity,
/// delegations and their glue, and nothing else below a cut.
fn check(zone: &Zone) -> Result<(), ZoneError> {
    let err = |line: usize, reason: String| ZoneError {
        file: zone.file.clone(),
        line: Some(line),
        reason,
    };
    let apex = zone.lower_origin();
    let apex_node = zone.kept(apex).expect("the SOA's node exists");
    if apex_node.get(RecordType::NS).is_none() {
        let line = apex_node
            .get(RecordType::SOA)
            .map_or(1, |r| r.line as usize);
        return Err(err(
            line,
            format!("the apex {} has no NS records", zone.origin()),
        ));
    }

    // The first problem in the file wins: that of the name whose records
    // start earliest. Each name is looked at in turn, the earliest problem
    // kept, rather than every name listed and sorted first.
    let mut first: Option<(u32, ZoneError)> = None;
    for (key, node) in &zone.nodes {
        let start = node.rrsets.iter().map(|r| r.line).min().unwrap_or(0);
        if first.as_ref().is_some_and(|(line, _)| *line <= start) {
            continue;
        }
        if let Err(problem) = check_name(zone, &name_of(key), node) {
            first = Some((start, problem));
        }
    }
    match first {
        Some((_, problem)) => Err(problem),
        None => Ok(()),
    }
}

/// The checks of one name: CNAME exclusivity, what a delegation allows at
/// and below it, and glue for its name servers.
fn check_name(zone: &Zone, name: &LowerName, node: &KeptNode) -> Result<(), ZoneError> {
    let err = |line: usize, reason: String| ZoneError {
        file: zone.file.clone(),
        line: Some(line),
        reason,
    };
    let apex = zone.lower_origin();
    // DNSSEC's own records may stand beside a CNAME (RFC 4035 §2.5).
    if let Some(cname) = node.get(RecordType::CNAME)
        && let Some(other) = node.rrsets.iter().find(|r| {
            !matches!(
                r.rtype,
                RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC
            )
        })
    {
        let line = cname.line.max(other.line) as usize;
        return Err(err(
            line,
            format!(
                "{name} has a CNAME beside other data ({}); an alias can have no other records (RFC 1034 §3.6.2)",
                other.rtype
            ),
        ));
    }

    // At a delegation point only NS and DS belong to this zone; below
    // one, only the glue addresses of the delegated zone's servers.
    if let Some(cut) = zone_cut_above(zone, name) {
        let allowed: &[RecordType] = if cut == *name {
            &[
                RecordType::NS,
                RecordType::DS,
                RecordType::RRSIG,
                RecordType::NSEC,
            ]
        } else {
            &[RecordType::A, RecordType::AAAA]
        };
        if let Some(bad) = node.rrsets.iter().find(|r| !allowed.contains(&r.rtype)) {
            return Err(err(
                bad.line as usize,
                format!(
                    "{name} {} is occluded by the delegation of {cut}: only NS and DS at the cut, and glue addresses below it, belong to this zone",
                    bad.rtype
                ),
            ));
        }
    }

    if name != apex
        && let Some(ns) = node.get(RecordType::NS)
    {
        for data in &ns.data {
            let Data::Other(data) = data else { continue };
            let RData::NS(target) = &**data else {
                continue;
            };
            let target = LowerName::new(&target.0);
            let has_address =
                zone.has(&target, RecordType::A) || zone.has(&target, RecordType::AAAA);
            if name.zone_of(&target) && !has_address {
                return Err(err(
                    ns.line as usize,
                    format!(
                        "the delegation of {name} to {target} needs glue: {target} is inside {name}, so add an A or AAAA record for it"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The highest delegation point (a name below the apex holding NS) at or above
/// `name`, if any.
pub fn zone_cut_above(zone: &Zone, name: &LowerName) -> Option<LowerName> {
    let apex_labels = zone.lower_origin().num_labels();
    let full: Name = name.into();
    for labels in (apex_labels + 1)..=name.num_labels() {
        let ancestor = LowerName::new(&full.trim_to(labels as usize));
        if zone.has(&ancestor, RecordType::NS) {
            return Some(ancestor);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
        @ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 127.0.0.9\n\
        www IN A 192.0.2.1\nwww IN A 192.0.2.2\nalias IN CNAME www\n\
        a.b.deep IN TXT \"deep\"\nb.deep IN A 192.0.2.3\nlone IN MX 10 ns1\n";

    /// Everything a zone answers from: its records (spelling and TTL
    /// included), which names exist, and its SOA.
    fn contents(zone: &Zone) -> (Vec<String>, Vec<String>, String) {
        let mut records: Vec<String> = zone
            .records()
            .map(|r| format!("{} {} {}", r.name.to_ascii(), r.ttl, r))
            .collect();
        records.sort();
        let mut names: Vec<String> = zone.nodes().map(|(name, _)| name.to_string()).collect();
        names.sort();
        (
            records,
            names,
            format!("{} {}", zone.soa(), zone.negative_soa().ttl),
        )
    }

    /// Changes made to the kept names give the zone (or the refusal) that
    /// rebuilding from every record gives.
    #[test]
    fn changes_in_place_match_a_rebuild() {
        let zone = Zone::parse(ZONE, "changes.zone").unwrap();
        let record = |text: &str| zone.parse_record(text).unwrap();
        let soa = zone.soa().clone();
        let mut bumped = record("@ 300 IN SOA ns1 host 2 2 3 4 5");
        bumped.ttl = soa.ttl;
        let cases: Vec<(Vec<Record>, Vec<Record>)> = vec![
            (vec![], vec![record("x.y.new 60 IN A 192.0.2.9")]),
            (vec![], vec![record("www 60 IN A 192.0.2.7")]),
            (vec![], vec![record("www 900 IN A 192.0.2.1")]),
            (vec![record("www 300 IN A 192.0.2.1")], vec![]),
            (vec![record("b.deep 300 IN A 192.0.2.3")], vec![]),
            (vec![record("lone 300 IN MX 10 ns1")], vec![]),
            (vec![record("a.b.deep 300 IN TXT \"deep\"")], vec![]),
            (vec![], vec![record("www 300 IN CNAME alias")]),
            (vec![], vec![record("alias 300 IN CNAME lone")]),
            (vec![], vec![record("alias 300 IN CNAME www")]),
            (vec![], vec![record("sub 300 IN NS ns.sub")]),
            (
                vec![],
                vec![
                    record("sub 300 IN NS ns.sub"),
                    record("ns.sub 300 IN A 192.0.2.53"),
                ],
            ),
            (vec![soa.clone()], vec![bumped.clone()]),
            (vec![soa.clone()], vec![]),
            (vec![], vec![bumped.clone()]),
            (
                vec![soa.clone(), record("www 300 IN A 192.0.2.2")],
                vec![bumped, record("new 300 IN AAAA 2001:db8::1")],
            ),
        ];
        let mut outside = record("www 300 IN A 192.0.2.1");
        outside.name = Name::from_ascii("www.example.org.").unwrap();
        let cases = cases.into_iter().chain([(vec![], vec![outside])]);
        for (deleted, added) in cases {
            let in_place = zone.with_changes(&deleted, &added);
            let rebuilt = zone.rebuilt_with(&deleted, &added);
            match (&in_place, &rebuilt) {
                (Ok(a), Ok(b)) => assert_eq!(contents(a), contents(b), "{deleted:?} {added:?}"),
                (Err(a), Err(b)) => assert_eq!(a, b),
                _ => panic!(
                    "{deleted:?} {added:?}: {:?} against {:?}",
                    in_place.map(|z| contents(&z)),
                    rebuilt.map(|z| contents(&z))
                ),
            }
        }
    }
}
