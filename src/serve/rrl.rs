//! Response-rate limiting for authoritative servers (`--rrl`), as BIND and
//! NSD do it: a forged source address can turn a name server into an
//! amplifier aimed at a victim, so each client network gets only so many
//! answers a second. Past that, answers are dropped, except every second
//! one, which goes out empty with TC=1 ("slip"): a real client retries over
//! TCP, where addresses cannot be forged, and is answered there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType};

/// Networks remembered before idle ones are forgotten.
const MAX_NETWORKS: usize = 10_000;

/// What to do with one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send an empty TC=1 answer instead, so the client tries TCP.
    Slip,
    Drop,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    limited: u64,
}

/// Token buckets per client network: /24 for IPv4, /56 for IPv6.
pub struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// The network a client is counted in.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[7..].fill(0);
            IpAddr::from(octets)
        }
    }
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Decide for one answer to `client`.
    pub fn check(&self, client: IpAddr) -> Verdict {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rrl lock");
        if buckets.len() >= MAX_NETWORKS {
            buckets.retain(|_, b| now.duration_since(b.last).as_secs() < 2);
        }
        let bucket = buckets.entry(network(client)).or_insert(Bucket {
            tokens: self.per_second,
            last: now,
            limited: 0,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.per_second);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Send;
        }
        bucket.limited += 1;
        if bucket.limited.is_multiple_of(2) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

/// The empty, truncated answer a slipped query gets.
pub fn slip_response(query: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let mut reply = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.truncation = true;
    reply.add_queries(query.queries);
    reply.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_over_its_rate_is_dropped_and_slipped() {
        let limiter = RateLimiter::new(5);
        let client: IpAddr = "192.0.2.10".parse().unwrap();
        let neighbour: IpAddr = "192.0.2.99".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..9).map(|_| limiter.check(client)).collect();
        assert_eq!(verdicts[..5], [Verdict::Send; 5]);
        assert_eq!(
            verdicts[5..],
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        // The same /24 shares the budget; another network has its own.
        assert_ne!(limiter.check(neighbour), Verdict::Send);
        assert_eq!(
            limiter.check("198.51.100.1".parse().unwrap()),
            Verdict::Send
        );
    }
}
