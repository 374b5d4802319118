//! DNS cookies (RFC 7873, with the interoperable server cookie of RFC
//! 9018): the server's side in every role, and the resolver's side as a
//! client of the name servers it asks.
//!
//! ```text
//!  query:  COOKIE option = client cookie (8 bytes) [+ our server cookie from before]
//!  answer: COOKIE option = client cookie + server cookie:
//!          version 1 | reserved | timestamp | SipHash-2-4(client cookie, version,
//!                                                         reserved, timestamp, client address)
//! ```
//!
//! A server cookie proves that the client saw an earlier answer of ours at
//! its address, which a forger spraying packets from a spoofed address
//! cannot: so a query carrying a valid one is exempt from response-rate
//! limiting. A query without cookies is answered as before (RFC 7873 §5.2.3
//! lets a server choose). A malformed COOKIE option gets FORMERR (§5.2.2).
//!
//! As a client, the resolver sends each server a client cookie of its own,
//! SipHash-2-4 of the server's address under a secret (as BIND makes it),
//! and the server cookie it last got from that server: an answer must
//! carry that client cookie back, which a blind forger cannot know.

use std::hash::Hasher;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use siphasher::sip::SipHasher24;

/// The EDNS option code of COOKIE (RFC 7873 §4).
pub const COOKIE: u16 = 10;
/// A server cookie is 8 to 32 bytes (RFC 7873 §4.2).
pub const MAX_SERVER_COOKIE: usize = 32;
/// How old a server cookie may be, and how far in the future (RFC 9018
/// §4.3: one hour back, five minutes ahead).
const MAX_AGE: u32 = 3600;
const MAX_AHEAD: u32 = 300;

/// The secret our server cookies are made with: random per process, so a
/// restart only costs clients one round of fresh cookies.
#[derive(Clone)]
pub struct CookieSecret([u8; 16]);

impl Default for CookieSecret {
    fn default() -> CookieSecret {
        CookieSecret(rand::random())
    }
}

impl std::fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSecret(…)")
    }
}

/// The cookies a query carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cookies {
    /// No COOKIE option.
    None,
    /// A COOKIE option that is not 8 or 16–40 bytes long.
    Malformed,
    /// A client cookie, and whether the server cookie with it is one we made
    /// for this client recently.
    Present { client: [u8; 8], server_valid: bool },
}

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// The bytes of a message's COOKIE option, if it has one.
pub fn option_data(message: &Message) -> Option<&[u8]> {
    match message.edns.as_ref()?.option(EdnsCode::Cookie)? {
        EdnsOption::Unknown(_, data) => Some(data),
        _ => None,
    }
}

/// The COOKIE option of a query: the client cookie, and the server cookie
/// from the server's last answer, if there was one.
pub fn query_option(client_cookie: &[u8; 8], server_cookie: Option<&[u8]>) -> EdnsOption {
    let mut data = client_cookie.to_vec();
    data.extend_from_slice(server_cookie.unwrap_or_default());
    EdnsOption::Unknown(COOKIE, data)
}

impl CookieSecret {
    /// What `query` says about cookies, from `client`.
    pub fn read(&self, query: &Message, client: IpAddr) -> Cookies {
        let Some(data) = option_data(query) else {
            return Cookies::None;
        };
        if !(data.len() == 8 || (16..=40).contains(&data.len())) {
            return Cookies::Malformed;
        }
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&data[..8]);
        let server_valid = data.len() == 24 && self.is_ours(&cookie, &data[8..], client);
        Cookies::Present {
            client: cookie,
            server_valid,
        }
    }

    /// The COOKIE option for our answer: the client's cookie and a fresh
    /// server cookie for it.
    pub fn answer_option(&self, client_cookie: &[u8; 8], client: IpAddr) -> EdnsOption {
        let mut data = client_cookie.to_vec();
        data.extend_from_slice(&self.server_cookie(client_cookie, now(), client));
        EdnsOption::Unknown(COOKIE, data)
    }

    /// A server cookie for `client_cookie` from `client`, made now (a
    /// replayed answer gets one of its own; see `super::replay`).
    pub fn fresh_server_cookie(&self, client_cookie: &[u8; 8], client: IpAddr) -> [u8; 16] {
        self.server_cookie(client_cookie, now(), client)
    }

    /// Our client cookie for the server at `server`: the same for every
    /// question to it, and another for every server, so that one server
    /// cannot tell a forger what another expects (RFC 7873 §4.1; BIND
    /// hashes the server's address alone, as here).
    pub fn client_cookie(&self, server: IpAddr) -> [u8; 8] {
        self.hash(&[], server)
    }

    /// RFC 9018 §4.2: version 1, three reserved bytes, the time, and the
    /// hash over all of it with the client's cookie and address.
    fn server_cookie(&self, client_cookie: &[u8; 8], time: u32, client: IpAddr) -> [u8; 16] {
        let mut cookie = [0u8; 16];
        cookie[0] = 1;
        cookie[4..8].copy_from_slice(&time.to_be_bytes());
        let hash = self.hash(&[client_cookie, &cookie[..8]], client);
        cookie[8..].copy_from_slice(&hash);
        cookie
    }

    /// SipHash-2-4 under the secret of `parts`, then an address.
    fn hash(&self, parts: &[&[u8]], addr: IpAddr) -> [u8; 8] {
        let mut hasher = SipHasher24::new_with_key(&self.0);
        for part in parts {
            hasher.write(part);
        }
        match addr {
            IpAddr::V4(v4) => hasher.write(&v4.octets()),
            IpAddr::V6(v6) => hasher.write(&v6.octets()),
        }
        hasher.finish().to_be_bytes()
    }

    fn is_ours(&self, client_cookie: &[u8; 8], server: &[u8], client: IpAddr) -> bool {
        if server[0] != 1 {
            return false;
        }
        let time = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
        let age = now().wrapping_sub(time);
        let fresh = age <= MAX_AGE || time.wrapping_sub(now()) <= MAX_AHEAD;
        fresh && self.server_cookie(client_cookie, time, client)[..] == server[..]
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Edns;

    use super::*;

    fn query_with(cookie: Vec<u8>) -> Message {
        let mut message = Message::query();
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Unknown(COOKIE, cookie));
        message.set_edns(edns);
        message
    }

    #[test]
    fn a_client_cookie_is_the_same_for_one_server_and_another_for_the_next() {
        let secret = CookieSecret::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert_eq!(secret.client_cookie(a), secret.client_cookie(a));
        assert_ne!(secret.client_cookie(a), secret.client_cookie(b));
        // Another secret (another process) makes other cookies.
        assert_ne!(
            CookieSecret::default().client_cookie(a),
            secret.client_cookie(a)
        );
        let EdnsOption::Unknown(10, first) = query_option(&secret.client_cookie(a), None) else {
            unreachable!()
        };
        assert_eq!(first.len(), 8);
    }

    #[test]
    fn our_server_cookie_is_recognised_only_from_the_same_client() {
        let secret = CookieSecret::default();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = secret.read(&query_with(vec![7; 8]), client);
        assert_eq!(
            first,
            Cookies::Present {
                client: [7; 8],
                server_valid: false
            }
        );
        let EdnsOption::Unknown(_, both) = secret.answer_option(&[7; 8], client) else {
            unreachable!()
        };
        assert_eq!(both.len(), 24);
        assert!(matches!(
            secret.read(&query_with(both.clone()), client),
            Cookies::Present {
                server_valid: true,
                ..
            }
        ));
        // Replayed from another address, or with another client cookie: no.
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(matches!(
            secret.read(&query_with(both.clone()), other),
            Cookies::Present {
                server_valid: false,
                ..
            }
        ));
        let mut forged = both;
        forged[0] ^= 1;
        assert!(matches!(
            secret.read(&query_with(forged), client),
            Cookies::Present {
                server_valid: false,
                ..
            }
        ));
        // Another secret (a restart) does not know it.
        assert_eq!(
            secret.read(&query_with(vec![1; 9]), client),
            Cookies::Malformed
        );
    }
}
