//! The resolver's memory: three kinds of entry, each with its own TTL.
//!
//! ```text
//!  answer      (www.example.com., A)  → 127.0.0.44        for 300 s
//!  delegation  example.com.           → ns-1…ns-4 + glue  for 172800 s (two days)
//!  negative    (nope.example.com., *) → NXDOMAIN + SOA    for 900 s (RFC 2308)
//!  failure     (www.broken.test., A)  → SERVFAIL, why     for 1 s, doubling (RFC 9520)
//! ```
//!
//! A failure entry remembers that a resolution failed, so a storm of
//! questions for a broken zone does not become a storm upstream: for 1 s
//! after the first failure, doubling for each failure in a row up to five
//! minutes.
//!
//! When an answer expires the delegation usually has not, so the next
//! resolution starts at the example.com name servers instead of the root:
//! that is step 4 of the story ("the resolver will skip steps 3 and 4").
//!
//! Answers and denials are kept no longer than `--max-ttl` (a day by
//! default, as Unbound) and no shorter than `--min-ttl`; a record with TTL 0
//! is answered but not kept. A DNAME is kept like any RRset and renames
//! every name below it from then on (RFC 6672). The child's own NS set
//! replaces the parent's referral when a server of the zone sends it
//! (RFC 2181 §5.4.1), but never outlives it.
//!
//! Time comes from a [`Clock`] so tests and `demo` can move it forward.
//! TTLs count down in everything served from here.
//!
//! The cache is bounded, in two budgets, so that a flood of questions for
//! names that do not exist (each a one-shot denial) cannot push out the
//! answers and delegations in use:
//!
//! ```text
//!  --cache-size N:  answers + delegations  ¾ N  │  denials + failures  ¼ N
//!                   evicted among themselves    │  evicted among themselves
//! ```
//!
//! Within a budget, when it is full, expired entries go first, then those
//! closest to expiry; but an entry used since it was stored (or since it
//! was last spared) is spared once, as in second-chance (CLOCK) eviction:
//! a popular answer outlives a flood of one-shot names that expire later.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use serde::Serialize;

use super::failure::Failure;
use crate::clock::Clock;
use crate::trace::{CacheKind, RecordView};

/// No delegation is kept longer than a week, whatever its TTL (as BIND's
/// max-cache-ttl); negative answers no longer than three hours (RFC 2308 §5).
pub const MAX_TTL: u32 = 7 * 24 * 3600;
pub const MAX_NEGATIVE_TTL: u32 = 3 * 3600;
/// The longest an answer is kept by default (`--max-ttl`): one day, as
/// Unbound's cache-max-ttl.
pub const DEFAULT_MAX_ANSWER_TTL: u32 = 86_400;
/// How long a failed resolution is remembered the first time, and at most
/// (RFC 9520 §3.2: at least one second, at most five minutes).
pub const FIRST_FAILURE_HOLD: u32 = 1;
pub const MAX_FAILURE_HOLD: u32 = 300;

/// Where a zone's name servers are: the NS set and any addresses for them.
#[derive(Debug, Clone)]
pub struct Delegation {
    pub zone: Name,
    /// The NS records, in the order received.
    pub ns: Vec<Record>,
    /// A and AAAA records for those names (glue), when they came along.
    pub glue: Vec<Record>,
    /// The zones whose servers were asked to learn this delegation: what a
    /// cache hit on it lets the resolver skip.
    pub learned_from: Vec<String>,
}

impl Delegation {
    /// The names of the zone's servers, in the order received.
    pub fn server_names(&self) -> Vec<Name> {
        self.ns
            .iter()
            .filter_map(|r| match &r.data {
                hickory_proto::rr::RData::NS(ns) => Some(ns.0.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A cached NXDOMAIN (for every type at the name) or NODATA (for one type).
#[derive(Debug, Clone)]
pub struct Negative {
    pub nxdomain: bool,
    pub soa: Option<Record>,
    /// The zone's NS set, when its server sent it beside the SOA: passed
    /// on with the denial, as it came.
    pub ns: Vec<Record>,
    /// With DNSSEC: the NSEC (or NSEC3) records that prove the denial,
    /// and the RRSIGs of those and of the SOA, each record marked with
    /// what validation found.
    pub dnssec: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Answer(LowerName, RecordType),
    Delegation(LowerName),
    /// `None`: NXDOMAIN, covering every type.
    Negative(LowerName, Option<RecordType>),
    Failure(LowerName, RecordType),
}

#[derive(Debug, Clone)]
enum Value {
    Answer(Vec<Record>),
    Delegation(Delegation),
    Negative(Negative),
    /// Why the resolution failed.
    Failure(Failure),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    ttl: u32,
    expires: Duration,
    seq: u64,
    /// Read since it was stored or last spared: spared once when its
    /// budget is full (second chance).
    used: bool,
}

/// One share of the cache's room, and its entries in order of expiry.
#[derive(Default)]
struct Budget {
    /// (expires, seq) → key, for eviction.
    by_expiry: BTreeMap<(Duration, u64), Key>,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Answers and delegations.
    data: Budget,
    /// Negative answers and remembered failures.
    denials: Budget,
    next_seq: u64,
}

/// The budget `key` is kept in: answers and delegations, or denials and
/// failures.
fn budget_of<'a>(data: &'a mut Budget, denials: &'a mut Budget, key: &Key) -> &'a mut Budget {
    match key {
        Key::Answer(..) | Key::Delegation(..) => data,
        Key::Negative(..) | Key::Failure(..) => denials,
    }
}

impl Inner {
    fn budget(&mut self, key: &Key) -> &mut Budget {
        budget_of(&mut self.data, &mut self.denials, key)
    }

    /// Make room in `key`'s budget for one more entry: expired entries
    /// first, then the soonest to expire, sparing once any that were used.
    fn make_room(&mut self, key: &Key, now: Duration) {
        let budget = budget_of(&mut self.data, &mut self.denials, key);
        let entries = &mut self.entries;
        let mut spared = Vec::new();
        while budget.by_expiry.len() + spared.len() >= budget.capacity {
            let Some(victim) = budget.by_expiry.pop_first() else {
                // Every entry was in use: the soonest to expire goes.
                if spared.is_empty() {
                    break;
                }
                let (_, key): ((Duration, u64), Key) = spared.remove(0);
                entries.remove(&key);
                continue;
            };
            let ((expires, _), victim_key) = &victim;
            if let Some(entry) = entries.get_mut(victim_key)
                && entry.used
                && *expires > now
            {
                entry.used = false;
                spared.push(victim);
                continue;
            }
            entries.remove(victim_key);
        }
        budget.by_expiry.extend(spared);
    }
}

/// A cache hit, with TTLs already counted down to what remains.
#[derive(Debug, Clone)]
pub struct Hit<T> {
    pub value: T,
    pub remaining: u32,
}

/// One entry as the control endpoint shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub kind: CacheKind,
    pub name: String,
    #[serde(rename = "type", serialize_with = "crate::trace::serialize_opt_rtype")]
    pub rtype: Option<RecordType>,
    /// A negative entry for the whole name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nxdomain: bool,
    /// Why a remembered failure failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ttl: u32,
    pub remaining: u32,
    pub records: Vec<RecordView>,
}

pub struct Cache {
    inner: Mutex<Inner>,
    /// Bumped by every flush, so what was built from the cache before (the
    /// message cache's replies) knows it is gone.
    generation: std::sync::atomic::AtomicU64,
    clock: Clock,
    /// The shortest and longest an answer or a denial is kept
    /// (`--min-ttl`, `--max-ttl`).
    min_ttl: u32,
    max_ttl: u32,
}

/// Records with their TTLs replaced by what remains.
fn with_ttl(records: &[Record], remaining: u32) -> Vec<Record> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.ttl = remaining;
            r
        })
        .collect()
}

impl Cache {
    pub fn new(capacity: usize, clock: Clock) -> Cache {
        let capacity = capacity.max(1);
        let denials = (capacity / 4).max(1);
        let inner = Inner {
            data: Budget {
                capacity: capacity.saturating_sub(denials).max(1),
                ..Budget::default()
            },
            denials: Budget {
                capacity: denials,
                ..Budget::default()
            },
            ..Inner::default()
        };
        Cache {
            inner: Mutex::new(inner),
            generation: std::sync::atomic::AtomicU64::new(0),
            clock,
            min_ttl: 0,
            max_ttl: DEFAULT_MAX_ANSWER_TTL,
        }
    }

    /// Keep answers and denials at least `min` and at most `max` seconds.
    pub fn with_ttl_limits(mut self, min: u32, max: u32) -> Cache {
        self.max_ttl = max.clamp(1, MAX_TTL);
        self.min_ttl = min.min(self.max_ttl);
        self
    }

    /// The TTL an answer record is given: within the limits, except that a
    /// TTL of 0 stays 0 (answered, never cached) unless a minimum is set.
    pub fn answer_ttl(&self, ttl: u32) -> u32 {
        if ttl == 0 && self.min_ttl == 0 {
            return 0;
        }
        ttl.clamp(self.min_ttl, self.max_ttl)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Look at a live entry under the lock, with its remaining TTL: `read`
    /// copies out only what the caller needs.
    fn get<T>(&self, key: &Key, read: impl FnOnce(&Value, u32) -> Option<T>) -> Option<T> {
        let now = self.clock.now();
        let mut inner = self.inner.lock().expect("cache lock");
        let entry = inner.entries.get_mut(key)?;
        if entry.expires <= now {
            return None;
        }
        entry.used = true;
        read(&entry.value, (entry.expires - now).as_secs() as u32)
    }

    fn put(&self, key: Key, value: Value, ttl: u32) {
        let ttl = ttl.min(MAX_TTL);
        let now = self.clock.now();
        let mut inner = self.inner.lock().expect("cache lock");
        let inner = &mut *inner;
        if let Some(old) = inner.entries.remove(&key) {
            inner.budget(&key).by_expiry.remove(&(old.expires, old.seq));
        }
        inner.make_room(&key, now);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let expires = now + Duration::from_secs(u64::from(ttl));
        inner
            .budget(&key)
            .by_expiry
            .insert((expires, seq), key.clone());
        inner.entries.insert(
            key,
            Entry {
                value,
                ttl,
                expires,
                seq,
                used: false,
            },
        );
    }

    /// An RRset, with TTLs counted down.
    pub fn answer(&self, name: &LowerName, rtype: RecordType) -> Option<Hit<Vec<Record>>> {
        self.get(
            &Key::Answer(name.clone(), rtype),
            |value, remaining| match value {
                Value::Answer(records) => Some(Hit {
                    value: with_ttl(records, remaining),
                    remaining,
                }),
                _ => None,
            },
        )
    }

    /// Store an RRset for the smallest TTL among its records.
    pub fn put_answer(&self, records: Vec<Record>) -> Option<u32> {
        let first = records.first()?;
        let key = Key::Answer(LowerName::new(&first.name), first.record_type());
        let ttl = self.answer_ttl(records.iter().map(|r| r.ttl).min().unwrap_or(0));
        if ttl == 0 {
            return None;
        }
        self.put(key, Value::Answer(records), ttl);
        Some(ttl)
    }

    /// The cached DNAME closest above `name` (RFC 6672), if any: it renames
    /// `name` without a server being asked.
    pub fn dname_above(&self, name: &LowerName) -> Option<Hit<Vec<Record>>> {
        let mut ancestor = name.clone();
        while !ancestor.is_root() {
            ancestor = ancestor.base_name();
            if let Some(hit) = self.answer(&ancestor, RecordType::DNAME) {
                return Some(hit);
            }
        }
        None
    }

    /// An RRset that has expired less than `max_stale` ago, for serve-stale
    /// (RFC 8767): the records with `ttl` as their TTL, and how many seconds
    /// ago they expired.
    pub fn stale_answer(
        &self,
        name: &LowerName,
        rtype: RecordType,
        max_stale: Duration,
        ttl: u32,
    ) -> Option<(Vec<Record>, u64)> {
        let now = self.clock.now();
        let inner = self.inner.lock().expect("cache lock");
        let entry = inner.entries.get(&Key::Answer(name.clone(), rtype))?;
        let Value::Answer(records) = &entry.value else {
            return None;
        };
        let expired_for = now.checked_sub(entry.expires)?;
        (expired_for <= max_stale).then(|| (with_ttl(records, ttl), expired_for.as_secs()))
    }

    /// The delegation for exactly `zone`, with TTLs counted down.
    pub fn delegation(&self, zone: &LowerName) -> Option<Hit<Delegation>> {
        self.get(
            &Key::Delegation(zone.clone()),
            |value, remaining| match value {
                Value::Delegation(d) => Some(Hit {
                    value: Delegation {
                        zone: d.zone.clone(),
                        ns: with_ttl(&d.ns, remaining),
                        glue: with_ttl(&d.glue, remaining),
                        learned_from: d.learned_from.clone(),
                    },
                    remaining,
                }),
                _ => None,
            },
        )
    }

    /// The child's own NS set for a zone (RFC 2181 §5.4.1: it ranks above
    /// the parent's referral) replaces the cached delegation, keeping the
    /// glue of servers named in both. It never outlives the delegation it
    /// replaces: a server that goes on answering for a zone its parent has
    /// taken away must not keep it alive (the "ghost domain" attack).
    /// Returns the seconds it is kept, or `None` when no delegation was
    /// cached.
    pub fn replace_delegation(&self, child: Delegation) -> Option<u32> {
        let old = self.delegation(&LowerName::new(&child.zone))?;
        let names = child.server_names();
        let mut glue = child.glue;
        for g in old.value.glue {
            if names.iter().any(|n| n.eq_ignore_root(&g.name))
                && !glue
                    .iter()
                    .any(|k| k.name.eq_ignore_root(&g.name) && k.data == g.data)
            {
                glue.push(g);
            }
        }
        let ttl = child
            .ns
            .iter()
            .map(|r| r.ttl)
            .min()
            .unwrap_or(0)
            .min(old.remaining);
        let delegation = Delegation {
            zone: child.zone,
            ns: child.ns,
            glue,
            learned_from: old.value.learned_from,
        };
        let key = Key::Delegation(LowerName::new(&delegation.zone));
        self.put(key, Value::Delegation(delegation), ttl);
        Some(ttl)
    }

    /// The deepest cached delegation at or above `name`.
    pub fn closest_delegation(&self, name: &LowerName) -> Option<Hit<Delegation>> {
        let mut zone = name.clone();
        loop {
            if let Some(hit) = self.delegation(&zone) {
                return Some(hit);
            }
            if zone.is_root() {
                return None;
            }
            zone = zone.base_name();
        }
    }

    /// Store a delegation for the NS set's TTL.
    pub fn put_delegation(&self, delegation: Delegation) -> u32 {
        let ttl = delegation.ns.iter().map(|r| r.ttl).min().unwrap_or(0);
        let key = Key::Delegation(LowerName::new(&delegation.zone));
        self.put(key, Value::Delegation(delegation), ttl);
        ttl.min(MAX_TTL)
    }

    /// A negative answer for the name and type: NODATA for this type, or
    /// NXDOMAIN for the name, which covers every type.
    pub fn negative(&self, name: &LowerName, rtype: RecordType) -> Option<Hit<Negative>> {
        let read = |value: &Value, remaining: u32| match value {
            Value::Negative(n) => Some(Hit {
                value: Negative {
                    nxdomain: n.nxdomain,
                    soa: n
                        .soa
                        .as_ref()
                        .map(|soa| with_ttl(std::slice::from_ref(soa), remaining).remove(0)),
                    ns: with_ttl(&n.ns, remaining),
                    dnssec: with_ttl(&n.dnssec, remaining),
                },
                remaining,
            }),
            _ => None,
        };
        self.get(&Key::Negative(name.clone(), None), read)
            .or_else(|| self.get(&Key::Negative(name.clone(), Some(rtype)), read))
    }

    /// How long a denial is kept: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5),
    /// within three hours and `--max-ttl`; 0 without an SOA.
    pub fn denial_ttl(&self, negative: &Negative) -> u32 {
        negative
            .soa
            .as_ref()
            .map(negative_ttl)
            .unwrap_or(0)
            .min(MAX_NEGATIVE_TTL)
            .min(self.max_ttl)
    }

    /// Store a negative answer for [`Cache::denial_ttl`].
    pub fn put_negative(&self, name: &LowerName, rtype: RecordType, negative: Negative) -> u32 {
        let ttl = self.denial_ttl(&negative);
        if ttl == 0 {
            return 0;
        }
        let key = Key::Negative(name.clone(), (!negative.nxdomain).then_some(rtype));
        self.put(key, Value::Negative(negative), ttl);
        ttl
    }

    /// A resolution of `name`/`rtype` that failed recently: why, and how
    /// many seconds it stays remembered.
    pub fn failure(&self, name: &LowerName, rtype: RecordType) -> Option<Hit<Failure>> {
        self.get(
            &Key::Failure(name.clone(), rtype),
            |value, remaining| match value {
                Value::Failure(reason) => Some(Hit {
                    value: reason.clone(),
                    remaining,
                }),
                _ => None,
            },
        )
    }

    /// Remember that resolving `name`/`rtype` failed: for one second, or
    /// twice as long as last time if it failed then too (within five
    /// minutes of that failure's end). Returns the seconds it is held.
    pub fn put_failure(&self, name: &LowerName, rtype: RecordType, reason: Failure) -> u32 {
        let key = Key::Failure(name.clone(), rtype);
        let now = self.clock.now();
        let hold = {
            let inner = self.inner.lock().expect("cache lock");
            match inner.entries.get(&key) {
                Some(previous)
                    if now.saturating_sub(previous.expires)
                        < Duration::from_secs(u64::from(MAX_FAILURE_HOLD)) =>
                {
                    (previous.ttl * 2).min(MAX_FAILURE_HOLD)
                }
                _ => FIRST_FAILURE_HOLD,
            }
        };
        self.put(key, Value::Failure(reason), hold);
        hold
    }

    /// How many entries the cache holds, expired ones included until evicted.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("cache lock").entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget everything (the control endpoint's flush, for cold benchmarks).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("cache lock");
        inner.entries.clear();
        inner.data.by_expiry.clear();
        inner.denials.by_expiry.clear();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many times the cache has been flushed.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every live entry, sorted by name and type.
    pub fn entries(&self) -> Vec<EntryView> {
        self.entries_page(None, None, 0, usize::MAX).entries
    }

    /// Live entries whose name contains `name` (lowercase) and whose kind
    /// is `kind`, sorted by name and type, `limit` of them from `offset`.
    ///
    /// The lock is held to list the matching keys, then once per entry of
    /// the page: never across the whole walk, so a large cache listed does
    /// not stall the answers served from it.
    pub fn entries_page(
        &self,
        name: Option<&str>,
        kind: Option<CacheKind>,
        offset: usize,
        limit: usize,
    ) -> Page {
        let now = self.clock.now();
        let mut keys: Vec<Key> = {
            let inner = self.inner.lock().expect("cache lock");
            inner
                .entries
                .iter()
                .filter(|(key, e)| {
                    e.expires > now
                        && kind.is_none_or(|k| key.kind() == k)
                        && name.is_none_or(|n| key.name().to_string().contains(n))
                })
                .map(|(key, _)| key.clone())
                .collect()
        };
        let total = keys.len();
        keys.sort_by(|a, b| {
            (a.name(), a.rtype().map(u16::from)).cmp(&(b.name(), b.rtype().map(u16::from)))
        });
        let entries = keys
            .into_iter()
            .skip(offset)
            .take(limit)
            .filter_map(|key| self.view(&key))
            .collect();
        Page { total, entries }
    }

    /// One entry as the control endpoint shows it, if still live.
    fn view(&self, key: &Key) -> Option<EntryView> {
        let now = self.clock.now();
        let inner = self.inner.lock().expect("cache lock");
        let e = inner.entries.get(key).filter(|e| e.expires > now)?;
        let remaining = (e.expires - now).as_secs() as u32;
        let records: Vec<&Record> = match &e.value {
            Value::Answer(rs) => rs.iter().collect(),
            Value::Delegation(d) => d.ns.iter().chain(&d.glue).collect(),
            Value::Negative(neg) => neg.soa.iter().chain(&neg.ns).chain(&neg.dnssec).collect(),
            Value::Failure(_) => Vec::new(),
        };
        Some(EntryView {
            kind: key.kind(),
            name: key.name().to_string(),
            rtype: key.rtype(),
            nxdomain: matches!(key, Key::Negative(_, None)),
            reason: match &e.value {
                Value::Failure(failure) => Some(failure.reason.clone()),
                _ => None,
            },
            ttl: e.ttl,
            remaining,
            records: records
                .into_iter()
                .map(|r| {
                    let mut view = RecordView::from(r);
                    view.ttl = remaining;
                    view
                })
                .collect(),
        })
    }
}

/// A page of cache entries, and how many matched in all.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub total: usize,
    pub entries: Vec<EntryView>,
}

impl Key {
    fn kind(&self) -> CacheKind {
        match self {
            Key::Answer(..) => CacheKind::Answer,
            Key::Delegation(..) => CacheKind::Delegation,
            Key::Negative(..) => CacheKind::Negative,
            Key::Failure(..) => CacheKind::Failure,
        }
    }

    fn name(&self) -> &LowerName {
        match self {
            Key::Answer(n, _) | Key::Delegation(n) | Key::Negative(n, _) | Key::Failure(n, _) => n,
        }
    }

    fn rtype(&self) -> Option<RecordType> {
        match self {
            Key::Answer(_, t) | Key::Failure(_, t) => Some(*t),
            Key::Negative(_, t) => *t,
            Key::Delegation(_) => None,
        }
    }
}

/// RFC 2308 §5: a negative answer lives for min(SOA TTL, SOA MINIMUM).
pub fn negative_ttl(soa: &Record) -> u32 {
    match &soa.data {
        hickory_proto::rr::RData::SOA(data) => soa.ttl.min(data.minimum),
        _ => soa.ttl,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;

    fn a(name: &str, ttl: u32) -> Record {
        Record::from_rdata(
            Name::from_str(name).unwrap(),
            ttl,
            RData::A(A::from(Ipv4Addr::new(192, 0, 2, 1))),
        )
    }

    fn lower(name: &str) -> LowerName {
        LowerName::new(&Name::from_str(name).unwrap())
    }

    #[test]
    fn ttls_count_down_and_entries_expire() {
        let clock = Clock::new();
        let cache = Cache::new(10, clock.clone());
        cache.put_answer(vec![a("www.example.", 300)]);
        clock.advance(Duration::from_secs(100));
        let hit = cache.answer(&lower("www.example."), RecordType::A).unwrap();
        assert!(
            hit.remaining <= 200 && hit.remaining >= 199,
            "{}",
            hit.remaining
        );
        assert_eq!(hit.value[0].ttl, hit.remaining);
        clock.advance(Duration::from_secs(200));
        assert!(
            cache
                .answer(&lower("www.example."), RecordType::A)
                .is_none()
        );
    }

    #[test]
    fn a_full_cache_evicts_what_expires_soonest() {
        // Room for three answers (and one denial).
        let cache = Cache::new(4, Clock::new());
        cache.put_answer(vec![a("short.example.", 10)]);
        cache.put_answer(vec![a("long1.example.", 1000)]);
        cache.put_answer(vec![a("long2.example.", 1000)]);
        cache.put_answer(vec![a("new.example.", 500)]);
        assert_eq!(cache.len(), 3);
        assert!(
            cache
                .answer(&lower("short.example."), RecordType::A)
                .is_none()
        );
        assert!(
            cache
                .answer(&lower("new.example."), RecordType::A)
                .is_some()
        );
        assert!(
            cache
                .answer(&lower("long1.example."), RecordType::A)
                .is_some()
        );
    }

    #[test]
    fn an_answer_in_use_is_spared_once() {
        let cache = Cache::new(4, Clock::new());
        cache.put_answer(vec![a("popular.example.", 10)]);
        cache.put_answer(vec![a("b.example.", 1000)]);
        cache.put_answer(vec![a("c.example.", 1000)]);
        assert!(
            cache
                .answer(&lower("popular.example."), RecordType::A)
                .is_some()
        );
        cache.put_answer(vec![a("d.example.", 500)]);
        // Looked at as the control endpoint does, which is not a use.
        let kept = |name: &str| cache.entries().iter().any(|e| e.name == name);
        assert!(!kept("b.example."), "the next soonest went instead");
        assert!(kept("popular.example."));
        // Spared once: not read again since, it goes next.
        cache.put_answer(vec![a("e.example.", 500)]);
        assert!(!kept("popular.example."));
    }

    /// An NXDOMAIN with the SOA of `example.`: TTL 900, and `minimum`.
    fn nxdomain(minimum: u32) -> Negative {
        let soa = Record::from_rdata(
            Name::from_str("example.").unwrap(),
            900,
            RData::SOA(SOA::new(
                Name::from_str("ns.example.").unwrap(),
                Name::from_str("admin.example.").unwrap(),
                1,
                2,
                3,
                4,
                minimum,
            )),
        );
        Negative {
            nxdomain: true,
            soa: Some(soa),
            ns: Vec::new(),
            dnssec: Vec::new(),
        }
    }

    #[test]
    fn a_flood_of_denials_evicts_only_denials() {
        let cache = Cache::new(8, Clock::new());
        // Shorter-lived than every denial, and never read: by expiry alone
        // it would be the first to go.
        cache.put_answer(vec![a("www.example.", 60)]);
        for i in 0..1000 {
            let name = lower(&format!("n{i}.example."));
            assert_eq!(cache.put_negative(&name, RecordType::A, nxdomain(900)), 900);
        }
        assert!(
            cache
                .answer(&lower("www.example."), RecordType::A)
                .is_some()
        );
        assert_eq!(cache.len(), 1 + 2, "the answer and a quarter of 8 denials");
        assert!(
            cache
                .negative(&lower("n999.example."), RecordType::A)
                .is_some()
        );
    }

    #[test]
    fn negative_ttl_is_the_smaller_of_soa_ttl_and_minimum() {
        let cache = Cache::new(10, Clock::new());
        let ttl = cache.put_negative(&lower("nope.example."), RecordType::A, nxdomain(60));
        assert_eq!(ttl, 60);
        // NXDOMAIN covers every type.
        assert!(
            cache
                .negative(&lower("nope.example."), RecordType::MX)
                .is_some()
        );
    }

    #[test]
    fn zero_ttl_answers_are_not_cached() {
        let cache = Cache::new(10, Clock::new());
        assert_eq!(cache.put_answer(vec![a("zero.example.", 0)]), None);
        assert!(cache.is_empty());
    }
}
