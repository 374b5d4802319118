//! Which of a zone's name servers to ask first, and which not at all.
//!
//! As BIND and Unbound do, the resolver keeps a smoothed round-trip time
//! (SRTT) per server address and prefers the fastest. Servers it has never
//! asked start with a small random SRTT, so each gets tried early on; a small
//! share of questions goes to a random server anyway (exploration), so a
//! server that was slow once is not shunned forever. The randomness comes
//! from one seeded generator (`--seed`), so a run can be repeated choice for
//! choice, and servers named as "first choice" are tried before any other
//! unknown one (the demo uses this to make a failing server meet the first
//! visit).
//!
//! A server that timed out or failed is held down (RFC 9520 §3.2): not
//! asked again at all for a while, 1 s after the first failure, doubling
//! with each failure in a row up to 5 minutes, forgotten on its first good
//! answer. When every server of a zone is held down, the resolution fails
//! at once instead of sending questions nobody will answer.
//!
//! A server that answers for a zone as if it did not serve it (no AA and
//! no referral, a referral upward, REFUSED) is lame for that zone: not
//! asked about it again for 15 minutes (Unbound's infra-lame-ttl), while
//! still asked about the other zones it serves.
//!
//! It also remembers how to talk to each server, as Unbound's and BIND's
//! infrastructure caches do: whether it echoes the case of a question's
//! name (0x20; one that does not is asked in the case asked, for 15
//! minutes), and the server cookie it last sent (RFC 7873), which goes
//! back to it with the resolver's client cookie for it.
//!
//! These figures are real time, not the demo's advanceable clock: round
//! trips happen in real time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::rr::LowerName;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::serve::cookies::{CookieSecret, MAX_SERVER_COOKIE};

/// Weight of a new sample in the smoothed RTT (BIND uses 0.3).
const ALPHA: f64 = 0.3;
/// What a passed-over server's SRTT is multiplied by (BIND decays the
/// servers it did not choose in the same way).
const DECAY: f64 = 0.98;
/// Share of choices made at random, to keep measuring every server.
const EXPLORE: f64 = 0.05;
/// How long a server is held down after its first failure in a row.
const FIRST_HOLD: Duration = Duration::from_secs(1);
/// The longest hold-down (RFC 9520 §3.2: at most five minutes).
const MAX_HOLD: Duration = Duration::from_secs(300);
/// How long a server stays lame for a zone (Unbound's infra-lame-ttl).
pub const LAME_HOLD: Duration = Duration::from_secs(900);
/// How long a server that did not echo a question's case is asked without
/// 0x20 (Unbound keeps what it learns of a server this long,
/// infra-host-ttl).
pub const CASE_BLIND_HOLD: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy)]
struct Stats {
    srtt_us: f64,
    /// Whether a real round trip has been measured yet (until then the
    /// SRTT is the small random start).
    measured: bool,
    /// Failures since the last good answer.
    failures: u32,
    held_until: Option<Instant>,
    /// It answered a mixed-case question only in another case: not asked
    /// with 0x20 until then.
    case_blind_until: Option<Instant>,
    /// The server cookie from its last answer, if it sent one.
    server_cookie: Option<ServerCookie>,
}

/// A server cookie, as a server sent it (8 to 32 bytes), kept inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerCookie {
    bytes: [u8; MAX_SERVER_COOKIE],
    len: u8,
}

impl ServerCookie {
    /// `None` for a length no server cookie has.
    pub fn new(bytes: &[u8]) -> Option<ServerCookie> {
        if !(8..=MAX_SERVER_COOKIE).contains(&bytes.len()) {
            return None;
        }
        let mut cookie = ServerCookie {
            bytes: [0; MAX_SERVER_COOKIE],
            len: bytes.len() as u8,
        };
        cookie.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(cookie)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

struct State {
    servers: HashMap<IpAddr, Stats>,
    /// Servers lame for a zone, until when.
    lame: HashMap<(IpAddr, LowerName), Instant>,
    rng: StdRng,
}

/// Round-trip statistics and hold-downs for every server the resolver has
/// asked.
pub struct ServerStats {
    state: Mutex<State>,
    first_choice: Vec<IpAddr>,
    /// What the client cookies sent to servers are made from.
    cookie_secret: CookieSecret,
}

/// A zone's servers in the order to ask them, and those held down.
#[derive(Debug)]
pub struct Ordered<T> {
    pub usable: Vec<T>,
    /// Servers not to ask now, with how long they stay held down.
    pub held: Vec<(T, Duration)>,
    /// Servers not to ask about this zone: they are lame for it.
    pub lame: Vec<T>,
}

impl ServerStats {
    /// Choices drawn from `seed`; servers in `first_choice` are preferred
    /// while nothing is known about them.
    pub fn new(seed: u64, first_choice: Vec<IpAddr>) -> ServerStats {
        ServerStats {
            state: Mutex::new(State {
                servers: HashMap::new(),
                lame: HashMap::new(),
                rng: StdRng::seed_from_u64(seed),
            }),
            first_choice,
            cookie_secret: CookieSecret::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats<'s>(state: &'s mut State, first_choice: &[IpAddr], ip: IpAddr) -> &'s mut Stats {
        let State { servers, rng, .. } = state;
        servers.entry(ip).or_insert_with(|| Stats {
            // Unknown servers look fast (a random 1–50 µs) so they are tried
            // early, in random order; a first choice looks fastest of all.
            srtt_us: if first_choice.contains(&ip) {
                0.0
            } else {
                rng.random_range(1.0..50.0)
            },
            measured: false,
            failures: 0,
            held_until: None,
            case_blind_until: None,
            server_cookie: None,
        })
    }

    /// Order `candidates`, servers of `zone`, best first, setting aside
    /// those held down and those lame for the zone.
    pub fn order<T: Clone>(
        &self,
        zone: &LowerName,
        candidates: &[T],
        ip_of: impl Fn(&T) -> IpAddr,
    ) -> Ordered<T> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut usable: Vec<(f64, T)> = Vec::new();
        let mut held = Vec::new();
        let mut lame = Vec::new();
        for c in candidates {
            let ip = ip_of(c);
            if state
                .lame
                .get(&(ip, zone.clone()))
                .is_some_and(|until| *until > now)
            {
                lame.push(c.clone());
                continue;
            }
            let s = *Self::stats(&mut state, &self.first_choice, ip);
            match s.held_until {
                Some(until) if until > now => held.push((c.clone(), until - now)),
                _ => usable.push((s.srtt_us, c.clone())),
            }
        }
        usable.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut usable: Vec<T> = usable.into_iter().map(|(_, c)| c).collect();
        if usable.len() > 1 && state.rng.random_bool(EXPLORE) {
            let pick = state.rng.random_range(1..usable.len());
            let explored = usable.remove(pick);
            usable.insert(0, explored);
        }
        // The servers passed over look a little faster each time, as BIND
        // decays them: one slow answer must not shun a server for good.
        for passed in usable.iter().skip(1) {
            if let Some(s) = state.servers.get_mut(&ip_of(passed))
                && s.measured
            {
                s.srtt_us *= DECAY;
            }
        }
        Ordered { usable, held, lame }
    }

    /// The server at `ip` is lame for `zone`: set it aside for that zone.
    pub fn mark_lame(&self, ip: IpAddr, zone: &LowerName) {
        let mut state = self.lock();
        let now = Instant::now();
        state.lame.retain(|_, until| *until > now);
        state.lame.insert((ip, zone.clone()), now + LAME_HOLD);
    }

    /// A response arrived after `rtt`: the server is well.
    pub fn record_rtt(&self, ip: IpAddr, rtt: Duration) {
        let mut state = self.lock();
        let s = Self::stats(&mut state, &self.first_choice, ip);
        let sample = rtt.as_micros() as f64;
        // The first measurement is taken as it is: blended with the random
        // start, a new server would look three times faster than it is.
        s.srtt_us = if s.measured {
            (1.0 - ALPHA) * s.srtt_us + ALPHA * sample
        } else {
            sample
        };
        s.measured = true;
        s.failures = 0;
        s.held_until = None;
    }

    /// No response within `timeout`, or none possible (refused, unreachable):
    /// count it as a very slow answer and hold the server down. Returns how
    /// long it is held down.
    pub fn record_failure(&self, ip: IpAddr, timeout: Duration) -> Duration {
        let mut state = self.lock();
        let s = Self::stats(&mut state, &self.first_choice, ip);
        s.srtt_us = s.srtt_us.max(timeout.as_micros() as f64) * 2.0;
        s.failures = s.failures.saturating_add(1);
        let hold = FIRST_HOLD
            .saturating_mul(1 << (s.failures - 1).min(16))
            .min(MAX_HOLD);
        s.held_until = Some(Instant::now() + hold);
        hold
    }

    /// Whether questions to `ip` may have their case mixed (0x20): not
    /// for a while after it failed to echo it.
    pub fn echoes_case(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.lock()
            .servers
            .get(&ip)
            .and_then(|s| s.case_blind_until)
            .is_none_or(|until| until <= now)
    }

    /// The server at `ip` answered a mixed-case question only in another
    /// case: ask it in the case asked for [`CASE_BLIND_HOLD`].
    pub fn mark_case_blind(&self, ip: IpAddr) {
        let mut state = self.lock();
        let s = Self::stats(&mut state, &self.first_choice, ip);
        s.case_blind_until = Some(Instant::now() + CASE_BLIND_HOLD);
    }

    /// The cookies for a question to `ip`: our client cookie for it, and
    /// the server cookie from its last answer, if any.
    pub fn cookies_for(&self, ip: IpAddr) -> ([u8; 8], Option<ServerCookie>) {
        let server = self.lock().servers.get(&ip).and_then(|s| s.server_cookie);
        (self.cookie_secret.client_cookie(ip), server)
    }

    /// Keep the server cookie `ip` just sent, to send it back next time;
    /// `None` forgets it (the server no longer sends one).
    pub fn keep_server_cookie(&self, ip: IpAddr, cookie: Option<ServerCookie>) {
        let mut state = self.lock();
        Self::stats(&mut state, &self.first_choice, ip).server_cookie = cookie;
    }

    /// How long to wait for this server: a few SRTTs, within sane bounds.
    pub fn timeout_for(&self, ip: IpAddr) -> Duration {
        const MIN: Duration = Duration::from_millis(200);
        const MAX: Duration = Duration::from_millis(800);
        const UNKNOWN: Duration = Duration::from_millis(400);
        let state = self.lock();
        match state.servers.get(&ip) {
            Some(s) if s.srtt_us >= 50.0 && s.failures == 0 => {
                Duration::from_micros((s.srtt_us * 4.0) as u64).clamp(MIN, MAX)
            }
            _ => UNKNOWN,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn zone() -> LowerName {
        LowerName::from_str("example.").unwrap()
    }

    fn ips(n: u8) -> Vec<IpAddr> {
        (1..=n).map(|i| IpAddr::from([192, 0, 2, i])).collect()
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let first = |seed| {
            let stats = ServerStats::new(seed, Vec::new());
            (0..20)
                .map(|_| stats.order(&zone(), &ips(4), |ip| *ip).usable[0])
                .collect::<Vec<_>>()
        };
        assert_eq!(first(7), first(7));
        assert!((0..50).map(first).any(|c| c != first(7)), "seeds differ");
    }

    #[test]
    fn a_first_choice_goes_first_until_it_fails_and_then_is_held_down() {
        let servers = ips(4);
        let stats = ServerStats::new(1, vec![servers[2]]);
        assert_eq!(
            stats.order(&zone(), &servers, |ip| *ip).usable[0],
            servers[2]
        );
        let hold = stats.record_failure(servers[2], Duration::from_millis(400));
        assert_eq!(hold, FIRST_HOLD);
        let ordered = stats.order(&zone(), &servers, |ip| *ip);
        assert!(!ordered.usable.contains(&servers[2]));
        assert_eq!(ordered.held.len(), 1);
        // Each failure in a row doubles the hold-down, up to five minutes.
        assert_eq!(
            stats.record_failure(servers[2], Duration::ZERO),
            FIRST_HOLD * 2
        );
        for _ in 0..20 {
            stats.record_failure(servers[2], Duration::ZERO);
        }
        assert_eq!(stats.record_failure(servers[2], Duration::ZERO), MAX_HOLD);
        // A good answer ends it.
        stats.record_rtt(servers[2], Duration::from_micros(100));
        assert!(stats.order(&zone(), &servers, |ip| *ip).held.is_empty());
    }

    #[test]
    fn a_lame_server_is_set_aside_for_its_zone_only() {
        let servers = ips(2);
        let stats = ServerStats::new(3, Vec::new());
        stats.mark_lame(servers[0], &zone());
        let ordered = stats.order(&zone(), &servers, |ip| *ip);
        assert_eq!(ordered.usable, [servers[1]]);
        assert_eq!(ordered.lame, [servers[0]]);
        let other = LowerName::from_str("other.").unwrap();
        assert_eq!(stats.order(&other, &servers, |ip| *ip).usable.len(), 2);
    }
}
