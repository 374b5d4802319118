//! Which of a zone's name servers to ask first.
//!
//! As BIND and Unbound do, the resolver keeps a smoothed round-trip time
//! (SRTT) per server address and prefers the fastest. Servers it has never
//! asked start with a small random SRTT, so each gets tried early on; a small
//! share of questions goes to a random server anyway (exploration), so a
//! server that was slow once is not shunned forever. A timeout counts as a
//! very slow answer and puts the server on a short back-off, during which it
//! is asked only when no other server is left.
//!
//! These figures are real time, not the demo's advanceable clock: round
//! trips happen in real time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

/// Weight of a new sample in the smoothed RTT (BIND uses 0.3).
const ALPHA: f64 = 0.3;
/// Share of choices made at random, to keep measuring every server.
const EXPLORE: f64 = 0.05;
/// How long a server that timed out is avoided.
const BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Stats {
    srtt_us: f64,
    backoff_until: Option<Instant>,
}

/// Round-trip statistics for every server the resolver has asked.
#[derive(Default)]
pub struct ServerStats {
    inner: Mutex<HashMap<IpAddr, Stats>>,
}

impl ServerStats {
    pub fn new() -> ServerStats {
        ServerStats::default()
    }

    fn stats(map: &mut HashMap<IpAddr, Stats>, ip: IpAddr) -> &mut Stats {
        map.entry(ip).or_insert_with(|| Stats {
            // Unknown servers look fast (a random 0–50 µs) so they are tried
            // early, in random order.
            srtt_us: rand::rng().random_range(0.0..50.0),
            backoff_until: None,
        })
    }

    /// Order `candidates` best first. Servers on back-off go last.
    pub fn order<T: Clone>(&self, candidates: &[T], ip_of: impl Fn(&T) -> IpAddr) -> Vec<T> {
        let now = Instant::now();
        let mut map = self.inner.lock().expect("server stats lock");
        let mut scored: Vec<(bool, f64, T)> = candidates
            .iter()
            .map(|c| {
                let s = *Self::stats(&mut map, ip_of(c));
                let backed_off = s.backoff_until.is_some_and(|t| t > now);
                (backed_off, s.srtt_us, c.clone())
            })
            .collect();
        drop(map);
        scored.sort_by(|a, b| (a.0, a.1).partial_cmp(&(b.0, b.1)).expect("no NaN"));
        let mut ordered: Vec<T> = scored.iter().map(|(_, _, c)| c.clone()).collect();
        let healthy = scored.iter().filter(|(b, _, _)| !b).count();
        let mut rng = rand::rng();
        if healthy > 1 && rng.random_bool(EXPLORE) {
            let pick = rng.random_range(1..healthy);
            let explored = ordered.remove(pick);
            ordered.insert(0, explored);
        }
        ordered
    }

    /// A response arrived after `rtt`.
    pub fn record_rtt(&self, ip: IpAddr, rtt: Duration) {
        let mut map = self.inner.lock().expect("server stats lock");
        let s = Self::stats(&mut map, ip);
        let sample = rtt.as_micros() as f64;
        s.srtt_us = (1.0 - ALPHA) * s.srtt_us + ALPHA * sample;
        s.backoff_until = None;
    }

    /// No response within `timeout`: count it as a very slow answer and
    /// avoid the server for a while.
    pub fn record_timeout(&self, ip: IpAddr, timeout: Duration) {
        let mut map = self.inner.lock().expect("server stats lock");
        let s = Self::stats(&mut map, ip);
        s.srtt_us = s.srtt_us.max(timeout.as_micros() as f64) * 2.0;
        s.backoff_until = Some(Instant::now() + BACKOFF);
    }

    /// How long to wait for this server: a few SRTTs, within sane bounds.
    pub fn timeout_for(&self, ip: IpAddr) -> Duration {
        const MIN: Duration = Duration::from_millis(200);
        const MAX: Duration = Duration::from_millis(800);
        const UNKNOWN: Duration = Duration::from_millis(400);
        let map = self.inner.lock().expect("server stats lock");
        match map.get(&ip) {
            Some(s) if s.srtt_us >= 50.0 && s.backoff_until.is_none() => {
                Duration::from_micros((s.srtt_us * 4.0) as u64).clamp(MIN, MAX)
            }
            _ => UNKNOWN,
        }
    }
}
