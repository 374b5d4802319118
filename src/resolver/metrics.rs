//! Counters for the control endpoint's `/metrics`, in Prometheus' text format.
//!
//! Plain atomics: counting must cost next to nothing on the answer path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hickory_proto::op::ResponseCode;

use crate::exchange::Ignored;
use crate::trace::CacheKind;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default)]
pub struct Metrics {
    queries: AtomicU64,
    refused: AtomicU64,
    noerror: AtomicU64,
    nxdomain: AtomicU64,
    servfail: AtomicU64,
    other_rcode: AtomicU64,
    hits_answer: AtomicU64,
    hits_negative: AtomicU64,
    hits_delegation: AtomicU64,
    hits_failure: AtomicU64,
    misses: AtomicU64,
    replayed: AtomicU64,
    upstream_queries: AtomicU64,
    upstream_timeouts: AtomicU64,
    /// Upstream responses not taken, by why (see [`Ignored`]).
    ignored_mismatched: AtomicU64,
    ignored_wrong_case: AtomicU64,
    ignored_wrong_cookie: AtomicU64,
    ignored_missing_cookie: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn query(&self) {
        self.queries.fetch_add(1, Relaxed);
    }

    pub fn response(&self, rcode: ResponseCode, latency: Duration) {
        let counter = match rcode {
            ResponseCode::NoError => &self.noerror,
            ResponseCode::NXDomain => &self.nxdomain,
            ResponseCode::ServFail => &self.servfail,
            ResponseCode::Refused => &self.refused,
            _ => &self.other_rcode,
        };
        counter.fetch_add(1, Relaxed);
        let secs = latency.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_sum_us
            .fetch_add(latency.as_micros() as u64, Relaxed);
    }

    pub fn cache_hit(&self, kind: CacheKind) {
        match kind {
            CacheKind::Answer => &self.hits_answer,
            CacheKind::Negative => &self.hits_negative,
            CacheKind::Delegation => &self.hits_delegation,
            CacheKind::Failure => &self.hits_failure,
        }
        .fetch_add(1, Relaxed);
    }

    /// A reply came whole from the message cache.
    pub fn replayed(&self) {
        self.replayed.fetch_add(1, Relaxed);
    }

    pub fn replayed_total(&self) -> u64 {
        self.replayed.load(Relaxed)
    }

    pub fn cache_miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }

    pub fn upstream_query(&self) {
        self.upstream_queries.fetch_add(1, Relaxed);
    }

    pub fn upstream_timeout(&self) {
        self.upstream_timeouts.fetch_add(1, Relaxed);
    }

    pub fn upstream_timeouts(&self) -> u64 {
        self.upstream_timeouts.load(Relaxed)
    }

    /// Responses to upstream questions that were not taken as answers.
    pub fn responses_ignored(&self, ignored: &Ignored) {
        for (counter, n) in [
            (&self.ignored_mismatched, ignored.mismatched),
            (&self.ignored_wrong_case, ignored.wrong_case),
            (&self.ignored_wrong_cookie, ignored.wrong_cookie),
            (&self.ignored_missing_cookie, ignored.missing_cookie),
        ] {
            if n > 0 {
                counter.fetch_add(u64::from(n), Relaxed);
            }
        }
    }

    /// Every upstream response not taken so far, by why.
    pub fn upstream_ignored(&self) -> Ignored {
        let read = |c: &AtomicU64| u32::try_from(c.load(Relaxed)).unwrap_or(u32::MAX);
        Ignored {
            mismatched: read(&self.ignored_mismatched),
            wrong_case: read(&self.ignored_wrong_case),
            wrong_cookie: read(&self.ignored_wrong_cookie),
            missing_cookie: read(&self.ignored_missing_cookie),
        }
    }

    pub fn upstream_queries(&self) -> u64 {
        self.upstream_queries.load(Relaxed)
    }

    /// Everything, in the Prometheus exposition format.
    pub fn render(&self, cache_entries: usize) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        counter(
            "dnstrail_queries_total",
            "Client questions received.",
            &[("", self.queries.load(Relaxed))],
        );
        counter(
            "dnstrail_responses_total",
            "Responses to clients, by rcode.",
            &[
                ("{rcode=\"NOERROR\"}", self.noerror.load(Relaxed)),
                ("{rcode=\"NXDOMAIN\"}", self.nxdomain.load(Relaxed)),
                ("{rcode=\"SERVFAIL\"}", self.servfail.load(Relaxed)),
                ("{rcode=\"REFUSED\"}", self.refused.load(Relaxed)),
                ("{rcode=\"other\"}", self.other_rcode.load(Relaxed)),
            ],
        );
        counter(
            "dnstrail_cache_hits_total",
            "Cache hits, by kind of entry.",
            &[
                ("{kind=\"answer\"}", self.hits_answer.load(Relaxed)),
                ("{kind=\"negative\"}", self.hits_negative.load(Relaxed)),
                ("{kind=\"delegation\"}", self.hits_delegation.load(Relaxed)),
                ("{kind=\"failure\"}", self.hits_failure.load(Relaxed)),
            ],
        );
        counter(
            "dnstrail_cache_misses_total",
            "Lookups the cache could not answer.",
            &[("", self.misses.load(Relaxed))],
        );
        counter(
            "dnstrail_replayed_total",
            "Replies sent whole from the message cache, TTLs counted down.",
            &[("", self.replayed.load(Relaxed))],
        );
        counter(
            "dnstrail_upstream_queries_total",
            "Questions sent to name servers.",
            &[("", self.upstream_queries.load(Relaxed))],
        );
        counter(
            "dnstrail_upstream_timeouts_total",
            "Questions to name servers that got no response in time.",
            &[("", self.upstream_timeouts.load(Relaxed))],
        );
        counter(
            "dnstrail_upstream_ignored_total",
            "Responses to upstream questions not taken as answers, by why: forged or late.",
            &[
                (
                    "{reason=\"mismatched\"}",
                    self.ignored_mismatched.load(Relaxed),
                ),
                (
                    "{reason=\"wrong_case\"}",
                    self.ignored_wrong_case.load(Relaxed),
                ),
                (
                    "{reason=\"wrong_cookie\"}",
                    self.ignored_wrong_cookie.load(Relaxed),
                ),
                (
                    "{reason=\"missing_cookie\"}",
                    self.ignored_missing_cookie.load(Relaxed),
                ),
            ],
        );
        counter(
            "dnstrail_query_log_dropped_total",
            "Query log lines dropped because the log could not keep up.",
            &[("", crate::serve::querylog::dropped())],
        );
        let _ = writeln!(
            out,
            "# HELP dnstrail_cache_entries Entries in the cache.\n# TYPE dnstrail_cache_entries gauge\ndnstrail_cache_entries {cache_entries}"
        );
        let _ = writeln!(
            out,
            "# HELP dnstrail_response_seconds Time from question to response.\n# TYPE dnstrail_response_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(
                out,
                "dnstrail_response_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let total: u64 = [
            &self.noerror,
            &self.nxdomain,
            &self.servfail,
            &self.refused,
            &self.other_rcode,
        ]
        .iter()
        .map(|c| c.load(Relaxed))
        .sum();
        let _ = writeln!(
            out,
            "dnstrail_response_seconds_bucket{{le=\"+Inf\"}} {total}\ndnstrail_response_seconds_sum {}\ndnstrail_response_seconds_count {total}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        out
    }
}
