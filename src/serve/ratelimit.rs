//! One rate limiter for every role, with a policy.
//!
//! - Name servers (`--rrl QPS`): response-rate limiting as BIND and NSD do
//!   it. A forged source address can turn a name server into an amplifier
//!   aimed at a victim, so each client *network* (/24, /56) gets only so
//!   many UDP answers a second. Past that, answers are dropped, except every
//!   second one, which goes out empty with TC=1 ("slip"): a real client
//!   retries over TCP, where addresses cannot be forged, and is answered
//!   there. TCP is not limited.
//! - The resolver (`--rate-limit QPS`): each client *address* may ask so many
//!   questions a second, over either transport; past that it gets REFUSED.
//!
//! Both are token buckets refilled continuously: `per_second` tokens at most,
//! one spent per message.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType};

use crate::dns::Transport;

/// Clients (or networks) remembered before idle ones are forgotten.
const MAX_CLIENTS: usize = 10_000;

/// How a role is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub scope: Scope,
    pub over: Over,
}

impl RateLimit {
    /// Response-rate limiting for authoritative servers (`--rrl`).
    pub fn responses(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            scope: Scope::Network,
            over: Over::Slip,
        }
    }

    /// Questions per client address, for the resolver (`--rate-limit`).
    pub fn questions(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            scope: Scope::Address,
            over: Over::Refuse,
        }
    }
}

/// What one bucket counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A client network: /24 for IPv4, /56 for IPv6.
    Network,
    /// One client address.
    Address,
}

/// What happens past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// UDP only: drop, with every second answer slipped (empty, TC=1).
    Slip,
    /// Either transport: answer REFUSED.
    Refuse,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send an empty TC=1 answer instead, so the client tries TCP.
    Slip,
    Drop,
    /// Answer REFUSED.
    Refuse,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    limited: u64,
}

/// Token buckets per client (or client network).
pub struct RateLimiter {
    policy: RateLimit,
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
    pub fn new(policy: RateLimit) -> RateLimiter {
        RateLimiter {
            policy: RateLimit {
                per_second: policy.per_second.max(1),
                ..policy
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Decide for one message from `client`.
    pub fn check(&self, client: IpAddr, transport: Transport) -> Verdict {
        if self.policy.over == Over::Slip && transport == Transport::Tcp {
            return Verdict::Send;
        }
        let key = match self.policy.scope {
            Scope::Network => network(client),
            Scope::Address => client,
        };
        let rate = f64::from(self.policy.per_second);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS {
            buckets.retain(|_, b| now.duration_since(b.last).as_secs() < 2);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            last: now,
            limited: 0,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Send;
        }
        bucket.limited += 1;
        match self.policy.over {
            Over::Refuse => Verdict::Refuse,
            Over::Slip if bucket.limited.is_multiple_of(2) => Verdict::Slip,
            Over::Slip => Verdict::Drop,
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
        let limiter = RateLimiter::new(RateLimit::responses(5));
        let client: IpAddr = "192.0.2.10".parse().unwrap();
        let neighbour: IpAddr = "192.0.2.99".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..9)
            .map(|_| limiter.check(client, Transport::Udp))
            .collect();
        assert_eq!(verdicts[..5], [Verdict::Send; 5]);
        assert_eq!(
            verdicts[5..],
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        // The same /24 shares the budget; another network has its own; TCP
        // is never limited.
        assert_ne!(limiter.check(neighbour, Transport::Udp), Verdict::Send);
        assert_eq!(limiter.check(neighbour, Transport::Tcp), Verdict::Send);
        assert_eq!(
            limiter.check("198.51.100.1".parse().unwrap(), Transport::Udp),
            Verdict::Send
        );
    }

    #[test]
    fn an_address_over_its_rate_is_refused_on_either_transport() {
        let limiter = RateLimiter::new(RateLimit::questions(2));
        let client: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(limiter.check(client, Transport::Udp), Verdict::Send);
        assert_eq!(limiter.check(client, Transport::Tcp), Verdict::Send);
        assert_eq!(limiter.check(client, Transport::Tcp), Verdict::Refuse);
        // Its neighbour has a bucket of its own.
        assert_eq!(
            limiter.check("192.0.2.11".parse().unwrap(), Transport::Udp),
            Verdict::Send
        );
    }
}
